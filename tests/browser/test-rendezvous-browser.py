#!/usr/bin/env python3
"""Real-browser test of the goop2-rendezvous pages (prints TAP).

Usage: test-rendezvous-browser.py path/to/goop2-rendezvous

Starts goop2-rendezvous with admin_password and external_url set; two peers
publish their presence (POST /publish from here, one label carrying HTML).
Headless Chromium, driven by playwright-core from tests/interop/node_modules
(drive-rendezvous.js), opens "/" (the connect URL is shown) and "/admin"
with HTTP Basic credentials: the page lists both live peers, the HTML label
as text; a third peer publishes, and after a reload (the admin page is
static) it is listed too. Wrong and missing credentials get 401. Screenshots
go to tests/artifacts/rendezvous-index.png and rendezvous-admin.png.

Skips (exit 0) when /usr/bin/chromium, node or playwright-core is missing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT = os.path.join(ROOT, "tests", "interop", "node_modules", "playwright-core")
PASSWORD = "browser-s3cret"
EXTERNAL = "https://rdv.example.org"


def skip(why):
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


if len(sys.argv) < 2:
    sys.exit("usage: test-rendezvous-browser.py GOOP2_RENDEZVOUS")
RDV = os.path.abspath(sys.argv[1])
if not os.path.exists(CHROMIUM):
    skip("%s is missing (install it: GOOP_WITH_BROWSER=1 scripts/install-deps.sh)" % CHROMIUM)
NODE = shutil.which("node")
if not NODE:
    skip("node is missing")
if not os.path.isdir(PLAYWRIGHT):
    skip("playwright-core is missing (cd tests/interop && npm ci)")

TMP = tempfile.mkdtemp(prefix="goop-test-rdv-browser-")
PROCS = []
N = 0
FAILED = 0


def ok(cond, desc, diag=None):
    global N, FAILED
    N += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", N, desc))
    if not cond:
        FAILED += 1
        for line in str(diag if diag is not None else "").splitlines()[:30]:
            print("# " + line)
    sys.stdout.flush()
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def publish(port, msg):
    req = urllib.request.Request("http://127.0.0.1:%d/publish" % port, data=json.dumps(msg).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


PEERS = [
    {"type": "online", "peerId": "12D3KooWBrowserAlice", "content": "Alice's garden", "email": "alice@example.org",
     "addrs": ["/ip4/127.0.0.1/tcp/4001"]},
    {"type": "online", "peerId": "12D3KooWBrowserBob", "content": "Bob <b>bold</b> <script>alert(1)</script>",
     "addrs": ["/ip4/127.0.0.1/tcp/4002"]},
]
THIRD = {"type": "online", "peerId": "12D3KooWBrowserCarol", "content": "Carol arrives late"}


def main():
    d = os.path.join(TMP, "rdv")
    os.makedirs(d)
    port = free_port()
    with open(os.path.join(d, "goop.json"), "w") as f:
        json.dump({"presence": {"rendezvous_port": port, "rendezvous_bind": "127.0.0.1", "admin_password": PASSWORD,
                                "external_url": EXTERNAL}}, f)
    log = open(os.path.join(d, "server.log"), "ab")
    p = subprocess.Popen([RDV, "-dir", d], stdout=log, stderr=log)
    PROCS.append(p)
    up = False
    for _ in range(200):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2) as r:
                up = r.status == 200
        except OSError:
            pass
        if up:
            break
        time.sleep(0.05)
    if not ok(up, "goop2-rendezvous starts"):
        return
    ok([publish(port, m) for m in PEERS] == [204, 204], "two peers publish their presence")

    art = os.path.join(ROOT, "tests", "artifacts")
    os.makedirs(art, exist_ok=True)
    shots = [os.path.join(art, n) for n in ("rendezvous-index.png", "rendezvous-admin.png")]
    for s in shots:
        if os.path.exists(s):
            os.unlink(s)
    t0 = time.time()
    r = subprocess.run([NODE, os.path.join(HERE, "drive-rendezvous.js"), "http://127.0.0.1:%d/" % port, PASSWORD,
                        json.dumps(THIRD), art], capture_output=True, text=True, timeout=180)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"errors": [r.stdout[-2000:], r.stderr[-2000:]]}
    print("# browser run: %.1f s" % (time.time() - t0))

    ok(out.get("index_status") == 200 and "Rendezvous" in out.get("index_title", ""), "Chromium loads /", out)
    ok(out.get("connect_urls") == [EXTERNAL], "/ shows the connect URL (external_url)", out.get("connect_urls"))
    ok("2 peers online" in (out.get("index_footer") or ""), "/ counts the live peers", out.get("index_footer"))
    ok(out.get("admin_anon_status") == 401, "/admin without credentials: 401", out.get("admin_anon_status"))
    ok(out.get("admin_wrong_status") == 401, "/admin with a wrong password: 401", out.get("admin_wrong_status"))
    ok(out.get("admin_status") == 200, "/admin with the right credentials: 200", out.get("admin_status"))
    listed = {row[0]: row for row in out.get("admin_rows") or []}
    ok(set(listed) == {m["peerId"] for m in PEERS}, "the admin page lists both live peers", out.get("admin_rows"))
    ok(listed.get("12D3KooWBrowserAlice", [None] * 4)[2:4] == ["Alice's garden", "alice@example.org"],
       "label and email shown", listed.get("12D3KooWBrowserAlice"))
    ok(listed.get("12D3KooWBrowserBob", [None] * 3)[2] == PEERS[1]["content"] and out.get("admin_scripts") == 0,
       "an HTML label is shown as text, not markup", (listed.get("12D3KooWBrowserBob"), out.get("admin_scripts")))
    ok(out.get("third_publish_status") == 204, "a third peer publishes while the page is open")
    after = [row[0] for row in out.get("admin_rows_after") or []]
    ok(set(after) == {m["peerId"] for m in PEERS + [THIRD]}, "after a reload the admin page lists the third peer",
       out.get("admin_rows_after"))
    ok(out.get("peers_json_status") == 200 and len(out.get("peers_json") or []) == 3,
       "/peers.json in the browser (same credentials)", out.get("peers_json"))
    ok(not out.get("errors"), "no page errors or dialogs", out.get("errors"))
    ok(all(os.path.exists(s) and os.path.getsize(s) > 1000 for s in shots),
       "screenshots saved to tests/artifacts/ (rendezvous-index.png, rendezvous-admin.png)")
    p.send_signal(signal.SIGTERM)
    ok(p.wait(timeout=20) == 0, "server exits 0 on SIGTERM")


try:
    main()
except Exception:
    import traceback
    ok(False, "test ran to the end", traceback.format_exc())
finally:
    for pr in PROCS:
        if pr.poll() is None:
            pr.kill()
            pr.wait()
    print("1..%d" % N)
    if FAILED == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("# left %s" % TMP)
sys.exit(1 if FAILED else 0)
