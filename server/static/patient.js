// The patient page (kept out of the HTML: the Content-Security-Policy allows no inline script).
document.getElementById("logout").onclick = TR.logout;
let me, library = [];

// What this page says (one place, for a message catalogue later).
const SAY = {
  noProgram: "Your therapist has not prescribed a program yet.",
  perWeek: (n) => ` · ${n} session${n === 1 ? "" : "s"} a week`,
  item: (name, sets, reps) => `${name}: ${sets} × ${reps}`,
  sets: (sets, reps) => `${sets} set${sets === 1 ? "" : "s"} of ${reps} repetitions`,
  target: (deg) => `aim to move through about ${deg}°`,
  fromTherapist: (notes) => `From your therapist: ${notes}`,
  diary: "Pain diary entry",
  partial: "part of the exercises",
  interrupted: "stopped early (connection lost)",
  inProgress: "not finished",
  saved: "Saved. Thank you.",
  nobody: "Nobody else has opened your record yet.",
};

async function refresh() {
  const [programs, sessions, t] = await Promise.all([
    TR.api(`/api/patients/${me.id}/programs`), TR.api(`/api/patients/${me.id}/sessions`), TR.api(`/api/patients/${me.id}/trends`)]);
  const box = document.getElementById("program");
  const current = programs[programs.length - 1];
  document.getElementById("start-today").hidden = !current;  // the way into a live session
  if (!current) box.replaceChildren(TR.el("p", { class: "muted", text: SAY.noProgram }));
  else {
    const doc = current.document;
    box.replaceChildren(TR.el("p", {}, TR.el("strong", { text: doc.title }), SAY.perWeek(doc.sessions_per_week)),
      ...doc.exercises.map((e) => {
        const ex = library.find((x) => x.id === e.exercise) || { name: e.exercise, instructions: "", target_rom_deg: [] };
        const target = e.target_rom_deg ?? ex.target_rom_deg[0];
        return TR.el("div", { class: "card" }, TR.el("h3", { text: SAY.item(ex.name, e.sets, e.reps) }),
          TR.el("p", { class: "muted", text: SAY.sets(e.sets, e.reps) + (target ? `; ${SAY.target(Math.round(target))}` : "") }),
          TR.el("p", { text: ex.instructions }), ...(e.notes ? [TR.el("p", { class: "muted", text: e.notes })] : []));
      }),
      ...(doc.therapist_notes ? [TR.el("p", { class: "muted", text: SAY.fromTherapist(doc.therapist_notes) })] : []));
  }
  TR.drawCharts(document.getElementById("charts"), t, library);
  const names = Object.fromEntries(library.map((x) => [x.id, x.name]));
  const what = (x) => {
    if (x.status === "diary") return SAY.diary;
    const done = x.exercises.map((id) => names[id] || id).join(", ") || "-";
    const how = { partial: SAY.partial, interrupted: SAY.interrupted, in_progress: SAY.inProgress }[x.status];
    return how ? `${done} (${how})` : done;
  };
  document.querySelector("#history tbody").replaceChildren(...sessions.slice().reverse().map((x) => TR.el("tr", {},
    TR.el("td", { text: TR.fmtDay(x.started_at) }), TR.el("td", { text: what(x) }),
    TR.el("td", { text: x.status === "diary" ? "-" : String(x.repetitions) }), TR.el("td", { text: `${x.pain_before ?? "-"} / ${x.pain_after ?? "-"}` }))));
}

// The audit trail's actions, as a patient reads them.
const DID = {
  read: "viewed", export: "exported", watch: "watched live", prescribe: "changed your program",
  record: "recorded a session", "care_link.create": "became your therapist",
  "care_link.end": "stopped being your therapist", "account.deactivate": "closed your account",
  "account.activate": "reopened your account", denied: "was refused access to",
};

async function refreshAccess() {
  const rows = await TR.api(`/api/patients/${me.id}/access-log?limit=50`);
  const body = document.querySelector("#access tbody");
  if (!rows.length) {
    body.replaceChildren(TR.el("tr", {}, TR.el("td", { colspan: "3", class: "muted", text: SAY.nobody })));
    return;
  }
  body.replaceChildren(...rows.map((r) => TR.el("tr", {},
    TR.el("td", { text: `${TR.fmtDay(r.at)} ${new Date(r.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` }),
    TR.el("td", { text: `${r.who}${r.role ? ` (${r.role})` : ""}` }),
    TR.el("td", { text: `${DID[r.action] || r.action}${r.what ? `: ${r.what}` : ""}` }))));
}

document.getElementById("diary").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = document.getElementById("diary-msg");
  const num = (id) => { const v = document.getElementById(id).value; return v === "" ? null : Number(v); };
  try {
    await TR.api(`/api/patients/${me.id}/sessions`, { method: "POST", body: {
      pain_before: num("pain-before"), pain_after: num("pain-after"), rpe: num("rpe"), notes: document.getElementById("notes").value } });
    msg.className = "ok"; msg.textContent = SAY.saved;
    ev.target.reset();
    await refresh();
  } catch (e) { msg.className = "error"; msg.textContent = e.message; }
});

(async () => {
  me = await TR.me();
  document.getElementById("who").textContent = me.name;
  library = await TR.api("/api/exercises");
  await refresh();
  await refreshAccess();
})();
