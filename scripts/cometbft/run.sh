#!/usr/bin/env bash
# Side by side on this machine, in one run: Verity against a 4-validator
# CometBFT network running its built-in kvstore application, with the
# settings that give CometBFT its best latency here (timeout_propose 100ms,
# timeout_commit 1ms, skip_timeout_commit, gossip sleep and flush throttle
# 10ms). Rounds interleave the two so that machine noise falls on both; only
# one network runs at a time. Run by hand, not by the tests:
#
#   bash scripts/cometbft/run.sh            # 3 rounds, about 4 minutes
#   ROUNDS=5 bash scripts/cometbft/run.sh
#   INFLIGHT=256 bash scripts/cometbft/run.sh  # Verity's saturated loop
#
# Verity's saturated loop keeps INFLIGHT jobs waiting for their
# certificates (default 1024). CometBFT's clients wait only for the
# mempool to take a transaction (broadcast_tx_sync), so its blocks always
# have work (its mempool holds up to 5,000); a loop of 64 jobs that each
# wait for their certificate left a quarter of the machine idle
# (docs/performance.md, "Enough jobs in flight").
#
# Installs cometbft v0.38.25 with the Go toolchain (into GOBIN or
# $(go env GOPATH)/bin) when it is not already there. Writes every result
# under OUT (default $TMPDIR/verity-vs-cometbft) and prints a table of
# medians at the end, then each round's figures and ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=v0.38.25
rounds=${ROUNDS:-3}
inflight=${INFLIGHT:-1024}
out=${OUT:-${TMPDIR:-/tmp}/verity-vs-cometbft}
rm -rf "$out"
mkdir -p "$out"

gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
cmt=$gobin/cometbft
if ! "$cmt" version 2>/dev/null | grep -qx "${version#v}"; then
	echo "installing cometbft $version (a few minutes the first time)"
	go install "github.com/cometbft/cometbft/cmd/cometbft@$version"
fi
go build -o "$out/verity" ./cmd/verity
go build -o "$out/load" ./scripts/cometbft/load

{
	echo "nproc: $(nproc)"
	grep -m1 'model name' /proc/cpuinfo || true
	go version
	echo "cometbft: $("$cmt" version)"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	date -u +%Y-%m-%dT%H:%M:%SZ
} | tee "$out/env.txt"

# Four validators on 127.0.0.1-4, each with its own p2p and RPC address.
home=$out/cometbft
"$cmt" testnet --v 4 --o "$home" --starting-ip-address 127.0.0.1 >/dev/null
rpcs=()
for i in 0 1 2 3; do
	ip=127.0.0.$((i + 1))
	rpcs+=("http://$ip:26657")
	sed -i \
		-e 's|^proxy_app = .*|proxy_app = "kvstore"|' \
		-e "s|^laddr = \"tcp://127.0.0.1:26657\"|laddr = \"tcp://$ip:26657\"|" \
		-e "s|^laddr = \"tcp://0.0.0.0:26656\"|laddr = \"tcp://$ip:26656\"|" \
		-e 's|^timeout_propose = .*|timeout_propose = "100ms"|' \
		-e 's|^timeout_commit = .*|timeout_commit = "1ms"|' \
		-e 's|^skip_timeout_commit = .*|skip_timeout_commit = true|' \
		-e 's|^peer_gossip_sleep_duration = .*|peer_gossip_sleep_duration = "10ms"|' \
		-e 's|^flush_throttle_timeout = .*|flush_throttle_timeout = "10ms"|' \
		"$home/node$i/config/config.toml"
done
rpc_list=$(
	IFS=,
	echo "${rpcs[*]}"
)

pids=()
stop_cometbft() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap stop_cometbft EXIT

start_cometbft() {
	for i in 0 1 2 3; do
		"$cmt" start --home "$home/node$i" --log_level error >>"$out/cometbft-node$i.log" 2>&1 &
		pids+=($!)
	done
	# Ready when the first node has committed a few blocks.
	for _ in $(seq 1 600); do
		h=$(curl -s "${rpcs[0]}/status" | sed -n 's/.*"latest_block_height":"\([0-9]*\)".*/\1/p' || true)
		if [ -n "$h" ] && [ "$h" -ge 3 ]; then return 0; fi
		sleep 0.1
	done
	echo "cometbft did not start; see $out/cometbft-node*.log" >&2
	exit 1
}

for r in $(seq 1 "$rounds"); do
	echo "== round $r of $rounds"
	start_cometbft
	"$out/load" -rpc "$rpc_list" -mode latency -n 200 -rate 20 -json | tee -a "$out/cometbft-latency.jsonl"
	"$out/load" -rpc "$rpc_list" -mode saturate -clients 8 -duration 10s -json | tee -a "$out/cometbft-saturate.jsonl"
	stop_cometbft
	# Each network's writes reach the disk before the other runs: CometBFT
	# leaves about 200 MB to write back after a saturated run, and an
	# fsync behind that writeback takes hundreds of milliseconds.
	sync
	"$out/verity" bench -q --nodes 4 --claims 1 --rate 20 --duration 10s \
		--json-out "$out/verity-latency-$r.json" | tail -n 3
	"$out/verity" bench -q --nodes 4 --claims 1 --rate 0 --duration 10s \
		--concurrency "$inflight" --json-out "$out/verity-saturate-$r.json" | tail -n 3
	sync
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/env.txt"
go run ./scripts/cometbft/table "$out"
