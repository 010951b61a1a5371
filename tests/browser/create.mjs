// Settings → Backup → Create, driven through the form: the estimate, each format and encryption to
// download (the saved file opened by Python's zipfile / tarfile and by `sophon backup verify --in`),
// a local path, the test S3 server, live progress during a large create, and Cancel.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { api, captureDownload, expect, openTab, pythonTarNames, pythonZipNames, signIn, sophonVerifyIn } from "./lib.mjs";

const TYPED = "browser-typed-passphrase-7f3a";

async function createTab(page, ctx) {
  await signIn(page, ctx, "owner");
  const panel = await openTab(page, "Create");
  await panel.getByRole("button", { name: "Estimate" }).waitFor();
  return panel;
}

// A small scope: two categories of every tenant (the large document stays out).
async function chooseSmallScope(panel) {
  await panel.getByLabel("Only these categories:").check();
  await panel.getByRole("checkbox", { name: "agents", exact: true }).check();
  await panel.getByRole("checkbox", { name: "workflows", exact: true }).check();
}

async function snapshotCount(page) {
  const r = await api(page, "GET", "/api/snapshots");
  if (r.status !== 200) throw new Error("snapshots: " + r.status);
  return r.body.snapshots.length;
}

// The create's outcome in the page ("Snapshot … saved: …").
async function outcome(panel, timeout = 120000) {
  return expect(panel.locator(".create-outcome"), /Snapshot [0-9a-f]{8} saved: \d+ files/, timeout);
}

