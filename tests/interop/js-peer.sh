#!/usr/bin/env bash
# Runs js-peer.mjs with the Node 20 polyfill, installing the pinned packages first if needed.
# C test programs spawn this; all arguments go to js-peer.mjs (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/npm-ensure.sh"
goop_interop_npm_ensure "$here"
cd "$here"
exec node --import ./polyfill.mjs js-peer.mjs "$@"
