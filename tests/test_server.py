"""Records, accounts and the API, on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import math
import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

from telerehab.errors import ConfigError, ConflictError, ProgramError, StorageError
from telerehab.rehab_programs.events import UNSEEN, RepResult
from telerehab.server import accounts, prescriptions, records
from telerehab.server.db import current_revision, open_database, upgrade
from telerehab.server.tables import ExerciseSession, ProgramVersion, Repetition
from telerehab.server.trends import compute_trends
from tests.conftest import POSTGRES, postgres_schema, program_of

HEAD_REVISION = "0009"  # the newest migration: a first start reaches it
PROGRAM = {
    "title": "Knee rehab",
    "sessions_per_week": 3,
    "exercises": [{"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90}],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    with postgres_schema("telerehab_test") as schema:
        sep = "&" if "?" in POSTGRES else "?"
        yield f"{POSTGRES}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def db(db_url):
    database = open_database(db_url)
    yield database
    database.close()


def _rep(i: int, excursion: float, quality: int = 90, faults: tuple[str, ...] = ()) -> RepResult:
    return RepResult(
        index=i, side="left", t_start_s=i * 3.0, t_peak_s=i * 3.0 + 1, t_end_s=i * 3.0 + 2.5,
        frame_peak=30 * i, rom_min_deg=5, rom_max_deg=5 + excursion, excursion_deg=excursion,
        duration_s=2.5, up_s=1, hold_s=0.2, down_s=1.3, quality=quality, faults=faults,
        target_rom_deg=100,
    )  # fmt: skip


def _people(s):
    t = accounts.create_user(s, "t@clinic.org", "Thea Therapist", "therapist", "therapist-pw")
    p = accounts.create_user(s, "p@home.org", "Pat Patient", "patient", "patient-pw-1")
    accounts.link(s, t.id, p.id)
    return t, p


# --------------------------------------------------------------------------- storage


def test_migrated_on_first_start_and_idempotent(db_url) -> None:
    first = open_database(db_url)
    assert current_revision(first.engine) == HEAD_REVISION
    with first.session() as s:
        _t, p = _people(s)
        x = records.start_session(s, p.id, pain_before=2)
        records.add_repetition(s, x, "squat", _rep(1, 80.0))
        written = (p.id, x.id)
    first.close()
    again = open_database(db_url)  # a second start migrates nothing and loses nothing
    assert current_revision(again.engine) == HEAD_REVISION
    with again.session() as s:
        (x,) = records.sessions_of(s, written[0])
        assert (x.id, x.pain_before) == (written[1], 2)
        assert [r.excursion_deg for r in x.repetitions] == [80.0]
    again.close()


def test_migration_0005_judges_the_sessions_stored_before_it(db_url) -> None:
    """Stored when every ended session was `complete`: the one that did 2 of
    the 6 prescribed squats becomes partial, the pain-diary entry becomes a
    diary entry, the one that did all 6 stays complete; a downgrade undoes it."""
    old = open_database(db_url, migrate=False)
    upgrade(old.engine, "0004")
    with old.session() as s:
        t, p = _people(s)
        version = prescriptions.create_program(s, p.id, PROGRAM, t.id)
        ids = []
        for reps, source in ((6, "live"), (2, "live"), (0, "diary")):
            x = records.start_session(s, p.id, program_version_id=version.id, source=source)
            for i in range(reps):
                records.add_repetition(s, x, "squat", _rep(i + 1, 90), set_index=1 + i // 3)
            x.status = "complete"  # as every version before 0005 stored them
            ids.append(x.id)
    upgrade(old.engine)
    with old.session() as s:
        assert [s.get(ExerciseSession, i).status for i in ids] == ["complete", "partial", "diary"]
    from alembic import command
    from alembic.config import Config

    from telerehab.server.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    with old.session() as s:
        assert [s.get(ExerciseSession, i).status for i in ids] == ["complete"] * 3
    old.close()


# (action, target) as the routers wrote them before 0009, and what 0009 reads
# them to have touched
OLD_ENTRIES = (
    ("read", "patient list", ("patient_list",)),
    ("read", "patient", ("profile",)),
    ("account.create", "patient invited by therapist 2", ("account",)),
    ("account.deactivate", "user 5", ("account",)),
    ("read", "programs", ("programs",)),
    ("prescribe", "program 3 v2", ("program_version",)),
    ("read", "program 3 versions", ("program_history",)),
    ("read", "program 3", ("program",)),
    ("read", "sessions", ("sessions",)),
    ("export", "sessions CSV", ("sessions_csv",)),
    ("export", "FHIR bundle", ("fhir",)),
    ("read", "trends", ("trends",)),
    ("export", "session 7 CSV", ("session_csv", 7)),
    ("record", "session 7 (diary)", ("diary", 7)),
    ("read", "session 7 movement of squat", ("movement", 7, None, "squat")),
    ("read", "session 7", ("session", 7)),
    ("read", "session 7", ("session", 7)),  # the same twice: both read
    ("record", "live session 8", ("live_session", 8)),
    ("watch", "live session 8 video", ("live_video", 8)),
    ("watch", "live session 8 feed", ("live_feed", 8)),
    ("care_link.end", "therapist 2", ("care_link", None, 2)),
    ("alert.acknowledge", "rom_falling:squat:2026-W48", ("alert", None, None, "squat")),
    ("alert.acknowledge", "pain_flare:7", ("alert", 7)),
    ("alert.acknowledge", "missed_sessions:2026-W48", ("alert",)),
    ("account.language", "es", ("language", None, None, None, "es")),
    ("audit.read", "actor 2", ("trail",)),
    ("denied", "GET /api/patients/3", ("request",)),
    ("exercise.add", "trends", ("exercise", None, None, "trends")),  # an id, not the trends
    ("login", "cookie", ("other",)),
    ("read", "a wording no rule knew", ("other",)),
)


def test_migration_0009_gives_the_entries_stored_before_it_what_they_touched(db_url) -> None:
    """Entries written at 0008 (a target, no kind) get the kind and ids their
    target named, read once by the wording of the time; the trail stays
    append-only; a downgrade drops the columns and keeps the entries."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect
    from sqlalchemy.exc import DatabaseError

    from telerehab.server import audit
    from telerehab.server.db import MIGRATIONS
    from telerehab.server.tables import AuditEvent

    old = open_database(db_url, migrate=False)
    upgrade(old.engine, "0008")
    insert = text(
        "INSERT INTO audit_events (at, actor_id, actor_email, role, action, patient_id, "
        "target, client) VALUES (:at, 2, 't@clinic.org', 'therapist', :action, 3, :target, "
        "'10.0.0.9')"
    )
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with old.engine.begin() as conn:
        for action, target, _ in OLD_ENTRIES:
            conn.execute(insert, {"at": at, "action": action, "target": target})
    upgrade(old.engine)
    assert current_revision(old.engine) == HEAD_REVISION
    with old.session() as s:
        entries = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        got = [(e.action, e.target, audit.touched(e)) for e in entries]
    assert got == [(a, t, audit.Touched(*expected)) for a, t, expected in OLD_ENTRIES]
    with pytest.raises(DatabaseError, match="append-only"), old.session() as s:
        s.execute(text("UPDATE audit_events SET kind = 'other'"))
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    columns = {c["name"] for c in inspect(old.engine).get_columns("audit_events")}
    assert "kind" not in columns and "target" in columns
    with old.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM audit_events")).scalar()
    assert count == len(OLD_ENTRIES)
    old.close()


