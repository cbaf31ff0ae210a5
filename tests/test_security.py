"""Security of the API: the audit trail, login throttling, access that can be
revoked, limits at the edge, errors that leak nothing, browser hardening."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from starlette.websockets import WebSocketDisconnect

from telerehab.server import accounts, prescriptions, records
from telerehab.server.app import STATIC, create_app
from telerehab.server.db import open_database
from telerehab.server.tables import AuditEvent, AuthToken
from telerehab.server.throttle import HashGate
from telerehab.settings import Settings

PASSWORD = "correct-horse-1"
PROGRAM = {
    "title": "Knee rehab",
    "sessions_per_week": 3,
    "exercises": [{"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90}],
}
PEOPLE = (
    ("admin", "admin@clinic.org", "admin"),
    ("therapist", "thea@clinic.org", "therapist"),
    ("other_therapist", "otto@clinic.org", "therapist"),
    ("patient", "pat@home.org", "patient"),
    ("other_patient", "olga@home.org", "patient"),
)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _no_model(_variant: str, _people: int):
    def build():
        raise RuntimeError("model file /secret/models/pose_landmarker_lite.task is missing")

    return build


@pytest.fixture
def make_world(tmp_path: Path):
    """Build an app on a fresh SQLite file (settings overridable) with two care
    teams and a program; returns (app, ids, client factory)."""
    opened = []

    def build(**overrides):
        db = open_database(f"sqlite:///{tmp_path / f'sec{len(opened)}.db'}")
        opened.append(db)
        app = create_app(Settings(data_dir=tmp_path, **overrides), db)
        app.state.estimator_factory = _no_model  # the live tests need no pose model
        ids: dict[str, int] = {}
        with db.session() as s:
            for role, email, kind in PEOPLE:
                ids[role] = accounts.create_user(s, email, role.title(), kind, PASSWORD).id
            ids["care_link"] = accounts.link(s, ids["therapist"], ids["patient"]).id
            accounts.link(s, ids["other_therapist"], ids["other_patient"])
            version = prescriptions.create_program(s, ids["patient"], PROGRAM, ids["therapist"])
            ids["program"] = version.program_id
            x = records.start_session(s, ids["patient"], program_version_id=version.id)
            records.end_session(s, x, "complete", pain_after=2, notes="knee felt warm")
            ids["session"] = x.id

        def client(role: str | None = None, kind: str = "bearer") -> TestClient:
            c = TestClient(app)
            if role is not None:
                email = dict((r, e) for r, e, _k in PEOPLE)[role]
                r = c.post(
                    "/api/auth/login", json={"email": email, "password": PASSWORD, "kind": kind}
                )
                assert r.status_code == 200, r.text
                if kind == "bearer":
                    c.headers["Authorization"] = f"Bearer {r.json()['token']}"
                else:
                    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            return c

        return app, ids, client

    yield build
    for db in opened:
        db.close()


def _trail(app) -> list[AuditEvent]:
    with app.state.db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


# --------------------------------------------------------------------------- audit


def test_every_read_export_and_change_is_audited_and_the_patient_sees_who(make_world) -> None:
    _app, ids, client = make_world()
    t = client("therapist")
    p, sid = ids["patient"], ids["session"]
    for url in (
        f"/api/patients/{p}",
        f"/api/patients/{p}/trends",
        f"/api/patients/{p}/programs",
        f"/api/patients/{p}/sessions",
        f"/api/sessions/{sid}",
        f"/api/programs/{ids['program']}",
    ):
        assert t.get(url).status_code == 200, url
    for url in (
        f"/api/sessions/{sid}/export.csv",
        f"/api/patients/{p}/export.csv",
        f"/api/patients/{p}/fhir",
    ):
        assert t.get(url).status_code == 200, url
    assert t.post(f"/api/patients/{p}/programs", json={"document": PROGRAM}).status_code == 201
    # a refused read is recorded as such: the other therapist has no care link
    assert client("other_therapist").get(f"/api/patients/{p}").status_code == 403

    patient = client("patient")
    assert patient.get(f"/api/patients/{p}/sessions").status_code == 200  # their own: left out
    log = patient.get(f"/api/patients/{p}/access-log").json()
    denied = [e for e in log if e["action"] == "denied"]
    assert [(e["who"], e["what"], e["record_kind"]) for e in denied] == [
        ("Other_Therapist", f"GET /api/patients/{p}", "request")
    ]
    log = [e for e in log if e["action"] != "denied"]
    assert {e["who"] for e in log} == {"Therapist"}
    assert {e["role"] for e in log} == {"therapist"}
    assert sorted(e["action"] for e in log) == ["export"] * 3 + ["prescribe"] + ["read"] * 6
    assert {e["what"] for e in log if e["action"] == "export"} == {
        f"session {sid} CSV",
        "sessions CSV",
        "FHIR bundle",
    }
    # each says what it touched, as the route recorded it: the kind, and the
    # session's start where it named one
    started = patient.get(f"/api/patients/{p}/sessions").json()[0]["started_at"]
    assert sorted((e["action"], e["record_kind"], e["record_at"]) for e in log) == [
        ("export", "fhir", None),
        ("export", "session_csv", started),
        ("export", "sessions_csv", None),
        ("prescribe", "program_version", None),
        ("read", "profile", None),
        ("read", "program", None),
        ("read", "programs", None),
        ("read", "session", started),
        ("read", "sessions", None),
        ("read", "trends", None),
    ]
    assert all(e["at"].endswith(("Z", "+00:00")) for e in log)  # aware UTC times
    assert [e["id"] for e in log] == sorted((e["id"] for e in log), reverse=True)  # newest first
    assert all("client" not in e for e in log)  # a patient does not see staff addresses

    admin = client("admin")
    rows = admin.get("/api/audit", params={"patient_id": p, "actor_id": ids["therapist"]}).json()
    assert len(rows) == 10 and {r["client"] for r in rows} == {"testclient"}
    assert {r["actor_email"] for r in rows} == {"thea@clinic.org"}
    assert {(r["target"], r["kind"], r["session_id"]) for r in rows if r["session_id"]} == {
        (f"session {sid}", "session", sid),
        (f"session {sid} CSV", "session_csv", sid),
    }
    assert len(admin.get("/api/audit", params={"patient_id": p, "limit": 3}).json()) == 3
    queried = admin.get("/api/audit", params={"action": "audit.read"}).json()
    assert len(queried) == 2 and queried[0]["actor_email"] == "admin@clinic.org"
    assert {r["kind"] for r in queried} == {"trail"}
    diary = patient.post(f"/api/patients/{p}/sessions", json={"pain_before": 3})
    assert diary.status_code == 201, diary.text
    (recorded,) = admin.get("/api/audit", params={"action": "record"}).json()
    assert (recorded["kind"], recorded["session_id"]) == ("diary", diary.json()["id"])
    bad = admin.get("/api/audit", params={"action": "delete-everything"})
    assert bad.status_code == 422 and "delete-everything" not in bad.text
    # there is no way to change the trail through the API
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert admin.request(method, "/api/audit").status_code == 405


def test_logins_and_account_changes_are_audited(make_world) -> None:
    app, ids, client = make_world()
    c = TestClient(app)
    assert (
        c.post(
            "/api/auth/login", json={"email": "pat@home.org", "password": "not-the-one"}
        ).status_code
        == 401
    )
    admin = client("admin")
    r = admin.post(
        "/api/users",
        json={"email": "new@home.org", "name": "New", "role": "patient", "password": PASSWORD},
    )
    new = r.json()["id"]
    admin.post("/api/care-links", json={"therapist_id": ids["therapist"], "patient_id": new})
    admin.post(f"/api/users/{new}/deactivate")
    entries = [(e.action, e.actor_email, e.patient_id) for e in _trail(app)]
    assert ("login.failed", "pat@home.org", None) in entries
    assert ("login", "admin@clinic.org", None) in entries
    assert ("account.create", "admin@clinic.org", new) in entries
    assert ("care_link.create", "admin@clinic.org", new) in entries
    assert ("account.deactivate", "admin@clinic.org", new) in entries
    touched = {(e.action, e.kind, e.therapist_id) for e in _trail(app)}
    assert {
        ("login.failed", "other", None),
        ("login", "other", None),
        ("account.create", "account", None),
        ("care_link.create", "care_link", ids["therapist"]),
        ("account.deactivate", "account", None),
    } <= touched
    failed = next(e for e in _trail(app) if e.action == "login.failed")
    assert failed.actor_id is None and failed.client == "testclient"
    assert failed.at.tzinfo is not None or app.state.db.engine.dialect.name == "sqlite"


def test_a_live_watch_is_audited_and_the_status_names_no_path(make_world) -> None:
    app, ids, client = make_world()
    with TestClient(app) as patient:
        login = patient.post(
            "/api/auth/login", json={"email": "pat@home.org", "password": PASSWORD}
        )
        patient.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        sid = patient.post("/api/live/sessions", json={"video_consent": True}).json()["id"]
        t = client("therapist")
        token = t.headers["Authorization"][7:]
        deadline = time.monotonic() + 20
        while patient.get(f"/api/live/sessions/{sid}").json()["state"] != "error":
            assert time.monotonic() < deadline, "the failing model was never reported"
            time.sleep(0.05)
        status = t.get(f"/api/live/sessions/{sid}")
        assert status.status_code == 200 and "/secret/" not in status.text
        with patient.websocket_connect(f"/ws/sessions/{sid}") as ws:  # the cookie logs in
            history = ws.receive_json()
            assert history["type"] in ("status", "exercise_started")
            assert "/secret/" not in json.dumps(history)
        with TestClient(app).websocket_connect(f"/ws/sessions/{sid}") as ws:
            ws.send_text(json.dumps({"type": "auth", "v": 2, "token": token}))
            assert ws.receive_json()["type"] in ("status", "exercise_started")
    watches = [e for e in _trail(app) if e.action == "watch"]
    assert [(e.actor_email, e.patient_id) for e in watches] == [
        ("pat@home.org", ids["patient"]),
        ("thea@clinic.org", ids["patient"]),
    ]
    assert any(e.action == "read" and e.target == f"live session {sid}" for e in _trail(app))
    touched = {(e.action, e.kind, e.session_id) for e in _trail(app) if e.patient_id}
    assert {("record", "live_session", sid), ("read", "live_session", sid)} <= touched
    assert {t for t in touched if t[0] == "watch"} == {("watch", "live_feed", sid)}


# --------------------------------------------------------------------------- logins


def test_failed_logins_wait_longer_each_time_then_lock_out(make_world) -> None:
    app, _ids, _client = make_world(
        login_free_failures=2,
        login_delay_s=1,
        login_lockout_s=4,
        login_free_failures_per_address=100,
    )
    clock = Clock()
    app.state.login_throttle.clock = clock
    c = TestClient(app)

    def login(password: str):
        return c.post("/api/auth/login", json={"email": "pat@home.org", "password": password})

    assert [login("wrong-password-1").status_code for _ in range(2)] == [401, 401]
    waits = []
    for _ in range(4):
        refused = login(PASSWORD)  # even the right password waits: nothing is checked
        assert refused.status_code == 429 and "try again in" in refused.json()["detail"]
        waits.append(int(refused.headers["Retry-After"]))
        clock.t += waits[-1] + 0.01
        assert login("wrong-password-1").status_code == 401
    assert waits == [1, 2, 4, 4]  # doubling, capped by the lockout
    assert login(PASSWORD).status_code == 429
    clock.t += 4.01
    assert login(PASSWORD).status_code == 200  # the lockout is temporary
    assert login("wrong-password-1").status_code == 401  # and success cleared the count
    assert login("wrong-password-1").status_code == 401
    assert login(PASSWORD).status_code == 429


def test_one_address_cannot_try_passwords_across_accounts(make_world) -> None:
    app, _ids, _client = make_world(login_free_failures=100, login_free_failures_per_address=3)
    app.state.login_throttle.clock = Clock()
    c = TestClient(app)
    codes = [
        c.post("/api/auth/login", json={"email": email, "password": "guess-guess-1"}).status_code
        for _r, email, _k in PEOPLE
    ]
    assert codes == [401, 401, 401, 429, 429]


def test_password_hashes_at_once_are_bounded(make_world) -> None:
    app, _ids, _client = make_world()
    app.state.hash_gate = HashGate(1, wait_s=0.2)
    held, release = threading.Event(), threading.Event()

    def busy() -> None:
        with app.state.hash_gate:
            held.set()
            release.wait(10)

    worker = threading.Thread(target=busy)
    worker.start()
    held.wait(5)
    r = TestClient(app).post(
        "/api/auth/login", json={"email": "pat@home.org", "password": PASSWORD}
    )
    release.set()
    worker.join()
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and "busy" in r.text
    ok = TestClient(app).post(
        "/api/auth/login", json={"email": "pat@home.org", "password": PASSWORD}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-1", "at least 10 characters"),
        (" " * 12, "must not be blank"),
        ("a" * 12, "at least 3 different characters"),
        ("x1-" * 400, "at most 1000 characters"),
    ],
)
def test_password_policy(make_world, password, message) -> None:
    _app, _ids, client = make_world()
    r = client("admin").post(
        "/api/users",
        json={"email": "n@home.org", "name": "N", "role": "patient", "password": password},
    )
    assert r.status_code == 422 and message in r.text, r.text
    assert password not in r.text


def test_expired_logins_are_purged_and_logins_per_user_bounded(make_world) -> None:
    app, ids, client = make_world(max_logins_per_user=3)
    with app.state.db.session() as s:
        user = s.get(accounts.User, ids["patient"])
        accounts.issue_token(s, user, "bearer", hours=-1)  # already expired
        accounts.issue_token(s, s.get(accounts.User, ids["therapist"]), "bearer", hours=-1)
    logins = [client("patient") for _ in range(5)]
    assert [c.get("/api/auth/me").status_code for c in logins] == [401, 401, 200, 200, 200]
    with app.state.db.session() as s:
        held = s.scalars(select(AuthToken.user_id)).all()
    assert sorted(held) == [ids["patient"]] * 3  # the expired ones (both users') are gone


# --------------------------------------------------------------------------- lifecycle


def test_deactivating_a_user_ends_every_login_at_once(make_world) -> None:
    app, ids, client = make_world()
    bearer, cookie = client("patient"), client("patient", kind="cookie")
    assert bearer.get("/api/auth/me").status_code == cookie.get("/api/auth/me").status_code == 200
    admin = client("admin")
    r = admin.post(f"/api/users/{ids['patient']}/deactivate")
    assert r.status_code == 200 and r.json()["active"] is False
    assert bearer.get("/api/auth/me").status_code == cookie.get("/api/auth/me").status_code == 401
    again = TestClient(app).post(
        "/api/auth/login", json={"email": "pat@home.org", "password": PASSWORD}
    )
    assert again.status_code == 401
    users = {u["id"]: u for u in admin.get("/api/users").json()}
    assert users[ids["patient"]]["active"] is False
    # the records stay, and the therapist still reads them
    assert client("therapist").get(f"/api/sessions/{ids['session']}").status_code == 200
    assert admin.post(f"/api/users/{ids['patient']}/activate").json()["active"] is True
    assert client("patient").get("/api/auth/me").status_code == 200
    me = admin.post(f"/api/users/{ids['admin']}/deactivate")
    assert me.status_code == 409 and "own account" in me.text
    assert admin.post(f"/api/users/{2**31 - 1}/deactivate").status_code == 404
    actions = [(e.action, e.patient_id) for e in _trail(app)]
    assert ("account.deactivate", ids["patient"]) in actions
    assert ("account.activate", ids["patient"]) in actions


def test_deactivating_a_patient_ends_their_live_session(make_world) -> None:
    from telerehab.server.tables import ExerciseSession

    app, ids, client = make_world()
    with TestClient(app) as patient:
        body = {"email": "pat@home.org", "password": PASSWORD, "kind": "bearer"}
        login = patient.post("/api/auth/login", json=body)
        patient.headers["Authorization"] = f"Bearer {login.json()['token']}"
        sid = patient.post("/api/live/sessions", json={"pain_before": 2}).json()["id"]
        assert sid in app.state.live.sessions
        assert client("admin").post(f"/api/users/{ids['patient']}/deactivate").status_code == 200
        assert sid not in app.state.live.sessions
        assert patient.post(f"/api/live/sessions/{sid}/pause").status_code == 401
    with app.state.db.session() as s:
        x = s.get(ExerciseSession, sid)
        assert (x.status, x.pain_before) == ("interrupted", 2) and x.ended_at is not None


def test_ending_a_care_link_removes_the_therapists_access_at_once(make_world) -> None:
    app, ids, client = make_world()
    t, admin = client("therapist"), client("admin")
    url = f"/api/patients/{ids['patient']}/sessions"
    assert t.get(url).status_code == 200
    listed = admin.get("/api/care-links").json()
    assert {(c["therapist_id"], c["patient_id"]) for c in listed} >= {
        (ids["therapist"], ids["patient"])
    }
    ended = admin.delete(f"/api/care-links/{ids['care_link']}")
    assert ended.status_code == 200 and ended.json()["patient_id"] == ids["patient"]
    assert t.get(url).status_code == 403
    assert t.get("/api/patients").json() == []
    assert admin.delete(f"/api/care-links/{ids['care_link']}").status_code == 404
    ends = [e for e in _trail(app) if e.action == "care_link.end"]
    assert len(ends) == 1 and ends[0].patient_id == ids["patient"]
    assert ends[0].target == f"therapist {ids['therapist']}"


def test_a_watching_therapist_is_cut_off_when_the_care_link_ends(make_world) -> None:
    app, ids, client = make_world()
    with TestClient(app) as patient:
        login = patient.post(
            "/api/auth/login",
            json={"email": "pat@home.org", "password": PASSWORD, "kind": "bearer"},
        )
        patient.headers["Authorization"] = f"Bearer {login.json()['token']}"
        sid = patient.post("/api/live/sessions", json={}).json()["id"]
        token = client("therapist").headers["Authorization"][7:]
        with TestClient(app).websocket_connect(f"/ws/sessions/{sid}") as ws:
            ws.send_text(json.dumps({"type": "auth", "v": 2, "token": token}))
            ws.receive_json()
            assert client("admin").delete(f"/api/care-links/{ids['care_link']}").status_code == 200
            started = time.monotonic()
            with pytest.raises(WebSocketDisconnect) as info:
                while True:
                    ws.receive_json()
            assert info.value.code == 4403 and time.monotonic() - started < 5


def test_the_websocket_checks_origin_and_never_reads_a_token_from_the_url(make_world) -> None:
    app, _ids, client = make_world()
    with TestClient(app) as patient:
        login = patient.post(
            "/api/auth/login", json={"email": "pat@home.org", "password": PASSWORD}
        )
        assert login.status_code == 200
        sid = patient.post(
            "/api/live/sessions", json={}, headers={"X-CSRF-Token": login.json()["csrf_token"]}
        ).json()["id"]
        # another site's page cannot use the patient's cookie
        with (
            pytest.raises(WebSocketDisconnect) as info,
            patient.websocket_connect(
                f"/ws/sessions/{sid}", headers={"Origin": "https://evil.example"}
            ),
        ):
            pass
        assert info.value.code == 4403
        with patient.websocket_connect(
            f"/ws/sessions/{sid}", headers={"Origin": "http://testserver"}
        ) as ws:
            assert ws.receive_json()["type"] in ("status", "exercise_started")
        token = client("therapist").headers["Authorization"][7:]
        other = client("other_therapist").headers["Authorization"][7:]
        anonymous = TestClient(app)
        with anonymous.websocket_connect(f"/ws/sessions/{sid}?token={token}") as ws:
            ws.send_text(json.dumps({"type": "hello"}))  # no auth message: the URL is ignored
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
        assert info.value.code == 4401
        with anonymous.websocket_connect(f"/ws/sessions/{sid}") as ws:
            ws.send_text(json.dumps({"type": "auth", "v": 2, "token": other}))
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
        assert info.value.code == 4403  # logged in, not this patient's therapist


# --------------------------------------------------------------------------- edge limits


def test_a_large_body_is_refused_before_parsing_and_before_auth(make_world) -> None:
    app, ids, client = make_world(max_body_bytes=64 * 1024)
    anonymous = TestClient(app)
    big = b'{"document": {"title": "' + b"x" * 200_000 + b'"}}'
    url = f"/api/patients/{ids['patient']}/programs"
    r = anonymous.post(url, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(100):
            yield b"x" * 4096

    r = anonymous.post(url, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    secret = "s3cret-" * 20_000
    r = anonymous.post("/api/auth/login", json={"email": "pat@home.org", "password": secret})
    assert r.status_code == 413 and len(r.content) < 200
    # under the limit, the route answers as before
    assert client("therapist").post(url, json={"document": PROGRAM}).status_code == 201


def test_the_default_body_limit_is_one_mebibyte(make_world) -> None:
    app, _ids, _client = make_world()
    assert app.state.settings.max_body_bytes == 1024 * 1024
    r = TestClient(app).post(
        "/api/auth/login",
        content=b"{" + b" " * (1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413


ID_ROUTES = [
    ("GET", "/api/patients/{}", "patient_id"),
    ("GET", "/api/patients/{}/trends", "patient_id"),
    ("GET", "/api/patients/{}/fhir", "patient_id"),
    ("GET", "/api/sessions/{}", "session_id"),
    ("GET", "/api/sessions/{}/export.csv", "session_id"),
    ("GET", "/api/programs/{}", "program_id"),
    ("POST", "/api/live/sessions/{}/pause", "session_id"),
    ("DELETE", "/api/care-links/{}", "care_link_id"),
    ("POST", "/api/users/{}/deactivate", "user_id"),
]


@pytest.mark.parametrize(("method", "path", "field"), ID_ROUTES)
def test_ids_out_of_range_are_named_never_a_server_error(make_world, method, path, field) -> None:
    _app, _ids, client = make_world()
    c = client("admin" if "users" in path or "care-links" in path else "therapist")
    for bad in ("0", "-1", str(2**31), str(2**63), "1" + "0" * 40):
        r = c.request(method, path.format(bad))
        assert r.status_code == 422, (bad, r.status_code, r.text)
        assert r.json()["detail"][0]["loc"] == ["path", field] and bad not in r.text
    largest = c.request(method, path.format(2**31 - 1))
    assert largest.status_code in (403, 404), largest.text


@pytest.mark.parametrize(
    ("body", "field", "secret"),
    [
        ('{"pain_before": NaN}', "pain_before", None),
        ('{"pain_before": 1e400}', "pain_before", None),
        ('{"rpe": -Infinity}', "rpe", None),
        ('{"notes": "private \\ud800 note"}', "notes", "private"),
        ('{"notes": "private \\u0000 note"}', "notes", "private"),
        ('{"started_at": "0001-01-01T00:00:00"}', "started_at", "0001"),
        ('{"started_at": "2001-01-01T00:00:00"}', "started_at", "2001"),
        ('{"started_at": "2999-01-01T00:00:00Z"}', "started_at", "2999"),
        ('{"started_at": "9999-12-31T23:59:59-14:00"}', "started_at", "9999"),
    ],
)
def test_diary_values_that_cannot_be_stored_are_named(make_world, body, field, secret) -> None:
    _app, ids, client = make_world()
    r = client("patient").post(
        f"/api/patients/{ids['patient']}/sessions",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", field]
    assert "input" not in r.json()["detail"][0]
    if secret:
        assert secret not in r.text
    fhir = client("patient").get(f"/api/patients/{ids['patient']}/fhir")
    assert fhir.status_code == 200  # nothing was stored that breaks an export


def test_a_diary_entry_from_last_month_is_kept_in_utc(make_world) -> None:
    _app, ids, client = make_world()
    when = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
    local = when.astimezone(timezone(timedelta(hours=-5))).isoformat()
    r = client("patient").post(
        f"/api/patients/{ids['patient']}/sessions", json={"started_at": local, "pain_before": 3}
    )
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["started_at"]) == when
    assert r.json()["started_at"].endswith(("Z", "+00:00"))


def test_live_text_that_cannot_be_stored_is_named(make_world) -> None:
    """NUL cannot be stored in PostgreSQL text: refused at the edge, never a 500."""
    _app, _ids, client = make_world()
    r = client("patient").post("/api/live/sessions", json={"device": "phone\x00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "device"]


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({**PROGRAM, "title": "T" * 300}, "title"),
        ({**PROGRAM, "exercises": PROGRAM["exercises"] * 51}, "exercises"),
        ({**PROGRAM, "exercises": [{**PROGRAM["exercises"][0], "sets": 1e400}]}, "document"),
        (
            {**PROGRAM, "exercises": [{**PROGRAM["exercises"][0], "rest_s": float("nan")}]},
            "document",
        ),
        ({**PROGRAM, "therapist_notes": "note\x00"}, "document"),
        ({**PROGRAM, "x": [[[[[[[[[[1]]]]]]]]]]}, "document"),
    ],
)
def test_program_documents_are_bounded(make_world, document, named) -> None:
    _app, ids, client = make_world()
    body = json.dumps({"document": document}, allow_nan=True)
    r = client("therapist").post(
        f"/api/patients/{ids['patient']}/programs",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and named in r.text, r.text
    assert "T" * 50 not in r.text and len(r.text) < 1000


# --------------------------------------------------------------------------- leaks


def test_a_missing_record_is_refused_like_another_patients(make_world) -> None:
    """403 for both: the answer does not tell which ids exist."""
    app, ids, client = make_world()
    other = client("other_therapist")
    for real, missing in (
        (f"/api/sessions/{ids['session']}", "/api/sessions/999999"),
        (f"/api/programs/{ids['program']}", "/api/programs/999999"),
        (f"/api/patients/{ids['patient']}", "/api/patients/999999"),
    ):
        assert other.get(real).status_code == other.get(missing).status_code == 403, real
    with TestClient(app) as patient:  # a live session: the same answer as none at all
        patient.headers["Authorization"] = client("patient").headers["Authorization"]
        sid = patient.post("/api/live/sessions", json={}).json()["id"]
        live, missing = f"/api/live/sessions/{sid}", f"/api/live/sessions/{sid + 1}"
        assert other.get(live).status_code == other.get(missing).status_code == 403


def test_errors_and_health_show_nothing_internal(make_world, tmp_path) -> None:
    app, ids, _client = make_world()
    health = TestClient(app).get("/api/health")
    assert health.json() == {"ok": True, "database": "ok"} and str(tmp_path) not in health.text
    r = TestClient(app).post(
        "/api/auth/login", json={"email": "pat@home.org", "password": 5 * ["my-secret-pw"]}
    )
    assert r.status_code == 422 and "my-secret-pw" not in r.text
    assert r.json()["detail"][0]["loc"] == ["body", "password"]
    bad_json = TestClient(app).post(
        "/api/auth/login",
        content=b'{"password": "hunter2-pw",',
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422 and "hunter2" not in bad_json.text
    # SQL parameters never reach an error message (nor a log line made from it)
    assert app.state.db.engine.hide_parameters
    with pytest.raises(Exception) as info, app.state.db.session() as s:
        s.execute(
            text("INSERT INTO sessions (id, patient_id, notes) VALUES (:i, :p, :n)"),
            {"i": ids["session"], "p": ids["patient"], "n": "my knee hurts at night"},
        )
    assert "my knee hurts" not in str(info.value) and "hidden" in str(info.value)


def test_a_page_never_serves_a_file_the_request_names(make_world) -> None:
    app, _ids, _client = make_world()
    for query in ("?filename=../app.py", "?filename=/etc/passwd", "?page=../db.py"):
        r = TestClient(app).get(f"/login{query}")
        assert r.status_code == 200 and '<label for="email"' in r.text, query


def test_openapi_declares_security_and_every_status(make_world) -> None:
    app, _ids, _client = make_world()
    doc = TestClient(app).get("/api/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert any(s.get("in") == "cookie" for s in schemes.values())
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if (method, path) in (("post", "/api/auth/login"), ("get", "/api/health"),
                                  ("get", "/api/i18n"), ("post", "/api/auth/welcome"),
                                  ("post", "/api/auth/welcome/check")):  # fmt: skip
                assert "security" not in op
                continue
            assert op.get("security"), f"{method} {path}: no security declared"
            assert {"401", "403", "404", "413", "422"} <= codes, f"{method} {path}: {codes}"
    assert "429" in doc["paths"]["/api/auth/login"]["post"]["responses"]
    assert "429" in doc["paths"]["/api/auth/welcome"]["post"]["responses"]  # throttled too
    assert "429" in doc["paths"]["/api/auth/welcome/check"]["post"]["responses"]
    assert "409" in doc["paths"]["/api/programs/{program_id}"]["put"]["responses"]


# --------------------------------------------------------------------------- browsers


def test_security_headers_on_pages_api_and_static(make_world) -> None:
    app, _ids, _client = make_world()
    c = TestClient(app)
    for url in ("/login", "/therapist", "/api/health", "/static/app.js", "/api/auth/me"):
        h = c.get(url).headers
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in h  # plain HTTP: HSTS would be a lie
    secure, _ids, _client = make_world(secure_cookies=True)
    assert "max-age=" in TestClient(secure).get("/login").headers["strict-transport-security"]


def test_pages_have_no_inline_script_or_style() -> None:
    """The CSP forbids them; a page that had one would silently break."""
    for page in sorted(STATIC.glob("*.html")):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page.name
        assert not re.search(r"\son[a-z]+\s*=", html), page.name
        assert " style=" not in html and "<style" not in html, page.name
    for script in sorted(STATIC.glob("*.js")):
        assert "style: " not in script.read_text() or script.name == "app.js", script.name
        assert "?token=" not in script.read_text(), script.name


def test_each_role_is_sent_to_its_own_pages(make_world) -> None:
    app, _ids, client = make_world()
    patient, therapist = client("patient", kind="cookie"), client("therapist", kind="cookie")
    for url in ("/therapist", "/watch?session=1"):
        r = patient.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/patient", url
        assert therapist.get(url, follow_redirects=False).status_code == 200
    for url in ("/patient", "/live"):
        r = therapist.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/therapist", url
        assert patient.get(url, follow_redirects=False).status_code == 200
    anonymous = TestClient(app).get("/therapist", follow_redirects=False)
    assert anonymous.status_code == 200 and anonymous.headers["cache-control"] == "no-store"
