// Schedules: add a job (the next five times shown while the expression is typed, a bad one refused
// next to it), edit it, pause and resume it, remove it (the confirm dialog dismissed, then accepted).
import { expect, openTab, signIn } from "./lib.mjs";

const NAME = "browser-nightly";

async function typeCron(form, expr) {
  const input = form.getByLabel(/^Cron expression/);
  await input.fill("");
  await input.pressSequentially(expr, { delay: 20 });
}

async function times(form) {
  return form.locator("#sched-times li").allTextContents();
}

async function waitTimes(form, re) {
  const end = Date.now() + 15000;
  for (;;) {
    const t = await times(form);
    if (t.length === 5 && t.every((x) => re.test(x))) return t;
    if (Date.now() > end) throw new Error(`next times ${JSON.stringify(t)} do not match ${re}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const schedulesScenarios = [
  ["schedules-add-edit-pause-remove", async (page, ctx) => {
    await signIn(page, ctx, "owner");
    const panel = await openTab(page, "Schedules");
    await expect(panel.getByRole("status").first(), /\d+ job\(s\)/);
    const form = panel.locator("#schedule-form");
    await form.getByRole("heading", { name: "Add a schedule" }).waitFor();
    await form.getByLabel("Name").fill(NAME);
    // The next five times follow the expression as it is typed.
    await typeCron(form, "0 4 * * *");
    await waitTimes(form, / 04:00 /);
    await typeCron(form, "61 * * * *");
    await expect(form.locator("#sched-schedule-error"), /\S/);
    if ((await form.getByLabel(/^Cron expression/).getAttribute("aria-invalid")) !== "true") throw new Error("a bad expression is not marked invalid");
    if ((await times(form)).length) throw new Error("times shown for a bad expression");
    await typeCron(form, "15 2 * * 1-5");
    await waitTimes(form, / 02:15 /);
    await ctx.shot("schedules-add", { fullPage: true });
    await form.getByRole("button", { name: "Add" }).click();
    const added = await expect(form.getByRole("status"), /Added \S+\/browser-nightly; next run \d{4}-\d\d-\d\d 02:15/);
    const full = added.match(/Added (\S+\/browser-nightly)/)[1];
    const row = panel.locator("#schedules-table tbody tr[data-id]").filter({ has: page.getByRole("cell", { name: full, exact: true }) });
    await expect(row, /15 2 \* \* 1-5/);
    await ctx.shot("schedules", { fullPage: true });

    // Edit: a new expression, its times previewed, saved.
    await row.getByRole("button", { name: "Edit" }).click();
    await form.getByRole("heading", { name: "Edit " + full }).waitFor();
    await typeCron(form, "30 5 * * 0");
    await waitTimes(form, / 05:30 /);
    await form.getByRole("button", { name: "Save changes" }).click();
    await expect(form.getByRole("status"), new RegExp("Saved " + full + "; next run .* 05:30"));
    await expect(row, /30 5 \* \* 0/);

    // Pause, then resume.
    await row.getByRole("button", { name: "Pause" }).click();
    await expect(row, /paused, last:/);
    await row.getByRole("button", { name: "Resume" }).waitFor();
    await row.getByRole("button", { name: "Resume" }).click();
    await row.getByRole("button", { name: "Pause" }).waitFor();
    if (/paused/.test(await row.textContent())) throw new Error("still paused after Resume");

    // Remove: dismissing the dialog keeps the job, accepting removes it.
    let asked = "";
    page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
    await row.getByRole("button", { name: "Remove" }).click();
    await page.waitForTimeout(300);
    if (!asked.includes(full)) throw new Error("the confirm dialog says " + JSON.stringify(asked));
    if ((await row.count()) !== 1) throw new Error("removed although the dialog was dismissed");
    page.once("dialog", (d) => d.accept());
    await row.getByRole("button", { name: "Remove" }).click();
    await expect(panel.getByRole("status").first(), new RegExp("Removed " + full));
    if (await row.count()) throw new Error("the removed job is still listed");
  }],
  ["schedules-for-a-viewer", async (page, ctx) => {
    await signIn(page, ctx, "viewer");
    const panel = await openTab(page, "Schedules");
    await expect(panel.getByRole("status").first(), /\d+ job\(s\)/);
    for (const name of ["Edit", "Pause", "Remove", "Run now", "Add"]) {
      if (await panel.getByRole("button", { name, exact: true }).count()) throw new Error("a viewer is offered " + name);
    }
    if ((await panel.getByRole("button", { name: "History" }).count()) < 1) throw new Error("a viewer sees no history buttons");
  }],
];
