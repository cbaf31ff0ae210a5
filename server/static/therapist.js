// The therapist page (kept out of the HTML: the Content-Security-Policy allows no inline script).
let library = [];
document.getElementById("logout").onclick = TR.logout;

// Every word of this page is the catalogue's (TR.t, in the therapist's language).
const T = TR.t;
const word = (prefix, key) => (TR.has(`${prefix}.${key}`) ? T(`${prefix}.${key}`) : key.replaceAll("_", " "));
const weekText = (week, a) => T("therapist.week", { date: TR.fmtWeek(week), done: a.done, prescribed: a.prescribed })
  + (a.partial ? TR.tn("therapist.weekPartial", a.partial) : "");

// An alert in words: the catalogue's message with the alert's values, dates
// and weeks in the reader's format (the server's English message otherwise).
function alertText(a) {
  if (!TR.has(`alert.${a.key}`)) return a.message;
  const v = a.values, long = (d) => d.toLocaleDateString(TR.lang, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  const ex = library.find((x) => x.id === v.exercise);
  return T(`alert.${a.key}`, { ...v, name: ex ? ex.name : v.exercise,
    day: v.day && long(new Date(`${v.day}T00:00:00Z`)), week: v.week && long(TR.weekStart(v.week)),
    weekFrom: v.week_from && long(TR.weekStart(v.week_from)), weekTo: v.week_to && long(TR.weekStart(v.week_to)) });
}

// Each alert with the sessions behind it (links to their pages) and, until a
// therapist acknowledges it, a button to do so; acknowledged ones say who and when.
function renderAlerts(p, list, sessions) {
  const box = document.getElementById("alerts");
  if (!list.length) { box.replaceChildren(TR.el("li", { class: "muted", text: T("therapist.noAlerts") })); return; }
  const day = (id) => { const x = sessions.find((y) => y.id === id); return x ? TR.fmtDay(x.started_at) : `#${id}`; };
  box.replaceChildren(...list.map((a) => {
    const li = TR.el("li", { class: a.acknowledged ? "muted" : "alert" }, TR.el("span", { text: alertText(a) }));
    if (a.sessions.length) {
      li.append(" · ", TR.el("span", { text: T("therapist.alertSessions") }), " ");
      a.sessions.forEach((id, i) => li.append(i ? ", " : "", TR.el("a", { href: `/session?id=${id}`, text: day(id) })));
    }
    if (a.acknowledged) {
      li.append(" · ", TR.el("span", { text: T("therapist.acknowledged", { by: a.acknowledged.by || "-", day: TR.fmtDay(a.acknowledged.at) }) }));
    } else {
      li.append(" · ", TR.el("button", { type: "button", class: "link", text: T("therapist.acknowledge"), onclick: async () => {
        try {
          await TR.api(`/api/patients/${p.id}/alerts/acknowledge`, { method: "POST", body: { alert_id: a.id } });
          renderAlerts(p, (await TR.api(`/api/patients/${p.id}/trends`)).alerts, sessions);
          document.getElementById("alerts").focus();
        } catch (e) { li.append(" ", TR.el("span", { class: "error", text: e.message })); }
      } }));
    }
    return li;
  }));
}

async function showPatient(p) {
  const detail = document.getElementById("detail");
  detail.hidden = false;
  const h = document.getElementById("detail-h");
  h.textContent = p.is_demo && !p.name.includes("demo") ? T("therapist.demo", { name: p.name }) : p.name;
  const [t, programs, sessions] = await Promise.all([
    TR.api(`/api/patients/${p.id}/trends`), TR.api(`/api/patients/${p.id}/programs`), TR.api(`/api/patients/${p.id}/sessions`)]);
  renderAlerts(p, t.alerts, sessions);
  TR.drawCharts(document.getElementById("charts"), t, library);
  renderProgram(p, programs[programs.length - 1]);
  document.querySelector("#sessions tbody").replaceChildren(...sessions.slice().reverse().map((x) => TR.el("tr", {},
    TR.el("td", { text: TR.fmtDay(x.started_at) }), TR.el("td", { text: word("status", x.status) }),
    TR.el("td", { text: x.status === "diary" ? "-" : String(x.repetitions) }),
    TR.el("td", { text: `${x.pain_before ?? "-"} / ${x.pain_after ?? "-"}` }), TR.el("td", { text: x.rpe ?? "-" }),
    TR.el("td", {}, TR.el("a", { href: `/session?id=${x.id}`, text: TR.t("therapist.details") }), " · ",
      TR.el("a", { href: `/api/sessions/${x.id}/export.csv`, text: "CSV" })))));
  document.getElementById("csv").href = `/api/patients/${p.id}/export.csv`;
  document.getElementById("fhir").href = `/api/patients/${p.id}/fhir`;
  document.getElementById("patient-language-label").textContent = T("therapist.patientLanguage", { name: p.name });
  const langMsg = document.getElementById("patient-language-msg");
  langMsg.textContent = "";
  TR.languageSelect(document.getElementById("patient-language"), p.language, async (language) => {
    try {
      await TR.api(`/api/patients/${p.id}/language`, { method: "PUT", body: { language } });
      p.language = language;
      langMsg.className = "ok"; langMsg.textContent = T("common.languageSaved");
    } catch (e) { langMsg.className = "error"; langMsg.textContent = e.message; }
  });
  h.focus();
}

// The prescription editor: from the exercise library, with sets, reps, side,
// target ROM and tempo per exercise. Saving makes a new version (or program).
function renderProgram(p, current) {
  const form = document.getElementById("program");
  const msg = document.getElementById("program-msg");
  const doc = current ? JSON.parse(JSON.stringify(current.document))
    : { title: T("therapist.defaultTitle"), sessions_per_week: 3, exercises: [] };
  const draft = (d) => (current ? { ...current, document: d } : { document: d, version: 0 });
  form.replaceChildren();
  const field = (id, label, input) => [TR.el("label", { for: id, text: label }), input];
  form.append(
    TR.el("p", { class: "muted", text: current && current.version ? T("therapist.version", { n: current.version }) : T("therapist.noProgram") }),
    ...field("prog-title", T("therapist.progTitle"), TR.el("input", { id: "prog-title", value: doc.title })),
    ...field("prog-spw", T("therapist.spw"), TR.el("input", { id: "prog-spw", type: "number", min: 1, max: 14, value: doc.sessions_per_week })));
  const cols = ["exercise", "side", "sets", "reps", "target", "tempo"].map((c) => T(`therapist.col.${c}`));
  // the last column's header is for screen readers (its buttons say what they remove)
  const remove = TR.el("th", { scope: "col", "data-label": "" }, TR.el("span", { class: "offscreen", text: T("therapist.remove") }));
  const table = TR.stack(TR.el("table", {}, TR.el("thead", {}, TR.el("tr", {}, ...cols.map((c) => TR.el("th", { scope: "col", text: c })), remove))));
  const body = TR.el("tbody");
  doc.exercises.forEach((e, i) => {
    const ex = library.find((x) => x.id === e.exercise) || { name: e.exercise, laterality: "bilateral" };
    const num = (key, min, max, value, step = 1) => {
      const id = `ex${i}-${key}`;
      return [TR.el("label", { for: id, text: T(`therapist.field.${key}`, { name: ex.name }), class: "offscreen" }),
        TR.el("input", { id, type: "number", min, max, step, value: value ?? "", "data-key": key, "data-index": i })];
    };
    const side = TR.el("select", { id: `ex${i}-side`, "data-key": "side", "data-index": i });
    for (const v of ex.laterality === "unilateral" ? ["auto", "left", "right"] : ["auto"]) {
      const o = TR.el("option", { value: v, text: T({ auto: "therapist.sideAuto", left: "therapist.sideLeft", right: "therapist.sideRight" }[v]) });
      if ((e.side || "auto") === v) o.selected = true;
      side.append(o);
    }
    const tempo = e.tempo || {};
    body.append(TR.el("tr", {}, TR.el("td", { text: ex.name }),
      TR.el("td", {}, TR.el("label", { for: `ex${i}-side`, text: T("therapist.field.side", { name: ex.name }), class: "offscreen" }), side),
      TR.el("td", {}, ...num("sets", 1, 20, e.sets)), TR.el("td", {}, ...num("reps", 1, 100, e.reps)),
      TR.el("td", {}, ...num("target_rom_deg", 0, 180, e.target_rom_deg)),
      TR.el("td", {}, ...num("up_s", 0.5, 30, tempo.up_s, 0.5), ...num("hold_s", 0, 60, tempo.hold_s, 0.5),
        ...num("down_s", 0.5, 30, tempo.down_s, 0.5)),
      TR.el("td", {}, TR.el("button", { type: "button", class: "link", text: T("therapist.removeX", { name: ex.name }), onclick: () => {
        collect(doc); doc.exercises.splice(i, 1); renderProgram(p, draft(doc)); } }))));
  });
  table.append(body);
  const pick = TR.el("select", { id: "add-exercise" }, ...library.map((x) => TR.el("option", { value: x.id, text: x.name })));
  form.append(table,
    ...field("add-exercise", T("therapist.addLabel"), pick), pickPreview(pick),
    TR.el("p", {}, TR.el("button", { type: "button", id: "add", text: T("therapist.add"), onclick: () => {
      collect(doc); doc.exercises.push({ exercise: pick.value, sets: 2, reps: 10 });
      renderProgram(p, draft(doc));
      document.getElementById("add-exercise").focus(); } })),
    TR.el("button", { type: "submit", text: T(current && current.version ? "therapist.saveVersion" : "therapist.prescribe") }));

  function collect(target) {
    target.title = document.getElementById("prog-title").value;
    target.sessions_per_week = Number(document.getElementById("prog-spw").value);
    form.querySelectorAll("[data-key]").forEach((inp) => {
      const e = target.exercises[+inp.dataset.index];
      const key = inp.dataset.key;
      if (key === "side") { if (inp.value === "auto") delete e.side; else e.side = inp.value; return; }
      const v = inp.value === "" ? null : Number(inp.value);
      if (["up_s", "hold_s", "down_s"].includes(key)) {
        e.tempo = e.tempo || {};
        if (v === null) delete e.tempo[key]; else e.tempo[key] = v;
        if (!Object.keys(e.tempo).length) delete e.tempo;
      } else if (v === null) delete e[key]; else e[key] = v;
    });
    return target;
  }

  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const next = collect(JSON.parse(JSON.stringify(doc)));
    try {
      const saved = current && current.version
        ? await TR.api(`/api/programs/${current.program_id}`, { method: "PUT", body: { document: next, based_on_version: current.version } })
        : await TR.api(`/api/patients/${p.id}/programs`, { method: "POST", body: { document: next } });
      msg.className = "ok"; msg.textContent = T("therapist.savedAs", { n: saved.version });
      renderProgram(p, saved);
    } catch (e) { msg.className = "error"; msg.textContent = e.message; }
  };
}

