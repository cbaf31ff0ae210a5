// Shared by the pages: API calls (cookie login + CSRF header), and SVG charts
// drawn from the API's numbers. No framework, no build step.
"use strict";

const TR = {
  csrf: sessionStorage.getItem("csrf") || "",
  async api(path, options = {}) {
    const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
    if (opts.body !== undefined && typeof opts.body !== "string") {
      opts.body = JSON.stringify(opts.body);
      opts.headers["Content-Type"] = "application/json";
    }
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = TR.csrf;
    const r = await fetch(path, opts);
    if (r.status === 401 && !path.endsWith("/login")) { location.href = "/login"; throw new Error("not logged in"); }
    const data = (r.headers.get("content-type") || "").includes("json") ? await r.json() : await r.text();
    if (!r.ok) {
      const d = data && data.detail;
      if (Array.isArray(d)) throw new Error(d.map((p) => `${(p.loc || []).slice(1).join(".") || "request"}: ${p.msg}`).join("; "));
      throw new Error(typeof d === "string" ? d : JSON.stringify(d || data));
    }
    return data;
  },
  async me() {
    const me = await TR.api("/api/auth/me");
    if (me.csrf_token) { TR.csrf = me.csrf_token; sessionStorage.setItem("csrf", me.csrf_token); }
    return me;
  },
  async logout() {
    try { await TR.api("/api/auth/logout", { method: "POST" }); } finally { location.href = "/login"; }
  },
  el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  },
  // A table that becomes one card per row on a phone: each cell is labelled
  // with its column's header, now and whenever rows are added.
  stack(table) {
    table.classList.add("stack");
    const label = () => {
      const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
      for (const tr of table.querySelectorAll("tbody tr")) {
        [...tr.children].forEach((td, i) => { if (!td.hasAttribute("colspan") && heads[i] !== undefined) td.dataset.label = heads[i]; });
      }
    };
    label();
    new MutationObserver(label).observe(table, { childList: true, subtree: true });
    return table;
  },
  fmtDay(iso) { return new Date(iso).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" }); },
};

document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("table[data-stack]").forEach(TR.stack));

// BlazePose connections drawn as the live skeleton (landmark indices).
TR.EDGES = [[11, 12], [11, 13], [13, 15], [12, 14], [14, 16], [11, 23], [12, 24], [23, 24], [23, 25],
  [25, 27], [24, 26], [26, 28], [27, 31], [28, 32], [0, 11], [0, 12]];

// The skeleton of one `pose` message ([x, y, visibility] x 33, normalised) on a canvas.
TR.drawSkeleton = function (canvas, landmarks, width, height) {
  canvas.width = width; canvas.height = height;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  if (!landmarks) return;
  g.lineWidth = 4; g.strokeStyle = "#3cf"; g.fillStyle = "#ff0";
  for (const [a, b] of TR.EDGES) {
    const p = landmarks[a], q = landmarks[b];
    if (p[2] < 0.5 || q[2] < 0.5) continue;
    g.beginPath(); g.moveTo(p[0] * width, p[1] * height); g.lineTo(q[0] * width, q[1] * height); g.stroke();
  }
  for (const p of landmarks) if (p[2] >= 0.5) { g.beginPath(); g.arc(p[0] * width, p[1] * height, 4, 0, 7); g.fill(); }
};

