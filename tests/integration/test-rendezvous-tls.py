#!/usr/bin/env python3
"""Integration test of the rendezvous client over https:// and of its relay fetch.

Usage: test-rendezvous-tls.py path/to/goop2-rendezvous path/to/goop2 path/to/rdv-relay-fetch
(prints TAP)

A throwaway CA and server certificates are made with the openssl command in a
temporary directory. A TLS-terminating proxy (Python ssl, asyncio) in this
process forwards https://<host>:<port>/rdv/... to a real goop2-rendezvous on
loopback as /..., streaming both ways so the event stream flows. Checks:
two goop2 peers with https rendezvous URLs (trusted through SSL_CERT_FILE)
list each other; without the test CA a peer logs the verify failure and finds
nobody; a certificate for another name is refused; the peers reconnect after
the proxy dies and comes back. rdv_client_fetch_relay() (through the helper)
against the real server (404 without relay, plain and TLS) and against a small
Python HTTP server with valid and invalid /relay answers.
"""
import asyncio
import base64
import http.client
import http.server
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # TLS 1.0/1.1 on purpose
if len(sys.argv) < 4:
    sys.exit("usage: test-rendezvous-tls.py RDV GOOP2 RDV_RELAY_FETCH")
RDV, GOOP2, FETCH = (os.path.abspath(a) for a in sys.argv[1:4])
TMP = tempfile.mkdtemp(prefix="goop-test-rdv-tls-")
PROCS = []
N = 0
FAILED = 0
RELAY_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
OTHER_ID = "12D3KooWCMkF2tRAiFT458TiizZENyBZ2tYAFSSVfRBLMrRQFDvE"


def ok(cond, desc, diag=None):
    global N, FAILED
    N += 1
    if cond:
        print("ok %d - %s" % (N, desc))
    else:
        FAILED += 1
        print("not ok %d - %s" % (N, desc))
        if diag is not None:
            for line in str(diag).splitlines():
                print("# " + line)
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(cond, limit_s=20.0):
    end = time.time() + limit_s
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


# ---- certificates ---------------------------------------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl"] + list(args), cwd=TMP, check=True, capture_output=True)


def make_certs():
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=goop2 test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, san in (("good", "DNS:localhost,IP:127.0.0.1,IP:::1"), ("wrong", "DNS:wrong.example")):
        with open(os.path.join(TMP, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n" % san)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")


# ---- the TLS proxy --------------------------------------------------------------------------------

class TlsProxy:
    """https://HOST:PORT/PREFIX/x -> http://127.0.0.1:UPSTREAM/x, one asyncio loop in a thread."""

    def __init__(self, upstream, cert, key, prefix="/rdv", tls11=False):
        self.upstream = upstream
        self.prefix = prefix
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if tls11:  # an old server: TLS 1.0 and 1.1 only
            self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1
            self.ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        self.ctx.load_cert_chain(os.path.join(TMP, cert), os.path.join(TMP, key))
        self.ctx.sni_callback = self._sni
        self.lock = threading.Lock()
        self.sni = []       # server names the clients sent
        self.requests = []  # (method, path as received)
        self.accepted = 0   # TCP connections
        self.handshakes = 0  # completed TLS handshakes
        self.failures = 0   # failed TLS handshakes
        self.server = None
        self.conns = set()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.port = free_port()
        self.hosts = ["127.0.0.1"]
        if socket.has_ipv6:
            try:
                s = socket.socket(socket.AF_INET6)
                s.bind(("::1", self.port))
                s.close()
                self.hosts.append("::1")
            except OSError:
                pass

    def _sni(self, sslobj, name, ctx):
        with self.lock:
            self.sni.append(name)

    def _run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self):
        async def go():
            self.server = await asyncio.start_server(self._client, self.hosts, self.port)
        self._run(go())

    def stop(self):
        async def go():
            self.server.close()
            for w in list(self.conns):
                w.transport.abort()
            await self.server.wait_closed()
        self._run(go())

    def snapshot(self):
        with self.lock:
            return list(self.sni), list(self.requests), self.handshakes, self.failures

    async def _pipe_down(self, ur, w):
        try:
            while True:
                data = await ur.read(65536)
                if not data:
                    break
                w.write(data)
                await w.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            w.transport.abort()

    async def _client(self, r, w):
        with self.lock:
            self.accepted += 1
        self.conns.add(w)
        try:
            await w.start_tls(self.ctx, ssl_handshake_timeout=5)
        except (ssl.SSLError, OSError, ConnectionError, asyncio.TimeoutError):
            with self.lock:
                self.failures += 1
            self.conns.discard(w)
            w.transport.abort()
            return
        with self.lock:
            self.handshakes += 1
        uw = None
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream)
            down = asyncio.ensure_future(self._pipe_down(ur, w))
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                line, _, rest = head.partition(b"\r\n")
                method, target, version = line.decode("latin-1").split(" ", 2)
                with self.lock:
                    self.requests.append((method, target))
                if target == self.prefix or target.startswith(self.prefix + "/"):
                    target = target[len(self.prefix):] or "/"
                else:
                    target = "/not-under-the-prefix" + target
                length = 0
                for h in rest.split(b"\r\n"):
                    k, _, v = h.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                body = await r.readexactly(length) if length else b""
                uw.write(("%s %s %s\r\n" % (method, target, version)).encode("latin-1") + rest + body)
                await uw.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ConnectionError, ValueError):
            pass
        finally:
            self.conns.discard(w)
            if uw:
                uw.transport.abort()
            w.transport.abort()


