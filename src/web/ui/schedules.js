"use strict";
// Schedules: the home's cron jobs in the user's scope with their next and last runs, each job's
// history, and for owners and admins: add, edit (with the next five times previewed as the
// expression is typed), pause, resume, run now (a background job) and remove.
Sophon.section("schedules", {
  title: "Schedules",
  access: "read",
  async render(root) {
    const { el, api, can, jobPanel, duration } = Sophon;
    const act = can("act");
    const note = el("p", { role: "status" }, "Loading…");
    const tbody = el("tbody");
    const live = el("div", { id: "schedule-jobs", "aria-live": "polite" });
    const formBox = el("div", { id: "schedule-form-box" });
    root.append(el("h2", {}, "Schedules"), note,
      el("div", { class: "scroll" }, el("table", { id: "schedules-table" }, el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "Job"), el("th", { scope: "col" }, "Schedule"), el("th", { scope: "col", class: "wide" }, "Action"),
        el("th", { scope: "col" }, "Next run"), el("th", { scope: "col" }, "Last run"), el("th", { scope: "col" }, "Status"),
        el("th", { scope: "col" }, el("span", { class: "muted" }, "Actions")))), tbody)),
      live, formBox);
    let listing = null;
    // "2026-12-07T03:00:00Z" → "2026-12-07 03:00 UTC" (the server's time zone, as the API gives it).
    const when = (t) => {
      const m = String(t || "").match(/^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d)?(Z|[+-]\d\d:\d\d)$/);
      return m ? m[1] + " " + m[2] + (m[3] === "Z" ? " UTC" : " " + m[3]) : String(t || "");
    };

    function describeAction(j) {
      if (j.backup) {
        const b = j.backup, parts = [];
        parts.push(b.tenant ? "tenant " + b.tenant : "whole gateway");
        if (b.categories.length) parts.push("categories " + b.categories.join(", "));
        if (b.tags.length) parts.push("tags " + b.tags.join(", "));
        if (b.other_args.length) parts.push(b.other_args.join(" "));
        parts.push(b.retention ? "then the lifecycle" : "no retention");
        return "backup: " + parts.join("; ");
      }
      if (j.invalid) return j.action + ": " + j.invalid;
      return j.action + (j.command ? ": " + j.command : "");
    }

    async function load() {
      try {
        listing = await api("GET", "/api/schedules");
        tbody.textContent = "";
        note.className = "";
        note.textContent = listing.schedules.length + " job(s); times in the server's time zone";
        for (const j of listing.schedules) tbody.append(...rows(j));
        if (act && !formBox.firstChild) formBox.append(form(null));
      } catch (err) { note.textContent = err.message; note.className = "error"; }
    }

    function rows(j) {
      const name = j.tenant + "/" + j.name;
      const next = j.schedule_error ? "invalid schedule"
        : !j.runs_here && j.next_run ? when(j.next_run) + " (gateway)"
        : j.next_run ? when(j.next_run) + (j.due ? " (due now)" : "") : j.paused ? "paused" : "—";
      const last = j.last_run
        ? when(j.last_run.started_at) + (j.last_run.duration_seconds !== null ? " (" + duration(j.last_run.duration_seconds) + ")" : "")
        : "never";
      const status = (j.paused ? "paused, " : "") + "last: " + j.status;
      const history = el("tr", { class: "history", hidden: true, "data-history": j.id }, el("td", { colspan: 7 }));
      const buttons = el("div", { class: "actions" });
      const histBtn = el("button", { type: "button", "aria-expanded": "false", "aria-controls": "history-" + j.id,
        onclick: () => toggleHistory(j, history, histBtn) }, "History");
      history.firstChild.id = "history-" + j.id;
      buttons.append(histBtn);
      if (act) {
        buttons.append(
          el("button", { type: "button", onclick: () => { formBox.textContent = ""; formBox.append(form(j)); formBox.querySelector("input:not([disabled]), select:not([disabled])").focus(); } }, "Edit"),
          el("button", { type: "button", onclick: () => post(j, j.paused ? "resume" : "pause") }, j.paused ? "Resume" : "Pause"));
        if (j.action === "backup" || j.action === "custom") {
          buttons.append(el("button", { type: "button", onclick: () => runNow(j) }, "Run now"));
        }
        buttons.append(el("button", { type: "button", class: "danger", onclick: () => removeJob(j) }, "Remove"));
      }
      const row = el("tr", { "data-id": j.id },
        el("td", {}, name), el("td", {}, el("code", {}, j.schedule)), el("td", { class: "wide" }, describeAction(j)),
        el("td", {}, next), el("td", {}, last), el("td", { class: j.status === "failed" ? "error" : "" }, status), el("td", {}, buttons));
      return [row, history];
    }

    async function toggleHistory(j, tr, btn) {
      const open = tr.hidden;
      tr.hidden = !open;
      btn.setAttribute("aria-expanded", open ? "true" : "false");
      if (!open) return;
      const cell = tr.firstChild;
      cell.textContent = "Loading the history…";
      try {
        const h = await api("GET", "/api/schedules/" + encodeURIComponent(j.id) + "/runs");
        cell.textContent = "";
        if (!h.runs.length) { cell.append(el("p", {}, "No runs recorded.")); return; }
        const body = el("tbody");
        for (const r of h.runs) {
          body.append(el("tr", {}, el("td", {}, when(r.started_at)),
            el("td", {}, r.duration_seconds === null ? "" : duration(r.duration_seconds)),
            el("td", { class: r.status === "ok" ? "ok" : r.status === "running" ? "" : "error" }, r.status),
            el("td", { class: "wide" }, r.summary)));
        }
        cell.append(el("table", { "aria-label": "Runs of " + j.tenant + "/" + j.name },
          el("caption", {}, "Runs of " + j.name + " (" + h.runs.length + " of " + h.total + ", newest first)"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Started"), el("th", { scope: "col" }, "Took"),
            el("th", { scope: "col" }, "Status"), el("th", { scope: "col", class: "wide" }, "Summary"))), body));
      } catch (err) { cell.textContent = err.message; cell.className = "error"; }
    }

    async function post(j, what) {
      try { await api("POST", "/api/schedules/" + encodeURIComponent(j.id) + "/" + what); await load(); }
      catch (err) { note.textContent = err.message; note.className = "error"; }
    }

    async function runNow(j) {
      live.textContent = "";
      try {
        const job = await api("POST", "/api/schedules/" + encodeURIComponent(j.id) + "/run");
        const panel = jobPanel(job, { label: "run " + j.tenant + "/" + j.name });
        live.append(panel.element);
        const v = await panel.done;
        if (v && v.state === "succeeded") live.append(el("p", { class: "ok" }, v.result.summary));
        await load();
      } catch (err) { live.append(el("p", { class: "error", role: "alert" }, err.message)); }
    }

    async function removeJob(j) {
      if (!window.confirm("Remove the job " + j.tenant + "/" + j.name + " and its run history? This cannot be undone.")) return;
      try {
        const r = await api("DELETE", "/api/schedules/" + encodeURIComponent(j.id));
        formBox.textContent = "";
        await load();
        note.textContent = "Removed " + j.tenant + "/" + j.name + " and " + r.runs_removed + " recorded run(s).";
      } catch (err) { note.textContent = err.message; note.className = "error"; }
    }

    // The add form (job null) or the edit form of a job.
    function form(job) {
      const editing = !!job;
      const id = (k) => "sched-" + k;
      const errors = {};
      const field = (key, label, input, help) => {
        errors[key] = el("p", { id: id(key) + "-error", class: "error", role: "alert" });
        input.setAttribute("aria-describedby", [help ? id(key) + "-help" : null, id(key) + "-error"].filter(Boolean).join(" "));
        return el("div", { class: "field" }, el("label", { for: input.id }, label), input,
          help ? el("p", { id: id(key) + "-help", class: "muted" }, help) : null, errors[key]);
      };
      const name = el("input", { id: id("name"), name: "name", required: true, value: job ? job.name : "", disabled: editing, autocomplete: "off" });
      const tenantSel = el("select", { id: id("tenant"), name: "tenant", disabled: editing });
      for (const t of listing.tenants) tenantSel.append(el("option", { value: t, selected: job && job.tenant === t }, t));
      const expr = el("input", { id: id("schedule"), name: "schedule", required: true, value: job ? job.schedule : "0 3 * * *",
        autocomplete: "off", spellcheck: "false" });
      const times = el("ol", { id: id("times"), class: "times", "aria-live": "polite" });
      const actionSel = el("select", { id: id("action"), name: "action", disabled: editing });
      actionSel.append(el("option", { value: "backup", selected: !job || job.action === "backup" }, "Backup (then the lifecycle)"));
      if (listing.custom_commands || (job && job.action === "custom")) actionSel.append(el("option", { value: "custom", selected: job && job.action === "custom" }, "Shell command"));
      if (job && job.action !== "backup" && job.action !== "custom") actionSel.append(el("option", { value: job.action, selected: true }, job.action + " (run by the gateway)"));
      const command = el("textarea", { id: id("command"), name: "command", rows: 2, disabled: !listing.custom_commands }, job && job.command ? job.command : "");
      const b = (job && job.backup) || { tenant: null, categories: [], tags: [], retention: true };
      const btenant = el("select", { id: id("backup-tenant"), name: "backup-tenant" });
      if (listing.scope === "gateway") btenant.append(el("option", { value: "" }, "the whole gateway"));
      for (const t of listing.tenants) btenant.append(el("option", { value: t, selected: b.tenant === t }, "tenant " + t));
      const cats = el("fieldset", { id: id("backup-categories") }, el("legend", {}, "Categories (none checked: all)"));
      for (const c of listing.categories) {
        const cb = el("input", { type: "checkbox", id: id("cat-" + c), value: c, checked: b.categories.includes(c) });
        cats.append(el("label", { for: cb.id, class: "check" }, cb, " " + c));
      }
      errors["backup.categories"] = el("p", { class: "error", role: "alert" });
      const tags = el("input", { id: id("backup-tags"), name: "tags", value: b.tags.join(", "), autocomplete: "off" });
      const retention = el("input", { type: "checkbox", id: id("retention"), checked: b.retention });
      const enabled = el("input", { type: "checkbox", id: id("enabled"), checked: job ? job.enabled : true });
      const general = el("p", { class: "error", role: "alert" });
      const done = el("p", { role: "status" });
      const customBox = el("div", {}, field("command", "Command (run with sh -c; {date} and {time} are filled in at each run)", command,
        listing.custom_commands ? null : "Only an owner of the default tenant sets a shell command."));
      const backupBox = el("div", {},
        field("backup.tenant", "What to back up", btenant),
        cats, errors["backup.categories"],
        field("backup.tags", "Tags (comma-separated)", tags),
        el("label", { for: retention.id, class: "check" }, retention, " Apply the retention lifecycle to this job's snapshots after each run"));
      function showAction() {
        const a = actionSel.value;
        customBox.hidden = a !== "custom" && !(job && job.action !== "backup" && job.action !== "custom");
        backupBox.hidden = a !== "backup";
      }
      actionSel.addEventListener("change", showAction);
      let timer = null, seq = 0;
      async function preview() {
        const mine = ++seq;
        errors.schedule.textContent = "";
        try {
          const p = await api("POST", "/api/schedules/preview", { expression: expr.value });
          if (mine !== seq) return;
          times.textContent = "";
          for (const t of p.times) times.append(el("li", {}, when(t)));
          expr.setAttribute("aria-invalid", "false");
        } catch (err) {
          if (mine !== seq) return;
          times.textContent = "";
          expr.setAttribute("aria-invalid", "true");
          errors.schedule.textContent = err.message;
        }
      }
      expr.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(preview, 250); });
      const title = editing ? "Edit " + job.tenant + "/" + job.name : "Add a schedule";
      const f = el("form", { id: "schedule-form", "aria-labelledby": "schedule-form-title", novalidate: true },
        el("h2", { id: "schedule-form-title" }, title),
        field("name", "Name", name),
        listing.scope === "gateway" ? field("tenant", "Tenant (owner of the job)", tenantSel) : null,
        field("action", "Action", actionSel),
        field("schedule", "Cron expression (minute hour day-of-month month day-of-week)", expr,
          "Next five times, in the server's time zone:"),
        times, customBox, backupBox,
        el("label", { for: enabled.id, class: "check" }, enabled, " Enabled (unchecked: paused)"),
        el("div", { class: "buttons" }, el("button", { type: "submit" }, editing ? "Save changes" : "Add"),
          editing ? el("button", { type: "button", onclick: () => { formBox.textContent = ""; formBox.append(form(null)); } }, "Cancel") : null),
        general, done);
      f.addEventListener("submit", async (e) => {
        e.preventDefault();
        for (const k of Object.keys(errors)) errors[k].textContent = "";
        general.textContent = ""; done.textContent = "";
        const backup = {
          tenant: btenant.value || null,
          categories: [...cats.querySelectorAll("input:checked")].map((c) => c.value),
          tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
          retention: retention.checked,
        };
        let req, body;
        if (editing) {
          body = { schedule: expr.value, enabled: enabled.checked };
          if (job.action === "backup") body.backup = backup;
          else if (listing.custom_commands && command.value !== (job.command || "")) body.command = command.value;
          req = api("PUT", "/api/schedules/" + encodeURIComponent(job.id), body);
        } else {
          body = { name: name.value, schedule: expr.value, action: actionSel.value, enabled: enabled.checked };
          if (listing.scope === "gateway") body.tenant = tenantSel.value;
          if (actionSel.value === "custom") body.command = command.value; else body.backup = backup;
          req = api("POST", "/api/schedules", body);
        }
        try {
          const saved = await req;
          done.textContent = (editing ? "Saved " : "Added ") + saved.tenant + "/" + saved.name
            + (saved.next_run ? "; next run " + when(saved.next_run) : "") + (saved.warning ? ". Warning: " + saved.warning : "");
          await load();
          if (!editing) { name.value = ""; }
        } catch (err) {
          const target = err.data && err.data.field && errors[err.data.field];
          (target || general).textContent = err.message;
          const input = target && f.querySelector("#" + id(err.data.field.replace(".", "-")));
          if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
        }
      });
      showAction();
      preview();
      return f;
    }

    await load();
  },
});
