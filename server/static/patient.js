// The patient page (kept out of the HTML: the Content-Security-Policy allows no inline script).
document.getElementById("logout").onclick = TR.logout;
let me, library = [];

async function refresh() {
  const [programs, sessions, t] = await Promise.all([
    TR.api(`/api/patients/${me.id}/programs`), TR.api(`/api/patients/${me.id}/sessions`), TR.api(`/api/patients/${me.id}/trends`)]);
  const box = document.getElementById("program");
  const current = programs[programs.length - 1];
  if (!current) box.replaceChildren(TR.el("p", { class: "muted", text: "Your therapist has not prescribed a program yet." }));
  else {
    const doc = current.document;
    box.replaceChildren(TR.el("p", {}, TR.el("strong", { text: doc.title }), ` · ${doc.sessions_per_week} sessions a week`),
      ...doc.exercises.map((e) => {
        const ex = library.find((x) => x.id === e.exercise) || { name: e.exercise, instructions: "" };
        return TR.el("div", { class: "card" }, TR.el("h3", { text: `${ex.name}: ${e.sets} × ${e.reps}` }),
          TR.el("p", { text: ex.instructions }), ...(e.notes ? [TR.el("p", { class: "muted", text: e.notes })] : []));
      }),
      ...(doc.therapist_notes ? [TR.el("p", { class: "muted", text: `From your therapist: ${doc.therapist_notes}` })] : []));
  }
  document.getElementById("charts").replaceChildren(TR.trendCharts(t, library));
  document.querySelector("#history tbody").replaceChildren(...sessions.slice().reverse().map((x) => TR.el("tr", {},
    TR.el("td", { text: TR.fmtDay(x.started_at) }), TR.el("td", { text: x.exercises.join(", ") || (x.source === "diary" ? "diary entry" : "-") }),
    TR.el("td", { text: String(x.repetitions) }), TR.el("td", { text: `${x.pain_before ?? "-"} / ${x.pain_after ?? "-"}` }))));
}

document.getElementById("diary").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = document.getElementById("diary-msg");
  const num = (id) => { const v = document.getElementById(id).value; return v === "" ? null : Number(v); };
  try {
    await TR.api(`/api/patients/${me.id}/sessions`, { method: "POST", body: {
      pain_before: num("pain-before"), pain_after: num("pain-after"), rpe: num("rpe"), notes: document.getElementById("notes").value } });
    msg.className = "ok"; msg.textContent = "Saved. Thank you.";
    ev.target.reset();
    await refresh();
  } catch (e) { msg.className = "error"; msg.textContent = e.message; }
});

(async () => {
  me = await TR.me();
  document.getElementById("who").textContent = me.name;
  library = await TR.api("/api/exercises");
  await refresh();
})();
