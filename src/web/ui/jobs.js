"use strict";
// Jobs: what runs in the background and what ran lately. Jobs go on when the browser is closed;
// this tab (and the banner at sign-in) picks their progress up again.
Sophon.section("jobs", {
  title: "Jobs",
  access: "read",
  async render(root) {
    const { el, api, jobPanel, time, duration } = Sophon;
    const running = el("div", { id: "jobs-running", "aria-live": "polite" });
    const note = el("p", { role: "status" }, "Loading…");
    const tbody = el("tbody");
    root.append(el("h2", {}, "Running"), running, el("h2", {}, "Recent"), note,
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "Started"), el("th", { scope: "col" }, "Kind"), el("th", { scope: "col" }, "By"),
        el("th", { scope: "col" }, "Outcome"), el("th", { scope: "col" }, "Took"))), tbody)));
    try {
      const { jobs } = await api("GET", "/api/jobs");
      const live = jobs.filter((j) => j.state === "running");
      if (!live.length) running.append(el("p", { class: "muted" }, "Nothing is running."));
      for (const j of live) running.append(jobPanel(j, { label: j.kind }).element);
      const ended = jobs.filter((j) => j.state !== "running");
      note.textContent = ended.length ? ended.length + " finished job(s) since the server started" : "No finished jobs since the server started.";
      for (const j of ended) {
        tbody.append(el("tr", { "data-job": j.id },
          el("td", {}, time(j.started)), el("td", {}, j.kind), el("td", {}, j.user),
          el("td", { class: j.state === "succeeded" ? "ok" : "error" }, j.state + (j.error ? ": " + j.error : "")),
          el("td", {}, duration(j.elapsed_seconds))));
      }
    } catch (err) { note.textContent = err.message; note.className = "error"; }
  },
});
// At sign-in: say when jobs are running, with a way to them.
Sophon.afterSignIn = async () => {
  try {
    const { jobs } = await Sophon.api("GET", "/api/jobs");
    const n = jobs.filter((j) => j.state === "running").length;
    const banner = Sophon.$("jobs-banner");
    banner.textContent = "";
    if (n) {
      banner.append(n + " job(s) running. ", Sophon.el("button", { type: "button", onclick: () => Sophon.select("jobs") }, "Show jobs"));
    }
    banner.hidden = !n;
  } catch (_) { /* the sections show their own errors */ }
};
