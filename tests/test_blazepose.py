"""The project's BlazePose pipeline: its pieces, its runtimes, and parity with MediaPipe."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from telerehab.errors import ConfigError, ModelError, PoseError
from telerehab.pose import blazepose as bp
from tests.conftest import poses_through

# --------------------------------------------------------------------------- pieces


def test_ssd_anchors_cover_the_detector_grid() -> None:
    a = bp.ssd_anchors()
    assert a.shape == (2254, 2)  # 28*28*2 + 14*14*2 + 7*7*6, the detector's output rows
    np.testing.assert_allclose(a[0], a[1])  # two anchors per cell on the stride-8 grid
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert np.all(a[-6:] == a[-1])  # three stride-32 layers share the 7x7 grid


def _refine_reference(xy, heatmap, kernel=7, min_confidence=0.5):
    """MediaPipe's loop, transcribed naively (RefineLandmarksFromHeatMap)."""
    hm_h, hm_w, n = heatmap.shape
    out = xy.copy()
    half = (kernel - 1) // 2
    for i in range(n):
        col, row = int(xy[i, 0] * hm_w), int(xy[i, 1] * hm_h)
        if not (0 <= col < hm_w and 0 <= row < hm_h):
            continue
        total = wc = wr = peak = 0.0
        for r in range(max(0, row - half), min(hm_h, row + half + 1)):
            for c in range(max(0, col - half), min(hm_w, col + half + 1)):
                conf = 1 / (1 + math.exp(-float(heatmap[r, c, i])))
                total += conf
                peak = max(peak, conf)
                wc += c * conf
                wr += r * conf
        if peak >= min_confidence and total > 0:
            out[i] = (wc / hm_w / total, wr / hm_h / total)
    return out


@settings(max_examples=60, deadline=None)
@given(
    xy=arrays(np.float64, (5, 2), elements=st.floats(-0.2, 1.2)),
    heatmap=arrays(np.float32, (12, 10, 5), elements=st.floats(-8, 8, width=32)),
)
def test_heatmap_refinement_matches_mediapipe_loop(xy, heatmap) -> None:
    """Edges (shrinking window), points outside the heatmap (kept), low peaks (kept)."""
    np.testing.assert_allclose(
        bp.refine_from_heatmap(xy, heatmap), _refine_reference(xy, heatmap), atol=1e-9
    )


def test_weighted_nms_merges_overlapping_boxes_by_score() -> None:
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9]])
    kps = np.zeros((3, 4, 2))
    kps[:, 0] = [[0.3, 0.3], [0.32, 0.3], [0.75, 0.75]]
    scores = np.array([0.9, 0.6, 0.7])
    out = bp.weighted_nms(boxes, kps, scores)
    assert [round(s, 2) for _, _, s in out] == [0.9, 0.7]  # best first, best score kept
    np.testing.assert_allclose(out[0][0][0], (0.1 * 0.9 + 0.12 * 0.6) / 1.5)
    np.testing.assert_allclose(out[0][1][0], [(0.3 * 0.9 + 0.32 * 0.6) / 1.5, 0.3])
    np.testing.assert_allclose(out[1][0], boxes[2])


def test_letterbox_round_trip() -> None:
    m, pad = bp.letterbox_matrix(1280, 720)
    px = np.array([[0.0, 0.0], [1280.0, 720.0], [640.0, 100.0]])
    tensor_xy = (px @ m[:, :2].T + m[:, 2]) / bp.DETECTOR_SIZE
    np.testing.assert_allclose(bp.remove_letterbox(tensor_xy, pad) * [1280, 720], px, atol=1e-9)


@pytest.mark.parametrize("rotation", [0.0, 0.4, -2.5])
def test_crop_and_projection_are_inverse(rotation: float) -> None:
    """A point of the image, warped into the crop and projected back, lands where it was."""
    w, h = 1280, 720
    roi = bp.Roi(0.45, 0.55, 0.3, 0.3 * w / h, rotation)
    m = bp.roi_matrix(roi, w, h)
    px = np.array([[500.0, 400.0], [650.0, 300.0], [576.0, 396.0]])
    crop = (px @ m[:, :2].T + m[:, 2]) / bp.LANDMARK_SIZE  # crop-normalised
    cos, sin = math.cos(rotation), math.sin(rotation)
    x, y = crop[:, 0] - 0.5, crop[:, 1] - 0.5
    back_x = ((cos * x - sin * y) * roi.width + roi.x_center) * w
    back_y = ((sin * x + cos * y) * roi.height + roi.y_center) * h
    np.testing.assert_allclose(np.stack([back_x, back_y], 1), px, atol=1e-6)
    np.testing.assert_allclose(crop[2], [0.5, 0.5], atol=1e-9)  # the ROI centre


