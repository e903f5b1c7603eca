#!/usr/bin/env bash
# NAT lab: real goop2 peers behind NAT routers in network namespaces, a
# rendezvous server with its circuit relay on a "public" network.
#
# Usage: nat-lab.sh path/to/goop2 path/to/goop2-rendezvous [CASE...]
#   CASE: lab a b c d (default: all of them, in that order)
#
#   lab  the lab itself, without goop2: port-preserving masquerade keeps the
#        source port, "random,fully-random" changes it per connection, an
#        unsolicited inbound connection does not get through, and a TCP
#        simultaneous open crosses two endpoint-independent NATs but not a
#        symmetric one (what DCUtR needs)
#   a    endpoint-independent NAT on both sides: the peers end on a direct
#        connection (relay first, then DCUtR hole punching)
#   b    symmetric NAT on one side: the peers stay on the relayed connection,
#        browse each other's site through the viewer (/p/<id>/) and use data
#        operations (/api/p/<id>/data/...)
#   c    relay limits reached (2 reservations, 1 circuit): a third peer gets a
#        clear "limit reached" error for its reservation and its circuit; the
#        relay keeps serving the first two
#   d    the relay (the rendezvous process) restarts: peers reserve again and
#        reconnect through it
#
# Every case builds a fresh lab (no conntrack state left from another case):
#
#   namespace <P>pub: bridge br0, 203.0.113.1/24, goop2-rendezvous (HTTP on
#                     :8787, relay on :4100)
#   namespace <P>r<i>: NAT router, wan 203.0.113.1<i>/24 on the bridge, lan
#                     10.0.<i>.1/24, nft masquerade (eim) or masquerade
#                     random,fully-random (sym); forwarding only lan->wan and
#                     established/related back; new inbound on wan dropped
#   namespace <P>h<i>: host 10.0.<i>.2/24, default route via its router; one
#                     goop2 peer (p2p.listen_port 4001, viewer 127.0.0.1:8080
#                     inside the namespace, mDNS off, rendezvous_wan
#                     http://203.0.113.1:8787)
#
# <P> is "nl<pid><case>", so parallel runs and leftovers never collide. Every
# process and namespace is removed on exit (also on failure or a signal).
# Prints "case X: final connection direct|relayed|none" per case, then PASS,
# FAIL or SKIP with the reason. A case whose feature is not in the tree
# (/relay answers 404, /api/peers has no Conn field, goop2 without a relay
# client) is skipped; otherwise it really passes or fails.
# Exit: 0 all selected cases passed, 1 a case failed, 77 nothing failed but
# something was skipped (not root, no ip/nft, or a missing feature).
# Timeouts are generous and only stop hangs; nothing asserts a duration.
# NAT_LAB_KEEP=1 keeps the log directory; NAT_LAB_VERBOSE=1 runs the peers with -v (debug log).
set -u

