#!/usr/bin/env bash
# Viewer benchmark: requests/s and p99 latency of a 10 KB file of a REMOTE peer's
# site fetched through the goop2 viewer (/p/<peer>/file: HTTP -> viewer ->
# /goop/site/1.0.0 stream -> peer -> back), next to nginx serving the same
# file from disk on loopback. Both with wrk -t2 -c32 -d10s --latency.
#   bench/viewer.sh [DURATION]      (default 10s; BUILD=dir picks the build, default build-bench)
# Installs nginx and wrk (apt-get) when missing. Not a test: nothing asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}
B=${BUILD:-build-bench}
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx wrk >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -f $B/build.ninja ]; then meson setup $B --buildtype=release -Dman-pages=disabled >/dev/null; fi
ninja -C $B cli/goop2 >/dev/null
GOOP2=$(pwd)/$B/cli/goop2

out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_peer() { # name, bootstrap-or-empty
  local d=$out/$1
  mkdir -p "$d/site"
  if [ -n "$2" ]; then
    printf '{"viewer":{"http_addr":"127.0.0.1:0"},"p2p":{"bootstrap":["%s"]}}\n' "$2" >"$d/goop.json"
  else
    printf '{"viewer":{"http_addr":"127.0.0.1:0"}}\n' >"$d/goop.json"
  fi
  "$GOOP2" -dir "$d" >"$d/stdout" 2>"$d/stderr" &
  pids+=($!)
  for _ in $(seq 1 150); do grep -q 'Viewer:' "$d/stdout" 2>/dev/null && break; sleep 0.1; done
}

# bob serves the file; alice's viewer is the one measured
mkdir -p "$out/bob/site"
head -c 10240 /dev/urandom >"$out/bob/site/ten.bin"
start_peer bob ""
BOB_ID=$(awk '/Peer ID:/{print $3; exit}' "$out/bob/stdout")
BOB_ADDR=$(grep -oE '/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/\S+' "$out/bob/stdout" | head -1)
start_peer alice "$BOB_ADDR"
ALICE_URL=$(awk '/Viewer:/{print $2; exit}' "$out/alice/stdout")
for _ in $(seq 1 100); do curl -fs "${ALICE_URL}api/peers" | grep -q "$BOB_ID" && break; sleep 0.1; done
URL_VIEWER="${ALICE_URL}p/$BOB_ID/ten.bin"
curl -fs "$URL_VIEWER" | cmp - "$out/bob/site/ten.bin" || { echo "viewer does not serve the file"; exit 1; }

# nginx on a loopback port, same file
NPORT=$(free_port)
mkdir -p "$out/nginx"
cat >"$out/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $out/nginx/nginx.pid;
error_log $out/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $out/nginx/tmp; proxy_temp_path $out/nginx/tmp; fastcgi_temp_path $out/nginx/tmp;
  uwsgi_temp_path $out/nginx/tmp; scgi_temp_path $out/nginx/tmp;
  server { listen 127.0.0.1:$NPORT; root $out/bob/site; }
}
EOF
mkdir -p "$out/nginx/tmp"
chmod 755 "$out" "$out/bob" "$out/bob/site" && chmod 644 "$out/bob/site/ten.bin" # nginx workers run as nobody
"$NGINX" -c "$out/nginx/nginx.conf" -p "$out/nginx" -g 'daemon off;' 2>"$out/nginx/stderr" &
pids+=($!)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$NPORT/ten.bin" >/dev/null && break; sleep 0.1; done
URL_NGINX="http://127.0.0.1:$NPORT/ten.bin"

ALICE_PID=${pids[1]}
echo "== goop2 viewer, remote peer's 10 KB file: $URL_VIEWER"
wrk -t2 -c32 -d"$DUR" --latency "$URL_VIEWER" | tee "$out/wrk-viewer"
echo "   alice RSS after the run: $(awk '/VmRSS/{print $2" "$3}' /proc/$ALICE_PID/status), peak $(awk '/VmHWM/{print $2" "$3}' /proc/$ALICE_PID/status)"
echo "== nginx, the same file from disk: $URL_NGINX"
wrk -t2 -c32 -d"$DUR" --latency "$URL_NGINX" | tee "$out/wrk-nginx"

python3 - "$out" <<'PY'
import os, re, sys
d = sys.argv[1]
def parse(name):
    t = open(os.path.join(d, name)).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", t, re.M)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    return rps, p99, int(errs.group(1)) if errs else 0
v, n = parse("wrk-viewer"), parse("wrk-nginx")
print()
print("%-28s %12s %12s %8s" % ("", "requests/s", "p99 ms", "non-2xx"))
print("%-28s %12.0f %12.2f %8d" % ("goop2 viewer (remote peer)", *v))
print("%-28s %12.0f %12.2f %8d" % ("nginx (local disk)", *n))
print("ratio viewer/nginx: %.3f of the requests/s, %.1fx the p99 latency" % (v[0] / n[0], v[1] / n[1]))
PY
