"""The repetition engine: the state machine on synthetic signals, then the real clips."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from telerehab.errors import PoseError
from telerehab.pose.landmarks import INDEX
from telerehab.pose.views import at_speed, mirrored, seen_from
from telerehab.rehab_programs.accuracy import turning_point_errors_s
from telerehab.rehab_programs.demonstration import held_joints, moved_joints
from telerehab.rehab_programs.engine import (
    OfflineFeed,
    RepetitionEngine,
    Seen,
    analyze_live,
    analyze_sequence,
    posture_fits,
    upright_side_on,
)
from telerehab.rehab_programs.events import (
    Feedback,
    RepCompleted,
    RepRejected,
    RepResult,
    RepStarted,
    RepWithdrawn,
    SetCompleted,
    SignalChosen,
    TrackingLost,
    TrackingRegained,
    WrongView,
)
from telerehab.rehab_programs.library import default_library
from telerehab.rehab_programs.program import program_from_data
from telerehab.rehab_programs.program_run import analyze_program
from telerehab.rehab_programs.repetitions import CountingModel, RepetitionCounter
from tests.conftest import poses_through, program_of

SQUAT = CountingModel(direction=1, min_excursion_deg=20, min_s=0.8, max_s=12, prior_deg=(5, 95))


def _count(values: np.ndarray, fps: float = 30.0, model: CountingModel = SQUAT) -> tuple[int, list]:
    counter = RepetitionCounter(model)
    outcomes = []
    for i, v in enumerate(values):
        out = counter.update(i / fps, float(v), i)
        if out:
            outcomes.append(out[0])
    return outcomes.count("completed"), outcomes


def _squats(n: int, fps: float = 30.0, period_s: float = 3.0, depth: float = 100.0) -> np.ndarray:
    t = np.arange(int(n * period_s * fps) + int(fps)) / fps
    return np.where(t < n * period_s, depth / 2 * (1 - np.cos(2 * np.pi * t / period_s)), 0.0) + 5


def test_counts_clean_repetitions() -> None:
    assert _count(_squats(5))[0] == 5


@pytest.mark.parametrize("depth", [25.0, 40.0, 100.0, 140.0])
def test_counting_does_not_depend_on_the_range(depth: float) -> None:
    """A patient whose range is a quarter of another's counts the same."""
    assert _count(_squats(5, depth=depth))[0] == 5


def test_jitter_and_fidgeting_count_nothing() -> None:
    rng = np.random.default_rng(1)
    for level in (5.0, 50.0, 100.0):  # at rest, half-way, held at the bottom
        assert _count(level + 3 * rng.standard_normal(3000))[0] == 0
    # slow wandering of +-8 deg (shifting weight) under the 20 deg floor
    t = np.arange(3000) / 30
    assert _count(5 + 8 * np.sin(2 * np.pi * t / 2.5))[0] == 0


def test_the_jitter_is_measured_from_the_first_frames_not_assumed_small() -> None:
    """A counter (or a program's look-ahead engine, started afresh after every
    repetition) knows the jitter from what it has seen: after one second of
    raw white noise of sd 2.5 deg its estimate is near 2 (a moving average
    that started from 0 read 0.13), and jitter that follows counts far less
    often (unsmoothed, so harsher than the engine's signals; the engine's
    own test of jitter is the one above)."""
    model = CountingModel(direction=1, min_excursion_deg=6, min_s=0.3, max_s=10,
                          prior_deg=(0, 60))  # fmt: skip
    estimates, phantoms = [], 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        counter = RepetitionCounter(model)
        for i in range(90):
            out = counter.update(i / 30, float(2.5 * rng.standard_normal()), i)
            if i == 29:
                estimates.append(counter.noise_deg)
            phantoms += out is not None and out[0] == "completed" and out[1].t_start_s >= 0.5
    assert 1.5 < float(np.median(estimates)) < 3.5
    assert phantoms <= 15, phantoms  # of 40 x 2.5 s; the estimate from 0 let 57 count


def test_the_next_exercise_of_a_program_does_not_take_a_recordings_first_frames(pose_of) -> None:
    """Squats, then heel raises: the clip's first frames jump while the track
    settles (the ankle angle by 25 deg, at visibility 0.2-0.35 on the far
    side), and the heel raise's look-ahead, still knowing no jitter, took
    that for a repetition and the squats for heel raises."""
    seq = pose_of("squat_side_yuyoujiang.mp4")
    squat, heel = analyze_program(seq, program_of("squat", "heel_raise")).runs
    assert squat.analysis.summary.reps == 3
    assert math.isnan(heel.t_start_s) and not heel.analysis.reps


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [
        ("elbow_flexion_front_sagor.mp4", "elbow_flexion", "push_up"),
        ("shoulder_abduction_front_sagor.mp4", "shoulder_abduction", "wall_push_up"),
        ("squat_side_medflex.mp4", "squat", "back_extension"),
    ],
)
def test_a_movement_seen_as_the_next_exercise_is_not_measured_is_not_it(
    pose_of, name: str, first: str, second: str
) -> None:
    """Curls (or arm raises) filmed from the front, then push-ups, which are
    measured side-on: the elbow bends of the curls reached further into the
    push-up's target than the curl's, and the push-up took over all of them.
    Squats, then back extensions lying prone over a bench: the squat's hip
    flexion was taken for one. A look-ahead repetition seen from a view its
    exercise is not measured from, or in a posture it is not done in, is no
    evidence the patient moved on."""
    seq = pose_of(name)
    done, nxt = analyze_program(seq, program_of(first, second)).runs
    alone = analyze_sequence(seq, default_library().get(first))
    assert done.analysis.summary.reps == alone.summary.reps > 0
    assert math.isnan(nxt.t_start_s) and not nxt.analysis.reps


def test_posture_from_the_trunk() -> None:
    """Upright within 45 deg of the picture's vertical, lying beyond; a lying
    exercise filmed from above may show the trunk any way up; unseen or
    unstated fits."""
    assert posture_fits(20, "standing", ("side",)) and not posture_fits(70, "sitting", ("side",))
    assert posture_fits(80, "prone", ("side",)) and not posture_fits(10, "supine", ("side",))
    assert posture_fits(10, "supine", ("side", "above"))
    assert posture_fits(math.nan, "prone", ("side",)) and posture_fits(80, None, ("side",))
    library = default_library()
    assert library.get("push_up").posture == "prone" and library.get("squat").posture == "standing"