GOOP2=${1:?usage: $0 path/to/goop2 path/to/goop2-rendezvous [lab|a|b|c|d]...}
RDV=${2:?usage: $0 path/to/goop2 path/to/goop2-rendezvous [lab|a|b|c|d]...}
shift 2
CASES=${*:-lab a b c d}
case $GOOP2 in /*) ;; *) GOOP2=$PWD/$GOOP2 ;; esac
case $RDV in /*) ;; *) RDV=$PWD/$RDV ;; esac
PATH=$PATH:/usr/sbin:/sbin

skip_all() {
  echo "nat-lab: SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces, nftables)"
for p in ip nft curl python3 timeout; do
  command -v "$p" >/dev/null 2>&1 || skip_all "$p not installed (scripts/install-deps.sh installs nftables)"
done
[ -x "$GOOP2" ] || skip_all "no goop2 binary at $GOOP2"
[ -x "$RDV" ] || skip_all "no goop2-rendezvous binary at $RDV"
for c in $CASES; do
  case $c in lab | a | b | c | d) ;; *)
    echo "nat-lab: unknown case '$c' (lab a b c d)" >&2
    exit 2
    ;;
  esac
done

ID=nl$$
T=$(mktemp -d "${TMPDIR:-/tmp}/goop-nat-lab-XXXXXX")
chmod 755 "$T"
PUB_IP=203.0.113.1
RDV_URL=http://$PUB_IP:8787
RELAY_PORT=4100
PIDS=()     # every process started, in start order
L=""        # namespace prefix of the current case
NHOSTS=0    # hosts in the current lab

# ---- processes and cleanup -----------------------------------------------------------------
is_child() { jobs -p | grep -qx "$1"; } # a process of ours that has not been waited for
forget() { # forget PID: drop it from PIDS
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() { # stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; returns its exit status
  local p=$1 rc
  forget "$p"
  if is_child "$p"; then
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
  fi
  # also the status of a process that ended on its own (bash keeps it); 127: none known
  wait "$p" 2>/dev/null
  rc=$?
  [ $rc = 127 ] && rc=0
  return $rc
}
lab_down() { # kill what runs in the current lab's namespaces, then delete them
  local ns p
  [ -n "$L" ] || return 0
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$L"); do
    # only processes inside our own, uniquely named namespaces
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  L=""
}
cleanup() {
  local p ns
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$ID"); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  if [ "${NAT_LAB_KEEP:-0}" = 1 ]; then echo "nat-lab: logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- results --------------------------------------------------------------------------------
declare -A RESULT
FAILED=0
SKIPPED=0
PASSED=0
say() { echo "# $*"; }
diag() { # diag FILE...: last lines of logs, prefixed
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "# ---- ${f#"$T"/}"
    tail -n 30 "$f" | sed 's/^/#   /'
  done
}
case_pass() {
  RESULT[$1]="PASS"
  PASSED=$((PASSED + 1))
  echo "case $1: PASS${2:+ - $2}"
}
case_fail() {
  RESULT[$1]="FAIL: $2"
  FAILED=$((FAILED + 1))
  echo "case $1: FAIL - $2"
  local d
  for d in "$T/$1"/*/; do diag "$d"out "$d"err; done
  lab_diag
}
lab_diag() { # sockets of the hosts and NAT state of the routers, for a failed case
  local ns
  [ -n "$L" ] || return 0
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$L" | sort); do
    case ${ns#"$L"} in
    h* | pub) echo "# ---- ${ns#"$L"}: TCP sockets" && ip netns exec "$ns" ss -tan 2>/dev/null | sed 's/^/#   /' ;;
    r*)
      echo "# ---- ${ns#"$L"}: nft counters"
      ip netns exec "$ns" nft list table ip filter 2>/dev/null | grep counter | sed 's/^[[:space:]]*/#   /'
      echo "# ---- ${ns#"$L"}: conntrack"
      ip netns exec "$ns" cat /proc/net/nf_conntrack 2>/dev/null | grep tcp | awk '{$1=$2=$3=""; print}' | sed 's/^/#   /'
      ;;
    esac
  done
}
case_skip() {
  RESULT[$1]="SKIP: $2"
  SKIPPED=$((SKIPPED + 1))
  echo "case $1: SKIP - $2"
}
wait_until() { # wait_until SECONDS CMD...: poll every 0.5 s
  local end=$((SECONDS + $1))
  shift
  while :; do
    "$@" && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.5
  done
}

# ---- topology -------------------------------------------------------------------------------
nat_rules() { # nat_rules ROUTER-NS eim|sym
  local how=masquerade
  [ "$2" = sym ] && how="masquerade random,fully-random"
  ip netns exec "$1" nft -f - <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "wan" $how; }
}
table ip filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related counter accept
    iifname "lan" oifname "wan" counter accept
    counter
  }
  chain input { type filter hook input priority filter; policy accept; iifname "wan" ct state new counter drop; }
}
NFT
}
lab_up() { # lab_up CASE MODE... (one router + host per mode): 0 or 1
  local c=$1 i=0 m
  shift
  L=$ID$c
  NHOSTS=$#
  PEER_PID=()
  RDV_PID=""
  ip netns add "${L}pub" || return 1
  ip -n "${L}pub" link set lo up &&
    ip -n "${L}pub" link add br0 type bridge &&
    ip -n "${L}pub" link set br0 up &&
    ip -n "${L}pub" addr add $PUB_IP/24 dev br0 || return 1
  for m in "$@"; do
    i=$((i + 1))
    ip netns add "${L}r$i" && ip netns add "${L}h$i" || return 1
    ip -n "${L}r$i" link set lo up &&
      ip -n "${L}h$i" link set lo up &&
      ip -n "${L}r$i" link add wan type veth peer name p$i netns "${L}pub" &&
      ip -n "${L}pub" link set p$i master br0 &&
      ip -n "${L}pub" link set p$i up &&
      ip -n "${L}r$i" addr add 203.0.113.1$i/24 dev wan &&
      ip -n "${L}r$i" link set wan up &&
      ip -n "${L}r$i" link add lan type veth peer name eth0 netns "${L}h$i" &&
      ip -n "${L}r$i" addr add 10.0.$i.1/24 dev lan &&
      ip -n "${L}r$i" link set lan up &&
      ip -n "${L}h$i" addr add 10.0.$i.2/24 dev eth0 &&
      ip -n "${L}h$i" link set eth0 up &&
      ip -n "${L}h$i" route add default via 10.0.$i.1 &&
      ip netns exec "${L}r$i" sysctl -qw net.ipv4.ip_forward=1 &&
      nat_rules "${L}r$i" "$m" || return 1
  done
  say "lab $c: pub $PUB_IP, $(i=0; for m in "$@"; do i=$((i + 1)); printf 'h%d 10.0.%d.2 behind %s NAT 203.0.113.1%d; ' $i $i $m $i; done)"
}

