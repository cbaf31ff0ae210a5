"""A new exercise learned from a demonstration, then used to count."""

from __future__ import annotations

import tempfile
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
    with pytest.raises(ProgramError, match=r"^demo: no video frames to learn from"):
        learn_exercise(seq.between(100, 101), "curl2", "Curl", origin="demo")


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


def test_a_therapist_teaches_the_server_an_exercise_from_an_upload(
    store, fresh_settings: pytest.MonkeyPatch, clip, tmp_path: Path
) -> None:
    """Upload a demonstration (nothing stored), review, add: the exercise is in
    the server's library at once, a program prescribes it, trends and FHIR
    know it; taken ids, a non-video and the wrong role are refused by name."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from telerehab.server import accounts, records
    from telerehab.server.app import create_app
    from telerehab.server.db import open_database
    from telerehab.server.tables import AuditEvent, CustomExercise
    from telerehab.settings import Settings

    fresh_settings.setenv("TELEREHAB_MODEL_DIR", str(store.root))
    db = open_database(f"sqlite:///{tmp_path / 'learn.db'}")
    app = create_app(Settings(data_dir=tmp_path), db)
    with db.session() as s:
        thea = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", "pw-long-enough")
        pat = accounts.create_user(s, "pat@home.org", "Pat", "patient", "pw-long-enough")
        accounts.link(s, thea.id, pat.id)
        tokens = {u.email: accounts.issue_token(s, u, "bearer")[0] for u in (thea, pat)}
        patient_id = pat.id
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {tokens['thea@clinic.org']}"
    video = clip(DEMO).read_bytes()
    query = f"id=chair_squat&name=Chair%20squat&end_s={DEMO_END_S}"

    r = client.post(f"/api/exercises/learn?{query}", content=video,
                    headers={"Content-Type": "video/mp4"})  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()["document"]
    assert doc["id"] == "chair_squat" and doc["signal"]["angle"] in {
        "knee_flexion", "hip_flexion", "thigh_inclination"
    }  # fmt: skip
    assert doc["alternatives"][0]["signal"]["space"] == "world"
    with db.session() as s:  # learning stores nothing, and no frame is left on disk
        assert s.query(CustomExercise).count() == 0
    assert not list(Path(tempfile.gettempdir()).glob("telerehab-demo-*"))
    doc["instructions"] = "Sit back towards a chair, then stand tall again."  # reviewed
    assert client.post("/api/exercises", json={"document": doc}).status_code == 201
    listed = {e["id"]: e for e in client.get("/api/exercises").json()}
    assert listed["chair_squat"]["custom"] and not listed["squat"]["custom"]
    assert listed["chair_squat"]["signals"][1].endswith("(world)")
    with db.session() as s:  # both recorded as touching that exercise of the library
        trail = s.scalars(select(AuditEvent).where(AuditEvent.action.like("exercise.%")))
        assert [(e.action, e.kind, e.exercise_id) for e in trail] == [
            ("exercise.learn", "exercise", "chair_squat"),
            ("exercise.add", "exercise", "chair_squat"),
        ]

    program = {"title": "Legs", "sessions_per_week": 3,
               "exercises": [{"exercise": "chair_squat", "sets": 2, "reps": 5}]}  # fmt: skip
    r = client.post(f"/api/patients/{patient_id}/programs", json={"document": program})
    assert r.status_code == 201, r.text
    from telerehab.rehab_programs.events import RepResult

    rep = RepResult(1, "both", 0.5, 1.5, 2.5, 45, 2.0, 95.0, 93.0, 2.0, 1.0, 0.0, 1.0, 90,
                    target_rom_deg=136.0)  # fmt: skip
    with db.session() as s:
        x = records.start_session(s, patient_id, pain_before=2)
        records.add_repetition(s, x, "chair_squat", rep)
        records.end_session(s, x, "complete", pain_after=1)
    assert client.get(f"/api/patients/{patient_id}/trends").status_code == 200
    assert client.get(f"/api/patients/{patient_id}/fhir").status_code == 200
    assert ",chair_squat,Chair squat," in client.get(f"/api/patients/{patient_id}/export.csv").text

    # refused, each naming what is wrong
    r = client.post("/api/exercises", json={"document": doc})
    assert r.status_code == 409 and "'chair_squat' exists already" in r.json()["detail"]
    r = client.post("/api/exercises", json={"document": {**doc, "id": "squat"}})
    assert r.status_code == 409 and "'squat' exists already" in r.json()["detail"]
    r = client.post("/api/exercises", json={"document": {**doc, "id": "x2", "views": []}})
    assert r.status_code == 422 and "views" in r.json()["detail"]
    r = client.post(f"/api/exercises/learn?{query}", content=b"not a video",
                    headers={"Content-Type": "video/mp4"})  # fmt: skip
    assert r.status_code == 422 and "not a readable video" in r.json()["detail"]
    r = client.post(f"/api/exercises/learn?{query}", content=video,
                    headers={"Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 422 and "Content-Type text/plain" in r.json()["detail"]
    anonymous = TestClient(app)  # a large body without a login: the small limit, unread
    r = anonymous.post(f"/api/exercises/learn?{query}", content=video,
                       headers={"Content-Type": "video/mp4"})  # fmt: skip
    assert r.status_code == 413 and len(video) > 1024 * 1024
    client.headers["Authorization"] = f"Bearer {tokens['pat@home.org']}"
    r = client.post(f"/api/exercises/learn?{query}", content=video,
                    headers={"Content-Type": "video/mp4"})  # fmt: skip
    assert r.status_code == 403
    db.close()
