// Each scenario: [name, async (page, ctx) => {...}]; a thrown error fails it. Sections add theirs
// in their own file and list them here.
import { expect, signIn } from "./lib.mjs";
import { backupsScenarios } from "./backups.mjs";
import { browseScenarios } from "./browse.mjs";
import { createScenarios } from "./create.mjs";
import { restoreScenarios } from "./restore.mjs";
import { retentionScenarios } from "./retention.mjs";
import { schedulesScenarios } from "./schedules.mjs";

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
  ...browseScenarios,
  ...restoreScenarios,
  ...schedulesScenarios,
  ...retentionScenarios,
  ["every-tab-at-a-phones-width", async (page, ctx) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await signIn(page, ctx, "owner");
    const wide = [];
    for (const title of await page.getByRole("tab").allTextContents()) {
      await page.getByRole("tab", { name: title }).click();
      const panel = page.getByRole("tabpanel", { name: title });
      await panel.waitFor();
      await page.waitForTimeout(800); // its lists loaded
      const over = await page.evaluate(() => {
        const w = window.innerWidth;
        if (document.documentElement.scrollWidth <= w + 1) return null;
        const culprits = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > w + 1 && e.offsetParent !== null);
        return culprits.slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "")).join(", ");
      });
      if (over) wide.push(title + ": " + over);
      await ctx.shot("phone-" + title.toLowerCase(), { fullPage: true });
    }
    if (wide.length) throw new Error("the page scrolls sideways at 390 px: " + wide.join(" | "));
  }],
];
