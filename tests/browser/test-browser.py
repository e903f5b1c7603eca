#!/usr/bin/env python3
"""Real-browser test of the goop2 viewer (prints TAP).

Usage: test-browser.py path/to/goop2

Two goop2 peers on loopback: bob serves tests/browser/site/ (a guestbook page
using /assets/js/goop-data.js) with a table of policy "open"; alice
bootstraps to bob. Headless Chromium, driven by playwright-core from
tests/interop/node_modules, opens alice's viewer at /p/<bob>/ and clicks
"Add" three times; the page lists the rows. The rows must then be in bob's
data.db with alice's peer id as owner. A screenshot goes to
tests/artifacts/browser-guestbook.png.

Skips (exit 0) when /usr/bin/chromium, node or playwright-core is missing:
install Chromium with GOOP_WITH_BROWSER=1 scripts/install-deps.sh and the
node packages with (cd tests/interop && npm ci).
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT = os.path.join(ROOT, "tests", "interop", "node_modules", "playwright-core")
ROWS = 3


def skip(why):
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


if len(sys.argv) < 2:
    sys.exit("usage: test-browser.py GOOP2")
GOOP2 = os.path.abspath(sys.argv[1])
if not os.path.exists(CHROMIUM):
    skip("%s is missing (install it: GOOP_WITH_BROWSER=1 scripts/install-deps.sh)" % CHROMIUM)
NODE = shutil.which("node")
if not NODE:
    skip("node is missing")
if not os.path.isdir(PLAYWRIGHT):
    skip("playwright-core is missing (cd tests/interop && npm ci)")

TMP = tempfile.mkdtemp(prefix="goop-test-browser-")
PROCS = []
N = 0
FAILED = 0


def ok(cond, desc, diag=None):
    global N, FAILED
    N += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", N, desc))
    if not cond:
        FAILED += 1
        for line in str(diag or "").splitlines()[:30]:
            print("# " + line)
    sys.stdout.flush()
    return cond


class Peer:
    def __init__(self, name, bootstrap=None, site=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        if site:
            shutil.copytree(site, os.path.join(self.dir, "site"))
        conf = {"viewer": {"http_addr": "127.0.0.1:0"}}
        if bootstrap:
            conf["p2p"] = {"bootstrap": [bootstrap]}
        with open(os.path.join(self.dir, "goop.json"), "w") as f:
            json.dump(conf, f)
        e = dict(os.environ)
        e.pop("GOOP2_VIEWER_ADDR", None)
        self.out = open(os.path.join(self.dir, "stdout"), "w+")
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen([GOOP2, "-dir", self.dir], stdout=self.out, stderr=self.err, env=e)
        PROCS.append(self.proc)
        self.url = self.id = None
        self.addrs = []
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            self.out.flush()
            with open(self.out.name) as f:
                text = f.read()
            m = re.search(r"Viewer:\s+(http://\S+)", text)
            if m:
                self.url = m.group(1)
                self.id = re.search(r"Peer ID:\s+(\S+)", text).group(1)
                self.addrs = re.findall(r"^\s+(/ip4/\S+)$", text, re.M)
                break
            time.sleep(0.05)

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def api(self, path, body=None, token=None):
        req = urllib.request.Request(self.url.rstrip("/") + path, data=json.dumps(body).encode() if body else None)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("X-Goop-CSRF", token)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


def main():
    bob = Peer("bob", site=os.path.join(HERE, "site"))
    if not ok(bob.url is not None, "bob starts", bob.stderr()):
        return
    tok = bob.api("/api/csrf")["token"]
    bob.api("/api/data/tables/create", {"name": "guestbook", "columns": [{"name": "msg", "type": "TEXT"}]}, tok)
    res = bob.api("/api/data/tables/set-policy", {"table": "guestbook", "policy": "open"}, tok)
    ok(res.get("policy") == "open", "bob's guestbook table has policy open", res)
    lo = next((a for a in bob.addrs if a.startswith("/ip4/127.0.0.1/")), None)
    alice = Peer("alice", bootstrap=lo)
    if not ok(alice.url is not None, "alice starts (bootstrap to bob)", alice.stderr()):
        return
    deadline = time.time() + 15
    while time.time() < deadline and bob.id not in json.dumps(alice.api("/api/peers")):
        time.sleep(0.2)

    art = os.path.join(ROOT, "tests", "artifacts")
    os.makedirs(art, exist_ok=True)
    shot = os.path.join(art, "browser-guestbook.png")
    if os.path.exists(shot):
        os.unlink(shot)
    udd = os.path.join(TMP, "chromium-profile")
    os.makedirs(udd)
    t0 = time.time()
    p = subprocess.run([NODE, os.path.join(HERE, "drive.js"), alice.url, bob.id, str(ROWS), shot, udd],
                       capture_output=True, text=True, timeout=180)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"errors": [p.stdout[-2000:], p.stderr[-2000:]]}
    print("# browser run: %.1f s" % (time.time() - t0))
    ok(out.get("status") == 200, "Chromium loads alice's /p/<bob>/", out)
    ok("default-src 'none'" in out.get("csp", ""), "the page is served with the site CSP")
    want = ["hello %d" % i for i in range(1, ROWS + 1)]
    ok(out.get("rows") == want, "the page lists the %d rows it inserted" % ROWS, out)
    ok(not out.get("errors"), "no page errors", out.get("errors"))
    ok(os.path.exists(shot) and os.path.getsize(shot) > 1000, "screenshot saved to tests/artifacts/")

    db = sqlite3.connect(os.path.join(bob.dir, "data.db"))
    rows = db.execute("SELECT msg, _owner FROM guestbook ORDER BY _id").fetchall()
    db.close()
    ok([r[0] for r in rows] == want, "the rows are in bob's data.db", rows)
    ok(all(r[1] == alice.id for r in rows), "bob stored alice's peer id as their owner", rows)


try:
    main()
except Exception:
    import traceback
    ok(False, "test ran to the end", traceback.format_exc())
finally:
    for pr in PROCS:
        if pr.poll() is None:
            pr.send_signal(signal.SIGTERM)
            try:
                pr.wait(10)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
    shutil.rmtree(TMP, ignore_errors=True)
print("1..%d" % N)
sys.exit(1 if FAILED else 0)