def test_the_audit_trail_is_append_only_in_the_database(db) -> None:
    """Whatever holds a connection can add an entry, never change or delete one
    (migration 0009's backfill, which set the refusal aside, restored it)."""
    from sqlalchemy.exc import DatabaseError

    from telerehab.server import audit
    from telerehab.server.tables import AuditEvent

    actor = audit.Actor(7, "t@clinic.org", "therapist", "10.0.0.9")
    with db.session() as s:
        audit.record(s, actor, "read", 3, "session 1", what=audit.Touched("session", session_id=1))
    for statement in ("UPDATE audit_events SET patient_id = 4", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"), db.session() as s:
            s.execute(text(statement))
    with db.session() as s:
        (entry,) = s.scalars(select(AuditEvent)).all()
        assert (entry.actor_id, entry.action, entry.patient_id, entry.client) == (
            7,
            "read",
            3,
            "10.0.0.9",
        )
        assert audit.touched(entry) == audit.Touched("session", session_id=1)
        assert (
            datetime.now(UTC) - entry.at.replace(tzinfo=entry.at.tzinfo or UTC)
        ).total_seconds() < 60
    with pytest.raises(ValueError, match="audit action"), db.session() as s:
        audit.record(s, actor, "erase", 3, what=audit.NO_RECORD)
    with pytest.raises(ValueError, match=r"audit kind: expected one of .*got 'sesion'"):
        audit.Touched("sesion", session_id=1)


def test_sqlite_default_uses_wal(tmp_path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.close()


def test_a_session_keeps_everything_measured(db) -> None:
    with db.session() as s:
        t, p = _people(s)
        version = prescriptions.create_program(s, p.id, PROGRAM, t.id)
        x = records.start_session(s, p.id, program_version_id=version.id, device="laptop",
                                  pain_before=4)  # fmt: skip
        reps = [_rep(1, 80), _rep(2, 85, 70, ("trunk_lean",))]
        for r in reps:
            records.add_repetition(s, x, "squat", r)
        records.add_set(s, x, "squat", 1, reps, 3)
        records.end_session(s, x, "complete", pain_after=3, rpe=5, notes="felt fine")
        sid = x.id
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        # finished, but 2 of the 6 prescribed squats: partial
        assert (x.status, x.pain_before, x.pain_after, x.rpe, x.video_consent) == (
            "partial",
            4,
            3,
            5,
            False,
        )
        assert [r.excursion_deg for r in x.repetitions] == [80, 85]
        assert x.repetitions[1].faults == {"ids": ["trunk_lean"]}
        assert x.sets[0].reps == 2 and x.sets[0].target_reps == 3
        assert x.sets[0].mean_quality == 80
        # the target each was judged against, and the set's share of it
        assert [r.target_rom_deg for r in x.repetitions] == [100, 100]
        assert x.repetitions[0].target_share == pytest.approx(0.8)
        assert x.sets[0].mean_target_share == pytest.approx(0.825)


def test_a_program_analysed_from_a_video_keeps_each_exercise_movement(tmp_path, pose_of) -> None:
    """`analyze --program ... --save`: the replay of each exercise is the span
    of the recording the program spent on it; an exercise never reached keeps
    none."""
    from telerehab.rehab_programs.program_run import analyze_program
    from telerehab.server import movement
    from telerehab.server.tables import Movement

    seq = pose_of("squat_side_yuyoujiang.mp4")
    result = analyze_program(seq, program_of("squat", "heel_raise"))
    squat, heel = result.runs
    assert squat.analysis.reps and math.isnan(heel.t_start_s)
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    with db.session() as s:
        _t, p = _people(s)
        x = records.save_analysis(s, p.id, result, recording=seq)
        kept = s.scalars(select(Movement).where(Movement.session_id == x.id)).all()
        assert [(m.exercise_id, m.width, m.height) for m in kept] == [
            ("squat", seq.width, seq.height)]  # fmt: skip
        t_s, _lm = movement.decode(kept[0].data)
        assert squat.t_start_s - 0.1 <= t_s[0] and t_s[-1] <= squat.t_end_s + 0.1
        reps = squat.analysis.reps
        assert all(t_s[0] <= r.t_start_s and r.t_end_s <= t_s[-1] + 0.1 for r in reps)
        declined = records.save_analysis(s, p.id, result, recording=seq, movement_consent=False)
        assert not s.scalars(select(Movement).where(Movement.session_id == declined.id)).all()
    db.close()


def test_short_of_the_prescription_is_partial_and_a_diary_entry_is_no_session(db) -> None:
    """Finishing all 2 x 3 prescribed squats is complete, finishing after 3 is
    partial, a connection lost after 1 is interrupted; a pain-diary entry is
    listed with them but is not a session: adherence counts the three sessions
    (two not done in full), the pain trend all four."""
    with db.session() as s:
        t, p = _people(s)
        version = prescriptions.create_program(s, p.id, PROGRAM, t.id)
        statuses, work = [], []
        for reps in (6, 3):
            x = records.start_session(s, p.id, program_version_id=version.id, pain_before=3)
            for i in range(reps):
                records.add_repetition(s, x, "squat", _rep(i + 1, 80 + i), set_index=1 + i // 3)
            records.end_session(s, x, "complete", pain_after=2 if reps == 6 else 6)
            statuses.append(x.status)
            work.append(records.work_of(x.repetitions, version.document))
        cut = records.start_session(s, p.id, program_version_id=version.id, pain_before=3)
        records.add_repetition(s, cut, "squat", _rep(1, 80), set_index=1)
        records.end_session(s, cut, "interrupted")
        (begun,) = records.work_of(cut.repetitions, version.document)
        assert (begun.done_sets, begun.done_reps) == (0, 1)  # a set begun is not a set done
        diary = records.record_diary(s, p.id, program_version_id=version.id, pain_before=5,
                                     pain_after=4, notes="walked the dog")  # fmt: skip
        assert (diary.status, diary.source) == ("diary", "diary")
        trends = compute_trends(p.id, records.sessions_of(s, p.id), version.document)
    assert statuses == ["complete", "partial"]
    full, short = work[0][0], work[1][0]
    assert (full.name, full.sets, full.reps, full.planned_reps) == ("Squat", 2, 3, 6)
    assert (full.done_sets, full.done_reps, full.missing_reps) == (2, 6, 0)
    assert (short.done_sets, short.done_reps, short.missing_reps) == (1, 3, 3)
    assert short.target_rom_deg == 90 and short.mean_rom_deg == pytest.approx(81)
    (week,) = [a for a in trends.adherence if a.done]
    assert (week.done, week.partial, week.prescribed) == (3, 2, 3)
    assert [(x.before, x.diary) for x in trends.pain] == [
        (3, False), (3, False), (3, False), (5, True)]  # fmt: skip
    # the flare of the partial session (3 -> 6) stands: a later diary entry does not hide it
    assert [a.kind for a in trends.alerts] == ["pain_rising"], trends.alerts


def test_a_disconnect_mid_set_keeps_completed_repetitions(db) -> None:
    with db.session() as s:
        _t, p = _people(s)
        x = records.start_session(s, p.id)
        sid = x.id
    for i in (1, 2):  # each repetition committed as it completes
        with db.session() as s:
            records.add_repetition(s, s.get(ExerciseSession, sid), "squat", _rep(i, 80))
    with db.session() as s:  # the client is gone: the server marks the session
        records.end_session(s, s.get(ExerciseSession, sid), "interrupted")
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        assert x.status == "interrupted" and len(x.repetitions) == 2


def test_duplicate_user_is_refused_and_nothing_lost(db) -> None:
    with db.session() as s:
        _people(s)
    taken = r"a user with e-mail 'p@home\.org' already exists"
    with pytest.raises(ConflictError, match=taken), db.session() as s:
        accounts.create_user(s, "P@home.org ", "Someone", "patient", "another-pw-1")
    with db.session() as s:
        assert accounts.authenticate(s, "p@home.org", "patient-pw-1") is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", "N", "patient", "long-enough-pw"), "email: 'x' is not an e-mail address"),
        (("a@b.org", "N", "nurse", "long-enough-pw"), "role: expected one of"),
        (("a@b.org", "N", "patient", "short"), "password: at least 10 characters, got 5"),
    ],
)
def test_bad_accounts_are_named(db, args, message) -> None:
    with pytest.raises(ConfigError, match=message), db.session() as s:
        accounts.create_user(s, *args)


def test_passwords_are_argon2_and_change_ends_logins(db) -> None:
    with db.session() as s:
        _t, p = _people(s)
        assert p.password_hash.startswith("$argon2id$")
        assert accounts.authenticate(s, "p@home.org", "wrong-password") is None
        secret, _ = accounts.issue_token(s, p, "bearer")
        assert accounts.principal_for(s, secret).role == "patient"
        accounts.change_password(s, p.id, "patient-pw-1", "a-new-password")
        assert accounts.principal_for(s, secret) is None
        assert accounts.authenticate(s, "p@home.org", "a-new-password") is not None


def test_every_program_change_is_a_version_and_conflicts_are_refused(db) -> None:
    with db.session() as s:
        t, p = _people(s)
        v1 = prescriptions.create_program(s, p.id, PROGRAM, t.id)
        pid = v1.program_id
    edited = {**PROGRAM, "sessions_per_week": 4}
    with db.session() as s:
        assert prescriptions.revise_program(s, pid, edited, 1, t.id).version == 2
    stale = "based on version 1, but version 2 was saved"
    with pytest.raises(ConflictError, match=stale), db.session() as s:
        prescriptions.revise_program(s, pid, {**PROGRAM, "title": "Lost?"}, 1, t.id)
    with pytest.raises(ProgramError, match=r"exercises\[0\].sets"), db.session() as s:
        bad = {**PROGRAM, "exercises": [{"exercise": "squat", "sets": "many", "reps": 3}]}
        prescriptions.revise_program(s, pid, bad, 2, t.id)
    with db.session() as s:
        versions = s.scalars(select(ProgramVersion).where(ProgramVersion.program_id == pid)
                             .order_by(ProgramVersion.version)).all()  # fmt: skip
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].document == PROGRAM and versions[1].document == edited


