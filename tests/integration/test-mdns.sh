#!/usr/bin/env bash
# mDNS discovery across network namespaces. Usage: test-mdns.sh path/to/goop2
#
# Three namespaces (a, b, c) hang off a bridge in a fourth one over veth pairs
# (10.200.1.0/24). Each runs its own dbus-daemon (private system bus on a unix
# socket under the test directory) and avahi-daemon (own config, host name and
# /run/avahi-daemon via a bind mount in the private mount namespace that
# `ip netns exec` creates), then one goop2 peer. a and b use the tag
# goop-mdns, c uses other-tag: a and b must find each other through mDNS and
# list each other in /api/peers; c must neither see nor be seen.
# Needs root, ip netns, avahi-daemon, dbus-daemon and curl; prints a TAP skip
# plan otherwise. Prints TAP.
set -u

GOOP2=${1:?usage: $0 path/to/goop2}
case $GOOP2 in /*) ;; *) GOOP2=$PWD/$GOOP2 ;; esac

skip() {
  echo "1..0 # SKIP $*"
  exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for p in ip avahi-daemon dbus-daemon curl python3 mount; do
  command -v "$p" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$p" >/dev/null 2>&1 ||
    skip "$p not installed"
done
PATH=$PATH:/usr/sbin:/sbin
[ -x "$GOOP2" ] || skip "no goop2 binary at $GOOP2"

ID=gm$$
T=$(mktemp -d "${TMPDIR:-/tmp}/goop-test-mdns-XXXXXX")
chmod 755 "$T"
NS_BR=${ID}br
PEERS="a b c"
PIDS=""
GOOP_PIDS=""

cleanup() {
  local p
  # peers first (they talk to avahi), then the daemons
  for p in $GOOP_PIDS $PIDS; do kill -TERM "$p" 2>/dev/null; done
  for p in $GOOP_PIDS $PIDS; do
    for _ in $(seq 1 30); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for p in $PEERS; do ip netns del "$ID$p" 2>/dev/null; done
  ip netns del "$NS_BR" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$NS_BR" 2>/dev/null || skip "cannot create network namespaces (ip netns add failed)"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
  n=$((n + 1))
  failed=$((failed + 1))
  echo "not ok $n - $1"
}
diag() { sed 's/^/# /' "$@" 2>/dev/null | tail -n 40; }

echo "1..11"

# ---- network: bridge namespace + one veth per peer namespace ---------------------------
net_ok=1
ip -n "$NS_BR" link set lo up || net_ok=0
ip -n "$NS_BR" link add br0 type bridge mcast_snooping 0 || ip -n "$NS_BR" link add br0 type bridge || net_ok=0
ip -n "$NS_BR" link set br0 up || net_ok=0
i=0
for p in $PEERS; do
  i=$((i + 1))
  ns=$ID$p
  ip netns add "$ns" || net_ok=0
  ip -n "$ns" link set lo up || net_ok=0
  ip -n "$ns" link add eth0 type veth peer name vp$i netns "$NS_BR" || net_ok=0
  ip -n "$NS_BR" link set vp$i master br0 || net_ok=0
  ip -n "$NS_BR" link set vp$i up || net_ok=0
  ip -n "$ns" addr add 10.200.1.$i/24 dev eth0 || net_ok=0
  ip -n "$ns" link set eth0 multicast on up || net_ok=0
done
if [ $net_ok = 1 ] && [ "$(ip -n "$NS_BR" -o link show master br0 | grep -c 'state UP')" = 3 ]; then
  ok "three namespaces joined by a bridge"
else
  notok "three namespaces joined by a bridge"
fi

# ---- per-namespace dbus-daemon + avahi-daemon ------------------------------------------
mkdir -p /run/avahi-daemon 2>/dev/null
for p in $PEERS; do
  d=$T/$p
  mkdir -p "$d/run-avahi" "$d/peer"
  cat >"$d/dbus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
  cat >"$d/avahi.conf" <<CONF
[server]
host-name=goop-mdns-test-$p
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes
[reflector]
enable-reflector=no
[rlimits]
CONF
  ip netns exec "$ID$p" dbus-daemon --config-file="$d/dbus.conf" --nofork --nopidfile \
    >"$d/dbus.log" 2>&1 &
  PIDS="$PIDS $!"
done
for p in $PEERS; do
  for _ in $(seq 1 50); do
    [ -S "$T/$p/bus" ] && break
    sleep 0.1
  done
done
declare -A AVAHI
start_avahi() { # start_avahi NAME LOG
  local d=$T/$1
  # ip netns exec gives a private mount namespace: /run/avahi-daemon (pid file,
  # socket) is per peer there
  ip netns exec "$ID$1" env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$d/bus" sh -c \
    'mount --bind "$1" /run/avahi-daemon && rm -f /run/avahi-daemon/pid &&
     exec avahi-daemon --no-drop-root --no-chroot --no-rlimits --no-proc-title -f "$2"' \
    sh "$d/run-avahi" "$d/avahi.conf" >"$d/$2" 2>&1 &
  AVAHI[$1]=$!
  PIDS="$PIDS $!"
}
for p in $PEERS; do start_avahi "$p" avahi.log; done
up=1
for p in $PEERS; do
  for _ in $(seq 1 100); do
    grep -q "Server startup complete" "$T/$p/avahi.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "Server startup complete" "$T/$p/avahi.log" 2>/dev/null || up=0
done
if [ $up = 1 ]; then
  ok "an avahi-daemon and a dbus-daemon per namespace"
else
  notok "an avahi-daemon and a dbus-daemon per namespace"
  for p in $PEERS; do diag "$T/$p/avahi.log" "$T/$p/dbus.log"; done
fi

# ---- one goop2 peer per namespace -------------------------------------------------------
start_peer() { # start_peer NAME TAG
  local p=$1 tag=$2 d=$T/$1
  printf '{"p2p":{"mdns_tag":"%s"}}\n' "$tag" >"$d/peer/goop.json"
  ip netns exec "$ID$p" env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$d/bus" GOOP2_VIEWER_ADDR=127.0.0.1:0 \
    "$GOOP2" -dir "$d/peer" >"$d/out" 2>"$d/err" &
  GOOP_PIDS="$GOOP_PIDS $!"
}
start_peer a goop-mdns
start_peer b goop-mdns
start_peer c other-tag

declare -A URL PID
started=1
for p in $PEERS; do
  for _ in $(seq 1 100); do
    grep -q 'Viewer: .*http' "$T/$p/out" 2>/dev/null && break
    sleep 0.1
  done
  URL[$p]=$(sed -n 's/^ *Viewer: *\(http[^ ]*\).*/\1/p' "$T/$p/out" | head -n 1)
  PID[$p]=$(sed -n 's/^ *Peer ID: *\(12D3[A-Za-z0-9]*\).*/\1/p' "$T/$p/out" | head -n 1)
  if [ -z "${URL[$p]}" ] || [ -z "${PID[$p]}" ] || ! grep -q 'mDNS: browsing' "$T/$p/out"; then
    started=0
  fi
