"use strict";
// Signs in, builds one tab per registered section the user may use, and shows the first.
(() => {
  const { $, el, api, sections, state, can } = Sophon;
  let shown = null;
  function select(name) {
    for (const s of sections) {
      const tab = $("tab-" + s.name), panel = $("panel-" + s.name);
      if (!tab) continue;
      const on = s.name === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
      if (on && shown !== name) {
        // Each render gets a fresh box: choosing the tab again replaces the section (not a second
        // copy with the same ids), and a render still awaiting the server writes into a detached box.
        shown = name;
        const box = el("div", { class: "section-body" });
        panel.replaceChildren(box);
        s.render(box, state.session);
      }
    }
    if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  }
  Sophon.select = (name) => { shown = null; select(name); };
  function show(session) {
    state.session = session;
    $("who").textContent = session.email;
    $("roles").textContent = session.roles.join(", ");
    $("scope").textContent = session.scope;
    $("signin").hidden = true; $("whoami").hidden = false;
    const nav = $("tabs"), box = $("sections");
    nav.textContent = ""; box.textContent = "";
    const mine = sections.filter((s) => can(s.access));
    for (const s of mine) {
      nav.append(el("button", { id: "tab-" + s.name, role: "tab", type: "button", "aria-controls": "panel-" + s.name,
        onclick: () => { shown = null; select(s.name); } }, s.title));
      box.append(el("section", { id: "panel-" + s.name, role: "tabpanel", "aria-labelledby": "tab-" + s.name, hidden: true }));
    }
    nav.addEventListener("keydown", (e) => {
      const i = mine.findIndex((s) => s.name === shown);
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (!d || i < 0) return;
      const next = mine[(i + d + mine.length) % mine.length];
      shown = null; select(next.name); $("tab-" + next.name).focus();
    });
    nav.hidden = false;
    const want = location.hash.slice(1);
    shown = null;
    select(mine.some((s) => s.name === want) ? want : mine[0].name);
    if (Sophon.afterSignIn) Sophon.afterSignIn(session);
  }
  Sophon.signedOut = (message) => {
    state.session = null; shown = null;
    $("whoami").hidden = true; $("tabs").hidden = true; $("sections").textContent = "";
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("email").focus();
  };
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    try {
      const session = await api("POST", "/api/session", { email: $("email").value, password: $("password").value });
      $("password").value = "";
      show(session);
    } catch (err) { $("password").value = ""; $("signin-error").textContent = err.message; }
  });
  $("signout").addEventListener("click", async () => {
    try { await api("DELETE", "/api/session"); } finally { Sophon.signedOut(); }
  });
  fetch("/api/session", { credentials: "same-origin" }).then((r) => r.ok ? r.json().then(show) : Sophon.signedOut());
})();
