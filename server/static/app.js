// Shared by the pages: API calls (cookie login + CSRF header), and SVG charts
// drawn from the API's numbers. No framework, no build step.
"use strict";

const TR = {
  csrf: sessionStorage.getItem("csrf") || "",
  async api(path, options = {}) {
    const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
    if (opts.body !== undefined && typeof opts.body !== "string" && !(opts.body instanceof Blob)) {
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
      const error = new Error(typeof d === "string" ? d : JSON.stringify(d || data));
      error.status = r.status; error.location = r.headers.get("location");  // e.g. a 409 naming what exists
      throw error;
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
      const heads = [...table.querySelectorAll("thead th")].map((th) => th.dataset.label ?? th.textContent);
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

// Words the pages share (one place, for a message catalogue later).
TR.SAY = {
  movement: {
    knee_flexion: "knee bend", hip_flexion: "hip bend", elbow_flexion: "elbow bend",
    shoulder_elevation: "arm raise at the shoulder", ankle_dorsiflexion: "ankle (foot raised)",
    thigh_inclination: "thigh raise at the hip", trunk_lean: "trunk lean",
  },
  side: { left: "left side", right: "right side", both: "both sides" },
  fault: {
    short_range: "short of the target range", too_fast: "faster than the prescribed tempo",
    landmarks_unseen: "body partly out of view (range not trusted)",
  },
  romTitle: (name, movement, sides) => `${name}: ${movement} range of motion${sides ? `, ${sides}` : ""}`,
  romAxis: "Range of motion (°)", weekAxis: "Week starting", dayAxis: "Session date",
  meanRom: "weekly mean", target: (lo, hi) => `target ${lo}-${hi}°`,
  adherenceTitle: "Sessions done per week, against the prescription",
  sessionsAxis: "Sessions", done: "done in full", partial: "partly done", prescribed: "prescribed",
  painTitle: "Pain before and after each session (0-10)", painAxis: "Pain (0-10)",
  before: "before", after: "after", diaryMark: " (diary)",
  qualityTitle: "Movement quality per week (0-100)", qualityAxis: "Quality (0-100)", meanQuality: "weekly mean",
  numbers: "Show the numbers", none: "no session",
};

// "2026-W47" -> the Monday of that ISO week (a Date at 00:00 UTC).
TR.weekStart = function (week) {
  const [y, w] = week.split("-W").map(Number);
  const jan4 = new Date(Date.UTC(y, 0, 4));
  return new Date(jan4.getTime() + ((w - 1) * 7 - ((jan4.getUTCDay() + 6) % 7)) * 86400000);
};
TR.fmtShort = (d) => d.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
TR.fmtWeek = (week) => TR.fmtShort(TR.weekStart(week));
TR.fmtDate = (iso) => TR.fmtShort(new Date(`${iso}T00:00:00Z`));
TR.faultText = function (id, exercise) {
  return (exercise && exercise.faults && exercise.faults[id]) || TR.SAY.fault[id] || id.replaceAll("_", " ");
};

// A video stage (video + skeleton canvas) shaped like the real picture, w x h
// pixels: 4:3, 16:9 or portrait, never cropped, never taller than most of the
// screen. Set through the CSSOM (the CSP allows no inline style attribute).
TR.fitStage = function (stage, w, h) {
  if (!w || !h) return;
  stage.style.aspectRatio = `${w} / ${h}`;
  stage.style.maxWidth = `min(100%, 720px, calc(75vh * ${(w / h).toFixed(4)}))`;
  stage.dataset.aspect = `${w}x${h}`;
};

// A chart as SVG, `width` px wide (its column's width: the text keeps its size).
// Marks and bars stand 3:1 or more against the white plot (WCAG 1.4.11); the
// light target band has a darker edge.
// labels: the x categories; series: [{name, color, values: [y|null per label]}];
// band: [lo, hi] shaded (the target range); bars: bars instead of lines
// (stack: the series' bars stacked); the y axis runs from 0 to `yMax` or to a
// round number above the data and the band. The figure carries a table of
// the numbers (the text alternative) under "Show the numbers".
TR.chart = function ({ title, labels, series, band = null, yMax = null, bars = false, stack = false,
  xTitle = "", yTitle = "", width = 520, desc = "" }) {
  const W = Math.max(280, Math.round(width)), H = 250, L = 56, R = 14, T = 14, B = 70;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}. ${desc}`);
  const n = labels.length;
  const totals = stack ? labels.map((_, i) => series.reduce((a, s) => a + (s.stack ? s.values[i] || 0 : 0), 0)) : [];
  const ys = [...series.flatMap((s) => s.values), ...totals].filter((v) => v !== null && v !== undefined);
  const want = yMax ?? Math.max(1, ...(band ? [band[1]] : []), ...ys) * 1.1;
  const mag = 10 ** Math.floor(Math.log10(want / 4));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= want / 4);
  const top = Math.ceil(want / step - 1e-9) * step;
  const slot = (W - L - R) / Math.max(1, n);
  const x = (i) => L + slot * (i + 0.5);  // the middle of category i: bars stay inside the axis
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e); return e;
  };
  if (band) add("rect", { x: L, y: y(Math.min(band[1], top)), width: W - L - R, height: Math.max(0, y(band[0]) - y(Math.min(band[1], top))), fill: "#d8ecd8", stroke: "#5a9a5a", "data-band": `${band[0]}-${band[1]}` });
  for (let v = 0; v <= top + 1e-9; v += step) {
    add("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#ddd" });
    add("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, +v.toFixed(1));
  }
  add("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: "#555" });
  const labelW = 7.5 * Math.max(4, ...labels.map((s) => s.length)) + 10;
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor((W - L - R) / labelW))));  // no label overlaps another
  labels.forEach((lab, i) => { if (i % every === 0) add("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", "data-x": lab }, lab); });
  if (xTitle) add("text", { x: L + (W - L - R) / 2, y: H - B + 34, "text-anchor": "middle", class: "axis-title" }, xTitle);
  if (yTitle) add("text", { x: -(T + (H - T - B) / 2), y: 14, transform: "rotate(-90)", "text-anchor": "middle", class: "axis-title" }, yTitle);
  const grouped = bars ? series.filter((s) => !s.stack) : [];
  const groups = grouped.length + (stack ? 1 : 0);
  const bw = Math.min(28, (slot * 0.8) / Math.max(1, groups));
  const base = labels.map(() => 0);
  series.forEach((s) => {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      if (bars) {
        const g = s.stack ? 0 : (stack ? 1 : 0) + grouped.indexOf(s);
        const lo = s.stack ? base[i] : 0;
        if (s.stack) base[i] += v;
        add("rect", { x: x(i) - (bw * groups) / 2 + g * bw, y: y(lo + v), width: bw - 2, height: y(lo) - y(lo + v), fill: s.color, class: "point", "data-value": v, "data-series": s.name });
      } else {
        d += `${d ? "L" : "M"}${x(i)},${y(v)}`;
        add("circle", { cx: x(i), cy: y(v), r: 4, fill: s.color, class: "point", "data-value": v, "data-series": s.name });
      }
    });
    if (!bars && d) add("path", { d, fill: "none", stroke: s.color, "stroke-width": 2.5 });
  });
  // the legend, on as many lines as it needs
  let lx = L, ly = H - 12;
  for (const s of [...series, ...(band ? [{ name: TR.SAY.target(band[0], band[1]), color: "#d8ecd8", stroke: "#5a9a5a" }] : [])]) {
    const w = 32 + 7.5 * s.name.length;
    if (lx + w > W - R && lx > L) { lx = L; ly += 16; }
    add("rect", { x: lx, y: ly - 10, width: 12, height: 12, fill: s.color, stroke: s.stroke || "none", class: "swatch" });  // CSS colours text, not this
    add("text", { x: lx + 17, y: ly }, s.name);
    lx += w;
  }
  if (ly > H - 12) { svg.setAttribute("viewBox", `0 0 ${W} ${ly + 8}`); svg.setAttribute("height", ly + 8); }
  const table = TR.el("table", {}, TR.el("thead", {}, TR.el("tr", {}, TR.el("th", { scope: "col", text: xTitle || "" }),
    ...series.map((s) => TR.el("th", { scope: "col", text: s.name })))),
  TR.el("tbody", {}, ...labels.map((lab, i) => TR.el("tr", {}, TR.el("th", { scope: "row", text: lab }),
    ...series.map((s) => TR.el("td", { text: s.values[i] === null || s.values[i] === undefined ? "-" : String(s.values[i]) }))))));
  const fig = TR.el("figure");
  fig.append(TR.el("figcaption", { text: title }), svg,
    TR.el("details", { class: "chart-text" }, TR.el("summary", { text: TR.SAY.numbers }), table));
  return fig;
};

// The trend plots of one patient (from /api/patients/{id}/trends), drawn into
// `box` at its columns' width and drawn again when that width changes.
TR.drawCharts = function (box, t, library) {
  const S = TR.SAY;
  const byId = Object.fromEntries((library || []).map((e) => [e.id, e]));
  const weeks = t.weeks.map(TR.fmtWeek);
  const specs = t.rom.map((r) => {
    const ex = byId[r.exercise_id] || { name: r.exercise_id };
    const movement = S.movement[ex.signal_angle] || "";
    const sides = (r.sides || []).map((x) => S.side[x] || x).join(", ");
    return {
      title: S.romTitle(ex.name, movement, sides), labels: weeks, xTitle: S.weekAxis, yTitle: S.romAxis,
      series: [{ name: S.meanRom, color: "#0b5cad", values: r.weeks.map((w) => (w.value === null ? null : Math.round(w.value))) }],
      band: [r.target_min_deg, r.target_max_deg],
      desc: `${S.target(r.target_min_deg, r.target_max_deg)}. ` + r.weeks.map((w, i) => `${weeks[i]}: ${w.value === null ? S.none : Math.round(w.value)}`).join(", "),
    };
  });
  const adh = t.adherence;
  specs.push({
    title: S.adherenceTitle, labels: weeks, xTitle: S.weekAxis, yTitle: S.sessionsAxis, bars: true, stack: true,
    series: [
      { name: S.done, color: "#0b5cad", stack: true, values: adh.map((a) => a.done - (a.partial || 0)) },
      { name: S.partial, color: "#5b8fd0", stack: true, values: adh.map((a) => a.partial || 0) },
      { name: S.prescribed, color: "#767676", values: adh.map((a) => a.prescribed) },
    ],
    desc: adh.map((a, i) => `${weeks[i]}: ${a.done} of ${a.prescribed}${a.partial ? ` (${a.partial} ${S.partial})` : ""}`).join(", "),
  });
  const days = t.pain.map((p) => TR.fmtDate(p.day) + (p.diary ? S.diaryMark : ""));
  specs.push({
    title: S.painTitle, labels: days, xTitle: S.dayAxis, yTitle: S.painAxis, yMax: 10,
    series: [
      { name: S.before, color: "#a36b00", values: t.pain.map((p) => p.before) },
      { name: S.after, color: "#a33", values: t.pain.map((p) => p.after) },
    ],
    desc: t.pain.map((p, i) => `${days[i]}: ${p.before ?? "-"} to ${p.after ?? "-"}`).join(", "),
  });
  specs.push({
    title: S.qualityTitle, labels: weeks, xTitle: S.weekAxis, yTitle: S.qualityAxis, yMax: 100,
    series: [{ name: S.meanQuality, color: "#161", values: t.quality.map((q) => (q.value === null ? null : Math.round(q.value))) }],
    desc: t.quality.map((q, i) => `${weeks[i]}: ${q.value === null ? S.none : Math.round(q.value)}`).join(", "),
  });
  const grid = TR.el("div", { class: "charts" });
  const slots = specs.map(() => grid.appendChild(TR.el("div")));
  box.replaceChildren(grid);
  let drawn = 0;
  const draw = () => {
    const w = slots[0].clientWidth;
    if (!w || w === drawn) return;
    drawn = w;
    slots.forEach((slot, i) => slot.replaceChildren(TR.chart({ ...specs[i], width: w })));
  };
  draw();
  if (box._resize) window.removeEventListener("resize", box._resize);
  box._resize = () => { clearTimeout(box._timer); box._timer = setTimeout(draw, 150); };
  window.addEventListener("resize", box._resize);
};
