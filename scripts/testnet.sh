#!/usr/bin/env bash
# Builds verity and runs a local testnet until Ctrl-C; see docs/operations.md.
# Usage: scripts/testnet.sh [NODES] [DIR]   (default 4 nodes in bin/testnet, which git ignores)
# Creates the testnet when DIR holds none; FRESH=1 replaces an existing one
# (keys, stores and logs). Extra flags for `testnet up` go in UP_FLAGS,
# e.g. UP_FLAGS=--inproc.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-4}
dir=${2:-bin/testnet}
go build -o bin/verity ./cmd/verity
if [[ "${FRESH:-}" == 1 ]]; then
  bin/verity testnet init --nodes "$nodes" --dir "$dir" --force
elif [[ ! -f "$dir/nodes.json" ]]; then
  bin/verity testnet init --nodes "$nodes" --dir "$dir"
else
  echo "using the testnet in $dir (FRESH=1 to replace it)" >&2
fi
# shellcheck disable=SC2086
exec bin/verity testnet up --dir "$dir" ${UP_FLAGS:-}
