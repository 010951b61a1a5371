"use strict";
// Retention: the gateway's lifecycle (Sophon:Backups:Default:Lifecycle) and where it comes from; a
// preview of what it would keep and remove (the plan of `backup forget --dry-run`, per group, with
// the rules that keep each snapshot); saving it into the config, enabled once the form's values
// have been previewed. Saving removes nothing: the next scheduled retention applies it.
Sophon.section("retention", {
  title: "Retention",
  access: "read",
  async render(root) {
    const { el, api } = Sophon;
    const KEYS = [
      ["KeepLast", "Keep the newest N snapshots"],
      ["KeepHourly", "Hourly: keep the newest of each of the N newest hours"],
      ["KeepDaily", "Daily: … of each of the N newest days"],
      ["KeepWeekly", "Weekly: … of each of the N newest weeks"],
      ["KeepMonthly", "Monthly: … of each of the N newest months"],
      ["KeepYearly", "Yearly: … of each of the N newest years"],
      ["KeepWithin", "Keep everything within this long of the newest (e.g. 1y2m3d4h)"],
    ];
    const status = el("p", { role: "status" }, "Loading…");
    const current = el("div", { id: "retention-current" });
    const out = el("div", { id: "retention-plan", "aria-live": "polite" });
    root.append(el("h2", {}, "Retention"), status, current);
    let info;
    try { info = await api("GET", "/api/retention"); } catch (err) { status.textContent = err.message; status.className = "error"; return; }
    status.textContent = "";
    function showCurrent() {
      current.textContent = "";
      current.append(el("p", {}, (info.configured ? "The lifecycle in effect: " : "No lifecycle is configured, so the product default applies: ") + info.describe + "."));
      const src = Object.entries(info.sources);
      if (src.length) {
        const list = el("ul", { "aria-label": "Where each key comes from" });
        for (const [k, f] of src) list.append(el("li", {}, el("code", {}, k), " = " + JSON.stringify(info.lifecycle[k]) + " from " + f));
        current.append(el("p", {}, "Settings key ", el("code", {}, info.key), "; environment " + info.environment
          + "; files read: " + info.files.join(", ") + "."), list);
      }
    }
    showCurrent();

    const inputs = {}, errors = {};
    const fields = KEYS.map(([k, label]) => {
      const within = k === "KeepWithin";
      const v = info.lifecycle[k];
      inputs[k] = el("input", { id: "ret-" + k, name: k, type: within ? "text" : "number", min: within ? null : 0, step: within ? null : 1,
        inputmode: within ? null : "numeric", value: v === null || v === undefined || v === 0 ? "" : v,
        "aria-describedby": "ret-" + k + "-error", autocomplete: "off" });
      errors[k] = el("p", { id: "ret-" + k + "-error", class: "error", role: "alert" });
      return el("div", { class: "field" }, el("label", { for: inputs[k].id }, label + " (" + k + ")"), inputs[k], errors[k]);
    });
    const general = el("p", { class: "error", role: "alert" });
    const saved = el("p", { role: "status" });
    const previewBtn = el("button", { type: "button" }, "Preview");
    const saveBtn = el("button", { type: "submit", disabled: true, "aria-describedby": "ret-save-help" }, "Save");
    const saveHelp = el("p", { id: "ret-save-help", class: "muted" }, info.may_save
      ? "Save is enabled after a preview of these values. It writes " + info.key + " into " + info.file + "; no snapshot is removed until the next scheduled retention."
      : "Only an owner of the default tenant saves the lifecycle (one setting for every tenant); you can preview any values.");
    const form = el("form", { id: "retention-form", "aria-labelledby": "retention-form-title", novalidate: true },
      el("h2", { id: "retention-form-title" }, "Lifecycle"), ...fields,
      el("div", { class: "buttons" }, previewBtn, info.may_save ? saveBtn : null), saveHelp, general, saved);
    root.append(form, out);

    let token = null;
    function values() {
      const l = {};
      for (const [k] of KEYS) { const v = inputs[k].value.trim(); if (v !== "") l[k] = k === "KeepWithin" ? v : Number(v); }
      return l;
    }
    function clearErrors() {
      general.textContent = ""; saved.textContent = "";
      for (const [k] of KEYS) { errors[k].textContent = ""; inputs[k].removeAttribute("aria-invalid"); }
    }
    function showError(err) {
      const k = err.data && err.data.field;
      if (k && errors[k]) { errors[k].textContent = err.message; inputs[k].setAttribute("aria-invalid", "true"); inputs[k].focus(); }
      else general.textContent = err.message;
    }
    for (const [k] of KEYS) inputs[k].addEventListener("input", () => { token = null; saveBtn.disabled = true; });

    previewBtn.addEventListener("click", async () => {
      clearErrors();
      out.textContent = "Planning…";
      try {
        const p = await api("POST", "/api/retention/preview", { lifecycle: values() });
        token = p.plan;
        saveBtn.disabled = !info.may_save;
        render(p);
      } catch (err) { out.textContent = ""; token = null; saveBtn.disabled = true; showError(err); }
    });

    function render(p) {
      out.textContent = "";
      out.append(el("h2", {}, "Preview: " + p.describe),
        el("p", {}, p.note || ("Would keep " + p.kept + " and remove " + p.removed + " snapshot(s) in " + p.groups.length + " group(s).")));
      p.groups.forEach((g, i) => {
        const keep = g.snapshots.filter((s) => s.keep).length;
        const body = el("tbody");
        for (const s of g.snapshots.slice().reverse()) {
          body.append(el("tr", { "data-id": s.id, class: s.keep ? "" : "remove" },
            el("td", {}, s.time), el("td", {}, el("code", {}, s.id.slice(0, 8))),
            el("td", { class: s.keep ? "ok" : "error" }, s.keep ? "keep" : "remove"),
            el("td", {}, s.keep ? s.reasons.join(", ") : "no rule keeps it"), el("td", { class: "wide" }, s.tags.join(", "))));
        }
        out.append(el("section", { "aria-labelledby": "ret-group-" + i },
          el("h3", { id: "ret-group-" + i }, g.key.describe + ": keep " + keep + ", remove " + (g.snapshots.length - keep)),
          el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Time"), el("th", { scope: "col" }, "Snapshot"),
            el("th", { scope: "col" }, "Verdict"), el("th", { scope: "col" }, "Kept by"), el("th", { scope: "col", class: "wide" }, "Tags"))), body))));
      });
      for (const u of p.unreadable || []) out.append(el("p", { class: "error" }, "left alone: " + u));
    }

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!token) return;
      clearErrors();
      try {
        const r = await api("PUT", "/api/retention", { lifecycle: values(), confirm_plan: token });
        info = r.retention;
        showCurrent();
        saved.textContent = "Saved into " + r.saved.file + ". No snapshot was removed: the next scheduled retention applies it.";
        saveBtn.disabled = true; token = null;
      } catch (err) { showError(err); saveBtn.disabled = true; token = null; }
    });
  },
});
