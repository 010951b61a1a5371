// The dashboard in a real browser: Debian's Chromium driven by playwright-core (which never
// downloads a browser). Started by tests/browser.rs, which prepares a demo home, starts
// `sophon serve` and passes what this script needs in the environment:
//   SOPHON_URL         the server's base URL
//   SOPHON_USERS       JSON: {owner, viewer, admin} each {email, password, tenant}
//   SOPHON_SHOTS       folder for the screenshots of each page
//   SOPHON_SCENARIOS   optional comma list of scenario names to run (default: all)
//   CHROMIUM           the browser (default /usr/bin/chromium)
// Prints one line per scenario ("ok NAME" / "FAILED NAME: why") and exits 1 if any failed.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { scenarios } from "./scenarios.mjs";

const url = process.env.SOPHON_URL;
const users = JSON.parse(process.env.SOPHON_USERS || "{}");
const shots = process.env.SOPHON_SHOTS || "target/screenshots";
const only = (process.env.SOPHON_SCENARIOS || "").split(",").filter(Boolean);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // No background traffic: this machine has no network beyond loopback.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
let failed = 0;
const ctx = { url, users, shots, env: process.env };
for (const [name, run] of scenarios) {
  if (only.length && !only.includes(name)) continue;
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const t0 = Date.now();
  try {
    await run(page, Object.assign({ shot: (n, opts) => page.screenshot(Object.assign({ path: join(shots, n + ".png") }, opts || {})) }, ctx));
    const real = errors.filter((e) => !/status of (401|403|404|409|400|413|429)/.test(e));
    if (real.length) throw new Error("errors in the page: " + real.join(" | "));
    console.log(`ok ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAILED ${name}: ${e && e.stack ? e.stack.split("\n").slice(0, 4).join(" / ") : e}`);
    await page.screenshot({ path: join(shots, "failed-" + name + ".png") }).catch(() => {});
  }
  await context.close();
}
await browser.close();
process.exit(failed ? 1 : 0);
