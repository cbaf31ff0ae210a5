"""The real model on the real clips: detection, clinical angle sanity, several people."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from telerehab.pose.filters import butterworth
from telerehab.pose.kinematics import compute_angles

CLEAN_SINGLE_PERSON = (
    "squat_side_yuyoujiang.mp4",
    "squat_side_medflex.mp4",
    "bicep_curl_side_medflex.mp4",
    "elbow_flexion_front_sagor.mp4",
    "shoulder_abduction_front_sagor.mp4",
)
_WINDOW = 2  # frames either side of a ground-truth mark


def _angles(seq):
    image = seq.image.copy()
    image[:, :, :3] = butterworth(seq.image[:, :, :3], seq.t_s)
    return compute_angles(image, "image", width=seq.width, height=seq.height)


def _near_side(seq, joint: str) -> str:
    from telerehab.pose.landmarks import INDEX

    vis = {s: np.nanmean(seq.image[:, INDEX[f"{s}_{joint}"], 3]) for s in ("left", "right")}
    return max(vis, key=vis.get)


def _peak_at(values: np.ndarray, mark: int) -> float:
    return float(np.nanmax(values[max(mark - _WINDOW, 0) : mark + _WINDOW + 1]))


def test_every_clip_runs(pose_of, ground_truth) -> None:
    for name in ground_truth:
        seq = pose_of(name)
        assert len(seq) > 0 and seq.complete, name
        assert seq.image.shape == (len(seq), 33, 4) and seq.world.shape == (len(seq), 33, 3)
        assert (np.diff(seq.t_s) > 0).all(), name
        found = seq.detected
        assert np.isnan(seq.image[~found]).all()  # no person: NaN, never zeros
        assert np.isfinite(seq.image[found, :, :3]).all()


# Where a clip's ground-truth notes say the exercise ends before the video does.
# squat_side_yuyoujiang: "the person walks towards the camera after frame 290";
# from frame ~300 they are too close for a full-body pose (measured: frames
# 301-321 are the only frames without one).
EXERCISE_END_FRAME = {"squat_side_yuyoujiang.mp4": 290}


@pytest.mark.parametrize("name", CLEAN_SINGLE_PERSON)
def test_person_found_in_95_percent_of_frames(pose_of, name: str) -> None:
    seq = pose_of(name)
    end = EXERCISE_END_FRAME.get(name, len(seq))
    assert seq.detected[:end].mean() >= 0.95
    assert seq.detection_rate >= 0.90  # the whole clip, walk-off included


def test_shoulder_abduction_overhead_and_rest(pose_of, ground_truth) -> None:
    name = "shoulder_abduction_front_sagor.mp4"
    a = _angles(pose_of(name))
    marks = ground_truth[name]["rep_marks_frame"]
    for side in ("left", "right"):
        elevation = a[f"{side}_shoulder_elevation"]
        for mark in marks:
            assert _peak_at(elevation, mark) >= 150, (side, mark)
        for lo, hi in itertools.pairwise(marks):  # arms come down in between
            assert np.nanmin(elevation[lo:hi]) <= 40, (side, lo, hi)


@pytest.mark.parametrize("name", ["squat_side_yuyoujiang.mp4", "squat_side_medflex.mp4"])
def test_squat_knee_flexion(pose_of, ground_truth, name: str) -> None:
    seq = pose_of(name)
    side = _near_side(seq, "knee")
    knee = _angles(seq)[f"{side}_knee_flexion"]
    marks = ground_truth[name]["rep_marks_frame"]
    for mark in marks:
        assert _peak_at(knee, mark) >= 80, (side, mark)
    bounds = [0, *marks, min(len(seq), marks[-1] + (marks[-1] - marks[-2]))]
    for lo, hi in itertools.pairwise(bounds):  # standing between squats
        assert np.nanmin(knee[lo:hi]) <= 20, (side, lo, hi)


def test_curl_elbow_flexion(pose_of, ground_truth) -> None:
    name = "bicep_curl_side_medflex.mp4"
    seq = pose_of(name)
    side = _near_side(seq, "elbow")
    elbow = _angles(seq)[f"{side}_elbow_flexion"]
    for mark in ground_truth[name]["rep_marks_frame"]:
        assert _peak_at(elbow, mark) >= 100, (side, mark)
    assert np.nanmin(elbow) <= 30  # the arm is straight at the start of a curl


def test_world_and_image_angles_agree_on_squat_depth(pose_of, ground_truth) -> None:
    name = "squat_side_yuyoujiang.mp4"
    seq = pose_of(name)
    side = _near_side(seq, "knee")
    world = compute_angles(butterworth(seq.world, seq.t_s), "world")[f"{side}_knee_flexion"]
    image = _angles(seq)[f"{side}_knee_flexion"]
    for mark in ground_truth[name]["rep_marks_frame"]:
        assert abs(_peak_at(world, mark) - _peak_at(image, mark)) < 25


def test_walking_clip_reports_several_people_and_warns(pose_of) -> None:
    seq = pose_of("walking_multi_person_sports2d.mp4")
    assert seq.max_people >= 2
    assert any("people in view" in w and "walking_multi_person" in w for w in seq.warnings)


def test_patient_does_not_jump_between_people(pose_of) -> None:
    """While several people are in view, the tracked hips move like one walking person.

    Only frames with two or more candidates can switch identity; the lone-person
    frames at the start (the model locking on to a small, distant walker, with
    steps up to ~120 px while only one candidate exists) are not identity checks.
    """
    seq = pose_of("walking_multi_person_sports2d.mp4")
    hips = seq.image[:, 23:25, :2].mean(axis=1) * (seq.width, seq.height)  # NaN if not found
    crowded = np.isfinite(hips).all(axis=1) & (seq.n_people >= 2)
    pairs = crowded[:-1] & crowded[1:]
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=1)[pairs]
    assert steps.size > 50
    assert steps.max() < 0.05 * seq.width


def test_single_person_clips_report_one_person(pose_of) -> None:
    for name in ("squat_side_medflex.mp4", "bicep_curl_side_medflex.mp4"):
        seq = pose_of(name)
        assert np.mean(seq.n_people <= 1) > 0.95 and not seq.warnings


@pytest.mark.parametrize(("mode", "step"), [("live", 3), ("image", 10)])
def test_live_and_image_modes_agree_with_video_mode(store, clip, pose_of, mode, step) -> None:
    """Live (frames dropped, never reordered) and image mode find the same pose.

    Same max_people as the reference run: with max_people=1 MediaPipe tracks from
    the last landmarks instead of re-detecting, which on this clip moves the
    right elbow angle by a median 3 deg (up to 74 deg in one frame).
    """
    from telerehab.pose.backend import create_backend
    from telerehab.pose.video import VideoFile

    name = "bicep_curl_side_medflex.mp4"
    reference = pose_of(name)
    backend = create_backend("mediapipe", variant="full", mode=mode, store=store)
    errors = []
    try:
        for vf in VideoFile(clip(name)):
            if vf.index % step:
                continue  # the live worker keeps only the latest frame
            found = backend.detect(vf.rgb, vf.t_s)
            assert found.n_people == 1, vf.index
            diff = found.image[0, 11:29, :2] - reference.image[vf.index, 11:29, :2]
            errors.append(np.abs(diff).mean())
    finally:
        backend.close()
    assert len(errors) >= 24 and np.median(errors) < 0.01  # under 1% of the frame


def test_a_phone_video_held_upright_counts_as_it_is_shown(store, clip, pose_of, tmp_path) -> None:
    """The squat clip stored on its side with a display matrix, as a phone held
    upright stores it: the same three squats, the trunk upright and no false
    trunk_lean (read on its side, the model saw a person lying, every squat
    had trunk_lean and quality 65 instead of 85, and a second person showed)."""
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.pose.landmarks import trunk
    from telerehab.rehab_programs.engine import analyze_sequence
    from telerehab.rehab_programs.library import default_library
    from tests.test_video import _reencoded

    phone = tmp_path / "phone.mp4"
    _reencoded(clip("squat_side_yuyoujiang.mp4"), phone, -90)
    backend = create_backend("mediapipe", variant="full", mode="video", store=store)
    try:
        seq = estimate_video(phone, backend)
    finally:
        backend.close()
    assert (seq.width, seq.height) == (960, 544) and seq.max_people == 1
    dx, dy = np.nanmedian(np.abs(trunk(seq.image[:, :, :2] * (seq.width, seq.height))), axis=0)
    assert dy > 2 * dx  # upright
    squat = default_library().get("squat")
    upright = analyze_sequence(pose_of("squat_side_yuyoujiang.mp4"), squat)
    phone_run = analyze_sequence(seq, squat)
    assert phone_run.summary.reps == upright.summary.reps == 3
    assert phone_run.summary.faults == upright.summary.faults
    assert not any("trunk_lean" in r.faults for r in phone_run.reps)


def test_feet_out_of_the_picture_do_not_reject_squats(store, clip, tmp_path) -> None:
    """`squat_side_medflex` cut above the ankles (a webcam that does not see
    the feet), through the lite model (live sessions' default): the model
    guesses the ankles below the edge, and the guesses wander. Judged as
    anchors, they rejected both squats as "not done in place" (0 before
    stop 23); an anchor outside the picture is not judged, and both count,
    flagged `landmarks_unseen` (their range is not trusted)."""
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.rehab_programs.engine import analyze_sequence
    from telerehab.rehab_programs.library import default_library
    from tests.test_video import _reencoded

    cropped = tmp_path / "no_feet.mp4"
    _reencoded(clip("squat_side_medflex.mp4"), cropped, keep_top=0.8)
    backend = create_backend("mediapipe", variant="lite", mode="video", store=store)
    try:
        seq = estimate_video(cropped, backend)
    finally:
        backend.close()
    ankles = seq.image[:, [27, 28], 1]
    assert np.nanmedian(ankles) > 1  # below the bottom edge
    analysis = analyze_sequence(seq, default_library().get("squat"))
    assert analysis.summary.reps == 2 and analysis.summary.rejected == 0
    assert all("landmarks_unseen" in r.faults for r in analysis.reps)
