"""Exercise library and program files: content, and errors that say where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from telerehab.cli import main
from telerehab.errors import ProgramError
from telerehab.rehab_programs.exercise import load_exercise
from telerehab.rehab_programs.library import Library, default_library
from telerehab.rehab_programs.program import load_program

LIBRARY = Path(__file__).resolve().parent.parent / "rehab_programs" / "library"
REQUIRED = {
    "squat", "sit_to_stand", "lunge", "glute_bridge", "standing_hip_abduction",
    "seated_knee_extension", "heel_raise", "straight_leg_raise", "shoulder_abduction",
    "shoulder_flexion", "elbow_flexion", "push_up", "wall_push_up", "floor_press",
    "back_extension", "crunch",
}  # fmt: skip


def test_library_has_the_prescribed_exercises() -> None:
    lib = default_library()
    assert len(lib) >= 15 and set(lib.ids) >= REQUIRED
    for ex in lib:
        assert ex.target_rom_source and ex.instructions and ex.views
        lo, hi = ex.target_rom_deg
        assert 0 < lo < hi <= 180, ex.id
        for rule in ex.form_rules:
            assert rule.message in ex.feedback, (ex.id, rule.id)


def test_every_shared_clip_has_an_exercise(ground_truth: dict) -> None:
    lib = default_library()
    for name, entry in ground_truth.items():
        if entry["exercise"] is not None:
            assert lib.match(entry["exercise"]) is not None, (name, entry["exercise"])
    assert lib.match("supine dumbbell floor press (elbow extension)").id == "floor_press"
    assert lib.match("prone back extension on a bench").id == "back_extension"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _exercise_text(**changes: str) -> str:
    text = (LIBRARY / "squat.yaml").read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    return text


def test_exercise_errors_name_file_path_value(tmp_path: Path) -> None:
    bad = _write(tmp_path, "squat.yaml", _exercise_text(**{"rest_deg: 5": "rest_deg: thirty"}))
    with pytest.raises(ProgramError) as info:
        load_exercise(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad}: phases.rest_deg: expected a number in -90..180, got 'thirty'")

    bad = _write(tmp_path, "k.yaml", _exercise_text(**{"min_visibility:": "min_visiblity:"}))
    with pytest.raises(
        ProgramError, match=r"min_visiblity: unknown key \(did you mean 'min_visibility'\?\)"
    ):
        load_exercise(bad)

    bad = _write(tmp_path, "p.yaml", _exercise_text(**{"peak_deg: 95": "peak_deg: 1"}))
    with pytest.raises(ProgramError, match=r"phases: .*peak_deg \(1\.0\) must lie beyond rest_deg"):
        load_exercise(bad)

    bad = _write(
        tmp_path, "a.yaml", _exercise_text(**{"angle: knee_flexion}": "angle: knee_flexon}"})
    )
    with pytest.raises(
        ProgramError,
        match=r"signal.angle: unknown angle 'knee_flexon' \(did you mean 'knee_flexion'\?\)",
    ):
        load_exercise(bad)


def test_anchor_errors(tmp_path: Path) -> None:
    bad = _write(
        tmp_path, "s.yaml", _exercise_text(**{"anchors: [side_ankle]": "anchors: [side_ankel]"})
    )
    with pytest.raises(
        ProgramError,
        match=r"anchors\[0\]: unknown landmark 'side_ankel' \(did you mean 'side_ankle'\?\)",
    ):
        load_exercise(bad)
    bad = _write(
        tmp_path, "o.yaml", _exercise_text(**{"anchors: [side_ankle]": "anchors: [other_ankle]"})
    )
    with pytest.raises(
        ProgramError, match=r"anchors\[0\]: 'other_ankle' needs a unilateral exercise"
    ):
        load_exercise(bad)
    hip = default_library().get("standing_hip_abduction")
    assert hip.anchors_for("left") == ("right_ankle",)
    assert default_library().get("squat").anchors_for("both") == ("left_ankle", "right_ankle")


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    bad = _write(
        tmp_path, "broken.yaml", "title: Knee\nexercises:\n  - exercise: squat\n   sets: [3\n"
    )
    with pytest.raises(ProgramError, match=rf"{bad}: YAML syntax error at line \d+, column \d+"):
        load_program(bad)


def test_library_file_id_must_match_its_name(tmp_path: Path) -> None:
    _write(tmp_path, "deep_squat.yaml", _exercise_text())
    with pytest.raises(
        ProgramError, match=r"deep_squat.yaml: id: expected 'deep_squat'.*got 'squat'"
    ):
        Library.from_folder(tmp_path)


PROGRAM = """\
title: Knee, week 3
sessions_per_week: 3
therapist_notes: Stop if pain rises above 5/10.
exercises:
  - {exercise: squat, sets: 3, reps: 10, target_rom_deg: 90, rest_s: 60}
  - exercise: straight_leg_raise
    sets: 2
    reps: 12
    side: left
    calibration: {rest_deg: 0, end_deg: 50}  # the patient's own range
  - {exercise: glute_bridge, sets: 3, reps: 10, tempo: {up_s: 2, hold_s: 3, down_s: 2}}
