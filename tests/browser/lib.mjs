// Small helpers shared by the scenarios.

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
