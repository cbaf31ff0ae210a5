// The live page (kept out of the HTML: the Content-Security-Policy allows no inline script).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { sid: null, pc: null, stream: null, muted: false, exercise: null, setStart: 0, rest: 0, reps: [], count: 0, lastCue: "", counting: false, framed: false };
$("logout").onclick = TR.logout;

// Every word this page shows and speaks is the catalogue's (TR.t, in the
// patient's language); cues are spoken in that language too.
const T = TR.t;

function say(text) {
  $("cue").textContent = text;
  clearTimeout(state.cueTimer);
  state.cueTimer = setTimeout(() => { $("cue").textContent = ""; }, 5000);
  if (!state.muted && "speechSynthesis" in window) {
    window.speechSynthesis.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = TR.lang;  // a voice for the patient's language, not the browser's default
    window.speechSynthesis.speak(utterance);
  }
}
$("mute").onclick = () => {
  state.muted = !state.muted;
  $("mute").setAttribute("aria-pressed", String(state.muted));
  $("mute").textContent = T(state.muted ? "live.unmute" : "live.mute");
  if (state.muted && "speechSynthesis" in window) window.speechSynthesis.cancel();
};

// The patient's skeleton over the camera; while counting waits (the camera
// check) or is paused (the patient left the picture), the exercise's starting
// position as a dashed outline to step into.
function draw(landmarks) {
  const v = $("camera"), w = v.videoWidth || 640, h = v.videoHeight || 480;
  TR.drawSkeleton($("overlay"), landmarks, w, h);
  if (!state.counting && state.exercise) TR.drawOutline($("overlay"), demo.frames, w, h);
}
$("camera").onresize = $("camera").onloadedmetadata = () => TR.fitStage($("stage"), $("camera").videoWidth, $("camera").videoHeight);

// How the exercise is done: its demonstration beside the instructions (app.js).
const demo = TR.demonstration($("demo-canvas"), $("demo-play"));
async function showDemonstration(exerciseId, name) {
  const shown = await demo.show(exerciseId, name);
  if (shown === null) return;  // the next exercise's is on its way
  const view = shown && demo.frames.view;  // where to stand: as the demonstration is seen
  $("placement").textContent = view ? T(view === "front" ? "live.placeFront" : "live.placeSide") : "";
  if (!state.counting) draw(null);
  $("demo").hidden = !shown;
  demo.redraw();
}

// The server's camera check (`framing` messages): which part of the body the
// exercise needs is out of the picture, in words. Landmark names -> a part.
const PART = [["feet", /ankle|heel|foot/], ["knees", /knee/], ["hips", /hip/], ["hands", /wrist|pinky|index|thumb/],
  ["elbows", /elbow/], ["shoulders", /shoulder/], ["head", /nose|eye|ear|mouth/]];
function framing(m) {
  if (!m.seen) return T("live.notSeen");
  if (m.in_view) return "";
  const part = PART.find(([, re]) => m.missing.some((name) => re.test(name)));
  return T(`live.out.${part ? part[0] : "body"}`);
}

