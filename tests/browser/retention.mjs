// Retention: the lifecycle form, a preview of what it keeps and removes, Save only after a preview.
// Runs after the create scenarios: their snapshots of one scope are what "keep the last 1" removes.
import { expect, openTab, signIn } from "./lib.mjs";

export const retentionScenarios = [
  ["retention-preview-then-save", async (page, ctx) => {
    await signIn(page, ctx, "owner");
    const panel = await openTab(page, "Retention");
    const form = panel.locator("#retention-form");
    await form.waitFor();
    await expect(panel.locator("#retention-current"), /lifecycle/);
    const save = form.getByRole("button", { name: "Save" });
    if (!(await save.isDisabled())) throw new Error("Save is enabled before a preview");
    for (const input of await form.locator("input").all()) await input.fill("");
    await form.getByLabel(/\(KeepLast\)$/).fill("1");
    await form.getByRole("button", { name: "Preview" }).click();
    const plan = panel.locator("#retention-plan");
    await expect(plan, /Would keep \d+ and remove [1-9]\d* snapshot\(s\)/);
    const verdicts = await plan.locator("tbody td:nth-child(3)").allTextContents();
    if (!verdicts.includes("keep") || !verdicts.includes("remove")) throw new Error("verdicts: " + verdicts.join(", "));
    await ctx.shot("retention-preview", { fullPage: true });
    // A change after the preview disables Save again; a new preview enables it.
    await form.getByLabel(/\(KeepLast\)$/).fill("2");
    if (!(await save.isDisabled())) throw new Error("Save stays enabled for values not previewed");
    await form.getByRole("button", { name: "Preview" }).click();
    await expect(plan, /Would keep/);
    await save.click();
    await expect(form.getByRole("status"), /Saved into .*No snapshot was removed/);
    await expect(panel.locator("#retention-current"), /The lifecycle in effect: /);
  }],
  ["retention-for-a-viewer-previews-only", async (page, ctx) => {
    await signIn(page, ctx, "viewer");
    const panel = await openTab(page, "Retention");
    await panel.getByRole("button", { name: "Preview" }).click();
    await expect(panel.locator("#retention-plan"), /Would keep \d+ and remove \d+ snapshot\(s\)/);
    if (await panel.getByRole("button", { name: "Save" }).count()) throw new Error("a viewer is offered Save");
    await expect(panel.locator("#ret-save-help"), /Only an owner of the default tenant saves the lifecycle/);
  }],
];
