"""Exercise demonstrations: the skeleton the patient's page animates shows the
movement the engine counts (the engine counts every demonstration), with a
rigid body, from a block every library file carries and validates; the API
serves it in the replay's movement record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from telerehab.errors import ProgramError
from telerehab.pose.kinematics import compute_angles
from telerehab.pose.landmarks import EDGES
from telerehab.rehab_programs.demonstration import REPS, of_exercise, sequence
from telerehab.rehab_programs.engine import analyze_sequence
from telerehab.rehab_programs.exercise import load_exercise
from telerehab.rehab_programs.library import default_library
from telerehab.server import accounts, exercises, movement
from telerehab.server.app import create_app
from telerehab.server.db import open_database
from telerehab.settings import Settings

LIBRARY = Path(__file__).resolve().parent.parent / "rehab_programs" / "library"
IDS = default_library().ids
ROM_TOLERANCE_DEG = 3.0  # the engine's smoothing against the drawn angle


def _counted_angle(ex, seq, side: str) -> np.ndarray:
    """The engine's signal measured straight on the drawn skeleton (no
    smoothing): the counted side, or the mean of both for a bilateral one."""
    space = ex.signal_space
    points = seq.world if space == "world" else seq.image
    sides = ("left", "right") if side == "both" else (side,)
    names = [ex.signal_angle]
    if ex.laterality != "midline":
        names = [f"{s}_{ex.signal_angle}" for s in sides]
    table = compute_angles(points, space, width=seq.width, height=seq.height, names=tuple(names))
    return np.mean([table[n] for n in names], axis=0)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_engine_counts_each_library_demonstration(exercise_id: str) -> None:
    """The picture shows the movement the counter counts: every repetition
    of the demonstration, none rejected or partial, its range of motion that of
    the drawn skeleton and within the exercise's target range."""
    ex = default_library().get(exercise_id)
    assert ex.demonstration is not None, f"{exercise_id}.yaml has no demonstration block"
    seq = sequence(ex.demonstration, ex.tempo_s)
    summary = analyze_sequence(seq, ex).summary
    assert (summary.reps, summary.partials, summary.rejected) == (REPS, 0, 0), summary
    angle = _counted_angle(ex, seq, summary.side)
    drawn = float(np.nanmax(angle) - np.nanmin(angle))
    assert abs(summary.mean_excursion_deg - drawn) < ROM_TOLERANCE_DEG, (summary, drawn)
    lo, hi = ex.target_rom_deg
    assert lo <= drawn <= hi, (exercise_id, drawn, ex.target_rom_deg)
    assert not summary.faults, summary.faults  # the demonstration is done well


def test_the_skeleton_is_rigid() -> None:
    """Every segment keeps its length through every animation (world metres)."""
    for ex in default_library():
        seq = sequence(ex.demonstration, ex.tempo_s)
        for a, b in EDGES:
            length = np.linalg.norm(seq.world[:, a] - seq.world[:, b], axis=-1)
            assert np.ptp(length) < 1e-4, (ex.id, a, b, np.ptp(length))


def test_a_squat_keeps_its_feet_on_the_floor_and_lowers_the_pelvis() -> None:
    ex = default_library().get("squat")
    seq = sequence(ex.demonstration, ex.tempo_s)
    feet = seq.image[:, [29, 30, 31, 32], :2]  # heels and toes
    assert np.ptp(feet, axis=0).max() < 1e-3
    hips_y = seq.image[:, [23, 24], 1].mean(axis=1)
    assert np.ptp(hips_y) > 0.1  # the pelvis goes down (y grows downwards) and up


def _with_block(tmp_path: Path, old: str, new: str) -> Path:
    text = (LIBRARY / "squat.yaml").read_text()
    assert old in text
    path = tmp_path / "squat.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{joint: knee_flexion, from_deg: 0", "{joint: knee_flex, from_deg: 0",
         "demonstration.joints[2].joint"),
        ("to_deg: 100}", "to_deg: lots}", "demonstration.joints[2].to_deg"),
        ("posture: standing", "posture: kneeling", "demonstration.posture"),
        ("fixed: [heel, foot_index]", "fixed: [heel, foot_indx]",
         "demonstration.fixed[1]: unknown landmark or part 'foot_indx' (did you mean "
         "'foot_index'?)"),
    ],
)  # fmt: skip
def test_a_bad_demonstration_block_names_its_file_and_field(tmp_path, old, new, message) -> None:
    path = _with_block(tmp_path, old, new)
    with pytest.raises(ProgramError) as info:
        load_exercise(path)
    assert str(path) in str(info.value) and message in str(info.value), info.value


