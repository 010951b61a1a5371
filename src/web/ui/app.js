"use strict";
// The page's shared helpers. Each section lives in its own script and registers itself with
// Sophon.section(); start.js signs in and builds the tabs from what was registered.
const Sophon = (() => {
  const sections = [];
  const state = { session: null };
  const $ = (id) => document.getElementById(id);
  function size(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    n = Number(n) || 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  // el("button", {type: "button", onclick: f}, "text", child...)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  // A JSON call to the API; throws an Error carrying the server's message and status.
  async function api(method, path, body) {
    const headers = {};
    if (state.session) headers["X-CSRF-Token"] = state.session.csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = {};
    try { data = text ? JSON.parse(text) : {}; } catch (_) { data = { error: text || ("HTTP " + res.status) }; }
    if (!res.ok) {
      const err = new Error(data.error || ("HTTP " + res.status));
      err.status = res.status; err.data = data;
      if (res.status === 401 && path !== "/api/session") Sophon.signedOut("Your session expired: sign in again.");
      throw err;
    }
    return data;
  }
  // Server-sent events of a background job; onEvent gets each parsed event, the promise ends with the last.
  function follow(jobId, onEvent) {
    return new Promise((resolve) => {
      const es = new EventSource("/api/jobs/" + encodeURIComponent(jobId) + "/events");
      es.onmessage = (m) => {
        const ev = JSON.parse(m.data);
        onEvent(ev);
        if (ev.state && ev.state !== "running") { es.close(); resolve(ev); }
      };
      es.onerror = () => { es.close(); resolve(null); };
    });
  }
  // An RFC 3339 time as "2026-12-06 19:57:33" in the browser's zone.
  function time(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function duration(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    return s >= 3600 ? Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min"
      : s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }
  // A live view of a background job: step, progress bar, files, bytes, rate, ETA, a cancel button,
  // then the outcome. Returns the element and a promise of the job's last view.
  function jobPanel(job, opts) {
    opts = opts || {};
    const bar = el("progress", { max: 1, value: 0, "aria-label": (opts.label || job.kind) + " progress" });
    const step = el("p", { class: "job-step" });
    const counts = el("p", { class: "job-counts muted", "aria-live": "polite" });
    const outcome = el("div", { class: "job-outcome", role: "status" });
    const cancel = el("button", { type: "button", class: "job-cancel", onclick: async () => {
      cancel.disabled = true;
      try { await api("POST", "/api/jobs/" + job.id + "/cancel"); } catch (e) { outcome.textContent = e.message; }
    } }, "Cancel");
    if (!can("act")) cancel.hidden = true;
    const box = el("div", { class: "job", "data-job": job.id, "data-state": job.state }, step, bar, counts, cancel, outcome);
    function paint(v) {
      box.dataset.state = v.state;
      step.textContent = (opts.label || v.kind) + ": " + v.step;
      if (v.bytes_total > 0) { bar.max = v.bytes_total; bar.value = Math.min(v.bytes_done, v.bytes_total); }
      else bar.removeAttribute("value");
      const files = v.files_total > 0 ? v.files_done + " of " + v.files_total + " files" : v.files_done + " files";
      const bytes = v.bytes_total > 0 ? size(v.bytes_done) + " of " + size(v.bytes_total) : size(v.bytes_done);
      counts.hidden = !v.files_done && !v.bytes_done && !v.files_total;
      counts.textContent = files + " · " + bytes + " · " + size(v.bytes_per_second) + "/s"
        + (v.eta_seconds ? " · about " + duration(v.eta_seconds) + " left" : "")
        + " · " + duration(v.elapsed_seconds) + " elapsed";
      if (v.state !== "running") {
        cancel.hidden = true;
        if (v.state === "succeeded") { bar.max = 1; bar.value = 1; }
        outcome.className = "job-outcome " + (v.state === "succeeded" ? "ok" : "error");
        outcome.textContent = v.state === "succeeded" ? "Done." : v.state === "cancelled" ? "Cancelled: nothing was kept." : "Failed: " + v.error;
      }
    }
    paint(job);
    const done = job.state === "running" ? follow(job.id, paint).then((v) => v || api("GET", "/api/jobs/" + job.id)) : Promise.resolve(job);
    return { element: box, done: done.then((v) => { paint(v); return v; }) };
  }
  function section(name, spec) { sections.push(Object.assign({ name }, spec)); }
  function can(access) { return access !== "act" || (state.session && state.session.access === "act"); }
  return { $, size, el, api, follow, section, sections, state, can, duration, jobPanel, time };
})();
