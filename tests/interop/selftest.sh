#!/usr/bin/env bash
# js<->js self-test of the interop harness: two js-peer processes, every command between
# them. Needs node >= 20 and npm; installs the pinned packages (npm ci) if they are missing.
# Prints one line per step with its time and ends with 'N passed, N failed'.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
exec node --import ./polyfill.mjs selftest.mjs "$@"
