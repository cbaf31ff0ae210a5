// The live page (kept out of the HTML: the Content-Security-Policy allows no inline script).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { sid: null, pc: null, stream: null, muted: false, exercise: null, setStart: 0, rest: 0, reps: [], count: 0, lastCue: "", framedFor: 0, framed: false };
$("logout").onclick = TR.logout;

// What this page says and speaks (one place, for a message catalogue later).
const SAY = {
  mute: "Mute spoken cues", unmute: "Unmute spoken cues",
  notSeen: "Step into the picture: I cannot see you.",
  feet: "Step back: your feet are out of view.",
  head: "Step back: your head is out of view.",
  inView: "You are in view. Start your first repetition when you are ready.",
  lost: "I lost sight of you: step back into view.",
  faceCamera: (name) => `Turn to face the camera: ${name} is watched from the front.`,
  turnSideways: (name) => `Turn sideways to the camera: ${name} is watched from the side.`,
  exercise: (name, i, n) => `${name} (${i} of ${n})`,
  next: (first, name) => `${first ? "First" : "Next"}: ${name}`,
  set: (k, n) => `Set ${k} of ${n}`,
  setDone: (k, rest) => `Set ${k} done. Rest ${rest} seconds.`,
  allDone: "All sets done.",
  doneNext: (name) => `All sets done. Next: ${name}. Start when you are ready.`,
  rest: (s) => `Rest ${s} s`,
  setTime: (m, s) => `Set time ${m}:${String(s).padStart(2, "0")}`,
  state: { created: "Getting ready...", ready: "Ready", running: "", paused: "Paused", interrupted: "Connection lost: trying again...", ended: "Finished", error: "Something went wrong. Please finish and tell your therapist." },
  slow: "Your connection is slow: some movements may be missed.",
  denied: "Camera access was denied. Allow the camera for this site in your browser's settings, then reload this page.",
  noCamera: (name) => `The camera could not be opened (${name}). Check that it is connected and not used by another program.`,
  gettingReady: "Getting ready...",
  reconnecting: "Your session is still running: reconnecting to it.",
  pause: "Pause", resume: "Resume",
  total: (n) => `${n} repetition${n === 1 ? "" : "s"} today.`,
  wellDone: "Well done", goodEffort: "Good effort",
  allPrescribed: "You did everything your therapist prescribed for today.",
  somePrescribed: "You did part of today's exercises. Every repetition counts: try the rest next time.",
  work: (w) => `${w.name}: ${w.done_sets} of ${w.sets} sets, ${w.done_reps} of ${w.planned_reps} repetitions`,
  extra: (w) => `${w.name}: ${w.done_reps} repetitions (not in your program)`,
  rom: (mean, target) => `range of motion ${mean}° (your target ${target}°)`,
  pain: (b, a) => `Pain ${b}/10 before, ${a}/10 after` + (a < b ? ": less than before." : a > b ? ": more than before. Tell your therapist if it stays." : ": the same."),
  painOne: (label, v) => `Pain ${label}: ${v}/10.`,
};

function say(text) {
  $("cue").textContent = text;
  clearTimeout(state.cueTimer);
  state.cueTimer = setTimeout(() => { $("cue").textContent = ""; }, 5000);
  if (!state.muted && "speechSynthesis" in window) {
    window.speechSynthesis.cancel();
    window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
  }
}
$("mute").onclick = () => {
  state.muted = !state.muted;
  $("mute").setAttribute("aria-pressed", String(state.muted));
  $("mute").textContent = state.muted ? SAY.unmute : SAY.mute;
  if (state.muted && "speechSynthesis" in window) window.speechSynthesis.cancel();
};

function draw(landmarks) {
  const v = $("camera");
  TR.drawSkeleton($("overlay"), landmarks, v.videoWidth || 640, v.videoHeight || 480);
}
$("camera").onresize = $("camera").onloadedmetadata = () => TR.fitStage($("stage"), $("camera").videoWidth, $("camera").videoHeight);

function framing(m) {
  if (!m.landmarks) return SAY.notSeen;
  const lower = state.exercise && /squat|lunge|sit_to|heel|hip|leg|bridge|push/.test(state.exercise.exercise_id);
  const feet = [27, 28].map((i) => m.landmarks[i]);
  if (lower && feet.every((p) => p[2] < 0.5 || p[1] > 0.98)) return SAY.feet;
  const head = m.landmarks[0];
  if (head[2] >= 0.5 && head[1] < 0.02) return SAY.head;
  return "";
}

