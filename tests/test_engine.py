"""The repetition engine: the state machine on synthetic signals, then the real clips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from telerehab.rehab_programs.accuracy import turning_point_errors_s
from telerehab.rehab_programs.engine import RepetitionEngine, analyze_live, analyze_sequence
from telerehab.rehab_programs.events import (
    Feedback,
    RepCompleted,
    SetCompleted,
    TrackingLost,
    TrackingRegained,
    WrongView,
)
from telerehab.rehab_programs.exercise import Phases
from telerehab.rehab_programs.library import default_library
from telerehab.rehab_programs.repetitions import RepetitionCounter

SQUAT = Phases(direction=1, rest_deg=30, peak_deg=70)


def _count(values: np.ndarray, fps: float = 30.0, phases: Phases = SQUAT) -> tuple[int, list]:
    counter = RepetitionCounter(phases, min_s=0.8, max_s=12)
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


def test_jitter_around_a_threshold_counts_nothing() -> None:
    """Noise narrower than the 40 deg gap between the zones (3 sd = 15 deg) never counts."""
    rng = np.random.default_rng(1)
    for level in (30.0, 50.0, 70.0):  # at rest edge, between zones, at the turning edge
        assert _count(level + 5 * rng.standard_normal(3000))[0] == 0


def test_partial_and_too_fast_movements_do_not_count() -> None:
    count, outcomes = _count(_squats(3, depth=55))  # never reaches the turning zone
    assert count == 0 and outcomes.count("partial") == 3
    count, outcomes = _count(_squats(4, period_s=0.5))  # 0.5 s "repetitions"
    assert count == 0 and "too_short" in outcomes


def test_a_missing_sample_abandons_the_repetition() -> None:
    values = _squats(2)
    values[40] = np.nan  # mid-way through the first repetition
    count, outcomes = _count(values)
    assert count == 1 and "abandoned" in outcomes


def test_decreasing_exercises() -> None:
    bridge = Phases(direction=-1, rest_deg=40, peak_deg=20)
    assert _count(65 - _squats(3, depth=60), phases=bridge)[0] == 3


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
    assert len(reps) == 3 and all({"rom_short", "too_fast"} <= set(r.faults) for r in reps)
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


# --------------------------------------------------------------------------- real clips


@pytest.fixture(scope="module")
def analyses(pose_of, ground_truth):
    lib = default_library()
    out = {}
    for name, entry in ground_truth.items():
        exercise = lib.match(entry["exercise"]) or lib.get("squat")
        seq = pose_of(name)
        out[name] = (entry, seq, analyze_sequence(seq, exercise), analyze_live(seq, exercise))
    return out


KNOWN_MISCOUNTS = {
    "floor_press_quva013.mp4": "dim top-down clip: the elbow angle from above is foreshortened "
    "and lost in frames ~480-550; 4 of 7 counted",
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
