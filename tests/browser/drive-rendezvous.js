// Drives headless Chromium (playwright-core) through goop2-rendezvous pages:
// "/" without credentials, "/admin" with HTTP Basic credentials (rows listed,
// then a third peer published from here and the page reloaded), "/admin" with
// wrong and without credentials. Saves screenshots into SHOT_DIR and prints
// one JSON object with what it saw.
// Usage: node drive-rendezvous.js BASE_URL PASSWORD THIRD_PEER_JSON SHOT_DIR
"use strict";
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "interop", "node_modules", "playwright-core"));

async function rows(page) {
  return page.$$eval("table tbody tr", (trs) =>
    trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent)));
}

// Navigate and return the last HTTP status seen for |url|: a refused Basic
// challenge fails the navigation (ERR_INVALID_AUTH_CREDENTIALS) after the 401.
async function statusOf(page, url) {
  let status = null;
  const seen = (r) => { if (r.url() === url) status = r.status(); };
  page.on("response", seen);
  let error = null;
  try {
    const r = await page.goto(url, { waitUntil: "load" });
    if (r) status = r.status();
  } catch (e) {
    error = String(e).split("\n")[0];
  }
  page.off("response", seen);
  return { status, error };
}

async function main() {
  const [base, password, third, shotDir] = process.argv.slice(2);
  const root = base.replace(/\/$/, "");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = { errors: [] };
  const watch = (page) => {
    page.on("pageerror", (e) => out.errors.push(String(e)));
    page.on("dialog", (d) => { out.errors.push("dialog: " + d.message()); d.dismiss(); });
  };
  try {
    // The public page.
    const anon = await browser.newContext();
    const p1 = await anon.newPage();
    watch(p1);
    const r1 = await p1.goto(root + "/", { waitUntil: "load" });
    out.index_status = r1.status();
    out.index_title = await p1.title();
    out.connect_urls = await p1.$$eval("section li code", (els) => els.map((e) => e.textContent));
    out.index_footer = await p1.textContent("footer");
    await p1.screenshot({ path: path.join(shotDir, "rendezvous-index.png"), fullPage: true });
    const a1 = await statusOf(p1, root + "/admin");
    out.admin_anon_status = a1.status;
    out.admin_anon_error = a1.error;
    await anon.close();

    // Wrong credentials.
    const wrong = await browser.newContext({ httpCredentials: { username: "admin", password: password + "x" } });
    const p2 = await wrong.newPage();
    const a2 = await statusOf(p2, root + "/admin");
    out.admin_wrong_status = a2.status;
    out.admin_wrong_error = a2.error;
    await wrong.close();

    // Right credentials: the live peers, then a third one after a reload.
    const admin = await browser.newContext({ httpCredentials: { username: "admin", password } });
    const p3 = await admin.newPage();
    watch(p3);
    const r3 = await p3.goto(root + "/admin", { waitUntil: "load" });
    out.admin_status = r3.status();
    out.admin_rows = await rows(p3);
    out.admin_scripts = await p3.$$eval("table script, table img, table svg", (els) => els.length);
    const pub = await fetch(root + "/publish", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: third,
    });
    out.third_publish_status = pub.status;
    await p3.reload({ waitUntil: "load" });
    out.admin_rows_after = await rows(p3);
    await p3.screenshot({ path: path.join(shotDir, "rendezvous-admin.png"), fullPage: true });
    const pj = await p3.goto(root + "/peers.json", { waitUntil: "load" });
    out.peers_json_status = pj.status();
    out.peers_json = JSON.parse(await pj.text());
    await admin.close();
  } catch (e) {
    out.errors.push(String(e && e.stack || e));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ errors: [String(e && e.stack || e)] }) + "\n");
  process.exit(1);
});
