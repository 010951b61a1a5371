// Each scenario: [name, async (page, ctx) => {...}]; a thrown error fails it. Sections add theirs
// in their own file and list them here.
import { expect, signIn } from "./lib.mjs";
import { backupsScenarios } from "./backups.mjs";
import { createScenarios } from "./create.mjs";

export const scenarios = [
  ["sign-in-wrong-password", async (page, ctx) => {
    await page.goto(ctx.url);
    await page.getByLabel("Email").fill(ctx.users.owner.email);
    await page.getByLabel("Password").fill("not-the-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert"), /wrong email or password/);
    await ctx.shot("sign-in-error");
  }],
  ["sign-in-with-the-keyboard", async (page, ctx) => {
    await page.goto(ctx.url);
    await page.getByLabel("Email").focus();
    await page.keyboard.type(ctx.users.owner.email);
    await page.keyboard.press("Tab");
    await page.keyboard.type(ctx.users.owner.password);
    await page.keyboard.press("Enter");
    await page.getByRole("tab", { name: "Backups" }).waitFor();
    // The tabs move with the arrow keys.
    await page.getByRole("tab", { name: "Backups" }).focus();
    await page.keyboard.press("ArrowRight");
    const selected = await page.getByRole("tab", { selected: true }).textContent();
    if (selected === "Backups" && (await page.getByRole("tab").count()) > 1) throw new Error("ArrowRight did not move to the next tab");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
  }],
  ...backupsScenarios,
  ...createScenarios,
];