def test_concurrent_edits_of_one_program(db) -> None:
    """Eight editors, all starting from version 1, at the same time: exactly one
    wins, the others get a conflict, and no version is overwritten."""
    with db.session() as s:
        t, p = _people(s)
        pid = prescriptions.create_program(s, p.id, PROGRAM, t.id).program_id
        tid = t.id
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def edit(k: int) -> None:
        barrier.wait()
        try:
            with db.session() as s:
                prescriptions.revise_program(s, pid, {**PROGRAM, "title": f"edit {k}"}, 1, tid)
            outcomes.append("saved")
        except ConflictError:
            outcomes.append("conflict")
        except StorageError:  # SQLite's writer lock timing out counts as a refusal
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["saved"]
    with db.session() as s:
        assert prescriptions.latest(s, pid).version == 2
        assert len(s.scalars(select(ProgramVersion).where(ProgramVersion.program_id == pid))
                   .all()) == 2  # fmt: skip


def test_unreachable_database_is_named_with_password_masked() -> None:
    url = "postgresql+psycopg://clinic:s3cret-pw@127.0.0.1:9/records"
    with pytest.raises(StorageError) as info:
        open_database(url)
    msg = str(info.value)
    assert "postgresql+psycopg://clinic:***@127.0.0.1:9/records is unreachable" in msg
    assert "s3cret-pw" not in msg


