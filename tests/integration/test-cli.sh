#!/usr/bin/env bash
# Integration test of the goop2 command line. Usage: test-cli.sh path/to/goop2
# Prints TAP. Uses tests/data/js-keys.json (next to this script) when present.
set -u

GOOP2=${1:?usage: $0 path/to/goop2}
case $GOOP2 in /*) ;; *) GOOP2=$PWD/$GOOP2 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$HERE/../data

# Every peer started here gets a viewer on a free port (several run at once).
export GOOP2_VIEWER_ADDR=127.0.0.1:0

T=$(mktemp -d "${TMPDIR:-/tmp}/goop-test-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
  n=$((n + 1))
  failed=$((failed + 1))
  echo "not ok $n - $1"
}
check() { # check "description" command...
  local d=$1
  shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else notok "$d"; fi
}
diag() { sed 's/^/# /' "$@"; }

# run DESC EXPECTED_EXIT args... : runs goop2, keeps stdout in $T/out and stderr in $T/err
run() {
  local d=$1 want=$2
  shift 2
  "$GOOP2" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$want" = nonzero ]; then
    if [ $rc -ne 0 ]; then ok "$d (exit $rc)"; else notok "$d (exit 0)"; fi
  elif [ $rc -eq "$want" ]; then
    ok "$d"
  else
    notok "$d (exit $rc, want $want)"
    diag "$T/out" "$T/err"
  fi
}

# run_peer DESC args... : starts a peer, waits for its listen addresses, stops it
# with SIGTERM and expects a clean exit 0. stdout/stderr as for run().
run_peer() {
  local d=$1
  shift
  "$GOOP2" "$@" >"$T/out" 2>"$T/err" &
  local pid=$! i
  for i in $(seq 1 100); do
    grep -q '/p2p/12D3KooW' "$T/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  local rc=$?
  if [ $rc -eq 0 ] && grep -q '/p2p/12D3KooW' "$T/out"; then
    ok "$d"
  else
    notok "$d (exit $rc)"
    diag "$T/out" "$T/err"
  fi
}

file_mode() { stat -c %a "$1" 2>/dev/null; }
file_size() { stat -c %s "$1" 2>/dev/null; }

P=$T/peer

# ---- first start creates the peer directory -------------------------------------------
run_peer "goop2 -dir on a missing directory succeeds" -dir "$P"
check "peer directory created" test -d "$P"
check "goop.json created" test -f "$P/goop.json"
check "goop.json is valid JSON with every key" python3 - "$P/goop.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
want = {
  "identity": ["key_file"],
  "paths": ["site_root", "site_source", "site_stage"],
  "p2p": ["listen_port", "mdns_tag", "bootstrap", "relay_reserve", "hole_punching", "mdns"],
  "presence": ["topic", "ttl_seconds", "heartbeat_seconds", "rendezvous_host", "rendezvous_port",
               "rendezvous_bind", "rendezvous_wan", "rendezvous_only", "admin_password", "templates_dir",
               "templates_dirs", "peer_db_path", "external_url", "relay_port", "relay_key_file",
               "relay_circuit_seconds", "relay_circuit_bytes", "relay_reservation_seconds",
               "relay_max_reservations", "relay_max_reservations_per_ip", "relay_max_circuits",
               "relay_max_circuits_per_peer", "rendezvous_max_subscribers",
               "rendezvous_max_subscribers_per_ip", "rendezvous_subscriber_queue",
               "rendezvous_publish_per_minute", "rendezvous_max_peers", "rendezvous_trusted_proxies",
               "credits_url", "registration_url", "email_url", "credits_admin_token",
               "registration_admin_token"],
  "profile": ["label", "email"],
  "viewer": ["http_addr", "debug", "theme", "preferred_cam", "preferred_mic", "video_disabled",
             "hide_unverified"],
  "lua": ["enabled", "script_dir", "timeout_seconds", "max_memory_mb", "rate_limit_per_peer",
          "rate_limit_global", "http_enabled", "kv_enabled"],
}
assert list(c) == list(want), list(c)
for s, keys in want.items():
    assert list(c[s]) == keys, (s, list(c[s]))
assert c["viewer"]["http_addr"] == "127.0.0.1:8080"
assert c["identity"]["key_file"] == "data/identity.key"
assert c["presence"]["ttl_seconds"] == 20
EOF
check "goop.json mode 0644" test "$(file_mode "$P/goop.json")" = 644
check "data/identity.key is 68 bytes" test "$(file_size "$P/data/identity.key")" = 68
check "data/identity.key mode 0600" test "$(file_mode "$P/data/identity.key")" = 600
check "data/ mode 0700" test "$(file_mode "$P/data")" = 700
check "site/index.html created" test -s "$P/site/index.html"
check "site/style.css created" test -s "$P/site/style.css"
check "index.html says hello" grep -q "Hello from Goop" "$P/site/index.html"

banner_id=$(sed -n 's/^ *Peer ID: *//p' "$T/out")
check "banner shows a 12D3KooW Peer ID" grep -Eq '^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$' <<<"$banner_id"
check "banner shows the peer directory" grep -q "$P" "$T/out"
check "banner shows the config path" grep -q "$P/goop.json" "$T/out"
check "banner shows the label" grep -Eq 'Label: +hello' "$T/out"

