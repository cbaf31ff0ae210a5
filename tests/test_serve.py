"""`telerehab serve`, `users`, `db` and `analyze --save`, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from telerehab.cli import main
from telerehab.pose.video import VideoFile
from telerehab.server import movement
from telerehab.server.db import open_database
from telerehab.server.demo import CLIPS, PATIENT, PROGRAM, SCHEDULE, seed_demo
from telerehab.server.tables import ExerciseSession, Movement, Repetition, User

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path, fresh_settings):
    fresh_settings.setenv("TELEREHAB_DATA_DIR", str(tmp_path / "data"))
    fresh_settings.delenv("TELEREHAB_DATABASE_URL", raising=False)
    return tmp_path / "data"


def test_db_upgrade_users_and_analyze_save(data_dir, clip, store, capsys, monkeypatch) -> None:
    assert main(["db", "upgrade"]) == 0
    assert f"sqlite:///{data_dir / 'telerehab.db'} at revision 0009" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", _Stdin("patient-password-1\n"))
    assert main(["users", "create", "--email", "Pat@Home.org", "--name", "Pat Lee",
                 "--role", "patient", "--password-stdin", "--language", "es"]) == 0  # fmt: skip
    assert "created patient pat@home.org (id 1, language es)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", _Stdin("patient-password-1\n"))
    assert main(["users", "create", "--email", "pat@home.org", "--name", "Again",
                 "--role", "patient", "--password-stdin"]) == 1  # fmt: skip
    assert "a user with e-mail 'pat@home.org' already exists" in capsys.readouterr().err
    video = str(clip("bridge_side_physioplus.mp4"))
    with VideoFile(video) as v:
        info = v.info
    args = ["analyze", video, "--exercise", "glute_bridge", "--no-progress"]
    assert main([*args, "--save", "--patient", "nobody@home.org"]) == 1
    assert "no patient 'nobody@home.org'" in capsys.readouterr().err  # checked before analysing
    assert main([*args, "--save", "--patient", "pat@home.org", "--pain-before", "3"]) == 0
    assert "saved      session 1 of pat@home.org" in capsys.readouterr().out
    assert main([*args, "--save", "--patient", "pat@home.org", "--no-movement"]) == 0
    assert "session 2 of pat@home.org" in (out := capsys.readouterr().out)
    assert "without its movement" in out
    db = open_database(f"sqlite:///{data_dir / 'telerehab.db'}")
    with db.session() as s:
        x = s.get(ExerciseSession, 1)
        assert (x.status, x.source, x.pain_before) == ("complete", "video", 3)
        assert [r.exercise_id for r in x.repetitions] == ["glute_bridge"]
        assert s.get(User, 1).language == "es"
        # the therapist's replay: the clip's skeleton at 15 fps, its repetition inside it
        kept = s.scalars(select(Movement).where(Movement.session_id == 1)).all()
        assert [(m.exercise_id, m.width, m.height) for m in kept] == [
            ("glute_bridge", info.width, info.height)]  # fmt: skip
        t_s, lm = movement.decode(kept[0].data)
        assert kept[0].frames == len(t_s) > 0.8 * 15 * info.duration_s
        rep = x.repetitions[0]
        assert t_s[0] <= rep.t_start_s < rep.t_end_s <= t_s[-1] + 0.1
        assert np.isfinite(lm[:, :, :2]).mean() > 0.9
        assert not s.get(ExerciseSession, 2).movement_consent
        assert s.scalar(select(func.count(Movement.id)).where(Movement.session_id == 2)) == 0
    db.close()


def test_users_deactivate_and_unlink_from_the_command_line(data_dir, capsys, monkeypatch) -> None:
    from telerehab.server import accounts
    from telerehab.server.tables import AuditEvent

    db = open_database(f"sqlite:///{data_dir / 'telerehab.db'}")
    with db.session() as s:
        t = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", "therapist-pw-1")
        p = accounts.create_user(s, "pat@home.org", "Pat", "patient", "patient-pw-1")
        accounts.link(s, t.id, p.id)
        secret, _ = accounts.issue_token(s, p, "bearer")
    assert main(["users", "deactivate", "pat@home.org"]) == 0
    assert "pat@home.org deactivated: every login ended" in capsys.readouterr().out
    assert main(["users", "list"]) == 0
    assert "pat@home.org" in (out := capsys.readouterr().out) and "(deactivated)" in out
    assert (
        main(["users", "unlink", "--therapist", "thea@clinic.org", "--patient", "pat@home.org"])
        == 0
    )
    assert (
        main(["users", "unlink", "--therapist", "thea@clinic.org", "--patient", "pat@home.org"])
        == 1
    )
    assert "thea@clinic.org does not treat pat@home.org" in capsys.readouterr().err
    with db.session() as s:
        assert accounts.principal_for(s, secret) is None
        who = accounts.Principal(t.id, t.email, t.name, "therapist", "bearer", "")
        assert not accounts.can_treat(s, who, p.id)
        trail = [
            (e.action, e.role, e.patient_id, e.kind, e.therapist_id)
            for e in s.query(AuditEvent).order_by(AuditEvent.id)
        ]
    assert trail == [
        ("account.deactivate", "operator", p.id, "account", None),
        ("care_link.end", "operator", p.id, "care_link", t.id),
    ]
    db.close()


class _Stdin:
    def __init__(self, text: str) -> None:
        self._lines = iter(text.splitlines(keepends=True))

    def readline(self) -> str:
        return next(self._lines, "")

    def isatty(self) -> bool:
        return False


def test_demo_seeds_real_analyses_once(tmp_path, pose_of, ground_truth) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'demo.db'}")
    seen: list[str] = []
    logins = seed_demo(db, REPO.parent / "shared" / "data", progress=seen.append,
                       poses=lambda path: pose_of(path.name))  # fmt: skip
    assert logins.patient == (PATIENT[0], PATIENT[2]) and len(seen) == len(CLIPS)
    with db.session() as s:
        users = s.scalars(select(User)).all()
        assert {u.role for u in users} == {"therapist", "patient"}
        assert all(u.is_demo and "demo" in u.name for u in users)
        sessions = s.scalars(select(ExerciseSession).order_by(ExerciseSession.started_at)).all()
        assert len(sessions) == len(SCHEDULE) + 1 and all(x.is_demo for x in sessions)
        assert [x.status for x in sessions].count("diary") == 1
        assert [x.status for x in sessions].count("partial") == 1  # the flare: one set of two
        squats = s.scalar(select(func.count()).select_from(Repetition)
                          .where(Repetition.exercise_id == "squat"))  # fmt: skip
        # 2 sets a session (one in the flare), each the real count of the shared squat clip
        sets = sum(max(1, round(2 * done)) for *_rest, done in SCHEDULE)
        assert squats == sets * ground_truth[CLIPS["squat"]]["reps"]
        # the range rises as the recovery goes on: the first week's squats are the smallest
        first, best = (
            max(r.excursion_deg for r in x.repetitions if r.exercise_id == "squat")
            for x in (sessions[0], sessions[-4])
        )  # fmt: skip
        assert first < 0.7 * best
        # each repetition is judged against the target it carries (the prescription's)
        for r in (r for x in sessions for r in x.repetitions):
            assert ("short_range" in r.faults["ids"]) == (r.excursion_deg < r.target_rom_deg)
        prescribed = {e["exercise"]: e.get("target_rom_deg") for e in PROGRAM["exercises"]}
        reps = [r for x in sessions for r in x.repetitions if prescribed[r.exercise_id]]
        assert reps and all(r.target_rom_deg == prescribed[r.exercise_id] for r in reps)
    seed_demo(db, REPO.parent / "shared" / "data", poses=lambda p: pytest.fail("re-analysed"))
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ExerciseSession)) == len(SCHEDULE) + 1
    with pytest.raises(Exception, match=r"lacks squat_side_yuyoujiang.mp4"):
        seed_demo(open_database(f"sqlite:///{tmp_path / 'other.db'}"), tmp_path)
    db.close()


def _serve(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "telerehab.cli", "serve", "--port", "0", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _url_of(proc: subprocess.Popen, timeout: float = 60, lines: list[str] | None = None) -> str:
    """The URL `telerehab serve` prints once it listens (the test fails with
    everything it printed if it never does); what it printed until then is
    added to `lines`."""
    lines = [] if lines is None else lines
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("serving"):
            return line.split()[1]
    raise AssertionError("telerehab serve never said where it serves:\n" + "".join(lines))


def test_serve_prints_its_url_and_answers(tmp_path) -> None:
    env = {**os.environ, "TELEREHAB_DATA_DIR": str(tmp_path)}
    env.pop("TELEREHAB_DATABASE_URL", None)
    proc = _serve(env)
    try:
        url = _url_of(proc)
        with urllib.request.urlopen(f"{url}api/health", timeout=10) as r:
            health = json.loads(r.read())
        # the database answers; nothing of the configuration (no database URL)
        assert health == {"ok": True, "database": "ok"}
        assert (tmp_path / "telerehab.db").is_file()  # the default SQLite file in data_dir
        with urllib.request.urlopen(f"{url}login", timeout=10) as r:
            page = r.read().decode()
        assert '<label for="email"' in page
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def test_serve_names_an_unreachable_database(tmp_path) -> None:
    env = {**os.environ, "TELEREHAB_DATABASE_URL":
           "postgresql+psycopg://clinic:hunter2-pw@127.0.0.1:9/records"}  # fmt: skip
    proc = _serve(env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "postgresql+psycopg://clinic:***@127.0.0.1:9/records is unreachable" in out
    assert "hunter2" not in out
