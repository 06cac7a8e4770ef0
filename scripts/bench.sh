#!/usr/bin/env bash
# Runs the measurements of docs/performance.md ("Network benchmarks" and
# "Scaling"): builds verity, runs each configuration REPEAT times (default 3)
# with `verity bench --repeat`, writes every report under OUT (default
# $TMPDIR/verity-bench-results) and redraws SVG (default docs/scaling.svg).
# Each run is bounded: a few seconds of load plus the start of the network.
# Then runs the Go benchmarks of the hot paths.
#
#   scripts/bench.sh            # everything (about 10 minutes on 2 cores)
#   scripts/bench.sh network    # only the network benchmarks
#   scripts/bench.sh scaling    # only the scaling figure
#   scripts/bench.sh go         # only the Go benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
out=${OUT:-${TMPDIR:-/tmp}/verity-bench-results}
repeat=${REPEAT:-3}
svg=${SVG:-docs/scaling.svg}
mkdir -p "$out"
bin="$out/verity"
go build -o "$bin" ./cmd/verity

{
	echo "nproc: $(nproc)"
	grep -m1 'model name' /proc/cpuinfo || true
	go version
	date -u +%Y-%m-%dT%H:%M:%SZ
} | tee "$out/env.txt"

# run NAME ARGS... runs one configuration REPEAT times; a run with jobs that
# never became final exits 1, which is reported and does not stop the rest.
run() {
	local name=$1
	shift
	echo "== $name: verity bench --repeat $repeat $*"
	"$bin" bench --repeat "$repeat" -q --json-out "$out/$name.json" "$@" | tee "$out/$name.txt" ||
		echo "!! $name: exit status $?"
}

if [[ $what == all || $what == network ]]; then
	run 5nodes-50ps --nodes 5 --claims 5 --rate 50 --duration 10s
	run 5nodes-saturated --nodes 5 --claims 5 --duration 5s
	run 5nodes-saturated-tmpfs --nodes 5 --claims 5 --duration 5s --store-dir /dev/shm
	run 5nodes-saturated-25claims --nodes 5 --claims 25 --duration 5s
	run 25nodes-light --nodes 25 --claims 5 --rate 1 --duration 10s
	run 5nodes-50ps-subprocess --nodes 5 --claims 5 --rate 50 --duration 10s --subprocess --command "$bin"
fi

if [[ $what == all || $what == scaling ]]; then
	echo "== scaling: verity bench --scaling 5,10,25,50 --repeat $repeat --rate 1 --duration 10s"
	"$bin" bench --scaling 5,10,25,50 --repeat "$repeat" --claims 5 --rate 1 --duration 10s --svg "$svg" \
		--json-out "$out/scaling.json" -q |
		tee "$out/scaling.txt" || echo "!! scaling: exit status $?"
fi

if [[ $what == all || $what == go ]]; then
	go test -run '^$' -bench . -benchtime 2000x ./node/store/ | tee "$out/go-store.txt"
	go test -run '^$' -bench 'Certificate|Tally' -benchtime 3s ./node/ | tee "$out/go-node.txt"
	go test -run '^$' -bench . ./consensus/ ./sigs/ | tee "$out/go-consensus-sigs.txt"
fi