# ---- goop2-rendezvous (with its relay) in pub ------------------------------------------------
RDV_PID=""
rdv_config() { # rdv_config CASE [EXTRA-JSON-PRESENCE-KEYS]
  mkdir -p "$T/$1/rdv"
  cat >"$T/$1/rdv/goop.json" <<JSON
{
  "presence": {
    "rendezvous_host": true,
    "rendezvous_bind": "$PUB_IP",
    "rendezvous_port": 8787,
    "external_url": "$RDV_URL",
    "relay_port": $RELAY_PORT${2:+,
    $2}
  },
  "viewer": {"http_addr": ""}
}
JSON
}
rdv_start() { # rdv_start CASE: 0 once /healthz answers
  local d=$T/$1/rdv
  ip netns exec "${L}pub" "$RDV" -dir "$d" >>"$d/out" 2>>"$d/err" &
  RDV_PID=$!
  PIDS+=("$RDV_PID")
  wait_until 30 rdv_get /healthz >/dev/null
}
rdv_get() { # rdv_get PATH: body on stdout, 0 on HTTP 200
  ip netns exec "${L}pub" curl -fsS -m 5 "$RDV_URL$1" 2>/dev/null
}
relay_status() { # HTTP status of GET /relay
  ip netns exec "${L}pub" curl -s -o /dev/null -w '%{http_code}' -m 5 "$RDV_URL/relay" 2>/dev/null
}
metric() { # metric NAME: value from /metrics (0 if absent)
  rdv_get /metrics | awk -v n="$1" '$1 == n {print $2; f = 1} END {if (!f) print 0}'
}
metric_ge() { [ "$(metric "$1")" -ge "$2" ] 2>/dev/null; }
announces_circuit() { # announces_circuit I: peer I's presence on the server lists a /p2p-circuit address
  ip netns exec "${L}pub" curl -s -N -m 2 "$RDV_URL/events" 2>/dev/null | python3 -c '
import json, sys
found = False
for line in sys.stdin:
    if line.startswith("data:"):
        try:
            m = json.loads(line[5:])
        except ValueError:
            continue
        if m.get("peerId") == sys.argv[1]:
            found = any("/p2p-circuit" in a for a in m.get("addrs") or [])
sys.exit(0 if found else 1)' "${PEER_ID[$1]}"
}

# ---- goop2 peers in h<i> ---------------------------------------------------------------------
declare -A PEER_ID PEER_PID
peer_start() { # peer_start CASE I: 0 once the viewer answers
  local c=$1 i=$2 d=$T/$1/h$2
  mkdir -p "$d/site"
  cat >"$d/goop.json" <<JSON
{
  "p2p": {"listen_port": 4001, "mdns": false, "relay_reserve": true, "hole_punching": true},
  "presence": {"rendezvous_wan": "$RDV_URL", "heartbeat_seconds": 2, "ttl_seconds": 30},
  "profile": {"label": "h$i"},
  "viewer": {"http_addr": "127.0.0.1:8080"}
}
JSON
  printf '<!doctype html><title>h%s</title><p>nat-lab site of h%s</p>\n' "$i" "$i" >"$d/site/index.html"
  local v=()
  [ "${NAT_LAB_VERBOSE:-0}" = 1 ] && v=(-v)
  ip netns exec "${L}h$i" "$GOOP2" "${v[@]}" -dir "$d" >"$d/out" 2>"$d/err" &
  PEER_PID[$i]=$!
  PIDS+=("$!")
  wait_until 30 grep -qs 'Viewer:' "$d/out" || return 1
  PEER_ID[$i]=$(sed -n 's/^ *Peer ID: *\(12D3[A-Za-z0-9]*\).*/\1/p' "$d/out" | head -n 1)
  [ -n "${PEER_ID[$i]}" ] && wait_until 30 viewer "$i" GET /api/self >/dev/null
}
viewer() { # viewer I METHOD PATH [JSON-BODY [CSRF]]: body on stdout, then a last line "HTTP <code>"
  local i=$1 m=$2 p=$3 body=${4:-} tok=${5:-}
  local args=(-s -m 20 -X "$m" -w '\nHTTP %{http_code}\n')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  [ -n "$tok" ] && args+=(-H "X-Goop-CSRF: $tok")
  ip netns exec "${L}h$i" curl "${args[@]}" "http://127.0.0.1:8080$p" 2>/dev/null
}
http_code() { tail -n 1 | sed -n 's/^HTTP //p'; }
http_body() { sed '$d'; }
csrf() { # csrf I: the owner's CSRF token of peer I
  viewer "$1" GET /api/csrf | http_body | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null
}
conn() { # conn I J: how peer I is connected to peer J per I's /api/peers: direct, relayed,
  # none, unlisted (J not in the list) or nofield (the list has no Conn field)
  viewer "$1" GET /api/peers | http_body | python3 -c '
import json, sys
try:
    peers = json.load(sys.stdin)
except ValueError:
    print("unlisted"); sys.exit(0)
if isinstance(peers, dict):
    peers = peers.get("peers", list(peers.values()))
for p in peers:
    if isinstance(p, dict) and p.get("ID") == sys.argv[1]:
        print(p.get("Conn", "nofield")); sys.exit(0)
print("unlisted")' "${PEER_ID[$2]}"
}
lists() { local s; s=$(conn "$1" "$2"); [ "$s" != unlisted ]; }
conn_is() { # conn_is I J STATE...
  local s
  s=$(conn "$1" "$2")
  shift 2
  for w in "$@"; do [ "$s" = "$w" ] && return 0; done
  return 1
}
browse() { # browse I J: I fetches J's start page through its viewer (/p/<id>/): 0 on 200 + marker
  local out
  out=$(viewer "$1" GET "/p/${PEER_ID[$2]}/")
  [ "$(printf '%s\n' "$out" | http_code)" = 200 ] && printf '%s' "$out" | grep -q "nat-lab site of h$2"
}
has_relay_client() { # does this goop2 reserve relay slots? (a feature probe on the binary)
  grep -aq 'slot reserved' "$GOOP2"
}

