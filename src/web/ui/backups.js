"use strict";
// Backups: the repository's snapshots within the user's scope.
Sophon.section("backups", {
  title: "Backups",
  access: "read",
  async render(root) {
    const { el, api, size } = Sophon;
    const note = el("p", { role: "status" }, "Loading…");
    const tbody = el("tbody");
    // The history chart (chart.js), its caption the text alternative.
    const caption = el("figcaption", { id: "history-caption" }, "Loading the history…");
    const history = el("figure", { id: "history", "aria-labelledby": "history-caption" }, caption);
    api("GET", "/api/stats").then((st) => { caption.textContent = Sophon.chart(history, st.points); })
      .catch((err) => { caption.textContent = err.message; caption.className = "error"; });
    root.append(el("h2", {}, "Snapshots"), note, history,
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "Time"), el("th", { scope: "col" }, "ID"), el("th", { scope: "col" }, "Scope"),
        el("th", { scope: "col", class: "wide" }, "Tags"), el("th", { scope: "col" }, "Size"),
        el("th", { scope: "col" }, "New data"), el("th", { scope: "col", class: "wide" }, "Made on"),
        el("th", { scope: "col" }, "Browse"),
        Sophon.can("act") ? el("th", { scope: "col" }, "Download") : null)), tbody)));
    root.append(exportsList());
    if (Sophon.can("act")) root.append(verifyForm());
    try {
      const body = await api("GET", "/api/snapshots");
      note.textContent = body.note || body.snapshots.length + " snapshot(s)";
      for (const s of body.snapshots.slice().reverse()) {
        tbody.append(el("tr", { "data-id": s.id },
          el("td", {}, Sophon.time(s.time)), el("td", {}, s.short_id), el("td", {}, s.scope),
          el("td", { class: "wide" }, s.tags.join(", ")), el("td", {}, size((s.summary && s.summary.bytes) || 0)),
          el("td", {}, size((s.summary && s.summary.bytes_added) || 0)), el("td", { class: "wide" }, s.hostname || ""),
          el("td", {}, el("button", { type: "button", class: "browse", onclick: () => Sophon.browse(s.id),
            "aria-label": "Browse snapshot " + s.short_id }, "Browse")),
          Sophon.can("act") ? downloadCell(s) : null));
      }
    } catch (err) { note.textContent = err.message; note.className = "error"; }
  },
});

// The archives at the destination the config names for scheduled backups (local folder or store).
function exportsList() {
  const { el, api, size, time } = Sophon;
  const note = el("p", { role: "status" }, "Loading the exports…");
  const tbody = el("tbody");
  const box = el("section", { id: "exports", "aria-labelledby": "exports-title" },
    el("h2", { id: "exports-title" }, "Exports at the configured destination"), note,
    el("div", { class: "scroll" }, el("table", { hidden: true }, el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Created"), el("th", { scope: "col" }, "Archive"), el("th", { scope: "col" }, "Scope"),
      el("th", { scope: "col" }, "Size"), el("th", { scope: "col" }, "Sealed"), el("th", { scope: "col", class: "wide" }, "Incremental of"))), tbody)));
  api("GET", "/api/exports").then((b) => {
    note.textContent = b.note || (b.exports.length + " archive(s) in " + b.destination);
    for (const x of b.exports) {
      tbody.append(el("tr", {}, el("td", {}, x.created ? time(x.created) : ""), el("td", {}, x.name), el("td", {}, x.scope),
        el("td", {}, size(x.size)), el("td", {}, x.sealed ? "yes" : "no"), el("td", { class: "wide" }, x.incremental_of || "")));
    }
    for (const u of b.unreadable || []) box.append(el("p", { class: "error" }, "cannot read: " + u));
    box.querySelector("table").hidden = !b.exports.length;
  }).catch((err) => { note.textContent = err.message; note.className = "error"; });
  return box;
}

// Verify the repository, optionally reading a share of its data; the result stays on the page.
function verifyForm() {
  const { el, api, jobPanel } = Sophon;
  const read = el("input", { id: "verify-read", type: "checkbox" });
  const pct = el("input", { id: "verify-percent", type: "number", min: 1, max: 100, value: 100, "aria-describedby": "verify-help" });
  const out = el("div", { id: "verify-out" });
  const err = el("p", { class: "error", role: "alert" });
  const form = el("form", { id: "verify-form", "aria-labelledby": "verify-title" },
    el("h2", { id: "verify-title" }, "Verify the repository"),
    el("label", {}, read, " Also read the stored data (--read-data)"),
    el("label", { for: "verify-percent" }, "Share of the data to read (%)"), pct,
    el("p", { id: "verify-help", class: "muted" }, "Without reading data, verify checks every snapshot's structure against the index."),
    el("button", { type: "submit" }, "Verify"), err, out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = ""; out.textContent = "";
    try {
      const job = await api("POST", "/api/verify", read.checked ? { read_data_percent: Number(pct.value) } : {});
      const panel = jobPanel(job, { label: "verify" });
      out.append(panel.element);
      const v = await panel.done;
      if (v.state === "succeeded") {
        const r = v.result;
        out.append(el("p", { class: r.clean ? "ok verify-result" : "error verify-result" },
          (r.clean ? "No damage found: " : "DAMAGE FOUND: ") + r.snapshots + " snapshot(s), " + r.trees + " tree(s), " + r.packs + " pack(s)"
          + (r.packs_read ? "; read " + r.packs_read + " pack(s), " + Sophon.size(r.bytes_read) : "")));
        for (const f of r.findings) out.append(el("p", { class: "error" }, "damaged: " + f.object + ": " + f.problem));
      }
    } catch (ex) { err.textContent = ex.message; }
  });
  return form;
}

// A snapshot as a zip or tar.gz: a single-use link from /api/downloads, followed at once.
function downloadCell(s) {
  const { el, api } = Sophon;
  const format = el("select", { "aria-label": "Format for " + s.short_id }, el("option", { value: "zip" }, "zip"), el("option", { value: "tar.gz" }, "tar.gz"));
  const note = el("span", { class: "error", role: "alert" });
  const button = el("button", { type: "button", onclick: async () => {
    note.textContent = "";
    try {
      const d = await api("POST", "/api/downloads", { snapshot: s.id, format: format.value });
      const a = el("a", { href: d.url, download: d.name, hidden: true });
      document.body.append(a); a.click(); a.remove();
    } catch (e) { note.textContent = e.message; }
  } }, "Download");
  return el("td", { class: "download" }, format, " ", button, note);
}
