// Shared by the pages: the message catalogue (every word a page shows or
// speaks), API calls (cookie login + CSRF header), and SVG charts drawn from
// the API's numbers. No framework, no build step.
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
    if (r.status === 401 && !/\/(login|welcome(\/check)?)$/.test(path)) { location.href = "/login"; throw new Error(TR.t("error.401")); }
    const data = (r.headers.get("content-type") || "").includes("json") ? await r.json() : await r.text();
    if (!r.ok) {  // the user reads the catalogue's words; the server's (English, for developers) stay in `detail`
      const error = new Error(TR.errorText(r.status, data && data.detail, r.headers.get("retry-after")));
      error.status = r.status; error.location = r.headers.get("location");  // e.g. a 409 naming what exists
      error.detail = data && data.detail; error.body = data;  // e.g. a 409's newest version, who saved it and when
      throw error;
    }
    return data;
  },
  // Who is signed in; their catalogue is loaded (and the page put in their language).
  async me() {
    const me = await TR.api("/api/auth/me");
    if (me.csrf_token) { TR.csrf = me.csrf_token; sessionStorage.setItem("csrf", me.csrf_token); }
    await TR.loadCatalogue(me.language);
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
  fmtDay(iso) { return new Date(iso).toLocaleDateString(TR.lang, { day: "numeric", month: "short", year: "numeric" }); },
  // a moment: its day and time of day, in the reader's time zone
  fmtTime(iso) { return `${TR.fmtDay(iso)} ${new Date(iso).toLocaleTimeString(TR.lang, { hour: "2-digit", minute: "2-digit" })}`; },
};

