#!/usr/bin/env python3
"""Integration test of the rendezvous template store over real loopback sockets.

Usage: test-rendezvous-templates.py path/to/goop2-rendezvous [path/to/goop2]   (prints TAP)

Builds template directories (presence.templates_dir and templates_dirs, later
wins) with nested files, a symlink pointing out of its template, a bad
manifest, a bad insert policy, a bad directory name and a template over the
8 MiB cap; then checks /api/templates, the manifests, the bundles (gzip and
tar read back with Python, `gzip -t`, `tar tzf`), 404 for path tricks and
unknown templates, 405 for other methods, the landing page promo, and a
SIGHUP reload that adds and removes templates. With goop2 given, the same
store through `goop2 rendezvous DIR` (the server hosted in-process).
"""
import gzip
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

RDV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit("usage: test-rendezvous-templates.py RDV [GOOP2]")
GOOP2 = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
TMP = tempfile.mkdtemp(prefix="goop-test-rdvtpl-")
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
            for line in str(diag).splitlines()[:40]:
                print("# " + line)
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def req(port, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r, data


def raw_status(port, target):
    """Status line of a request sent byte for byte (no client-side normalisation)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    try:
        return int(buf.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def start(d, port, argv=None):
    log = open(os.path.join(d, "server.log"), "ab")
    p = subprocess.Popen((argv or [RDV, "-dir"]) + [d], stdout=log, stderr=log)
    PROCS.append(p)
    for _ in range(200):
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
        return p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        return None


def meta(name, dirname, description="", category="", icon="", tables=None):
    m = {"name": name, "description": description, "category": category, "icon": icon, "dir": dirname,
         "source": "store"}
    if tables:
        m["tables"] = {k: {"insert_policy": tables[k]} for k in sorted(tables)}
    return m


def dumps(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def main():
    d = os.path.join(TMP, "rdv")
    tpl = os.path.join(d, "tpl")
    extra = os.path.join(TMP, "extra")
    outside = os.path.join(TMP, "outside")
    put(os.path.join(outside, "secret.txt"), "not for download\n")

    # blog: every kind of file of a real template, nested
    blog = {
        "manifest.json": json.dumps({"name": "Blog", "description": "Posts & <comments>", "category": "content",
                                     "icon": "\U0001F4DD", "dir": "ignored", "unknown": [1],
                                     "tables": {"posts": {"insert_policy": "owner"},
                                                "comments": {"insert_policy": "email"}}}),
        "index.html": "<!doctype html><h1>Blog</h1>\n",
        "schema.sql": "CREATE TABLE posts (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL);\n",
        "css/style.css": "body{margin:0}\n",
        "js/app.js": "console.log('hi');\n",
        "images/.keep": "",
        "lua/functions/count.lua": "function call(req) return 1 end\n",
        "data/bin.dat": bytes(range(256)) * 300,  # 76800 bytes: several stored blocks once tarred
    }
    for rel, data in blog.items():
        put(os.path.join(tpl, "blog", rel), data)
    # chess in tpl, overridden by chess in extra (later wins); extra's has symlinks out
    put(os.path.join(tpl, "chess", "manifest.json"), json.dumps({"name": "Chess (old)"}))
    put(os.path.join(tpl, "chess", "index.html"), "old")
    chess = {
        "manifest.json": json.dumps({"name": "Chess", "category": "games", "icon": "\u265F",
                                     "tables": {"games": {"insert_policy": "open"},
                                                "moves": {"insert_policy": "public"}}}),
        "index.html": "<h1>Chess</h1>",
        "a/b/c/deep.txt": "deep\n",
    }
    for rel, data in chess.items():
        put(os.path.join(extra, "chess", rel), data)
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(extra, "chess", "leak.txt"))
    os.symlink("../../outside", os.path.join(extra, "chess", "leakdir"))
    os.symlink("index.html", os.path.join(extra, "chess", "alias.html"))
    # invalid ones
    put(os.path.join(tpl, "badjson", "manifest.json"), "{\"name\": \"x\",")
    put(os.path.join(tpl, "badjson", "index.html"), "x")
    put(os.path.join(tpl, "badpolicy", "manifest.json"),
        json.dumps({"name": "P", "tables": {"t": {"insert_policy": "everyone"}}}))
    put(os.path.join(tpl, "bad name", "manifest.json"), json.dumps({"name": "Bad"}))
    put(os.path.join(tpl, ".hidden", "manifest.json"), json.dumps({"name": "Hidden"}))
    put(os.path.join(tpl, "noname", "manifest.json"), json.dumps({"description": "no name"}))
    put(os.path.join(tpl, "huge", "manifest.json"), json.dumps({"name": "Huge"}))
    put(os.path.join(tpl, "huge", "big.bin"), b"\0" * (8 * 1024 * 1024 + 1))
    put(os.path.join(tpl, "notatemplate", "index.html"), "no manifest")
    os.symlink(os.path.join(extra, "chess"), os.path.join(tpl, "linked"))

    port = free_port()
    put(os.path.join(d, "goop.json"), json.dumps({"presence": {
        "rendezvous_port": port, "rendezvous_bind": "127.0.0.1",
        "templates_dir": "tpl", "templates_dirs": [extra, "", "missing-dir"]}}))
    p = start(d, port)

    want = [meta("Blog", "blog", "Posts & <comments>", "content", "\U0001F4DD",
                 {"posts": "owner", "comments": "email"}),
            meta("Chess", "chess", "", "games", "\u265F", {"games": "open", "moves": "public"})]
    want_files = {"blog": blog, "chess": chess}

    st, r, body = req(port, "GET", "/api/templates")
    ok(st == 200, "GET /api/templates: 200", st)
    ok(r.getheader("Content-Type") == "application/json; charset=utf-8", "list content type",
       r.getheader("Content-Type"))
    ok(body.decode() == dumps(want) + "\n", "list content exactly (sorted by dir, tables sorted, no invalid ones)",
       "%r\n%r" % (body, dumps(want)))

    for m in want:
        st, r, body = req(port, "GET", "/api/templates/%s/manifest.json" % m["dir"])
        ok(st == 200 and body.decode() == dumps(m) + "\n", "manifest.json of %s" % m["dir"], body)
        ok(r.getheader("Content-Type") == "application/json; charset=utf-8", "manifest content type")

    for m in want:
        name = m["dir"]
        st, r, body = req(port, "GET", "/api/templates/%s/bundle" % name)
        ok(st == 200, "bundle of %s: 200" % name, st)
        ok(r.getheader("Content-Type") == "application/gzip", "bundle content type", r.getheader("Content-Type"))
        ok(r.getheader("Content-Disposition") == 'attachment; filename="%s.tar.gz"' % name,
           "bundle Content-Disposition", r.getheader("Content-Disposition"))
        ok(int(r.getheader("Content-Length", "-1")) == len(body), "bundle Content-Length")
        raw = gzip.decompress(body)
        tf = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
        members = tf.getmembers()
        names = [x.name for x in members]
        expect = ["%s/%s" % (name, rel) for rel in sorted(want_files[name])]
        ok(names == expect, "%s: one entry per file, sorted, named <dir>/<path>, no symlinks" % name,
           "%r\n%r" % (names, expect))
        ok(all(x.isreg() and x.mode == 0o644 for x in members), "%s: regular files, mode 0644" % name)
        same = True
        for x in members:
            rel = x.name.split("/", 1)[1]
            data = want_files[name][rel]
            data = data if isinstance(data, bytes) else data.encode()
            if tf.extractfile(x).read() != data:
                same = False
        ok(same, "%s: every file byte for byte" % name)
        path = os.path.join(TMP, name + ".tar.gz")
        with open(path, "wb") as f:
            f.write(body)
        g = subprocess.run(["gzip", "-t", path], capture_output=True)
        ok(g.returncode == 0, "%s: gzip -t passes" % name, g.stderr)
        t = subprocess.run(["tar", "tzf", path], capture_output=True, text=True)
        ok(t.returncode == 0 and t.stdout.split("\n")[:-1] == expect, "%s: tar tzf lists the entries" % name,
           t.stdout + t.stderr)
        st, r, hbody = req(port, "HEAD", "/api/templates/%s/bundle" % name)
        ok(st == 200 and hbody == b"" and int(r.getheader("Content-Length", "-1")) == len(body),
           "%s: HEAD gives the length without a body" % name)

    for path in ["/api/templates/nope/bundle", "/api/templates/nope/manifest.json",
                 "/api/templates/badjson/manifest.json", "/api/templates/badpolicy/bundle",
                 "/api/templates/noname/bundle", "/api/templates/huge/bundle", "/api/templates/linked/bundle",
                 "/api/templates/.hidden/manifest.json", "/api/templates/bad%20name/manifest.json",
                 "/api/templates/", "/api/templates/blog", "/api/templates/blog/", "/api/templates/blog/index.html",
                 "/api/templates/blog/bundle/", "/api/templates/blog/bundle/x", "/api/templates//bundle",
                 "/api/templates/../blog/bundle", "/api/templates/blog/../chess/bundle",
                 "/api/templates/%2e%2e/blog/bundle", "/api/templates/%2E%2E%2Fblog/bundle",
                 "/api/templates/blog%2F..%2Fchess/bundle", "/api/templates/%2Fblog/bundle",
                 "/api/templates/blog%2Fbundle", "/api/templates/blog%2fmanifest.json",
                 "/api/templates%2Fblog/bundle", "/api/templates/chess%2F/bundle",
                 "/api/templates/..%2f..%2fetc/bundle", "/api/templates/blog%00/bundle",
                 "/api/templates/chess/leak.txt", "/api/templatesX", "/api/templates/" + "a" * 300 + "/bundle"]:
        s = raw_status(port, path)
        ok(s == 404, "404 for %s" % path[:80], s)
    # Other escapes are decoded before routing; only %2F stays what it is.
    ok(raw_status(port, "/api/templates/%62log/bundle") == 200, "%62log is blog")
    ok(raw_status(port, "/api/templates/blog/%62undle") == 200, "%62undle is bundle")
    st, _, body = req(port, "GET", "/api/templates/nope/bundle")
    ok(body == b"404 page not found\n", "404 text like the other routes", body)

    for method, path in [("POST", "/api/templates"), ("PUT", "/api/templates/blog/bundle"),
                         ("DELETE", "/api/templates/blog/manifest.json")]:
        st, r, body = req(port, method, path)
        ok(st == 405 and body == b"method not allowed\n", "405 for %s %s" % (method, path), (st, body))

    st, _, body = req(port, "GET", "/")
    ok(st == 200 and b"2 ready-made sites available" in body, "landing page: store promo with the count")
    ok(b"Posts &amp; &lt;comments&gt;" in body and b"<comments>" not in body, "landing page escapes descriptions")

    log = open(os.path.join(d, "server.log"), "rb").read().decode(errors="replace")
    for needle in ["badjson: skipped: manifest.json: bad JSON", "badpolicy: skipped: tables.t.insert_policy",
                   "bad name: skipped: bad directory name", "noname: skipped: name: required",
                   "huge: skipped: more than 8388608 bytes", "chess: skipping symlink leak.txt",
                   "chess: skipping symlink leakdir", "chess: skipping symlink alias.html", "templates: 2 loaded"]:
        ok(needle in log, "logged: %s" % needle, log)

    # Reload: a new template in extra, the blog removed; SIGHUP swaps the set.
    put(os.path.join(extra, "quiz", "manifest.json"), json.dumps({"name": "Quiz", "icon": "?"}))
    put(os.path.join(extra, "quiz", "q/1.json"), "{}")
    shutil.rmtree(os.path.join(tpl, "blog"))
    p.send_signal(signal.SIGHUP)
    want2 = [meta("Chess", "chess", "", "games", "\u265F", {"games": "open", "moves": "public"}),
             meta("Quiz", "quiz", icon="?")]
    body = b""
    for _ in range(200):
        st, _, body = req(port, "GET", "/api/templates")
        if body.decode() == dumps(want2) + "\n":
            break
        time.sleep(0.05)
    ok(body.decode() == dumps(want2) + "\n", "SIGHUP: quiz added, blog gone", body)
    st, _, body = req(port, "GET", "/api/templates/quiz/bundle")
    names = tarfile.open(fileobj=io.BytesIO(gzip.decompress(body)), mode="r:").getnames() if st == 200 else []
    ok(names == ["quiz/manifest.json", "quiz/q/1.json"], "bundle of the reloaded template", names)
    ok(raw_status(port, "/api/templates/blog/bundle") == 404, "removed template: 404")
    st, _, body = req(port, "GET", "/")
    ok(b"2 ready-made sites available" in body and b"quiz" in body, "landing page follows the reload")

    rc = stop(p)
    ok(rc == 0, "server exits 0 on SIGTERM", rc)

    # Without any template directory the list is empty and the promo is absent.
    d2 = os.path.join(TMP, "empty")
    port2 = free_port()
    put(os.path.join(d2, "goop.json"), json.dumps({"presence": {"rendezvous_port": port2, "templates_dir": ""}}))
    p2 = start(d2, port2)
    st, _, body = req(port2, "GET", "/api/templates")
    ok(st == 200 and body == b"[]\n", "no templates: []", body)
    st, _, body = req(port2, "GET", "/")
    ok(b"ready-made sites" not in body, "no templates: no promo")
    ok(raw_status(port2, "/api/templates/blog/bundle") == 404, "no templates: bundle 404")
    ok(stop(p2) == 0, "second server exits 0")

    if GOOP2:
        d3 = os.path.join(TMP, "hosted")
        port3 = free_port()
        put(os.path.join(d3, "tpl", "hello", "manifest.json"), json.dumps({"name": "Hello"}))
        put(os.path.join(d3, "tpl", "hello", "sub", "page.html"), "<p>hi</p>")
        put(os.path.join(d3, "goop.json"), json.dumps({"presence": {
            "rendezvous_port": port3, "rendezvous_bind": "127.0.0.1", "templates_dir": "tpl"}}))
        p3 = start(d3, port3, [GOOP2, "rendezvous"])
        st, _, body = req(port3, "GET", "/api/templates")
        ok(st == 200 and body.decode() == dumps([meta("Hello", "hello")]) + "\n", "goop2 rendezvous: list", body)
        st, _, body = req(port3, "GET", "/api/templates/hello/bundle")
        names = tarfile.open(fileobj=io.BytesIO(gzip.decompress(body)), mode="r:").getnames() if st == 200 else []
        ok(names == ["hello/manifest.json", "hello/sub/page.html"], "goop2 rendezvous: bundle", names)
        ok(stop(p3) == 0, "goop2 rendezvous exits 0")
    else:
        print("# goop2 not given: in-process server not checked")


try:
    main()
finally:
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)
print("1..%d" % N)
sys.exit(1 if FAILED else 0)
