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
  ["every-control-has-a-label", async (page, ctx) => {
    await signIn(page, ctx, "owner");
    const missing = [];
    for (const title of await page.getByRole("tab").allTextContents()) {
      // Chosen twice: the section is replaced, not appended again (no id twice in the page).
      await page.getByRole("tab", { name: title }).click();
      await page.getByRole("tab", { name: title }).click();
      await page.getByRole("tabpanel", { name: title }).waitFor();
      await page.waitForTimeout(800); // its lists loaded
      const twice = await page.evaluate(() => {
        const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
        return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
      });
      if (twice.length) missing.push(title + ": ids twice in the page: " + twice.join(", "));
      // Open the parts shown on demand: the passphrases, the categories, a destination's field.
      for (const [label, how] of [["Encrypt the archive with a passphrase", "check"], ["Only these categories:", "check"]]) {
        const l = page.getByRole("tabpanel", { name: title }).getByLabel(label);
        if (await l.count()) await l[how]();
      }
      missing.push(...(await page.evaluate((title) => {
        const name = (e) => (e.getAttribute("aria-label") || "").trim()
          || (e.getAttribute("aria-labelledby") || "").split(" ").map((id) => document.getElementById(id)?.textContent || "").join("").trim()
          || [...(e.labels || [])].map((l) => l.textContent).join("").trim()
          || (e.tagName === "BUTTON" || e.tagName === "A" ? e.textContent.trim() : "")
          || (e.getAttribute("title") || "").trim();
        const panel = document.querySelector("[role=tabpanel]:not([hidden])");
        return [...panel.querySelectorAll("input, select, textarea, button, a[href], progress")]
          .filter((e) => e.offsetParent !== null && e.type !== "hidden" && !name(e))
          .map((e) => title + ": " + e.outerHTML.slice(0, 120));
      }, title)));
    }
    if (missing.length) throw new Error(missing.join(" | "));
  }],
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
