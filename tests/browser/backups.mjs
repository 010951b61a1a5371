// The Backups section: the list in each user's scope, verify, a phone's width.
import { expect, signIn } from "./lib.mjs";

export const backupsScenarios = [
  ["backups-owner-lists-and-verifies", async (page, ctx) => {
    await signIn(page, ctx, "owner");
    const rows = page.locator("#panel-backups tbody tr");
    await rows.first().waitFor();
    if ((await rows.count()) < 2) throw new Error("the owner should see every snapshot");
    await ctx.shot("backups", { fullPage: true });
    await page.getByLabel("Also read the stored data (--read-data)").check();
    await page.getByRole("button", { name: "Verify" }).click();
    await expect(page.locator(".verify-result"), /No damage found: \d+ snapshot/, 60000);
    await ctx.shot("verify", { fullPage: true });
    // The Jobs tab lists it; a job goes on without the page, and the list picks it up again.
    await page.getByRole("tab", { name: "Jobs" }).click();
    await expect(page.locator("#panel-jobs tbody tr td:nth-child(2)"), /verify/);
    await expect(page.locator("#panel-jobs tbody tr td:nth-child(4)"), /succeeded/);
    await ctx.shot("jobs");
  }],
  ["backups-viewer-reads-only", async (page, ctx) => {
    await signIn(page, ctx, "viewer");
    await page.locator("#panel-backups [role=status]").first().waitFor();
    if (await page.getByRole("button", { name: "Verify" }).count()) throw new Error("a viewer is offered Verify");
    for (const tab of ["Create", "Restore"]) {
      if (await page.getByRole("tab", { name: tab }).count()) throw new Error(`a viewer is offered ${tab}`);
    }
  }],
  ["backups-tenant-admin-sees-its-tenant", async (page, ctx) => {
    await signIn(page, ctx, "admin");
    const rows = page.locator("#panel-backups tbody tr");
    await rows.first().waitFor();
    const scopes = await page.locator("#panel-backups tbody tr td:nth-child(3)").allTextContents();
    if (!scopes.length || scopes.some((s) => !s.endsWith("?tenant=" + ctx.users.admin.tenant))) {
      throw new Error("the tenant admin sees " + JSON.stringify(scopes));
    }
  }],
  ["backups-at-a-phones-width", async (page, ctx) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await signIn(page, ctx, "owner");
    await page.locator("#panel-backups tbody tr").first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    if (overflow) throw new Error("the page scrolls sideways at 390 px");
    await ctx.shot("backups-phone", { fullPage: true });
  }],
];
