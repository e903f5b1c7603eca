#!/usr/bin/env python3
"""Integration test of the viewer's site and data routes over real sockets.

Usage: test-viewer-site.py path/to/goop2    (prints TAP)

Two goop2 peers on loopback (bob serves a site, alice bootstraps to bob):
alice's viewer serves bob's pages, CSS, an image and a 100 MiB file (alice's
RSS stays flat), HEAD/ETag/Range on own and remote sites, 404/403/502, path
tricks, the data API and the data proxy with policies for owner and guests,
CSRF, oversize and malformed bodies, /api/site/files|upload|delete.
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

GOOP2 = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit("usage: test-viewer-site.py GOOP2")
TMP = tempfile.mkdtemp(prefix="goop-test-viewer-site-")
PROCS = []
N = 0
FAILED = 0
BIG = 100 << 20
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; font-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
GUEST = {"X-Forwarded-For": "203.0.113.7"}  # a forwarded request is a guest


def ok(cond, desc, diag=None):
    global N, FAILED
    N += 1
    if cond:
        print("ok %d - %s" % (N, desc))
    else:
        FAILED += 1
        print("not ok %d - %s" % (N, desc))
        if diag:
            for line in str(diag).splitlines()[:20]:
                print("# " + line)
    sys.stdout.flush()
    return cond


class Peer:
    def __init__(self, name, cfg=None, site=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        for path, data in (site or {}).items():
            full = os.path.join(self.dir, "site", path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                if isinstance(data, int):
                    f.truncate(data)  # sparse: reads as zeros
                else:
                    f.write(data)
        conf = {"viewer": {"http_addr": "127.0.0.1:0"}, "presence": {"ttl_seconds": 30, "heartbeat_seconds": 1}}
        for k, v in (cfg or {}).items():
            conf.setdefault(k, {}).update(v)
        with open(os.path.join(self.dir, "goop.json"), "w") as f:
            json.dump(conf, f)
        self.start()

    def start(self):
        e = dict(os.environ)
        e.pop("GOOP2_VIEWER_ADDR", None)
        e["GOOP2_VIEWER_TIMEOUT"] = "30"
        # Under ASan, freed memory waits in a quarantine (256 MiB by default) and counts as RSS:
        # keep it small so that the flat-RSS check measures the viewer, not the sanitizer.
        e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8").lstrip(":")
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
        m = re.match(r"http://([^:/]+):(\d+)/", self.url or "")
        self.host, self.port = (m.group(1), int(m.group(2))) if m else (None, None)

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def loopback_addr(self):
        return next((a for a in self.addrs if a.startswith("/ip4/127.0.0.1/")), None)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def request(peer, method, path, body=None, headers=None, timeout=20):
    c = http.client.HTTPConnection(peer.host, peer.port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def raw(peer, text, timeout=20):
    """Send a raw request; return (status, headers dict, body bytes up to close)."""
    s = socket.create_connection((peer.host, peer.port), timeout=timeout)
    s.sendall(text.encode("latin-1") if isinstance(text, str) else text)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
            if b"\r\n\r\n" in data and b"Connection: close" not in data and len(data) > 0:
                head = data.split(b"\r\n\r\n")[0]
                m = re.search(rb"Content-Length: (\d+)", head, re.I)
                if m and len(data) >= len(head) + 4 + int(m.group(1)):
                    break
    except socket.timeout:
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    st = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return st, hdrs, body


def jpost(peer, path, obj, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return request(peer, "POST", path, json.dumps(obj).encode(), h)


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


INDEX = b"<!doctype html><html><head><link rel=stylesheet href=style.css></head><body>Bob's site</body></html>\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def main():
    bob = Peer("bob", site={"index.html": INDEX, "style.css": b"body{color:red}\n", "images/pic.png": PNG,
                            "big.bin": BIG, "notes": b"plain notes\n", "lua/secret.lua": b"return 1\n",
                            "ten.txt": b"0123456789"})
    if not ok(bob.url is not None and bob.loopback_addr(), "bob starts", bob.stderr()):
        return
    alice = Peer("alice", cfg={"p2p": {"bootstrap": [bob.loopback_addr()]}},
                 site={"index.html": b"<p>alice</p>\n", "data.json": b'{"a":1}\n'})
    if not ok(alice.url is not None, "alice starts", alice.stderr()):
        return
    deadline = time.time() + 15
    while time.time() < deadline:
        _, body = request(alice, "GET", "/api/peers")
        if bob.id in body.decode():
            break
        time.sleep(0.2)
    B = "/p/%s/" % bob.id
    A = "/p/%s/" % alice.id

    # ---- remote site through alice's viewer ----
    r, body = request(alice, "GET", B)
    ok(r.status == 200 and body == INDEX, "alice's viewer serves bob's index.html", (r.status, body[:200]))
    ok(r.getheader("Content-Type") == "text/html; charset=utf-8", "index.html is text/html",
       r.getheader("Content-Type"))
    ok(r.getheader("Content-Security-Policy") == CSP, "the /p/ CSP is exact", r.getheader("Content-Security-Policy"))
    ok(r.getheader("X-Content-Type-Options") == "nosniff", "nosniff on /p/")
    r, body = request(alice, "GET", "/p/%s" % bob.id)
    ok(r.status in (301, 302) and r.getheader("Location") == B, "/p/<id> redirects to /p/<id>/",
       (r.status, r.getheader("Location")))
    r, body = request(alice, "GET", B + "style.css")
    ok(r.status == 200 and body == b"body{color:red}\n" and r.getheader("Content-Type").startswith("text/css"),
       "bob's CSS with text/css", (r.status, r.getheader("Content-Type")))
    r, body = request(alice, "GET", B + "images/pic.png")
    ok(r.status == 200 and body == PNG and r.getheader("Content-Type") == "image/png", "bob's image, byte-exact",
       (r.status, r.getheader("Content-Type"), len(body)))
    r, body = request(alice, "GET", B + "missing.html")
    ok(r.status == 404, "a missing remote file is 404", r.status)
    r, body = request(alice, "GET", B + "lua/secret.lua")
    ok(r.status == 403 and b"return 1" not in body, "bob's lua/ is 403", (r.status, body[:100]))
    ok(r.getheader("Content-Security-Policy") == CSP and "text/html" in r.getheader("Content-Type"),
       "error pages are HTML with the CSP")
    r, body = request(alice, "GET", "/p/notapeerid/")
    ok(r.status == 400, "an invalid peer id is 400", r.status)
    r, body = request(alice, "HEAD", B + "ten.txt")
    ok(r.status == 200 and body == b"" and r.getheader("Content-Length") == "10", "HEAD on a remote file: headers only",
       (r.status, r.getheader("Content-Length"), body))
    r, body = request(alice, "GET", B + "ten.txt", headers={"Range": "bytes=2-5"})
    ok(r.status == 206 and body == b"2345" and r.getheader("Content-Range") == "bytes 2-5/10",
       "remote Range bytes=2-5 is 206", (r.status, body, r.getheader("Content-Range")))
    r, body = request(alice, "GET", B + "ten.txt", headers={"Range": "bytes=-3"})
    ok(r.status == 206 and body == b"789", "remote suffix range", (r.status, body))
    r, body = request(alice, "GET", B + "ten.txt", headers={"Range": "bytes=20-30"})
    ok(r.status == 416 and r.getheader("Content-Range") == "bytes */10", "remote unsatisfiable range is 416",
       (r.status, r.getheader("Content-Range")))
    r, body = request(alice, "GET", B + "notes")
    ok(r.status == 200 and r.getheader("Content-Type") == "application/octet-stream",
       "no extension, no useful remote MIME: by extension", r.getheader("Content-Type"))

    # path tricks (raw, so that the client does not normalise them)
    for name, path in [("%2e%2e", B + "%2e%2e/goop.json"), ("..%2f", B + "..%2fgoop.json"),
                       ("../", B + "../goop.json"), ("backslash", B + "..\\goop.json"),
                       ("%5c", B + "..%5cgoop.json"), ("%252e%252e", B + "%252e%252e/goop.json"),
                       ("own %2e%2e", A + "%2e%2e/goop.json"), ("own ..%2f", A + "..%2fgoop.json"),
                       ("own backslash", A + "..\\goop.json")]:
        st, _, body = raw(alice, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path)
        ok(st in (400, 403, 404) and b"identity" not in body and b"p2p" not in body,
           "path trick %s is refused" % name, (st, body[:100]))

    # ---- own site ----
    r, body = request(alice, "GET", A)
    etag = r.getheader("ETag")
    ok(r.status == 200 and body == b"<p>alice</p>\n" and etag, "own index.html with an ETag", (r.status, etag))
    ok(r.getheader("Content-Security-Policy") == CSP, "own site pages carry the CSP")
    r, body = request(alice, "GET", A + "index.html", headers={"If-None-Match": etag})
    ok(r.status == 304 and body == b"", "If-None-Match on the own site is 304", r.status)
    r, body = request(alice, "GET", A + "index.html", headers={"If-None-Match": '"other", ' + etag})
    ok(r.status == 304, "If-None-Match with a list", r.status)
    r, body = request(alice, "GET", A + "data.json", headers={"Range": "bytes=1-3"})
    ok(r.status == 206 and body == b'"a"' and r.getheader("Content-Range") == "bytes 1-3/8", "own Range is 206",
       (r.status, body, r.getheader("Content-Range")))
    r, body = request(alice, "GET", A + "data.json", headers={"Range": "bytes=9-"})
    ok(r.status == 416, "own unsatisfiable range is 416", r.status)
    r, body = request(alice, "GET", A + "data.json", headers={"Range": "bytes=abc"})
    ok(r.status == 416, "own malformed range is 416", r.status)
    r, body = request(alice, "HEAD", A + "data.json")
    ok(r.status == 200 and body == b"" and r.getheader("Content-Length") == "8", "own HEAD", (r.status, body))
    r, body = request(alice, "GET", A + "nope.txt")
    ok(r.status == 404, "own missing file is 404", r.status)

    # ---- 100 MiB through the viewer, RSS flat ----
    base_rss = alice.rss_kib()
    c = http.client.HTTPConnection(alice.host, alice.port, timeout=60)
    c.request("GET", B + "big.bin")
    r = c.getresponse()
    got = 0
    peak = base_rss
    slow_done = False
    t0 = time.time()
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        got += len(b)
        if not slow_done and got >= (4 << 20):  # a slow reader: the peer stream must pause
            time.sleep(1.5)
            slow_done = True
        peak = max(peak, alice.rss_kib())
    c.close()
    dt = time.time() - t0
    ok(r.status == 200 and got == BIG, "100 MiB remote file arrives complete", (r.status, got))
    ok(peak - base_rss < 40 * 1024, "alice's RSS stays flat (grew %d KiB)" % (peak - base_rss),
       (base_rss, peak))
    print("# 100 MiB through the viewer in %.2f s" % dt)

    # ---- data API (own) ----
    _, body = request(alice, "GET", "/api/csrf")
    tok = json.loads(body)["token"]
    CS = {"X-Goop-CSRF": tok}
    r, body = request(alice, "GET", "/api/csrf", headers=GUEST)
    ok(r.status == 403, "guests get no CSRF token", r.status)
    r, body = jpost(alice, "/api/data/tables/create",
                    {"name": "notes", "columns": [{"name": "text", "type": "TEXT"}]})
    ok(r.status == 403, "an owner POST without CSRF is 403", r.status)
    r, body = jpost(alice, "/api/data/tables/create",
                    {"name": "notes", "columns": [{"name": "text", "type": "TEXT"}]}, CS)
    ok(r.status == 200 and json.loads(body) == {"status": "created", "table": "notes"}, "create-table", body)
    r, body = jpost(alice, "/api/data/tables/set-policy", {"table": "notes", "policy": "open", "csrf": tok})
    ok(r.status == 200 and json.loads(body)["policy"] == "open", "set-policy open (csrf in JSON)", body)
    r, body = jpost(alice, "/api/data/insert", {"table": "notes", "data": {"text": "hi"}}, CS)
    ok(r.status == 200 and json.loads(body)["status"] == "inserted", "owner insert", body)
    r, body = jpost(alice, "/api/data/query", {"table": "notes"}, CS)
    rows = json.loads(body) if r.status == 200 else None
    ok(rows and rows[0]["text"] == "hi" and rows[0]["_owner"] == alice.id, "owner query: bare rows", body)
    r, body = request(alice, "GET", "/api/data/tables")
    ok(r.status == 200 and json.loads(body)[0]["name"] == "notes", "GET /api/data/tables", body)
    r, body = request(alice, "GET", "/api/data/insert")
    ok(r.status == 405, "wrong method is 405", r.status)
    r, body = request(alice, "POST", "/api/data/insert", b"{not json", dict(CS, **{"Content-Type": "application/json"}))
    ok(r.status == 400, "bad JSON is 400", r.status)
    r, body = jpost(alice, "/api/data/insert", {"data": {"text": "x"}}, CS)
    ok(r.status == 400 and r.getheader("Content-Type").startswith("text/plain"), "validation error is 400 text",
       (r.status, body))
    r, body = jpost(alice, "/api/data/update", {"table": "notes", "id": 1, "data": {"text": "hey"}}, CS)
    ok(r.status == 200 and json.loads(body) == {"status": "updated"}, "owner update", body)
    r, body = request(alice, "GET", "/api/data/tables", headers=GUEST)
    ok(r.status == 403, "guests get 403 on /api/data", r.status)
    st, _, body = raw(alice, "POST /api/data/insert HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Goop-CSRF: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % (tok, 2 << 20))
    ok(st == 413, "an oversize body is 413", st)
    s = socket.create_connection((alice.host, alice.port), timeout=10)
    s.sendall(("POST /api/data/insert HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Goop-CSRF: %s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % tok).encode())
    try:
        for _ in range(40):
            s.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        got = s.recv(200)
    except OSError as e:
        got = str(e).encode()
    s.close()
    ok(got.startswith(b"HTTP/1.1 413") or b"reset" in got or b"pipe" in got.lower(),
       "an oversize chunked body is 413", got[:100])

    # ---- data proxy, own id ----
    P = "/api/p/%s/data/" % alice.id
    r, body = jpost(alice, P + "insert", {"table": "notes", "data": {"text": "guest note"}}, GUEST)
    ok(r.status == 200 and json.loads(body)["status"] == "inserted", "a guest inserts into an open table", body)
    gcookie = r.getheader("Set-Cookie", "").split(";")[0]
    gh = dict(GUEST, Cookie=gcookie)
    r, body = jpost(alice, P + "query", {"table": "notes"}, gh)
    rows = json.loads(body) if r.status == 200 else []
    ok(len(rows) == 1 and rows[0]["text"] == "guest note" and rows[0]["_owner"].startswith("guest-"),
       "a guest sees only its own rows of an open table", body)
    r, body = jpost(alice, P + "tables/create", {"name": "evil", "columns": [{"name": "a", "type": "TEXT"}]}, gh)
    ok(r.status == 500 and b"schema" in body, "a guest cannot create tables (500 + error)", (r.status, body))
    r, body = jpost(alice, P + "delete", {"table": "notes", "id": 1}, gh)
    ok(r.status == 500, "a guest cannot delete the owner's row", (r.status, body))
    r, body = jpost(alice, P + "query", {"table": "notes"}, CS)
    ok(r.status == 200 and len(json.loads(body)) == 2, "the owner sees every row through the proxy", body)
    r, body = jpost(alice, P + "query", {"table": "notes"})
    ok(r.status == 403, "owner proxy POST without CSRF is 403", r.status)
    r, body = request(alice, "GET", "/api/p//data/tables")
    ok(r.status == 400, "missing peer id is 400", r.status)
    r, body = request(alice, "GET", P + "bogus")
    ok(r.status == 404, "unknown data operation is 404", r.status)

    # ---- data proxy to bob ----
    _, body = request(bob, "GET", "/api/csrf")
    btok = json.loads(body)["token"]
    r, body = jpost(bob, "/api/data/tables/create", {"name": "guestbook", "columns": [{"name": "msg", "type": "TEXT"}]},
                    {"X-Goop-CSRF": btok})
    ok(r.status == 200, "bob creates a table", body)
    r, body = jpost(bob, "/api/data/tables/create", {"name": "private", "columns": [{"name": "msg", "type": "TEXT"}]},
                    {"X-Goop-CSRF": btok})
    jpost(bob, "/api/data/tables/set-policy", {"table": "guestbook", "policy": "public"}, {"X-Goop-CSRF": btok})
    Q = "/api/p/%s/data/" % bob.id
    r, body = jpost(alice, Q + "insert", {"table": "guestbook", "data": {"msg": "from alice"}}, CS)
    ok(r.status == 200 and json.loads(body)["status"] == "inserted", "alice inserts into bob's public table", body)
    rid = json.loads(body).get("id") if r.status == 200 else 0
    r, body = jpost(alice, Q + "query", {"table": "guestbook"}, CS)
    rows = json.loads(body) if r.status == 200 else []
    ok(len(rows) == 1 and rows[0]["_owner"] == alice.id, "bob's rows name alice's peer id as owner", body)
    r, body = jpost(alice, Q + "update", {"table": "guestbook", "id": rid, "data": {"msg": "edited"}}, CS)
    ok(r.status == 200, "alice updates her row at bob", body)
    r, body = jpost(alice, Q + "insert", {"table": "private", "data": {"msg": "x"}}, CS)
    ok(r.status == 500 and b"insert not allowed" in body, "bob's owner-policy table refuses alice (500)",
       (r.status, body))
    r, body = jpost(alice, Q + "tables/create", {"name": "t", "columns": [{"name": "a", "type": "TEXT"}]}, CS)
    ok(r.status == 500, "schema ops at bob are refused (500)", (r.status, body))
    r, body = jpost(alice, Q + "query", {"table": "guestbook"}, gh)
    ok(r.status == 403, "guests cannot proxy to other peers (403)", r.status)
    r, body = jpost(alice, Q + "delete", {"table": "guestbook", "id": rid}, CS)
    ok(r.status == 200 and json.loads(body) == {"status": "deleted"}, "alice deletes her row at bob", body)
    db = sqlite3.connect(os.path.join(bob.dir, "data.db"))
    n = db.execute("SELECT COUNT(*) FROM guestbook").fetchone()[0]
    db.close()
    ok(n == 0, "bob's data.db reflects the proxy operations", n)

    # ---- site files API ----
    r, body = request(alice, "GET", "/api/site/files")
    files = json.loads(body) if r.status == 200 else []
    ok({"Path": "index.html", "IsDir": False, "Depth": 0} in files, "/api/site/files lists the site", body)
    r, _ = request(alice, "GET", "/api/site/files", headers=GUEST)
    ok(r.status == 403, "guests cannot list the site files", r.status)

    def multipart(fields):
        bnd = "----goopboundary" + hashlib.sha256(os.urandom(8)).hexdigest()[:12]
        out = b""
        for name, (fname, data) in fields.items():
            out += b"--" + bnd.encode() + b"\r\n"
            disp = 'form-data; name="%s"' % name + ('; filename="%s"' % fname if fname else "")
            out += ("Content-Disposition: %s\r\n\r\n" % disp).encode() + data + b"\r\n"
        out += b"--" + bnd.encode() + b"--\r\n"
        return out, "multipart/form-data; boundary=" + bnd

    body, ct = multipart({"path": (None, b"pages/new.html"), "file": ("new.html", b"<p>new</p>")})
    r, resp = request(alice, "POST", "/api/site/upload", body, dict(CS, **{"Content-Type": ct}))
    j = json.loads(resp) if r.status == 200 else {}
    ok(j.get("status") == "uploaded" and j.get("etag") == "sha256:" + hashlib.sha256(b"<p>new</p>").hexdigest(),
       "upload writes a file with a sha256 etag", resp)
    r, resp = request(alice, "GET", A + "pages/new.html")
    ok(r.status == 200 and resp == b"<p>new</p>", "the uploaded file is served", (r.status, resp))
    body, ct = multipart({"path": (None, b"pic.png"), "file": ("pic.png", PNG)})
    r, resp = request(alice, "POST", "/api/site/upload", body, dict(CS, **{"Content-Type": ct}))
    ok(r.status == 400 and b"images/" in resp, "images only under images/", (r.status, resp))
    body, ct = multipart({"path": (None, b"../escape.html"), "file": ("x", b"x")})
    r, resp = request(alice, "POST", "/api/site/upload", body, dict(CS, **{"Content-Type": ct}))
    ok(r.status == 400 and not os.path.exists(os.path.join(alice.dir, "escape.html")), "upload path tricks are 400",
       (r.status, resp))
    r, resp = request(alice, "POST", "/api/site/upload", body, {"Content-Type": ct})
    ok(r.status == 403, "upload without CSRF is 403", r.status)
    r, resp = request(alice, "POST", "/api/site/upload", body, dict(GUEST, **{"Content-Type": ct}))
    ok(r.status == 403, "guests cannot upload", r.status)
    r, resp = jpost(alice, "/api/site/delete", {"path": "pages/new.html"}, CS)
    ok(r.status == 200 and json.loads(resp) == {"status": "deleted"} and
       not os.path.exists(os.path.join(alice.dir, "site/pages/new.html")), "delete removes the file", resp)
    r, resp = jpost(alice, "/api/site/delete", {"path": "../goop.json"}, CS)
    ok(r.status == 400 and os.path.exists(os.path.join(alice.dir, "goop.json")), "delete path tricks are 400",
       r.status)

    # ---- slow client: a partial request does not block others ----
    s = socket.create_connection((alice.host, alice.port), timeout=10)
    s.sendall(b"POST /api/data/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
    r, body = request(alice, "GET", A)
    ok(r.status == 200, "a slow client does not block the viewer", r.status)
    s.close()

    # ---- bob stopped: 502 within the timeout ----
    bob.stop()
    t0 = time.time()
    r, body = request(alice, "GET", B + "style.css", timeout=30)
    dt = time.time() - t0
    ok(r.status == 502 and b"<html" in body.lower() and dt < 13, "bob stopped: 502 HTML page in %.1f s" % dt,
       (r.status, body[:200]))
    r, body = jpost(alice, Q + "query", {"table": "guestbook"}, CS)
    ok(r.status == 502, "bob stopped: data proxy 502", (r.status, body))
    rc = alice.stop()
    ok(rc == 0, "alice exits cleanly", alice.stderr()[-2000:])

    # ---- a peer that never answers: 502 after the 10 s header timeout ----
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    silent = alice.id  # alice is gone; carol knows her only at the silent address
    carol = Peer("carol", cfg={"p2p": {"bootstrap": ["/ip4/127.0.0.1/tcp/%d/p2p/%s" % (hole.getsockname()[1], silent)]}})
    if ok(carol.url is not None, "carol starts (bootstrap to a silent listener)", carol.stderr()):
        t0 = time.time()
        r, body = request(carol, "GET", "/p/%s/index.html" % silent, timeout=30)
        dt = time.time() - t0
        ok(r.status == 502 and 8 <= dt <= 14, "a silent peer: 502 after the timeout (%.1f s)" % dt, (r.status, body[:300]))
        s = socket.create_connection((carol.host, carol.port), timeout=10)
        s.sendall(("GET /p/%s/x.html HTTP/1.1\r\nHost: localhost\r\n\r\n" % silent).encode())
        time.sleep(0.5)
        rc = carol.stop()
        s.close()
        ok(rc == 0, "carol exits 0 on SIGTERM while a remote fetch waits", carol.stderr()[-3000:])
    hole.close()


try:
    main()
except Exception:  # a crash of the test itself is a failure, not a silent stop
    import traceback
    ok(False, "test ran to the end", traceback.format_exc())
finally:
    cleanup()
print("1..%d" % N)
sys.exit(1 if FAILED else 0)