# --------------------------------------------------------------------------- trends


def _session(sid: int, day: date, before, after, excursions=(), status="complete"):
    x = ExerciseSession(id=sid, patient_id=1, status=status, pain_before=before,
                        pain_after=after, started_at=datetime(day.year, day.month, day.day,
                                                              10, tzinfo=UTC))  # fmt: skip
    x.repetitions = [Repetition(exercise_id="squat", excursion_deg=e, quality=q)
                     for e, q in excursions]  # fmt: skip
    return x


def test_trends_and_alerts() -> None:
    today = date(2026, 11, 25)  # a Wednesday of 2026-W48
    plan = [  # (day, pain before, ROM): W46 three sessions, W47 two of three, W48 one so far
        (date(2026, 11, 9), 2, 90), (date(2026, 11, 11), 2, 90), (date(2026, 11, 13), 2, 90),
        (date(2026, 11, 16), 4, 70), (date(2026, 11, 18), 5, 70),
        (date(2026, 11, 24), 5, 60),
    ]  # fmt: skip
    sessions = [
        _session(k + 1, day, before, before + 1, [(rom, 80)] * 3)
        for k, (day, before, rom) in enumerate(plan)
    ]
    t = compute_trends(1, sessions, PROGRAM, today=today)
    assert t.weeks == ("2026-W46", "2026-W47", "2026-W48")
    squat = t.rom[0]
    assert squat.exercise_id == "squat"
    assert (squat.target_min_deg, squat.target_max_deg) == (90, 120)  # prescribed, library max
    assert [w.value for w in squat.weeks] == [90, 70, 60]
    assert [(a.done, a.prescribed) for a in t.adherence] == [(3, 3), (2, 3), (1, 3)]
    assert [p.change for p in t.pain] == [1] * 6
    assert [w.value for w in t.quality] == [80, 80, 80]
    kinds = sorted(a.kind for a in t.alerts)
    assert kinds == ["missed_sessions", "pain_rising", "rom_falling"], t.alerts
    messages = " ".join(a.message for a in t.alerts)
    assert "pain before exercise rose from 2.0 to 4.7 /10" in messages
    assert (
        "Squat: mean range of motion fell from 70° to 60° "
        "(week of 16 Nov 2026 to week of 23 Nov 2026)"
    ) in messages
    assert "2 of 3 prescribed sessions done in the week of 16 Nov 2026" in messages
    assert "W4" not in messages and "squat" not in messages  # words, not codes and ids
    calm = compute_trends(1, sessions[:3], PROGRAM, today=date(2026, 11, 14))
    assert calm.alerts == ()