def test_the_joints_an_exercise_holds_still_come_from_its_demonstration() -> None:
    """A wall push-up's skeleton keeps the knees and hips straight; a squat's
    bends them. A curl bends one elbow: the elbow is not held, whichever arm
    the patient curls with (or both)."""
    library = default_library()
    assert {"knee_flexion", "hip_flexion"} <= held_joints(library.get("wall_push_up"))
    assert {"knee_flexion", "hip_flexion"} <= moved_joints(library.get("squat"))
    assert "elbow_flexion" not in held_joints(library.get("elbow_flexion"))
    assert "elbow_flexion" in moved_joints(library.get("elbow_flexion"))
    assert held_joints(library.get("lunge")) == {"elbow_flexion"}


def test_a_joint_the_next_exercise_holds_still_turning_keeps_the_current_one(pose_of) -> None:
    """Squats, then wall push-ups: the patient's elbows bend by 86 deg in the
    last squat, further into the wall push-up's target than the squat's knee
    into its own, and the wall push-up took that squat. Its knees bent by
    over 100 deg meanwhile, which a wall push-up never does: the movement
    stays the squat's."""
    seq = pose_of("squat_side_yuyoujiang.mp4")
    squat, wall = analyze_program(seq, program_of("squat", "wall_push_up")).runs
    assert squat.analysis.summary.reps == 3
    assert math.isnan(wall.t_start_s) and not wall.analysis.reps
    # What decides it, as the look-ahead sees it (restarted after the second
    # squat): the legs turned, by more than half the elbows' excursion.
    library = default_library()
    feed = OfflineFeed(seq, library.get("wall_push_up"))
    for i in range(len(seq)):
        if seq.t_s[i - 1] < squat.analysis.reps[1].t_end_s <= seq.t_s[i]:
            feed.reset()
        feed.step(i)
    (rep,) = feed.engine.reps
    legs = ("knee_flexion", "hip_flexion")
    assert feed.engine.held_joint_moved(rep, library.get("squat")) in legs
    # a push-up bends no knee either: it would not explain the movement
    assert feed.engine.held_joint_moved(rep, library.get("push_up")) is None


@pytest.mark.parametrize("skipped", ["crunch", "seated_knee_extension"])
def test_an_exercise_the_patient_skips_is_passed_over(pose_of, skipped: str) -> None:
    """The patient skips the first exercise and squats: each squat moves the
    skipped exercise's angle too (the hip of a crunch, the knee of a seated
    knee extension), so every squat the look-ahead completed came while the
    skipped exercise was "moving", and was dropped: the squats were lost.
    Such a repetition is judged once that movement ends uncounted, when the
    next exercise has made two."""
    seq = pose_of("squat_side_yuyoujiang.mp4")
    first, squat = analyze_program(seq, program_of(skipped, "squat")).runs
    assert not first.analysis.reps
    assert squat.analysis.summary.reps == 3


@pytest.mark.parametrize("skipped", ["crunch", "glute_bridge"])
def test_the_end_of_the_recording_ends_the_skipped_exercises_movement(
    pose_of, skipped: str
) -> None:
    """The same on the other squat clip, which ends a second after its second
    squat with the skipped exercise's counter still in the movement the
    squats gave its angle: the squats waited for that movement to end, and
    the recording ended first. Its end ends every movement: they count."""
    seq = pose_of("squat_side_medflex.mp4")
    first, squat = analyze_program(seq, program_of(skipped, "squat")).runs
    assert not first.analysis.reps
    assert (
        squat.analysis.summary.reps
        == 2
        == analyze_sequence(seq, default_library().get("squat")).summary.reps
    )


@pytest.mark.parametrize("skipped", ["squat", "elbow_flexion"])
def test_back_extensions_over_a_bench_are_done_lying(pose_of, skipped: str) -> None:
    """The patient skips the first exercise and does back extensions over a
    45 deg bench: the trunk sweeps from lying to hanging in each, and its
    median over the repetition (41 deg from vertical) read as upright, so the
    look-ahead's every repetition was "not in the posture the exercise is
    done in" and all six were lost. The posture is the trunk's on the rest
    side of the repetition: lying, and the six count."""
    seq = pose_of("back_extension_side_quva027.mp4")
    first, extension = analyze_program(seq, program_of(skipped, "back_extension")).runs
    assert not first.analysis.reps
    assert extension.analysis.summary.reps == 6


def test_upright_from_the_side_is_no_lying_posture() -> None:
    """Only a trunk upright in a side view rules out lying: lying seen from its
    feet, its head or above shows the shoulders' width (a front view) and may
    point the trunk any way in the picture."""
    side_up, side_flat = Seen("side", 10.0), Seen("side", 80.0)
    assert upright_side_on(side_up, ("side",))
    assert not upright_side_on(side_flat, ("side",))
    assert not upright_side_on(Seen("front", 10.0), ("side",))  # from the feet, say
    assert not upright_side_on(Seen(None, 10.0), ("side",))  # turned part-way
    assert not upright_side_on(Seen("side", math.nan), ("side",))  # trunk unseen
    assert not upright_side_on(side_up, ("above", "side"))  # filmed from above


@pytest.mark.parametrize(
    ("name", "exercise", "before"),
    [
        ("bicep_curl_side_medflex.mp4", "back_extension", 3),
        ("bicep_curl_side_medflex.mp4", "push_up", 2),
        ("bicep_curl_side_medflex.mp4", "straight_leg_raise", 1),
        ("squat_side_yuyoujiang.mp4", "push_up", 1),
    ],
)
def test_an_exercise_done_lying_does_not_count_a_patient_upright_side_on(
    pose_of, name: str, exercise: str, before: int
) -> None:
    """Curls and squats filmed from the side, counted as an exercise done lying
    (the hip a back extension counts with, the elbows of a push-up): the
    movement is there, but a body lying seen from the side shows its trunk
    across the picture, and this one stood. Each is rejected, saying so
    (`before` is what counted before stop 22). The lying exercises' own clips
    still count (test_counts_within_tolerance)."""
    analysis = analyze_sequence(pose_of(name), default_library().get(exercise))
    assert analysis.summary.reps == 0, before
    reasons = [e.reason for e in analysis.events if isinstance(e, RepRejected)]
    assert any("trunk was upright" in r and "done lying" in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("name", "skipped", "reps"),
    [
        ("bicep_curl_side_medflex.mp4", "back_extension", 2),
        ("bicep_curl_side_medflex.mp4", "straight_leg_raise", 2),
        ("back_extension_side_quva027.mp4", "crunch", 6),
        ("back_extension_side_quva027.mp4", "push_up", 6),
    ],
)
def test_a_skipped_exercise_done_lying_does_not_take_an_upright_movement(
    pose_of, ground_truth, name: str, skipped: str, reps: int
) -> None:
    """The patient skips an exercise done lying: its counter no longer takes
    the next exercise's movements seen upright from the side (the curls'
    hip sway as back extensions; the back extension's hanging end, trunk
    vertical head down, as a crunch's rest), and the next exercise gets
    them. All of these were 0 before stop 22."""
    assert _after_skipping(pose_of, ground_truth, name, skipped) == (0, reps)