def test_a_turned_roi_is_the_same_crop_upside_down() -> None:
    """Half a turn of the region: the landmark model's input rotated by 180 deg."""
    y, x = np.mgrid[0:360, 0:640] / 40.0
    smooth = 127 + 60 * np.sin(x) + 60 * np.cos(0.7 * y + 0.3 * x)  # no edge to resample
    rgb = np.stack([smooth, smooth[::-1], smooth[:, ::-1]], axis=2).astype(np.uint8)
    roi = bp.Roi(0.5, 0.55, 0.5 * 360 / 640, 0.5, 0.3)
    turned = roi.turned()
    assert math.isclose(abs(turned.rotation_rad - roi.rotation_rad), math.pi)
    a, b = bp.landmark_input(rgb, roi), bp.landmark_input(rgb, turned)
    assert np.abs(np.rot90(a, 2)[2:-2, 2:-2] - b[2:-2, 2:-2]).mean() < 0.02


def _skeleton(face_xy, hip_xy) -> bp.LandmarkResult:
    image = np.zeros((33, 4), np.float32)
    image[:11, :2] = face_xy
    image[11:, :2] = hip_xy
    return bp.LandmarkResult(image, np.zeros((33, 3), np.float32), np.zeros((2, 2)), 1.0)


def test_the_face_box_of_a_region_and_a_face_in_it() -> None:
    """The best of the detector's face boxes whose centre lies in the region
    (a weaker "face" elsewhere in it is not the body's); none outside it."""
    faces = np.array([[0.40, 0.30, 0.60, 0.60], [0.45, 0.70, 0.65, 1.0], [0.0, 0.0, 0.1, 0.1]])
    body = bp.Roi(0.52, 0.6, 0.6 * 360 / 640, 0.6, 0.0)
    assert bp.face_of_roi(faces, body, 640, 360) == 0
    assert bp.face_of_roi(faces[1:], body, 640, 360) == 0  # the one over the hips, then
    assert bp.face_of_roi(faces[2:], body, 640, 360) is None
    upright, upside_down = _skeleton((0.5, 0.45), (0.55, 0.9)), _skeleton((0.55, 0.85), (0.5, 0.5))
    assert bp.face_inside(upright, faces[0]) and not bp.face_inside(upside_down, faces[0])


def test_a_small_skeleton_in_anothers_head_is_a_copy_not_a_person() -> None:
    """One face box, two skeletons with their face in it: the one under half
    the other's trunk is dropped; two of like size (one person's two regions,
    left to the association as MediaPipe does) and a skeleton of another face
    are kept."""

    def body(shoulders_y: float, hips_y: float, x: float = 0.5) -> bp.LandmarkResult:
        image = np.zeros((33, 4), np.float32)
        image[:, 0] = x
        image[:11, 1] = 0.45  # the face
        image[11:23, 1], image[23:, 1] = shoulders_y, hips_y
        return bp.LandmarkResult(image, np.zeros((33, 3), np.float32), np.zeros((2, 2)), 1.0)

    box = np.array([0.4, 0.35, 0.6, 0.55])
    other = np.array([0.0, 0.35, 0.2, 0.55])
    whole, copy, alike = body(0.6, 0.95), body(0.5, 0.6), body(0.58, 0.9)
    far = body(0.5, 0.6, x=0.1)  # small, but its face is another box's
    results = [whole, copy, alike, far]
    face = [(0, box), (0, box), (0, box), (1, other)]
    sizes = [(640, 360)]
    assert bp.head_copies([0] * 4, results, face, sizes, 0.5) == {1}
    assert bp.head_copies([0, 0], [whole, alike], face[:2], sizes, 0.5) == set()
    assert bp.head_copies([0, 0], [whole, copy], [(0, box), None], sizes, 0.5) == set()


def test_association_replaces_overlapping_tracked_rois() -> None:
    tracked = [bp.Roi(0.3, 0.5, 0.4, 0.4, 0.0), bp.Roi(0.8, 0.5, 0.2, 0.2, 0.0)]
    detected = [bp.Roi(0.31, 0.5, 0.4, 0.4, 0.1)]
    out = bp.associate(tracked, detected)
    assert out == [tracked[1], detected[0]]