function onMessage(m) {
  if (m.type === "pose") {
    draw(m.landmarks);
    const problem = framing(m);
    $("framing").textContent = problem;
    // The framing check before the set: once in view for about a second, say go.
    state.framedFor = problem ? 0 : state.framedFor + 1;
    if (!state.framed && state.framedFor >= 20) {
      state.framed = true;
      say(SAY.inView);
    }
    if (m.signal_deg !== null && m.rest_deg !== null && m.target_rom_deg) {
      const pct = Math.max(0, Math.min(100, 80 * m.direction * (m.signal_deg - m.rest_deg) / m.target_rom_deg));
      $("rom-bar").firstElementChild.style.width = pct + "%";
      $("rom-bar").setAttribute("aria-valuenow", String(Math.round(pct)));
    }
  } else if (m.type === "exercise_started") {
    state.exercise = m; state.count = 0; state.setStart = Date.now();
    $("exercise-h").textContent = SAY.exercise(m.name, m.index + 1, m.of);
    $("instructions").textContent = m.instructions;
    $("set-label").textContent = SAY.set(1, m.sets); $("count").textContent = "0"; $("of").textContent = `/ ${m.reps}`;
    if (state.sid) say(SAY.next(m.index === 0, m.name));
  } else if (m.type === "rep_completed") {
    state.reps.push(m); state.count = m.count;
    $("count").textContent = String(m.count);
  } else if (m.type === "set_completed") {
    state.rest = Date.now() + m.rest_s * 1000;
    if (m.set_index < m.sets) { $("set-label").textContent = SAY.set(m.set_index + 1, m.sets); $("count").textContent = "0"; say(SAY.setDone(m.set_index, m.rest_s)); }
  } else if (m.type === "exercise_completed") {  // counting goes on until the next exercise begins
    say(m.next ? SAY.doneNext(m.next) : SAY.allDone);
  } else if (m.type === "feedback") {
    say(m.text);
  } else if (m.type === "wrong_view") {
    const name = state.exercise ? state.exercise.name : "";
    $("framing").textContent = m.seen === "side" ? SAY.faceCamera(name) : SAY.turnSideways(name);
  } else if (m.type === "tracking_lost") {
    $("framing").textContent = SAY.lost;
  } else if (m.type === "status") {  // the patient reads the state in words; the numbers are the therapist's
    const slow = m.received > 60 && m.dropped > 0.5 * m.received;
    $("status").textContent = [SAY.state[m.state] ?? "", slow ? SAY.slow : ""].filter(Boolean).join(" ");
  }
}

setInterval(() => {
  const now = Date.now();
  if (state.rest > now) $("timer").textContent = SAY.rest(Math.ceil((state.rest - now) / 1000));
  else if (state.setStart) { const s = Math.floor((now - state.setStart) / 1000); $("timer").textContent = SAY.setTime(Math.floor(s / 60), s % 60); }
}, 250);

async function openCamera() {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: false });
    $("camera").srcObject = state.stream;
  } catch (e) {
    $("camera-error").textContent = e.name === "NotAllowedError" ? SAY.denied : SAY.noCamera(e.name);
    $("start-btn").disabled = true;
  }
}

$("start").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!state.stream) return;
  $("start-btn").disabled = true;
  $("start-msg").textContent = SAY.gettingReady;
  try {
    const pain = $("pain-before").value;
    let r;
    try {
      r = await TR.api("/api/live/sessions", { method: "POST", body: { pain_before: pain === "" ? null : Number(pain), video_consent: $("consent").checked, movement_consent: $("keep-movement").checked, device: navigator.userAgent.slice(0, 200) } });
    } catch (e) {  // my session is already running (another tab, a reload): reconnect to it
      if (e.status !== 409 || !e.location) throw e;
      r = { id: Number(e.location.split("/").pop()), running: true };
      $("start-msg").textContent = SAY.reconnecting;
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
  $("pause").textContent = paused ? SAY.pause : SAY.resume;
};
$("finish").onclick = () => { $("after").hidden = false; $("pain-after").focus(); };
$("end").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const num = (id) => { const v = $(id).value; return v === "" ? null : Number(v); };
  const s = await TR.api(`/api/live/sessions/${state.sid}/end`, { method: "POST", body: { pain_after: num("pain-after"), rpe: num("rpe") } });
  if (state.pc) state.pc.close();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  $("during").hidden = true; $("after").hidden = true; $("summary").hidden = false;
  $("summary-text").textContent = SAY.total(s.total);
  try { showSummary(await TR.api(`/api/sessions/${state.sid}`)); } catch (e) { $("summary-work").replaceChildren(TR.el("p", { class: "error", text: e.message })); }
  $("summary-h").focus();
});

// The session against the prescription: sets x reps done of those prescribed,
// range of motion against the target, pain before and after.
function showSummary(x) {
  const done = x.status === "complete";
  $("summary-h").textContent = done ? SAY.wellDone : SAY.goodEffort;
  const items = x.work.map((w) => {
    const rom = w.mean_rom_deg === null ? "" : `; ${SAY.rom(Math.round(w.mean_rom_deg), Math.round(w.target_rom_deg))}`;
    return TR.el("li", { text: (w.sets ? SAY.work(w) : SAY.extra(w)) + rom });
  });
  const b = x.pain_before, a = x.pain_after;
  const pain = b !== null && a !== null ? SAY.pain(b, a) : b !== null ? SAY.painOne("before", b) : a !== null ? SAY.painOne("after", a) : "";
  $("summary-work").replaceChildren(TR.el("p", { text: done ? SAY.allPrescribed : SAY.somePrescribed }),
    TR.el("ul", {}, ...items), ...(pain ? [TR.el("p", { text: pain })] : []));
}

(async () => {
  const me = await TR.me();
  $("who").textContent = me.name;
  await openCamera();
})();