"""


def test_program_loads(tmp_path: Path) -> None:
    prog = load_program(_write(tmp_path, "knee.yaml", PROGRAM))
    assert prog.title == "Knee, week 3" and len(prog.exercises) == 3
    assert prog.exercises[1].side == "left" and prog.exercises[2].tempo_s == (2, 3, 2)
    assert prog.exercises[1].calibration_deg == (0, 50)
    assert prog.exercises[1].engine_options()["calibration_deg"] == (0, 50)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "target_rom_deg: 90",
            "exercises[0].target_rom_deg: expected a number in 0..180, got 'ninety'",
        ),
        ("sets: 3, reps: 10, target", "exercises[0].sets: expected a number in 1..20, got 300"),
        (
            "exercise: squat",
            "exercises[0].exercise: unknown exercise 'sqaut' (did you mean 'squat'?)",
        ),
        ("rest_s: 60", "exercises[0].rest_sec: unknown key (did you mean 'rest_s'?)"),
        ("sessions_per_week: 3", "sessions_per_week: required, missing"),
        (
            "end_deg: 50",
            "exercises[1].calibration: the end of the range (5 deg) must lie at least 10 deg "
            "above its rest (0 deg)",
        ),
    ],
)
def test_program_errors(tmp_path: Path, change: str, message: str) -> None:
    replacement = {
        "target_rom_deg: 90": "target_rom_deg: ninety",
        "sets: 3, reps: 10, target": "sets: 300, reps: 10, target",
        "exercise: squat": "exercise: sqaut",
        "rest_s: 60": "rest_sec: 60",
        "sessions_per_week: 3": "",
        "end_deg: 50": "end_deg: 5",
    }[change]
    path = _write(tmp_path, "knee.yaml", PROGRAM.replace(change, replacement, 1))
    with pytest.raises(ProgramError) as info:
        load_program(path)
    assert f"{path}: " in str(info.value) and message in str(info.value)


def test_cli_exercises_and_programs(tmp_path: Path, capsys) -> None:
    assert main(["exercises", "list"]) == 0
    assert "shoulder_abduction" in capsys.readouterr().out
    assert main(["exercises", "show", "squat"]) == 0
    shown = capsys.readouterr().out
    assert "target ROM      80-120 deg" in shown and "trunk_lean" in shown
    assert main(["exercises", "show", "sqaut"]) == 1
    assert "did you mean 'squat'" in capsys.readouterr().err
    good = _write(tmp_path, "knee.yaml", PROGRAM)
    assert main(["programs", "validate", str(good)]) == 0
    assert "ok  " in capsys.readouterr().out
    bad = _write(tmp_path, "bad.yaml", PROGRAM.replace("reps: 12", "reps: lots"))
    assert main(["programs", "validate", str(bad)]) == 1
    assert "exercises[1].reps: expected a number in 1..100, got 'lots'" in capsys.readouterr().err


def test_alternative_signal_errors_name_the_alternative(tmp_path: Path) -> None:
    """An alternative signal must be a known angle, not the primary again, and
    bring its own priors and target when it measures another angle."""
    cases = {
        "space: world}": ("space: image}", r"alternatives\[0\]\.signal: the same as the primary"),
        "{angle: knee_flexion, space: world}": (
            "{angle: knee_flexon, space: world}",
            r"alternatives\[0\]\.signal\.angle: unknown angle 'knee_flexon' "
            r"\(did you mean 'knee_flexion'\?\)",
        ),
        "{angle: knee_flexion, space: world}\n": (
            "{angle: hip_flexion, space: world}\n",
            r"alternatives\[0\]: 'hip_flexion' is not the primary's angle \('knee_flexion'\): "
            r"it needs its own phases and target_rom",
        ),
        "    why: >\n": (
            "    why: too short\n    x: >\n",
            r"alternatives\[0\]\.why: expected string should have at least 20 characters",
        ),
    }
    for i, (old, (new, message)) in enumerate(cases.items()):
        bad = _write(tmp_path, f"alt{i}.yaml", _exercise_text(**{old: new}))
        with pytest.raises(ProgramError, match=message) as info:
            load_exercise(bad)
        assert str(bad) in str(info.value)


def test_an_alternative_with_its_own_angle_loads(tmp_path: Path) -> None:
    """A midline exercise may name a sided angle: the mean of both sides, with
    its own priors and target."""
    text = (
        (LIBRARY / "crunch.yaml")
        .read_text()
        .replace(
            "phases:",
            "alternatives:\n"
            "  - signal: {angle: hip_flexion, space: world}\n"
            "    phases: {direction: increase, rest_deg: 50, peak_deg: 75, min_excursion_deg: 6}\n"
            "    target_rom: {min_deg: 20, max_deg: 40, source: ACSM curl-up}\n"
            "    why: the world hip angle closes as the trunk curls, whatever the view\n"
            "phases:",
            1,
        )
    )
    crunch = load_exercise(_write(tmp_path, "crunch.yaml", text))
    primary, world_hip = crunch.candidates()
    assert primary.signal_label == "trunk_lean (image)" and primary.laterality == "midline"
    assert world_hip.signal_label == "hip_flexion (world)" and world_hip.laterality == "bilateral"
    assert world_hip.phases.rest_deg == 50 and world_hip.target_rom_deg == (20, 40)
    assert world_hip.signal_key("left") == "world:left_hip_flexion"