def _after_skipping(pose_of, ground_truth, name: str, skipped: str) -> tuple[int, int]:
    """(repetitions of `skipped`, of the clip's own exercise) in a program of
    `skipped` then the clip's exercise, on the clip `name`."""
    exercise = default_library().match(ground_truth[name]["exercise"])
    first, own = analyze_program(pose_of(name), program_of(skipped, exercise.id)).runs
    return len(first.analysis.reps), own.analysis.summary.reps


@pytest.mark.parametrize(
    ("name", "skipped", "reps"),
    [
        ("pushup_correct1.mp4", "elbow_flexion", 1),
        ("bridge_side_physioplus.mp4", "crunch", 1),
        ("elbow_flexion_front_sagor.mp4", "push_up", 5),
        ("shoulder_abduction_front_sagor.mp4", "shoulder_flexion", 6),
    ],
)
def test_a_skipped_exercise_is_passed_over_at_the_end_or_on_one_repetition(
    pose_of, ground_truth, name: str, skipped: str, reps: int
) -> None:
    """The patient skips an exercise that has counted nothing: one repetition
    of the next exercise made while the skipped one's angle was moving is
    judged at the recording's end (a clip of a single push-up or bridge), and
    the skipped exercise's own count does not hold the next one back when
    the next exercise explains the movement. All of these were 0 before
    stop 23."""
    assert _after_skipping(pose_of, ground_truth, name, skipped) == (0, reps)


@pytest.mark.parametrize("skipped", ["standing_hip_abduction", "wall_push_up"])
def test_the_current_exercises_repetitions_are_evidence_only_as_measured(
    pose_of, skipped: str
) -> None:
    """The skipped exercise counts the squats too: standing hip abduction,
    measured from the front, sees the side-on squats' hips (0 squats kept
    before stop 23); the wall push-up sees the elbows of the squat's clasped
    hands while the knees bend, which a wall push-up holds straight (3 kept
    before, 2 once the next exercise waited for a second repetition, until
    this rule). Those repetitions are no evidence that the patient is doing
    the skipped exercise, as they would be none for the next one."""
    seq = pose_of("squat_side_yuyoujiang.mp4")
    _first, squat = analyze_program(seq, program_of(skipped, "squat")).runs
    assert squat.analysis.summary.reps == 3


def test_the_recordings_first_movement_alone_does_not_skip_an_exercise(lite_pose_of) -> None:
    """Lite model: `shoulder_abduction_front_sagor` starts with the arms
    coming down from overhead, the elbows bent: a curl to the look-ahead of a
    program of arm raises then curls, which took it as the patient having
    skipped the arm raises, and all six raises were lost (before stop 23).
    Before the current exercise has counted anything, one repetition of the
    next is not yet evidence: the first arm raise clears it."""
    seq = lite_pose_of("shoulder_abduction_front_sagor.mp4")
    raises, _curls = analyze_program(seq, program_of("shoulder_abduction", "elbow_flexion")).runs
    assert raises.analysis.summary.reps == 6


def test_small_fast_and_long_movements_do_not_count() -> None:
    count, outcomes = _count(_squats(3, depth=15))  # under the 20 deg floor
    assert count == 0 and outcomes.count("partial") == 3
    count, outcomes = _count(_squats(4, period_s=0.5))  # 0.5 s "repetitions"
    assert count == 0 and "too_short" in outcomes
    count, outcomes = _count(_squats(1, period_s=20))  # one 20 s movement
    assert count == 0 and "too_long" in outcomes


def test_a_bounce_at_the_bottom_is_one_repetition() -> None:
    values = _squats(2)
    values[35:55] -= 40 * np.sin(np.linspace(0, np.pi, 20))  # half-way back, then down again
    assert _count(values)[0] == 2


def test_a_movement_smaller_than_the_patients_own_is_a_partial() -> None:
    """After repetitions of 100 deg, a 25 deg dip (above the floor, under a
    third of the learned range) is not a repetition."""
    values = np.concatenate([_squats(3), _squats(1, depth=25), _squats(2)])
    count, outcomes = _count(values)
    assert count == 5 and outcomes.count("partial") == 1


def test_a_recording_that_starts_mid_movement() -> None:
    """Starting near the turning point (the prior says it is no rest), the first
    half-cycle is not a repetition; starting at rest, the first one counts."""
    values = _squats(3)
    assert _count(values[30:])[0] == 2  # starts at 80 deg, on the way to the bottom
    assert _count(values)[0] == 3


def test_rest_is_learned_again_after_a_posture_change() -> None:
    """The patient settles 20 deg lower for good after two repetitions: still
    counted from the new rest."""
    values = np.concatenate([_squats(2), 25 + _squats(3)])
    assert _count(values)[0] == 5


def test_a_posture_change_the_other_way_ends_the_movement_at_its_longest() -> None:
    """The patient settles 40 deg further into the movement for good (sits
    back, moves the chair) after two 60 deg repetitions, and goes on with
    seven from there: the signal never comes back near the old rest, so that
    movement would last for ever and nothing after it would count. It ends,
    uncounted, once it has lasted longer than any repetition (`max_s`, 12 s:
    the first four repetitions from the new rest), the rest is learned again
    there, and the last three count."""
    values = np.concatenate([_squats(2, depth=60), 40 + _squats(7, depth=60)])
    count, outcomes = _count(values)
    assert count == 5 and outcomes.count("too_long") == 1
    # the same shift for good, without repetitions after it: nothing counts
    count, outcomes = _count(np.concatenate([_squats(2, depth=60), np.full(900, 45.0)]))
    assert count == 2 and outcomes[-1] == "too_long"


def test_a_missing_sample_abandons_the_repetition() -> None:
    values = _squats(2)
    values[40] = np.nan  # mid-way through the first repetition
    count, outcomes = _count(values)
    assert count == 1 and "abandoned" in outcomes


def test_decreasing_exercises() -> None:
    bridge = CountingModel(direction=-1, min_excursion_deg=10, min_s=0.8, max_s=15,
                           prior_deg=(55, 5))  # fmt: skip
    assert _count(65 - _squats(3, depth=60), model=bridge)[0] == 3


def _library_angles(exercise, value: float) -> dict[str, float]:
    """Every angle the exercise reads, at `value` for its signal and neutral otherwise."""
    angles = {f"{s}_{r.angle}": 0.0 for r in exercise.form_rules for s in ("left", "right")}
    angles |= {r.angle: 0.0 for r in exercise.form_rules}
    sides = (None,) if exercise.laterality == "midline" else ("left", "right")
    angles |= {exercise.signal_key(s): value for s in sides}
    return angles