// ----------------------------------------------------------------- the message catalogue
// GET /api/i18n: one language's messages by key (server/locales/<lang>, gettext
// .po read with Babel). Placeholders are named, {name}; a message with plural
// forms is a list, picked with Intl.PluralRules through the catalogue's own
// mapping of CLDR categories to its forms. Numbers and dates follow TR.lang.
TR.lang = "en";
TR.msgs = {};
TR.loadCatalogue = async function (lang) {
  const r = await fetch(`/api/i18n${lang ? `?lang=${encodeURIComponent(lang)}` : ""}`, { credentials: "same-origin" });
  const c = await (r.ok ? r : await fetch("/api/i18n", { credentials: "same-origin" })).json();
  TR.lang = c.language; TR.msgs = c.messages; TR.pluralIndex = c.plural_index; TR.languages = c.languages;
  TR.plurals = new Intl.PluralRules(TR.lang);
  TR.numbers = new Intl.NumberFormat(TR.lang, { maximumFractionDigits: 2, useGrouping: false });
  document.documentElement.lang = TR.lang;
  TR.translatePage();
  return c;
};
TR.has = (key) => Object.prototype.hasOwnProperty.call(TR.msgs, key);
TR.fill = (text, values) => text.replace(/\{(\w+)\}/g, (all, name) => {
  if (!(name in values)) return all;
  const v = values[name];
  return typeof v === "number" ? TR.numbers.format(v) : String(v);
});
// The message `key` with its {placeholders} from `values`.
TR.t = function (key, values = {}) {
  const m = TR.msgs[key];
  if (m === undefined) { console.warn(`message ${key} is in no catalogue`); return key; }
  return TR.fill(Array.isArray(m) ? m[m.length - 1] : m, values);
};
// The form of `key` for the number `n` (also its {n}).
TR.tn = function (key, n, values = {}) {
  const m = TR.msgs[key];
  if (!Array.isArray(m)) return TR.t(key, { n, ...values });
  const form = m[TR.pluralIndex[TR.plurals.select(n)]] ?? m[m.length - 1];
  return TR.fill(form, { n, ...values });
};
// Elements named in the HTML take their words from the catalogue:
// data-i18n (the text) and data-i18n-label (aria-label).
TR.translatePage = function (root = document) {
  root.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = TR.t(e.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((e) => e.setAttribute("aria-label", TR.t(e.dataset.i18nLabel)));
};
// A library exercise's name in the page's language (the catalogue's
// exercise.<id>.name); an exercise it does not name keeps `name`.
TR.exName = (id, name) => (TR.has(`exercise.${id}.name`) ? TR.t(`exercise.${id}.name`) : name);
// The same within a sentence ("looked at your squat"): names are written in
// sentence case, so a first word capitalised only for that is lower-cased; one
// with another capital (an acronym, "McKenzie") is kept as it is.
TR.exNameInSentence = (id, name) => {
  const full = TR.exName(id, name);
  const first = full.split(/[\s(]/, 1)[0];
  return /^\p{Lu}\P{Lu}*$/u.test(first) ? full[0].toLocaleLowerCase(TR.lang) + full.slice(1) : full;
};
// What a failed request says to the user, by its status: the field a 422 names
// (a path, not words), the wait a 429 asks for.
TR.errorText = function (status, detail, retryAfter) {
  if (status === 429) return TR.tn("error.429", Math.max(1, Number(retryAfter) || 1));
  if (status === 422) {
    const field = Array.isArray(detail) ? (detail[0].loc || []).slice(1).join(".")
      : (/^([\w.[\]]+):/.exec(typeof detail === "string" ? detail : "") || [])[1];
    return field ? TR.t("error.422.field", { field }) : TR.t("error.422");
  }
  return TR.has(`error.${status}`) ? TR.t(`error.${status}`) : TR.t("error.other", { status });
};
// A <select> of the languages with a catalogue, each named in itself; `pick`
// is called with the code chosen.
TR.languageSelect = function (select, current, pick) {
  select.replaceChildren(...TR.languages.map((l) => {
    const o = TR.el("option", { value: l.code, lang: l.code, text: l.name });
    if (l.code === current) o.selected = true;
    return o;
  }));
  select.onchange = () => pick(select.value);
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
  // at least 3 screen pixels however small the canvas is shown (a demonstration)
  const scale = canvas.clientWidth ? width / canvas.clientWidth : 1, r = Math.max(4, 3 * scale);
  g.lineWidth = r; g.strokeStyle = "#3cf"; g.fillStyle = "#ff0";
  for (const [a, b] of TR.EDGES) {
    const p = landmarks[a], q = landmarks[b];
    if (p[2] < 0.5 || q[2] < 0.5) continue;
    g.beginPath(); g.moveTo(p[0] * width, p[1] * height); g.lineTo(q[0] * width, q[1] * height); g.stroke();
  }
  for (const p of landmarks) if (p[2] >= 0.5) { g.beginPath(); g.arc(p[0] * width, p[1] * height, r, 0, 7); g.fill(); }
};

// Where to stand: the first pose of a movement record (an exercise's
// demonstration: its starting position) drawn over `canvas` (w x h pixels,
// already drawn on) as a dashed outline filling most of the picture, for the
// patient to step into.
TR.drawOutline = function (canvas, frames, w, h) {
  const first = frames && frames.landmarks.find(Boolean);
  if (!first) return;
  const pts = first.map((q) => [q[0] * frames.width, q[1] * frames.height, q[2] ?? 0]);
  const seen = pts.filter((q) => q[2] >= 0.5);
  if (!seen.length) return;
  const xs = seen.map((q) => q[0]), ys = seen.map((q) => q[1]);
  const x0 = Math.min(...xs), y0 = Math.min(...ys);
  const bw = Math.max(1, Math.max(...xs) - x0), bh = Math.max(1, Math.max(...ys) - y0);
  const s = Math.min(0.8 * w / bw, 0.8 * h / bh);
  const ox = (w - bw * s) / 2 - x0 * s, oy = (h - bh * s) / 2 - y0 * s;
  const g = canvas.getContext("2d");
  g.save();
  g.setLineDash([12, 10]); g.lineWidth = Math.max(3, h / 120); g.lineCap = "round";
  g.strokeStyle = "rgba(255, 255, 255, 0.9)";
  g.shadowColor = "rgba(0, 0, 0, 0.8)"; g.shadowBlur = 4;
  for (const [a, b] of TR.EDGES) {
    const p = pts[a], q = pts[b];
    if (p[2] < 0.5 || q[2] < 0.5) continue;
    g.beginPath(); g.moveTo(ox + p[0] * s, oy + p[1] * s); g.lineTo(ox + q[0] * s, oy + q[1] * s); g.stroke();
  }
  const head = pts[0];  // the head, about an eighth of the body's length across
  if (head[2] >= 0.5) { g.beginPath(); g.arc(ox + head[0] * s, oy + head[1] * s, Math.max(bw, bh) * s / 16, 0, 7); g.stroke(); }
  g.restore();
};

// A movement record played as a skeleton on `canvas`: a session's kept movement
// (/api/sessions/{id}/movement/{exercise}) or an exercise's demonstration
// (/api/exercises/{id}/demonstration), one format and one drawing.
// show(t) draws the last frame at or before t; play(on) runs it in real time,
// from the start again at the end when `loop`, else stopping there.
// onShow(t, end) and onPlaying(playing) let a page follow (a clock, a button).
TR.skeletonPlayer = function (canvas, { loop = false, onShow = () => {}, onPlaying = () => {} } = {}) {
  const p = { frames: null, t: 0, playing: false, last: 0, drawn: -1 };
  // from the first frame in which someone was seen (a patient who stepped in late)
  const first = () => p.frames.t_s[Math.max(0, p.frames.landmarks.findIndex(Boolean))] ?? 0;
  p.end = () => p.frames.t_s[p.frames.t_s.length - 1] ?? 0;
  function frameAt(t) {  // binary search
    const ts = p.frames.t_s;
    let lo = 0, hi = ts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (ts[mid] <= t) lo = mid; else hi = mid - 1; }
    return lo;
  }
  p.show = function (t) {
    const f = p.frames;
    if (!f || !f.t_s.length) return;
    p.t = Math.max(first(), Math.min(t, p.end()));
    const i = frameAt(p.t), lm = f.landmarks[i];
    if (i !== p.drawn) {  // a record holds 15 frames a second: no need to draw 60
      TR.drawSkeleton(canvas, lm ? lm.map((q) => q.map((v) => v ?? 0)) : null, f.width, f.height);
      p.drawn = i;
    }
    onShow(p.t, p.end());
  };
  // The frame furthest from the first: the turning point of the movement, for a still.
  p.furthest = function () {
    const f = p.frames, start = f.landmarks.find(Boolean);
    let best = first(), most = -1;
    f.landmarks.forEach((lm, i) => {
      if (!lm || !start) return;
      const d = lm.reduce((a, q, k) => a + Math.abs((q[0] ?? 0) - (start[k][0] ?? 0)) + Math.abs((q[1] ?? 0) - (start[k][1] ?? 0)), 0);
      if (d > most) { most = d; best = f.t_s[i]; }
    });
    return best;
  };
  function tick(now) {
    if (!p.playing) return;
    p.t += (now - p.last) / 1000; p.last = now;
    if (p.t >= p.end()) {
      if (!loop) { p.show(p.end()); p.play(false); return; }
      p.t = first();
    }
    p.show(p.t);
    requestAnimationFrame(tick);
  }
  p.play = function (on) {
    const was = p.playing;
    p.playing = on && !!p.frames;
    if (p.playing && !was) {
      if (p.t >= p.end()) p.t = first();
      p.last = performance.now(); requestAnimationFrame(tick);
    }
    onPlaying(p.playing);
  };
  p.load = function (frames) { p.play(false); p.frames = frames; p.drawn = -1; p.show(first()); };
  return p;
};

// An exercise's demonstration (/api/exercises/{id}/demonstration) in `canvas`,
// looping, with `button` to pause and play it. Someone who asked for less
// motion (prefers-reduced-motion, now or later) or paused it sees a still of
// the turning point. show(id, name) answers false when the exercise has none
// (a movement no single joint shows), null when another was asked for since;
// redraw() after the canvas is shown at its size.
TR.demonstration = function (canvas, button) {
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)");
  const player = TR.skeletonPlayer(canvas, {
    loop: true, onPlaying: (on) => { button.textContent = TR.t(on ? "demo.pause" : "demo.play"); } });
  let paused = false, asked = 0;
  const still = () => { player.play(false); player.show(player.furthest()); };
  button.onclick = () => { paused = player.playing; player.play(!player.playing); };
  calm.addEventListener("change", () => { if (calm.matches && player.frames) still(); });
  return {
    async show(exerciseId, name) {
      const mine = ++asked;
      let frames;
      try { frames = await TR.api(`/api/exercises/${encodeURIComponent(exerciseId)}/demonstration`); } catch (e) { frames = null; }
      if (mine !== asked) return null;
      canvas.setAttribute("aria-label", TR.t("demo.label", { name }));
      if (!frames) { player.play(false); return false; }
      player.load(frames);
      if (calm.matches || paused) still(); else player.play(true);
      return true;
    },
    redraw() { if (player.frames) { player.drawn = -1; player.show(player.t); } },
    get frames() { return player.frames; },  // the record shown (null: none)
  };
};