def test_a_range_measured_with_landmarks_unseen_stays_out_of_trends() -> None:
    """A webcam crop that hid the feet inflated knee flexion to 120 deg: that
    repetition counts, but its range is not a trend."""
    x = _session(1, date(2026, 11, 24), 3, 3, [(80, 90), (82, 90)])
    x.repetitions.append(Repetition(exercise_id="squat", excursion_deg=120, quality=90,
                                    faults={"ids": [UNSEEN]}))  # fmt: skip
    t = compute_trends(1, [x], PROGRAM, today=date(2026, 11, 25))
    assert [w.value for w in t.rom[0].weeks] == [81]
    assert [w.value for w in t.quality] == [90]  # quality still counts all three


def test_pseudonyms_are_stable_per_key_and_the_key_is_kept_private(tmp_path) -> None:
    """One patient, one code under one key (also after a restart); another key,
    other codes; the key file is readable by its owner only."""
    from telerehab.server.pseudonyms import load_key, pseudonym
    from telerehab.settings import Settings

    key = load_key(Settings(data_dir=tmp_path))
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    assert load_key(Settings(data_dir=tmp_path)) == key  # kept, not made again
    codes = {pseudonym(key, i) for i in range(1, 1001)}
    assert len(codes) == 1000 and pseudonym(key, 7) == pseudonym(key, 7)
    other = load_key(Settings(data_dir=tmp_path, pseudonym_key="x" * 32))
    assert pseudonym(other, 7) != pseudonym(key, 7)


