#!/usr/bin/env bash
# The goop2 command line against js-libp2p: `goop2 ping` pings a js-libp2p node,
# and a js-libp2p node pings and identifies a running `goop2 -dir` peer.
# Usage: interop-cli.sh path/to/goop2   (prints TAP)
set -u
GOOP2=${1:?usage: $0 path/to/goop2}
here="$(cd "$(dirname "$0")" && pwd)"
JSPEER=${GOOP_JS_PEER:-$here/js-peer.sh}
T=$(mktemp -d)
n=0; failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else notok "$d"; fi; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; exec 3>&- 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

# a js-libp2p node, driven through a fifo on its stdin
mkfifo "$T/js-in"
"$JSPEER" --listen /ip4/127.0.0.1/tcp/0 <"$T/js-in" >"$T/js-out" 2>"$T/js-err" &
pids+=($!)
exec 3>"$T/js-in"
for i in $(seq 1 600); do grep -q '"listening"' "$T/js-out" 2>/dev/null && break; sleep 0.1; done
JSADDR=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    if m.get("event") == "listening": print(m["addrs"][0]); break' "$T/js-out")
check "js-libp2p node is listening" test -n "$JSADDR"

# goop2 ping -> js
"$GOOP2" ping "$JSADDR" -c 3 >"$T/ping.out" 2>"$T/ping.err"
rc=$?
check "goop2 ping a js-libp2p node exits 0" test "$rc" -eq 0
check "goop2 ping got three answers" test "$(grep -c '^pong from ' "$T/ping.out")" -eq 3
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/ping.out" "$T/ping.err"

# js -> a running goop2 peer: ping and identify
mkdir -p "$T/peer"
echo '{"viewer": {"http_addr": ""}}' >"$T/peer/goop.json"
"$GOOP2" -dir "$T/peer" >"$T/peer.out" 2>"$T/peer.err" &
pids+=($!)
for i in $(seq 1 100); do grep -q '/ip4/127.0.0.1/tcp/.*/p2p/' "$T/peer.out" 2>/dev/null && break; sleep 0.1; done
PADDR=$(grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' "$T/peer.out" | head -1)
PID=${PADDR##*/}
check "goop2 peer is listening" test -n "$PADDR"
echo "{\"id\": 1, \"cmd\": \"ping\", \"addr\": \"$PADDR\", \"count\": 3}" >&3
echo "{\"id\": 2, \"cmd\": \"identify\", \"peer_id\": \"$PID\"}" >&3
reply() { python3 - "$T/js-out" "$1" <<'PY'
import json, sys, time
want = int(sys.argv[2])
for _ in range(300):
    for l in open(sys.argv[1]):
        try:
            m = json.loads(l)
        except ValueError:
            continue
        if m.get("id") == want:
            print(json.dumps(m)); sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
PY
}
R1=$(reply 1)
check "js-libp2p pings goop2 -dir" python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert m["ok"] and len(m["rtts_ms"]) == 3' "$R1"
R2=$(reply 2)
check "js-libp2p identifies goop2 -dir" python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert m["ok"]' "$R2"
check "identify: agent is libgoop" python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert m["agent"].startswith("libgoop/")' "$R2"
check "identify: the site protocols are served" python3 -c 'import json,sys; m=json.loads(sys.argv[1]); p=m["protocols"]; assert all(x in p for x in ["/goop/site/1.0.0","/goop/data/1.0.0","/goop/content/1.0.0","/goop/avatar/1.0.0","/ipfs/ping/1.0.0"])' "$R2"
check "identify: listen addresses and a signed peer record" python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert m["listen_addrs"] and m["signed_peer_record"]' "$R2"
[ -n "$R2" ] || sed 's/^/# /' "$T/js-err"
echo '{"id": 3, "cmd": "exit"}' >&3

echo "1..$n"
[ $failed -eq 0 ]