def test_the_demonstration_view_is_one_of_the_exercise_views(tmp_path) -> None:
    path = _with_block(tmp_path, "views: [side, front]", "views: [front]")
    with pytest.raises(ProgramError, match=r"squat.yaml: demonstration.view: 'side' is not one"):
        load_exercise(path)


def test_a_learned_exercise_without_a_block_is_shown_from_its_definition(tmp_path) -> None:
    """A therapist's exercise (`learn`) keeps only its definition: the
    demonstration turns its signal's joint from the rest to the turning point
    it was taught with, and the engine counts that too."""
    text = (LIBRARY / "seated_knee_extension.yaml").read_text()
    path = tmp_path / "seated_knee_extension.yaml"
    path.write_text(text[: text.index("demonstration:")])
    ex = load_exercise(path)
    assert ex.demonstration is None
    demo = of_exercise(ex)
    assert demo.posture == "sitting" and demo.joints[0].joint == "knee_flexion"
    summary = analyze_sequence(sequence(demo, ex.tempo_s), ex).summary
    assert (summary.reps, summary.partials, summary.rejected) == (REPS, 0, 0), summary


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_demonstration_from_the_definition_alone_is_counted(exercise_id: str) -> None:
    """Each library exercise as if taught (no block): the movement made from
    its signal, priors and anchors is counted too."""
    ex = dataclasses.replace(default_library().get(exercise_id), demonstration=None)
    summary = analyze_sequence(sequence(of_exercise(ex), ex.tempo_s), ex).summary
    assert (summary.reps, summary.partials, summary.rejected) == (REPS, 0, 0), summary


def test_the_api_serves_a_record_the_replay_draws(tmp_path: Path) -> None:
    """Anyone signed in reads a demonstration as a session's movement record:
    the same fields, 33 [x, y, visibility] per frame, frames thinned as a
    kept movement's; unknown exercises are 404 and strangers 401."""
    db = open_database(f"sqlite:///{tmp_path / 'demo.db'}")
    app = create_app(Settings(data_dir=tmp_path), db)
    with db.session() as s:
        user = accounts.create_user(s, "pat@home.org", "Pat", "patient", "correct-horse-1")
        token = accounts.issue_token(s, user, "bearer")[0]
        thea = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", "correct-horse-1")
        taught = yaml.safe_load((LIBRARY / "seated_knee_extension.yaml").read_text())
        del taught["demonstration"]  # as `learn` writes it
        exercises.add_exercise(s, {**taught, "id": "knee_taught"}, thea.id)
    with TestClient(app) as c:
        assert c.get("/api/exercises/squat/demonstration").status_code == 401
        c.headers["Authorization"] = f"Bearer {token}"
        r = c.get("/api/exercises/squat/demonstration")
        assert r.status_code == 200, r.text
        x = r.json()
        assert x["exercise_id"] == "squat" and x["width"] > 0 and x["height"] > 0
        assert len(x["t_s"]) == len(x["landmarks"]) > 2 * REPS * 15  # several seconds at 15 fps
        assert np.all(np.diff(x["t_s"]) > 1 / movement.MAX_FPS - 1e-3)
        frame = np.array(x["landmarks"][0], dtype=float)
        assert frame.shape == (33, 3) and np.all((frame[:, :2] > 0) & (frame[:, :2] < 1))
        assert c.get("/api/exercises/sqaut/demonstration").status_code == 404
        # an exercise a therapist taught: made from its definition
        taught = c.get("/api/exercises/knee_taught/demonstration").json()
        assert taught["exercise_id"] == "knee_taught" and len(taught["landmarks"]) > 30
    db.close()