def test_roi_points_up_from_hips_to_head() -> None:
    """Upright person: no rotation; lying with the head to the right: rotated 90 deg."""
    up = bp.roi_from_points(np.array([0.5, 0.6]), np.array([0.5, 0.3]), 100, 100)
    assert abs(up.rotation_rad) < 1e-9 and up.width == pytest.approx(0.3 * 2 * 1.25)
    right = bp.roi_from_points(np.array([0.5, 0.5]), np.array([0.8, 0.5]), 100, 100)
    assert right.rotation_rad == pytest.approx(math.pi / 2)


# --------------------------------------------------------------------------- runtimes


def test_runtime_errors_name_the_input(store, tmp_path) -> None:
    from telerehab.pose.runtimes import LiteRTRuntime, create_runtime

    with pytest.raises(ConfigError, match="unknown runtime 'tensorrt'"):
        create_runtime("tensorrt", tmp_path / "x.tflite")
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match=r"broken\.tflite"):
        LiteRTRuntime(bad)
    rt = LiteRTRuntime(store.path(store.manifest.detector()), threads=1)
    with pytest.raises(
        PoseError, match=r"pose_detection.tflite: expected input \(N, 224, 224, 3\)"
    ):
        rt(np.zeros((1, 256, 256, 3), np.float32))


def test_backend_setting_selects_blazepose_on_litert(store, fresh_settings) -> None:
    from telerehab.pose.backend import create_backend

    fresh_settings.setenv("TELEREHAB_POSE_BACKEND", "blazepose")
    backend = create_backend(variant="lite", store=store)
    try:
        assert backend.name == "blazepose" and backend.detector.name == "litert"
        with pytest.raises(PoseError, match=r"\(H, W, 3\) uint8"):
            backend.detect(np.zeros((10, 10), np.uint8), 0.0)
    finally:
        backend.close()


def _real_crops(clip, n: int) -> np.ndarray:
    from telerehab.pose.video import VideoFile

    with VideoFile(clip("squat_side_medflex.mp4")) as video:
        frames = [f.rgb for _, f in zip(range(n * 20), video, strict=False)][::20]
    h, w = frames[0].shape[:2]
    roi = bp.Roi(0.5, 0.55, 0.8 * h / w, 0.8, 0.05)
    return np.stack([bp.landmark_input(f, roi) for f in frames]), frames


def test_pruned_landmark_model_equals_the_original(store, clip) -> None:
    """The landmark model without its segmentation branch: the same outputs on real
    crops (bit for bit), fewer operators, the pinned digest, a reproducible rewrite."""
    from telerehab.models.pruned import landmarks_without_segmentation, prune
    from telerehab.models.store import sha256_of
    from telerehab.pose.runtimes import LiteRTRuntime

    lm = store.manifest.landmarks("full")
    path = landmarks_without_segmentation(store, lm)
    assert sha256_of(path) == lm.pruned_sha256  # pinned in the manifest
    assert prune(store.path(lm)) == path.read_bytes()
    crops, _ = _real_crops(clip, 3)
    ref = LiteRTRuntime(store.path(lm), threads=1)(crops)
    got = LiteRTRuntime(path, threads=1)(crops)
    assert len(got) == 4 and len(ref) == 5
    for tail in ((195,), (1,), (64, 64, 39), (117,)):
        np.testing.assert_array_equal(bp._pick(ref, tail, "x"), bp._pick(got, tail, "x"))


def test_onnx_models_match_tflite_on_real_frames(store, clip) -> None:
    """Derived ONNX files: landmarks within 0.01 px of TFLite's on real crops, a batch
    equals single runs, the digest is pinned and recorded, and conversion is reproducible."""
    pytest.importorskip("onnxruntime")
    import json

    from telerehab.models.onnx_export import convert, onnx_model
    from telerehab.models.pruned import landmarks_without_segmentation
    from telerehab.models.store import sha256_of
    from telerehab.pose.runtimes import LiteRTRuntime, OnnxRuntime

    lm = store.manifest.landmarks("full")
    path = onnx_model(store, lm)
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["sha256"] == sha256_of(path) == lm.onnx_sha256  # pinned in the manifest
    assert record["source_sha256"] == lm.sha256
    pruned = landmarks_without_segmentation(store, lm)
    assert convert(pruned) == path.read_bytes()  # byte-reproducible
    crops, frames = _real_crops(clip, 4)
    ref = LiteRTRuntime(store.path(lm), threads=1)(crops)
    ort = OnnxRuntime(path, threads=1)
    got = ort(crops)
    assert np.abs(bp._pick(ref, (195,), "x") - bp._pick(got, (195,), "x")).max() < 0.01  # px
    assert np.abs(bp._pick(ref, (117,), "x") - bp._pick(got, (117,), "x")).max() < 1e-3  # m
    singles = [ort(crops[i : i + 1]) for i in range(len(crops))]
    np.testing.assert_array_equal(np.concatenate([s[0] for s in singles]), got[0])

    det = store.manifest.detector()
    det_in = np.stack([bp.detector_input(f)[0] for f in frames])
    ref_d = LiteRTRuntime(store.path(det), threads=1)(det_in)
    got_d = OnnxRuntime(onnx_model(store, det), threads=1)(det_in)
    assert np.abs(ref_d[0] - got_d[0]).max() < 0.01 and np.abs(ref_d[1] - got_d[1]).max() < 1e-3


