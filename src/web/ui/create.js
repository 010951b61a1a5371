"use strict";
// Settings → Backup → Create: scope, format, encryption and destination; an estimate before it
// starts; then the create job with live progress and Cancel. A download starts itself when ready.
// Every refusal is shown next to the field the server names.
Sophon.section("create", {
  title: "Create",
  access: "act",
  async render(root) {
    const { el, api, size, jobPanel } = Sophon;
    root.append(el("h2", { id: "create-title" }, "Create a backup"));
    let opts;
    try {
      opts = await api("GET", "/api/backups/options");
    } catch (e) {
      root.append(el("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    // One error line per field, announced when it changes.
    const errors = {};
    const errorFor = (field) => {
      const p = el("p", { id: "create-error-" + field.replace(/\W/g, "-"), class: "error", role: "alert" });
      errors[field] = p;
      return p;
    };
    const inputsOf = {};
    function clearErrors() {
      for (const p of Object.values(errors)) p.textContent = "";
      for (const i of Object.values(inputsOf)) i.removeAttribute("aria-invalid");
    }
    function showError(err) {
      const field = err.data && err.data.field;
      const target = errors[field] ? field : "general";
      errors[target].textContent = err.message;
      if (inputsOf[field]) { inputsOf[field].setAttribute("aria-invalid", "true"); inputsOf[field].focus(); }
    }

    // Scope: everything, or some categories; a tenant for gateway-wide users.
    const everything = el("input", { type: "radio", name: "create-scope", id: "create-everything", value: "all", checked: true });
    const some = el("input", { type: "radio", name: "create-scope", id: "create-some", value: "some" });
    const boxes = opts.categories.map((c) => el("input", { type: "checkbox", id: "create-cat-" + c.id, value: c.id }));
    const catList = el("div", { id: "create-categories", class: "checks", hidden: true },
      ...opts.categories.map((c, i) => el("label", { for: boxes[i].id }, boxes[i], " " + c.id + (c.gateway_wide ? " (whole gateway)" : ""))));
    const syncScope = () => { catList.hidden = !some.checked; };
    everything.addEventListener("change", syncScope);
    some.addEventListener("change", syncScope);
    inputsOf.categories = catList;
    const scopeBox = el("fieldset", { id: "create-scope" }, el("legend", {}, "Scope"),
      el("label", { for: "create-everything" }, everything, " Everything"),
      el("label", { for: "create-some" }, some, " Only these categories:"), catList, errorFor("categories"));
    let tenant = null;
    if (opts.scope === "gateway") {
      tenant = el("select", { id: "create-tenant", name: "tenant" }, el("option", { value: "" }, "All tenants"),
        ...opts.tenants.map((t) => el("option", { value: t.id }, t.name ? t.name + " (" + t.id + ")" : t.id)));
      inputsOf.tenant = tenant;
      scopeBox.append(el("label", { for: "create-tenant" }, "Tenant"), tenant, errorFor("tenant"));
    } else {
      scopeBox.append(el("p", { class: "muted" }, "Tenant: " + opts.scope + " (your scope)"));
    }

    // Format.
    const zip = el("input", { type: "radio", name: "create-format", id: "create-format-zip", value: "zip", checked: true });
    const tgz = el("input", { type: "radio", name: "create-format", id: "create-format-targz", value: "tar.gz" });
    const formatBox = el("fieldset", { id: "create-format" }, el("legend", {}, "Format"),
      el("label", { for: zip.id }, zip, " zip"), el("label", { for: tgz.id }, tgz, " tar.gz"), errorFor("format"));
    const format = () => (tgz.checked ? "tar.gz" : "zip");

    // Encryption: a passphrase typed twice, never kept by the page.
    const encrypt = el("input", { type: "checkbox", id: "create-encrypt" });
    const pass = el("input", { type: "password", id: "create-passphrase", autocomplete: "new-password" });
    const pass2 = el("input", { type: "password", id: "create-passphrase2", autocomplete: "new-password" });
    inputsOf.passphrase = pass; inputsOf.passphrase_confirm = pass2;
    const passBox = el("div", { id: "create-passphrases", hidden: true },
      el("label", { for: pass.id }, "Passphrase"), pass, errorFor("passphrase"),
      el("label", { for: pass2.id }, "Passphrase again"), pass2, errorFor("passphrase_confirm"),
      el("p", { class: "muted" }, "The passphrase is never stored: keep it, the archive cannot be opened without it."));
    encrypt.addEventListener("change", () => { passBox.hidden = !encrypt.checked; });
    const encryptBox = el("fieldset", {}, el("legend", {}, "Encryption"),
      el("label", { for: encrypt.id }, encrypt, " Encrypt the archive with a passphrase"), passBox);

    // Destination.
    const labels = { download: "Download to this computer", local: "A folder on the server", s3: "S3", azblob: "Azure Blob", sftp: "SFTP" };
    const kind = el("select", { id: "create-destination" }, ...opts.destinations.map((d) => el("option", { value: d }, labels[d] || d)));
    const where = el("input", { id: "create-where", type: "text", autocomplete: "off", "aria-describedby": "create-where-help" });
    const whereLabel = el("label", { for: where.id });
    const whereHelp = el("p", { id: "create-where-help", class: "muted" });
    const overwrite = el("input", { type: "checkbox", id: "create-overwrite" });
    const whereBox = el("div", { hidden: true }, whereLabel, where, whereHelp, errorFor("destination.where"),
      el("label", { for: overwrite.id }, overwrite, " Replace an archive already there"));
    inputsOf["destination.kind"] = kind;
    const syncKind = () => {
      const k = kind.value;
      whereBox.hidden = k === "download";
      const ext = format() === "zip" ? ".zip" : ".tar.gz";
      if (k === "local") {
        whereLabel.textContent = "Archive path on the server";
        where.placeholder = "/srv/backups/gateway-{date}" + ext;
        whereHelp.textContent = "An absolute path in an existing folder.";
      } else {
        whereLabel.textContent = "Archive URL";
        where.placeholder = (k === "s3" ? "s3://bucket/backups/" : k === "azblob" ? "azblob://container/backups/" : "sftp://user@host:22/backups/") + "gateway-{date}" + ext;
        whereHelp.textContent = "Credentials come from the server's environment, as for the command line. {date}, {time}, {tenant} and {snapshot} are filled in.";
      }
    };
    kind.addEventListener("change", syncKind);
    zip.addEventListener("change", syncKind); tgz.addEventListener("change", syncKind);
    const destBox = el("fieldset", {}, el("legend", {}, "Destination"),
      el("label", { for: kind.id }, "Where the archive goes"), kind, errorFor("destination.kind"), whereBox);
    // The server names destination.path or destination.url: both are the one input here.
    errors["destination.path"] = errors["destination.url"] = errors["destination.where"];
    inputsOf["destination.path"] = inputsOf["destination.url"] = where;

    const estimateBtn = el("button", { type: "button", id: "create-estimate" }, "Estimate");
    const createBtn = el("button", { type: "submit", id: "create-start" }, "Create");
    const estimateOut = el("div", { id: "create-estimate-out", "aria-live": "polite" });
    const out = el("div", { id: "create-out" });
    const form = el("form", { id: "create-form", "aria-labelledby": "create-title", novalidate: true },
      scopeBox, formatBox, encryptBox, destBox, el("div", { class: "buttons" }, estimateBtn, createBtn),
      errorFor("general"), estimateOut, out);
    errors.body = errors.general;
    root.append(form);
    syncKind();

    const scope = () => ({
      categories: some.checked ? boxes.filter((b) => b.checked).map((b) => b.value) : [],
      tenant: tenant && tenant.value ? tenant.value : undefined,
    });

    estimateBtn.addEventListener("click", async () => {
      clearErrors();
      estimateOut.textContent = "Estimating…";
      estimateBtn.disabled = true;
      try {
        const e = await api("POST", "/api/backups/estimate", scope());
        estimateOut.textContent = "";
        const prev = e.parent ? "the last snapshot of this scope (" + e.parent.short_id + ", " + e.parent.time + ")" : "no earlier snapshot of this scope";
        estimateOut.append(el("dl", { class: "estimate" },
          el("dt", {}, "Records"), el("dd", {}, String(e.records_total)),
          el("dt", {}, "Files"), el("dd", {}, e.files + " (" + size(e.bytes) + ")"),
          el("dt", {}, "Unchanged since " + prev), el("dd", {}, e.files_unchanged + " files (" + size(e.bytes_unchanged) + ")"),
          el("dt", {}, "To read"), el("dd", {}, e.files_to_read + " files (" + size(e.bytes_to_read) + ")"),
          el("dt", {}, "A new snapshot would add"), el("dd", { id: "create-estimate-new" }, size(e.bytes_new) + " before compression")),
          el("p", { class: "muted" }, e.basis));
      } catch (err) { estimateOut.textContent = ""; showError(err); }
      finally { estimateBtn.disabled = false; }
    });

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors();
      out.textContent = "";
      const body = Object.assign(scope(), { format: format(), encrypt: encrypt.checked, destination: { kind: kind.value } });
      if (encrypt.checked) { body.passphrase = pass.value; body.passphrase_confirm = pass2.value; }
      if (kind.value === "local") body.destination.path = where.value;
      else if (kind.value !== "download") body.destination.url = where.value;
      if (kind.value !== "download") body.destination.overwrite = overwrite.checked;
      createBtn.disabled = true;
      try {
        const job = await api("POST", "/api/backups", body);
        pass.value = ""; pass2.value = "";
        const panel = jobPanel(job, { label: "create" });
        out.append(panel.element);
        const v = await panel.done;
        if (v.state === "succeeded") out.append(outcome(v.result));
      } catch (err) { showError(err); }
      finally { createBtn.disabled = false; }
    });

    function outcome(r) {
      const m = r.summary || {};
      const box = el("div", { class: "create-outcome ok", role: "status" },
        el("p", {}, "Snapshot " + r.short_id + " saved: " + m.files + " files, " + size(m.bytes) + " (" + size(m.bytes_added) + " new)."));
      if (r.archive) box.append(el("p", {}, "Archive written to " + r.archive + " (" + size(r.export.bytes_out) + (r.export.sealed ? ", encrypted" : "") + ")."));
      if (r.download) {
        const a = el("a", { href: r.download.url, download: r.download.name, id: "create-download" }, "Download " + r.download.name);
        box.append(el("p", {}, a, " (the link works once, for " + Math.round(r.download.expires_seconds / 60) + " minutes)"));
        a.addEventListener("click", () => { setTimeout(() => { a.removeAttribute("href"); a.textContent = r.download.name + ": download started"; }, 0); });
        setTimeout(() => a.click(), 0);
      }
      return box;
    }
  },
});
