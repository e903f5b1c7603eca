#!/usr/bin/env bash
# Site benchmark: /goop/site/1.0.0 fetch throughput of one big file and /goop/data/1.0.0
# operation rate (inserts/s, queries/s), two processes on loopback.
#   bench/site.sh [FILE_BYTES] [DATA_OPS] [INFLIGHT]   (defaults: 256 MiB, 2000 ops, 1 and 16 in flight)
# Prints the raw JSON lines and a summary. Not a test: nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-268435456}
OPS=${2:-2000}
INFLIGHT=${3:-16}
B=${BUILD:-build-bench}
if [ ! -f $B/build.ninja ]; then meson setup $B --buildtype=release -Dman-pages=disabled >/dev/null; fi
ninja -C $B bench/site-bench >/dev/null
S=$B/bench/site-bench
out=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

$S serve "$out/peer" "$BYTES" >"$out/serve" 2>"$out/serve.err" &
server=$!
for i in $(seq 1 300); do grep -q addr "$out/serve" 2>/dev/null && break; sleep 0.1; done
ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addr"])' "$out/serve")

echo "== /goop/site/1.0.0: $BYTES bytes, 3 runs"
$S fetch "$ADDR" /big.bin 3 | tee "$out/fetch"
echo "== /goop/data/1.0.0: $OPS inserts then $OPS queries, 1 in flight"
$S data "$ADDR" "$OPS" 1 | tee "$out/data1"
echo "== /goop/data/1.0.0: $OPS inserts then $OPS queries, $INFLIGHT in flight"
$S data "$ADDR" "$OPS" "$INFLIGHT" | tee "$out/dataN"
echo "== server RSS after the runs: $(awk '/VmHWM/{print $2" "$3" peak"}' /proc/$server/status), $(awk '/VmRSS/{print $2" "$3" now"}' /proc/$server/status)"

python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
def lines(f):
    return [json.loads(l) for l in open(os.path.join(d, f)) if l.strip().startswith('{')]
best = max(x['mib_s'] for x in lines('fetch'))
print()
print(f"site fetch (one file, one stream): best {best:.1f} MiB/s")
for f in ('data1', 'dataN'):
    for x in lines(f):
        print(f"data {x['data']:6s} {x['inflight']:3d} in flight: {x['ops_s']:8.0f} ops/s ({x['errors']} errors)")
PY