@pytest.mark.parametrize("share", [0.3, 0.6, 1.0])
def test_every_library_exercise_counts_at_any_share_of_its_range(share: float) -> None:
    """The same movement at 30%, 60% and 100% of the library's target range
    counts the same; short ones are counted with `short_range` and their share."""
    for exercise in default_library():
        rest, _peak = exercise.phases.rest_deg, exercise.phases.peak_deg
        span = share * exercise.target_rom_deg[1]
        values = rest + exercise.phases.direction * (_squats(4, depth=span) - 5)
        engine = RepetitionEngine(exercise)
        for i, v in enumerate(values):
            engine.step(i / 30, i, _library_angles(exercise, float(v)), np.ones(33))
        reps = engine.reps
        assert len(reps) == 4, (exercise.id, share)
        short = span < exercise.target_rom_deg[0]
        assert all(("short_range" in r.faults) == short for r in reps), exercise.id
        assert all(abs(r.target_share - span / engine.target_rom_deg) < 0.05 for r in reps)


def _frame_angles(knee: float) -> dict[str, float]:
    return {
        "left_knee_flexion": knee, "right_knee_flexion": knee,
        "left_trunk_lean": 10.0, "trunk_lean": 10.0,
    }  # fmt: skip


def test_engine_gates_on_visibility_and_reports_tracking() -> None:
    squat = default_library().get("squat")
    engine = RepetitionEngine(squat, reps_per_set=2)
    seen, unseen = np.ones(33), np.zeros(33)
    values = _squats(3)
    events = []
    for i, v in enumerate(values):
        hidden = 100 <= i < 130  # 1 s out of view during the second repetition
        events += engine.step(i / 30, i, _frame_angles(float(v)), unseen if hidden else seen)
    kinds = [type(e) for e in events]
    assert kinds.count(RepCompleted) == 2  # the hidden repetition is not counted
    assert TrackingLost in kinds and TrackingRegained in kinds
    assert kinds.count(SetCompleted) == 1


def test_a_repetition_with_a_needed_landmark_out_of_frame_is_flagged() -> None:
    """The ankles leave the picture (a webcam crop) during the second repetition:
    it still counts, flagged `landmarks_unseen`, and its range is not trusted."""
    squat = default_library().get("squat")
    engine = RepetitionEngine(squat)
    for i, v in enumerate(_squats(3)):
        lm = _standing_landmarks()
        if 90 <= i < 180:  # the second repetition
            for side in ("left", "right"):
                lm[INDEX[f"{side}_ankle"], 1] = 1.08  # below the bottom edge
        engine.step(i / 30, i, _frame_angles(float(v)), lm[:, 3], lm, (640, 480))
    flags = [r.rom_trusted for r in engine.reps]
    assert flags == [True, False, True]
    assert "landmarks_unseen" in engine.reps[1].faults
    assert engine.reps[1].quality == engine.reps[0].quality  # a measurement flag, not a fault


def test_a_joint_out_of_the_picture_is_no_movement() -> None:
    """Knees and ankles below the bottom edge (legs cropped) during the second
    squat: the knee angle is the model's guess there, so that squat is not
    counted (tracking is lost), the two seen are; feet alone cropped still
    count (the thigh shows the knee bending: the test above)."""
    squat = default_library().get("squat")
    engine = RepetitionEngine(squat)
    events = []
    for i, v in enumerate(_squats(3)):
        lm = _standing_landmarks()
        if 90 <= i < 180:
            for side in ("left", "right"):
                lm[INDEX[f"{side}_knee"], 1] = lm[INDEX[f"{side}_ankle"], 1] = 1.05
        events += engine.step(i / 30, i, _frame_angles(float(v)), lm[:, 3], lm, (640, 480))
    assert len(engine.reps) == 2 and not any(3 <= r.t_start_s < 6 for r in engine.reps)
    assert TrackingLost in [type(e) for e in events]


def test_legs_below_the_picture_are_not_squats(lite_pose_of) -> None:
    """`bicep_curl_side_medflex` is filmed from the thighs up: the knees and
    ankles lie below the bottom edge, where the lite model (live sessions'
    default) imagines them bending by 100 deg. Counted on those guesses
    (before stop 23), the curls gave 2 squats, and followed in a program by
    squats the curls were taken for squats; now neither."""
    seq = lite_pose_of("bicep_curl_side_medflex.mp4")
    assert analyze_sequence(seq, default_library().get("squat")).summary.reps == 0
    curls, squats = analyze_program(seq, program_of("elbow_flexion", "squat")).runs
    assert curls.analysis.summary.reps == 2 and squats.analysis.summary.reps == 0


def test_engine_bridges_short_gaps() -> None:
    engine = RepetitionEngine(default_library().get("squat"))
    seen, unseen = np.ones(33), np.zeros(33)
    for i, v in enumerate(_squats(3)):
        engine.step(i / 30, i, _frame_angles(float(v)), unseen if 40 <= i < 45 else seen)
    assert len(engine.reps) == 3  # a 0.17 s blink does not lose the repetition


def test_tempo_rom_and_cues() -> None:
    engine = RepetitionEngine(default_library().get("squat"), feedback_interval_s=100)
    events = []
    for i, v in enumerate(_squats(3, period_s=1.8, depth=75)):  # fast (1.1 s) and shallow
        events += engine.step(i / 30, i, _frame_angles(float(v)), np.ones(33))
    reps = engine.reps
    assert len(reps) == 3 and all({"short_range", "too_fast"} <= set(r.faults) for r in reps)
    # 100 - 40 * (80 - 75) / 80 (ROM short of the 80 deg target) - 15 (too fast) = 82.5
    assert all(abs(r.quality - 82.5) <= 0.5 for r in reps)
    slow = RepetitionEngine(default_library().get("squat"))
    for i, v in enumerate(_squats(2, period_s=5.0, depth=100)):
        slow.step(i / 30, i, _frame_angles(float(v)), np.ones(33))
    assert [r.quality for r in slow.reps] == [100, 100] and not slow.reps[0].faults
    cues = [e for e in events if isinstance(e, Feedback)]
    assert len(cues) == 1 and cues[0].key == "rep.rom"  # rate-limited, one cue
    r = reps[0]
    assert r.up_s > 0 and r.down_s > 0 and math.isclose(r.excursion_deg, 75, abs_tol=1)


