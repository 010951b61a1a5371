// Browse a snapshot: its backup/ tree, a text file viewed in the page, one file downloaded (the
// bytes compared with the server's), a folder downloaded as zip (opened by Python's zipfile).
import { readFileSync } from "node:fs";
import { captureDownload, expect, openTab, pythonZipNames, signIn } from "./lib.mjs";

const FILE = "appsettings.backup.json";

export const browseScenarios = [
  ["browse-view-and-download-a-file", async (page, ctx) => {
    await signIn(page, ctx, "owner");
    const panel = await openTab(page, "Browse");
    const pick = panel.getByLabel("Snapshot");
    await expect(panel.locator("#browse-note"), /entries in backup\/ \(snapshot [0-9a-f]{8}, gateway layout\)/);
    if ((await pick.locator("option").count()) < 2) throw new Error("the snapshot list is short");
    // The oldest snapshot (the CLI's whole-gateway one) is chosen in the list.
    const oldest = await pick.locator("option").last().getAttribute("value");
    await pick.selectOption(oldest);
    await expect(panel.locator("#browse-note"), new RegExp("snapshot " + oldest.slice(0, 8)));
    await panel.getByRole("button", { name: "Open folder config" }).click();
    await expect(panel.locator("#browse-note"), /entries in backup\/config /);
    await expect(panel.getByRole("navigation", { name: "Folder path" }), /backup\/config/);
    await ctx.shot("browse", { fullPage: true });
    await panel.getByRole("button", { name: "View " + FILE }).click();
    const view = panel.locator("#browse-view");
    await view.waitFor();
    await expect(panel.getByRole("heading", { name: "config/" + FILE }), /config/);
    const shown = await view.textContent();
    JSON.parse(shown); // the whole JSON file, as text
    if (!(await view.evaluate((v) => v === document.activeElement))) throw new Error("the viewed file does not take the focus");
    await ctx.shot("browse-file", { fullPage: true });
    const { path, suggested } = await captureDownload(page, () => panel.getByRole("link", { name: "Download " + FILE }).click(), FILE);
    if (suggested !== FILE) throw new Error("the download is named " + suggested);
    const server = await page.evaluate(async ([id, p]) => {
      const r = await fetch("/api/snapshots/" + id + "/file?path=" + encodeURIComponent(p) + "&download=1");
      return Array.from(new Uint8Array(await r.arrayBuffer()));
    }, [oldest, "config/" + FILE]);
    const got = readFileSync(path);
    if (!got.equals(Buffer.from(server))) throw new Error(`the downloaded file differs: ${got.length} bytes, the server has ${server.length}`);
    if (got.toString("utf8") !== shown) throw new Error("the downloaded file is not the text shown");
    // Back to the root by the breadcrumb, then the config folder as a zip.
    await panel.getByRole("navigation", { name: "Folder path" }).getByRole("button", { name: "backup" }).click();
    await expect(panel.locator("#browse-note"), /entries in backup\/ /);
    const zip = await captureDownload(page, () => panel.getByRole("link", { name: "Download folder config as zip" }).click(), "config.zip");
    const names = pythonZipNames(zip.path);
    if (!names.some((n) => n.endsWith(FILE))) throw new Error("the folder's zip holds " + names.join(", "));
  }],
];
