// The ops console in a real browser, during a demo run: `dabba demo` on a free port prints a
// console link; Debian's chromium (driven by playwright-core, no browser download) opens it,
// sees riders and orders move on the map, reassigns an order and sees the change and its
// audit entry. Screenshots go to $DABBA_ARTIFACTS (default target/browser-artifacts).
//
// Run from the repository root after `cargo build`: `node tests/browser/console.mjs`.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const target = process.env.CARGO_TARGET_DIR || "target";
const binary = join(target, "debug", "dabba");
const artifacts = process.env.DABBA_ARTIFACTS || join(target, "browser-artifacts");
const browserPath = process.env.DABBA_CHROMIUM || "/usr/bin/chromium";
mkdirSync(artifacts, { recursive: true });

function fail(message) {
  throw new Error(message);
}

async function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function until(what, check, timeoutMs = 30000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Starts `dabba demo` and resolves with the console link it prints. */
async function startDemo() {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), "dabba-console-"));
  const demo = spawn(binary, ["demo", "--restaurants", "8", "--riders", "40", "--orders-per-sec", "2"], {
    env: { ...process.env, DABBA_BIND: `127.0.0.1:${port}`, DABBA_DATA_DIR: data, RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const link = await new Promise((resolve, reject) => {
    let out = "";
    demo.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/open the ops console at (\S+)/);
      if (m) resolve(m[1]);
    });
    demo.on("exit", (code) => reject(new Error(`dabba demo exited (${code}) before printing a link`)));
    setTimeout(() => reject(new Error("no console link within 30 s")), 30000);
  });
  return { demo, link, data, base: `http://127.0.0.1:${port}` };
}

async function main() {
  const { demo, link, data, base } = await startDemo();
  const browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const outside = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(base) && !req.url().startsWith(base.replace("http", "ws"))) outside.push(req.url());
    });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(link);
    await page.waitForSelector('#status[data-state="live"]', { timeout: 15000 });
    if (page.url().includes("token=")) fail("the token stayed in the address bar");

    // Riders and orders appear, and move.
    const count = () => page.evaluate(() => ({
      riders: window.dabbaConsole.riders.size,
      orders: window.dabbaConsole.orders.size,
      moves: window.dabbaConsole.moves,
    }));
    await until("riders and orders on the map", async () => {
      const c = await count();
      return c.riders >= 10 && c.orders >= 1 && c.moves > 0;
    });
    const positions = () => page.evaluate(() =>
      [...window.dabbaConsole.riders.values()].filter((r) => r.location).map((r) => `${r.id}:${r.location.lat},${r.location.lng}`));
    const before = new Set(await positions());
    await until("a rider to move", async () => (await positions()).some((p) => !before.has(p)));
    const stages = () => page.evaluate(() => Object.fromEntries([...window.dabbaConsole.orders.values()].map((o) => [o.id, o.stage])));
    const seen = await stages();
    await until("an order to move on", async () => {
      const now = await stages();
      return Object.entries(now).some(([id, stage]) => seen[id] && seen[id] !== stage) ||
        Object.keys(now).some((id) => !(id in seen));
    });
    const painted = await page.evaluate(() => {
      const c = document.getElementById("map");
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) lit += 1;
      return lit;
    });
    if (painted < 50) fail(`the map is blank (${painted} pixels drawn)`);
    await page.screenshot({ path: join(artifacts, "console-live.png"), fullPage: true });

    // Reassign an order with a rider (before its pickup) to another, free rider.
    let done = null;
    for (let attempt = 0; attempt < 20 && !done; attempt += 1) {
      const row = await until("an order with a rider", () => page.$('#orders tr[data-stage="rider_assigned"]'), 60000);
      const orderId = await row.getAttribute("data-order");
      const fromRider = await row.getAttribute("data-rider");
      await (await row.$("button")).click();
      await page.waitForSelector(`#detail-id:text("${orderId}")`);
      const options = await page.$$eval("#reassign-to option", (os) => os.map((o) => o.value).filter(Boolean));
      const to = options.find((v) => v !== fromRider);
      if (!to) continue;
      await page.selectOption("#reassign-to", to);
      await page.evaluate(() => { document.getElementById("action-result").textContent = ""; });
      await page.click("#reassign");
      const result = await until("the reassignment's answer", () =>
        page.$eval("#action-result", (e) => e.dataset.result && e.textContent ? e.dataset.result : null));
      if (result === "ok") done = { orderId, to };
      // Otherwise the rider picked it up meanwhile: try another order.
    }
    if (!done) fail("no order could be reassigned in 20 tries");
    await until("the order under its new rider", () => page.evaluate(({ orderId, to }) => {
      const o = window.dabbaConsole.orders.get(orderId);
      return !o || o.rider_id === to || o.stage !== "rider_assigned";
    }, done));
    await until("the audit entry", () => page.$(`#audit tr[data-action="reassign"][data-target="order:${done.orderId}"]`), 15000);
    await page.screenshot({ path: join(artifacts, "console-reassigned.png"), fullPage: true });

    if (outside.length) fail(`the console reached outside the server: ${outside.join(", ")}`);
    if (errors.length) fail(`script errors in the page: ${errors.join("; ")}`);
    console.log(`console test passed: order ${done.orderId} handed to rider ${done.to}; screenshots in ${artifacts}`);
  } finally {
    await browser.close();
    demo.kill("SIGKILL");
    rmSync(data, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`console test FAILED: ${e.message}`);
  process.exit(1);
});
