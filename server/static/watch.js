// The watch page (kept out of the HTML: the Content-Security-Policy allows no inline script).
"use strict";
const $ = (id) => document.getElementById(id);
const sid = Number(new URLSearchParams(location.search).get("session"));
let library = [];
// The picture's size: the relayed video's own once it plays, else the size a
// pose message carries, else 4:3 (what the patient page asks the camera for).
const size = { w: 640, h: 480, fromVideo: false };

function resize(w, h) {
  if (!w || !h || (w === size.w && h === size.h)) return;
  size.w = w; size.h = h;
  TR.fitStage($("stage"), w, h);
}

function draw(landmarks) {
  TR.drawSkeleton($("overlay"), landmarks, size.w, size.h);
}

function onMessage(m) {
  if (m.type === "pose") {
    if (!size.fromVideo && m.width && m.height) resize(m.width, m.height);
    draw(m.landmarks);
  }
  else if (m.type === "exercise_started") { $("title").textContent = `${m.name} (${m.index + 1} of ${m.of})`; $("set-label").textContent = `Set 1 of ${m.sets}`; $("of").textContent = `/ ${m.reps}`; $("count").textContent = "0"; }
  else if (m.type === "rep_completed") {
    $("count").textContent = String(m.count);
    const r = m.rep;
    const ex = library.find((x) => x.id === m.exercise_id);
    $("reps").querySelector("tbody").prepend(TR.el("tr", {}, TR.el("td", { text: String(m.total) }), TR.el("td", { text: ex ? ex.name : m.exercise_id }),
      TR.el("td", { text: r.excursion_deg.toFixed(0) }),
      TR.el("td", { text: r.target_share == null ? "-" : `${Math.round(100 * r.target_share)}% of ${Math.round(r.target_rom_deg)} deg` }),
      TR.el("td", { text: r.duration_s.toFixed(1) }), TR.el("td", { text: String(r.quality) }),
      TR.el("td", { text: r.faults.map((f) => TR.faultText(f, ex)).join("; ") || "-" })));
  } else if (m.type === "set_completed" && m.set_index < m.sets) { $("set-label").textContent = `Set ${m.set_index + 1} of ${m.sets}`; $("count").textContent = "0"; }
  else if (m.type === "feedback" || m.type === "wrong_view") $("cue").textContent = m.text;
  else if (m.type === "rep_rejected") $("cue").textContent = m.reason;
  else if (m.type === "status") $("status").textContent = `${m.state}` + (m.fps ? ` · ${m.fps.toFixed(0)} fps · ${Math.round(m.latency_ms_p50 || 0)} ms · ${m.dropped} of ${m.received} frames skipped` : "");
  else if (m.type === "summary") $("status").textContent = `Session ended: ${m.total} repetitions.`;
}

async function showVideo() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (e) => { $("video").srcObject = new MediaStream([e.track]); };
  const video = $("video");
  video.onresize = video.onloadedmetadata = () => { size.fromVideo = true; resize(video.videoWidth, video.videoHeight); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => { if (pc.iceGatheringState === "complete") ok(); else pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && ok()); });
  try {
    const answer = await TR.api(`/api/live/sessions/${sid}/watch`, { method: "POST", body: { sdp: pc.localDescription.sdp, type: "offer" } });
    await pc.setRemoteDescription(answer);
    $("video-btn").hidden = true;
  } catch (e) { $("error").textContent = e.message; }
}

(async () => {
  const me = await TR.me();
  $("who").textContent = me.name;
  TR.fitStage($("stage"), size.w, size.h);
  library = await TR.api("/api/exercises");
  const live = (await TR.api("/api/live/sessions")).find((x) => x.id === sid);
  if (!live) { $("title").textContent = "This session is not live."; return; }
  if (live.video) { $("video-btn").hidden = false; $("video-btn").onclick = showVideo; }
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/sessions/${sid}`);
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => { if (e.code !== 1000) $("status").textContent = "Disconnected from the session."; };
})();