async function refreshLive(patients) {
  const live = await TR.api("/api/live/sessions");
  const names = Object.fromEntries(patients.map((p) => [p.id, p.name]));
  const list = document.getElementById("live");
  if (!live.length) { list.replaceChildren(TR.el("li", { class: "muted", text: T("therapist.noLive") })); return; }
  list.replaceChildren(...live.map((x) => {
    const item = T("therapist.liveItem", { name: names[x.patient_id] || T("therapist.livePatient", { id: x.patient_id }), state: word("state", x.state) });
    return TR.el("li", {}, TR.el("a", { href: `/watch?session=${x.id}`, text: x.video ? T("therapist.videoShared", { item }) : item }));
  }));
}

(async () => {
  const me = await TR.me();
  document.getElementById("who").textContent = me.name;
  TR.languageSelect(document.getElementById("language"), me.language, async (language) => {
    try {
      await TR.api("/api/auth/language", { method: "PUT", body: { language } });
      location.reload();  // every word again, the exercises' too, in the new language
    } catch (e) { const msg = document.getElementById("language-msg"); msg.className = "error"; msg.textContent = e.message; }
  });
  library = await TR.api("/api/exercises");
  // an exercise taught on this page (learn.js) can be prescribed at once
  document.addEventListener("exercises-changed", async () => { library = await TR.api("/api/exercises"); });
  const patients = await TR.api("/api/patients");
  refreshLive(patients);
  setInterval(() => refreshLive(patients), 5000);
  await listPatients(patients);
  setUpInvite();
  // find and order: the server filters and sorts (GET /api/patients?q=&sort=)
  let typing;
  document.getElementById("patient-search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => listPatients(), 250); });
  document.getElementById("patient-sort").addEventListener("change", () => listPatients());
  document.getElementById("find").addEventListener("submit", (e) => { e.preventDefault(); listPatients(); });
})();

// The exercise chosen in the program editor as the patient will see it: its
// demonstration (one figure, kept across the editor's redrawing).
let preview = null;
function pickPreview(pick) {
  if (!preview) {
    const canvas = TR.el("canvas", { role: "img", "aria-label": T("demo.caption") });
    const button = TR.el("button", { type: "button", id: "pick-demo-play", text: T("demo.pause") });
    const figure = TR.el("figure", { id: "pick-demo", class: "exercise-demo", hidden: "" }, canvas,
      TR.el("figcaption", {}, TR.el("span", { class: "muted", text: T("demo.caption") }), button));
    preview = { figure, demo: TR.demonstration(canvas, button) };
  }
  const show = async () => {
    const ex = library.find((x) => x.id === pick.value);
    const shown = await preview.demo.show(pick.value, ex ? ex.name : pick.value);
    if (shown === null) return;
    preview.figure.hidden = !shown;
    preview.demo.redraw();
  };
  pick.addEventListener("change", show);
  if (pick.value) show();
  return preview.figure;
}

const unacknowledged = (p) => p.alerts.filter((a) => !a.acknowledged);  // alerts no therapist acknowledged yet

async function listPatients(given) {
  const q = document.getElementById("patient-search").value.trim();
  const sort = document.getElementById("patient-sort").value;
  const patients = given || await TR.api(`/api/patients?${new URLSearchParams({ q, sort })}`);
  const tbody = document.querySelector("#patients tbody");
  tbody.replaceChildren(...patients.map((p) => TR.el("tr", {},
    TR.el("td", {}, TR.el("button", { type: "button", class: "link", text: p.name, onclick: () => showPatient(p) })),
    TR.el("td", { text: String(p.sessions) }),
    TR.el("td", { text: p.last_session_at ? TR.fmtDay(p.last_session_at) : "-" }),
    TR.el("td", { text: p.adherence.map((a) => weekText(a.week, a)).join(", ") || "-" }),
    TR.el("td", { class: unacknowledged(p).length ? "alert" : "muted", text: unacknowledged(p).length ? [...new Set(unacknowledged(p).map((a) => word("alert", a.kind)))].join(", ") : T("common.none") }))));
  if (!patients.length) tbody.append(TR.el("tr", {}, TR.el("td", { colspan: 5, class: "muted", text: T(q ? "therapist.noMatch" : "therapist.noPatients") })));
  document.getElementById("patient-count").textContent = TR.tn("therapist.shown", patients.length);
}

// Invite a new patient: their account in this therapist's care, and a link
// (once, for a week) where they choose their own password. Nothing is e-mailed:
// the therapist gives the link to the patient.
function setUpInvite() {
  const $ = (id) => document.getElementById(id);
  TR.languageSelect($("invite-language"), TR.lang, () => {});
  $("invite").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = $("invite-msg");
    msg.className = ""; msg.textContent = ""; $("invite-done").hidden = true;
    const name = $("invite-name").value.trim(), email = $("invite-email").value.trim();
    if (!name || !email) { msg.className = "error"; msg.textContent = T("therapist.inviteMissing"); return; }
    try {
      const r = await TR.api("/api/patients/invite", { method: "POST", body: { name, email, language: $("invite-language").value } });
      $("invite-link").value = location.origin + r.invite_path;
      $("invite-done").hidden = false;
      msg.textContent = TR.tn("therapist.invited", r.valid_days, { name: r.patient.name });
      $("invite-link").focus(); $("invite-link").select();
      await listPatients();
    } catch (e) { msg.className = "error"; msg.textContent = e.status === 409 ? T("therapist.inviteExists") : e.message; }
  });
  $("invite-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("invite-link").value); $("invite-msg").textContent = T("therapist.inviteCopied"); }
    catch { $("invite-link").select(); }  // no clipboard here: selected, for Ctrl+C
  });
}

