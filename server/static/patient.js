// The patient page (kept out of the HTML: the Content-Security-Policy allows no inline script).
document.getElementById("logout").onclick = TR.logout;
let me, library = [];

async function refresh() {
  const [programs, sessions, t] = await Promise.all([
    TR.api(`/api/patients/${me.id}/programs`), TR.api(`/api/patients/${me.id}/sessions`), TR.api(`/api/patients/${me.id}/trends`)]);
  const box = document.getElementById("program");
  const current = programs[programs.length - 1];
  document.getElementById("start-today").hidden = !current;  // the way into a live session
  if (!current) box.replaceChildren(TR.el("p", { class: "muted", text: TR.t("patient.noProgram") }));
  else {
    const doc = current.document;
    box.replaceChildren(TR.el("p", {}, TR.el("strong", { text: doc.title }), TR.tn("patient.perWeek", doc.sessions_per_week)),
      ...doc.exercises.map((e) => {
        const ex = library.find((x) => x.id === e.exercise) || { name: e.exercise, instructions: "", target_rom_deg: [] };
        const target = e.target_rom_deg ?? ex.target_rom_deg[0];
        return TR.el("div", { class: "card" }, TR.el("h3", { text: TR.t("patient.item", { name: ex.name, sets: e.sets, reps: e.reps }) }),
          TR.el("p", { class: "muted", text: TR.tn("patient.sets", e.sets, { reps: e.reps }) + (target ? `; ${TR.t("patient.target", { deg: Math.round(target) })}` : "") }),
          TR.el("p", { text: ex.instructions }), ...(e.notes ? [TR.el("p", { class: "muted", text: e.notes })] : []));
      }),
      ...(doc.therapist_notes ? [TR.el("p", { class: "muted", text: TR.t("patient.fromTherapist", { notes: doc.therapist_notes }) })] : []));
  }
  TR.drawCharts(document.getElementById("charts"), t, library);
  const names = Object.fromEntries(library.map((x) => [x.id, x.name]));
  const what = (x) => {
    if (x.status === "diary") return TR.t("patient.diary");
    const done = x.exercises.map((id) => names[id] || id).join(", ") || "-";
    const how = { partial: "patient.partial", interrupted: "patient.interrupted", in_progress: "patient.inProgress" }[x.status];
    return how ? `${done} (${TR.t(how)})` : done;
  };
  document.querySelector("#history tbody").replaceChildren(...sessions.slice().reverse().map((x) => TR.el("tr", {},
    TR.el("td", { text: TR.fmtDay(x.started_at) }), TR.el("td", { text: what(x) }),
    TR.el("td", { text: x.status === "diary" ? "-" : String(x.repetitions) }), TR.el("td", { text: `${x.pain_before ?? "-"} / ${x.pain_after ?? "-"}` }))));
}

// Who has seen my record, in words: the server names the action and the kind
// of record touched (and its session's date, exercise, therapist or language);
// the catalogue words them. Ten at a time, newest first.
const PAGE = 10;
let accessShown = [];
function didText(r) {
  const exercise = r.exercise && library.find((x) => x.id === r.exercise);
  const language = r.language && TR.languages.find((l) => l.code === r.language);
  const params = {
    date: r.record_at && TR.fmtDay(r.record_at), exercise: exercise && TR.exNameInSentence(exercise.id, exercise.name),
    therapist: r.therapist, language: language && language.name };
  const kind = r.record_kind === "alert" && !r.exercise ? "alertSession" : r.record_kind;
  const needs = { session: ["date"], movement: ["date", "exercise"], live_session: ["date"], session_csv: ["date"],
    live_video: ["date"], live_feed: ["date"], care_link: ["therapist"], language: ["language"],
    alert: ["exercise"], alertSession: ["date"] }[kind] || [];
  const specific = `access.${r.action}.${kind}`;
  if (TR.has(specific) && needs.every((k) => params[k])) return TR.t(specific, params);
  return TR.has(`access.${r.action}`) ? TR.t(`access.${r.action}`) : TR.t("access.other");
}
async function refreshAccess(more = false) {
  const before = more && accessShown.length ? `&before_id=${accessShown[accessShown.length - 1].id}` : "";
  const rows = await TR.api(`/api/patients/${me.id}/access-log?limit=${PAGE + 1}${before}`);
  accessShown = [...(more ? accessShown : []), ...rows.slice(0, PAGE)];
  document.getElementById("access-more").hidden = rows.length <= PAGE;
  const body = document.querySelector("#access tbody");
  if (!accessShown.length) {
    body.replaceChildren(TR.el("tr", {}, TR.el("td", { colspan: "3", class: "muted", text: TR.t("patient.nobody") })));
    return;
  }
  body.replaceChildren(...accessShown.map((r) => TR.el("tr", {},
    TR.el("td", { text: TR.fmtTime(r.at) }),
    TR.el("td", { text: r.role ? TR.t("patient.whoRole", { who: r.who, role: TR.has(`role.${r.role}`) ? TR.t(`role.${r.role}`) : r.role }) : r.who }),
    TR.el("td", { text: didText(r) }))));
}
document.getElementById("access-more").onclick = () => refreshAccess(true);

document.getElementById("diary").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = document.getElementById("diary-msg");
  const num = (id) => { const v = document.getElementById(id).value; return v === "" ? null : Number(v); };
  try {
    await TR.api(`/api/patients/${me.id}/sessions`, { method: "POST", body: {
      pain_before: num("pain-before"), pain_after: num("pain-after"), rpe: num("rpe"), notes: document.getElementById("notes").value } });
    msg.className = "ok"; msg.textContent = TR.t("patient.saved");
    ev.target.reset();
    await refresh();
  } catch (e) { msg.className = "error"; msg.textContent = e.message; }
});

(async () => {
  me = await TR.me();
  document.getElementById("who").textContent = me.name;
  TR.languageSelect(document.getElementById("language"), me.language, async (language) => {
    const msg = document.getElementById("language-msg");
    try {
      await TR.api("/api/auth/language", { method: "PUT", body: { language } });
      location.reload();  // every word again, the exercises' too, in the new language
    } catch (e) { msg.className = "error"; msg.textContent = e.message; }
  });
  library = await TR.api("/api/exercises");
  await refresh();
  await refreshAccess();
})();