# ---- processes -------------------------------------------------------------------------------------

def start_rdv(d, port):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "goop.json"), "w") as f:
        json.dump({"presence": {"rendezvous_port": port, "rendezvous_bind": "127.0.0.1", "admin_password": "pw",
                                "rendezvous_publish_per_minute": 100000,
                                "rendezvous_max_subscribers_per_ip": 1000}}, f)
    log = open(os.path.join(d, "server.log"), "ab")
    p = subprocess.Popen([RDV, "-dir", d], stdout=log, stderr=log)
    PROCS.append(p)
    wait_for(lambda: http_status(port, "/healthz") == 200, 10)
    return p


def http_get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def http_status(port, path):
    try:
        return http_get(port, path)[0]
    except OSError:
        return None


def env_for(trust):
    env = dict(os.environ)
    env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_CERT_DIR", None)
    if trust:
        env["SSL_CERT_FILE"] = os.path.join(TMP, "ca.pem")
    return env


class Peer:
    def __init__(self, name, url, trust):
        self.name = name
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.view = free_port()
        cfg = {"profile": {"label": "peer-" + name},
               "viewer": {"http_addr": "127.0.0.1:%d" % self.view},
               # a tag of its own: mDNS must not be what finds the others
               "p2p": {"mdns_tag": "rdv-tls-test-%d-%s" % (os.getpid(), name)},
               "presence": {"rendezvous_wan": url, "heartbeat_seconds": 1}}
        with open(os.path.join(self.dir, "goop.json"), "w") as f:
            json.dump(cfg, f)
        self.logpath = os.path.join(self.dir, "goop2.log")
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([GOOP2, "-dir", self.dir], stdout=log, stderr=log, env=env_for(trust))
        PROCS.append(self.proc)

    def labels(self):
        try:
            st, body = http_get(self.view, "/api/peers")
            return [e.get("Content") for e in json.loads(body)] if st == 200 else []
        except (OSError, ValueError):
            return []

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def fetch(url, trust=True, count=1, timeout=60):
    r = subprocess.run([FETCH, url, str(count)], capture_output=True, env=env_for(trust), timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def parse_fetch(out):
    """[(status_name, peer_id, [addrs])] from the helper's output."""
    res = []
    for line in out.splitlines():
        if line.startswith("status "):
            res.append([line.split()[2], None, []])
        elif line.startswith("peer_id ") and res:
            res[-1][1] = line.split()[1]
        elif line.startswith("addr ") and res:
            res[-1][2].append(line.split()[1])
    return res


# ---- the tiny /relay server -------------------------------------------------------------------------

def relay_answers():
    good = ["/ip4/1.2.3.4/tcp/4001", "/ip4/127.0.0.1/tcp/4001/p2p/" + RELAY_ID, "/dns4/relay.example.org/tcp/443/wss"]
    bad = ["/ip4/1.2.3.4/tcp/4001/p2p/" + OTHER_ID, "/ip4/1.2.3.4/tcp/4001/p2p/%s/p2p-circuit" % RELAY_ID,
           "/ip4/1.2.3/tcp/1", "/ip4/1.2.3.4/tcp/70000", "/tcp/1", "not a multiaddr", 7, None]
    return {
        "/good/relay": (200, json.dumps({"peer_id": RELAY_ID, "addrs": good[:1] + bad + good[1:]}) + "\n"),
        "/many/relay": (200, json.dumps({"peer_id": RELAY_ID,
                                         "addrs": ["/ip4/10.0.0.%d/tcp/4001" % i for i in range(20)]})),
        "/badjson/relay": (200, "{\"peer_id\": "),
        "/badid/relay": (200, json.dumps({"peer_id": "12D3KooWnope", "addrs": good})),
        "/noaddr/relay": (200, json.dumps({"peer_id": RELAY_ID, "addrs": bad})),
        "/notarray/relay": (200, json.dumps({"peer_id": RELAY_ID, "addrs": good[0]})),
        "/big/relay": (200, json.dumps({"peer_id": RELAY_ID, "addrs": good, "pad": "x" * 70000})),
        "/missing/relay": (404, "404 page not found"),
        "/gateway/relay": (502, "bad gateway"),
        "/broken/relay": (500, "internal error"),
    }


class RelayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers = relay_answers()

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/hang/relay":
            time.sleep(15)  # longer than the client's 10 s timeout
            return
        st, body = self.answers.get(self.path, (404, "404 page not found"))
        data = body.encode()
        self.send_response(st)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_relay_parser():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RelayHandler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    rc, out, err = fetch(base + "/good", count=2)
    res = parse_fetch(out)
    want_addrs = ["/ip4/1.2.3.4/tcp/4001", "/ip4/127.0.0.1/tcp/4001/p2p/" + RELAY_ID,
                  "/dns4/relay.example.org/tcp/443/wss"]
    ok(rc == 0 and len(res) == 2 and all(r == ["OK", RELAY_ID, want_addrs] for r in res),
       "relay: valid answer parsed, invalid addresses skipped, second fetch from the callback", out + err)
    ok("busy ok" in out, "relay: a second fetch while one is in flight is refused (EBUSY)", out)
    rc, out, err = fetch(base + "/many")
    res = parse_fetch(out)
    ok(rc == 0 and res and res[0][0] == "OK" and res[0][2] == ["/ip4/10.0.0.%d/tcp/4001" % i for i in range(16)],
       "relay: addresses capped at 16", out)
    for case, want in (("badjson", "GOOP_EPARSE"), ("badid", "GOOP_EPARSE"), ("noaddr", "GOOP_EPARSE"),
                       ("notarray", "GOOP_EPARSE"), ("big", "GOOP_EMSGSIZE"), ("missing", "GOOP_ENOENT"),
                       ("gateway", "GOOP_ENOENT"), ("broken", "GOOP_EPROTO")):
        rc, out, err = fetch(base + "/" + case)
        res = parse_fetch(out)
        ok(rc == 0 and len(res) == 1 and res[0] == [want, None, []] and "error with a result" not in out,
           "relay: %s -> %s" % (case, want), out + err)
    rc, out, err = fetch(base + "/hang")
    res = parse_fetch(out)
    ok(rc == 0 and len(res) == 1 and res[0][0] == "GOOP_ETIMEDOUT", "relay: no answer -> GOOP_ETIMEDOUT", out + err)
    rc, out, err = fetch(base + "/hang", count="free")
    ok(rc == 0 and not parse_fetch(out), "relay: a client freed during a fetch reports nothing", out + err)
    rc, out, err = fetch("http://127.0.0.1:%d" % free_port())
    res = parse_fetch(out)
    ok(rc == 0 and len(res) == 1 and res[0][0] == "GOOP_EIO", "relay: connection refused -> GOOP_EIO", out + err)
    srv.shutdown()
    srv.server_close()


# ---- the test -------------------------------------------------------------------------------------

def main():
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # failed handshakes are expected
    make_certs()
    rport = free_port()
    rdv = start_rdv(os.path.join(TMP, "rdv"), rport)
    ok(http_status(rport, "/healthz") == 200, "goop2-rendezvous is up")

    rc, out, err = fetch("http://127.0.0.1:%d" % rport)
    ok(rc == 0 and parse_fetch(out) == [["GOOP_ENOENT", None, []]], "relay: plain server without relay -> ENOENT",
       out + err)
    test_relay_parser()

    proxy = TlsProxy(rport, "good.pem", "good.key")
    proxy.start()
    tport = proxy.port
    use_localhost = False
    try:
        use_localhost = socket.getaddrinfo("localhost", tport, type=socket.SOCK_STREAM)[0][4][0] in proxy.hosts
    except OSError:
        pass
    rc, out, err = fetch(" HTTPS://127.0.0.1:%d/rdv/ " % tport)
    ok(rc == 0 and parse_fetch(out) == [["GOOP_ENOENT", None, []]], "relay over https -> ENOENT (404)", out + err)
    for bad, why in (("ftp://127.0.0.1:%d" % tport, "only http:// and https://"),
                     ("https://user@127.0.0.1:%d" % tport, "scheme://host[:port][/path]"),
                     ("https://127.0.0.1:%d/?x=1" % tport, "scheme://host[:port][/path]"),
                     ("https://[::1", "bad rendezvous URL")):
        rc, out, err = fetch(bad)
        ok(rc == 1 and "new failed" in out and why in out, "refused at start: " + bad, out + err)

    # (1) Two peers trusting the test CA through SSL_CERT_FILE.
    host_a = "localhost" if use_localhost else "127.0.0.1"
    url_a = "https://%s:%d/rdv" % (host_a, tport)
    url_b = "https://127.0.0.1:%d/rdv/" % tport
    alice = Peer("alice", url_a, True)
    bob = Peer("bob", url_b, True)
    found = wait_for(lambda: "peer-bob" in alice.labels() and "peer-alice" in bob.labels())
    ok(found, "two peers with https rendezvous URLs list each other", (alice.labels(), bob.labels()))
    sni, reqs, _, _ = proxy.snapshot()
    paths = set(p for _, p in reqs)
    ok({"/rdv/events", "/rdv/publish"} <= paths and all(p.startswith("/rdv/") for p in paths),
       "publish and events go through the TLS proxy under the path prefix", sorted(paths))
    if use_localhost:
        ok("localhost" in sni, "SNI carries the host name", sni)
    else:
        ok(True, "# SKIP localhost does not resolve to a loopback address the proxy listens on")
    ok(all(s is None or s == "localhost" for s in sni), "no SNI for IP addresses", sni)
    st, body = http_get(rport, "/peers.json", {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()})
    rows = json.loads(body) if st == 200 else []
    ok(sorted(r.get("content") for r in rows) == ["peer-alice", "peer-bob"], "both peers published over TLS", body)

    # (2) A peer without the test CA: verify failure logged, nobody found.
    fail0 = proxy.snapshot()[3]
    carol = Peer("carol", "https://127.0.0.1:%d/rdv" % tport, False)
    want = "goop2: rendezvous https://127.0.0.1:%d/rdv: certificate verify failed: " % tport
    logged = wait_for(lambda: want in carol.log())
    ok(logged, "an untrusted certificate is logged as a verify failure", carol.log()[-2000:])
    ok(wait_for(lambda: proxy.snapshot()[3] >= fail0 + 4, 30), "the proxy saw the client abort the handshakes",
       proxy.snapshot()[3])
    ok(carol.log().count("certificate verify failed") == 1, "the failure is logged once, not at every retry",
       carol.log()[-2000:])
    ok("peer-carol" not in alice.labels() and not [x for x in carol.labels() if x.startswith("peer-")],
       "the peer without the CA finds nobody and is not found", (alice.labels(), carol.labels()))
    rc, out, err = fetch("https://127.0.0.1:%d/rdv" % tport, trust=False)
    ok(rc == 0 and parse_fetch(out) == [["GOOP_EIO", None, []]] and "certificate verify failed" in err,
       "relay fetch without the CA fails (GOOP_EIO) and says why", out + err)
    ok(carol.stop() == 0, "the peer without the CA exits 0")

    # (3) A certificate for another name (signed by the trusted CA).
    wrong = TlsProxy(rport, "wrong.pem", "wrong.key")
    wrong.start()
    dave = Peer("dave", "https://127.0.0.1:%d/rdv" % wrong.port, True)
    ok(wait_for(lambda: "certificate verify failed: IP address mismatch" in dave.log()),
       "a certificate without the IP address is refused", dave.log()[-2000:])
    if use_localhost:
        rc, out, err = fetch("https://localhost:%d/rdv" % wrong.port)
        ok(rc == 0 and parse_fetch(out) == [["GOOP_EIO", None, []]]
           and "certificate verify failed: hostname mismatch" in err,
           "a certificate for another host name is refused", out + err)
    else:
        ok(True, "# SKIP localhost does not resolve to a loopback address the proxy listens on")
    ok(not wrong.snapshot()[1], "no request was sent over the refused connections", wrong.snapshot()[1])
    ok("peer-dave" not in alice.labels(), "the refused peer is not found", alice.labels())
    ok(dave.stop() == 0, "the refused peer exits 0")
    wrong.stop()

    # https:// to a server that does not speak TLS, and to one that only speaks TLS 1.1.
    rc, out, err = fetch("https://127.0.0.1:%d" % rport)
    ok(rc == 0 and parse_fetch(out) == [["GOOP_EIO", None, []]] and ": TLS failure: " in err,
       "https:// to a plain HTTP server fails with a TLS message", out + err)
    old = TlsProxy(rport, "good.pem", "good.key", tls11=True)
    old.start()
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(os.path.join(TMP, "ca.pem"))
    cctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    cctx.minimum_version = ssl.TLSVersion.TLSv1
    try:
        with socket.create_connection(("127.0.0.1", old.port), timeout=5) as raw:
            with cctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                old_ok = t.version() == "TLSv1.1"
    except (OSError, ssl.SSLError):
        old_ok = False
    if old_ok:
        rc, out, err = fetch("https://127.0.0.1:%d/rdv" % old.port)
        ok(rc == 0 and parse_fetch(out) == [["GOOP_EIO", None, []]] and ": TLS failure: " in err
           and not [r for r in old.snapshot()[1] if r[1] == "/rdv/relay"],
           "a server that offers only TLS 1.1 is refused", out + err)
    else:
        ok(True, "# SKIP this OpenSSL cannot serve TLS 1.1")
    old.stop()

    # (4) The TLS server dies and comes back: the peers reconnect.
    proxy.stop()
    ok(wait_for(lambda: b"goop_rendezvous_subscribers 0" in http_get(rport, "/metrics")[1]),
       "the streams end with the proxy", http_get(rport, "/metrics")[1][:300])
    time.sleep(1)  # a few failed reconnects
    _, reqs0, _, _ = proxy.snapshot()
    n_events0 = sum(1 for _, p in reqs0 if p == "/rdv/events")
    proxy.start()
    ok(wait_for(lambda: b"goop_rendezvous_subscribers 2" in http_get(rport, "/metrics")[1], 30),
       "both peers subscribe again through the restarted proxy", http_get(rport, "/metrics")[1][:300])
    _, reqs1, _, _ = proxy.snapshot()
    ok(sum(1 for _, p in reqs1 if p == "/rdv/events") >= n_events0 + 2, "new /events requests after the restart")
    erin = Peer("erin", "http://127.0.0.1:%d" % rport, False)  # plain http, straight to the server
    ok(wait_for(lambda: "peer-erin" in alice.labels() and "peer-erin" in bob.labels()),
       "a new peer reaches both over their reconnected streams", (alice.labels(), bob.labels()))
    ok(wait_for(lambda: "connected" in alice.log().split("event stream lost")[-1], 10)
       and "event stream lost" in alice.log(), "the loss and the reconnection are logged", alice.log()[-1500:])

    codes = [p.stop() for p in (alice, bob, erin)]
    ok(codes == [0, 0, 0], "the peers exit 0 on SIGTERM", codes)
    ok(wait_for(lambda: http_get(rport, "/peers.json",
                                 {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()})[1].strip()
                == b"[]", 10), "stopped peers published offline over TLS")
    proxy.stop()
    rdv.send_signal(signal.SIGTERM)
    ok(rdv.wait(timeout=10) == 0, "goop2-rendezvous exits 0")


try:
    main()
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
