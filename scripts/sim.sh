#!/usr/bin/env bash
# Runs a simulation scenario (docs/simulation.md).
#
#   scripts/sim.sh SCENARIO.toml [flags]             # real time: verity sim
#   scripts/sim.sh SCENARIO.toml --virtual [flags]   # virtual time (synctest)
#
# Flags after the scenario go to the run in both modes: --sweep-nodes LIST,
# --sweep-liars LIST, --plots DIR, --json, and --json-out FILE (written as
# the test tier's -report in virtual time). Real time also takes every
# other flag of `verity sim` (see verity sim --help); virtual time also
# takes --profile FILE, a CPU profile of the measured time alone, and
# FILE.heap, the live heap as it ends (a sweep's runs write FILE.1,
# FILE.1.heap, FILE.2, ...; go tool pprof reads them).
#
# Virtual time needs a test: Go gives it only inside testing/synctest. The
# script builds the sim package's test binary and runs its TestScenario on
# the scenario; relative paths are taken from where the script was called.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
	echo "usage: scripts/sim.sh SCENARIO.toml [--virtual] [flags]" >&2
	exit 2
fi
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
scenario=$(abs "$1")
shift

virtual=no
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--virtual) virtual=yes ;;
	--plots | --json-out | --profile)
		[ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
		args+=("$1" "$(abs "$2")")
		shift
		;;
	*) args+=("$1") ;;
	esac
	shift
done

if [ "$virtual" = no ]; then
	cd "$root"
	exec go run ./cmd/verity sim "${args[@]}" "$scenario"
fi

# The test binary takes single-dash flags; --json-out is its -report.
targs=(-scenario "$scenario")
set -- "${args[@]+"${args[@]}"}"
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) targs+=(-report "$2"); shift ;;
	--sweep-nodes | --sweep-liars | --plots | --profile) targs+=("-${1#--}" "$2"); shift ;;
	--json) targs+=(-json) ;;
	*) echo "$1: not a flag of the virtual-time run (--sweep-nodes, --sweep-liars, --plots, --profile, --json, --json-out)" >&2; exit 2 ;;
	esac
	shift
done
bin=$(mktemp -d "${TMPDIR:-/tmp}/verity-sim-XXXXXX")
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go test -c -o "$bin/sim.test" ./sim)
"$bin/sim.test" -test.run '^TestScenario$' -test.timeout 0 "${targs[@]}"