# ---- goop2 id ---------------------------------------------------------------------------
run "goop2 id -dir" 0 id -dir "$P"
id1=$(cat "$T/out")
check "id prints exactly the banner's Peer ID" test "$id1" = "$banner_id"
check "id prints one line" test "$(wc -l <"$T/out")" = 1
run "goop2 id DIR" 0 id "$P"
check "id is stable across runs" test "$(cat "$T/out")" = "$id1"
cp "$P/goop.json" "$T/goop.json.before"
run_peer "goop2 peer DIR (second start)" peer "$P"
check "second start keeps the Peer ID" test "$(sed -n 's/^ *Peer ID: *//p' "$T/out")" = "$id1"
check "second start leaves goop.json alone" cmp -s "$P/goop.json" "$T/goop.json.before"
run_peer "goop2 --dir=DIR" --dir="$P"

# id never creates anything
run "id on a missing directory fails" nonzero id -dir "$T/nope"
check "id error names the directory" grep -q "$T/nope" "$T/err"
check "id created no directory" test ! -e "$T/nope"
mkdir "$T/empty"
run "id on a directory without a key fails" nonzero id "$T/empty"
check "id error names the key file" grep -q "$T/empty/data/identity.key" "$T/err"
check "id created nothing" test -z "$(ls -A "$T/empty")"
run "id without a directory fails" 1 id

# ---- a corrupt key file is an error and is kept ------------------------------------------
C=$T/corrupt
mkdir -p "$C/data"
printf 'not a key file at all' >"$C/data/identity.key"
cp "$C/data/identity.key" "$T/key.before"
run "corrupt key: peer fails" nonzero -dir "$C"
check "corrupt key: message names the file" grep -q "$C/data/identity.key" "$T/err"
check "corrupt key: message starts with Error:" grep -q '^Error: ' "$T/err"
check "corrupt key: file unchanged" cmp -s "$C/data/identity.key" "$T/key.before"
run "corrupt key: id fails" nonzero id -dir "$C"
check "corrupt key: id message names the file" grep -q "$C/data/identity.key" "$T/err"
check "corrupt key: file still unchanged" cmp -s "$C/data/identity.key" "$T/key.before"

# ---- an invalid goop.json is an error and is kept ------------------------------------------
B=$T/badjson
mkdir -p "$B"
printf '{\n  "profile": {\n    "label": "x",\n  }\n}\n' >"$B/goop.json"
cp "$B/goop.json" "$T/json.before"
run "invalid goop.json: peer fails" nonzero peer "$B"
check "invalid goop.json: message has path:line:column" grep -Eq "$B/goop.json:[0-9]+:[0-9]+:" "$T/err"
check "invalid goop.json: file unchanged" cmp -s "$B/goop.json" "$T/json.before"
check "invalid goop.json: no key created" test ! -e "$B/data"
run "invalid goop.json: id fails" nonzero id "$B"
check "invalid goop.json: file still unchanged" cmp -s "$B/goop.json" "$T/json.before"

V=$T/badvalue
mkdir -p "$V"
printf '{"presence": {"ttl_seconds": 0}}\n' >"$V/goop.json"
run "invalid value: peer fails" nonzero peer "$V"
check "invalid value: exact message" grep -q "presence.ttl_seconds must be > 0" "$T/err"

# ---- a key written by js-libp2p gives js-libp2p's Peer ID ----------------------------------
if [ -f "$DATA/js-keys.json" ]; then
  J=$T/js
  mkdir -p "$J/data"
  js_id=$(python3 - "$DATA/js-keys.json" "$J/data/identity.key" <<'EOF'
import json, sys
k = json.load(open(sys.argv[1]))["ed25519"][0]
open(sys.argv[2], "wb").write(bytes.fromhex(k["private_pb_hex"]))
print(k["peer_id"])
EOF
  )
  chmod 600 "$J/data/identity.key"
  run "js-libp2p key: id" 0 id -dir "$J"
  check "js-libp2p key: same Peer ID as js-libp2p" test "$(cat "$T/out")" = "$js_id"
  run_peer "js-libp2p key: peer" peer "$J"
  check "js-libp2p key: banner Peer ID" test "$(sed -n 's/^ *Peer ID: *//p' "$T/out")" = "$js_id"
