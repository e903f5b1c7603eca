// Checks the viewer's JavaScript SDK (served by a running viewer) in Node:
// loads goop-*.js from the viewer into a minimal window, runs their calls
// against the live viewer (identity, peers) or a recording fetch (data, site)
// and prints one JSON object of results for test-viewer.py.
// Usage: node test-viewer-sdk.js VIEWER_URL PAGE_PATH
"use strict";
const vm = require("vm");
const base = process.argv[2].replace(/\/$/, "");
const pagePath = process.argv[3] || "/peers";

async function main() {
  const calls = [];
  const realFetch = globalThis.fetch;
  const window = { location: { pathname: pagePath } };
  const ctx = {
    window,
    console,
    setTimeout,
    Promise,
    JSON,
    Object,
    Error,
    String,
    Number,
    FormData: class {
      constructor() { this.parts = []; }
      append(k, v) { this.parts.push([k, v]); }
    },
    fetch: (url, opts) => {
      opts = opts || {};
      if (url === "/api/csrf") return realFetch(base + url, opts); // the token, not a data call
      calls.push({ url, method: opts.method || "GET", body: opts.body, headers: opts.headers || {} });
      if (url.startsWith("/api/data") || url.startsWith("/api/p/") || url.startsWith("/api/site")) {
        const text = url.endsWith("/lua/list") ? '{"functions":[{"name":"f"}]}' : '{"ok":1}';
        return Promise.resolve({ ok: true, status: 200, text: () => Promise.resolve(text),
                                 json: () => Promise.resolve(JSON.parse(text)) });
      }
      return realFetch(base + url, opts);
    },
    EventSource: class {
      constructor(url) {
        this.url = url;
        this.listeners = {};
        ctx.lastSource = this;
      }
      addEventListener(name, fn) { this.listeners[name] = fn; }
      close() { this.closed = true; }
    },
  };
  ctx.window.Goop = undefined;
  vm.createContext(ctx);
  for (const f of ["goop-identity.js", "goop-data.js", "goop-peers.js", "goop-site.js", "goop-form.js",
                   "goop-forms.js", "goop-ui.js"]) {
    const res = await realFetch(base + "/assets/js/" + f);
    vm.runInContext(await res.text(), ctx, { filename: f });
  }
  const Goop = ctx.window.Goop;
  const out = { modules: Object.keys(Goop).sort() };
  out.identity = await Goop.identity.get();
  out.id = await Goop.identity.id();
  out.label = await Goop.identity.label();
  out.peers = await Goop.peers.list();

  calls.length = 0;
  await Goop.data.tables();
  await Goop.data.insert("posts", { title: "hi" });
  await Goop.data.query("posts", { where: "_owner = ?", args: ["x"], limit: 5 });
  await Goop.data.update("posts", 3, { title: "yo" });
  await Goop.data.remove("posts", 3);
  await Goop.data.describe("posts");
  await Goop.data.createTable("t", [{ name: "a", type: "TEXT" }]);
  await Goop.data.dropTable("t");
  await Goop.data.addColumn("t", { name: "b", type: "TEXT" });
  await Goop.data.call("fn", { n: 1 });
  out.functions = await Goop.data.functions();
  out.dataCalls = calls.map((c) => [c.method, c.url, c.body ? JSON.parse(c.body) : null]);
  out.csrfOnPosts = calls.filter((c) => c.method === "POST").every((c) => /^[0-9a-f]{64}$/.test(c.headers["X-Goop-CSRF"] || ""));

  calls.length = 0;
  await Goop.site.remove("a.txt");
  await Goop.site.files();
  out.siteCalls = calls.map((c) => [c.method, c.url]);
  out.siteCsrf = calls.filter((c) => c.method === "POST").every((c) => /^[0-9a-f]{64}$/.test(c.headers["X-Goop-CSRF"] || ""));

  const seen = [];
  Goop.peers.subscribe({ onSnapshot: (p) => seen.push(["snapshot", p.length]),
                         onUpdate: (id, p) => seen.push(["update", id, p.ID]),
                         onRemove: (id) => seen.push(["remove", id]) });
  const src = ctx.lastSource;
  src.listeners.snapshot({ data: '{"type":"snapshot","peers":[{"ID":"a"}]}' });
  src.listeners.update({ data: '{"type":"update","peer_id":"b","peer":{"ID":"b"}}' });
  src.listeners.remove({ data: '{"type":"remove","peer_id":"b"}' });
  Goop.peers.unsubscribe();
  out.sse = { url: src.url, seen, closed: !!src.closed };
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + "\n");
  process.exit(1);
});