def test_onnxruntime_backend_finds_the_same_pose(store, clip) -> None:
    pytest.importorskip("onnxruntime")
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video

    seqs = []
    for runtime in ("litert", "onnxruntime"):
        backend = create_backend("blazepose", variant="full", runtime=runtime, store=store)
        try:
            seqs.append(estimate_video(clip("squat_side_medflex.mp4"), backend, max_frames=20))
        finally:
            backend.close()
    d = np.abs(seqs[0].image[:, :, :2] - seqs[1].image[:, :, :2]) * [seqs[0].width, seqs[0].height]
    assert np.median(d) < 0.5 and seqs[1].detected.all()


# --------------------------------------------------------------------------- parity

# Clips where parity holds (benchmarks/RESULTS.md has every clip, failures included).
PARITY_CLIPS = (
    "squat_side_medflex.mp4",
    "bicep_curl_side_medflex.mp4",
    "shoulder_abduction_front_sagor.mp4",
    "bridge_side_physioplus.mp4",
)


@pytest.fixture(scope="session")
def blazepose_of(store, clip):
    """PoseSequence of a shared clip with the project's pipeline (full, LiteRT)."""
    return poses_through(store, clip, "blazepose", variant="full")


@pytest.mark.parametrize("name", PARITY_CLIPS)
def test_parity_with_the_mediapipe_backend(pose_of, blazepose_of, ground_truth, name) -> None:
    """Median landmark distance < 1% of the diagonal, same repetitions, ROM within 2 deg."""
    from telerehab.rehab_programs.engine import analyze_sequence
    from telerehab.rehab_programs.library import default_library

    ref, new = pose_of(name), blazepose_of(name)
    assert len(ref) == len(new)
    both = ref.detected & new.detected
    assert both.sum() >= 0.95 * max(ref.detected.sum(), 1)
    scale = np.array([ref.width, ref.height])
    d = np.linalg.norm((ref.image[both, :, :2] - new.image[both, :, :2]) * scale, axis=2)
    assert np.median(d) < 0.01 * math.hypot(ref.width, ref.height)

    exercise = default_library().match(ground_truth[name]["exercise"])
    a, b = analyze_sequence(ref, exercise), analyze_sequence(new, exercise)
    assert b.summary.reps == a.summary.reps
    for x, y in zip(a.reps, b.reps, strict=True):
        assert abs(x.excursion_deg - y.excursion_deg) <= 2.0, (x.index, x.excursion_deg)


def test_a_patient_lying_feet_first_is_seen_the_right_way_up(
    pose_of, blazepose_of, ground_truth
) -> None:
    """The floor-press clip (filmed from the feet, dim): MediaPipe's pipeline,
    whose detector points the body one way then the other, draws the patient
    upside down (face over the hips) in most frames and a second and third
    "person" in the head in over half of them; the project's pipeline checks
    each skeleton against the detector's face box (turning the region by half
    a turn, one body per face, no body smaller than its face) and keeps the
    patient the right way up, alone, and counts 6 of the 7 presses (the first
    begins from a rest not yet confirmed) where MediaPipe's poses give 1,
    each at its mark, live as offline."""
    from telerehab.rehab_programs.accuracy import turning_point_errors_s
    from telerehab.rehab_programs.engine import analyze_live, analyze_sequence
    from telerehab.rehab_programs.library import default_library

    name = "floor_press_quva013.mp4"

    def upright(seq) -> float:
        face, hip = seq.image[:, :11, 1].mean(axis=1), seq.image[:, 23:25, 1].mean(axis=1)
        seen = np.isfinite(face) & np.isfinite(hip)
        return float(np.mean(face[seen] < hip[seen]))  # the head lies away from the camera

    ref, new = pose_of(name), blazepose_of(name)
    assert upright(ref) < 0.5 and upright(new) > 0.85  # measured 0.22 and 0.95
    assert np.mean(ref.n_people >= 2) > 0.3 and np.mean(new.n_people >= 2) < 0.15  # 0.58, 0.09
    assert new.detected.mean() > 0.95

    exercise = default_library().get("floor_press")
    offline, live = analyze_sequence(new, exercise), analyze_live(new, exercise)
    assert offline.summary.reps == live.summary.reps >= 6
    assert analyze_sequence(ref, exercise).summary.reps < offline.summary.reps
    marks, marks_are = ground_truth[name]["rep_marks_frame"], ground_truth[name]["marks_are"]
    errors = turning_point_errors_s(offline.reps, new.t_s, marks, marks_are)
    assert sum(e <= 0.3 for e in errors) >= 6


