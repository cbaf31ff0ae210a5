// The watch page (kept out of the HTML: the Content-Security-Policy allows no inline script).
"use strict";
const $ = (id) => document.getElementById(id);
const sid = Number(new URLSearchParams(location.search).get("session"));
let library = [], exerciseName = "";
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
  else if (m.type === "exercise_started") {  // the name in the therapist's language (the message has the patient's)
    const ex = library.find((x) => x.id === m.exercise_id);
    exerciseName = ex ? ex.name : m.name;
    $("title").textContent = TR.t("live.exercise", { name: exerciseName, i: m.index + 1, n: m.of });
    $("set-label").textContent = TR.t("live.set", { k: 1, n: m.sets }); $("of").textContent = `/ ${m.reps}`; $("count").textContent = "0";
  }
  else if (m.type === "rep_completed") {
    $("count").textContent = String(m.count);
    const r = m.rep;
    const ex = library.find((x) => x.id === m.exercise_id);
    $("reps").querySelector("tbody").prepend(TR.el("tr", {}, TR.el("td", { text: String(m.total) }), TR.el("td", { text: ex ? ex.name : m.exercise_id }),
      TR.el("td", { text: TR.numbers.format(Math.round(r.excursion_deg)) }),
      TR.el("td", { text: r.target_share == null ? "-" : TR.t("watch.share", { pct: Math.round(100 * r.target_share), deg: Math.round(r.target_rom_deg) }) }),
      TR.el("td", { text: TR.numbers.format(Math.round(r.duration_s * 10) / 10) }), TR.el("td", { text: String(r.quality) }),
      TR.el("td", { text: r.faults.map((f) => TR.faultText(f, ex)).join("; ") || "-" })));
  } else if (m.type === "set_completed" && m.set_index < m.sets) { $("set-label").textContent = TR.t("live.set", { k: m.set_index + 1, n: m.sets }); $("count").textContent = "0"; }
  else if (m.type === "feedback") $("cue").textContent = m.text;  // as the patient heard it, in their language
  else if (m.type === "wrong_view") {  // what the patient is asked to do, in the therapist's words
    $("cue").textContent = TR.t(m.seen === "side" ? "live.faceCamera" : "live.turnSideways", { name: exerciseName });
  } else if (m.type === "rep_rejected") $("cue").textContent = TR.t("watch.rejected");
  else if (m.type === "status") {
    const state = TR.has(`state.${m.state}`) ? TR.t(`state.${m.state}`) : m.state;
    $("status").textContent = m.fps ? TR.t("watch.status", { state, fps: Math.round(m.fps), ms: Math.round(m.latency_ms_p50 || 0), dropped: m.dropped, received: m.received }) : state;
  } else if (m.type === "summary") $("status").textContent = TR.tn("watch.ended", m.total);
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
  if (!live) { $("title").textContent = TR.t("watch.notLive"); return; }
  if (live.video) { $("video-btn").hidden = false; $("video-btn").onclick = showVideo; }
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/sessions/${sid}`);
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => { if (e.code !== 1000) $("status").textContent = TR.t("watch.disconnected"); };
})();
