#!/usr/bin/env bash
# js<->js self-test of the interop harness: two js-peer processes, every command between
# them. Needs node >= 20 and npm; installs the pinned packages (npm ci) if they are missing.
# Prints one line per step with its time and ends with 'N passed, N failed'.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/npm-ensure.sh"
goop_interop_npm_ensure "$here"
cd "$here"
exec node --import ./polyfill.mjs selftest.mjs "$@"
