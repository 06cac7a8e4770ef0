#!/usr/bin/env bash
# scripts/stress-tests.sh N: runs the README's test command N times while
# busy loops keep every core of the machine occupied, the way a newcomer's
# laptop running other work would, and ends with one line:
#
#   N passed, M failed
#
# Each run is `go test -race -count=1 ./...` (the README's command; -count=1
# so that cached results hide no failure) in the default tier
# (VERITY_TEST_TIER is unset for it). Each run's output is kept in a
# temporary directory, whose path is printed; the tail of a failed run is
# printed too. Exits 1 if any run failed, 2 on a usage error.
set -uo pipefail
cd "$(dirname "$0")/.."

n=${1:-}
if [[ $# -ne 1 || ! $n =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/stress-tests.sh N   (run the tests N times under a CPU hog)" >&2
  exit 2
fi

cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
out=$(mktemp -d "${TMPDIR:-/tmp}/verity-stress.XXXXXX")

hogs=()
tester=
stop_hogs() {
  if [[ -n $tester ]]; then
    # The run's own process group: go test and the test binaries it runs.
    kill -- "-$tester" 2>/dev/null
    wait "$tester" 2>/dev/null
    tester=
  fi
  if ((${#hogs[@]})); then
    kill "${hogs[@]}" 2>/dev/null
    wait "${hogs[@]}" 2>/dev/null
  fi
  hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

# Compile first, without the hog: a build error is not a flaky test.
if ! go test -race -count=1 -run '^$' ./... >"$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log"
  echo "the tests do not build ($out/build.log)"
  echo "0 passed, $n failed"
  exit 1
fi

for ((i = 0; i < cores; i++)); do
  sh -c 'while :; do :; done' &
  hogs+=($!)
done
echo "stress: $n run(s) of go test -race -count=1 ./... with $cores busy loop(s); logs in $out"

passed=0
failed=0
for ((r = 1; r <= n; r++)); do
  log="$out/run$r.log"
  began=$SECONDS
  # In a process group of its own, waited for in the background, so that
  # a TERM or an INT stops the run and the busy loops at once.
  setsid env -u VERITY_TEST_TIER go test -race -count=1 ./... >"$log" 2>&1 &
  tester=$!
  wait "$tester"
  status=$?
  tester=
  if ((status == 0)); then
    passed=$((passed + 1))
    echo "run $r: ok in $((SECONDS - began))s"
  else
    failed=$((failed + 1))
    echo "run $r: FAILED in $((SECONDS - began))s; failing tests and the end of $log:"
    grep -E '^(--- FAIL|FAIL|panic:)' "$log" | head -n 20
    echo "..."
    tail -n 40 "$log"
  fi
done
stop_hogs
echo "$passed passed, $failed failed"
((failed == 0))
