// "Teach a new exercise": a demonstration (a file, or recorded here with the
// camera) is uploaded to /api/exercises/learn; the learned exercise is shown
// in words for review, and added to the library only when the therapist says.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("teach"), msg = $("teach-msg"), review = $("teach-review");
  let recorded = null;  // a Blob recorded with the camera
  let learned = null;   // the document to review

  const say = (text, kind = "") => { msg.textContent = text; msg.className = kind; };
  const slug = (name) => name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_")
    .replace(/^[^a-z]+|_+$/g, "").slice(0, 64);
  $("teach-name").addEventListener("input", () => {
    const id = $("teach-id");
    if (!id.dataset.edited) id.value = slug($("teach-name").value);
  });
  $("teach-id").addEventListener("input", () => { $("teach-id").dataset.edited = "1"; });
  $("teach-video").addEventListener("change", () => { recorded = null; });

  // Recording: MediaRecorder in the browser; nothing leaves the page until "Learn".
  let recorder = null, stream = null;
  $("teach-record").addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (e) {
      say(TR.t("learn.cameraFailed", { error: e.message }), "error");
      return;
    }
    const video = $("teach-preview");
    video.srcObject = stream; $("teach-stage").hidden = false; await video.play();
    const chunks = [];
    recorder = new MediaRecorder(stream, { mimeType: "video/webm" });
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      recorded = new Blob(chunks, { type: "video/webm" });
      stream.getTracks().forEach((t) => t.stop());
      $("teach-stage").hidden = true;
      say(TR.t("learn.recorded", { mb: Math.round(recorded.size / 1e5) / 10 }), "ok");
    };
    recorder.start(500);
    $("teach-record").hidden = true; $("teach-stop").hidden = false;
    say(TR.t("learn.recording"));
  });
  $("teach-stop").addEventListener("click", () => {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    $("teach-record").hidden = false; $("teach-stop").hidden = true;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = recorded || $("teach-video").files[0];
    if (!file) { say(TR.t("learn.chooseVideo"), "error"); return; }
    const q = new URLSearchParams({ id: $("teach-id").value, name: $("teach-name").value });
    for (const [key, el] of [["start_s", "teach-start"], ["end_s", "teach-end"]]) {
      if ($(el).value !== "") q.set(key, $(el).value);
    }
    review.hidden = true;
    $("teach-learn").disabled = true;
    say(TR.t("learn.looking"));
    try {
      const type = file.type || "video/mp4";
      const r = await TR.api(`/api/exercises/learn?${q}`, {
        method: "POST", body: file, headers: { "Content-Type": type.split(";")[0] },
      });
      learned = r.document;
      show(learned);
      say(TR.t("learn.learned"), "ok");
    } catch (e) {
      // 422: nothing repeats, or the video cannot be used; say what to do
      // (the server's reason, in English for developers, stays in `detail`)
      say(e.status === 422 ? TR.t("learn.notLearned") : e.message, "error");
      msg.dataset.detail = typeof e.detail === "string" ? e.detail : "";
    } finally {
      $("teach-learn").disabled = false;
    }
  });

  function show(doc) {
    const T = TR.t, words = (s) => s.replaceAll("_", " ");
    const ph = doc.phases, rom = doc.target_rom, t = doc.tempo;
    const where = { midline: "learn.whereBody", bilateral: "learn.whereBoth" }[doc.laterality] || "learn.whereOne";
    const angle = TR.has(`movement.${doc.signal.angle}`) ? T(`movement.${doc.signal.angle}`) : words(doc.signal.angle);
    const views = doc.views.map((v) => (TR.has(`view.${v}`) ? T(`view.${v}`) : v)).join(", ");
    const rows = [
      [T("learn.movement"), T("learn.movementText", { angle, where: T(where), direction: T(ph.direction === "increase" ? "learn.rising" : "learn.falling"), rest: ph.rest_deg, peak: ph.peak_deg })],
      [T("learn.camera"), T("learn.cameraText", { views })],
      [T("learn.targetRange"), T("learn.targetText", { min: rom.min_deg, max: rom.max_deg, source: rom.source })],
      [T("learn.tempo"), T("learn.tempoText", { up: t.up_s, hold: t.hold_s, down: t.down_s })],
      [T("learn.anchors"), doc.anchors.length ? doc.anchors.map((a) => (TR.has(`anchor.${a}`) ? T(`anchor.${a}`) : words(a))).join(", ") : T("learn.nothing")],
    ];
    const dl = $("teach-summary");
    dl.replaceChildren(...rows.flatMap(([k, v]) => [TR.el("dt", { text: k }), TR.el("dd", { text: v })]));
    $("teach-instructions").value = doc.instructions.startsWith("Learned from") ? "" : doc.instructions;
    review.hidden = false;
    $("teach-instructions").focus();
  }

  $("teach-add").addEventListener("click", async () => {
    const text = $("teach-instructions").value.trim();
    if (text.length < 10) { say(TR.t("learn.tooShort"), "error"); return; }
    try {
      const r = await TR.api("/api/exercises", { method: "POST", body: { document: { ...learned, instructions: text } } });
      review.hidden = true; form.reset(); delete $("teach-id").dataset.edited; recorded = null;
      say(TR.t("learn.added", { name: r.name }), "ok");
      document.dispatchEvent(new CustomEvent("exercises-changed"));
    } catch (e) {
      say(e.message, "error");
    }
  });
})();