# shutdown_check CASE: stop the peers and the server (SIGTERM); SHUT gets "<problem>;" for
# every process that did not exit 0 and every sanitizer report in the logs
shutdown_check() {
  local c=$1 i rc f
  SHUT=""
  for i in "${!PEER_PID[@]}"; do
    stop_pid "${PEER_PID[$i]}"
    rc=$?
    [ $rc = 0 ] || SHUT="$SHUT goop2 in h$i exited with $rc on SIGTERM;"
  done
  PEER_PID=()
  if [ -n "$RDV_PID" ]; then
    stop_pid "$RDV_PID"
    rc=$?
    [ $rc = 0 ] || SHUT="$SHUT goop2-rendezvous exited with $rc on SIGTERM;"
    RDV_PID=""
  fi
  for f in "$T/$c"/*/err; do
    [ -f "$f" ] || continue
    grep -q 'Sanitizer\|runtime error:' "$f" && SHUT="$SHUT sanitizer report in ${f#"$T"/};"
  done
  return 0
}

# Common start of cases a-d: relay config, rendezvous, peers; 0 ready, 1 failed (FAIL
# printed), 2 skipped (SKIP printed).
start_all() { # start_all CASE NPEERS-TO-START [EXTRA-RELAY-KEYS]
  local c=$1 n=$2 i j
  rdv_config "$c" "${3:-}"
  if ! rdv_start "$c"; then
    case_fail "$c" "goop2-rendezvous did not come up on $RDV_URL"
    return 1
  fi
  local st
  st=$(relay_status)
  if [ "$st" = 404 ]; then
    case_skip "$c" "the rendezvous server runs no relay (GET /relay is 404: relay_port not supported yet)"
    return 2
  fi
  if [ "$st" != 200 ]; then
    case_fail "$c" "GET /relay answered $st"
    return 1
  fi
  say "relay: $(rdv_get /relay)"
  for i in $(seq 1 "$n"); do
    if ! peer_start "$c" "$i"; then
      case_fail "$c" "goop2 in h$i did not start"
      return 1
    fi
    say "h$i: ${PEER_ID[$i]}"
  done
  # presence through the rendezvous server: everybody lists everybody
  for i in $(seq 1 "$n"); do
    for j in $(seq 1 "$n"); do
      [ "$i" = "$j" ] && continue
      if ! wait_until 60 lists "$i" "$j"; then
        case_fail "$c" "h$i does not list h$j after 60 s (presence through $RDV_URL)"
        return 1
      fi
    done
  done
  if [ "$(conn 1 2)" = nofield ]; then
    case_skip "$c" "/api/peers has no Conn field (direct/relayed/none) yet"
    return 2
  fi
  # every started peer holds a reservation
  if ! wait_until 90 metric_ge goop_relay_reservations "$n"; then
    if has_relay_client; then
      case_fail "$c" "the relay holds $(metric goop_relay_reservations) reservations after 90 s, expected $n"
      return 1
    fi
    case_skip "$c" "goop2 has no relay client yet (no reservation made)"
    return 2
  fi
  # ... and announces its circuit address in presence
  for i in $(seq 1 "$n"); do
    if ! wait_until 60 announces_circuit "$i"; then
      case_fail "$c" "h$i's presence on the server lists no /p2p-circuit address 60 s after its reservation"
      return 1
    fi
  done
  return 0
}
# connect I J STATE... [-- SECONDS]: I visits J's site until I's Conn for J is one of STATE
connect_until() {
  local i=$1 j=$2 secs=120 states=() s
  shift 2
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then
      secs=$2
      break
    fi
    states+=("$1")
    shift
  done
  local end=$((SECONDS + secs)) visits=0 out
  while :; do
    conn_is "$i" "$j" "${states[@]}" && return 0
    [ $SECONDS -ge $end ] && return 1
    s=$(conn "$i" "$j")
    if [ "$s" = none ] || [ "$s" = unlisted ]; then
      out=$(viewer "$i" GET "/p/${PEER_ID[$j]}/")
      visits=$((visits + 1))
      # how the first visit went is worth knowing (not a verdict): a user sees that page
      [ $visits = 1 ] && say "first visit h$i -> h$j: HTTP $(printf '%s\n' "$out" | http_code)$(printf '%s\n' "$out" |
        http_body | sed -n 's/.*<p>The peer could not be reached[^:]*: *\([^<]*\)<.*/: \1/p')"
    fi
    sleep 1
  done
}
final_line() { # final_line CASE I J [NOTE]
  local s
  s=$(conn "$2" "$3")
  case $s in direct | relayed | none) ;; *) s="none ($s)" ;; esac
  echo "case $1: final connection $s${4:+ ($4)}"
  FINAL=${s%% *}
}

