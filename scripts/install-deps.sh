#!/usr/bin/env bash
# Install the Debian 12 packages libgoop needs to build, test and run.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc clang llvm lld libclang-rt-14-dev python3 git
      libevent-dev libssl-dev libsqlite3-dev libjansson-dev libavahi-client-dev libmicrohttpd-dev
      scdoc clang-format valgrind nodejs npm iproute2 procps psmisc curl ca-certificates sqlite3 openssl
      avahi-daemon dbus-daemon
      nftables)
if [ "${GOOP_WITH_BROWSER:-0}" = 1 ]; then
  pkgs+=(chromium)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. a preinstalled Node): accept working binaries.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
clean=()
for p in "${missing[@]}"; do [ -n "$p" ] && clean+=("$p"); done
[ ${#clean[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${clean[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${clean[@]}" >&2
