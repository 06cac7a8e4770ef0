#!/usr/bin/env bash
# The floor of a job's time to certificate at light load on this machine,
# measured, beside the p50 and p99 that `verity bench` gives in the same
# run (docs/performance.md, "The floor at light load").
#
# A one-claim job at 4 validators cannot finish before, one after the other:
# the gateway signs the job; the job crosses one network hop (the gateway
# commits the job to its store meanwhile); a validator recovers the job's
# signer, signs its ballot and commits it with the job; the ballot crosses
# one hop back; the gateway recovers the ballot's signer, signs the
# certificate and commits it. The floor is the sum of the medians of the Go
# benchmarks of those steps: two durable writes (node/store, serial: one
# write alone pays a whole commit),
# three signatures and two recoveries (sigs), and the two hops
# (node/p2p BenchmarkJobRoundTrip: a job published on the jobs topic and
# answered straight to its publisher, one job after another). A second
# floor counts the hops as they are at light load, the network idle
# between jobs (BenchmarkJobRoundTripIdle: 50 ms idle before each job, the
# gap of 20 jobs a second, so that each hop pays for waking what carries
# it). A third floor also counts the ballot's write as it is when the
# four nodes of the run share one disk: four stores commit at once and
# the quorum waits for the third (BenchmarkPutJobQuorum). A fourth also
# counts the round trip as the gateway of four nodes waits for it: the
# job to the three others at once, the second answer back, the quorum
# with its own ballot (BenchmarkJobQuorumRoundTripIdle). Rounds
# interleave the benchmarks
# with `verity bench --nodes 4 --claims 1 --rate 20` so that both see the
# same machine. With BASE=REV, each round also runs the same `verity bench`
# built from commit REV, right after this tree's, so that the two compare
# on the machine as it is (a p99 measured on another day says little of
# this one). Run by hand, not by the tests:
#
#   bash scripts/floor.sh            # 3 rounds, about 3 minutes
#   ROUNDS=5 bash scripts/floor.sh
#   BASE=4a8020a bash scripts/floor.sh   # beside the code before batches
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
out=${OUT:-${TMPDIR:-/tmp}/verity-floor}
rm -rf "$out"
mkdir -p "$out"
go build -o "$out/verity" ./cmd/verity
if [ -n "${BASE:-}" ]; then
	git worktree add -q --detach "$out/base-src" "$BASE"
	(cd "$out/base-src" && go build -o "$out/verity-base" ./cmd/verity)
	git worktree remove --force "$out/base-src"
fi
go test -c -o "$out/store.test" ./node/store
go test -c -o "$out/sigs.test" ./sigs
go test -c -o "$out/p2p.test" ./node/p2p
{
	echo "nproc: $(nproc)"
	grep -m1 'model name' /proc/cpuinfo || true
	go version
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	date -u +%Y-%m-%dT%H:%M:%SZ
} | tee "$out/env.txt"

# bench FILE TEST PATTERN BENCHTIME runs a test binary's benchmarks and
# appends "name ns/op" lines to FILE.
bench() {
	(cd "$out" && "./$2" -test.run '^$' -test.bench "$3" -test.benchtime "$4") |
		awk '/^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name); print name, $3 }' >>"$1"
}

for r in $(seq 1 "$rounds"); do
	echo "== round $r of $rounds"
	bench "$out/steps.txt" store.test 'PutJob/serial|PutCertificate/serial' 300x
	bench "$out/steps.txt" store.test 'PutJobQuorum$' 300x
	bench "$out/steps.txt" sigs.test '^Benchmark(Sign|Recover)$' 2000x
	bench "$out/steps.txt" p2p.test 'JobRoundTrip$' 2000x
	bench "$out/steps.txt" p2p.test 'JobRoundTripIdle$' 100x
	bench "$out/steps.txt" p2p.test 'JobQuorumRoundTripIdle$' 100x
	lines=10
	for v in verity ${BASE:+verity-base}; do
		"$out/$v" bench -q --nodes 4 --claims 1 --rate 20 --duration 10s --json |
			awk -v v="$v" '/"p50"/ && !p50 { gsub(/,/, "", $2); p50 = $2 } /"p99"/ && !p99 { gsub(/,/, "", $2); p99 = $2 }
				END { print v "-p50", p50 * 1e6; print v "-p99", p99 * 1e6 }' >>"$out/steps.txt"
	done
	[ -n "${BASE:-}" ] && lines=12
	tail -n "$lines" "$out/steps.txt"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/env.txt"

# The medians, then the floor: a durable write of the ballot with its job
# (the size of a job record; the gateway's write of the job runs beside the
# hop and the validator's work) and of the certificate; three signatures;
# two recoveries; the round trip.
sort "$out/steps.txt" | awk -v base="${BASE:-}" '
	{ v[$1] = v[$1] " " $2; if ($1 == "verity-p50") rounds++ }
	END {
		for (k in v) {
			n = split(substr(v[k], 2), a, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			m[k] = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		floor = m["BenchmarkPutJob/serial"] + m["BenchmarkPutCertificate/serial"] + 3 * m["BenchmarkSign"] + 2 * m["BenchmarkRecover"] + m["BenchmarkJobRoundTrip"]
		idle = floor - m["BenchmarkJobRoundTrip"] + m["BenchmarkJobRoundTripIdle"]
		disk = idle - m["BenchmarkPutJob/serial"] + m["BenchmarkPutJobQuorum"]
		quorum = disk - m["BenchmarkJobRoundTripIdle"] + m["BenchmarkJobQuorumRoundTripIdle"]
		printf "medians of %d rounds, microseconds\n", rounds
		printf "  durable write of a job        %8.0f\n", m["BenchmarkPutJob/serial"] / 1e3
		printf "  durable write of a cert       %8.0f\n", m["BenchmarkPutCertificate/serial"] / 1e3
		printf "  signature (x3)                %8.0f\n", m["BenchmarkSign"] / 1e3
		printf "  recovery (x2)                 %8.0f\n", m["BenchmarkRecover"] / 1e3
		printf "  two hops (job out, ballot in) %8.0f\n", m["BenchmarkJobRoundTrip"] / 1e3
		printf "  floor                         %8.0f\n", floor / 1e3
		printf "  two hops, idle before the job %8.0f\n", m["BenchmarkJobRoundTripIdle"] / 1e3
		printf "  floor with idle hops          %8.0f\n", idle / 1e3
		printf "  third of 4 writes at once     %8.0f\n", m["BenchmarkPutJobQuorum"] / 1e3
		printf "  floor, idle hops, one disk    %8.0f\n", disk / 1e3
		printf "  quorum round trip, idle       %8.0f\n", m["BenchmarkJobQuorumRoundTripIdle"] / 1e3
		printf "  floor, quorum of four, idle   %8.0f\n", quorum / 1e3
		printf "verity bench p50 %.0f, p99 %.0f: p50 is %.2fx the floor, %.2fx with idle hops, %.2fx with idle hops and one disk, %.2fx with the quorum of four\n", m["verity-p50"] / 1e3, m["verity-p99"] / 1e3, m["verity-p50"] / floor, m["verity-p50"] / idle, m["verity-p50"] / disk, m["verity-p50"] / quorum
		if (base != "")
			printf "verity bench built from %s, the same rounds: p50 %.0f, p99 %.0f; this tree'"'"'s p50 is %.2fx, p99 %.2fx of those\n", base, m["verity-base-p50"] / 1e3, m["verity-base-p99"] / 1e3, m["verity-p50"] / m["verity-base-p50"], m["verity-p99"] / m["verity-base-p99"]
	}' | tee "$out/floor.txt"