def test_a_repetition_is_stored_served_and_exported_from_its_one_definition(db) -> None:
    """Every field of a `RepResult` goes into its row and comes back out the
    same (NaN as NULL and back), through the API's schema and into the CSV
    with its data dictionary, on SQLite and PostgreSQL."""
    import csv
    import dataclasses
    import io

    from telerehab.server.routers.exports import COLUMNS, REP_COLUMNS, _cell
    from telerehab.server.schemas import RepetitionOut

    rep = dataclasses.replace(_rep(3, 72.5, 80, ("short_range", UNSEEN)), frame_peak=41)
    no_target = dataclasses.replace(rep, index=4, target_rom_deg=float("nan"))
    with db.session() as s:
        patient = accounts.create_user(s, "p@x.org", "P", "patient", "pw-123456789")
        x = records.start_session(s, patient.id, source="live")
        for r in (rep, no_target):
            records.add_repetition(s, x, "squat", r, set_index=2)
    with db.session() as s:
        rows = s.query(Repetition).order_by(Repetition.index).all()
        assert rows[0].result() == rep and rows[0].set_index == 2
        back = rows[1].result()
        assert math.isnan(back.target_rom_deg) and rows[1].target_rom_deg is None
        assert dataclasses.replace(back, target_rom_deg=0.0) == dataclasses.replace(
            no_target, target_rom_deg=0.0)  # fmt: skip
        served = RepetitionOut.model_validate(rows[0]).model_dump()
        assert served == {"exercise_id": "squat", "set_index": 2,
                          **dataclasses.asdict(rep), "faults": list(rep.faults),
                          "target_share": rep.target_share, "rom_trusted": False}  # fmt: skip
        assert RepetitionOut.model_validate(rows[1]).target_share is None
        cells = [_cell(getattr(rows[0].result(), name), digits) for _, name, digits in REP_COLUMNS]
    line = io.StringIO()
    csv.writer(line).writerow(cells)
    row = next(csv.reader([line.getvalue()]))
    exported = dict(zip([c for c, _, _ in REP_COLUMNS], row, strict=True))
    assert exported["rep_index"] == "3" and exported["faults"] == f"short_range;{UNSEEN}"
    assert exported["excursion_deg"] == "72.5" and exported["rom_trusted"] == "false"
    assert exported["target_share"] == str(round(rep.target_share, 3))
    assert set(exported) <= set(COLUMNS) and all(COLUMNS[c] for c in exported)