def _standing_landmarks(ankle_dx: float = 0.0) -> np.ndarray:
    """A side-on standing figure (33, 4), normalised coordinates, all visible;
    the ankles shifted by `ankle_dx` of the frame width."""
    lm = np.zeros((33, 4), dtype=np.float32)
    lm[:, 3] = 1.0
    for side in ("left", "right"):
        lm[INDEX[f"{side}_shoulder"], :2] = (0.5, 0.2)
        lm[INDEX[f"{side}_hip"], :2] = (0.5, 0.5)
        lm[INDEX[f"{side}_knee"], :2] = (0.5, 0.7)
        lm[INDEX[f"{side}_ankle"], :2] = (0.5 + ankle_dx, 0.9)
    return lm


def test_a_repetition_while_the_feet_travel_is_rejected() -> None:
    """Anchors: squat-like knee angles while the feet travel across the frame
    (walking, jumping) do not count; the same angles with the feet planted do."""
    squat = default_library().get("squat")
    values = _squats(3)
    for travel, expected in ((0.0, 3), (0.6, 0)):  # 0.6 of the width: 2 trunk lengths
        engine = RepetitionEngine(squat)
        events = []
        for i, v in enumerate(values):
            dx = travel * (i % 90) / 90  # the feet move during each 3 s repetition
            lm = _standing_landmarks(dx)
            events += engine.step(i / 30, i, _frame_angles(float(v)), lm[:, 3], lm, (640, 480))
        assert len(engine.reps) == expected
        rejected = [e for e in events if isinstance(e, RepRejected)]
        assert len(rejected) == 3 - expected == engine.summary().rejected
        if rejected:
            assert "ankle moved" in rejected[0].reason and "in place" in rejected[0].reason


def test_the_far_foot_wobbling_does_not_reject_a_squat() -> None:
    """Side-on, the far foot hides behind the near one and the model guesses
    where it is: it wobbles on its own (seen at visibility 0.6, 0.3 trunk
    lengths back and forth) while the near foot (0.95) stays planted. A part
    anchored on both sides is judged on its better seen side: the squats
    count. When the better seen foot travels, they do not."""
    squat = default_library().get("squat")
    values = _squats(3)
    rng = np.random.default_rng(0)
    for near_travels, expected in ((False, 3), (True, 0)):
        engine = RepetitionEngine(squat)
        for i, v in enumerate(values):
            lm = _standing_landmarks()
            far, near = INDEX["left_ankle"], INDEX["right_ankle"]
            lm[far, 0] += 0.18 * rng.uniform(-0.5, 0.5)  # 0.3 trunk lengths of wobble
            lm[far, 3], lm[near, 3] = 0.6, 0.95
            if near_travels:
                lm[[far, near], 0] += 0.6 * (i % 90) / 90
            engine.step(i / 30, i, _frame_angles(float(v)), lm[:, 3], lm, (640, 480))
        assert len(engine.reps) == expected, near_travels


@pytest.fixture(scope="module")
def lite_pose_of(store, clip):
    """Poses of a shared clip with the lite model: the one live sessions use."""
    return poses_through(store, clip, "mediapipe", variant="lite", mode="video")


@pytest.mark.parametrize(
    ("name", "exercise", "reps"),
    [("squat_side_yuyoujiang.mp4", "squat", 3), ("pushup_wrong51.mp4", "push_up", 1)],
)
def test_the_lite_model_counts_side_views_in_place(lite_pose_of, name, exercise, reps) -> None:
    """With the lite model (live sessions' default), the far ankle of these
    side views wobbles 0.3 trunk lengths: judged on the worst-travelled
    anchor, two of the three squats and the push-up were rejected as "not
    done in place" (1 of 3, 0 of 1 before stop 22); on the better seen side,
    all count."""
    analysis = analyze_sequence(lite_pose_of(name), default_library().get(exercise))
    assert analysis.summary.reps == reps and analysis.summary.rejected == 0


def _curl_angles(elbow: float, upper_arm: float) -> dict[str, float]:
    return {
        f"{s}_{n}": v for s in ("left", "right")
        for n, v in (("elbow_flexion", elbow), ("upper_arm_inclination", upper_arm))
    }  # fmt: skip


def test_elbow_drift_is_a_fault_cued_during_the_repetition() -> None:
    curl = default_library().get("elbow_flexion")
    values = _squats(2, depth=120)
    for drift, faulty in ((10.0, False), (45.0, True)):
        engine = RepetitionEngine(curl, side="left", feedback_interval_s=0)
        events = []
        for i, v in enumerate(values):
            # the upper arm swings forward in proportion to the curl
            events += engine.step(
                i / 30, i, _curl_angles(float(v), 5 + drift * float(v) / 125), np.ones(33)
            )
        assert len(engine.reps) == 2
        assert all(("elbow_drift" in r.faults) is faulty for r in engine.reps)
        cues = [(i, e) for i, e in enumerate(events) if isinstance(e, Feedback)]
        if not faulty:
            assert not cues
            continue
        assert [e.key for _i, e in cues] == ["curl.elbow", "curl.elbow"]  # one per repetition
        done = [i for i, e in enumerate(events) if isinstance(e, RepCompleted)]
        started = [i for i, e in enumerate(events) if isinstance(e, RepStarted)]
        # each cue comes while its repetition is under way, not after it
        assert all(s < c < d for (c, _e), s, d in zip(cues, started, done, strict=True))


def test_short_range_is_cued_at_the_turn() -> None:
    engine = RepetitionEngine(default_library().get("squat"), feedback_interval_s=0)
    values = _squats(1, depth=75)  # target 80 deg
    events: list = []
    turn_t = math.nan
    for i, v in enumerate(values):
        new = engine.step(i / 30, i, _frame_angles(float(v)), np.ones(33))
        if any(isinstance(e, Feedback) for e in new):
            turn_t = i / 30
        events += new
    rep = engine.reps[0]
    cue = next(e for e in events if isinstance(e, Feedback))
    assert cue.key == "rep.rom" and "short_range" in rep.faults
    assert rep.t_peak_s < turn_t < rep.t_end_s - 0.5  # on the way back up, not at the end


def test_calibration_counts_a_stiff_shoulder() -> None:
    """A shoulder that abducts only to 85 deg counts whether calibrated or not;
    calibrated to the patient's own 15-85 deg range, that range is the target."""
    abduction = default_library().get("shoulder_abduction")
    values = 15 + _squats(4, depth=70) - 5  # 15 .. 85 deg

    def run(**options) -> RepetitionEngine:
        engine = RepetitionEngine(abduction, **options)
        for i, v in enumerate(values):
            angles = {f"{s}_shoulder_elevation": float(v) for s in ("left", "right")}
            engine.step(i / 30, i, angles, np.ones(33))
        return engine

    plain = run()
    assert len(plain.reps) == 4 and all("short_range" in r.faults for r in plain.reps)
    calibrated = run(calibration_deg=(15, 85))
    assert len(calibrated.reps) == 4
    assert calibrated.target_rom_deg == 70 and not any(
        "short_range" in r.faults for r in calibrated.reps
    )
    with pytest.raises(ValueError, match=r"calibration: the end of the range \(20 deg\)"):
        RepetitionEngine(abduction, calibration_deg=(15, 20))


