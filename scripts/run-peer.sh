#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install what is missing, build,
# and run a peer (default peers/alice) with its viewer.
#   scripts/run-peer.sh [PEER_DIR] [extra goop2 options...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-peers/alice}"
shift || true
scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >/dev/null
fi
ninja -C build >/dev/null
exec build/cli/goop2 -dir "$dir" "$@"
