"use strict";
// The Backups tab's history chart: inline SVG drawn here, no library. Sophon.chart(container, points)
// draws /api/stats points (oldest first) into container and returns a one-sentence summary for the
// figure's caption. One step per snapshot along the x axis; on one byte scale: the repository's
// growth from these snapshots (stored_total, solid line), the logical size of all of them
// (logical_total, dashed line: the gap between the two is what deduplication and compression
// saved), and the data each snapshot added (bytes_stored, bars). Each snapshot's figures are in
// its point's tooltip and in the caption's numbers.
Sophon.chart = (container, points) => {
  // The SVG namespace, as the HTML parser gives it (no address written here).
  const probe = document.createElement("div");
  probe.innerHTML = "<svg></svg>";
  const NS = probe.firstChild.namespaceURI;
  const { size } = Sophon;
  const svg = (tag, attrs, ...children) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  };
  const old = container.querySelector("svg.history-chart");
  if (old) old.remove();
  if (!points || points.length === 0) return "No snapshots yet: the chart starts with the first backup.";
  const W = 640, H = 240, left = 70, right = 16, top = 16, bottom = 44;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = Math.max(1, ...points.map((p) => Math.max(p.logical_total, p.stored_total)));
  const n = points.length;
  const step = plotW / Math.max(n, 1);
  const x = (i) => left + step * (i + 0.5);
  const y = (v) => top + plotH - (v / max) * plotH;
  const ratio = (r) => (r === null || r === undefined ? "n/a" : "×" + Number(r).toFixed(2));
  const root = svg("svg", { class: "history-chart", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
    "aria-label": "Repository size, logical size and data added per snapshot" });
  // Grid and y labels.
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4, yy = y(v);
    root.append(svg("line", { x1: left, x2: W - right, y1: yy, y2: yy, stroke: "#ddd", "stroke-width": 1 }));
    const label = svg("text", { x: left - 6, y: yy + 4, "text-anchor": "end", "font-size": 11, fill: "#555" });
    label.textContent = size(v);
    root.append(label);
  }
  // Bars: what each snapshot added to the repository.
  const barW = Math.max(2, Math.min(24, step * 0.5));
  points.forEach((p, i) => {
    const h = Math.max(0, top + plotH - y(p.bytes_stored));
    root.append(svg("rect", { x: x(i) - barW / 2, y: top + plotH - h, width: barW, height: h, fill: "#c9d3e6" }));
  });
  const line = (key, attrs) => {
    const d = points.map((p, i) => (i ? "L" : "M") + x(i).toFixed(1) + " " + y(p[key]).toFixed(1)).join(" ");
    root.append(svg("path", Object.assign({ d, fill: "none", "stroke-width": 2 }, attrs)));
  };
  line("logical_total", { stroke: "#2e7d32", "stroke-dasharray": "6 4" });
  line("stored_total", { stroke: "#2458c6" });
  // Points with their figures as tooltips.
  points.forEach((p, i) => {
    const c = svg("circle", { cx: x(i), cy: y(p.stored_total), r: 4, fill: "#2458c6" });
    const t = svg("title");
    t.textContent = `${p.time} ${p.short_id}: snapshot ${size(p.bytes)}, added ${size(p.bytes_stored)} stored; `
      + `repository ${size(p.stored_total)}, logical ${size(p.logical_total)}, deduplication ${ratio(p.dedup_ratio)}`;
    c.append(t);
    root.append(c);
  });
  // x labels: the first and the last snapshot's date.
  const date = (p) => String(p.time).slice(0, 10);
  const first = svg("text", { x: x(0), y: H - bottom + 16, "text-anchor": n > 1 ? "start" : "middle", "font-size": 11, fill: "#555" });
  first.textContent = date(points[0]);
  root.append(first);
  if (n > 1) {
    const last = svg("text", { x: x(n - 1), y: H - bottom + 16, "text-anchor": "end", "font-size": 11, fill: "#555" });
    last.textContent = date(points[n - 1]);
    root.append(last);
  }
  // Legend.
  const legend = [["#2458c6", "", "repository (stored)"], ["#2e7d32", "6 4", "logical size"], ["#c9d3e6", "", "added per snapshot"]];
  legend.forEach(([color, dash, text], k) => {
    const lx = left + k * 190, ly = H - 10;
    root.append(svg("line", { x1: lx, x2: lx + 22, y1: ly - 4, y2: ly - 4, stroke: color, "stroke-width": k === 2 ? 8 : 2, "stroke-dasharray": dash || "none" }));
    const t = svg("text", { x: lx + 28, y: ly, "font-size": 11, fill: "#333" });
    t.textContent = text;
    root.append(t);
  });
  container.prepend(root);
  const last = points[n - 1];
  return `${n} snapshot(s) from ${date(points[0])} to ${date(last)}: together ${size(last.logical_total)} of data stored in `
    + `${size(last.stored_total)} (deduplication and compression ${ratio(last.dedup_ratio)}); the latest added ${size(last.bytes_stored)}.`;
};
