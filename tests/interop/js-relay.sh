#!/usr/bin/env bash
# Runs js-relay.mjs (circuit relay interop node) like js-peer.sh runs js-peer.mjs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/npm-ensure.sh"
goop_interop_npm_ensure "$here"
cd "$here"
exec node --import ./polyfill.mjs js-relay.mjs "$@"