function onMessage(m) {
  if (m.type === "pose") {
    draw(m.landmarks);
    if (m.signal_deg !== null && m.rest_deg !== null && m.target_rom_deg) {
      const pct = Math.max(0, Math.min(100, 80 * m.direction * (m.signal_deg - m.rest_deg) / m.target_rom_deg));
      $("rom-bar").firstElementChild.style.width = pct + "%";
      $("rom-bar").setAttribute("aria-valuenow", String(Math.round(pct)));
    }
  } else if (m.type === "framing") {  // counting waits for the patient in view, and pauses without
    $("framing").textContent = framing(m) || (m.counting ? "" : T("live.checking"));
    if (m.counting && !state.framed) { say(T("live.inView")); state.setStart = Date.now(); }  // the camera check passed: go (the set's clock starts)
    else if (!m.counting && state.counting) say(T("live.paused"));
    state.framed = state.framed || m.counting; state.counting = m.counting;
    $("placement").hidden = m.counting;
    if (!m.seen) $("rom-bar").firstElementChild.style.width = "0%";  // no one: no range to show
  } else if (m.type === "exercise_started") {
    state.exercise = m; state.count = 0; state.setStart = Date.now();
    $("exercise-h").textContent = T("live.exercise", { name: m.name, i: m.index + 1, n: m.of });
    $("instructions").textContent = m.instructions;
    $("notes-text").textContent = m.notes || "";  // the therapist's own words for this patient
    $("notes").hidden = !m.notes;
    showDemonstration(m.exercise_id, m.name);
    $("set-label").textContent = T("live.set", { k: 1, n: m.sets }); $("count").textContent = "0"; $("of").textContent = `/ ${m.reps}`;
    if (state.sid) say(T(m.index === 0 ? "live.first" : "live.next", { name: m.name }));
  } else if (m.type === "rep_completed") {
    state.reps.push(m); state.count = m.count;
    // the next set shows once its first repetition comes: a finished set's
    // count stays in view through the rest ("3 / 3", "Set 1 done")
    if (state.exercise) $("set-label").textContent = T("live.set", { k: m.set, n: state.exercise.sets });
    $("count").textContent = String(m.count);
  } else if (m.type === "set_completed") {
    state.rest = Date.now() + m.rest_s * 1000;
    if (m.set_index < m.sets) { $("set-label").textContent = TR.tn("live.setDone", m.rest_s, { k: m.set_index }); say(TR.tn("live.setDone", m.rest_s, { k: m.set_index })); }
  } else if (m.type === "exercise_completed") {  // counting goes on until the next exercise begins
    say(m.next ? T("live.doneNext", { name: m.next }) : T("live.allDone"));
  } else if (m.type === "feedback") {
    say(m.text);
  } else if (m.type === "wrong_view") {
    const name = state.exercise ? state.exercise.name : "";
    $("framing").textContent = T(m.seen === "side" ? "live.faceCamera" : "live.turnSideways", { name });
  } else if (m.type === "tracking_lost") {
    $("framing").textContent = T("live.lost");
  } else if (m.type === "status") {  // the patient reads the state in words; the numbers are the therapist's
    const slow = m.received > 60 && m.dropped > 0.5 * m.received;
    const words = TR.has(`live.state.${m.state}`) ? T(`live.state.${m.state}`) : "";  // running: nothing to say
    $("status").textContent = [words, slow ? T("live.slow") : ""].filter(Boolean).join(" ");
  }
}

setInterval(() => {
  if (state.finished) return;  // the clock stops at Finish
  const now = Date.now();
  if (state.rest > now) $("timer").textContent = T("live.rest", { s: Math.ceil((state.rest - now) / 1000) });
  else { const s = state.setStart && state.framed ? Math.floor((now - state.setStart) / 1000) : 0; $("timer").textContent = T("live.setTime", { m: Math.floor(s / 60), ss: String(s % 60).padStart(2, "0") }); }
}, 250);

// Why the browser gave no camera (getUserMedia's error name), in words; the
// camera check (stage and live controls) waits until a camera works.
const CAMERA_ERRORS = {
  NotFoundError: "live.camera.none", OverconstrainedError: "live.camera.none",
  NotAllowedError: "live.camera.denied", SecurityError: "live.camera.denied",
  NotReadableError: "live.camera.busy", AbortError: "live.camera.busy" };
async function openCamera() {
  try {
    if (!navigator.mediaDevices) throw new DOMException("", "NotSupportedError");  // e.g. a page not served over HTTPS
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: false });
    $("camera").srcObject = state.stream;
    $("camera-error").textContent = "";
    $("camera-retry").hidden = true;
    $("during").hidden = false;
    $("start-btn").disabled = false;
  } catch (e) {
    console.warn("camera:", e.name, e.message);
    $("camera-error").textContent = T(CAMERA_ERRORS[e.name] || "live.camera.other");
    $("camera-retry").hidden = false;
    $("during").hidden = true;  // no black box, no controls: nothing to use yet
    $("start-btn").disabled = true;
  }
}
$("camera-retry").onclick = openCamera;

