#!/usr/bin/env python3
"""Integration test of goop2-rendezvous over real loopback sockets.

Usage: test-rendezvous.py path/to/goop2-rendezvous [path/to/goop2]   (prints TAP)

Starts the server in temporary directories on free ports and checks every
endpoint: /publish statuses and validation texts, body limits, /events
headers, framing and snapshot, admin auth (disabled, missing, wrong, right,
failed-login limit), HTML escaping, /metrics, the publish rate limit,
peers.db persistence across a restart and SIGHUP reload.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RDV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit("usage: test-rendezvous.py RDV [GOOP2]")
GOOP2 = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
RELAY = os.path.join(os.path.dirname(RDV), "goop2-relay")  # built next to goop2-rendezvous
TMP = tempfile.mkdtemp(prefix="goop-test-rdv-")
PROCS = []
N = 0
FAILED = 0


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


def write_config(d, port, password="", db="", **extra):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "goop.json")
    cfg = {}
    if os.path.exists(path):
        with open(path) as f:
            cfg = json.load(f)
    pres = cfg.setdefault("presence", {})
    pres["rendezvous_port"] = port
    pres["rendezvous_bind"] = "127.0.0.1"
    pres["admin_password"] = password
    pres["peer_db_path"] = db
    pres.update(extra)
    with open(path, "w") as f:
        json.dump(cfg, f)


def start(d, port):
    log = open(os.path.join(d, "server.log"), "ab")
    p = subprocess.Popen([RDV, "-dir", d], stdout=log, stderr=log)
    PROCS.append(p)
    for _ in range(400):  # up to ~20 s: an ASan build starts slowly
        if p.poll() is not None:
            break
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                c.close()
                return p
        except OSError:
            time.sleep(0.05)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        return None


def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r, data


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def publish(port, msg):
    body = msg if isinstance(msg, (bytes, str)) else json.dumps(msg)
    return req(port, "POST", "/publish", body, {"Content-Type": "application/json"})


def sse_open(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


def sse_read_until(s, needle, limit_s=5.0):
    buf = b""
    end = time.time() + limit_s
    while needle not in buf and time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def dechunk(raw):
    """Body of a chunked HTTP response read so far (headers stripped)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    out = b""
    while rest:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            break
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0 or len(rest) < n:
            out += rest[:n]
            break
        out += rest[:n]
        rest = rest[n + 2:]
    return head, out


def api_peers(port):
    try:
        st, _, body = req(port, "GET", "/api/peers")
        return json.loads(body) if st == 200 else []
    except (OSError, ValueError):
        return []