# ---- case lab: the NAT itself ----------------------------------------------------------------
sock() { # sock NS PYTHON-ARGS...: the small socket tool below, run inside NS
  local ns=$1
  shift
  ip netns exec "$ns" timeout 20 python3 "$T/sock.py" "$@"
}
cat >"$T/sock.py" <<'PY'
import socket, sys, time
def bound(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", port))
    return s
cmd = sys.argv[1]
if cmd == "serve":          # serve PORT N: print the peer address of N connections
    s = bound(int(sys.argv[2])); s.listen(16)
    print("ready", flush=True)
    for _ in range(int(sys.argv[3])):
        c, a = s.accept(); print("%s:%d" % a, flush=True); c.close()
elif cmd == "dial":         # dial SRCPORT HOST PORT [TIMEOUT]: exit 0 if connected
    s = bound(int(sys.argv[2])); s.settimeout(float(sys.argv[5]) if len(sys.argv) > 5 else 5)
    try:
        s.connect((sys.argv[3], int(sys.argv[4])))
    except OSError as e:
        print("dial: %s" % e); sys.exit(1)
    s.close(); sys.exit(0)
elif cmd == "listen":       # listen PORT SECONDS
    s = bound(int(sys.argv[2])); s.listen(4); s.settimeout(float(sys.argv[3]))
    print("ready", flush=True)
    try:
        s.accept(); print("accepted"); sys.exit(0)
    except OSError:
        sys.exit(1)
elif cmd == "simopen":      # simopen PORT HOST PORT: TCP simultaneous open (both sides connect)
    s = bound(int(sys.argv[2])); s.settimeout(8)
    try:
        s.connect((sys.argv[3], int(sys.argv[4])))
        s.sendall(b"x"); ok = s.recv(1) == b"x"
    except OSError as e:
        print("simopen: %s" % e); sys.exit(1)
    print("simopen: connected %s:%d -> %s:%d" % (s.getsockname() + s.getpeername()))
    sys.exit(0 if ok else 1)
PY

case_lab() {
  local c=lab ok=1 why="" out
  mkdir -p "$T/$c"
  if ! lab_up $c eim sym; then
    case_fail $c "cannot build the lab (ip netns/veth/bridge/nft failed)"
    lab_down
    return
  fi
  # two connections from 10.0.<i>.2:40000 to pub: EIM keeps the port, symmetric does not
  sock "${L}pub" serve 9000 4 >"$T/$c/seen" &
  local srv=$!
  wait_until 10 grep -q ready "$T/$c/seen"
  for i in 1 1 2 2; do
    sock "${L}h$i" dial 40000 $PUB_IP 9000 || {
      ok=0
      why="$why h$i cannot reach pub through its NAT;"
    }
    sleep 0.3 # the closed socket's port is reused by the next dial
  done
  wait $srv
  out=$(grep -v ready "$T/$c/seen" | tr '\n' ' ')
  say "pub saw: $out"
  [ "$(grep -c '^203.0.113.11:40000$' "$T/$c/seen")" = 2 ] || {
    ok=0
    why="$why eim NAT did not keep source port 40000 ($out);"
  }
  [ "$(grep -c '^203.0.113.12:' "$T/$c/seen")" = 2 ] && ! grep -q '^203.0.113.12:40000$' "$T/$c/seen" &&
    [ "$(grep '^203.0.113.12:' "$T/$c/seen" | sort -u | wc -l)" = 2 ] || {
    ok=0
    why="$why sym NAT did not randomise the port per connection ($out);"
  }
  # unsolicited inbound: nothing reaches h1's listener, not through the router's public
  # address nor by routing to its private one
  ip netns exec "${L}pub" ip route add 10.0.1.0/24 via 203.0.113.11
  sock "${L}h1" listen 4001 8 >"$T/$c/inbound" &
  local lst=$!
  wait_until 10 grep -q ready "$T/$c/inbound"
  if sock "${L}pub" dial 0 203.0.113.11 4001 3 >/dev/null || sock "${L}pub" dial 0 10.0.1.2 4001 3 >/dev/null; then
    ok=0
    why="$why an unsolicited inbound connection got through;"
  fi
  wait $lst && {
    ok=0
    why="$why h1 accepted an unsolicited connection;"
  }
  ip netns exec "${L}pub" ip route del 10.0.1.0/24
  # simultaneous open: through eim + eim works, through eim + sym does not
  nat_rules_reset "${L}r2" eim
  sock "${L}h1" simopen 5001 203.0.113.12 5001 >"$T/$c/so1" &
  local a=$!
  sock "${L}h2" simopen 5001 203.0.113.11 5001 >"$T/$c/so2"
  local rb=$?
  wait $a
  local ra=$?
  say "eim+eim: $(cat "$T/$c/so1" "$T/$c/so2" | tr '\n' ' ')"
  [ $ra = 0 ] && [ $rb = 0 ] || {
    ok=0
    why="$why TCP simultaneous open failed through two eim NATs;"
  }
  nat_rules_reset "${L}r2" sym
  sock "${L}h1" simopen 5002 203.0.113.12 5002 >"$T/$c/so3" &
  a=$!
  sock "${L}h2" simopen 5002 203.0.113.11 5002 >"$T/$c/so4"
  rb=$?
  wait $a
  ra=$?
  say "eim+sym: $(cat "$T/$c/so3" "$T/$c/so4" | tr '\n' ' ')"
  [ $ra != 0 ] && [ $rb != 0 ] || {
    ok=0
    why="$why TCP simultaneous open got through a symmetric NAT;"
  }
  if [ $ok = 1 ]; then
    echo "case lab: final connection direct (TCP simultaneous open through eim+eim; none through eim+sym)"
    case_pass $c "masquerade keeps ports, fully-random changes them, inbound blocked, hole punching possible only without the symmetric NAT"
  else
    echo "case lab: final connection none"
    case_fail $c "$why"
  fi
  lab_down
}
nat_rules_reset() { # nat_rules_reset ROUTER-NS eim|sym
  ip netns exec "$1" nft delete table ip nat
  ip netns exec "$1" nft delete table ip filter
  nat_rules "$1" "$2"
}

# ---- case a: eim + eim -> direct -------------------------------------------------------------
case_a() {
  local c=a rc
  if ! lab_up $c eim eim; then
    case_fail $c "cannot build the lab"
    lab_down
    return
  fi
  start_all $c 2
  rc=$?
  if [ $rc != 0 ]; then
    lab_down
    return
  fi
  # h1 visits h2: first through the relay, then DCUtR should make it direct
  if ! connect_until 1 2 direct -- 180; then
    final_line $c 1 2
    case_fail $c "h1-h2 did not become direct within 180 s (now $(conn 1 2)/$(conn 2 1))"
    lab_down
    return
  fi
  wait_until 30 conn_is 2 1 direct
  local fail=""
  browse 1 2 || fail="$fail h1 cannot browse h2 over the direct connection;"
  browse 2 1 || fail="$fail h2 cannot browse h1 over the direct connection;"
  conn_is 2 1 direct || fail="$fail h2 sees $(conn 2 1) for h1;"
  final_line $c 1 2 "h2 sees $(conn 2 1)"
  say "relay: $(metric goop_relay_circuits_opened_total) circuits opened, $(metric goop_relay_circuits) open"
  [ "$FINAL" = direct ] || fail="$fail final connection $FINAL, expected direct;"
  shutdown_check $c
  fail="$fail$SHUT"
  if [ -z "$fail" ]; then
    case_pass $c "hole punching through two endpoint-independent NATs"
  else
    case_fail $c "$fail"
  fi
  lab_down
}

# ---- case b: eim + sym -> relayed, site and data ops through the relay -----------------------
data_ops() { # data_ops I J: I inserts into and queries J's public table through the viewer
  local i=$1 j=$2 tj ti out
  tj=$(csrf "$j")
  ti=$(csrf "$i")
  [ -n "$tj" ] && [ -n "$ti" ] || {
    echo "no CSRF token"
    return 1
  }
  out=$(viewer "$j" POST /api/data/tables/create '{"name":"guestbook","columns":[{"name":"msg","type":"TEXT"}]}' "$tj")
  [ "$(printf '%s\n' "$out" | http_code)" = 200 ] || {
    echo "h$j: create table: $out"
    return 1
  }
  out=$(viewer "$j" POST /api/data/tables/set-policy '{"table":"guestbook","policy":"public"}' "$tj")
  [ "$(printf '%s\n' "$out" | http_code)" = 200 ] || {
    echo "h$j: set-policy: $out"
    return 1
  }
  out=$(viewer "$i" POST "/api/p/${PEER_ID[$j]}/data/insert" \
    '{"table":"guestbook","data":{"msg":"hello through the relay"}}' "$ti")
  [ "$(printf '%s\n' "$out" | http_code)" = 200 ] && printf '%s' "$out" | grep -q inserted || {
    echo "h$i: insert at h$j: $out"
    return 1
  }
  out=$(viewer "$i" POST "/api/p/${PEER_ID[$j]}/data/query" '{"table":"guestbook"}' "$ti")
  [ "$(printf '%s\n' "$out" | http_code)" = 200 ] &&
    printf '%s' "$out" | http_body | python3 -c '
import json, sys
rows = json.load(sys.stdin)
sys.exit(0 if any(r.get("msg") == "hello through the relay" and r.get("_owner") == sys.argv[1] for r in rows) else 1)' \
    "${PEER_ID[$i]}" || {
    echo "h$i: query at h$j: $out"
    return 1
  }
  out=$(viewer "$j" POST /api/data/query '{"table":"guestbook"}' "$tj")
  printf '%s' "$out" | grep -q 'hello through the relay' || {
    echo "h$j's own query does not show the row: $out"
    return 1
  }
  out=$(viewer "$i" POST "/api/p/${PEER_ID[$j]}/data/tables/create" \
    '{"name":"t","columns":[{"name":"a","type":"TEXT"}]}' "$ti")
  [ "$(printf '%s\n' "$out" | http_code)" = 500 ] || {
    echo "h$i: schema op at h$j was not refused: $out"
    return 1
  }
  return 0
}
case_b() {
  local c=b rc fail="" msg
  if ! lab_up $c eim sym; then
    case_fail $c "cannot build the lab"
    lab_down
    return
  fi
  start_all $c 2
  rc=$?
  if [ $rc != 0 ]; then
    lab_down
    return
  fi
  if ! connect_until 1 2 relayed direct -- 120; then
    final_line $c 1 2
    case_fail $c "h1 could not reach h2 within 120 s (now $(conn 1 2))"
    lab_down
    return
  fi
  wait_until 30 conn_is 2 1 relayed direct
  browse 1 2 || fail="$fail h1 cannot browse h2's site through the relay;"
  browse 2 1 || fail="$fail h2 cannot browse h1's site through the relay;"
  msg=$(data_ops 1 2) || fail="$fail data ops h1->h2: $msg;"
  msg=$(data_ops 2 1) || fail="$fail data ops h2->h1: $msg;"
  final_line $c 1 2 "h2 sees $(conn 2 1)"
  say "relay: $(metric goop_relay_circuits) circuits open, $(metric goop_relay_bytes_total) bytes relayed"
  [ "$FINAL" = relayed ] || fail="$fail final connection $FINAL, expected relayed (symmetric NAT);"
  shutdown_check $c
  fail="$fail$SHUT"
  if [ -z "$fail" ]; then
    case_pass $c "site and data ops through the relay behind a symmetric NAT"
  else
    case_fail $c "$fail"
  fi
  lab_down
}

