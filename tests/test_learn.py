"""A new exercise learned from a demonstration, then used to count."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from telerehab.cli import main
from telerehab.errors import ProgramError
from telerehab.rehab_programs.engine import analyze_live, analyze_sequence
from telerehab.rehab_programs.exercise import ExerciseModel, exercise_from_model
from telerehab.rehab_programs.learn import learn_exercise
from telerehab.rehab_programs.library import default_library

DEMO = "squat_side_yuyoujiang.mp4"  # squats at 2.8, 5.6 and 8.4 s
DEMO_END_S = 7.5  # the first two


def _learned(seq) -> object:
    doc = learn_exercise(seq.between(None, DEMO_END_S), "chair_squat", "Chair squat", origin=DEMO)
    return doc, exercise_from_model(ExerciseModel.model_validate(doc), DEMO)


def test_learned_from_two_squats_counts_the_rest_and_another_clip(pose_of) -> None:
    doc, learned = _learned(pose_of(DEMO))
    assert doc["signal"]["angle"] in {"knee_flexion", "hip_flexion", "thigh_inclination"}
    assert doc["phases"]["direction"] == "increase" and doc["views"] == ["side"]
    assert doc["laterality"] == "bilateral"  # the far leg is hidden in a side view
    assert "demonstrated" in doc["target_rom"]["source"]
    for name, reps in ((DEMO, 3), ("squat_side_medflex.mp4", 2)):
        seq = pose_of(name)
        assert analyze_sequence(seq, learned).summary.reps == reps, name
        assert analyze_live(seq, learned).summary.reps == reps, name
    assert analyze_sequence(pose_of("walking_multi_person_sports2d.mp4"), learned).summary.reps == 0


def test_a_demonstration_with_one_repetition_is_refused(pose_of) -> None:
    seq = pose_of("bicep_curl_side_medflex.mp4").between(None, 4.0)  # the first curl only
    with pytest.raises(ProgramError, match=r"^demo: elbow_flexion moved most .* at least 2"):
        learn_exercise(seq, "curl2", "Curl", origin="demo")


def test_learn_from_the_command_line_then_count(
    store, fresh_settings: pytest.MonkeyPatch, clip, tmp_path: Path, capsys
) -> None:
    fresh_settings.setenv("TELEREHAB_MODEL_DIR", str(store.root))
    out = tmp_path / "mine" / "chair_squat.yaml"
    args = [
        "exercises",
        "learn",
        str(clip(DEMO)),
        "--id",
        "chair_squat",
        "--name",
        "Chair squat",
        "--end",
        str(DEMO_END_S),
        "--max-frames",
        "240",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"written    {out}" in printed and "signal" in printed
    assert yaml.safe_load(out.read_text())["id"] == "chair_squat"
    assert main(["analyze", str(clip("squat_side_medflex.mp4")), "--exercise", "chair_squat",
                 "--exercises", str(out.parent), "--no-progress"]) == 0  # fmt: skip
    assert "chair_squat: 2 repetition(s)" in capsys.readouterr().out
    # an id the library has already is refused, naming the file
    (out.parent / "squat.yaml").write_text(out.read_text().replace("chair_squat", "squat"))
    with pytest.raises(ProgramError, match=r"squat\.yaml: id: 'squat' is a library exercise"):
        default_library().with_folder(out.parent)
