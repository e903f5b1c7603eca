#!/usr/bin/env bash
# Rendezvous load benchmark: N concurrent GET /events subscribers on one goop2-rendezvous while
# RATE publishes a second go in for SECONDS; each message carries its send time, so every
# subscriber measures fan-out latency (receive - send). Reports p50/p99/max latency, server RSS
# per subscriber ((RSS with N - RSS idle) / N), drops (server metric and messages missing at
# the subscribers). Not a test: nothing here asserts timings.
#   bench/rendezvous-load.sh [N ...]        (default: 1000 10000 50000)
# Environment: RATE (200), DURATION (publishing seconds, 20), PER_PROC (subscribers per load process, 15000),
#   PER_SRC (subscribers per 127.x.y.z source address, 1000), BUILD (build dir, build-bench).
# Loopback source ports: subscribers bind to many 127.10+k.x.y source addresses, so the
# ephemeral port range is never the limit. The file descriptor limit is: each process may hold
# at most its hard RLIMIT_NOFILE (raised to it; raising the hard limit needs CAP_SYS_RESOURCE),
# so N above that minus a reserve is refused by the server and reported as "refused".
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-200}
SECONDS_PUB=${DURATION:-20}
PER_PROC=${PER_PROC:-15000}
PER_SRC=${PER_SRC:-1000}
B=${BUILD:-build-bench}
if [ ! -f "$B/build.ninja" ]; then meson setup "$B" --buildtype=release -Dman-pages=disabled >/dev/null; fi
ninja -C "$B" cli/goop2-rendezvous bench/rdv-load >/dev/null
RDV=$B/cli/goop2-rendezvous
LOAD=$B/bench/rdv-load
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "fd limit: soft $(ulimit -Sn), hard $(ulimit -Hn); CPUs: $(nproc); rate $RATE/s for $SECONDS_PUB s"

out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m{print $2}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() {
  local n=$1 d="$out/n$1" port
  port=$(free_port)
  mkdir -p "$d"
  cat >"$d/goop.json" <<EOF
{"presence": {"rendezvous_port": $port, "rendezvous_bind": "127.0.0.1",
  "rendezvous_max_subscribers": 1000000, "rendezvous_max_subscribers_per_ip": 1000000,
  "rendezvous_publish_per_minute": 1000000, "rendezvous_subscriber_queue": 64}}
EOF
  "$RDV" -dir "$d" >"$d/server.log" 2>&1 &
  local srv=$!
  pids+=("$srv")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  sleep 1
  local rss0
  rss0=$(rss_kib "$srv")
  # Subscribers in processes of PER_PROC each, process k on 127.(10+k).x.y.
  local left=$n k=0 subs=() t0
  t0=$(date +%s.%N)
  while [ "$left" -gt 0 ]; do
    local m=$((left < PER_PROC ? left : PER_PROC))
    "$LOAD" sub "$port" "$m" "127.$((10 + k))" "$PER_SRC" "$d/sub$k.out" >"$d/sub$k.ready" 2>"$d/sub$k.err" &
    subs+=($!)
    pids+=($!)
    left=$((left - m))
    k=$((k + 1))
  done
  for i in $(seq 0 $((k - 1))); do
    for _ in $(seq 1 3000); do grep -q ready "$d/sub$i.ready" 2>/dev/null && break; sleep 0.1; done
  done
  local t1 connected
  t1=$(date +%s.%N)
  sleep 2
  connected=$(metric "$port" goop_rendezvous_subscribers)
  local rss1
  rss1=$(rss_kib "$srv")
  local cpu0 gcpu0=0 p
  cpu0=$(cpu_s "$srv")
  for p in "${subs[@]}"; do gcpu0=$(echo "$gcpu0 + $(cpu_s "$p")" | bc); done
  "$LOAD" pub "$port" "$RATE" "$SECONDS_PUB" 127.9 >"$d/pub.out" 2>&1
  sleep 1
  local rss2 cpu gcpu=0
  rss2=$(rss_kib "$srv")
  cpu=$(echo "$(cpu_s "$srv") - $cpu0" | bc)
  for p in "${subs[@]}"; do gcpu=$(echo "$gcpu + $(cpu_s "$p")" | bc); done
  gcpu=$(echo "$gcpu - $gcpu0" | bc)
  for p in "${subs[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${subs[@]}"; do wait "$p" 2>/dev/null || true; done
  local drops
  drops=$(metric "$port" goop_rendezvous_drops_total)
  kill -TERM "$srv"
  wait "$srv" 2>/dev/null || true
  local merged
  merged=$("$LOAD" merge "$d"/sub*.out)
  python3 - "$n" "$connected" "$rss0" "$rss1" "$rss2" "$drops" "$cpu" "$merged" "$(cat "$d/pub.out")" \
    "$t0" "$t1" "$gcpu" "$SECONDS_PUB" <<'PY'
import json, sys
n, connected, rss0, rss1, rss2, drops, cpu = sys.argv[1:8]
gcpu, secs = float(sys.argv[12]), float(sys.argv[13])
m = json.loads(sys.argv[8])
pub = dict(zip(sys.argv[9].split()[0::2], map(int, sys.argv[9].split()[1::2])))
connected = int(connected or 0)
expected = pub.get("ok", 0) * m["connected"]
per = (int(rss1) - int(rss0)) * 1024 / max(1, connected)
print(f"N={n}: {connected} subscribers held ({m['refused']} refused, {m['closed_by_server']} closed by the server), "
      f"connect time {float(sys.argv[11]) - float(sys.argv[10]):.1f} s")
print(f"  published {pub.get('published')} ({pub.get('ok')} answered 204, {pub.get('failed')} failed, "
      f"{pub.get('late')} skipped: no idle publisher connection)")
print(f"  fan-out latency p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms, max {m['max_ms']:.1f} ms "
      f"over {m['received']} deliveries (expected {expected}, missing {expected - m['received']})")
print(f"  server drops (full queues) {drops}; CPU while publishing ({secs + 1:.0f} s): server {float(cpu):.1f} s, "
      f"subscriber processes {gcpu:.1f} s")
print(f"  server RSS idle {rss0} KiB, with subscribers {rss1} KiB, after publishing {rss2} KiB: "
      f"{per:.0f} bytes per subscriber ({(int(rss2) - int(rss0)) * 1024 / max(1, connected):.0f} after publishing)")
print("  json: " + json.dumps({"n": int(n), "held": connected, **m, "server_drops": int(drops or 0),
                              "rss_idle_kib": int(rss0), "rss_kib": int(rss1), "rss_after_kib": int(rss2),
                              "rss_per_sub_bytes": round(per), "published": pub,
                              "server_cpu_s": float(cpu), "load_cpu_s": gcpu}))
PY
}

for n in ${@:-1000 10000 50000}; do
  run "$n"
done