// "2026-W47" -> the Monday of that ISO week (a Date at 00:00 UTC).
TR.weekStart = function (week) {
  const [y, w] = week.split("-W").map(Number);
  const jan4 = new Date(Date.UTC(y, 0, 4));
  return new Date(jan4.getTime() + ((w - 1) * 7 - ((jan4.getUTCDay() + 6) % 7)) * 86400000);
};
TR.fmtShort = (d) => d.toLocaleDateString(TR.lang, { day: "numeric", month: "short", timeZone: "UTC" });
TR.fmtWeek = (week) => TR.fmtShort(TR.weekStart(week));
TR.fmtDate = (iso) => TR.fmtShort(new Date(`${iso}T00:00:00Z`));
TR.faultText = function (id, exercise) {
  return (exercise && exercise.faults && exercise.faults[id]) || (TR.has(`fault.${id}`) ? TR.t(`fault.${id}`) : id.replaceAll("_", " "));
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
  xTitle = "", yTitle = "", width = 520, desc = "", points = null }) {
  const W = Math.max(280, Math.round(width)), H = 250, L = 56, R = 14, T = 14, B = 70;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}. ${desc}`);
  const n = labels.length;
  const totals = stack ? labels.map((_, i) => series.reduce((a, s) => a + (s.stack ? s.values[i] || 0 : 0), 0)) : [];
  const ys = [...series.flatMap((s) => s.values), ...totals, ...(points ? points.items.map((p) => p.v) : [])]
    .filter((v) => v !== null && v !== undefined);
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
    add("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, TR.numbers.format(+v.toFixed(1)));
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
  // points: each at its place inside its category (e.g. a session on its day of the week)
  if (points) for (const p of points.items) {
    add("circle", { cx: L + slot * (p.i + p.frac), cy: y(p.v), r: 4, fill: "#fff", stroke: points.color, "stroke-width": 2,
      class: "point session", "data-value": p.v, "data-x": p.label });
  }
  // the legend, on as many lines as it needs
  let lx = L, ly = H - 12;
  for (const s of [...series, ...(points ? [{ name: points.name, color: "#fff", stroke: points.color }] : []),
    ...(band ? [{ name: TR.t("chart.target", { lo: band[0], hi: band[1] }), color: "#d8ecd8", stroke: "#5a9a5a" }] : [])]) {
    const w = 32 + 7.5 * s.name.length;
    if (lx + w > W - R && lx > L) { lx = L; ly += 16; }
    add("rect", { x: lx, y: ly - 10, width: 12, height: 12, fill: s.color, stroke: s.stroke || "none", class: "swatch" });  // CSS colours text, not this
    add("text", { x: lx + 17, y: ly }, s.name);
    lx += w;
  }
  if (ly > H - 12) { svg.setAttribute("viewBox", `0 0 ${W} ${ly + 8}`); svg.setAttribute("height", ly + 8); }
  const table = TR.el("table", {}, TR.el("thead", {}, TR.el("tr", {}, TR.el("th", { scope: "col", text: xTitle || "" }),
    ...series.map((s) => TR.el("th", { scope: "col", text: s.name })), ...(points ? [TR.el("th", { scope: "col", text: points.name })] : []))),
  TR.el("tbody", {}, ...labels.map((lab, i) => TR.el("tr", {}, TR.el("th", { scope: "row", text: lab }),
    ...series.map((s) => TR.el("td", { text: s.values[i] === null || s.values[i] === undefined ? "-" : String(s.values[i]) })),
    ...(points ? [TR.el("td", { text: points.items.filter((p) => p.i === i).map((p) => `${p.label}: ${p.v}`).join("; ") || "-" })] : [])))));
  const fig = TR.el("figure");
  fig.append(TR.el("figcaption", { text: title }), svg,
    TR.el("details", { class: "chart-text" }, TR.el("summary", { text: TR.t("chart.numbers") }), table));
  return fig;
};

// The trend plots of one patient (from /api/patients/{id}/trends), drawn into
// `box` at its columns' width and drawn again when that width changes.
TR.drawCharts = function (box, t, library) {
  const t_ = TR.t;
  const byId = Object.fromEntries((library || []).map((e) => [e.id, e]));
  const weeks = t.weeks.map(TR.fmtWeek);
  const round = (v) => (v === null ? null : Math.round(v));
  const specs = t.rom.map((r) => {
    const ex = byId[r.exercise_id] || { name: r.exercise_id };
    const movement = TR.has(`movement.${ex.signal_angle}`) ? t_(`movement.${ex.signal_angle}`) : "";
    const sides = (r.sides || []).map((x) => (TR.has(`side.${x}`) ? t_(`side.${x}`) : x)).join(", ");
    const target = t_("chart.target", { lo: r.target_min_deg, hi: r.target_max_deg });
    return {
      title: t_(sides ? "chart.romTitleSides" : "chart.romTitle", { name: ex.name, movement, sides }),
      labels: weeks, xTitle: t_("chart.weekAxis"), yTitle: t_("chart.romAxis"),
      series: [{ name: t_("chart.weeklyMean"), color: "#0b5cad", values: r.weeks.map((w) => round(w.value)) }],
      // each session a point on its day inside its week, beside the weekly mean
      points: { name: t_("chart.session"), color: "#0b5cad", items: (r.sessions || []).map((x) => ({
        i: t.weeks.indexOf(x.week), frac: (((new Date(`${x.day}T00:00:00Z`).getUTCDay() + 6) % 7) + 0.5) / 7,
        v: Math.round(x.value), label: TR.fmtDate(x.day) })).filter((p) => p.i >= 0) },
      band: [r.target_min_deg, r.target_max_deg],
      desc: `${target}. ` + r.weeks.map((w, i) => `${weeks[i]}: ${w.value === null ? t_("chart.noSession") : Math.round(w.value)}`).join(", "),
    };
  });
  const adh = t.adherence;
  specs.push({
    title: t_("chart.adherenceTitle"), labels: weeks, xTitle: t_("chart.weekAxis"), yTitle: t_("chart.sessionsAxis"), bars: true, stack: true,
    series: [
      { name: t_("chart.done"), color: "#0b5cad", stack: true, values: adh.map((a) => a.done - (a.partial || 0)) },
      { name: t_("chart.partial"), color: "#5b8fd0", stack: true, values: adh.map((a) => a.partial || 0) },
      { name: t_("chart.prescribed"), color: "#767676", values: adh.map((a) => a.prescribed) },
    ],
    desc: adh.map((a, i) => t_("chart.adherenceItem", { week: weeks[i], done: a.done, prescribed: a.prescribed })
      + (a.partial ? t_("chart.adherencePartial", { n: a.partial }) : "")).join(", "),
  });
  const days = t.pain.map((p) => TR.fmtDate(p.day) + (p.diary ? t_("chart.diaryMark") : ""));
  specs.push({
    title: t_("chart.painTitle"), labels: days, xTitle: t_("chart.dayAxis"), yTitle: t_("chart.painAxis"), yMax: 10,
    series: [
      { name: t_("chart.before"), color: "#a36b00", values: t.pain.map((p) => p.before) },
      { name: t_("chart.after"), color: "#a33", values: t.pain.map((p) => p.after) },
    ],
    desc: t.pain.map((p, i) => t_("chart.painItem", { day: days[i], before: p.before ?? "-", after: p.after ?? "-" })).join(", "),
  });
  specs.push({
    title: t_("chart.qualityTitle"), labels: weeks, xTitle: t_("chart.weekAxis"), yTitle: t_("chart.qualityAxis"), yMax: 100,
    series: [{ name: t_("chart.weeklyMean"), color: "#161", values: t.quality.map((q) => round(q.value)) }],
    desc: t.quality.map((q, i) => `${weeks[i]}: ${q.value === null ? t_("chart.noSession") : Math.round(q.value)}`).join(", "),
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
