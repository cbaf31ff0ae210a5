// One session's page, for the patient and their therapists: the work against
// the prescription, each repetition (ROM against the target, faults in words),
// and a replay of the movement as a skeleton from the stored landmarks (never
// video). Kept out of the HTML: the Content-Security-Policy allows no inline script.
"use strict";
const $ = (id) => document.getElementById(id);
$("logout").onclick = TR.logout;

// What this page says (one place, for the message catalogue).
const SAY = {
  title: (day) => `Session of ${day}`,
  status: { complete: "complete", partial: "partial (short of the prescription)", interrupted: "interrupted (connection lost)",
    in_progress: "in progress", diary: "pain diary entry (no exercise measured)" },
  facts: (x) => [`Status: ${SAY.status[x.status] || x.status}`, `${x.repetitions} repetition${x.repetitions === 1 ? "" : "s"}`,
    x.pain_before == null && x.pain_after == null ? "pain not given" : `pain ${x.pain_before ?? "-"}/10 before, ${x.pain_after ?? "-"}/10 after`,
    x.rpe == null ? "effort not given" : `effort ${x.rpe} of 10`].join(" · "),
  work: (w) => (w.sets ? `${w.name}: ${w.done_sets} of ${w.sets} sets, ${w.done_reps} of ${w.planned_reps} repetitions`
    : `${w.name}: ${w.done_reps} repetition${w.done_reps === 1 ? "" : "s"} (not prescribed in this session's program)`)
    + (w.mean_rom_deg != null ? `, mean range of motion ${Math.round(w.mean_rom_deg)}°` : "")
    + (w.target_rom_deg ? ` (target ${Math.round(w.target_rom_deg)}°)` : ""),
  noReplay: "The patient chose not to keep a replay of this session.",
  noMovement: "No movement was kept for this session.",
  replayNote: "A skeleton drawn from the measured joint positions; no video is kept.",
  play: "Play", pause: "Pause", replay: (n) => `Replay repetition ${n}`, see: "Replay",
  clock: (t, end) => `${t.toFixed(1)} s of ${end.toFixed(1)} s`,
  romTitle: (name) => `${name}: range of motion per repetition`,
  romDesc: "Each repetition's range of motion in degrees, with the target.",
  rep: "Repetition", rom: "Range of motion (deg)", target: "Target",
  share: (r) => r.target_share == null ? "-" : `${Math.round(100 * r.target_share)}% of ${Math.round(r.target_rom_deg)}°`,
  untrusted: " (body partly out of view: not in trends)",
};

const state = { frames: null, t: 0, playing: false, last: 0, library: [] };
const id = Number(new URLSearchParams(location.search).get("id"));

function nameOf(exerciseId) {
  const ex = state.library.find((e) => e.id === exerciseId);
  return ex ? ex.name : exerciseId;
}

function frameAt(t) {  // the last frame at or before t (binary search)
  const ts = state.frames.t_s;
  let lo = 0, hi = ts.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (ts[mid] <= t) lo = mid; else hi = mid - 1; }
  return lo;
}

function show(t) {
  const f = state.frames;
  if (!f || !f.t_s.length) return;
  state.t = Math.max(f.t_s[0], Math.min(t, f.t_s[f.t_s.length - 1]));
  const lm = f.landmarks[frameAt(state.t)];
  TR.drawSkeleton($("skeleton"), lm ? lm.map((p) => p.map((v) => v ?? 0)) : null, f.width, f.height);
  $("seek").value = String(state.t);
  $("clock").textContent = SAY.clock(state.t, f.t_s[f.t_s.length - 1]);
}

function tick(now) {
  if (!state.playing) return;
  const f = state.frames;
  state.t += (now - state.last) / 1000; state.last = now;
  if (state.t >= f.t_s[f.t_s.length - 1]) { show(f.t_s[f.t_s.length - 1]); setPlaying(false); return; }
  show(state.t);
  requestAnimationFrame(tick);
}

function setPlaying(on) {
  state.playing = on && !!state.frames;
  $("play").textContent = state.playing ? SAY.pause : SAY.play;
  $("play").setAttribute("aria-pressed", String(state.playing));
  if (state.playing) { state.last = performance.now(); requestAnimationFrame(tick); }
}
$("play").onclick = () => {
  const f = state.frames;
  if (f && state.t >= f.t_s[f.t_s.length - 1]) state.t = f.t_s[0];
  setPlaying(!state.playing);
};
$("seek").oninput = () => { setPlaying(false); show(Number($("seek").value)); };

async function loadMovement(exerciseId) {
  setPlaying(false);
  state.frames = await TR.api(`/api/sessions/${id}/movement/${encodeURIComponent(exerciseId)}`);
  const f = state.frames;
  TR.fitStage($("stage"), f.width, f.height);
  $("seek").min = String(f.t_s[0] ?? 0); $("seek").max = String(f.t_s[f.t_s.length - 1] ?? 0);
  $("replay-exercise").value = exerciseId;
  show(f.t_s[0] ?? 0);
}

async function replayRep(r) {
  if (!state.frames || state.frames.exercise_id !== r.exercise_id) await loadMovement(r.exercise_id);
  show(r.t_start_s);
  $("stage").scrollIntoView({ block: "nearest" });
  setPlaying(true);
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
  $("replay-note").textContent = !x.movement_consent ? SAY.noReplay : x.movements.length ? SAY.replayNote : SAY.noMovement;
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
      title: SAY.romTitle(nameOf(e)), desc: SAY.romDesc, labels: reps.map((r) => String(r.index)),
      xTitle: SAY.rep, yTitle: SAY.rom, width: Math.min(720, box.clientWidth || 520),
      series: [{ name: SAY.rom, color: "#1f5fa8", values: reps.map((r) => Math.round(r.excursion_deg)) },
        ...(target ? [{ name: SAY.target, color: "#2e7d32", values: reps.map(() => Math.round(target)) }] : [])],
    });
  }));
  draw();
  new ResizeObserver(() => draw()).observe(box);
  $("reps").querySelector("tbody").replaceChildren(...x.reps.map((r) => {
    const ex = library.find((e) => e.id === r.exercise_id);
    const replay = x.movements.includes(r.exercise_id)
      ? TR.el("button", { type: "button", text: SAY.see, "aria-label": SAY.replay(r.index), onclick: () => replayRep(r) }) : "-";
    return TR.el("tr", {}, TR.el("td", { text: String(r.index) }), TR.el("td", { text: nameOf(r.exercise_id) }),
      TR.el("td", { text: String(r.set_index) }),
      TR.el("td", { text: Math.round(r.excursion_deg) + (r.rom_trusted ? "" : SAY.untrusted) }),
      TR.el("td", { text: SAY.share(r) }), TR.el("td", { text: r.duration_s.toFixed(1) }), TR.el("td", { text: String(r.quality) }),
      TR.el("td", { text: r.faults.map((f) => TR.faultText(f, ex)).join("; ") || "-" }), TR.el("td", {}, replay));
  }));
  $("title").focus();
}
main().catch((e) => { $("session-error").textContent = e.message; });
