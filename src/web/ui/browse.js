"use strict";
// Browse: a snapshot's backup/ tree as an export lays it out, one folder at a time; view a text
// file, download a file, download a folder as zip. Sophon.browse(id) opens it on a snapshot.
(() => {
  const want = { id: null, path: "" };
  const enc = encodeURIComponent;
  const url = (id, what, path, extra) => "/api/snapshots/" + enc(id) + "/" + what + "?path=" + enc(path) + (extra || "");

  Sophon.browse = (snapshotId, path) => {
    want.id = snapshotId; want.path = path || "";
    Sophon.select("browse");
  };

  Sophon.section("browse", {
    title: "Browse",
    access: "read",
    async render(root) {
      const { el, api, size } = Sophon;
      root.textContent = "";
      const pick = el("select", { id: "browse-snapshot" });
      const pickErr = el("p", { id: "browse-snapshot-error", class: "error", role: "alert" });
      const crumbs = el("nav", { id: "browse-crumbs", "aria-label": "Folder path" });
      const note = el("p", { id: "browse-note", role: "status", class: "muted" });
      const zip = el("a", { id: "browse-zip", hidden: true }, "Download this folder as zip");
      const tbody = el("tbody");
      const table = el("table", { id: "browse-table", hidden: true },
        el("caption", { class: "muted" }, "Folders first, then files"),
        el("thead", {}, el("tr", {},
          el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Size"),
          el("th", { scope: "col", class: "wide" }, "Modified"), el("th", { scope: "col" }, "Actions"))),
        tbody);
      const viewTitle = el("h3", { id: "browse-view-title", hidden: true });
      const viewErr = el("p", { id: "browse-view-error", class: "error", role: "alert" });
      const view = el("pre", { id: "browse-view", hidden: true, tabindex: 0, "aria-labelledby": "browse-view-title" });
      root.append(el("h2", {}, "Browse a snapshot"),
        el("label", { for: "browse-snapshot" }, "Snapshot"), pick, pickErr,
        crumbs, note, zip, table, viewTitle, viewErr, view);

      let snaps = [];
      try {
        snaps = (await api("GET", "/api/snapshots")).snapshots.slice().reverse();
      } catch (e) { pickErr.textContent = e.message; return; }
      if (!snaps.length) { note.textContent = "No snapshot to browse yet."; pick.disabled = true; return; }
      for (const s of snaps) pick.append(el("option", { value: s.id }, s.time + " · " + s.short_id + " · " + s.scope));
      if (!want.id || !snaps.some((s) => s.id === want.id)) { want.id = snaps[0].id; want.path = ""; }
      pick.value = want.id;
      pick.addEventListener("change", () => { want.id = pick.value; want.path = ""; open(""); });

      function closeView() { view.hidden = true; viewTitle.hidden = true; view.textContent = ""; viewErr.textContent = ""; }

      async function viewFile(path) {
        closeView();
        viewTitle.textContent = path; viewTitle.hidden = false;
        try {
          const res = await fetch(url(want.id, "file", path), { credentials: "same-origin" });
          const text = await res.text();
          if (!res.ok) {
            let msg = text;
            try { msg = JSON.parse(text).error; } catch (_) { /* plain text */ }
            viewErr.textContent = msg;
            if (res.status === 401) Sophon.signedOut("Your session expired: sign in again.");
            return;
          }
          view.textContent = text; view.hidden = false; view.focus();
        } catch (e) { viewErr.textContent = e.message; }
      }

      function crumb(label, path, current) {
        return current
          ? el("span", { "aria-current": "location" }, label)
          : el("button", { type: "button", onclick: () => open(path) }, label);
      }

      async function open(path) {
        want.path = path;
        closeView();
        note.textContent = "Loading…"; note.className = "muted";
        let body;
        try { body = await api("GET", url(want.id, "tree", path)); }
        catch (e) { note.textContent = e.message; note.className = "error"; table.hidden = true; zip.hidden = true; return; }
        const parts = body.path ? body.path.split("/") : [];
        crumbs.textContent = "";
        crumbs.append(crumb(body.root, "", parts.length === 0));
        parts.forEach((p, i) => {
          crumbs.append(el("span", { "aria-hidden": "true" }, "/"), crumb(p, parts.slice(0, i + 1).join("/"), i === parts.length - 1));
        });
        note.textContent = body.entries.length + " entr" + (body.entries.length === 1 ? "y" : "ies") + " in " + body.root + "/" + body.path
          + " (snapshot " + body.short_id + ", " + body.layout + " layout)";
        zip.href = url(want.id, "zip", body.path); zip.hidden = false;
        zip.setAttribute("download", "");
        tbody.textContent = "";
        const join = (name) => (body.path ? body.path + "/" : "") + name;
        for (const e of body.entries) {
          const p = join(e.name);
          const actions = el("td", {});
          let name;
          if (e.kind === "dir") {
            name = el("button", { type: "button", onclick: () => open(p), "aria-label": "Open folder " + e.name }, e.name + "/");
            actions.append(el("a", { href: url(want.id, "zip", p), download: "", "aria-label": "Download folder " + e.name + " as zip" }, "Zip"));
          } else if (e.kind === "file") {
            name = el("span", {}, e.name);
            actions.append(
              el("button", { type: "button", onclick: () => viewFile(p), "aria-label": "View " + e.name }, "View"), " ",
              el("a", { href: url(want.id, "file", p, "&download=1"), download: e.name, "aria-label": "Download " + e.name }, "Download"));
          } else {
            name = el("span", {}, e.name + " → " + (e.target || ""));
          }
          tbody.append(el("tr", { "data-kind": e.kind, "data-name": e.name },
            el("td", {}, name), el("td", {}, e.kind === "file" ? size(e.size) : ""),
            el("td", { class: "wide" }, e.mtime || ""), actions));
        }
        table.hidden = false;
      }
      open(want.path);
    },
  });
})();
