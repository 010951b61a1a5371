"use strict";
// Restore: pick a snapshot or upload an archive, choose how, preview the dry run ("Would restore:"
// and the conflicts), then confirm; the restore runs as a background job and ends with its report
// and what needs action.
Sophon.section("restore", {
  title: "Restore",
  access: "act",
  async render(root, session) {
    const { el, api, size, jobPanel } = Sophon;
    root.textContent = "";
    const CATEGORIES = ["users", "agents", "workflows", "memory", "documents", "cron", "webhooks", "connections",
      "channels", "skills", "mcp", "nodes", "discussions", "insights", "tasks", "approvals", "audit", "license", "config"];
    const tenantScoped = session.scope !== "gateway";
    const err = (id) => el("p", { id, class: "error", role: "alert" });

    // Source.
    const fromSnap = el("input", { id: "restore-from-snapshot", type: "radio", name: "restore-source", value: "snapshot", checked: true });
    const fromFile = el("input", { id: "restore-from-upload", type: "radio", name: "restore-source", value: "upload" });
    const snap = el("select", { id: "restore-snapshot", "aria-describedby": "restore-source-error" });
    const file = el("input", { id: "restore-file", type: "file", accept: ".zip,.tar.gz,.tgz,application/zip,application/gzip",
      "aria-describedby": "restore-source-error", disabled: true });
    const uploadNote = el("p", { id: "restore-upload-note", class: "muted", role: "status" });
    const sourceErr = err("restore-source-error");
    const source = el("fieldset", { class: "stack" }, el("legend", {}, "Restore from"),
      el("label", {}, fromSnap, " A snapshot of the repository"),
      el("div", { class: "indent" }, el("label", { for: "restore-snapshot" }, "Snapshot "), snap),
      el("label", {}, fromFile, " An exported archive (zip or tar.gz, sealed or not)"),
      el("div", { class: "indent" }, el("label", { for: "restore-file" }, "Archive file "), file), uploadNote, sourceErr);

    // How.
    const additive = el("input", { id: "restore-mode-additive", type: "radio", name: "restore-mode", value: "additive", checked: true });
    const replace = el("input", { id: "restore-mode-replace", type: "radio", name: "restore-mode", value: "replace" });
    const mode = el("fieldset", { class: "stack", "aria-describedby": "restore-mode-help" }, el("legend", {}, "Mode"),
      el("label", {}, additive, " Additive: keep what is present, quarantine what differs"),
      el("label", {}, replace, " Replace: delete the present data of the categories restored first"),
      el("p", { id: "restore-mode-help", class: "muted" }, "Replace asks you to type a confirmation before it runs."));
    const boxes = CATEGORIES.map((c) => el("input", { id: "restore-only-" + c, type: "checkbox", value: c }));
    const onlyErr = err("restore-only-error");
    const only = el("fieldset", { class: "choices", "aria-describedby": "restore-only-help restore-only-error" }, el("legend", {}, "Only these categories"),
      el("p", { id: "restore-only-help", class: "muted" }, "None checked: every category the backup holds"
        + (tenantScoped ? " that a tenant's admin may restore." : ".")),
      ...boxes.map((b) => el("label", {}, b, " " + b.value)), onlyErr);
    const into = el("input", { id: "restore-into", type: "text", autocomplete: "off", "aria-describedby": "restore-into-help restore-into-error" });
    if (tenantScoped) { into.value = session.scope; into.readOnly = true; }
    const intoErr = err("restore-into-error");
    const pass = el("input", { id: "restore-passphrase", type: "password", autocomplete: "off", "aria-describedby": "restore-passphrase-help restore-passphrase-error" });
    const passErr = err("restore-passphrase-error");
    const preview = el("button", { id: "restore-preview", type: "submit" }, "Preview");
    const formErr = err("restore-error");
    const form = el("form", { id: "restore-form", "aria-labelledby": "restore-title", novalidate: true },
      el("h2", { id: "restore-title" }, "Restore a backup into this gateway"),
      source, mode, only,
      el("label", { for: "restore-into" }, "Into tenant (optional)"), into,
      el("p", { id: "restore-into-help", class: "muted" }, tenantScoped
        ? "A tenant's admin restores into its own tenant." : "Re-home every restored record into this tenant."),
      intoErr,
      el("label", { for: "restore-passphrase" }, "Backup passphrase (optional)"), pass,
      el("p", { id: "restore-passphrase-help", class: "muted" },
        "Opens a sealed archive and the backup's 2FA secrets; without it the server's configured passphrase is used. Never stored."),
      passErr, preview, formErr);

    // Preview and result.
    const planBox = el("section", { id: "restore-plan", "aria-labelledby": "restore-plan-title", hidden: true });
    const out = el("div", { id: "restore-out" });
    root.append(form, planBox, out);

    const setSource = () => { snap.disabled = !fromSnap.checked; file.disabled = !fromFile.checked; };
    fromSnap.addEventListener("change", setSource); fromFile.addEventListener("change", setSource);

    try {
      const body = await api("GET", "/api/snapshots");
      const gw = body.snapshots.filter((s) => s.scope.startsWith("gateway:")).reverse();
      for (const s of gw) snap.append(el("option", { value: s.id }, s.time + " · " + s.short_id + " · " + s.scope));
      if (!gw.length) snap.append(el("option", { value: "" }, "No gateway snapshot yet"));
    } catch (e) { sourceErr.textContent = e.message; }

    let uploaded = null; // { id, name, size } of the file last uploaded
    async function uploadFile() {
      const f = file.files[0];
      if (!f) throw Object.assign(new Error("choose an archive file"), { field: "source" });
      if (uploaded && uploaded.name === f.name && uploaded.size === f.size && uploaded.modified === f.lastModified) return uploaded.id;
      uploadNote.textContent = "Uploading " + f.name + " (" + size(f.size) + ")…";
      const res = await fetch("/api/uploads?name=" + encodeURIComponent(f.name), {
        method: "POST", credentials: "same-origin", body: f,
        headers: { "X-CSRF-Token": Sophon.state.session.csrf, "Content-Type": f.type || "application/octet-stream" },
      });
      let data = {};
      try { data = await res.json(); } catch (_) { data = { error: "HTTP " + res.status }; }
      if (!res.ok) { uploadNote.textContent = ""; throw Object.assign(new Error(data.error || "HTTP " + res.status), { field: "source" }); }
      uploadNote.textContent = "Uploaded " + data.name + " (" + size(data.bytes) + ")" + (data.checked ? ", checked." : ": " + data.note + ".");
      uploaded = { id: data.id, name: f.name, size: f.size, modified: f.lastModified };
      return data.id;
    }

    // Which field an error from the server is about.
    function fieldOf(e) {
      const m = e.message || "";
      if (e.field === "source" || e.status === 404 || /snapshot|upload|archive/i.test(m) && !/passphrase/i.test(m)) return sourceErr;
      if (/^only|category|belongs to the whole gateway|users from an uploaded/i.test(m)) return onlyErr;
      if (/into_tenant|into [a-z0-9_-]+ only|tenant/i.test(m)) return intoErr;
      if (/passphrase|sealed/i.test(m)) return passErr;
      return formErr;
    }
    const clearErrors = () => { for (const p of [sourceErr, onlyErr, intoErr, passErr, formErr]) p.textContent = ""; };

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(); planBox.hidden = true; planBox.textContent = ""; out.textContent = "";
      preview.disabled = true;
      try {
        if (fromSnap.checked && !snap.value) throw Object.assign(new Error("choose a snapshot"), { field: "source" });
        const req = {
          source: fromSnap.checked ? { snapshot: snap.value } : { upload: await uploadFile() },
          mode: replace.checked ? "replace" : "additive",
          only: boxes.filter((b) => b.checked).map((b) => b.value),
        };
        if (into.value.trim()) req.into_tenant = into.value.trim();
        if (pass.value) req.passphrase = pass.value;
        formErr.textContent = "Previewing (a dry run on a copy of the database)…";
        const plan = await api("POST", "/api/restores/plan", req);
        formErr.textContent = "";
        showPlan(plan);
      } catch (e) { formErr.textContent = ""; fieldOf(e).textContent = e.message; }
      finally { preview.disabled = false; }
    });

    function showPlan(plan) {
      const r = plan.report;
      planBox.append(el("h2", { id: "restore-plan-title" }, "Preview"),
        el("pre", { id: "restore-would", tabindex: 0 }, r.text.join("\n")));
      if (r.conflicts.length) {
        const total = r.categories.reduce((n, c) => n + c.quarantined, 0);
        planBox.append(el("h3", {}, "Conflicts (" + total + ": the present one is kept, the backup's quarantined)"),
          el("ul", { id: "restore-conflicts" }, ...r.conflicts.map((c) => el("li", {}, c))));
        if (total > r.conflicts.length) planBox.append(el("p", { class: "muted" }, "The first " + r.conflicts.length + " are listed."));
      } else {
        planBox.append(el("p", { id: "restore-conflicts", class: "muted" }, "No conflicts."));
      }
      const go = el("button", { id: "restore-go", type: "button" }, plan.confirm_with ? "Replace and restore" : "Restore");
      const goErr = err("restore-go-error");
      let confirm = null;
      if (plan.confirm_with) {
        confirm = el("input", { id: "restore-confirm", type: "text", autocomplete: "off", "aria-describedby": "restore-go-error" });
        planBox.append(el("label", { for: "restore-confirm" },
          "Replace deletes the present data of the categories restored first. Type " + plan.confirm_with + " to confirm"), confirm);
      }
      planBox.append(go, goErr);
      planBox.hidden = false;
      planBox.querySelector("pre").focus();
      go.addEventListener("click", async () => {
        goErr.textContent = "";
        if (confirm && confirm.value.trim() !== plan.confirm_with) {
          goErr.textContent = "Type " + plan.confirm_with + " exactly to confirm the replace."; confirm.focus(); return;
        }
        go.disabled = true;
        try {
          const job = await api("POST", "/api/restores", { plan: plan.plan, confirm: confirm ? confirm.value.trim() : undefined });
          const panel = jobPanel(job, { label: "restore" });
          out.append(panel.element);
          const v = await panel.done;
          if (v.state === "succeeded") showResult(v.result.report);
          else go.disabled = false;
        } catch (e) { goErr.textContent = e.message; go.disabled = false; }
      });
    }

    // A restore still running (started before the page was reloaded or by this user elsewhere) is followed again.
    try {
      const jobs = (await api("GET", "/api/jobs")).jobs.filter((j) => j.kind === "restore" && j.state === "running");
      for (const j of jobs) {
        const panel = jobPanel(j, { label: "restore" });
        out.append(panel.element);
        panel.done.then((v) => { if (v && v.state === "succeeded") showResult(v.result.report); });
      }
    } catch (_) { /* the form still works */ }

    function showResult(r) {
      out.append(el("h2", { id: "restore-result-title" }, "Restored"),
        el("pre", { id: "restore-report", tabindex: 0, "aria-labelledby": "restore-result-title" }, r.text.join("\n")));
      if (r.needs_action.length) {
        out.append(el("h3", {}, "Needs action"), el("ul", { id: "restore-needs-action" },
          ...r.needs_action.map((n) => el("li", {}, n.what + ": " + n.ids.join(", ")))));
      } else {
        out.append(el("p", { id: "restore-needs-action", class: "ok" }, "Nothing needs action."));
      }
      uploaded = null;
    }
  },
});