$("start").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!state.stream) return;
  $("start-btn").disabled = true;
  $("start-msg").textContent = T("live.gettingReady");
  try {
    const pain = $("pain-before").value;
    let r;
    try {
      r = await TR.api("/api/live/sessions", { method: "POST", body: { pain_before: pain === "" ? null : Number(pain), video_consent: $("consent").checked, movement_consent: $("keep-movement").checked, device: navigator.userAgent.slice(0, 200) } });
    } catch (e) {  // my session is already running (another tab, a reload): reconnect to it
      if (e.status === 409 && !e.location) throw new Error(T("error.409.noProgram"));
      if (e.status !== 409) throw e;
      r = { id: Number(e.location.split("/").pop()), running: true };
      $("start-msg").textContent = T("live.reconnecting");
    }
    state.sid = r.id;
    if (!r.running) while ((await TR.api(`/api/live/sessions/${state.sid}`)).state !== "ready") await new Promise((ok) => setTimeout(ok, 200));
    const pc = new RTCPeerConnection();
    state.pc = pc;
    const channel = pc.createDataChannel("results");
    channel.onmessage = (e) => onMessage(JSON.parse(e.data));
    for (const track of state.stream.getVideoTracks()) pc.addTrack(track, state.stream);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => { if (pc.iceGatheringState === "complete") ok(); else pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && ok()); });
    const answer = await TR.api(`/api/live/sessions/${state.sid}/offer`, { method: "POST", body: { sdp: pc.localDescription.sdp, type: "offer" } });
    await pc.setRemoteDescription(answer);
    $("before").hidden = true;
    $("pause").disabled = false; $("finish").disabled = false;
    $("start-msg").textContent = "";
    state.setStart = Date.now();
    $("exercise-h").focus();  // the start form is gone: the focus goes where the session is
  } catch (e) { $("start-msg").className = "error"; $("start-msg").textContent = e.message; $("start-btn").disabled = false; }
});

$("pause").onclick = async () => {
  const paused = $("pause").getAttribute("aria-pressed") === "true";
  await TR.api(`/api/live/sessions/${state.sid}/${paused ? "resume" : "pause"}`, { method: "POST" });
  $("pause").setAttribute("aria-pressed", String(!paused));
  $("pause").textContent = T(paused ? "live.pause" : "live.resume");
  if (!paused) draw(null);  // no skeleton frozen over the moving picture
};
// Finish: counting stops (the session pauses) while the patient says how it went.
$("finish").onclick = async () => {
  state.finished = true; state.rest = 0;
  $("pause").disabled = true; $("finish").disabled = true;
  if ($("pause").getAttribute("aria-pressed") !== "true") {
    try { await TR.api(`/api/live/sessions/${state.sid}/pause`, { method: "POST" }); } catch (e) { /* the end says what was kept */ }
  }
  $("after").hidden = false; $("pain-after").focus();
};
$("end").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const num = (id) => { const v = $(id).value; return v === "" ? null : Number(v); };
  const s = await TR.api(`/api/live/sessions/${state.sid}/end`, { method: "POST", body: { pain_after: num("pain-after"), rpe: num("rpe") } });
  if (state.pc) state.pc.close();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  $("during").hidden = true; $("after").hidden = true; $("summary").hidden = false;
  $("summary-text").textContent = TR.tn("live.total", s.total);
  try { showSummary(await TR.api(`/api/sessions/${state.sid}`)); } catch (e) { $("summary-work").replaceChildren(TR.el("p", { class: "error", text: e.message })); }
  $("summary-h").focus();
});

// The session against the prescription: sets x reps done of those prescribed,
// range of motion against the target, pain before and after.
function showSummary(x) {
  const done = x.status === "complete";
  $("summary-h").textContent = T(done ? "live.wellDone" : "live.goodEffort");
  const items = x.work.map((w) => {
    const name = TR.exName(w.exercise_id, w.name);
    const rom = w.mean_rom_deg === null ? "" : `; ${T("live.rom", { mean: Math.round(w.mean_rom_deg), target: Math.round(w.target_rom_deg) })}`;
    const work = w.sets ? T("live.work", { name, doneSets: w.done_sets, sets: w.sets, doneReps: w.done_reps, plannedReps: w.planned_reps })
      : TR.tn("live.extra", w.done_reps, { name });
    return TR.el("li", { text: work + rom });
  });
  const b = x.pain_before, a = x.pain_after;
  const pain = b !== null && a !== null ? T(a < b ? "live.painLess" : a > b ? "live.painMore" : "live.painSame", { b, a })
    : b !== null ? T("live.painBeforeOnly", { v: b }) : a !== null ? T("live.painAfterOnly", { v: a }) : "";
  $("summary-work").replaceChildren(TR.el("p", { text: T(done ? "live.allPrescribed" : "live.somePrescribed") }),
    TR.el("ul", {}, ...items), ...(pain ? [TR.el("p", { text: pain })] : []));
}

(async () => {
  const me = await TR.me();
  $("who").textContent = me.name;
  await openCamera();
})();
