// One session's page, for the patient and their therapists: the work against
// the prescription, each repetition (ROM against the target, faults in words),
// and a replay of the movement as a skeleton from the stored landmarks (never
// video). Kept out of the HTML: the Content-Security-Policy allows no inline script.
"use strict";
const $ = (id) => document.getElementById(id);
$("logout").onclick = TR.logout;

// Every word is the catalogue's (TR.t, in the reader's language).
const T = TR.t;
const SAY = {
  title: (day) => T("session.title", { day }),
  facts: (x) => [T("session.status", { status: T(`status.${x.status}`) }), TR.tn("session.repetitions", x.repetitions),
    x.pain_before == null && x.pain_after == null ? T("session.noPain")
      : x.pain_after == null ? T("session.painBefore", { before: x.pain_before })
        : x.pain_before == null ? T("session.painAfter", { after: x.pain_after })
          : T("session.pain", { before: x.pain_before, after: x.pain_after }),
    x.rpe == null ? T("session.noEffort") : T("session.effort", { rpe: x.rpe })].join(" · "),
  work: (w) => (w.sets ? T("session.work", { name: TR.exName(w.exercise_id, w.name), sets: w.done_sets, of: w.sets, reps: w.done_reps, planned: w.planned_reps })
    : TR.tn("session.extra", w.done_reps, { name: TR.exName(w.exercise_id, w.name) }))
    + (w.mean_rom_deg != null ? T("session.meanRom", { deg: Math.round(w.mean_rom_deg) }) : "")
    + (w.target_rom_deg ? T("session.target", { deg: Math.round(w.target_rom_deg) }) : ""),
  clock: (t, end) => T("session.clock", { t: Math.round(t * 10) / 10, end: Math.round(end * 10) / 10 }),
  share: (r) => r.target_share == null ? "-" : T("watch.share", { pct: Math.round(100 * r.target_share), deg: Math.round(r.target_rom_deg) }),
};

const state = { library: [] };
const id = Number(new URLSearchParams(location.search).get("id"));

function nameOf(exerciseId) {
  const ex = state.library.find((e) => e.id === exerciseId);
  return TR.exName(exerciseId, ex ? ex.name : exerciseId);
}

// The replay: the shared skeleton player (app.js), with a seek bar and a clock.
const player = TR.skeletonPlayer($("skeleton"), {
  onShow: (t, end) => { $("seek").value = String(t); $("clock").textContent = SAY.clock(t, end); },
  onPlaying: (on) => {
    $("play").textContent = T(on ? "session.pause" : "session.play");
    $("play").setAttribute("aria-pressed", String(on));
  },
});
$("play").onclick = () => player.play(!player.playing);
$("seek").oninput = () => { player.play(false); player.show(Number($("seek").value)); };

async function loadMovement(exerciseId) {
  const f = await TR.api(`/api/sessions/${id}/movement/${encodeURIComponent(exerciseId)}`);
  TR.fitStage($("stage"), f.width, f.height);
  $("seek").min = String(f.t_s[0] ?? 0); $("seek").max = String(f.t_s[f.t_s.length - 1] ?? 0);
  $("replay-exercise").value = exerciseId;
  player.load(f);
}

async function replayRep(r) {
  if (!player.frames || player.frames.exercise_id !== r.exercise_id) await loadMovement(r.exercise_id);
  player.show(r.t_start_s);
  $("stage").scrollIntoView({ block: "nearest" });
  player.play(true);
}

async function main() {
  const me = await TR.me();
  $("who").textContent = me.name;
  $("home").href = me.role === "therapist" ? "/therapist" : "/patient";
  const [x, library] = await Promise.all([TR.api(`/api/sessions/${id}`), TR.api("/api/exercises")]);
  state.library = library;
  document.title = `${SAY.title(TR.fmtDay(x.started_at))} - telerehab`;
  $("title").textContent = SAY.title(TR.fmtDay(x.started_at));
  $("facts").textContent = SAY.facts(x);
  $("work").replaceChildren(...x.work.map((w) => TR.el("li", { text: SAY.work(w) })));
  // the replay: per exercise whose movement was kept
  $("replay-note").textContent = T(!x.movement_consent ? "session.noReplay" : x.movements.length ? "session.replayNote" : "session.noMovement");
  $("replay-box").hidden = !x.movements.length;
  $("replay-exercise").replaceChildren(...x.movements.map((e) => TR.el("option", { value: e, text: nameOf(e) })));
  $("replay-exercise").onchange = () => loadMovement($("replay-exercise").value);
  if (x.movements.length) await loadMovement(x.movements[0]);
  // range of motion per repetition against the target, per exercise
  const box = $("charts");
  const byExercise = [...new Set(x.reps.map((r) => r.exercise_id))];
  const draw = () => box.replaceChildren(...byExercise.map((e) => {
    const reps = x.reps.filter((r) => r.exercise_id === e);
    const target = reps.find((r) => r.target_rom_deg)?.target_rom_deg;
    return TR.chart({
      title: T("session.romTitle", { name: nameOf(e) }), desc: T("session.romDesc"), labels: reps.map((r) => String(r.index)),
      xTitle: T("session.repAxis"), yTitle: T("chart.romAxis"), width: Math.min(720, box.clientWidth || 520),
      series: [{ name: T("session.romSeries"), color: "#1f5fa8", values: reps.map((r) => Math.round(r.excursion_deg)) },
        ...(target ? [{ name: T("session.targetSeries"), color: "#2e7d32", values: reps.map(() => Math.round(target)) }] : [])],
    });
  }));
  draw();
  new ResizeObserver(() => draw()).observe(box);
  $("reps").querySelector("tbody").replaceChildren(...x.reps.map((r) => {
    const ex = library.find((e) => e.id === r.exercise_id);
    const replay = x.movements.includes(r.exercise_id)
      ? TR.el("button", { type: "button", text: T("session.see"), "aria-label": T("session.replayRep", { n: r.index }), onclick: () => replayRep(r) }) : "-";
    return TR.el("tr", {}, TR.el("td", { text: String(r.index) }), TR.el("td", { text: nameOf(r.exercise_id) }),
      TR.el("td", { text: String(r.set_index) }),
      TR.el("td", { text: TR.numbers.format(Math.round(r.excursion_deg)) + (r.rom_trusted ? "" : T("session.untrusted")) }),
      TR.el("td", { text: SAY.share(r) }), TR.el("td", { text: TR.numbers.format(Math.round(r.duration_s * 10) / 10) }), TR.el("td", { text: String(r.quality) }),
      TR.el("td", { text: r.faults.map((f) => TR.faultText(f, ex)).join("; ") || "-" }), TR.el("td", {}, replay));
  }));
  $("title").focus();
}
main().catch((e) => { $("session-error").textContent = e.message; });