function exportsDir(ctx) {
  const dir = join(ctx.env.SOPHON_WORK, "browser-exports");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export const createScenarios = [
  ["create-zip-download-with-estimate", async (page, ctx) => {
    const panel = await createTab(page, ctx);
    await chooseSmallScope(panel);
    await panel.getByRole("button", { name: "Estimate" }).click();
    await expect(panel.locator("#create-estimate-out"), /Files\s*\d+ \(.*\).*To read.*A new snapshot would add\s*[\d.]+ [KMG]?i?B before compression/s);
    await ctx.shot("create-estimate", { fullPage: true });
    if (!(await panel.getByLabel("zip", { exact: true }).isChecked())) throw new Error("zip is not the default format");
    const { path, suggested } = await captureDownload(page, () => panel.getByRole("button", { name: "Create" }).click(), "browser.zip");
    await outcome(panel);
    if (!suggested.endsWith(".zip")) throw new Error("the download is named " + suggested);
    const names = pythonZipNames(path);
    if (!names.some((n) => n.startsWith("backup/agents/")) || names.some((n) => n.startsWith("backup/documents/"))) {
      throw new Error("the zip holds " + names.slice(0, 20).join(", "));
    }
    sophonVerifyIn(path);
    await ctx.shot("create-done", { fullPage: true });
  }],
  ["create-targz-download", async (page, ctx) => {
    const panel = await createTab(page, ctx);
    await chooseSmallScope(panel);
    await panel.getByLabel("tar.gz", { exact: true }).check();
    const { path, suggested } = await captureDownload(page, () => panel.getByRole("button", { name: "Create" }).click(), "browser.tar.gz");
    await outcome(panel);
    if (!suggested.endsWith(".tar.gz")) throw new Error("the download is named " + suggested);
    const names = pythonTarNames(path);
    if (!names.some((n) => n.startsWith("backup/workflows/"))) throw new Error("the tar.gz holds " + names.slice(0, 20).join(", "));
    sophonVerifyIn(path);
  }],
  ["create-encrypted-download", async (page, ctx) => {
    const panel = await createTab(page, ctx);
    await chooseSmallScope(panel);
    await panel.getByLabel("Encrypt the archive with a passphrase").check();
    // Two passphrases that differ: refused next to the second one, nothing starts.
    await panel.getByLabel("Passphrase", { exact: true }).fill(TYPED);
    await panel.getByLabel("Passphrase again").fill(TYPED + "x");
    await panel.getByRole("button", { name: "Create" }).click();
    await expect(panel.locator("#create-error-passphrase_confirm"), /\S/);
    if ((await panel.getByLabel("Passphrase again").getAttribute("aria-invalid")) !== "true") throw new Error("the second passphrase is not marked invalid");
    await panel.getByLabel("Passphrase", { exact: true }).fill(TYPED);
    await panel.getByLabel("Passphrase again").fill(TYPED);
    const { path } = await captureDownload(page, () => panel.getByRole("button", { name: "Create" }).click(), "browser-sealed.zip");
    await expect(panel.locator(".create-outcome"), /saved/, 120000);
    const bytes = readFileSync(path);
    if (bytes.subarray(0, 8).toString("latin1") !== "SOPHSEAL") throw new Error("the encrypted download is not sealed");
    if (bytes.includes(Buffer.from("backup/agents/"))) throw new Error("member names readable in the sealed archive");
    sophonVerifyIn(path, TYPED);
    let opened = true;
    try { sophonVerifyIn(path, "not-" + TYPED); } catch (_) { opened = false; }
    if (opened) throw new Error("the sealed archive opened with a wrong passphrase");
    if ((await page.content()).includes(TYPED)) throw new Error("the passphrase is still in the page");
  }],
  ["create-to-a-local-path", async (page, ctx) => {
    const panel = await createTab(page, ctx);
    await chooseSmallScope(panel);
    await panel.getByLabel("Where the archive goes").selectOption({ label: "A folder on the server" });
    const path = join(exportsDir(ctx), "local.zip");
    await panel.getByLabel("Archive path on the server").fill(path);
    await panel.getByRole("button", { name: "Create" }).click();
    await outcome(panel);
    await expect(panel.locator(".create-outcome"), new RegExp("Archive written to " + path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    pythonZipNames(path);
    sophonVerifyIn(path);
    // The same path again, without "Replace": refused next to the path field.
    await panel.getByRole("button", { name: "Create" }).click();
    await expect(panel.locator("#create-error-destination-where"), /\S/);
  }],
  ["create-to-the-test-s3-server", async (page, ctx) => {
    const base = (ctx.env.SOPHON_TEST_S3_URL || "").replace(/\/+$/, "");
    if (!base) {
      if (ctx.env.SOPHON_REQUIRE_SERVERS) throw new Error("SOPHON_TEST_S3_URL is not set");
      console.log("skipped create-to-the-test-s3-server: SOPHON_TEST_S3_URL is not set (scripts/test-servers start DIR; source DIR/env)");
      return;
    }
    const panel = await createTab(page, ctx);
    await chooseSmallScope(panel);
    await panel.getByLabel("tar.gz", { exact: true }).check();
    await panel.getByLabel("Where the archive goes").selectOption({ label: "S3" });
    const url = `${base}/browser-${process.pid}-${Date.now()}/gateway-{snapshot}.tar.gz`;
    await panel.getByLabel("Archive URL").fill(url);
    await panel.getByRole("button", { name: "Create" }).click();
    const text = await outcome(panel);
    const short = text.match(/Snapshot ([0-9a-f]{8})/)[1];
    const written = url.replace("{snapshot}", short);
    if (!text.includes("Archive written to " + written)) throw new Error("the outcome says " + text);
    sophonVerifyIn(written);
  }],
  ["create-shows-progress-during-a-large-create", async (page, ctx) => {
    const panel = await createTab(page, ctx);
    await panel.getByLabel("Everything").check();
    await panel.getByRole("button", { name: "Estimate" }).click();
    await expect(panel.locator("#create-estimate-out"), /To read\s*\d+ files \((9\d|1\d\d)\.\d MiB\)/);
    await panel.getByLabel("Where the archive goes").selectOption({ label: "A folder on the server" });
    const path = join(exportsDir(ctx), "everything.zip");
    await panel.getByLabel("Archive path on the server").fill(path);
    await panel.getByRole("button", { name: "Create" }).click();
    const bar = panel.getByRole("progressbar", { name: "create progress" });
    await bar.waitFor();
    // Sample the bar and the counters while the job runs: they move, pushed by the server.
    const seen = [];
    let shot = false;
    for (const end = Date.now() + 120000; Date.now() < end;) {
      const s = await panel.locator(".job").evaluate((j) => ({
        state: j.dataset.state, value: j.querySelector("progress").value, max: j.querySelector("progress").max,
        step: j.querySelector(".job-step").textContent, counts: j.querySelector(".job-counts").textContent,
      }));
      if (s.state !== "running") break;
      const last = seen[seen.length - 1];
      if (!last || last.value !== s.value || last.counts !== s.counts || last.step !== s.step) seen.push(s);
      // The screenshot is taken while the sampling goes on (it takes longer than the samples' interval).
      if (!shot && s.value > 0 && /MiB of/.test(s.counts)) shot = ctx.shot("create-progress", { fullPage: true });
      await page.waitForTimeout(100);
    }
    await outcome(panel);
    if (shot) await shot;
    // The bar shows a share once the totals are known (the archive's step); before, it is indeterminate.
    if (seen.length < 3 || !seen.some((s) => s.value > 0 && s.value < s.max)) throw new Error("the progress bar never moved: " + JSON.stringify(seen));
    // The counters grow while it runs (the steps are quick on a fast machine: the archive's is the long one).
    const bytes = [...new Set(seen.map((s) => s.counts.split(" · ")[1]))].filter((b) => b !== "0 B");
    if (bytes.length < 2 || !seen.some((s) => /writing the archive/.test(s.step))) throw new Error("progress seen: " + JSON.stringify(seen));
    if (!seen.some((s) => /\d+ of \d+ files · .* of .* · .*\/s/.test(s.counts))) throw new Error("counters: " + seen.map((s) => s.counts).join(" | "));
    if (!shot) throw new Error("no screenshot of the progress");
    const names = pythonZipNames(path);
    if (!names.includes("backup/documents/files/doc_big_browser.bin")) throw new Error("the large document is not in the archive");
  }],
  ["create-cancel-leaves-nothing", async (page, ctx) => {
    const panel = await createTab(page, ctx);
    const before = await snapshotCount(page);
    const dir = join(exportsDir(ctx), "cancelled");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "cancelled.zip");
    await panel.getByLabel("Everything").check();
    await panel.getByLabel("Encrypt the archive with a passphrase").check();
    await panel.getByLabel("Passphrase", { exact: true }).fill(TYPED);
    await panel.getByLabel("Passphrase again").fill(TYPED);
    await panel.getByLabel("Where the archive goes").selectOption({ label: "A folder on the server" });
    await panel.getByLabel("Archive path on the server").fill(path);
    await panel.getByRole("button", { name: "Create" }).click();
    const job = panel.locator(".job");
    await job.waitFor();
    // Cancel as soon as it runs: on a fast machine the whole create takes a few seconds, and a
    // cancel that arrives after the last byte finds nothing to stop (tests/web_create.rs cancels
    // in each step through the API).
    await expect(panel.locator(".job-step"), /create: (starting|opening|dumping|backing up|writing)/, 60000);
    if ((await job.getAttribute("data-state")) !== "running") throw new Error("the create ended before Cancel");
    await panel.getByRole("button", { name: "Cancel" }).click();
    await expect(panel.locator(".job-outcome"), /Cancelled: nothing was kept\./, 60000);
    await ctx.shot("create-cancelled", { fullPage: true });
    const left = readdirSync(dir);
    if (left.length || existsSync(path)) throw new Error("left behind: " + left.join(", "));
    const locks = join(ctx.env.SOPHON_HOME, "backups/repository/locks");
    if (!existsSync(join(ctx.env.SOPHON_HOME, "backups/repository/config"))) throw new Error("the repository is not where the test looks");
    // The page's own list and browse requests share a read lock for up to 2 s
    // (SHARED_READS_FOR in src/web/snapshots.rs): every lock must be gone within a few seconds.
    let held = [];
    for (const until = Date.now() + 6000; ;) {
      held = existsSync(locks) ? readdirSync(locks) : [];
      if (!held.length || Date.now() > until) break;
      await page.waitForTimeout(200);
    }
    if (held.length) throw new Error("locks left: " + held.join(", "));
    const after = await snapshotCount(page);
    if (after !== before) throw new Error(`snapshots: ${before} before, ${after} after the cancel`);
  }],
];