done
if [ $started = 1 ]; then
  ok "three goop2 peers up with mDNS enabled"
else
  notok "three goop2 peers up with mDNS enabled"
  for p in $PEERS; do diag "$T/$p/out" "$T/$p/err"; done
fi

peers_json() { # peers_json NAME: /api/peers of that peer, fetched inside its namespace
  ip netns exec "$ID$1" curl -s -m 3 "${URL[$1]}api/peers" 2>/dev/null
}
lists() { # lists NAME PEERID: does NAME's /api/peers contain PEERID?
  peers_json "$1" | grep -q "${2:-none}"
}

# a and b must list each other within 10 s
for _ in $(seq 1 20); do
  lists a "${PID[b]}" && lists b "${PID[a]}" && break
  sleep 0.5
done
if lists a "${PID[b]}"; then ok "goop-mdns peer a lists b"; else notok "goop-mdns peer a lists b"; fi
if lists b "${PID[a]}"; then ok "goop-mdns peer b lists a"; else notok "goop-mdns peer b lists a"; fi

# give c the same time again to (wrongly) appear
sleep 3
if lists c "${PID[a]}" || lists c "${PID[b]}"; then
  notok "other-tag peer c lists neither a nor b"
else ok "other-tag peer c lists neither a nor b"; fi
if lists a "${PID[c]}"; then notok "a does not list other-tag peer c"; else ok "a does not list other-tag peer c"; fi
if lists b "${PID[c]}"; then notok "b does not list other-tag peer c"; else ok "b does not list other-tag peer c"; fi
if grep -q "mdns: found peer" "$T/c/err"; then
  notok "c discovered nobody over mDNS"
else
  ok "c discovered nobody over mDNS"
fi

# a's avahi-daemon restarts: a waits for it, then publishes again and b is still found
kill -TERM "${AVAHI[a]}" 2>/dev/null
wait "${AVAHI[a]}" 2>/dev/null
sleep 0.5
start_avahi a avahi2.log
for _ in $(seq 1 100); do
  [ "$(grep -c 'mdns: announcing' "$T/a/err")" -ge 2 ] && [ "$(grep -c 'mdns: found peer' "$T/a/err")" -ge 2 ] && break
  sleep 0.2
done
if [ "$(grep -c 'mdns: announcing' "$T/a/err")" -ge 2 ] && [ "$(grep -c 'mdns: found peer' "$T/a/err")" -ge 2 ]; then
  ok "a announces and browses again after its avahi-daemon restarts"
else
  notok "a announces and browses again after its avahi-daemon restarts"
  diag "$T/a/err" "$T/a/avahi2.log"
fi

# every peer shuts down cleanly (frees its Avahi client before the host)
clean=1
for pid in $GOOP_PIDS; do
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  [ $? -eq 0 ] || clean=0
done
GOOP_PIDS=""
if [ $clean = 1 ]; then ok "peers exit 0 on SIGTERM"; else notok "peers exit 0 on SIGTERM"; fi

if [ $failed -ne 0 ]; then
  for p in $PEERS; do
    echo "# ---- $p (${PID[$p]:-?}) /api/peers: $(peers_json "$p")"
    diag "$T/$p/out" "$T/$p/err" "$T/$p/avahi.log"
  done
fi
[ $failed -eq 0 ]