# --------------------------------------------------------------------------- real clips


def _counted_as(name: str, entry: dict):
    """The library exercise a shared clip is counted under."""
    lib = default_library()
    if entry["exercise"] is None:  # no exercise at all (people walking): 0 squats expected
        return lib.get("squat")
    # a clip whose exercise the library lacks is an error, never counted as squats
    exercise = lib.match(entry["exercise"])
    assert exercise is not None, f"{name}: no exercise matches {entry['exercise']!r}"
    return exercise


@pytest.fixture(scope="module")
def analyses(pose_of, ground_truth):
    out = {}
    for name, entry in ground_truth.items():
        exercise = _counted_as(name, entry)
        seq = pose_of(name)
        out[name] = (entry, seq, analyze_sequence(seq, exercise), analyze_live(seq, exercise))
    return out


KNOWN_MISCOUNTS = {
    "floor_press_quva013.mp4": "dim clip filmed from the feet: MediaPipe's pipeline draws the "
    "body upside down (its face over the hips) in most frames, upright only in 39-125 and "
    "136-182, and loses it in 471-553 (heavy counts 0); the flips are masked as implausible and "
    "6 of the 7 repetitions fall in broken stretches (1 counted; RESULTS.md, the study's "
    "correction). The project's pipeline, which checks each skeleton against the detector's "
    "face box, counts 6 (test_blazepose.py)",
}


def test_counts_within_tolerance(analyses) -> None:
    for name, (entry, _seq, offline, _live) in analyses.items():
        if name in KNOWN_MISCOUNTS:
            continue
        assert abs(offline.summary.reps - entry["reps"]) <= entry["tolerance"], name


@pytest.mark.xfail(strict=True, reason=KNOWN_MISCOUNTS["floor_press_quva013.mp4"])
def test_floor_press_count(analyses) -> None:
    entry, _seq, offline, _live = analyses["floor_press_quva013.mp4"]
    assert offline.summary.reps == entry["reps"]


def test_streaming_and_offline_count_the_same(analyses) -> None:
    for name, (_entry, _seq, offline, live) in analyses.items():
        assert live.summary.reps == offline.summary.reps, name


def _turning_errors(entry: dict, seq, analysis) -> list[float]:
    return turning_point_errors_s(
        analysis.reps, seq.t_s, entry["rep_marks_frame"], entry["marks_are"]
    )


@pytest.mark.parametrize(
    "name",
    [
        "squat_side_yuyoujiang.mp4",
        "squat_side_medflex.mp4",
        "bicep_curl_side_medflex.mp4",
        "shoulder_abduction_front_sagor.mp4",
        "back_extension_side_quva027.mp4",
    ],
)
def test_turning_points_within_0_3_s(analyses, name: str) -> None:
    entry, seq, offline, _live = analyses[name]
    assert max(_turning_errors(entry, seq, offline)) <= 0.3


def test_no_repetitions_while_walking(analyses) -> None:
    _entry, _seq, offline, live = analyses["walking_multi_person_sports2d.mp4"]
    assert offline.summary.reps == 0 and live.summary.reps == 0


def test_walking_clip_under_every_exercise(pose_of) -> None:
    """The parkour clip (jumps, turns, a back flip, people walking past) is no
    exercise: nothing counts under any exercise, and its movements are rejected
    as not done in place (anchors judged in the room)."""
    seq = pose_of("walking_multi_person_sports2d.mp4")
    results = {ex.id: analyze_sequence(seq, ex) for ex in default_library()}
    reps = {k: a.summary.reps for k, a in results.items()}
    assert max(reps.values()) == 0, reps
    assert sum(a.summary.rejected for a in results.values()) >= 8
    reasons = [e.reason for e in results["shoulder_abduction"].events if isinstance(e, RepRejected)]
    assert reasons and all("shoulder moved" in r and "in place" in r for r in reasons)


def test_no_drift_or_hike_faults_on_clean_clips(analyses) -> None:
    for name in ("bicep_curl_side_medflex.mp4", "elbow_flexion_front_sagor.mp4"):
        reps = analyses[name][2].reps
        assert reps and not any("elbow_drift" in r.faults for r in reps), name
    reps = analyses["shoulder_abduction_front_sagor.mp4"][2].reps
    assert reps and not any("shoulder_hike" in r.faults for r in reps)


def _one_after_another(first, second, gap_s: float = 1.0):
    """Two recordings of one camera set-up as one session: poses end to end."""
    assert (first.width, first.height) == (second.width, second.height)
    t = np.concatenate([first.t_s, second.t_s + first.t_s[-1] + gap_s])
    return dataclasses.replace(
        first,
        image=np.concatenate([first.image, second.image]),
        world=np.concatenate([first.world, second.world]),
        t_s=t,
        index=np.arange(len(t)),
        n_people=np.concatenate([first.n_people, second.n_people]),
        camera_xy=np.concatenate([first.camera_xy, second.camera_xy]),
    )


@pytest.mark.parametrize(
    ("first", "second", "exercises", "reps"),
    [
        (  # same studio, same person: squats, then curls
            "squat_side_medflex.mp4", "bicep_curl_side_medflex.mp4",
            ("squat", "elbow_flexion", "shoulder_abduction"), (2, 2, 0),
        ),
        (  # same room, same person: curls, then shoulder abduction
            "elbow_flexion_front_sagor.mp4", "shoulder_abduction_front_sagor.mp4",
            ("elbow_flexion", "shoulder_abduction"), (6, 6),
        ),
    ],
)  # fmt: skip
def test_a_program_followed_through_one_recording(pose_of, ground_truth, first, second,
                                                  exercises, reps) -> None:  # fmt: skip
    seq = _one_after_another(pose_of(first), pose_of(second))
    program = program_from_data(
        {"title": "Session", "sessions_per_week": 3,
         "exercises": [{"exercise": e, "sets": 1, "reps": 10} for e in exercises]},
        "test",
    )  # fmt: skip
    result = analyze_program(seq, program)
    counted = [run.analysis.summary.reps for run in result.runs]
    tolerance = [ground_truth[first]["tolerance"], ground_truth[second]["tolerance"], 0][
        : len(reps)
    ]
    assert all(abs(c - r) <= t for c, r, t in zip(counted, reps, tolerance, strict=True)), counted
    boundary = pose_of(first).t_s[-1] + 1.0  # the second recording starts here
    a, b = result.runs[0], result.runs[1]
    # the second exercise starts with its first repetition, after the boundary
    assert a.t_end_s == b.t_start_s and boundary - 1.0 <= b.t_start_s <= b.analysis.reps[0].t_peak_s
    assert all(r.t_end_s <= boundary for r in a.analysis.reps)
    assert all(r.t_start_s >= b.t_start_s for r in b.analysis.reps)
    assert not any(isinstance(e, WrongView) for run in result.runs for e in run.analysis.events)
    if len(result.runs) > 2:
        assert math.isnan(result.runs[2].t_start_s) and not result.runs[2].analysis.reps


