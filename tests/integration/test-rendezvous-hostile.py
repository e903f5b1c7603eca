#!/usr/bin/env python3
"""Hostile clients against goop2-rendezvous over real loopback sockets.

Usage: test-rendezvous-hostile.py path/to/goop2-rendezvous   (prints TAP)

Oversize and never-ending bodies, slowloris headers, 10,000 idle
connections (RSS reported) and more than the connection limit, header
floods, malformed JSON / wrong types / huge strings / invalid UTF-8, HTML
and script in announced labels, too many /events subscribers from one IP
and a subscriber that never reads. Through all of it the server must keep
answering other clients and never crash. Client sockets bind to several
127.0.0.x source addresses so the per-IP publish rate limit (60 per minute)
is not what a check runs into. No timing assertions: timeouts only bound
the waits.
"""
import base64
import http.client
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RDV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit("usage: test-rendezvous-hostile.py RDV")
TMP = tempfile.mkdtemp(prefix="goop-test-rdv-hostile-")
PROCS = []
N = 0
FAILED = 0
PASSWORD = "h0stile"
REQUEST_DEADLINE_S = 10  # the server's limit for receiving one request (headers and body)
IDLE_CONNS = 10000


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


def note(text):
    print("# " + text)
    sys.stdout.flush()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, name, nofile=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.port = free_port()
        with open(os.path.join(self.dir, "goop.json"), "w") as f:
            json.dump({"presence": {"rendezvous_port": self.port, "rendezvous_bind": "127.0.0.1",
                                    "admin_password": PASSWORD}}, f)
        self.log = open(os.path.join(self.dir, "server.log"), "ab")

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        # MALLOC_PERTURB_ (set by meson test) writes every malloc'd byte: RSS would then count
        # memory the server reserves but never touches.
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
        self.proc = subprocess.Popen([RDV, "-dir", self.dir], stdout=self.log, stderr=self.log, preexec_fn=limit,
                                     env=env)
        PROCS.append(self.proc)
        self.up = False
        for _ in range(200):
            if self.healthz():
                self.up = True
                break
            time.sleep(0.05)

    def alive(self):
        return self.proc.poll() is None

    def healthz(self, src="127.0.0.1"):
        try:
            st, body = req(self.port, "GET", "/healthz", src=src)
            return st == 200 and body == b"ok"
        except OSError:
            return False

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def metric(self, name):
        st, body = req(self.port, "GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_text(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")


class SrcHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection from a chosen 127.0.0.x source address."""

    def __init__(self, host, port, src, timeout):
        super().__init__(host, port, timeout=timeout, source_address=(src, 0))


def req(port, method, path, body=None, headers=None, src="127.0.0.1", timeout=10):
    c = SrcHTTPConnection("127.0.0.1", port, src, timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data
    finally:
        c.close()


SRC_NEXT = [20]


def next_src():
    """A fresh source address for a publish (each sees only a few publishes: no rate limit)."""
    SRC_NEXT[0] += 1
    n = SRC_NEXT[0]
    return "127.0.%d.%d" % (n // 250, n % 250 + 2)


def publish(port, body, src=None):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return req(port, "POST", "/publish", body, {"Content-Type": "application/json"}, src=src or next_src())


def auth():
    return {"Authorization": "Basic " + base64.b64encode(("admin:" + PASSWORD).encode()).decode()}


def raw_conn(port, src="127.0.0.1", timeout=10, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_until(s, needle, limit_s=10.0):
    """Read until |needle| is seen, EOF, an error or the time is up. Returns (data, closed)."""
    buf = b""
    end = time.time() + limit_s
    while (needle is None or needle not in buf) and time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


def wait_closed(s, limit_s):
    """True when the peer closes |s| (EOF or reset) within |limit_s|; data before that is skipped."""
    end = time.time() + limit_s
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            return True
        if not chunk:
            return True
    return False


def sse_open(port, src="127.0.0.1", rcvbuf=None):
    s = raw_conn(port, src=src, rcvbuf=rcvbuf)
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


# ---------------------------------------------------------------------------


def oversize(srv):
    # Content-Length far above the limit: 413 at once, without waiting for the body, then close.
    s = raw_conn(srv.port, src=next_src())
    s.sendall(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000000000\r\n\r\n" + b"{" + b" " * 1000)
    data, closed = read_until(s, b"\r\n\r\n", 10)
    ok(data.startswith(b"HTTP/1.1 413"), "publish with Content-Length 1e9: 413 before the body arrives", data[:200])
    ok(closed or wait_closed(s, 10), "... and the connection is closed")
    s.close()
    # 70,000 bytes announced and sent.
    s = raw_conn(srv.port, src=next_src())
    s.sendall(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n")
    try:
        s.sendall(b"{" + b" " * 69998 + b"}")
    except OSError:
        pass
    data, closed = read_until(s, b"request body too large", 10)
    ok(data.startswith(b"HTTP/1.1 413") and b"request body too large" in data,
       "publish of 70,000 bytes: 413 request body too large", data[:200])
    ok(closed or wait_closed(s, 10), "... and the connection is closed")
    s.close()
    # A body on a route that takes none.
    s = raw_conn(srv.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
    data, closed = read_until(s, b"\r\n\r\n", 10)
    ok(data.startswith(b"HTTP/1.1 413"), "GET with Content-Length 5e6: 413", data[:200])
    s.close()
    # A chunked body that never ends (chunks keep coming): 413 or a close, long before 4 MiB are in.
    s = raw_conn(srv.port, src=next_src())
    s.sendall(b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent = 0
    cut = False
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    s.settimeout(10)
    try:
        while sent < (4 << 20):
            s.sendall(chunk)
            sent += 0x4000
    except OSError:
        cut = True
    data, closed = read_until(s, None, 5)
    ok(cut or closed, "endless chunked publish: the server stops reading (%d KiB sent)" % (sent // 1024),
       data[:200])
    s.close()
    ok(srv.healthz(), "server answers after the oversize bodies")


def never_ending(srv):
    """Connections that never finish a request: slowloris headers, an unfinished chunked body,
    a body that stops half way. All are closed after the request deadline while others get answers."""
    slow = []
    for i in range(40):
        s = raw_conn(srv.port, src="127.0.1.%d" % (i + 2))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    chunked = raw_conn(srv.port, src=next_src())
    chunked.sendall(b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"type\"")
    half = raw_conn(srv.port, src=next_src())
    half.sendall(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"type\":")
    start = time.time()
    open_slow = set(range(len(slow)))
    answered = 0
    asked = 0
    closed_at = None
    # One byte every 2 s on every slowloris connection until the server has closed them all.
    while open_slow and time.time() - start < REQUEST_DEADLINE_S * 4 + 20:
        for i in list(open_slow):
            try:
                slow[i].sendall(b"a")
                slow[i].settimeout(0.001)
                if slow[i].recv(4096) == b"":
                    open_slow.discard(i)
            except socket.timeout:
                pass
            except OSError:
                open_slow.discard(i)
        asked += 1
        answered += srv.healthz(src=next_src())
        time.sleep(2)
    closed_at = time.time() - start
    ok(not open_slow, "slowloris: all 40 connections sending a header byte every 2 s are closed (%.0f s)" %
       closed_at, "%d still open" % len(open_slow))
    ok(answered == asked and asked > 0, "other clients were answered meanwhile (%d/%d)" % (answered, asked))
    ok(wait_closed(chunked, 30), "a chunked body without end is closed")
    ok(wait_closed(half, 30), "a body that stops half way is closed")
    for s in slow + [chunked, half]:
        s.close()
    ok(srv.alive() and srv.healthz(), "server fine after the slow clients")


def idle_flood(srv):
    """10,000 idle TCP connections: the server answers others, memory stays bounded, and they are
    closed by the request deadline."""
    rss0 = srv.rss_kib()
    conns = []
    err = None
    for i in range(IDLE_CONNS):
        try:
            s = socket.socket()
            s.bind(("127.0.%d.%d" % (2 + i // 200, 2 + i % 200), 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            conns.append(s)
        except OSError as e:
            err = e
            s.close()
            break
    ok(len(conns) == IDLE_CONNS, "%d idle connections open" % IDLE_CONNS, err)
    time.sleep(1)
    rss1 = srv.rss_kib()
    note("server RSS: %d KiB before, %d KiB with %d idle connections (%.1f KiB each)" %
         (rss0, rss1, len(conns), (rss1 - rss0) / max(1, len(conns))))
    ok(rss1 - rss0 < len(conns) * 16, "RSS stays bounded (< 16 KiB per idle connection)", (rss0, rss1))
    ok(srv.healthz(src="127.0.250.1"), "GET /healthz answered with the idle connections open")
    st, body = publish(srv.port, {"type": "online", "peerId": "12D3KooWIdleFlood", "content": "x"})
    ok(st == 204, "POST /publish answered with the idle connections open", (st, body))
    sel = selectors.DefaultSelector()
    for s in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    end = time.time() + REQUEST_DEADLINE_S * 4 + 20
    while closed < len(conns) and time.time() < end:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(s)
                closed += 1
    sel.close()
    ok(closed == len(conns), "the server closed all idle connections after its request deadline",
       "%d of %d closed" % (closed, len(conns)))
    for s in conns:
        s.close()
    time.sleep(1)
    note("server RSS after they closed: %d KiB" % srv.rss_kib())
    ok(srv.alive() and srv.healthz(), "server fine after the idle flood")


def over_limit():
    """A server with 300 file descriptors (connection limit 236) and 400 idle connections:
    those beyond the limit wait in the listen backlog, the server stays up, closes the idle
    ones at its request deadline, then takes the waiting ones (and closes them too) and
    answers a new client while all 400 are still open on our side."""
    srv = Server("rdv-small", nofile=300)
    if not ok(srv.up, "server with RLIMIT_NOFILE 300 starts", srv.log_text()):
        return
    # /events streams may take at most the connection limit minus a reserve (236 - 236/8 = 207):
    # beyond that 429, so publishes and health checks still get a connection.
    subs = []
    codes = {}
    for i in range(230):
        s = raw_conn(srv.port, src="127.0.5.%d" % (2 + i // 10))
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_until(s, b"\r\n\r\n", 10)
        if head.startswith(b"HTTP/1.1 429"):
            head += read_until(s, b")", 5)[0]
        codes[head[9:12]] = codes.get(head[9:12], 0) + 1
        subs.append((s, head))
    ok(codes.get(b"200") == 207 and codes.get(b"429") == 23,
       "subscribers beyond 207 (connection limit 236 minus a reserve) get 429", codes)
    ok(any(b"too many SSE connections (207)" in h for _, h in subs), "... with the total in the text")
    ok(srv.healthz(src="127.0.6.1"), "GET /healthz answered with 207 subscribers connected")
    st, _ = publish(srv.port, {"type": "online", "peerId": "12D3KooWAtTheCap"})
    ok(st == 204, "POST /publish answered with 207 subscribers connected")
    for s, _ in subs:
        s.close()
    time.sleep(1)
    conns = []
    for i in range(400):
        s = socket.socket()
        try:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            conns.append(s)
        except OSError:
            s.close()
    time.sleep(1)
    ok(srv.alive(), "%d idle connections to a server limited to 236: still up" % len(conns))
    healthy = False
    end = time.time() + REQUEST_DEADLINE_S * 3 + 20
    while not healthy and time.time() < end:
        healthy = srv.healthz()
    ok(healthy, "a new client is answered once the idle ones reached the deadline (ours still open)")
    sel = selectors.DefaultSelector()
    for s in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    end = time.time() + REQUEST_DEADLINE_S * 3 + 20
    while closed < len(conns) and time.time() < end:
        for key, _ in sel.select(timeout=0.5):
            try:
                d = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(key.fileobj)
                closed += 1
    sel.close()
    ok(closed == len(conns), "the server closed all of them, those beyond the limit once they got a slot",
       "%d of %d" % (closed, len(conns)))
    for s in conns:
        s.close()
    ok(srv.alive() and srv.healthz(), "limited server fine afterwards")
    ok(srv.stop() == 0, "limited server exits 0 on SIGTERM")


def header_flood(srv):
    big = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"a" * 1000) for i in range(70))  # ~71 KiB
    s = raw_conn(srv.port)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    except OSError:
        pass
    data, closed = read_until(s, b"\r\n\r\n", 10)
    ok(data.startswith(b"HTTP/1.1 431") or (closed and data == b""), "71 KiB of headers: 431 or close", data[:120])
    s.close()
    s = raw_conn(srv.port)
    try:
        s.sendall(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass
    data, closed = read_until(s, b"\r\n\r\n", 10)
    ok(data.startswith(b"HTTP/1.1 414") or data.startswith(b"HTTP/1.1 431") or (closed and data == b""),
       "70 KB request line: 414/431 or close", data[:120])
    s.close()
    # One endless header line, sent until the server stops reading.
    s = raw_conn(srv.port)
    cut = False
    try:
        s.sendall(b"GET / HTTP/1.1\r\nX-Endless: ")
        for _ in range(256):
            s.sendall(b"b" * 16384)
    except OSError:
        cut = True
    data, closed = read_until(s, None, 5)
    ok(cut or closed, "an endless header line is cut off", data[:120])
    s.close()
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n"):
        s = raw_conn(srv.port)
        s.sendall(junk)
        data, closed = read_until(s, b"\r\n\r\n", REQUEST_DEADLINE_S + 10)
        ok(data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5") or (closed and data == b""),
           "junk request %r: 4xx/5xx or close" % junk[:12], data[:120])
        s.close()
    ok(srv.alive() and srv.healthz(), "server fine after the header floods")


def bad_json(srv):
    cases = [
        (b"", "bad json"),
        (b"{", "bad json"),
        (b"{\"type\":\"online\",\"peerId\":\"x\"", "bad json"),
        (b"\"just a string\"", "bad json"),
        (b"42", "bad json"),
        (b"[" * 30000 + b"]" * 30000, "bad json"),
        ({"type": "online", "peerId": 123}, "bad json"),
        ({"type": 1, "peerId": "x"}, "bad json"),
        ({"type": "online", "peerId": "x", "content": {"a": 1}}, "bad json"),
        ({"type": "online", "peerId": "x", "email": ["a"]}, "bad json"),
        ({"type": "online", "peerId": "x", "addrs": "/ip4/1.2.3.4/tcp/1"}, "bad json"),
        ({"type": "online", "peerId": "x", "addrs": [1, 2]}, "bad json"),
        ({"type": "online", "peerId": "x", "ts": "now"}, "bad json"),
        ({"type": "online", "peerId": "x", "ts": 1.5}, "bad json"),
        ({"type": "online", "peerId": "x", "videoDisabled": "yes"}, "bad json"),
        ({"type": "online", "peerId": "x", "verified": 1}, "bad json"),
        (b'{"type":"online","peerId":"\xff\xfe"}', "bad json"),
        (b'{"type":"online","peerId":"x","content":"\xc3\x28"}', "bad json"),
        (b'{"type":"online","peerId":"x","content":"\xed\xa0\x80"}', "bad json"),
        (b'{"type":"online","peerId":"x","content":"\\ud800"}', "bad json"),
        (b"null", "bad message: type and peerId are required"),
        ({}, "bad message: type and peerId are required"),
        ({"type": "   ", "peerId": "x"}, "bad message: type and peerId are required"),
        ({"type": "online", "peerId": "\t \n"}, "bad message: type and peerId are required"),
        ({"type": "<b>x</b>", "peerId": "x"}, 'bad message: unknown type "<b>x</b>"'),
        ({"type": "online", "peerId": "p" * 60000}, "bad message: peerId too long"),
        ({"type": "online", "peerId": "x", "content": "c" * 60000}, "bad message: content too long"),
        ({"type": "online", "peerId": "x", "content": "\u00e9" * 2049}, "bad message: content too long"),
        ({"type": "online", "peerId": "x", "email": "e" * 60000}, "bad message: email too long"),
        ({"type": "online", "peerId": "x", "addrs": ["/ip4/1.2.3.4"] * 3000}, "bad message: too many addrs"),
        ({"type": "online", "peerId": "x", "addrs": ["a" * 50000]}, "bad message: addr too long"),
    ]
    for body, want in cases:
        st, got = publish(srv.port, body)
        shown = body if isinstance(body, bytes) else json.dumps(body).encode()
        ok(st == 400 and got.decode(errors="replace").strip() == want,
           "publish %s -> 400 %s" % (shown[:40].decode("latin-1") + ("..." if len(shown) > 40 else ""), want),
           (st, got[:200]))
    ok(srv.alive() and srv.healthz(), "server fine after the malformed publishes")


def html_labels(srv):
    evil = {
        "type": "online",
        "peerId": "12D3KooW<script>alert('id')</script>",
        "content": "</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>",
        "email": "\"><svg onload=alert(3)>@example.org",
        "avatarHash": "'><iframe src=javascript:alert(4)>",
        "addrs": ["/ip4/127.0.0.1/tcp/1/<b>"],
    }
    st, body = publish(srv.port, evil)
    ok(st == 204, "publish with HTML/script in every field accepted", (st, body))
    # A refused publish whose reason (logged, shown on /admin) quotes attacker text.
    st, body = publish(srv.port, {"type": "<img src=y onerror=alert(5)>", "peerId": "x"})
    ok(st == 400, "publish with HTML in an unknown type refused")
    st, page = req(srv.port, "GET", "/")
    ok(st == 200 and b"<script" not in page and b"onerror" not in page, "/ carries no announced markup")
    st, page = req(srv.port, "GET", "/admin", headers=auth())
    low = page.lower()
    ok(st == 200 and b"<script" not in low and b"<img" not in low and b"<svg" not in low and b"<iframe" not in low
       and b"</table><" not in low, "/admin: no raw tag from a peer or the log", page[:3000])
    ok(b"&lt;script&gt;alert(1)&lt;/script&gt;" in page and b"&quot;&gt;&lt;svg onload=alert(3)&gt;" in page,
       "/admin shows the label and email escaped")
    ok(b"&lt;img src=y onerror=alert(5)&gt;" in page, "/admin shows the logged reason escaped")
    st, raw = req(srv.port, "GET", "/peers.json", headers=auth())
    try:
        rows = json.loads(raw)
    except ValueError:
        rows = None
    row = next((r for r in rows or [] if r.get("peer_id") == evil["peerId"]), None)
    ok(st == 200 and row is not None and row.get("content") == evil["content"] and row.get("email") == evil["email"],
       "/peers.json is valid JSON and round-trips the strings exactly", raw[:500])
    st, raw = req(srv.port, "GET", "/logs.json", headers=auth())
    try:
        logs = json.loads(raw)
    except ValueError:
        logs = None
    ok(st == 200 and isinstance(logs, list) and any("onerror=alert(5)" in line for line in logs),
       "/logs.json is valid JSON with the logged reason", raw[-500:])
    s = sse_open(srv.port, src=next_src())
    data, _ = read_until(s, b"onerror=alert(2)", 10)
    s.close()
    frames = [ln for ln in data.split(b"\n") if ln.startswith(b"data: {")]
    parsed = []
    for ln in frames:
        # the chunk framing of the HTTP body may split a line; only whole lines are parsed
        try:
            parsed.append(json.loads(ln[6:]))
        except ValueError:
            pass
    ok(any(m.get("content") == evil["content"] for m in parsed), "the /events snapshot carries the label as JSON",
       data[-500:])


def sse_limits(srv):
    src = "127.0.3.77"
    streams = [sse_open(srv.port, src=src) for _ in range(10)]
    heads = [read_until(x, b": ok\n\n", 10)[0] for x in streams]
    ok(all(h.startswith(b"HTTP/1.1 200") for h in heads), "10 subscribers from one IP accepted")
    st, body = req(srv.port, "GET", "/events", src=src)
    ok(st == 429 and body.strip() == ("too many SSE connections from %s (10)" % src).encode(),
       "11th subscriber from that IP: 429 with the spec text", (st, body))
    extra = []
    for _ in range(20):
        s = raw_conn(srv.port, src=src)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        extra.append(s)
    answers = [read_until(x, b"\r\n\r\n", 10)[0] for x in extra]
    ok(all(a.startswith(b"HTTP/1.1 429") for a in answers), "20 more from that IP: all 429")
    other = sse_open(srv.port, src="127.0.3.78")
    ok(read_until(other, b": ok\n\n", 10)[0].startswith(b"HTTP/1.1 200"), "another IP still subscribes")
    for s in streams + extra + [other]:
        s.close()


def slow_subscriber(srv):
    """A subscriber that never reads: its TCP window fills, its queue overflows (drops), and
    another subscriber still receives every later publish."""
    slow = sse_open(srv.port, src="127.0.4.2", rcvbuf=4096)
    fast = sse_open(srv.port, src="127.0.4.3")
    ok(read_until(fast, b": ok\n\n", 10)[0].startswith(b"HTTP/1.1 200"), "fast subscriber connected")
    drops0 = srv.metric("goop_rendezvous_drops_total")
    pad = "z" * 4000
    sent = 0
    fast_buf = b""
    drops = drops0
    while sent < 4000 and drops == drops0:
        for _ in range(50):
            st, _ = publish(srv.port, {"type": "update", "peerId": "12D3KooWSlow%d" % (sent % 5),
                                        "content": "%d %s" % (sent, pad)})
            sent += 1
        fast_buf += read_until(fast, None, 0.2)[0]
        drops = srv.metric("goop_rendezvous_drops_total")
    ok(drops > drops0, "the silent subscriber's queue overflowed after %d publishes of 4 KB (drops %d)" %
       (sent, drops - drops0))
    marker = "12D3KooWAfterTheFlood"
    st, _ = publish(srv.port, {"type": "online", "peerId": marker, "content": "marker"})
    data, _ = read_until(fast, marker.encode(), 30)
    fast_buf += data
    ok(marker.encode() in fast_buf, "the other subscriber still got the next publish")
    ok(fast_buf.count(b"12D3KooWSlow") >= sent, "... and every earlier one (%d)" % fast_buf.count(b"12D3KooWSlow"))
    ok(srv.healthz(), "server answers while a subscriber is stuck")
    fast.close()
    # MHD closes the stuck stream once no byte went out for its idle timeout (30 s).
    gone = False
    end = time.time() + 90
    while not gone and time.time() < end:
        time.sleep(2)
        st, body = req(srv.port, "GET", "/metrics")
        gone = b"goop_rendezvous_subscribers 0" in body
    ok(gone, "the stuck subscriber is dropped after the server's write timeout")
    slow.close()


def main():
    nofile = raise_nofile()
    note("RLIMIT_NOFILE %d" % nofile)
    srv = Server("rdv")
    if not ok(srv.up, "server starts", srv.log_text()):
        return
    oversize(srv)
    header_flood(srv)
    bad_json(srv)
    html_labels(srv)
    sse_limits(srv)
    never_ending(srv)
    if nofile >= IDLE_CONNS + 200:
        idle_flood(srv)
    else:
        ok(True, "# SKIP 10,000 idle connections need RLIMIT_NOFILE > %d (have %d)" % (IDLE_CONNS + 200, nofile))
    slow_subscriber(srv)
    ok(srv.alive(), "server never crashed", srv.log_text()[-2000:])
    ok(srv.stop() == 0, "SIGTERM exits 0")
    over_limit()


try:
    main()
except Exception:
    import traceback
    ok(False, "test ran to the end", traceback.format_exc())
finally:
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    print("1..%d" % N)
    if FAILED == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("# left %s" % TMP)
sys.exit(1 if FAILED else 0)
