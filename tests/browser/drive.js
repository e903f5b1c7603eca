// Drives headless Chromium (playwright-core) through a goop2 viewer:
// opens VIEWER/p/PEER/, clicks "Add" COUNT times, waits for the rows,
// saves a screenshot and prints {"rows":[...],"errors":[...]} as JSON.
// Usage: node drive.js VIEWER_URL PEER_ID COUNT SCREENSHOT USER_DATA_DIR
"use strict";
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "interop", "node_modules", "playwright-core"));

async function main() {
  const [base, peer, countText, shot, userData] = process.argv.slice(2);
  const count = parseInt(countText, 10);
  const ctx = await chromium.launchPersistentContext(userData, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = { errors: [] };
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on("pageerror", (e) => out.errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) out.errors.push(m.text());
    });
    page.on("response", (r) => {
      if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) out.errors.push(r.status() + " " + r.url());
    });
    const resp = await page.goto(base.replace(/\/$/, "") + "/p/" + peer + "/", { waitUntil: "load" });
    out.status = resp.status();
    out.csp = resp.headers()["content-security-policy"] || "";
    await page.waitForFunction(() => /^rows: /.test(document.getElementById("status").textContent),
                               null, { timeout: 20000 });
    for (let i = 1; i <= count; i++) {
      await page.click("#add");
      await page.waitForFunction((n) => document.querySelectorAll("#rows li").length >= n, i, { timeout: 20000 });
    }
    out.rows = await page.$$eval("#rows li", (lis) => lis.map((li) => li.textContent));
    out.status_text = await page.textContent("#status");
    await page.screenshot({ path: shot, fullPage: true });
  } catch (e) {
    out.errors.push(String(e && e.stack || e));
  } finally {
    await ctx.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ errors: [String(e && e.stack || e)] }) + "\n");
  process.exit(1);
});