def test_correct_push_ups_score_above_wrong_ones(analyses) -> None:
    correct = [
        r for n in ("pushup_correct1.mp4", "pushup_correct100.mp4") for r in analyses[n][2].reps
    ]
    wrong = [r for n in ("pushup_wrong100.mp4", "pushup_wrong51.mp4") for r in analyses[n][2].reps]
    assert correct and wrong
    assert min(r.quality for r in correct) > max(r.quality for r in wrong)
    assert all("body_line" in r.faults for r in wrong)
    assert not any("body_line" in r.faults for r in correct)


def test_wrong_view_is_named(pose_of) -> None:
    lib = default_library()
    side_clip = pose_of("squat_side_yuyoujiang.mp4")
    views = [e for e in analyze_sequence(side_clip, lib.get("shoulder_abduction")).events
             if isinstance(e, WrongView)]  # fmt: skip
    assert views and views[0].seen == "side"
    assert views[0].text == (
        "Shoulder abduction is measured from the front; this video looks side-on"
    )
    assert not [e for e in analyze_sequence(side_clip, lib.get("squat")).events
                if isinstance(e, WrongView)]  # fmt: skip


# --------------------------------------------------------------------------- candidate signals


def _both(value: float, name: str) -> dict[str, float]:
    return {f"{s}_{name}": value for s in ("left", "right")}


def test_the_signal_that_sees_the_movement_counts() -> None:
    """Filmed from the front, image-plane knee flexion hardly moves while the
    world angle does: the engine counts on the world angle, every repetition,
    and says so once; with the image angle moving too it stays with it."""
    squat = default_library().get("squat")
    values = _squats(4)
    flat = 5 + 2 * np.sin(np.arange(len(values)) / 7)  # what the image plane sees

    def run(image: np.ndarray, world: np.ndarray) -> tuple[RepetitionEngine, list]:
        engine = RepetitionEngine(squat, reps_per_set=2)
        events: list = []
        for i in range(len(values)):
            angles = _both(float(image[i]), "knee_flexion")
            angles |= {f"world:{k}": v for k, v in _both(float(world[i]), "knee_flexion").items()}
            events += engine.step(i / 30, i, angles, np.ones(33))
        return engine, events

    engine, events = run(flat, values)
    chosen = [e for e in events if isinstance(e, SignalChosen)]
    assert len(chosen) == 1 and chosen[0].signal == "knee_flexion (world)"
    assert chosen[0].previous == "knee_flexion (image)" and chosen[0].credited == 2
    assert len(engine.reps) == 4 and [r.index for r in engine.reps] == [1, 2, 3, 4]
    starts = [r.t_start_s for r in engine.reps]
    assert starts == sorted(starts)  # the credited repetitions are the first two
    assert [e.set_index for e in events if isinstance(e, SetCompleted)] == [1, 2]
    summary = engine.summary()
    assert summary.reps == 4 and summary.signal == "knee_flexion (world)"

    engine, events = run(values, values)  # both see it: the primary counts
    assert len(engine.reps) == 4 and not [e for e in events if isinstance(e, SignalChosen)]
    assert engine.summary().signal == "knee_flexion (image)"

    engine, events = run(values, flat)  # the world estimate fails: nothing changes
    assert len(engine.reps) == 4 and engine.signal == "knee_flexion (image)"


def test_a_calibrated_exercise_counts_on_its_primary_signal() -> None:
    """The therapist's calibration is a range of the primary angle: the other
    signals are not consulted."""
    squat = default_library().get("squat")
    engine = RepetitionEngine(squat, calibration_deg=(5, 90))
    assert [e.exercise.signal_label for e in engine.engines] == ["knee_flexion (image)"]


def test_a_view_the_primary_signal_cannot_see(pose_of) -> None:
    """Real squats (`squat_side_medflex`) as a camera straight above would see
    them: the world landmarks turned 90 deg about the left-right axis and
    projected, the feet kept in place. The image-plane knee angle then counts
    nothing; the engine counts on the world angle, the same live and offline."""
    squat = default_library().get("squat")
    feet = [INDEX["left_ankle"], INDEX["right_ankle"]]
    seq = seen_from(pose_of("squat_side_medflex.mp4"), 0, 90, feet)  # a camera straight above
    primary_only = analyze_sequence(seq, dataclasses.replace(squat, alternatives=()))
    assert primary_only.summary.reps == 0
    offline, live = analyze_sequence(seq, squat), analyze_live(seq, squat)
    assert offline.summary.reps == live.summary.reps == 2
    assert offline.summary.signal == "knee_flexion (world)"
    assert [e for e in offline.events if isinstance(e, SignalChosen)]


def test_every_alternative_signal_is_justified_and_counts_no_phantoms(pose_of) -> None:
    """Each library exercise names its alternatives with a reason, and no
    candidate counts the walking clip (no exercise) as repetitions."""
    walking = pose_of("walking_multi_person_sports2d.mp4")
    for exercise in default_library():
        for alt in exercise.alternatives:
            assert len(alt.why) >= 40, (exercise.id, alt.angle)
        engine = RepetitionEngine(exercise)
        feed = OfflineFeed(walking, exercise)
        feed.engine = engine
        for i in range(len(walking)):
            feed.step(i)
        assert [len(e.reps) for e in engine.engines] == [0] * len(engine.engines), exercise.id


def test_rest_between_sets_is_rest() -> None:
    """After a set of three 100 deg squats and a prescribed 30 s rest: a 40 deg
    movement during the rest (settling, reaching for a drink) does not count,
    the next set started early does; after the rest, a 40 deg squat counts (a
    short one: the target is a target, not a gate)."""
    squat = default_library().get("squat")
    still = np.full(90, 5.0)
    values = np.concatenate([
        _squats(3), still, _squats(1, depth=40), still, _squats(1), np.full(900, 5.0),
        _squats(1, depth=40),
    ])  # fmt: skip
    t = np.arange(len(values)) / 30

    def run(**options) -> list[RepResult]:
        engine = RepetitionEngine(squat, reps_per_set=3, **options)
        for i, v in enumerate(values):
            engine.step(float(t[i]), i, _frame_angles(float(v)), np.ones(33))
        return engine.reps

    resting = run(rest_s=30)
    assert len(resting) == 5
    assert [round(r.excursion_deg / 10) * 10 for r in resting] == [100, 100, 100, 100, 40]
    assert "short_range" in resting[-1].faults
    assert len(run()) == 6  # without a rest prescribed, the 40 deg movement counts