// A line chart as SVG. series: [{name, color, points: [[xLabel, y|null], ...]}],
// band: [lo, hi] shaded (the target range); bars: draw bars instead of lines.
TR.chart = function ({ title, series, band = null, yMax = null, bars = false, desc = "" }) {
  const W = 520, H = 240, L = 48, R = 26, T = 14, B = 42;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}. ${desc}`);
  const labels = series.length ? series[0].points.map((p) => p[0]) : [];
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v !== null);
  const want = yMax ?? Math.max(10, ...(band ? [band[1]] : []), ...ys) * 1.1;
  const mag = 10 ** Math.floor(Math.log10(want / 4));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= want / 4);
  const top = Math.ceil(want / step - 1e-9) * step;
  const x = (i) => L + (labels.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (labels.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e); return e;
  };
  if (band) add("rect", { x: L, y: y(band[1]), width: W - L - R, height: Math.max(0, y(band[0]) - y(band[1])), fill: "#d8ecd8", "data-band": `${band[0]}-${band[1]}` });
  for (let v = 0; v <= top + 1e-9; v += step) {
    add("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#ddd" });
    add("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, +v.toFixed(1));
  }
  labels.forEach((lab, i) => add("text", { x: x(i), y: H - B + 18, "text-anchor": "middle" }, lab));
  series.forEach((s, si) => {
    let d = "";
    s.points.forEach((p, i) => {
      if (p[1] === null) return;
      if (bars) {
        const w = Math.max(6, (W - L - R) / Math.max(1, labels.length) / (series.length + 1));
        add("rect", { x: x(i) - w * series.length / 2 + si * w, y: y(p[1]), width: w - 2, height: y(0) - y(p[1]), fill: s.color, class: "point", "data-value": p[1] });
      } else {
        d += `${d ? "L" : "M"}${x(i)},${y(p[1])}`;
        add("circle", { cx: x(i), cy: y(p[1]), r: 4, fill: s.color, class: "point", "data-value": p[1] });
      }
    });
    if (!bars && d) add("path", { d, fill: "none", stroke: s.color, "stroke-width": 2.5 });
    add("text", { x: L + 8 + si * 150, y: H - 6, fill: s.color }, `■ ${s.name}`);
  });
  const fig = TR.el("figure");
  fig.append(TR.el("figcaption", { text: title }), svg);
  return fig;
};

// The four trend plots of one patient, from /api/patients/{id}/trends.
TR.trendCharts = function (t, library) {
  const box = TR.el("div", { class: "charts" });
  const names = Object.fromEntries((library || []).map((e) => [e.id, e.name]));
  for (const r of t.rom) {
    const pts = r.weeks.map((w) => [w.week.slice(5), w.value === null ? null : Math.round(w.value)]);
    box.append(TR.chart({
      title: `${names[r.exercise_id] || r.exercise_id}: range of motion per week (deg)`,
      series: [{ name: "mean ROM", color: "#0b5cad", points: pts }],
      band: [r.target_min_deg, r.target_max_deg], yMax: 180,
      desc: `Target ${r.target_min_deg} to ${r.target_max_deg} degrees. ` + pts.map((p) => `${p[0]}: ${p[1] ?? "no sessions"}`).join(", "),
    }));
  }
  box.append(TR.chart({
    title: "Adherence: sessions done vs prescribed per week", bars: true,
    series: [
      { name: "done", color: "#0b5cad", points: t.adherence.map((a) => [a.week.slice(5), a.done]) },
      { name: "prescribed", color: "#999", points: t.adherence.map((a) => [a.week.slice(5), a.prescribed]) },
    ],
    yMax: Math.max(4, ...t.adherence.map((a) => Math.max(a.done, a.prescribed))) + 1,
    desc: t.adherence.map((a) => `${a.week}: ${a.done} of ${a.prescribed}`).join(", "),
  }));
  box.append(TR.chart({
    title: "Pain before and after each session (0-10)",
    series: [
      { name: "before", color: "#a36b00", points: t.pain.map((p) => [p.day.slice(5), p.before]) },
      { name: "after", color: "#a33", points: t.pain.map((p) => [p.day.slice(5), p.after]) },
    ],
    yMax: 10, desc: t.pain.map((p) => `${p.day}: ${p.before ?? "-"} to ${p.after ?? "-"}`).join(", "),
  }));
  box.append(TR.chart({
    title: "Movement quality per week (0-100)",
    series: [{ name: "mean quality", color: "#161", points: t.quality.map((q) => [q.week.slice(5), q.value === null ? null : Math.round(q.value)]) }],
    yMax: 100, desc: t.quality.map((q) => `${q.week}: ${q.value === null ? "none" : Math.round(q.value)}`).join(", "),
  }));
  return box;
};
