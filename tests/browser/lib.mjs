// Small helpers shared by the scenarios.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

// Wait until the locator's text matches re (default 15 s).
export async function expect(locator, re, timeout = 15000) {
  const end = Date.now() + timeout;
  let last = "";
  for (;;) {
    try { last = (await locator.first().textContent({ timeout: 1000 })) || ""; } catch (_) { last = "(not found)"; }
    if (re.test(last)) return last;
    if (Date.now() > end) throw new Error(`expected ${re} in ${locator}, got ${JSON.stringify(last.slice(0, 300))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function signIn(page, ctx, who) {
  await page.goto(ctx.url);
  await page.getByLabel("Email").fill(ctx.users[who].email);
  await page.getByLabel("Password").fill(ctx.users[who].password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("tab").first().waitFor();
}

// The API with the page's own session (cookie and CSRF token), for checks beside the UI.
export async function api(page, method, path, body) {
  return page.evaluate(async ([method, path, body]) => {
    const s = await (await fetch("/api/session")).json();
    const init = { method, headers: { "X-CSRF-Token": s.csrf } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const r = await fetch(path, init);
    return { status: r.status, body: await r.json().catch(() => null) };
  }, [method, path, body]);
}

// Open a section's tab and wait for its panel.
export async function openTab(page, title) {
  await page.getByRole("tab", { name: title }).click();
  await page.getByRole("tabpanel", { name: title }).waitFor();
  return page.getByRole("tabpanel", { name: title });
}

// Run a program; its stdout, or an Error with its output.
export function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: Object.assign({}, process.env, env || {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stdout}${r.stderr}${r.error || ""}`);
  return r.stdout;
}

// Python's zipfile opens the archive and every member's CRC holds; the member names.
export function pythonZipNames(path) {
  return run("python3", ["-c", "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nbad=z.testzip()\nassert bad is None, bad\nprint('\\n'.join(z.namelist()))", path]).split("\n").filter(Boolean);
}

// Python's tarfile reads the gzip'd archive to its end; the member names.
export function pythonTarNames(path) {
  return run("python3", ["-c", "import tarfile,sys\nt=tarfile.open(sys.argv[1],'r:gz')\nn=[m.name for m in t]\nfor m in t:\n  f=t.extractfile(m)\n  f and f.read()\nprint('\\n'.join(n))", path]).split("\n").filter(Boolean);
}

// `sophon backup verify --in` of an archive (a path or URL), with the passphrase that opens it.
export function sophonVerifyIn(archive, passphrase) {
  const env = passphrase ? { SOPHON_BACKUP_PASSPHRASE: passphrase } : {};
  return run(process.env.SOPHON_BIN, ["backup", "verify", "--in", archive], env);
}

// The Playwright download that `start` triggers, saved under SOPHON_WORK as `name`; its path.
export async function captureDownload(page, start, name, timeout = 120000) {
  const [download] = await Promise.all([page.waitForEvent("download", { timeout }), start()]);
  const failure = await download.failure();
  if (failure) throw new Error("the download failed: " + failure);
  const dir = join(process.env.SOPHON_WORK, "browser-downloads");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  await download.saveAs(path);
  return { path, suggested: download.suggestedFilename() };
}
