// The live page (kept out of the HTML: the Content-Security-Policy allows no inline script).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { sid: null, pc: null, stream: null, muted: false, exercise: null, setStart: 0, rest: 0, reps: [], count: 0, lastCue: "", framedFor: 0, framed: false };
$("logout").onclick = TR.logout;

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
  $("mute").textContent = state.muted ? "Unmute spoken cues" : "Mute spoken cues";
  if (state.muted && "speechSynthesis" in window) window.speechSynthesis.cancel();
};

function draw(landmarks) {
  const v = $("camera");
  TR.drawSkeleton($("overlay"), landmarks, v.videoWidth || 640, v.videoHeight || 480);
}

function framing(m) {
  if (!m.landmarks) return "Step into the picture: I cannot see you.";
  const lower = state.exercise && /squat|lunge|sit_to|heel|hip|leg|bridge|push/.test(state.exercise.exercise);
  const feet = [27, 28].map((i) => m.landmarks[i]);
  if (lower && feet.every((p) => p[2] < 0.5 || p[1] > 0.98)) return "Step back: your feet are out of view.";
  const head = m.landmarks[0];
  if (head[2] >= 0.5 && head[1] < 0.02) return "Step back: your head is out of view.";
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
      say("You are in view. Start your first repetition when you are ready.");
    }
    if (m.signal_deg !== null && m.rest_deg !== null && m.target_rom_deg) {
      const pct = Math.max(0, Math.min(100, 80 * m.direction * (m.signal_deg - m.rest_deg) / m.target_rom_deg));
      $("rom-bar").firstElementChild.style.width = pct + "%";
      $("rom-bar").setAttribute("aria-valuenow", String(Math.round(pct)));
    }
  } else if (m.type === "exercise") {
    state.exercise = m; state.count = 0; state.setStart = Date.now();
    $("exercise-h").textContent = `${m.name} (${m.index + 1} of ${m.of})`;
    $("instructions").textContent = m.instructions;
    $("set-label").textContent = `Set 1 of ${m.sets}`; $("count").textContent = "0"; $("of").textContent = `/ ${m.reps}`;
    if (state.sid) say(`${m.index === 0 ? "First" : "Next"}: ${m.name}`);
  } else if (m.type === "rep") {
    state.reps.push(m); state.count = m.count;
    $("count").textContent = String(m.count);
  } else if (m.type === "set") {
    state.rest = Date.now() + m.rest_s * 1000;
    if (m.set < m.sets) { $("set-label").textContent = `Set ${m.set + 1} of ${m.sets}`; $("count").textContent = "0"; say(`Set ${m.set} done. Rest ${m.rest_s} seconds.`); }
    else say("All sets done.");
  } else if (m.type === "feedback") {
    say(m.text);
  } else if (m.type === "view") {
    $("framing").textContent = m.text.includes("side-on") ? `${m.text}: turn to face the camera.` : `${m.text}: turn sideways.`;
  } else if (m.type === "tracking" && m.lost) {
    $("framing").textContent = "I lost sight of you: step back into view.";
  } else if (m.type === "status") {
    $("status").textContent = `${m.state}` + (m.fps ? ` · ${m.fps.toFixed(0)} fps · ${Math.round(m.latency_ms_p50 || 0)} ms · ${m.dropped} frames skipped` : "");
  }
}

setInterval(() => {
  const now = Date.now();
  if (state.rest > now) $("timer").textContent = `Rest ${Math.ceil((state.rest - now) / 1000)} s`;
  else if (state.setStart) { const s = Math.floor((now - state.setStart) / 1000); $("timer").textContent = `Set time ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; }
}, 250);

async function openCamera() {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: false });
    $("camera").srcObject = state.stream;
  } catch (e) {
    $("camera-error").textContent = e.name === "NotAllowedError"
      ? "Camera access was denied. Allow the camera for this site in your browser's settings, then reload this page."
      : `The camera could not be opened (${e.name}). Check that it is connected and not used by another program.`;
    $("start-btn").disabled = true;
  }
}

$("start").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!state.stream) return;
  $("start-btn").disabled = true;
  $("start-msg").textContent = "Getting ready...";
  try {
    const pain = $("pain-before").value;
    const r = await TR.api("/api/live/sessions", { method: "POST", body: { pain_before: pain === "" ? null : Number(pain), video_consent: $("consent").checked, device: navigator.userAgent.slice(0, 200) } });
    state.sid = r.id;
    while ((await TR.api(`/api/live/sessions/${state.sid}`)).state !== "ready") await new Promise((ok) => setTimeout(ok, 200));
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
  } catch (e) { $("start-msg").className = "error"; $("start-msg").textContent = e.message; $("start-btn").disabled = false; }
});

$("pause").onclick = async () => {
  const paused = $("pause").textContent === "Resume";
  await TR.api(`/api/live/sessions/${state.sid}/${paused ? "resume" : "pause"}`, { method: "POST" });
  $("pause").textContent = paused ? "Pause" : "Resume";
};
$("finish").onclick = () => { $("after").hidden = false; $("pain-after").focus(); };
$("end").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const num = (id) => { const v = $(id).value; return v === "" ? null : Number(v); };
  const s = await TR.api(`/api/live/sessions/${state.sid}/end`, { method: "POST", body: { pain_after: num("pain-after"), rpe: num("rpe") } });
  if (state.pc) state.pc.close();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  $("during").hidden = true; $("after").hidden = true; $("summary").hidden = false;
  const roms = state.reps.map((m) => m.rep.excursion_deg);
  const mean = roms.length ? Math.round(roms.reduce((a, b) => a + b, 0) / roms.length) : 0;
  $("summary-text").textContent = `${s.total} repetition${s.total === 1 ? "" : "s"} today` + (roms.length ? `, mean range of motion ${mean} degrees.` : ".");
  $("summary-h").focus();
});

(async () => {
  const me = await TR.me();
  $("who").textContent = me.name;
  await openCamera();
})();
