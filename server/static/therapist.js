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

// A patient's page has its own address (?patient=ID): Back returns to the
// list, a reload or a shared link opens the same patient.
async function showPatient(p, remember = true) {
  if (remember && new URLSearchParams(location.search).get("patient") !== String(p.id)) {
    history.pushState({ patient: p.id }, "", `?patient=${p.id}`);
  }
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
    x.status === "diary" ? TR.el("td", { text: "-" })  // a diary entry: nothing measured to replay
      : TR.el("td", {}, TR.el("a", { href: `/session?id=${x.id}`, text: TR.t("therapist.details") }), " · ",
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

// The prescription editor: one card per exercise from the library, every
// field labelled; an empty field shows the library's default and keeps it.
// Only the Save button saves (Enter in a field does not); an exercise is
// prescribed once per side; a save another therapist overtook offers their
// version; under the editor, every version and what changed in it.
const SIDES = { auto: "therapist.sideAuto", left: "therapist.sideLeft", right: "therapist.sideRight" };
const TEMPO = ["up_s", "hold_s", "down_s"];
const num = (v) => (v === null || v === undefined || v === "" ? "" : TR.numbers.format(v));
const exerciseOf = (id) => library.find((x) => x.id === id) || { id, name: id, laterality: "bilateral" };
// "Curl (left)": an exercise as prescribed, its side when it has one
const entryName = (id, side) => {
  const name = exerciseOf(id).name;
  return !side || side === "auto" ? name : T("therapist.nameSide", { name, side: T(SIDES[side] || side) });
};
// the library's defaults of an exercise, by field (null: none known)
function defaultsOf(ex) {
  const [up, hold, down] = ex.tempo_s || [];
  return { target_rom_deg: ex.target_rom_deg ? ex.target_rom_deg[0] : null, up_s: up ?? null,
    hold_s: hold ?? null, down_s: down ?? null, rest_s: ex.rest_s ?? null };
}

function renderProgram(p, current) {
  const form = document.getElementById("program");
  const msg = document.getElementById("program-msg");
  // an edit after a save: "Saved as version N" no longer describes the form
  form.oninput = () => { if (msg.className === "ok") msg.textContent = ""; };
  const conflictBox = document.getElementById("program-conflict");
  const doc = current ? JSON.parse(JSON.stringify(current.document))
    : { title: T("therapist.defaultTitle"), sessions_per_week: 3, exercises: [] };
  const draft = (d) => (current ? { ...current, document: d } : { document: d, version: 0 });
  form.replaceChildren();
  const field = (id, label, input) => [TR.el("label", { for: id, text: label }), input];
  form.append(
    TR.el("p", { class: "muted", text: current && current.version ? T("therapist.version", { n: current.version }) : T("therapist.noProgram") }),
    ...field("prog-title", T("therapist.progTitle"), TR.el("input", { id: "prog-title", value: doc.title, maxlength: 200 })),
    ...field("prog-spw", T("therapist.spw"), TR.el("input", { id: "prog-spw", type: "number", min: 1, max: 14, value: doc.sessions_per_week })),
    ...field("prog-notes", T("therapist.programNotes"), TR.el("textarea", { id: "prog-notes", rows: 2, maxlength: 5000, text: doc.therapist_notes || "" })));
  const cards = TR.el("div", { class: "exercises" }, ...doc.exercises.map((e, i) => exerciseCard(e, i)));

  function exerciseCard(e, i) {
    const ex = exerciseOf(e.exercise), defaults = defaultsOf(ex), tempo = e.tempo || {};
    const hintId = `ex${i}-defaults`;
    const input = (key, label, min, max, value, step = 1) => {
      const id = `ex${i}-${key}`;
      const attrs = { id, type: "number", min, max, step, value: value ?? "", "data-key": key, "data-index": i };
      if (defaults[key] !== null && defaults[key] !== undefined) Object.assign(attrs, { placeholder: num(defaults[key]), "aria-describedby": hintId });
      return TR.el("div", { class: "field" }, TR.el("label", { for: id, text: label }), TR.el("input", attrs));
    };
    const side = TR.el("select", { id: `ex${i}-side`, "data-key": "side", "data-index": i });
    for (const v of ex.laterality === "unilateral" ? ["auto", "left", "right"] : ["auto"]) {
      const o = TR.el("option", { value: v, text: T(SIDES[v]) });
      if ((e.side || "auto") === v) o.selected = true;
      side.append(o);
    }
    const d = defaults;
    const hint = d.up_s === null ? [] : [TR.el("p", { id: hintId, class: "hint", text: T("therapist.defaults", {
      target: num(d.target_rom_deg), up: num(d.up_s), hold: num(d.hold_s), down: num(d.down_s), rest: num(d.rest_s) }) })];
    return TR.el("fieldset", { class: "exercise", id: `ex${i}` },
      TR.el("legend", { text: T("therapist.exerciseN", { i: i + 1, name: entryName(e.exercise, e.side) }) }),
      ...hint,
      TR.el("div", { class: "fields" },
        TR.el("div", { class: "field" }, TR.el("label", { for: `ex${i}-side`, text: T("therapist.col.side") }), side),
        input("sets", T("therapist.col.sets"), 1, 20, e.sets), input("reps", T("therapist.col.reps"), 1, 100, e.reps),
        input("target_rom_deg", T("therapist.targetLabel"), 0, 180, e.target_rom_deg),
        input("rest_s", T("therapist.restLabel"), 0, 900, e.rest_s, 5)),
      TR.el("fieldset", { class: "tempo" }, TR.el("legend", { text: T("therapist.tempoLegend") }),
        TR.el("div", { class: "fields" }, input("up_s", T("therapist.tempo.up_s"), 0.5, 30, tempo.up_s, 0.5),
          input("hold_s", T("therapist.tempo.hold_s"), 0, 60, tempo.hold_s, 0.5),
          input("down_s", T("therapist.tempo.down_s"), 0.5, 30, tempo.down_s, 0.5))),
      TR.el("label", { for: `ex${i}-notes`, text: T("therapist.exerciseNotes") }),
      TR.el("textarea", { id: `ex${i}-notes`, rows: 2, maxlength: 2000, "data-key": "notes", "data-index": i, text: e.notes || "" }),
      TR.el("p", {}, TR.el("button", { type: "button", class: "link", text: T("therapist.removeX", { name: entryName(e.exercise, e.side) }), onclick: () => {
        collect(doc); doc.exercises.splice(i, 1); renderProgram(p, draft(doc)); } })));
  }

  // Add: the exercise on the first side not yet prescribed (unilateral ones
  // may be prescribed left and right); refused, in words, when none is left.
  const pick = TR.el("select", { id: "add-exercise", "aria-describedby": "add-msg" }, ...library.map((x) => TR.el("option", { value: x.id, text: x.name })));
  const addMsg = TR.el("p", { id: "add-msg", role: "status", "aria-live": "polite" });
  pick.onchange = () => { addMsg.textContent = ""; };
  form.append(cards,
    ...field("add-exercise", T("therapist.addLabel"), pick), pickPreview(pick),
    TR.el("p", {}, TR.el("button", { type: "button", id: "add", text: T("therapist.add"), onclick: () => {
      collect(doc);
      const ex = exerciseOf(pick.value);
      const taken = doc.exercises.filter((x) => x.exercise === ex.id).map((x) => x.side || "auto");
      const side = (ex.laterality === "unilateral" ? ["auto", "left", "right"] : ["auto"]).find((v) => !taken.includes(v));
      if (!side) { addMsg.className = "error"; addMsg.textContent = T("therapist.already", { name: ex.name }); return; }
      doc.exercises.push({ exercise: ex.id, sets: 2, reps: 10, ...(side === "auto" ? {} : { side }) });
      renderProgram(p, draft(doc));
      document.getElementById("add-exercise").focus(); } })),
    addMsg,
    TR.el("button", { type: "submit", id: "save-program", text: T(current && current.version ? "therapist.saveVersion" : "therapist.prescribe") }));

  // The document as the fields say; an empty field keeps the default (left
  // out), and a tempo given in part takes the library's for the rest.
  function collect(target) {
    target.title = document.getElementById("prog-title").value;
    target.sessions_per_week = Number(document.getElementById("prog-spw").value);
    const notes = document.getElementById("prog-notes").value.trim();
    if (notes) target.therapist_notes = notes; else delete target.therapist_notes;
    form.querySelectorAll("[data-key]").forEach((inp) => {
      const e = target.exercises[+inp.dataset.index];
      const key = inp.dataset.key;
      if (key === "side") { if (inp.value === "auto") delete e.side; else e.side = inp.value; return; }
      if (key === "notes") { if (inp.value.trim()) e.notes = inp.value.trim(); else delete e.notes; return; }
      const v = inp.value === "" ? null : Number(inp.value);
      if (TEMPO.includes(key)) {
        e.tempo = e.tempo || {};
        if (v === null) delete e.tempo[key]; else e.tempo[key] = v;
      } else if (v === null) delete e[key]; else e[key] = v;
    });
    for (const e of target.exercises) {
      if (!e.tempo) continue;
      if (!Object.keys(e.tempo).length) { delete e.tempo; continue; }
      const d = defaultsOf(exerciseOf(e.exercise));
      for (const k of TEMPO) if (e.tempo[k] === undefined && d[k] !== null) e.tempo[k] = d[k];
    }
    return target;
  }

  // the same exercise on the same side twice, in words (null: none)
  function duplicate(exercises) {
    const seen = new Map();
    for (const [i, e] of exercises.entries()) {
      const key = `${e.exercise}/${e.side || "auto"}`;
      if (seen.has(key)) return { i, text: T("therapist.duplicate", { name: entryName(e.exercise, e.side), first: seen.get(key) + 1, again: i + 1 }) };
      seen.set(key, i);
    }
    return null;
  }

  // Enter in a field does not save: a number typed and Enter is not a prescription
  form.onkeydown = (ev) => { if (ev.key === "Enter" && ev.target.tagName === "INPUT") ev.preventDefault(); };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const next = collect(JSON.parse(JSON.stringify(doc)));
    conflictBox.hidden = true;
    const twice = duplicate(next.exercises);
    if (twice) {
      msg.className = "error"; msg.textContent = twice.text;
      document.getElementById(`ex${twice.i}-side`).focus();
      return;
    }
    try {
      const saved = current && current.version
        ? await TR.api(`/api/programs/${current.program_id}`, { method: "PUT", body: { document: next, based_on_version: current.version } })
        : await TR.api(`/api/patients/${p.id}/programs`, { method: "POST", body: { document: next } });
      msg.className = "ok"; msg.textContent = T("therapist.savedAs", { n: saved.version });
      renderProgram(p, saved);
    } catch (e) {
      msg.className = "error";
      if (e.status !== 409 || !e.body || !e.body.version) { msg.textContent = e.message; return; }
      // another therapist saved a newer version: say who and when, offer it
      const when = TR.fmtTime(e.body.saved_at);
      msg.textContent = e.body.saved_by ? T("therapist.conflictBy", { n: e.body.version, by: e.body.saved_by, when })
        : T("therapist.conflict", { n: e.body.version, when });
      conflictBox.hidden = false;
      renderHistory(current.program_id);  // what the other version changed, before loading it
      document.getElementById("load-latest").onclick = async () => {
        const latest = (await TR.api(`/api/programs/${current.program_id}`)).latest;
        conflictBox.hidden = true;
        renderProgram(p, latest);
        msg.className = "ok"; msg.textContent = T("therapist.loadedLatest", { n: latest.version });
        document.getElementById("prog-title").focus();
      };
    }
  };
  if (current && current.program_id) renderHistory(current.program_id);
  else document.getElementById("program-history").replaceChildren();
}

// ----------------------------------------------------------------- what changed, version by version
const short = (text) => (text.length > 120 ? `${text.slice(0, 119)}…` : text);
// a value of a field in words: the library's default where none is given
function valueText(field, v) {
  if (v === null || v === undefined) return T("therapist.value.default");
  if (field === "side") return T(SIDES[v] || v);
  if (field === "target_rom_deg") return T("therapist.value.deg", { v });
  if (field === "rest_s") return T("therapist.value.s", { v });
  if (field === "tempo") return T("therapist.value.tempo", { up: v.up_s, hold: v.hold_s, down: v.down_s });
  return num(v);
}
function changeText(c) {
  if (c.kind === "created") return T("therapist.change.created");
  if (c.kind === "program_changed") {
    if (c.field === "therapist_notes") return c.after ? T("therapist.change.programNotes", { after: short(c.after) }) : T("therapist.change.programNotesRemoved");
    if (c.field === "title") return T("therapist.change.title", { before: c.before, after: c.after });
    return T("therapist.change.sessionsPerWeek", { before: c.before, after: c.after });
  }
  const name = entryName(c.exercise, c.side);
  if (c.kind === "exercise_added") return T("therapist.change.added", { name });
  if (c.kind === "exercise_removed") return T("therapist.change.removed", { name });
  if (c.field === "notes") return c.after ? T("therapist.change.notes", { name, after: short(c.after) }) : T("therapist.change.notesRemoved", { name });
  if (c.field === "calibration") return T("therapist.change.calibration", { name });
  const what = TR.has(`therapist.fieldName.${c.field}`) ? T(`therapist.fieldName.${c.field}`) : c.field;
  return T("therapist.change.field", { name, field: what, before: valueText(c.field, c.before), after: valueText(c.field, c.after) });
}
async function renderHistory(programId) {
  const list = document.getElementById("program-history");
  const versions = await TR.api(`/api/programs/${programId}/versions`);
  list.replaceChildren(...versions.map((v) => TR.el("li", {},
    TR.el("span", { class: "version-head", text: T(v.author ? "therapist.historyBy" : "therapist.historyItem",
      { n: v.version, by: v.author || "", when: TR.fmtTime(v.created_at) }) }),
    TR.el("ul", {}, ...v.changes.map((c) => TR.el("li", { text: changeText(c) }))))));
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
  const opened = () => patients.find((p) => String(p.id) === new URLSearchParams(location.search).get("patient"));
  if (opened()) showPatient(opened(), false);
  window.addEventListener("popstate", () => {
    const p = opened();
    if (p) showPatient(p, false); else document.getElementById("detail").hidden = true;
  });
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