# ---- case c: relay limits --------------------------------------------------------------------
case_c() {
  local c=c rc fail="" out refused0 body
  if ! lab_up $c eim sym sym; then
    case_fail $c "cannot build the lab"
    lab_down
    return
  fi
  start_all $c 2 '"relay_max_reservations": 2, "relay_max_circuits": 1'
  rc=$?
  if [ $rc != 0 ]; then
    lab_down
    return
  fi
  if ! connect_until 1 2 relayed -- 120; then
    final_line $c 1 2
    case_fail $c "h1 could not reach h2 through the relay within 120 s (now $(conn 1 2))"
    lab_down
    return
  fi
  # a third peer: its reservation is over the limit
  if ! peer_start $c 3; then
    case_fail $c "goop2 in h3 did not start"
    lab_down
    return
  fi
  if wait_until 90 grep -qi 'reservation.*limit' "$T/$c/h3/err"; then
    say "h3: $(grep -i 'reservation.*limit' "$T/$c/h3/err" | head -n 1)"
  else
    fail="$fail h3 logged no reservation error naming the limit;"
  fi
  metric_ge goop_relay_reservations_refused_total 1 || fail="$fail relay counted no refused reservation;"
  # ... and its circuit to h1 too (h1 already has the one circuit the relay allows)
  wait_until 60 lists 3 1 || fail="$fail h3 does not list h1;"
  refused0=$(metric goop_relay_circuits_refused_total)
  out=$(viewer 3 GET "/p/${PEER_ID[1]}/")
  body=$(printf '%s\n' "$out" | http_body | head -c 300)
  say "h3 -> h1: HTTP $(printf '%s\n' "$out" | http_code): $body"
  [ "$(printf '%s\n' "$out" | http_code)" != 200 ] || fail="$fail h3 reached h1 beyond the circuit limit;"
  metric_ge goop_relay_circuits_refused_total $((refused0 + 1)) || fail="$fail relay counted no refused circuit;"
  printf '%s' "$body" | grep -qi 'limit' || grep -qi 'circuit.*limit\|limit.*circuit' "$T/$c/h3/err" ||
    fail="$fail no error naming the limit for h3's circuit (viewer said: $body);"
  echo "case c: h3 -> h1 connection $(conn 3 1)"
  # the relay stays up for the others
  kill -0 "$RDV_PID" 2>/dev/null || fail="$fail goop2-rendezvous died;"
  rdv_get /healthz >/dev/null || fail="$fail /healthz does not answer;"
  browse 1 2 || fail="$fail h1 cannot browse h2 any more;"
  browse 2 1 || fail="$fail h2 cannot browse h1 any more;"
  final_line $c 1 2 "h1-h2 kept; h3 refused"
  [ "$FINAL" = relayed ] || fail="$fail h1-h2 final connection $FINAL, expected relayed;"
  shutdown_check $c
  fail="$fail$SHUT"
  if [ -z "$fail" ]; then
    case_pass $c "over-limit reservation and circuit refused with 'limit reached', relay kept serving h1-h2"
  else
    case_fail $c "$fail"
  fi
  lab_down
}

