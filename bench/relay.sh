#!/usr/bin/env bash
# Relay benchmark between two peers (processes) on loopback, through goop2-relay
# in its own process:
#   - throughput of one stream A -> B directly and through the relay (a relayed
#     connection: Noise + yamux end to end over a /p2p-circuit), discard (the
#     server only counts) and sink (the server hashes with SHA-256);
#   - the relay's CPU time per Gbit relayed (= cores busy at 1 Gbit/s);
#   - the relay's memory per open circuit (RSS growth while N idle relayed
#     connections from N client identities are open, divided by N; each
#     includes the source peer's own connection to the relay).
#   bench/relay.sh [BYTES] [CIRCUITS]     (defaults: 1 GiB, 200 circuits)
# Not a test: nothing here asserts timings. Target: relayed >= 80 % of direct.
# Sender, relay and target share the machine's cores: with fewer than three
# free cores the relayed figure measures CPU contention as much as the relay.
# CIRCUITS stays under the relay host's connection limit (256 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-1073741824}
CIRCUITS=${2:-200}
B=${GOOP_BENCH_BUILD:-build-bench}
if [ ! -f $B/build.ninja ]; then meson setup $B --buildtype=release -Dman-pages=disabled >/dev/null; fi
ninja -C $B bench/goop-bench cli/goop2-relay >/dev/null
G=$B/bench/goop-bench
RELAY=$B/cli/goop2-relay
out=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for FILE PATTERN
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
metric() { curl -fs "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
best() { python3 -c 'import json,sys; print(max(json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if l.startswith("{")))' "$1" "$2"; }

# ---- the relay: no per-circuit duration or byte limit, room for every circuit ----------------
RPORT=$(free_port)
MPORT=$(free_port)
mkdir -p "$out/relay"
cat >"$out/relay/goop.json" <<JSON
{"presence": {"relay_circuit_seconds": 0, "relay_circuit_bytes": 0,
              "relay_max_circuits": 100000, "relay_max_circuits_per_peer": 100000,
              "relay_max_reservations": 100000, "relay_max_reservations_per_ip": 100000}}
JSON
$RELAY -dir "$out/relay" -port "$RPORT" -metrics "127.0.0.1:$MPORT" >"$out/relay.out" 2>"$out/relay.err" &
RPID=$!
pids+=($RPID)
wait_for "$out/relay.out" 'Metrics:'
RADDR=$(grep -o "/ip4/127.0.0.1/tcp/$RPORT/p2p/[A-Za-z0-9]*" "$out/relay.out" | head -n 1)
echo "== relay $RADDR (pid $RPID)"

# ---- the target peer: serves the bench protocols, holds a reservation --------------------------
$G serve-relayed "$RADDR" >"$out/serve" 2>"$out/serve.err" &
SPID=$!
pids+=($SPID)
wait_for "$out/serve" circuit
DIRECT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["addr"])' "$out/serve")
CIRCUIT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["circuit"])' "$out/serve")
echo "   direct  $DIRECT"
echo "   relayed $CIRCUIT"

echo "== direct"
s0=$(cpu_ticks $SPID)
$G discard "$DIRECT" "$BYTES" 3 | tee "$out/d-discard"
s1=$(cpu_ticks $SPID)
$G sink "$DIRECT" "$BYTES" 3 | tee "$out/d-sink"

echo "== relayed"
c0=$(cpu_ticks $RPID)
s2=$(cpu_ticks $SPID)
b0=$(metric goop_relay_bytes_total)
t0=$(date +%s.%N)
$G discard "$CIRCUIT" "$BYTES" 3 | tee "$out/r-discard"
t1=$(date +%s.%N)
c1=$(cpu_ticks $RPID)
s3=$(cpu_ticks $SPID)
b1=$(metric goop_relay_bytes_total)
$G sink "$CIRCUIT" "$BYTES" 3 | tee "$out/r-sink"

echo "== $CIRCUITS idle circuits"
sleep 1
rss0=$(rss_kib $RPID)
open0=$(metric goop_relay_circuits)
$G circuits "$CIRCUIT" "$CIRCUITS" >"$out/circuits" 2>"$out/circuits.err" &
pids+=($!)
wait_for "$out/circuits" '"circuits"'
cat "$out/circuits"
sleep 1
rss1=$(rss_kib $RPID)
open1=$(metric goop_relay_circuits)

python3 - "$out" "$c0" "$c1" "$b0" "$b1" "$t0" "$t1" "$(getconf CLK_TCK)" "$rss0" "$rss1" "$open0" "$open1" \
  "$s0" "$s1" "$s2" "$s3" "$BYTES" "$(nproc)" <<'PY'
import json, os, sys
d = sys.argv[1]
s0, s1, s2, s3, nbytes, ncpu = (int(x) for x in sys.argv[13:19])
c0, c1, b0, b1 = (int(x) for x in sys.argv[2:6])
t0, t1, tck = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
rss0, rss1, open0, open1 = (int(x) for x in sys.argv[9:13])
def best(f, key):
    return max(json.loads(l)[key] for l in open(os.path.join(d, f)) if l.startswith("{"))
dd, rd = best("d-discard", "mib_s"), best("r-discard", "mib_s")
ds, rs = best("d-sink", "mib_s"), best("r-sink", "mib_s")
cpu = (c1 - c0) / tck
gbit = (b1 - b0) * 8 / 1e9          # both directions through the relay, as it counts them
print()
print(f"discard (transport only)  direct {dd:8.1f} MiB/s   relayed {rd:8.1f} MiB/s   relayed/direct {100*rd/dd:5.1f}% (target >= 80%)")
print(f"sink (server SHA-256)     direct {ds:8.1f} MiB/s   relayed {rs:8.1f} MiB/s   relayed/direct {100*rs/ds:5.1f}%")
if gbit > 0:
    print(f"relay CPU                 {cpu:.2f} s for {gbit:.2f} Gbit relayed in {t1-t0:.1f} s: "
          f"{cpu/gbit:.3f} core-seconds per Gbit (= cores busy at 1 Gbit/s)")
gib = 3 * nbytes / 2**30
print(f"target peer CPU           {(s1-s0)/tck/gib:.2f} s per GiB direct, {(s3-s2)/tck/gib:.2f} s per GiB relayed "
      f"(the same Noise + yamux work; {ncpu} cores shared by sender, relay and target)")
n = open1 - open0
if n > 0:
    print(f"relay memory              RSS {rss0} -> {rss1} KiB with {n} more open circuits: "
          f"{(rss1-rss0)/n:.1f} KiB per circuit (incl. the source's connection to the relay)")
else:
    print("relay memory              no circuits counted (see /metrics)")
PY
