#!/usr/bin/env bash
# Checks Verity's signatures with ethers v6 (an implementation that shares no
# code with Verity's Go signer):
#   1. the EIP-712 test vectors, testdata/eip712/vectors.json (or $1);
#   2. whole certificates, valid.json, verified.json and batched.json (each
#      ballot and the gateway's outcome signed in a batch) of testdata/certs
#      (or of the directory $2) against its genesis.json: every ballot
#      signature and the gateway signature, recomputed from the
#      certificate's fields;
#   3. the explorer's in-browser check (explorer/assets/verify.js, on the
#      ethers v6 it vendors) on every certificate vector of $2.
# Needs node >= 18 and npm; installs the pinned packages from
# package-lock.json into scripts/interop/node_modules.
#
# Usage: run.sh [vectors.json [certs-dir]]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vectors="${1:-$here/../../testdata/eip712/vectors.json}"
certs="${2:-$here/../../testdata/certs}"
# Relative paths are the caller's: resolve them before changing directory.
case "$vectors" in /*) ;; *) vectors="$PWD/$vectors" ;; esac
case "$certs" in /*) ;; *) certs="$PWD/$certs" ;; esac

command -v node >/dev/null || { echo "interop: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "interop: npm is not installed" >&2; exit 1; }

cd "$here"
if ! log="$(npm ci --no-audit --no-fund --loglevel=error 2>&1)"; then
	echo "$log" >&2
	echo "interop: npm ci failed" >&2
	exit 1
fi
# Run both checks even when the first fails, so that one run reports all.
status=0
node "$here/verify-vectors.mjs" "$vectors" || status=1
node "$here/verify-certs.mjs" "$certs/genesis.json" "$certs/valid.json" "$certs/verified.json" "$certs/batched.json" || status=1
# The batch tampers must fail in ethers too.
for bad in "$certs"/invalid/batch-*.json "$certs"/invalid/gateway-batch-*.json; do
	if node "$here/verify-certs.mjs" "$certs/genesis.json" "$bad" >/dev/null 2>&1; then
		echo "interop: FAIL $(basename "$bad") verifies in ethers" >&2
		status=1
	fi
done
echo "interop: the $(ls "$certs"/invalid/batch-*.json "$certs"/invalid/gateway-batch-*.json | wc -l) batch tampers fail in ethers"
node "$here/verify-explorer.mjs" "$certs" || status=1
exit "$status"
