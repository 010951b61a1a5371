// Restore: pick a snapshot, Preview shows the dry run ("Would restore:" and the conflicts), then
// Restore confirms and the report shows; replace asks for a typed confirmation first.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect, openTab, signIn } from "./lib.mjs";

async function restoreTab(page, ctx) {
  await signIn(page, ctx, "owner");
  const panel = await openTab(page, "Restore");
  const snap = panel.getByLabel("Snapshot", { exact: true });
  await snap.locator("option").first().waitFor({ state: "attached" });
  if (!(await snap.inputValue())) throw new Error("no gateway snapshot offered");
  return panel;
}

export const restoreScenarios = [
  ["restore-preview-then-confirm", async (page, ctx) => {
    const panel = await restoreTab(page, ctx);
    await panel.getByLabel("A snapshot of the repository").check();
    const options = await panel.getByLabel("Snapshot", { exact: true }).locator("option").allTextContents();
    if (!options.every((o) => /gateway:/.test(o))) throw new Error("snapshots offered: " + options.join(" | "));
    await panel.getByRole("checkbox", { name: "agents", exact: true }).check();
    await panel.getByRole("button", { name: "Preview" }).click();
    const would = panel.locator("#restore-would");
    await expect(would, /Would restore:/, 60000);
    await expect(panel.locator("#restore-conflicts"), /\S/);
    if (!(await would.evaluate((w) => w === document.activeElement))) throw new Error("the preview does not take the focus");
    if (await panel.getByLabel(/Type .* to confirm/).count()) throw new Error("an additive restore asks for a typed confirmation");
    await ctx.shot("restore-preview", { fullPage: true });
    await panel.getByRole("button", { name: "Restore", exact: true }).click();
    await expect(panel.locator("#restore-report"), /\S/, 120000);
    await expect(panel.locator("#restore-needs-action"), /\S/);
    await panel.getByRole("heading", { name: "Restored" }).waitFor();
    await ctx.shot("restore-result", { fullPage: true });
  }],
  ["restore-replace-needs-the-typed-confirmation", async (page, ctx) => {
    const panel = await restoreTab(page, ctx);
    await panel.getByLabel(/Replace: delete the present data/).check();
    await panel.getByRole("checkbox", { name: "workflows", exact: true }).check();
    await panel.getByRole("button", { name: "Preview" }).click();
    await expect(panel.locator("#restore-would"), /Would restore:/, 60000);
    const confirm = panel.getByLabel(/Type .* to confirm/);
    await confirm.waitFor();
    const word = (await panel.locator("label[for=restore-confirm]").textContent()).match(/Type (.+) to confirm/)[1];
    const go = panel.getByRole("button", { name: "Replace and restore" });
    await go.click();
    await expect(panel.locator("#restore-go-error"), new RegExp("Type .* exactly"));
    await confirm.fill(word + "-not");
    await go.click();
    await expect(panel.locator("#restore-go-error"), new RegExp("Type .* exactly"));
    if (await panel.locator("#restore-report").count()) throw new Error("a replace ran without its confirmation");
    await ctx.shot("restore-replace-confirm", { fullPage: true });
    await confirm.fill(word);
    await go.click();
    await expect(panel.locator("#restore-report"), /\S/, 120000);
    await expect(panel.locator("#restore-needs-action"), /\S/);
  }],
  ["restore-preview-of-an-uploaded-archive", async (page, ctx) => {
    // The zip that create-zip-download-with-estimate saved from the browser.
    const zip = join(ctx.env.SOPHON_WORK, "browser-downloads", "browser.zip");
    if (!existsSync(zip)) throw new Error(zip + " is missing: the create scenarios run first");
    const panel = await restoreTab(page, ctx);
    await panel.getByLabel("An exported archive").check();
    if (!(await panel.getByLabel("Snapshot", { exact: true }).isDisabled())) throw new Error("the snapshot list stays enabled");
    await panel.getByLabel("Archive file").setInputFiles(zip);
    await panel.getByRole("checkbox", { name: "agents", exact: true }).check();
    await panel.getByRole("button", { name: "Preview" }).click();
    await expect(panel.locator("#restore-upload-note"), /Uploaded browser\.zip \(.*\)/, 60000);
    await expect(panel.locator("#restore-would"), /Would restore:/, 60000);
  }],
];