def test_a_new_repetition_field_reaches_storage_and_the_api_by_itself() -> None:
    """Adding a field to the repetition record is one change (plus a
    migration, next test): the table's columns and the API's schema follow."""
    import dataclasses

    from telerehab.server.schemas import repetition_out
    from telerehab.server.tables import repetition_columns

    @dataclasses.dataclass(frozen=True, slots=True)
    class Extended(RepResult):
        smoothness: float = dataclasses.field(default=float("nan"), metadata={
            "doc": "jerk-based smoothness, 0 to 1", "digits": 2, "chars": None})  # fmt: skip
        tag: str = dataclasses.field(default="", metadata={
            "doc": "a label", "digits": None, "chars": 12})  # fmt: skip

    columns = repetition_columns(Extended)
    assert columns["smoothness"].column.nullable and not columns["tag"].column.nullable
    assert columns["tag"].column.type.length == 12
    model = repetition_out(Extended)
    assert model.model_fields["smoothness"].description == "jerk-based smoothness, 0 to 1"
    assert set(repetition_columns()) | {"exercise_id", "set_index"} < set(model.model_fields)


def test_the_migrations_build_exactly_the_tables_the_code_defines(db_url) -> None:
    """Alembic's own comparison of the migrated database with the tables (the
    repetition's columns derived from `RepResult`): no difference, on SQLite
    and PostgreSQL. A field added without its migration fails here, as the
    check of a deliberately missing column shows."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import Column, Float, MetaData

    from telerehab.server.tables import Base

    database = open_database(db_url)
    try:
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            ahead = MetaData()
            for table in Base.metadata.tables.values():
                table.to_metadata(ahead)
            ahead.tables["repetitions"].append_column(Column("smoothness", Float))
            diff = compare_metadata(context, ahead)
            assert [(d[0], d[3].name) for d in diff] == [("add_column", "smoothness")]
    finally:
        database.close()