# ---- case d: relay restart -------------------------------------------------------------------
case_d() {
  local c=d rc fail="" rid1 rid2 acc0
  if ! lab_up $c eim sym; then
    case_fail $c "cannot build the lab"
    lab_down
    return
  fi
  start_all $c 2
  rc=$?
  if [ $rc != 0 ]; then
    lab_down
    return
  fi
  if ! connect_until 1 2 relayed -- 120 || ! browse 1 2; then
    final_line $c 1 2
    case_fail $c "h1 could not reach h2 through the relay before the restart (now $(conn 1 2))"
    lab_down
    return
  fi
  rid1=$(rdv_get /relay | python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])')
  say "stopping goop2-rendezvous (relay $rid1)"
  stop_pid "$RDV_PID"
  rc=$?
  say "goop2-rendezvous exited with $rc"
  [ $rc = 0 ] || fail="$fail goop2-rendezvous exited with $rc on SIGTERM;"
  # the relayed connection is gone with the relay
  wait_until 60 conn_is 1 2 none || fail="$fail h1 still sees $(conn 1 2) for h2 after the relay stopped;"
  echo "case d: connection while the relay is down $(conn 1 2)"
  if ! rdv_start $c; then
    case_fail $c "goop2-rendezvous did not restart"
    lab_down
    return
  fi
  rid2=$(rdv_get /relay | python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])')
  [ "$rid1" = "$rid2" ] || fail="$fail the relay's Peer ID changed across the restart ($rid1 -> $rid2);"
  acc0=$(metric goop_relay_reservations_accepted_total)
  wait_until 180 metric_ge goop_relay_reservations 2 ||
    fail="$fail the restarted relay holds $(metric goop_relay_reservations) reservations after 180 s, expected 2;"
  say "after the restart: $(metric goop_relay_reservations) reservations ($acc0 accepted when it came up)"
  if connect_until 1 2 relayed direct -- 180; then
    browse 1 2 || fail="$fail h1 cannot browse h2 after the restart;"
    wait_until 30 conn_is 2 1 relayed direct
    browse 2 1 || fail="$fail h2 cannot browse h1 after the restart;"
  else
    fail="$fail h1 did not reconnect to h2 within 180 s;"
  fi
  final_line $c 1 2 "after the relay restart"
  [ "$FINAL" = relayed ] || fail="$fail final connection $FINAL, expected relayed;"
  shutdown_check $c
  fail="$fail$SHUT"
  if [ -z "$fail" ]; then
    case_pass $c "re-reserved on the restarted relay and reconnected through it"
  else
    case_fail $c "$fail"
  fi
  lab_down
}

# ---- main ------------------------------------------------------------------------------------
ip netns add "${ID}probe" 2>/dev/null || skip_all "cannot create network namespaces (ip netns add failed)"
if ! ip netns exec "${ID}probe" nft add table ip probe 2>"$T/nft.err"; then
  ip netns del "${ID}probe"
  skip_all "nftables does not work here: $(cat "$T/nft.err")"
fi
ip netns del "${ID}probe"

for c in $CASES; do
  echo "# ==== case $c"
  mkdir -p "$T/$c"
  FINAL=none
  "case_$c"
done
echo "# ==== summary"
for c in $CASES; do echo "# case $c: ${RESULT[$c]:-not run}"; done
echo "nat-lab: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ $FAILED -eq 0 ] || exit 1
[ $SKIPPED -eq 0 ] || exit 77
exit 0