else
  echo "# tests/data/js-keys.json not found, skipping the js-libp2p key check"
fi

# ---- help, version, usage errors -----------------------------------------------------------
run "--help" 0 --help
check "--help prints usage" grep -q '^Usage: goop2' "$T/out"
run "-h" 0 -h
check "-h prints usage" grep -q '^Usage: goop2' "$T/out"
run "--version" 0 --version
check "--version prints goop2 <version>" grep -Eq '^goop2 [0-9]+\.[0-9]+\.[0-9]+' "$T/out"
run "-version" 0 -version
check "-version prints goop2 <version>" grep -Eq '^goop2 [0-9]+\.[0-9]+\.[0-9]+' "$T/out"
run "unknown command" 1 frobnicate
check "unknown command message" grep -q "^Error: unknown command 'frobnicate'" "$T/err"
check "unknown command prints usage" grep -q '^Usage: goop2' "$T/err"
run "unknown option" 1 --frobnicate
run "no arguments" 1
check "no arguments prints usage" grep -q '^Usage: goop2' "$T/err"
run "peer without directory" 1 peer
check "peer without directory message" grep -q "^Error: peer command requires directory path" "$T/err"
run "-dir without argument" 1 -dir
run "directory given twice" 1 peer "$P" -dir "$P"
run "extra argument" 1 peer "$P" extra

# ---- a running peer: ping it, and let a second peer bootstrap to it -------------------
Q=$T/peer-q
R=$T/peer-r
"$GOOP2" -dir "$Q" >"$T/q.out" 2>"$T/q.err" &
qpid=$!
for i in $(seq 1 100); do grep -q '/ip4/127.0.0.1/tcp/.*/p2p/' "$T/q.out" 2>/dev/null && break; sleep 0.1; done
QADDR=$(grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' "$T/q.out" | head -1)
check "running peer prints a loopback listen address" test -n "$QADDR"
run "goop2 ping ADDR -c 3" 0 ping "$QADDR" -c 3
check "ping prints three replies" test "$(grep -c '^pong from ' "$T/out")" -eq 3
check "ping prints a summary" grep -q '^3 pings, 3 answered' "$T/out"
run "goop2 ping to a closed port fails" 1 ping /ip4/127.0.0.1/tcp/1 -c 1
check "ping failure says why" grep -q 'connection refused' "$T/err"
run "goop2 ping with a bad multiaddr fails" 1 ping /ip4/999.1.1.1/tcp/1
check "bad multiaddr message" grep -q 'not a valid multiaddr' "$T/err"
run "goop2 ping with a bad count fails" 1 ping "$QADDR" -c 0
# second peer bootstraps to the first
mkdir -p "$R"
python3 - "$R/goop.json" "$QADDR" <<'EOF2'
import json, sys
json.dump({"p2p": {"bootstrap": [sys.argv[2]]}}, open(sys.argv[1], "w"))
EOF2
"$GOOP2" -dir "$R" >"$T/r.out" 2>"$T/r.err" &
rpid=$!
for i in $(seq 1 100); do grep -q 'connected to' "$T/r.err" 2>/dev/null && break; sleep 0.1; done
check "bootstrap peer connects to the first peer" grep -q "connected to $(basename "$QADDR") .*outbound" "$T/r.err"
check "first peer sees the inbound connection" grep -q 'connected to .*inbound' "$T/q.err"
kill -TERM "$rpid"; wait "$rpid"; rrc=$?
check "SIGTERM stops the peer with exit 0" test "$rrc" -eq 0
kill -INT "$qpid"; wait "$qpid"; qrc=$?
check "SIGINT stops the peer with exit 0" test "$qrc" -eq 0
# a port already in use is a clear error naming the key to change
QPORT=$(echo "$QADDR" | sed 's|.*/tcp/\([0-9]*\)/.*|\1|')
python3 -c "import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0); s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(1); time.sleep(3)" "$QPORT" &
holder=$!
sleep 0.3
python3 - "$Q/goop.json" "$QPORT" <<'EOF2'
import json, sys
c = json.load(open(sys.argv[1])); c["p2p"]["listen_port"] = int(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF2
run "port in use fails" 1 -dir "$Q"
check "port in use names p2p.listen_port" grep -q 'p2p.listen_port' "$T/err"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null

echo "1..$n"
[ $failed -eq 0 ]