def test_a_program_session_live_follows_sets_and_exercises(pose_of) -> None:
    """The program state machine fed PoseFrames one by one (a live session
    without any transport): curls, then shoulder abduction (two recordings of
    one room, end to end), 2 sets of 3 each. It says when each exercise
    starts and is complete, numbers the sets, and counts what the offline
    program analysis counts."""
    from telerehab.rehab_programs.engine import LiveAnalyzer
    from telerehab.rehab_programs.events import ExerciseCompleted, ExerciseStarted
    from telerehab.rehab_programs.program_run import ProgramSession

    seq = _one_after_another(pose_of("elbow_flexion_front_sagor.mp4"),
                             pose_of("shoulder_abduction_front_sagor.mp4"))  # fmt: skip
    program = program_from_data(
        {"title": "Arms", "sessions_per_week": 3, "exercises": [
            {"exercise": "elbow_flexion", "sets": 2, "reps": 3, "rest_s": 0},
            {"exercise": "shoulder_abduction", "sets": 2, "reps": 3, "rest_s": 0}]},
        "test",
    )  # fmt: skip
    lib = default_library()
    session = ProgramSession(
        program.exercises,
        lambda p: LiveAnalyzer(lib.get(p.exercise_id), **p.engine_options()),
    )
    steps = [s for frame in seq.frames() for s in session.step(frame.t_s, frame)]
    started = [(s.exercise, s.event.t_s) for s in steps if isinstance(s.event, ExerciseStarted)]
    assert [k for k, _t in started] == [0, 1]
    boundary = pose_of("elbow_flexion_front_sagor.mp4").t_s[-1] + 1.0
    assert started[1][1] >= boundary  # moved on in the second recording
    reps = [(s.exercise, s.set_index) for s in steps if isinstance(s.event, RepCompleted)]
    withdrawn = [s for s in steps if isinstance(s.event, RepWithdrawn)]
    offline = analyze_program(seq, program)
    counted = [run.analysis.summary.reps for run in offline.runs]
    assert len(reps) - len(withdrawn) == sum(counted) and counted[1] == 6
    assert [k for k, _s in reps].count(1) == 6
    assert [s for k, s in reps if k == 1] == [1, 1, 1, 2, 2, 2]
    sets = [(s.exercise, s.event.set_index) for s in steps if isinstance(s.event, SetCompleted)]
    assert (1, 1) in sets and (1, 2) in sets
    completed = [s.exercise for s in steps if isinstance(s.event, ExerciseCompleted)]
    assert 1 in completed and completed == sorted(set(completed))


@pytest.mark.parametrize("name", ["squat_side_yuyoujiang.mp4", "bicep_curl_side_medflex.mp4"])
def test_a_slow_device_counts_the_same(pose_of, ground_truth, name) -> None:
    """A live worker on an old laptop processes only the latest frame it can:
    the same clip sampled at a sixth and a tenth of its rate (5 and 3 frames a
    second) counts what the full rate counts. Before, every gap over 0.3 s cut
    the repetition in progress and 3 frames a second counted nothing."""
    seq = pose_of(name)
    exercise = default_library().match(ground_truth[name]["exercise"])
    full = analyze_live(seq, exercise).summary.reps
    assert full == ground_truth[name]["reps"]
    for step in (6, 10):
        keep = np.arange(0, len(seq), step)
        sparse = dataclasses.replace(
            seq, image=seq.image[keep], world=seq.world[keep], t_s=seq.t_s[keep],
            index=seq.index[keep], n_people=seq.n_people[keep], camera_xy=seq.camera_xy[keep],
        )  # fmt: skip
        assert analyze_live(sparse, exercise).summary.reps == full, step


def test_a_mirrored_recording_counts_the_same(analyses) -> None:
    """Filmed facing the other way, or by a webcam that mirrors its picture, a
    patient is counted the same: every shared clip's poses mirrored (x flipped,
    left and right exchanged) give the same repetitions with the same range,
    a one-sided exercise on the other side. The engine's symmetry, not the
    pose model's: the model is not run on a mirrored video."""
    for name, (entry, seq, offline, _live) in analyses.items():
        exercise = _counted_as(name, entry)
        mirror = analyze_sequence(mirrored(seq), exercise)
        assert mirror.summary.reps == offline.summary.reps, name
        got = [(r.t_start_s, r.excursion_deg) for r in mirror.reps]
        want = [(r.t_start_s, r.excursion_deg) for r in offline.reps]
        assert np.allclose(got, want, atol=1e-3) if want else not got, name
        side = {"left": "right", "right": "left"}.get(offline.summary.side, offline.summary.side)
        assert mirror.summary.side == side, name


def test_a_recording_cut_anywhere_counts_what_follows_the_cut(analyses) -> None:
    """A recording may start anywhere (the camera switched on late, a clip cut
    from a longer one): started at every whole second of every shared clip,
    it counts every repetition the whole recording counted from there on, and
    at most one more, only when the cut fell inside a repetition (its second
    half-cycle may then be taken for a whole one when it starts on the rest
    side of the prior). Never a repetition out of nothing."""
    for name, (entry, seq, offline, _live) in analyses.items():
        exercise = _counted_as(name, entry)
        for cut in np.arange(1.0, seq.t_s[-1] - 0.5, 1.0):
            after = sum(r.t_start_s >= cut for r in offline.reps)
            inside = any(r.t_start_s < cut < r.t_end_s for r in offline.reps)
            got = analyze_sequence(seq.between(cut), exercise).summary.reps
            assert after <= got <= after + inside, (name, cut, after, got)


def test_a_patient_a_little_slower_or_faster_is_counted_the_same(analyses) -> None:
    """The same movements made 20% slower or 25% faster (every shared clip's
    poses with their times stretched) count the same: nothing in the counter
    is tuned to the pace of the clips. Further out the duration bounds decide
    (`rep_duration`; the study in benchmarks/RESULTS.md, `invariance.py`)."""
    for name, (entry, seq, offline, _live) in analyses.items():
        exercise = _counted_as(name, entry)
        for factor in (0.8, 1.25):
            got = analyze_sequence(at_speed(seq, factor), exercise).summary.reps
            assert got == offline.summary.reps, (name, factor)
    with pytest.raises(PoseError, match="speed factor: expected a number above 0, got 0"):
        at_speed(seq, 0)