def test_several_people_seen_and_patient_kept(blazepose_of) -> None:
    """The walking clip: a second person is seen; the tracked hips never jump to them."""
    seq = blazepose_of("walking_multi_person_sports2d.mp4")
    assert seq.max_people >= 2
    assert any("people in view" in w for w in seq.warnings)
    hips = seq.image[:, 23:25, :2].mean(axis=1) * (seq.width, seq.height)
    crowded = np.isfinite(hips).all(axis=1) & (seq.n_people >= 2)
    pairs = crowded[:-1] & crowded[1:]
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=1)[pairs]
    assert steps.size > 50 and steps.max() < 0.05 * seq.width


def test_association_merges_tracked_rois_on_one_person() -> None:
    a, b = bp.Roi(0.3, 0.5, 0.4, 0.4, 0.0), bp.Roi(0.32, 0.5, 0.4, 0.4, 0.0)
    assert bp.associate([a, b], []) == [b]


@pytest.mark.parametrize("runtime", ["litert", "onnxruntime"])
def test_streams_batched_together_match_streams_run_alone(store, clip, runtime) -> None:
    """detect_many: three videos through one backend, one batch per network and frame
    step, give each video the poses it gets alone (tracking kept per stream)."""
    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime")
    from telerehab.pose.backend import create_backend
    from telerehab.pose.video import VideoFile

    names = ["squat_side_medflex.mp4", "pushup_wrong51.mp4", "bicep_curl_side_medflex.mp4"]
    videos = {}
    for name in names:
        with VideoFile(clip(name)) as v:
            videos[name] = [f for _, f in zip(range(12), v, strict=False)]
    shared = create_backend("blazepose", variant="lite", runtime=runtime, store=store)
    alone = create_backend("blazepose", variant="lite", runtime=runtime, store=store)
    try:
        together = [
            shared.detect_many([(n, videos[n][k].rgb, videos[n][k].t_s) for n in names])
            for k in range(12)
        ]
        assert shared.timings()["frames"] == 36
        for j, name in enumerate(names):
            alone.reset()
            for k, f in enumerate(videos[name]):
                ref = alone.detect(f.rgb, f.t_s)
                got = together[k][j]
                assert got.n_people == ref.n_people, (name, k)
                np.testing.assert_allclose(got.image, ref.image, atol=1e-4)
    finally:
        shared.close()
        alone.close()


def test_live_sessions_share_one_backend_in_batches(store, clip) -> None:
    """Three sessions' worker threads through one BatchScheduler get the poses each
    gets alone, in fewer model calls than frames; a bad frame fails only its session."""
    import threading

    from telerehab.pose.backend import create_backend
    from telerehab.pose.batching import BatchScheduler
    from telerehab.pose.video import VideoFile

    names = ["squat_side_medflex.mp4", "pushup_wrong51.mp4", "bicep_curl_side_medflex.mp4"]
    videos = {}
    for name in names:
        with VideoFile(clip(name)) as v:
            videos[name] = [f for _, f in zip(range(10), v, strict=False)]
    alone = create_backend("blazepose", variant="lite", mode="live", store=store)
    expected = {}
    for name in names:
        alone.reset()
        expected[name] = [alone.detect(f.rgb, f.t_s) for f in videos[name]]
    alone.close()

    scheduler = BatchScheduler(
        create_backend("blazepose", variant="lite", mode="live", store=store), max_wait_s=0.05
    )
    got: dict[str, list] = {}

    def session(name: str) -> None:
        backend = scheduler.session()
        got[name] = [backend.detect(f.rgb, f.t_s) for f in videos[name]]
        with pytest.raises(PoseError, match="uint8"):
            backend.detect(np.zeros((4, 4), np.uint8), 1.0)
        backend.close()

    threads = [threading.Thread(target=session, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    scheduler.close()
    assert scheduler.frames == 30 and scheduler.batches < 30
    for name in names:
        for ref, out in zip(expected[name], got[name], strict=True):
            assert out.n_people == ref.n_people
            np.testing.assert_allclose(out.image, ref.image, atol=1e-5)
