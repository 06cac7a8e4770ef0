#!/usr/bin/env bash
# Checks testdata/eip712/vectors.json with ethers v6 (an implementation that
# shares no code with Verity's Go signer). Needs node >= 18 and npm; installs
# the pinned packages from package-lock.json into scripts/interop/node_modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vectors="${1:-$here/../../testdata/eip712/vectors.json}"

command -v node >/dev/null || { echo "interop: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "interop: npm is not installed" >&2; exit 1; }

cd "$here"
if ! log="$(npm ci --no-audit --no-fund --loglevel=error 2>&1)"; then
	echo "$log" >&2
	echo "interop: npm ci failed" >&2
	exit 1
fi
exec node "$here/verify-vectors.mjs" "$vectors"
