#!/usr/bin/env python3
"""Integration test of the goop2 web viewer over real loopback sockets.

Usage: test-viewer.py path/to/goop2    (prints TAP)

Starts goop2 peers in a temporary directory with viewers on free ports and
checks every route, status codes and headers, SSE framing (snapshot, then an
update when a second peer connects, then a remove after the TTL), owner vs
guest, CSRF, body and header limits, slow and many clients, bind errors.
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

GOOP2 = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit("usage: test-viewer.py GOOP2")
TMP = tempfile.mkdtemp(prefix="goop-test-viewer-")
PROCS = []
N = 0
FAILED = 0
TIMEOUT_S = 3  # GOOP2_VIEWER_TIMEOUT for the peers under test


def ok(cond, desc, diag=None):
    global N, FAILED
    N += 1
    if cond:
        print("ok %d - %s" % (N, desc))
    else:
        FAILED += 1
        print("not ok %d - %s" % (N, desc))
        if diag:
            for line in str(diag).splitlines():
                print("# " + line)
    sys.stdout.flush()
    return cond


class Peer:
    def __init__(self, name, cfg=None, env=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        conf = {"viewer": {"http_addr": "127.0.0.1:0"}, "presence": {"ttl_seconds": 2, "heartbeat_seconds": 1}}
        for k, v in (cfg or {}).items():
            conf.setdefault(k, {}).update(v)
        with open(os.path.join(self.dir, "goop.json"), "w") as f:
            json.dump(conf, f)
        e = dict(os.environ)
        e.pop("GOOP2_VIEWER_ADDR", None)
        e["GOOP2_VIEWER_TIMEOUT"] = str(TIMEOUT_S)
        e.update(env or {})
        self.out = open(os.path.join(self.dir, "stdout"), "w+")
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen([GOOP2, "-dir", self.dir], stdout=self.out, stderr=self.err, env=e)
        PROCS.append(self.proc)
        self.url = self.id = None
        self.addrs = []
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            text = self.stdout()
            m = re.search(r"Viewer:\s+(http://\S+)", text)
            if m:
                self.url = m.group(1)
                self.id = re.search(r"Peer ID:\s+(\S+)", text).group(1)
                self.addrs = re.findall(r"^\s+(/ip4/\S+)$", text, re.M)
                break
            time.sleep(0.05)
        m = re.match(r"http://(\[[^\]]+\]|[^:/]+):(\d+)/", self.url or "")
        self.host, self.port = (m.group(1).strip("[]"), int(m.group(2))) if m else (None, None)

    def stdout(self):
        self.out.flush()
        with open(self.out.name) as f:
            return f.read()

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def loopback_addr(self):
        for a in self.addrs:
            if a.startswith("/ip4/127.0.0.1/"):
                return a
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def request(peer, method, path, body=None, headers=None, host=None):
    c = http.client.HTTPConnection(host or peer.host, peer.port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


class SSE:
    """A raw-socket event stream client (chunked transfer decoded by hand)."""

    def __init__(self, peer):
        self.sock = socket.create_connection((peer.host, peer.port), timeout=10)
        self.sock.sendall(b"GET /api/peers/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        self.raw = b""
        self.text = ""
        self.eof = False
        while b"\r\n\r\n" not in self.raw and self._fill(time.time() + 5):
            pass
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("iso-8859-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, OSError):
            return False
        if not data:
            self.eof = True
            return False
        self.raw += data
        return True

    def _dechunk(self):
        while True:
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.text += rest[:size].decode()
            self.raw = rest[size + 2:]
            if size == 0:
                self.eof = True
                return

    def event(self, deadline):
        """Next event (name, data-dict) or comment ("", text); None on timeout or end."""
        while True:
            self._dechunk()
            if "\n\n" in self.text:
                block, _, self.text = self.text.partition("\n\n")
                name, data = None, []
                for line in block.split("\n"):
                    if line.startswith(":"):
                        return "", line
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                return name, json.loads("\n".join(data)) if data else None
            if not self._fill(deadline):
                return None

    def close(self):
        self.sock.close()


def main():
    alice = Peer("alice")
    if not ok(alice.url is not None, "alice starts with a viewer on a free port", alice.stderr()):
        return
    ok(alice.url.startswith("http://127.0.0.1:") and alice.port > 0, "banner prints the real viewer URL")

    # ---- routes ----
    r, _ = request(alice, "GET", "/")
    ok(r.status == 302 and r.getheader("Location") == "/peers", "/ redirects to /peers (302)")
    r, body = request(alice, "GET", "/peers")
    page = body.decode()
    ok(r.status == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8", "/peers is HTML")
    csp = r.getheader("Content-Security-Policy") or ""
    ok("default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp,
       "/peers has a strict CSP", csp)
    ok(r.getheader("X-Content-Type-Options") == "nosniff", "/peers has nosniff")
    m = re.search(r'<meta name="goop-csrf" content="([0-9a-f]{64})">', page)
    ok(m is not None, "/peers embeds the CSRF token in a meta tag")
    csrf = m.group(1) if m else ""
    ok("/assets/js/goop-peers.js" in page and "<script>" not in page, "/peers loads external scripts only")
    r, body = request(alice, "GET", "/self")
    page = body.decode()
    ok(r.status == 200 and alice.id in page, "/self shows the Peer ID")
    ok(alice.url in page and os.path.join(alice.dir, "goop.json") in page, "/self shows viewer URL and config path")
    ok(alice.loopback_addr() is not None and alice.loopback_addr() in page, "/self shows the listen addresses")
    ok(r.getheader("Content-Security-Policy") is not None, "/self has a CSP")
    r, body = request(alice, "GET", "/api/self")
    me = json.loads(body)
    ok(r.status == 200 and r.getheader("Content-Type") == "application/json", "/api/self is JSON")
    ok(me == {"id": alice.id, "label": "hello", "email": "", "avatar_hash": ""}, "/api/self shape", me)
    r, body = request(alice, "GET", "/api/peers")
    ok(r.status == 200 and json.loads(body) == [], "/api/peers is an empty array at first", body)
    avatar = b"\x89PNG\r\n\x1a\n fake avatar bytes"
    with open(os.path.join(alice.dir, "avatar.png"), "wb") as f:
        f.write(avatar)
    r, body = request(alice, "GET", "/api/self")
    want = hashlib.sha256(avatar).hexdigest()[:16]
    ok(json.loads(body)["avatar_hash"] == want, "/api/self avatar_hash = first 8 bytes of SHA-256 of avatar.png")
    os.unlink(os.path.join(alice.dir, "avatar.png"))
    r, body = request(alice, "GET", "/api/self")
    ok(json.loads(body)["avatar_hash"] == "", "no avatar.png: empty avatar_hash")
    r, _ = request(alice, "HEAD", "/api/self")
    ok(r.status == 200, "HEAD is accepted where GET is")

    for name in ["goop-data.js", "goop-identity.js", "goop-site.js", "goop-peers.js", "goop-ui.js",
                 "goop-form.js", "goop-forms.js"]:
        r, body = request(alice, "GET", "/assets/js/" + name)
        good = (r.status == 200 and r.getheader("Content-Type") == "application/javascript; charset=utf-8"
                and r.getheader("Cache-Control") == "no-store, no-cache, must-revalidate, max-age=0"
                and r.getheader("Pragma") == "no-cache" and r.getheader("Expires") == "0"
                and r.getheader("ETag") is None and b"window.Goop" in body)
        ok(good, "/assets/js/%s served with no-cache headers" % name, r.getheaders())
    r, body = request(alice, "GET", "/assets/js/goop-data.js")
    ok(b"/api/p/" in body and b"/api/data" in body and b"lua/call" in body, "goop-data.js picks its base URL")
    r, body = request(alice, "GET", "/assets/css/goop.css")
    ok(r.status == 200 and r.getheader("Content-Type") == "text/css; charset=utf-8", "/assets/css/goop.css")
    for path in ["/assets/html/peers.html", "/assets/js/nope.js", "/assets/js/../css/goop.css", "/nope",
                 "/api/peersx", "/peers/x"]:
        r, _ = request(alice, "GET", path)
        ok(r.status == 404, "GET %s is 404" % path, r.status)
    r, _ = request(alice, "POST", "/api/peers", body=b"{}")
    ok(r.status == 405 and "GET" in (r.getheader("Allow") or ""), "POST /api/peers is 405 with Allow")
    r, _ = request(alice, "DELETE", "/api/self")
    ok(r.status == 405, "DELETE /api/self is 405")
    r, _ = request(alice, "GET", "/api/peers/connect")
    ok(r.status == 405, "GET /api/peers/connect is 405")

    # the JavaScript SDK, run by Node against this viewer
    node = shutil.which("node")
    sdk = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-viewer-sdk.js")
    if node and os.path.exists(sdk):
        for page, base in [("/p/12D3KooWXyz/index.html", "/api/p/12D3KooWXyz/data"), ("/peers", "/api/data")]:
            res = subprocess.run([node, sdk, alice.url, page], capture_output=True, text=True, timeout=60)
            try:
                out = json.loads(res.stdout)
            except ValueError:
                out = {"error": res.stdout + res.stderr}
            ok("error" not in out, "SDK runs in Node on %s" % page, out.get("error"))
            if "error" in out:
                continue
            ok(out["modules"] == ["data", "form", "forms", "identity", "peers", "site", "ui"], "SDK modules")
            ok(out["identity"] == me and out["id"] == alice.id and out["label"] == "hello",
               "Goop.identity reads /api/self")
            ok(out["peers"] == [], "Goop.peers.list reads /api/peers")
            want = [["GET", base + "/tables", None],
                    ["POST", base + "/insert", {"table": "posts", "data": {"title": "hi"}}],
                    ["POST", base + "/query", {"table": "posts", "where": "_owner = ?", "args": ["x"], "limit": 5}],
                    ["POST", base + "/update", {"table": "posts", "id": 3, "data": {"title": "yo"}}],
                    ["POST", base + "/delete", {"table": "posts", "id": 3}],
                    ["POST", base + "/tables/describe", {"table": "posts"}],
                    ["POST", base + "/tables/create", {"name": "t", "columns": [{"name": "a", "type": "TEXT"}]}],
                    ["POST", base + "/tables/delete", {"table": "t"}],
                    ["POST", base + "/tables/add-column", {"table": "t", "column": {"name": "b", "type": "TEXT"}}],
                    ["POST", base + "/lua/call", {"function": "fn", "params": {"n": 1}}],
                    ["GET", base + "/lua/list", None]]
            ok(out["dataCalls"] == want, "Goop.data requests under %s" % base, out["dataCalls"])
            ok(out["csrfOnPosts"] and out["siteCsrf"], "the SDK's POSTs carry X-Goop-CSRF (from /api/csrf)")
            ok(out["functions"] == [{"name": "f"}], "Goop.data.functions unwraps .functions")
            ok(out["siteCalls"] == [["POST", "/api/site/delete"], ["GET", "/api/site/files"]], "Goop.site requests")
            ok(out["sse"] == {"url": "/api/peers/events", "closed": True,
                              "seen": [["snapshot", 1], ["update", "b", "b"], ["remove", "b"]]},
               "Goop.peers.subscribe dispatches snapshot/update/remove", out["sse"])
    else:
        print("ok %d - # SKIP node not found" % (N + 1))
        globals()["N"] += 1

    # keep-alive: two requests on one connection
    c = http.client.HTTPConnection(alice.host, alice.port, timeout=5)
    c.request("GET", "/api/self")
    r1 = c.getresponse()
    r1.read()
    sock1 = c.sock
    c.request("GET", "/api/peers")
    r2 = c.getresponse()
    r2.read()
    ok(r1.status == 200 and r2.status == 200 and c.sock is sock1 and sock1 is not None, "keep-alive reuses the connection")
    c.close()

    # ---- owner vs guest ----
    for hdr in [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}, {"X-Real-IP": "203.0.113.9"}]:
        r, body = request(alice, "GET", "/api/self", headers=hdr)
        cookie = r.getheader("Set-Cookie") or ""
        gid = json.loads(body).get("id", "")
        ok(re.match(r"goop_guest=[0-9a-f]{32};", cookie) and "HttpOnly" in cookie and "SameSite=Lax" in cookie
           and gid == "guest-" + cookie[11:43], "%s makes a guest with a cookie id" % list(hdr)[0], cookie)
    r, body = request(alice, "GET", "/api/self", headers={"X-Forwarded-For": "203.0.113.9"})
    cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
    gid = json.loads(body)["id"]
    r, body = request(alice, "GET", "/api/self", headers={"X-Forwarded-For": "203.0.113.9", "Cookie": cookie})
    ok(json.loads(body)["id"] == gid and r.getheader("Set-Cookie") is None, "guest id is stable with the cookie")
    r, body = request(alice, "GET", "/api/self",
                      headers={"X-Forwarded-For": "1.2.3.4", "Cookie": "goop_guest=" + alice.id})
    ok(json.loads(body)["id"] != alice.id and r.getheader("Set-Cookie"), "a forged guest cookie is replaced")
    r, _ = request(alice, "GET", "/self", headers={"X-Forwarded-For": "1.2.3.4"})
    ok(r.status == 403, "guest gets 403 on /self")
    for host in ["localhost:%d" % alice.port, "127.0.0.1", "127.1.2.3:80", "[::1]:%d" % alice.port, "LOCALHOST"]:
        r, body = request(alice, "GET", "/api/self", headers={"Host": host})
        ok(json.loads(body)["id"] == alice.id, "Host %s from loopback is the owner" % host)
    for host in ["evil.example", "evil.example:%d" % alice.port, "192.0.2.7:8080", "[::2]:1", "localhost.evil"]:
        r, body = request(alice, "GET", "/api/self", headers={"Host": host})
        ok(json.loads(body)["id"].startswith("guest-"), "Host %s (DNS rebinding) is a guest" % host)
    r, _ = request(alice, "GET", "/self", headers={"Host": "evil.example"})
    ok(r.status == 403, "a rebinding page cannot read /self")
    r, _ = request(alice, "POST", "/api/peers/connect", body=json.dumps({"addr": "/ip4/127.0.0.1/tcp/1", "csrf": csrf}),
                   headers={"X-Forwarded-For": "1.2.3.4", "Content-Type": "application/json"})
    ok(r.status == 403, "guest gets 403 on an owner POST even with the token")
    r, body = request(alice, "GET", "/peers", headers={"X-Real-IP": "1.2.3.4"})
    ok(r.status == 200 and 'name="goop-csrf" content=""' in body.decode(), "guests browse /peers without a token")

    # ---- CSRF ----
    js = {"Content-Type": "application/json"}
    r, body = request(alice, "POST", "/api/peers/connect", body=json.dumps({"addr": "x"}), headers=js)
    ok(r.status == 403 and body.strip() == b"bad csrf", "owner POST without CSRF is 403 bad csrf", body)
    r, body = request(alice, "POST", "/api/peers/connect", body=json.dumps({"addr": "x", "csrf": "0" * 64}), headers=js)
    ok(r.status == 403, "wrong CSRF token is 403")
    r, body = request(alice, "POST", "/api/peers/connect", body=json.dumps({"addr": "x", "csrf": csrf}), headers=js)
    ok(r.status == 400 and b"invalid multiaddr" in body, "JSON csrf accepted (then the bad address is 400)", body)
    r, body = request(alice, "POST", "/api/peers/connect", body=json.dumps({"addr": "x"}),
                      headers={"Content-Type": "application/json", "X-Goop-CSRF": csrf})
    ok(r.status == 400, "X-Goop-CSRF header accepted")
    r, body = request(alice, "POST", "/api/peers/connect", body="csrf=" + csrf + "&addr=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    ok(r.status == 400 and b"expected JSON" in body, "form field csrf accepted", body)
    r, body = request(alice, "POST", "/api/peers/connect", body="{bad json", headers={"X-Goop-CSRF": csrf})
    ok(r.status == 400, "bad JSON is 400")

    # ---- limits ----
    s = socket.create_connection((alice.host, alice.port), timeout=10)
    s.sendall(("POST /api/peers/connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "X-Goop-CSRF: %s\r\nContent-Length: %d\r\n\r\n" % (csrf, 2 << 20)).encode())
    try:
        s.sendall(b"x" * (2 << 20))
    except OSError:
        pass
    try:
        head = s.recv(100)
    except OSError:
        head = b""
    s.close()
    ok(head.startswith(b"HTTP/1.1 413"), "2 MiB body (Content-Length) is 413", head)

    def chunks():
        for _ in range(40):
            yield b"y" * 65536

    c = http.client.HTTPConnection(alice.host, alice.port, timeout=10)
    try:
        c.request("POST", "/api/peers/connect", body=chunks(), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked", "X-Goop-CSRF": csrf})
        st = c.getresponse().status
    except (ConnectionError, http.client.HTTPException) as e:
        st = str(e)
    c.close()
    ok(st == 413, "2.5 MiB chunked body is 413", st)
    s = socket.create_connection((alice.host, alice.port), timeout=10)
    try:
        s.sendall(b"GET /api/self HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 << 10) + b"\r\n\r\n")
    except OSError:
        pass
    try:
        head = s.recv(100)
    except OSError:
        head = b""
    s.close()
    ok(head == b"" or re.match(rb"HTTP/1\.1 4\d\d", head), "200 KiB header is refused", head)

    # slow client: half a request line, then silence
    s = socket.create_connection((alice.host, alice.port), timeout=TIMEOUT_S + 10)
    s.sendall(b"GET /api/self HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    try:
        got = s.recv(100)
    except OSError:
        got = b""
    took = time.time() - t0
    s.close()
    ok(got == b"" and took < TIMEOUT_S + 5, "slow client cut after the %d s timeout (%.1f s)" % (TIMEOUT_S, took), got)

    # many connections at once
    socks = []
    for _ in range(150):
        socks.append(socket.create_connection((alice.host, alice.port), timeout=10))
    for s in socks:
        s.sendall(b"GET /api/self HTTP/1.1\r\nHost: x\r\n\r\n")
    good = 0
    for s in socks:
        try:
            if s.recv(12) == b"HTTP/1.1 200":
                good += 1
        except OSError:
            pass
        s.close()
    ok(good == 150, "150 concurrent connections all answered (%d)" % good)
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection((alice.host, alice.port), timeout=5))
    except OSError:
        pass
    time.sleep(0.3)
    for s in socks:
        s.close()
    time.sleep(0.3)
    r, _ = request(alice, "GET", "/api/self")
    ok(r.status == 200, "viewer still answers after 300 connections beyond the limit")

    # ---- SSE ----
    ev = SSE(alice)
    ok(ev.status == 200 and ev.headers.get("content-type") == "text/event-stream"
       and ev.headers.get("cache-control") == "no-cache", "SSE headers", ev.headers)
    first = ev.event(time.time() + 5)
    ok(first == ("snapshot", {"type": "snapshot", "peers": []}), "SSE starts with an empty snapshot", first)

    bob = Peer("bob", cfg={"p2p": {"bootstrap": [alice.loopback_addr()]}, "profile": {"label": "Bob"}})
    ok(bob.url is not None and bob.port != alice.port, "bob starts with his own viewer", bob.stderr())
    got = None
    deadline = time.time() + 10
    while time.time() < deadline:
        e = ev.event(deadline)
        if e is None or (e[0] == "update" and e[1].get("peer_id") == bob.id):
            got = e
            break
    ok(got is not None and got[1]["type"] == "update" and got[1]["peer"]["ID"] == bob.id,
       "SSE update when bob connects", got)
    if got:
        ok(set(got[1]["peer"]) == {"ID", "Content", "Email", "AvatarHash", "VideoDisabled", "Verified", "LastSeen", "Conn"},
           "update carries the peer row", got[1]["peer"])
        ok(got[1]["peer"]["Conn"] == "direct", "a TCP connection is listed as Conn: direct", got[1]["peer"])
        ok(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", got[1]["peer"]["LastSeen"]) is not None,
           "LastSeen is RFC 3339")
    r, body = request(alice, "GET", "/api/peers")
    rows = json.loads(body)
    ok([p["ID"] for p in rows] == [bob.id], "/api/peers lists bob", rows)
    r, body = request(bob, "GET", "/api/peers")
    ok([p["ID"] for p in json.loads(body)] == [alice.id], "bob's viewer lists alice (bootstrap)")
    # an asynchronous route (suspend, answer from a libevent callback, resume)
    r, body = request(alice, "GET", "/api/ping/" + bob.id)
    res = json.loads(body) if r.status == 200 else {}
    ok(r.status == 200 and res.get("peer_id") == bob.id and res.get("rtt_ms", -1) >= 0,
       "GET /api/ping/<bob> answers asynchronously", body)
    r, body = request(alice, "GET", "/api/ping/nope")
    ok(r.status == 400, "ping of an invalid peer id is 400")
    r, _ = request(alice, "GET", "/api/ping/" + bob.id, headers={"X-Forwarded-For": "1.2.3.4"})
    ok(r.status == 403, "guests cannot ping")
    # a second stream gets bob in its snapshot
    ev2 = SSE(alice)
    snap = ev2.event(time.time() + 5)
    ok(snap and snap[0] == "snapshot" and [p["ID"] for p in snap[1]["peers"]] == [bob.id],
       "a new SSE stream's snapshot has bob", snap)
    ev2.close()

    rc = bob.stop()
    ok(rc == 0, "bob exits 0 on SIGTERM")
    got = None
    deadline = time.time() + 10
    while time.time() < deadline:
        e = ev.event(deadline)
        if e is None or e[0] == "remove":
            got = e
            break
    ok(got == ("remove", {"type": "remove", "peer_id": bob.id}), "SSE remove after bob leaves and the TTL ends", got)
    r, body = request(alice, "GET", "/api/peers")
    ok(json.loads(body) == [], "/api/peers is empty again")
    t0 = time.time()
    r, body = request(alice, "GET", "/api/ping/" + bob.id)
    ok(r.status == 502 and time.time() - t0 < 12, "ping of a stopped peer is 502", (r.status, body))
    # a client leaving while its request is suspended: the peer keeps serving
    s = socket.create_connection((alice.host, alice.port), timeout=5)
    s.sendall(("GET /api/ping/%s HTTP/1.1\r\nHost: x\r\n\r\n" % bob.id).encode())
    time.sleep(0.2)
    s.close()
    time.sleep(0.3)
    r, _ = request(alice, "GET", "/api/self")
    ok(r.status == 200 and alice.proc.poll() is None, "a client leaving a suspended request is handled")

    # ---- event stream limit; closed streams free their slot at once ----
    more = [SSE(alice) for _ in range(63)]
    ok(all(m.status == 200 for m in more), "64 event streams at once")
    extra = SSE(alice)
    ok(extra.status == 503, "the 65th event stream is refused with 503", extra.status)
    extra.close()
    for m in more:
        m.close()
    time.sleep(0.5)
    again = [SSE(alice) for _ in range(10)]
    ok(all(m.status == 200 for m in again), "streams closed by their clients are dropped without waiting for a ping")
    for m in again:
        m.close()

    # ---- bind errors and 0.0.0.0 ----
    dup = Peer("dup", env={"GOOP2_VIEWER_ADDR": "127.0.0.1:%d" % alice.port})
    rc = dup.proc.wait(10)
    err = dup.stderr()
    ok(rc != 0 and "viewer.http_addr" in err and "already in use" in err, "viewer port in use is a clear error", err)
    bad = Peer("bad", env={"GOOP2_VIEWER_ADDR": "example.org:80"})
    rc = bad.proc.wait(10)
    ok(rc != 0 and "viewer.http_addr" in bad.stderr(), "a host name is refused with a message", bad.stderr())

    carol = Peer("carol", env={"GOOP2_VIEWER_ADDR": "0.0.0.0:0"})
    ok(carol.url is not None and carol.url.startswith("http://127.0.0.1:"), "0.0.0.0:0 prints a usable local URL")
    other = None
    for a in carol.addrs:
        ip = a.split("/")[2]
        if not ip.startswith("127."):
            other = ip
            break
    if other and carol.port:
        try:
            r, body = request(carol, "GET", "/api/self", host=other)
            ok(r.status == 200 and json.loads(body)["id"].startswith("guest-") and r.getheader("Set-Cookie"),
               "0.0.0.0 really binds %s, and that client is a guest" % other)
        except OSError as e:
            ok(False, "0.0.0.0 binds %s" % other, e)
    else:
        print("ok %d - # SKIP no non-loopback IPv4 address" % (N + 1))
        globals()["N"] += 1
    carol.stop()

    # SIGTERM while a request waits for a peer that never answers (a silent TCP listener)
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    hole_addr = "/ip4/127.0.0.1/tcp/%d/p2p/%s" % (hole.getsockname()[1], bob.id)
    dave = Peer("dave", cfg={"p2p": {"bootstrap": [hole_addr]}})
    ok(dave.url is not None, "dave starts (bootstrap to a silent listener)")
    if dave.url:
        s = socket.create_connection((dave.host, dave.port), timeout=10)
        s.sendall(("GET /api/ping/%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % bob.id).encode())
        time.sleep(0.5)
        rc = dave.stop()
        try:
            got = s.recv(100)
        except OSError:
            got = b""
        s.close()
        ok(rc == 0, "dave exits 0 on SIGTERM with a suspended request", dave.stderr())
        ok(got == b"" or got.startswith(b"HTTP/1.1 503") or got.startswith(b"HTTP/1.1 502"),
           "the suspended request ends with 503/502 or a close", got)
    hole.close()

    # SIGTERM with an open event stream
    rc = alice.stop()
    ok(rc == 0, "alice exits 0 on SIGTERM with an open event stream", alice.stderr())
    end = ev.event(time.time() + 5)
    ok(end is None and ev.eof, "the event stream ends cleanly at shutdown", end)
    ev.close()


def site_tests():
    """The site and data routes (test-viewer-site.py), folded into this TAP stream."""
    global N, FAILED
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-viewer-site.py")
    if not os.path.exists(script):
        return
    p = subprocess.run([sys.executable, script, GOOP2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    seen = 0
    for line in p.stdout.decode(errors="replace").splitlines():
        m = re.match(r"(not ok|ok) \d+ (.*)$", line)
        if m:
            seen += 1
            ok(m.group(1) == "ok", "site: " + m.group(2).lstrip("- "))
        elif line.startswith("#"):
            print(line)
    ok(p.returncode == 0 and seen > 0, "test-viewer-site.py passes (%d checks)" % seen)


try:
    main()
finally:
    cleanup()
site_tests()
print("1..%d" % N)
sys.exit(1 if FAILED else 0)
