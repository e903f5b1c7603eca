#!/usr/bin/env bash
# Transport benchmark: C<->C versus js<->js (js-libp2p from tests/interop), two
# processes on loopback each, in one run, plus one-core ChaCha20-Poly1305 speed.
#   bench/transport.sh [BYTES] [CONNS]      (defaults: 1 GiB, 300 connections)
# Prints the raw figures and the ratios. Not a test: nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-1073741824}
CONNS=${2:-300}
B=build-bench
if [ ! -f $B/build.ninja ]; then meson setup $B --buildtype=release -Dman-pages=disabled >/dev/null; fi
ninja -C $B bench/goop-bench >/dev/null
(cd tests/interop && bash npm-ensure.sh >/dev/null)
G=$B/bench/goop-bench
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

echo "== openssl speed -evp chacha20-poly1305 (one core, 16 KiB blocks)"
openssl speed -evp chacha20-poly1305 -seconds 3 -bytes 16384 2>/dev/null | tail -1 | tee "$out/ossl"
ossl_kbs=$(awk '{print $NF}' "$out/ossl" | tr -d k)

echo "== C<->C"
$G serve >"$out/serve" 2>/dev/null &
for i in $(seq 1 50); do grep -q addr "$out/serve" 2>/dev/null && break; sleep 0.1; done
CADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addr"])' "$out/serve")
$G sink "$CADDR" "$BYTES" 3 | tee "$out/c-sink"
$G discard "$CADDR" "$BYTES" 3 | tee "$out/c-discard"
$G connrate "$CADDR" "$CONNS" | tee "$out/c-conn"
kill %1 2>/dev/null || true; wait 2>/dev/null || true

echo "== js<->js"
JSDIR=tests/interop
(cd $JSDIR && node --import ./polyfill.mjs bench-js.mjs --bytes "$BYTES" --repeat 3 --streams 10 --pings 10 --kinds sink 2>/dev/null) >"$out/js-all" || true
grep '"sink"' "$out/js-all" | tee "$out/js-sink"
# a js listener for the connection-rate test; js-peer exits when its stdin closes
(cd $JSDIR && sleep 100000 | node --import ./polyfill.mjs js-peer.mjs --listen /ip4/127.0.0.1/tcp/0 >"$out/js-serve" 2>/dev/null) &
for i in $(seq 1 100); do grep -q listening "$out/js-serve" 2>/dev/null && break; sleep 0.1; done
JADDR=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["addrs"][0])' "$out/js-serve")
(cd $JSDIR && node --import ./polyfill.mjs bench-connrate.mjs "$JADDR" "$CONNS") | tee "$out/js-conn"
pkill -f "sleep 100000" 2>/dev/null || true

python3 - "$out" "$ossl_kbs" <<'PY'
import json, sys, os
d, ossl = sys.argv[1], float(sys.argv[2])
def best(f, key):
    vals = [json.loads(l)[key] for l in open(os.path.join(d, f)) if l.strip().startswith('{')]
    return max(vals)
c_tp, js_tp = best('c-sink', 'mib_s'), best('js-sink', 'mib_s')
c_cr, js_cr = best('c-conn', 'conns_s'), best('js-conn', 'conns_s')
c_raw = best('c-discard', 'mib_s')
ossl_mib = ossl * 1000 / 1048576
print()
print(f"single-stream throughput  C: {c_tp:8.1f} MiB/s   js: {js_tp:8.1f} MiB/s   ratio {c_tp/js_tp:5.2f}x (target >= 3x)")
print(f"connections per second    C: {c_cr:8.1f}/s       js: {js_cr:8.1f}/s       ratio {c_cr/js_cr:5.2f}x (target >= 5x)")
print(f"ChaCha20-Poly1305 1 core  {ossl_mib:8.1f} MiB/s; C transport (discard, no hashing) {c_raw:8.1f} MiB/s = {100*c_raw/ossl_mib:5.1f}% of it (target >= 60%)")
print("(sink: the server hashes every byte with SHA-256 in both implementations; discard: it only counts)")
PY