def two_peers():
    """Two goop2 peers find each other through the server alone (peer-side client)."""
    d = os.path.join(TMP, "rdv-wan")
    port = free_port()
    write_config(d, port, password="pw")
    p = start(d, port)
    views = []
    peers = []
    for name in ("alice", "bob"):
        pd = os.path.join(TMP, name)
        os.makedirs(pd, exist_ok=True)
        vp = free_port()
        views.append(vp)
        cfg = {"profile": {"label": "peer-" + name},
               "viewer": {"http_addr": "127.0.0.1:%d" % vp},
               # a tag of its own: mDNS must not be what finds the other peer
               "p2p": {"mdns_tag": "rdv-test-%d-%s" % (os.getpid(), name)},
               "presence": {"rendezvous_wan": "http://127.0.0.1:%d/" % port, "heartbeat_seconds": 1}}
        with open(os.path.join(pd, "goop.json"), "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(pd, "goop2.log"), "ab")
        pr = subprocess.Popen([GOOP2, "-dir", pd], stdout=log, stderr=log)
        PROCS.append(pr)
        peers.append(pr)
    found = False
    end = time.time() + 20
    while time.time() < end and not found:
        a = [e.get("Content") for e in api_peers(views[0])]
        b = [e.get("Content") for e in api_peers(views[1])]
        found = "peer-bob" in a and "peer-alice" in b
        time.sleep(0.2)
    ok(found, "two goop2 peers list each other via the rendezvous server",
       (api_peers(views[0]), api_peers(views[1])))
    st, _, body = req(port, "GET", "/peers.json", headers=basic("admin", "pw"))
    rows = json.loads(body) if st == 200 else []
    ok(len(rows) == 2 and all(r.get("content", "").startswith("peer-") for r in rows), "both peers published",
       body)
    # The server restarts: the peers' streams reconnect (backoff) and keep working.
    stop(p)
    time.sleep(0.5)
    p = start(d, port)
    end = time.time() + 20
    again = False
    while time.time() < end and not again:
        st, _, body = req(port, "GET", "/metrics")
        again = b"goop_rendezvous_subscribers 2" in body
        time.sleep(0.2)
    ok(again, "peers resubscribe after a server restart", body[:200])
    for pr in peers:
        pr.send_signal(signal.SIGTERM)
    codes = []
    for pr in peers:
        try:
            codes.append(pr.wait(timeout=15))
        except subprocess.TimeoutExpired:
            pr.kill()
            codes.append(None)
    ok(codes == [0, 0], "both peers exit 0 on SIGTERM", codes)
    st, _, body = req(port, "GET", "/peers.json", headers=basic("admin", "pw"))
    ok(st == 200 and json.loads(body) == [], "stopped peers published offline", body)
    stop(p)


def wait_health(port, limit_s=15):
    end = time.time() + limit_s
    while time.time() < end:
        try:
            if req(port, "GET", "/healthz")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def hosted():
    """presence.rendezvous_host: the server runs inside a goop2 peer; `goop2 rendezvous DIR`."""
    port = free_port()
    views = [free_port(), free_port()]
    procs = []
    for i, name in enumerate(("host", "guest")):
        pd = os.path.join(TMP, "hosted-" + name)
        os.makedirs(pd, exist_ok=True)
        pres = {"heartbeat_seconds": 1}
        if name == "host":
            pres.update({"rendezvous_host": True, "rendezvous_port": port, "admin_password": "pw"})
        else:
            pres["rendezvous_wan"] = "http://127.0.0.1:%d" % port
        cfg = {"profile": {"label": "hosted-" + name}, "viewer": {"http_addr": "127.0.0.1:%d" % views[i]},
               "p2p": {"mdns": False}, "presence": pres}
        with open(os.path.join(pd, "goop.json"), "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(pd, "goop2.log"), "ab")
        pr = subprocess.Popen([GOOP2, "-dir", pd], stdout=log, stderr=log)
        PROCS.append(pr)
        procs.append(pr)
        if name == "host":
            ok(wait_health(port), "rendezvous_host: the peer serves /healthz on rendezvous_port")
    found = False
    end = time.time() + 20
    while time.time() < end and not found:
        a = [e.get("Content") for e in api_peers(views[0])]
        b = [e.get("Content") for e in api_peers(views[1])]
        found = "hosted-guest" in a and "hosted-host" in b
        time.sleep(0.2)
    ok(found, "hosting peer and a WAN peer list each other", (api_peers(views[0]), api_peers(views[1])))
    st, _, body = req(port, "GET", "/peers.json", headers=basic("admin", "pw"))
    rows = json.loads(body) if st == 200 else []
    ok(sorted(r.get("content") for r in rows) == ["hosted-guest", "hosted-host"],
       "the hosting peer publishes to its own server over loopback", body)
    # SIGHUP reloads the hosted server's settings (admin password removed → 403).
    hd = os.path.join(TMP, "hosted-host", "goop.json")
    cfg = json.load(open(hd))
    cfg["presence"]["admin_password"] = ""
    json.dump(cfg, open(hd, "w"))
    procs[0].send_signal(signal.SIGHUP)
    time.sleep(0.5)
    st, _, _ = req(port, "GET", "/peers.json", headers=basic("admin", "pw"))
    ok(st == 403, "SIGHUP reloads the hosted server (admin disabled)", st)
    for pr in procs:
        pr.send_signal(signal.SIGTERM)
    codes = []
    for pr in procs:
        try:
            codes.append(pr.wait(timeout=15))
        except subprocess.TimeoutExpired:
            pr.kill()
            codes.append(None)
    ok(codes == [0, 0], "hosting and guest peers exit 0 on SIGTERM", codes)

    # rendezvous_only: no libp2p node, no viewer; the server alone.
    od = os.path.join(TMP, "only")
    os.makedirs(od, exist_ok=True)
    oport = free_port()
    json.dump({"presence": {"rendezvous_host": True, "rendezvous_only": True, "rendezvous_port": oport}},
              open(os.path.join(od, "goop.json"), "w"))
    log = open(os.path.join(od, "goop2.log"), "ab")
    pr = subprocess.Popen([GOOP2, "-dir", od], stdout=log, stderr=log)
    PROCS.append(pr)
    ok(wait_health(oport), "rendezvous_only: server up")
    out = open(os.path.join(od, "goop2.log"), "rb").read()
    ok(b"Listening:" not in out and b"rendezvous only" in out, "rendezvous_only: no libp2p node started", out[-400:])
    pr.send_signal(signal.SIGTERM)
    ok(pr.wait(timeout=15) == 0, "rendezvous_only: SIGTERM exits 0")

    # goop2 rendezvous DIR: forces both flags on a fresh directory.
    rd = os.path.join(TMP, "cmd-rdv")
    rport = free_port()
    os.makedirs(rd, exist_ok=True)
    json.dump({"presence": {"rendezvous_port": rport}}, open(os.path.join(rd, "goop.json"), "w"))
    log = open(os.path.join(rd, "goop2.log"), "ab")
    pr = subprocess.Popen([GOOP2, "rendezvous", rd], stdout=log, stderr=log)
    PROCS.append(pr)
    ok(wait_health(rport), "goop2 rendezvous DIR serves /healthz")
    st, _, _ = publish(rport, {"type": "online", "peerId": "12D3KooWCmd", "content": "x"})
    ok(st == 204, "goop2 rendezvous DIR accepts /publish", st)
    pr.send_signal(signal.SIGTERM)
    ok(pr.wait(timeout=15) == 0, "goop2 rendezvous DIR: SIGTERM exits 0")
    ok(not os.path.exists(os.path.join(rd, "data", "identity.key")), "goop2 rendezvous DIR creates no peer identity")
    # A busy port is a clear error.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    json.dump({"presence": {"rendezvous_port": busy.getsockname()[1]}}, open(os.path.join(rd, "goop.json"), "w"))
    r = subprocess.run([GOOP2, "rendezvous", rd], capture_output=True, timeout=20)
    busy.close()
    ok(r.returncode == 1 and b"rendezvous server" in r.stderr, "goop2 rendezvous: busy port → error, exit 1",
       r.stderr[-300:])


def start_with_relay(d, **extra):
    """A relay-enabled server on fresh ports; picks others when a port was taken meanwhile."""
    for _ in range(5):
        port, rport = free_port(), free_port()
        write_config(d, port, rendezvous_host=True, relay_port=rport, **extra)
        p = start(d, port)
        if p.poll() is None:
            return p, port, rport
    return p, port, rport


def relay_server():
    """relay_port > 0: the relay runs in the rendezvous process; /relay and /metrics tell about it."""
    d = os.path.join(TMP, "rdv-relay")
    p, port, rport = start_with_relay(d, external_url="http://localhost")
    st, r, body = req(port, "GET", "/relay")
    info = json.loads(body) if st == 200 else {}
    ok(st == 200 and r.getheader("Content-Type", "").startswith("application/json"), "/relay 200 JSON", (st, body))
    pid = info.get("peer_id", "")
    addrs = info.get("addrs", [])
    ok(pid.startswith("12D3KooW") and len(addrs) >= 2, "/relay names the relay and its addresses", info)
    ok(addrs and addrs[0] == "/ip4/127.0.0.1/tcp/%d/p2p/%s" % (rport, pid),
       "external_url's host comes first, with /p2p/", addrs[:1])
    ok(all(("/tcp/%d" % rport) in a for a in addrs), "every address uses relay_port", addrs)
    ok(os.path.exists(os.path.join(d, "data", "relay.key")) and
       oct(os.stat(os.path.join(d, "data", "relay.key")).st_mode & 0o777) == "0o600", "relay.key created 0600")
    m = req(port, "GET", "/metrics")[2].decode()
    ok("goop_relay_reservations 0" in m and "goop_relay_circuits_opened_total 0" in m, "relay counters in /metrics")
    s = socket.create_connection(("127.0.0.1", rport), timeout=5)
    s.sendall(b"\x13/multistream/1.0.0\n")
    got = s.recv(64)
    s.close()
    ok(got.startswith(b"\x13/multistream/1.0.0\n"), "the relay port speaks libp2p (multistream-select)", got)
    ok(stop(p) == 0, "relay-enabled server stops")
    p = start(d, port)
    st, _, body = req(port, "GET", "/relay")
    ok(st == 200 and json.loads(body).get("peer_id") == pid, "the relay keeps its identity across restarts", body)
    ok(stop(p) == 0, "second stop")
    # A busy relay port is a clear startup error.
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    write_config(d, port, rendezvous_host=True, relay_port=busy.getsockname()[1])
    r = subprocess.run([RDV, "-dir", d], capture_output=True, timeout=20)
    busy.close()
    ok(r.returncode == 1 and b"relay_port" in r.stderr, "busy relay port → error naming presence.relay_port",
       r.stderr[-300:])

    # goop2-relay: the same relay without a rendezvous server.
    if not os.path.exists(RELAY):
        ok(True, "# SKIP goop2-relay not built")
        return
    rd = os.path.join(TMP, "relay-only")
    os.makedirs(rd, exist_ok=True)
    for attempt in range(3):  # a port picked by free_port() can be taken by then on a busy machine
        lport, mport = free_port(), free_port()
        log = open(os.path.join(TMP, "relay-only.log"), "ab")
        pr = subprocess.Popen([RELAY, "-dir", rd, "-port", str(lport), "-metrics", "127.0.0.1:%d" % mport],
                              stdout=log, stderr=log)
        PROCS.append(pr)
        up = wait_health(mport)
        if up or pr.poll() is None:
            break
    ok(up, "goop2-relay: /healthz on the metrics address")
    if not up:
        return
    m = req(mport, "GET", "/metrics")[2].decode()
    ok("goop_relay_circuits 0" in m, "goop2-relay: /metrics")
    ok(req(mport, "GET", "/nope")[0] == 404 and req(mport, "POST", "/metrics", b"x")[0] == 405,
       "goop2-relay metrics: 404 / 405")
    pr.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    ok(pr.poll() is None, "goop2-relay survives SIGHUP")
    pr.send_signal(signal.SIGTERM)
    ok(pr.wait(timeout=10) == 0, "goop2-relay: SIGTERM exits 0")
    out = open(os.path.join(TMP, "relay-only.log"), "rb").read()
    ok(b"/tcp/%d/p2p/12D3KooW" % lport in out, "goop2-relay prints its dialable addresses", out[-300:])
    r = subprocess.run([RELAY, "-dir", rd, "-port", "70000"], capture_output=True, timeout=10)
    ok(r.returncode == 1 and b"invalid port" in r.stderr, "goop2-relay: bad port → exit 1")
    for bad, why in (("nonsense", b"wants HOST:PORT"), ("127.0.0.1:0", b"bad port"),
                     ("relay.example:9101", b"not an IP address")):
        r = subprocess.run([RELAY, "-dir", rd, "-port", str(free_port()), "-metrics", bad], capture_output=True,
                           timeout=10)
        ok(r.returncode == 1 and why in r.stderr, "goop2-relay -metrics %s: error, exit 1" % bad, r.stderr[-200:])
    r = subprocess.run([RELAY], capture_output=True, timeout=10)
    ok(r.returncode == 1 and b"requires directory" in r.stderr, "goop2-relay: no directory → usage, exit 1")


def relay_peer():
    """A peer fetches /relay from its rendezvous server, reserves a slot and announces circuit addresses."""
    d = os.path.join(TMP, "rdv-relay-peer")
    p, port, rport = start_with_relay(d)
    pd = os.path.join(TMP, "relay-client")
    os.makedirs(pd, exist_ok=True)
    json.dump({"viewer": {"http_addr": "127.0.0.1:%d" % free_port()}, "p2p": {"mdns": False},
               "presence": {"rendezvous_wan": "http://127.0.0.1:%d" % port, "heartbeat_seconds": 1}},
              open(os.path.join(pd, "goop.json"), "w"))
    logp = os.path.join(pd, "goop2.log")
    pr = subprocess.Popen([GOOP2, "-dir", pd], stdout=open(logp, "ab"), stderr=subprocess.STDOUT)
    PROCS.append(pr)
    end = time.time() + 20
    m = ""
    while time.time() < end and "goop_relay_reservations 1" not in m:
        m = req(port, "GET", "/metrics")[2].decode()
        time.sleep(0.2)
    ok("goop_relay_reservations 1" in m, "the peer reserved a slot on the rendezvous server's relay")
    out = open(logp, "rb").read()
    ok(b"slot reserved" in out and b"Relay:" in out, "the peer says so", out[-500:])
    s3 = sse_open(port)
    raw = sse_read_until(s3, b"/p2p-circuit", 10)
    s3.close()
    ok(b"/p2p-circuit" in raw, "presence announces /p2p/<relay>/p2p-circuit addresses", raw[-300:])
    # The relay goes away and comes back (same identity): the peer reserves again by itself.
    stop(p)
    p = start(d, port)
    end = time.time() + 60
    m = ""
    while time.time() < end and "goop_relay_reservations 1" not in m:
        m = req(port, "GET", "/metrics")[2].decode()
        time.sleep(0.3)
    ok("goop_relay_reservations 1" in m, "after a relay restart the peer reserves again")
    pr.send_signal(signal.SIGTERM)
    ok(pr.wait(timeout=15) == 0, "relay client peer exits 0")
    end = time.time() + 10
    while time.time() < end and "goop_relay_reservations 0" not in m:
        m = req(port, "GET", "/metrics")[2].decode()
        time.sleep(0.2)
    ok("goop_relay_reservations 0" in m, "its reservation ends with its connection")
    stop(p)
    # p2p.relay_reserve false: no reservation.
    p = start(d, port)
    cfg = json.load(open(os.path.join(pd, "goop.json")))
    cfg["p2p"]["relay_reserve"] = False
    json.dump(cfg, open(os.path.join(pd, "goop.json"), "w"))
    pr = subprocess.Popen([GOOP2, "-dir", pd], stdout=open(logp, "ab"), stderr=subprocess.STDOUT)
    PROCS.append(pr)
    time.sleep(3)
    m = req(port, "GET", "/metrics")[2].decode()
    ok("goop_relay_reservations 0" in m, "p2p.relay_reserve=false: no reservation")
    pr.send_signal(signal.SIGTERM)
    pr.wait(timeout=15)
    stop(p)


def events_heads(port):
    """GET /events is answered outside the HTTP library when its head is plain; every other
    shape (split across packets, HTTP/1.0, a body, a pipelined request, a large head, the
    request after a 429 on a kept-alive connection, a head that never ends) still works."""
    def raw(parts, needle=b": ok\n\n"):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        for part in parts:
            s.sendall(part)
            time.sleep(0.1)
        return s, sse_read_until(s, needle)

    def closed(s, limit_s):
        end = time.time() + limit_s
        while time.time() < end:
            s.settimeout(max(0.05, end - time.time()))
            try:
                if not s.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    s, r = raw([b"GET /ev", b"ents?since=0 HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"])
    head, body = dechunk(r)
    ok(head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
       and body.startswith(b": ok\n\n"), "/events head split across packets, with a query", r)
    s.close()
    s, r = raw([b"GET /events HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"])
    head, _, body = r.partition(b"\r\n\r\n")
    hl = head.decode("latin-1").lower()
    ok(head.startswith(b"HTTP/1.1 200") and "connection: close" in hl and "transfer-encoding" not in hl
       and "content-type: text/event-stream" in hl and body.startswith(b": ok\n\n"),
       "HTTP/1.0 /events: not chunked, Connection: close", r)
    s.close()
    s, r = raw([b"GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    ok(r.startswith(b"HTTP/1.1 200") and b"connection: close" in r.lower() and b": ok" in r,
       "/events with Connection: close", r)
    s.close()
    s, r = raw([b"GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"])
    ok(r.startswith(b"HTTP/1.1 200") and b": ok" in r, "/events with a body", r)
    s.close()
    s, r = raw([b"GET /events HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n"])
    ok(r.startswith(b"HTTP/1.1 200") and b": ok" in r, "/events with a 9 KB head", r[:200])
    s.close()
    s, r = raw([b"GET /events HTTP/1.1\nHost: x\n\n"])
    ok(r.startswith(b"HTTP/1.1 200") and b": ok" in r, "/events with bare LF line ends", r)
    s.close()
    s, r = raw([b"GET /events/x HTTP/1.1\r\nHost: x\r\n\r\n"], b"not found")
    ok(r.startswith(b"HTTP/1.1 404"), "/events/x 404", r)
    s.close()
    time.sleep(0.3)
    streams = [sse_open(port) for _ in range(10)]
    ok(all(sse_read_until(x, b": ok\n\n").startswith(b"HTTP/1.1 200") for x in streams), "10 streams again")
    s, r = raw([b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"], b"(10)\n")
    ok(r.startswith(b"HTTP/1.1 429") and r.endswith(b"too many SSE connections from 127.0.0.1 (10)\n")
       and b"content-length: 45" in r.lower(), "11th stream 429 (raw)", r)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    r = sse_read_until(s, b"\r\n\r\nok")
    ok(r.startswith(b"HTTP/1.1 200") and r.endswith(b"ok"), "the next request after a 429 on the same connection", r)
    s.close()
    s, r = raw([b"GET /events HTTP/1.0\r\n\r\n"], b"(10)\n")
    ok(r.startswith(b"HTTP/1.1 429") and b"connection: close" in r.lower(), "HTTP/1.0 429 closes", r)
    ok(closed(s, 10), "... the connection")
    s.close()
    for x in streams:
        x.close()
    # A head that never ends is closed at the request deadline (10 s).
    s, _ = raw([b"GET /events HTTP/1.1\r\nHost: x\r\n"], b"never")
    ok(closed(s, 40), "an /events head that never ends is closed")
    s.close()
    time.sleep(0.3)
    st, _, body = req(port, "GET", "/metrics")
    ok(b"goop_rendezvous_subscribers 0" in body, "no subscriber left", body)


def main():
    d = os.path.join(TMP, "rdv")
    port = free_port()
    write_config(d, port, password="s3cret")
    p = start(d, port)

    st, r, body = req(port, "GET", "/healthz")
    ok(st == 200 and body == b"ok" and r.getheader("Content-Type", "").startswith("text/plain"), "GET /healthz ok")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    codes = []
    for _ in range(3):
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        codes.append((r.status, r.getheader("Connection")))
    c.close()
    ok(codes == [(200, None)] * 3, "keep-alive: three requests on one connection", codes)
    st, _, body = req(port, "POST", "/healthz")
    ok(st == 200 and body == b"ok", "/healthz answers any method")
    st, _, _ = req(port, "GET", "/relay")
    ok(st == 404, "GET /relay 404 without a relay")
    st, _, _ = req(port, "GET", "/nope")
    ok(st == 404, "unknown path 404")
    st, r, body = req(port, "GET", "/")
    ok(st == 200 and b"Goop&#178; Rendezvous" in body and b"rendezvous_wan" in body
       and r.getheader("Content-Type", "").startswith("text/html"), "GET / landing page")
    st, _, _ = req(port, "POST", "/")
    ok(st == 405, "POST / 405")
    st, _, body = req(port, "GET", "/publish")
    ok(st == 405 and b"method not allowed" in body, "GET /publish 405", body)
    st, _, _ = req(port, "POST", "/events")
    ok(st == 405, "POST /events 405")

    # An SSE subscriber before anything is published.
    s1 = sse_open(port)
    raw = sse_read_until(s1, b": ok\n\n")
    head, sbody = dechunk(raw)
    hl = head.decode("latin-1").lower()
    ok(head.startswith(b"HTTP/1.1 200"), "GET /events 200", head)
    ok("content-type: text/event-stream" in hl, "events Content-Type text/event-stream")
    ok("cache-control: no-cache" in hl, "events Cache-Control no-cache")
    ok("x-accel-buffering: no" in hl, "events X-Accel-Buffering no")
    ok(sbody.startswith(b": ok\n\n"), "events starts with ': ok'", sbody)

    # Publishing.
    label = "<script>alert(1)</script> & \"x\""
    msg = {"type": "online", "peerId": "12D3KooWPeerA", "content": label, "email": "a@example.org",
           "addrs": ["/ip4/127.0.0.1/tcp/4001"], "ts": 0, "verified": False}
    st, r, body = publish(port, msg)
    ok(st == 204 and body == b"", "valid publish 204", (st, body))
    raw += sse_read_until(s1, b"12D3KooWPeerA")
    _, sbody = dechunk(raw)
    frames = [f for f in sbody.decode().split("\n\n") if f.startswith("data: ")]
    ok(len(frames) == 1, "subscriber got one data frame", sbody)
    if frames:
        m = json.loads(frames[0][6:])
        ok(m.get("peerId") == "12D3KooWPeerA" and m.get("verified") is True and m.get("ts", 0) > 0,
           "broadcast is canonical (ts filled, verified set)", m)
        ok(list(m.keys())[:3] == ["type", "peerId", "content"], "§5.2 key order", list(m.keys()))
    s1.close()

    # A new subscriber gets ": ok" then the snapshot.
    s2 = sse_open(port)
    raw = sse_read_until(s2, b"12D3KooWPeerA")
    _, sbody = dechunk(raw)
    ok(sbody.startswith(b": ok\n\ndata: {") and b"12D3KooWPeerA" in sbody, "snapshot after ': ok'", sbody)
    s2.close()

    # At most 10 streams per client IP; closed streams free their slot.
    time.sleep(0.3)
    streams = [sse_open(port) for _ in range(10)]
    heads = [sse_read_until(x, b": ok\n\n") for x in streams]
    ok(all(h.startswith(b"HTTP/1.1 200") for h in heads), "10 streams from one IP")
    st, _, body = req(port, "GET", "/events")
    ok(st == 429 and body.strip() == b"too many SSE connections from 127.0.0.1 (10)", "11th stream 429", (st, body))
    st, _, body = req(port, "GET", "/metrics")
    ok(b"goop_rendezvous_subscribers 10" in body, "metrics count the subscribers")
    for x in streams:
        x.close()
    time.sleep(0.3)
    s4 = sse_open(port)
    ok(sse_read_until(s4, b": ok\n\n").startswith(b"HTTP/1.1 200"), "a slot is free again after the clients left")
    s4.close()
    events_heads(port)

    # Validation texts.
    cases = [
        (b"{nope", 400, "bad json"),
        (b"[]", 400, "bad json"),
        ({"type": "online"}, 400, "bad message: type and peerId are required"),
        ({"type": "hello", "peerId": "x"}, 400, 'bad message: unknown type "hello"'),
        ({"type": "online", "peerId": "p" * 257}, 400, "bad message: peerId too long"),
        ({"type": "online", "peerId": "x", "content": "c" * 4097}, 400, "bad message: content too long"),
        ({"type": "online", "peerId": "x", "email": "e" * 321}, 400, "bad message: email too long"),
        ({"type": "online", "peerId": "x", "addrs": ["/ip4/1.2.3.4/tcp/1"] * 21}, 400, "bad message: too many addrs"),
        ({"type": "online", "peerId": "x", "addrs": ["a" * 257]}, 400, "bad message: addr too long"),
    ]
    for body, want_st, want_txt in cases:
        st, _, got = publish(port, body)
        ok(st == want_st and got.decode().strip() == want_txt, "publish refused: %s" % want_txt, (st, got))
    st, _, got = publish(port, b"{" + b" " * 70000 + b"}")
    ok(st == 413 and b"request body too large" in got, "oversize body 413", (st, got))
    # Chunked oversize body (no Content-Length).
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 8192
    try:
        for _ in range(10):
            s.sendall(b"2000\r\n" + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    resp = sse_read_until(s, b"\r\n\r\n", 3)
    s.close()
    ok(resp.startswith(b"HTTP/1.1 413"), "chunked oversize body 413", resp[:80])

    # Admin.
    st, r, body = req(port, "GET", "/admin")
    ok(st == 401 and r.getheader("WWW-Authenticate") == 'Basic realm="Goop2 Admin"', "admin without auth 401")
    st, r, _ = req(port, "GET", "/peers.json", headers=basic("admin", "wrong"))
    ok(st == 401 and r.getheader("WWW-Authenticate") is not None, "admin wrong password 401")
    st, _, _ = req(port, "GET", "/peers.json", headers=basic("root", "s3cret"))
    ok(st == 401, "admin wrong user 401")
    st, _, _ = req(port, "GET", "/logs.json", headers={"Authorization": "Basic !!!"})
    ok(st == 401, "admin garbage header 401")
    st, r, body = req(port, "GET", "/peers.json", headers=basic("admin", "s3cret"))
    rows = json.loads(body) if st == 200 else []
    ok(st == 200 and len(rows) == 1 and rows[0]["peer_id"] == "12D3KooWPeerA" and rows[0]["content"] == label,
       "GET /peers.json lists the published peer", body)
    st, r, body = req(port, "GET", "/logs.json", headers=basic("admin", "s3cret"))
    ok(st == 200 and isinstance(json.loads(body), list), "GET /logs.json")
    st, r, body = req(port, "GET", "/admin", headers=basic("admin", "s3cret"))
    ok(st == 200 and b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;" in body and b"<script>" not in body,
       "/admin escapes announced labels")
    st, r, body = req(port, "GET", "/metrics")
    ok(st == 200 and b"goop_rendezvous_peers 1" in body and r.getheader("Content-Type", "").startswith("text/plain"),
       "GET /metrics", body[:300])

    # Offline removes the row.
    st, _, _ = publish(port, {"type": "offline", "peerId": "12D3KooWPeerA"})
    st2, _, body = req(port, "GET", "/peers.json", headers=basic("admin", "s3cret"))
    ok(st == 204 and json.loads(body) == [], "offline deletes the row", body)

    # Failed logins are limited per IP (10 per minute, 4 failed above), even for the right password afterwards.
    codes = [req(port, "GET", "/admin", headers=basic("admin", "x%d" % i))[0] for i in range(8)]
    st, _, body = req(port, "GET", "/admin", headers=basic("admin", "s3cret"))
    ok(codes[:6] == [401] * 6 and codes[6:] == [429, 429] and st == 429, "failed admin logins limited", codes)

    # SIGHUP reloads the admin password (the empty one disables the panel).
    write_config(d, port, password="")
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    st, _, body = req(port, "GET", "/peers.json", headers=basic("admin", "s3cret"))
    ok(st == 403 and body.strip() == b"admin panel disabled", "empty password: admin panel disabled 403", (st, body))
    st, _, _ = req(port, "GET", "/admin")
    ok(st == 403, "/admin 403 when disabled")

    # Publish rate limit: 60 per minute per IP (this server has seen 2 accepted + 10 refused so far).
    seen = []
    for i in range(70):
        st, _, body = publish(port, {"type": "update", "peerId": "rate%d" % i})
        seen.append(st)
        if st == 429:
            break
    ok(seen[-1] == 429 and body.strip() == b"rate limit exceeded", "publish rate limit 429", (len(seen), body))

    # X-Forwarded-For: ignored from an untrusted address, believed from a trusted proxy.
    xff = {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"}
    st, _, _ = req(port, "POST", "/publish", json.dumps({"type": "update", "peerId": "xff1"}), xff)
    ok(st == 429, "untrusted X-Forwarded-For is ignored (still limited)", st)
    write_config(d, port, password="", rendezvous_trusted_proxies=["127.0.0.0/8"],
                 rendezvous_publish_per_minute=3)
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    codes = []
    for i in range(4):
        st, _, _ = req(port, "POST", "/publish", json.dumps({"type": "update", "peerId": "xff%d" % i}), xff)
        codes.append(st)
    ok(codes == [204, 204, 204, 429], "trusted proxy: the forwarded client has its own bucket of 3/min", codes)
    xff2 = dict(xff, **{"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    st, _, _ = req(port, "POST", "/publish", json.dumps({"type": "update", "peerId": "xff9"}), xff2)
    ok(st == 429, "only the hop next to the trusted proxy counts (spoofed left entry ignored)", st)
    st, _, _ = publish(port, {"type": "update", "peerId": "xff-direct"})
    ok(st == 204, "the proxy's own address has a bucket of its own (fresh after the reload)", st)
    # ... and for /events subscribers: 10 per forwarded client, the proxy itself still gets streams.
    fwd = []
    for i in range(11):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7, 203.0.113.9\r\n\r\n")
        fwd.append((s, sse_read_until(s, b": ok\n\n" if i < 10 else b"(10)\n")))
    ok(all(r.startswith(b"HTTP/1.1 200") for _, r in fwd[:10]), "trusted proxy: 10 /events streams of one client")
    ok(fwd[10][1].startswith(b"HTTP/1.1 429") and fwd[10][1].endswith(b"too many SSE connections from 203.0.113.9 (10)\n"),
       "the 11th stream of the forwarded client 429", fwd[10][1])
    s = sse_open(port)
    ok(sse_read_until(s, b": ok\n\n").startswith(b"HTTP/1.1 200"), "the proxy's own /events stream is not limited by them")
    s.close()
    for s, _ in fwd:
        s.close()
    m = req(port, "GET", "/metrics")[2].decode()
    ok("goop_relay_" not in m, "no relay counters without a relay")
    st, _, body = req(port, "GET", "/relay")
    ok(st == 404, "/relay 404 without a relay", st)
    ok(stop(p) == 0, "SIGTERM exits 0")

    # Persistence with peers.db.
    d2 = os.path.join(TMP, "rdv-db")
    port2 = free_port()
    write_config(d2, port2, password="pw", db="data/peers.db")
    p2 = start(d2, port2)
    st, _, _ = publish(port2, {"type": "online", "peerId": "12D3KooWPersist", "content": "kept"})
    ok(st == 204, "publish to the db-backed server")
    ok(stop(p2) == 0, "db-backed server stops")
    ok(os.path.exists(os.path.join(d2, "data", "peers.db")), "peers.db created under the peer dir")
    p2 = start(d2, port2)
    st, _, body = req(port2, "GET", "/peers.json", headers=basic("admin", "pw"))
    rows = json.loads(body) if st == 200 else []
    ok(any(r["peer_id"] == "12D3KooWPersist" for r in rows), "peer survives a restart", body)
    s3 = sse_open(port2)
    raw = sse_read_until(s3, b"12D3KooWPersist")
    s3.close()
    ok(b"12D3KooWPersist" in raw, "restored peer in the /events snapshot")
    ok(stop(p2) == 0, "second stop")

    relay_server()
    if GOOP2:
        two_peers()
        hosted()
        relay_peer()

    # Usage errors.
    r = subprocess.run([RDV], capture_output=True)
    ok(r.returncode == 1 and b"requires directory" in r.stderr, "no directory: usage, exit 1")
    r = subprocess.run([RDV, "-h"], capture_output=True)
    ok(r.returncode == 0 and b"Usage" in r.stdout, "-h")
    # Port in use.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    d3 = os.path.join(TMP, "rdv-busy")
    write_config(d3, busy.getsockname()[1])
    r = subprocess.run([RDV, d3], capture_output=True, timeout=10)
    busy.close()
    ok(r.returncode == 1 and b"cannot listen" in r.stderr, "port in use: error, exit 1", r.stderr)


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
