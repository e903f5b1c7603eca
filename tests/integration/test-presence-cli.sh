#!/usr/bin/env bash
# Presence through real goop2 processes: a peer killed with SIGKILL leaves the
# others' peer lists after presence.ttl_seconds; a peer stopped cleanly leaves at
# once (its offline message). Usage: test-presence-cli.sh path/to/goop2 (TAP)
set -u
GOOP2=${1:?usage: $0 path/to/goop2}
T=$(mktemp -d)
n=0; failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export GOOP2_VIEWER_ADDR=127.0.0.1:0

start() { # name [bootstrap]
  local d=$T/$1
  mkdir -p "$d"
  python3 - "$d/goop.json" "${2:-}" "$1" <<'PY'
import json, sys
c = {"p2p": {"mdns_tag": "presence-cli-" + sys.argv[3]},
     "presence": {"heartbeat_seconds": 1, "ttl_seconds": 3},
     "profile": {"label": sys.argv[3]}}
if sys.argv[2]:
    c["p2p"]["bootstrap"] = [sys.argv[2]]
json.dump(c, open(sys.argv[1], "w"))
PY
  "$GOOP2" -dir "$d" >"$d/out" 2>"$d/err" &
  pids+=($!)
  eval "PID_$1=$!"
  for _ in $(seq 1 100); do grep -q 'Viewer:' "$d/out" 2>/dev/null && break; sleep 0.1; done
}
url() { awk '/Viewer:/{print $2; exit}' "$T/$1/out"; }
addr() { grep -oE '/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/[A-Za-z0-9]+' "$T/$1/out" | head -1; }
pid_of() { awk '/Peer ID:/{print $3; exit}' "$T/$1/out"; }
# lists NAME PEER -> 0 if NAME's viewer lists PEER
lists() { curl -fs "$(url "$1")api/peers" | grep -q "$(pid_of "$2")"; }
# presence_seen NAME PEER -> 0 once NAME got PEER's presence (Verified is set by presence only)
presence_seen() {
  curl -fs "$(url "$1")api/peers" | python3 -c 'import json,sys
want = sys.argv[1]
sys.exit(0 if any(p["ID"] == want and p["Verified"] for p in json.load(sys.stdin)) else 1)' "$(pid_of "$2")"
}
wait_for() { # seconds, command...
  local s=$1; shift
  for _ in $(seq 1 $((s * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}

start alice
start bob "$(addr alice)"
if wait_for 10 presence_seen alice bob; then ok "alice got bob's presence"; else notok "alice got bob's presence"; fi
kill -9 "$PID_bob"
sleep 1
if lists alice bob; then ok "bob killed with SIGKILL: still listed 1 s later (no offline message)"; else notok "bob killed with SIGKILL: still listed 1 s later (no offline message)"; fi
if wait_for 6 bash -c "! curl -fs '$(url alice)api/peers' | grep -q '$(pid_of bob)'"; then ok "bob gone from alice's list after the TTL"; else notok "bob gone from alice's list after the TTL"; fi

start carol "$(addr alice)"
if wait_for 10 presence_seen alice carol; then ok "alice got carol's presence"; else notok "alice got carol's presence"; fi
kill -TERM "$PID_carol"
t0=$(date +%s%N)
if wait_for 3 bash -c "! curl -fs '$(url alice)api/peers' | grep -q '$(pid_of carol)'"; then
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ "$ms" -lt 2500 ]; then ok "carol stopped cleanly: gone at once (${ms} ms, TTL is 3 s)"; else notok "carol gone only after ${ms} ms"; fi
else
  notok "carol stopped cleanly: gone at once"
fi
wait "$PID_carol"; rc=$?
if [ "$rc" -eq 0 ]; then ok "carol exits 0"; else notok "carol exits 0 (got $rc)"; fi

echo "1..$n"
[ $failed -eq 0 ]
