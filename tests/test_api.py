"""The HTTP API: login, CSRF, the authorization matrix, exports, bad input."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from telerehab.errors import StorageError
from telerehab.rehab_programs.events import RepResult
from telerehab.server import accounts, movement, prescriptions, records
from telerehab.server.app import create_app
from telerehab.server.db import open_database
from telerehab.settings import Settings

PROGRAM = {
    "title": "Knee rehab",
    "sessions_per_week": 3,
    "exercises": [
        {"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90},
        {"exercise": "shoulder_abduction", "sets": 1, "reps": 6},
    ],
}
PASSWORD = "correct-horse-1"
ROLES = ("anonymous", "patient", "other_patient", "therapist", "other_therapist", "admin")


def _rep(i: int, side: str = "left", excursion: float = 85.0) -> RepResult:
    return RepResult(
        index=i, side=side, t_start_s=i * 3.0, t_peak_s=i * 3.0 + 1, t_end_s=i * 3.0 + 2.5,
        frame_peak=30 * i, rom_min_deg=5, rom_max_deg=5 + excursion, excursion_deg=excursion,
        duration_s=2.5, up_s=1, hold_s=0.2, down_s=1.3, quality=90, faults=("trunk_lean",),
        target_rom_deg=90,
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path):
    """An app on a fresh SQLite file with two care teams, a program and a session."""
    db = open_database(f"sqlite:///{tmp_path / 'api.db'}")
    app = create_app(Settings(data_dir=tmp_path), db)
    ids: dict[str, int] = {}
    with db.session() as s:
        for role, email, kind in (
            ("admin", "admin@clinic.org", "admin"),
            ("therapist", "thea@clinic.org", "therapist"),
            ("other_therapist", "otto@clinic.org", "therapist"),
            ("patient", "pat@home.org", "patient"),
            ("other_patient", "olga@home.org", "patient"),
        ):
            ids[role] = accounts.create_user(s, email, role.title(), kind, PASSWORD).id
        accounts.link(s, ids["therapist"], ids["patient"])
        ids["care_link"] = accounts.link(s, ids["other_therapist"], ids["other_patient"]).id
        ids["user"] = ids["other_patient"]  # the account the matrix (de)activates
        version = prescriptions.create_program(s, ids["patient"], PROGRAM, ids["therapist"])
        ids["program"] = version.program_id
        x = records.start_session(s, ids["patient"], program_version_id=version.id, pain_before=3)
        for i in (1, 2):
            records.add_repetition(s, x, "squat", _rep(i))
        records.add_repetition(s, x, "shoulder_abduction", _rep(3, "both", 150))
        records.end_session(s, x, "complete", pain_after=2, rpe=4)
        ids["session"] = x.id
        t_s, frames = _movement()
        records.save_movement(s, x, "squat", movement.encode(t_s, frames), len(t_s), 640, 480)
        tokens = {
            role: accounts.issue_token(s, s.get(accounts.User, ids[role]), "bearer")[0]
            for role in ROLES[1:]
        }
    yield app, ids, tokens
    db.close()


def _movement(n: int = 45, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """A squat-like skeleton: `n` frames, the hips going down and up."""
    t_s = np.arange(n) / fps
    frames = np.zeros((n, 33, 3), np.float32)
    frames[:, :, 0] = np.linspace(0.3, 0.7, 33)
    frames[:, :, 1] = 0.2 + 0.1 * np.sin(t_s)[:, None]
    frames[:, :, 2] = 0.9
    return t_s, frames


def _client(app, token: str | None = None) -> TestClient:
    c = TestClient(app)
    if token:
        c.headers["Authorization"] = f"Bearer {token}"
    return c


# (method, path template, body, roles allowed). "P" is the patient of "therapist".
MATRIX = [
    ("GET", "/api/auth/me", None, {"patient", "other_patient", "therapist", "other_therapist",
                                   "admin"}),
    ("POST", "/api/auth/password", {"current": "wrong-one-pw", "new": "whatever-new-1"},
     {"patient", "other_patient", "therapist", "other_therapist", "admin"}),
    ("POST", "/api/auth/logout", None, {"patient", "other_patient", "therapist",
                                        "other_therapist", "admin"}),
    ("PUT", "/api/auth/language", {"language": "es"}, {"patient", "other_patient", "therapist",
                                                       "other_therapist", "admin"}),
    ("PUT", "/api/patients/{patient}/language", {"language": "es"}, {"therapist"}),
    ("POST", "/api/patients/{patient}/alerts/acknowledge", {"alert_id": "pain_flare:1"},
     {"therapist"}),
    ("GET", "/api/users", None, {"admin"}),
    ("POST", "/api/users", {"email": "new@home.org", "name": "New", "role": "patient",
                            "password": PASSWORD}, {"admin"}),
    ("POST", "/api/care-links", {"therapist_id": "{other_therapist}", "patient_id": "{patient}"},
     {"admin"}),
    ("GET", "/api/care-links", None, {"admin"}),
    ("DELETE", "/api/care-links/{care_link}", None, {"admin"}),
    ("POST", "/api/users/{user}/deactivate", None, {"admin"}),
    ("POST", "/api/users/{user}/activate", None, {"admin"}),
    ("GET", "/api/audit", None, {"admin"}),
    ("GET", "/api/patients/{patient}/access-log", None, {"patient"}),
    ("GET", "/api/exercises", None, {"patient", "other_patient", "therapist", "other_therapist",
                                     "admin"}),
    ("GET", "/api/exercises/squat/demonstration", None, {"patient", "other_patient",
                                                         "therapist", "other_therapist", "admin"}),
    ("POST", "/api/exercises", {"document": {"id": "x"}}, {"therapist", "other_therapist"}),
    ("POST", "/api/exercises/learn?id=lunge_2&name=Lunge", None,
     {"therapist", "other_therapist"}),
    ("GET", "/api/patients", None, {"patient", "other_patient", "therapist", "other_therapist"}),
    ("POST", "/api/patients/invite", {"email": "new.patient@home.org", "name": "New Patient"},
     {"therapist", "other_therapist"}),
    ("GET", "/api/patients/{patient}", None, {"patient", "therapist"}),
    ("GET", "/api/patients/{patient}/trends", None, {"patient", "therapist"}),
    ("GET", "/api/patients/{patient}/programs", None, {"patient", "therapist"}),
    ("POST", "/api/patients/{patient}/programs", {"document": PROGRAM}, {"therapist"}),
    ("GET", "/api/programs/{program}", None, {"patient", "therapist"}),
    ("GET", "/api/programs/{program}/versions", None, {"patient", "therapist"}),
    ("PUT", "/api/programs/{program}", {"document": PROGRAM, "based_on_version": 1},
     {"therapist"}),
    ("GET", "/api/patients/{patient}/sessions", None, {"patient", "therapist"}),
    ("POST", "/api/patients/{patient}/sessions", {"pain_before": 4, "pain_after": 3},
     {"patient"}),
    ("GET", "/api/sessions/{session}", None, {"patient", "therapist"}),
    ("GET", "/api/sessions/{session}/export.csv", None, {"patient", "therapist"}),
    ("GET", "/api/sessions/{session}/movement/squat", None, {"patient", "therapist"}),
    ("GET", "/api/patients/{patient}/export.csv", None, {"patient", "therapist"}),
    ("GET", "/api/patients/{patient}/fhir", None, {"patient", "therapist"}),
    ("GET", "/api/exports/columns", None, {"patient", "other_patient", "therapist",
                                           "other_therapist", "admin"}),
    # live sessions ({live}: one the patient started, with video consent)
    ("POST", "/api/live/sessions", {"pain_before": 2}, {"patient", "other_patient"}),
    ("GET", "/api/live/sessions", None, {"patient", "other_patient", "therapist",
                                         "other_therapist", "admin"}),
    ("GET", "/api/live/sessions/{live}", None, {"patient", "therapist"}),
    ("POST", "/api/live/sessions/{live}/offer", {"sdp": "v=0", "type": "offer"}, {"patient"}),
    ("POST", "/api/live/sessions/{live}/pause", None, {"patient"}),
    ("POST", "/api/live/sessions/{live}/resume", None, {"patient"}),
    ("POST", "/api/live/sessions/{live}/end", {"pain_after": 2}, {"patient"}),
    ("POST", "/api/live/sessions/{live}/watch", {"sdp": "v=0", "type": "offer"}, {"therapist"}),
]  # fmt: skip
PUBLIC = {
    ("POST", "/api/auth/login"),
    ("GET", "/api/health"),
    ("GET", "/api/i18n"),
    ("POST", "/api/auth/welcome"),
    ("POST", "/api/auth/welcome/check"),
}


def _fill(value, ids: dict[str, int]):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


# Allowed calls the matrix makes with a body refused after the access check:
# (method, path, role) -> (status, what the answer says).
WRONG_PASSWORD = (422, "current password: wrong")
REFUSED_AFTER_ACCESS = {
    ("POST", "/api/patients/invite", "other_therapist"): (409, "already exists"),  # the same e-mail
    ("POST", "/api/patients/{patient}/alerts/acknowledge", "therapist"): (404, "no current alert"),
    **{("POST", "/api/auth/password", role): WRONG_PASSWORD for role in ROLES},
    ("POST", "/api/live/sessions", "other_patient"): (409, "no program prescribed yet"),
    ("POST", "/api/live/sessions/{live}/offer", "patient"): (422, "invalid SDP offer"),
    ("POST", "/api/live/sessions/{live}/watch", "therapist"): (422, "invalid SDP offer"),
    **{("POST", "/api/exercises", t): (422, "exercise document: ")
       for t in ("therapist", "other_therapist")},
    **{("POST", "/api/exercises/learn?id=lunge_2&name=Lunge", t): (422, "Content-Type missing")
       for t in ("therapist", "other_therapist")},
}  # fmt: skip


def test_the_matrix_covers_every_endpoint(world) -> None:
    app, _ids, _tokens = world
    routes = {
        (
            method.upper(),
            re.sub(r"\{(\w+?)_id\}", r"{\1}", path).replace(
                "/api/live/sessions/{session}", "/api/live/sessions/{live}"
            ),
        )
        for path, ops in app.openapi()["paths"].items()
        for method in ops
    }
    covered = {(m, p.split("?")[0].replace("/movement/squat", "/movement/{exercise}")
                .replace("/exercises/squat/", "/exercises/{exercise}/"))
               for m, p, _b, _r in MATRIX} | PUBLIC  # fmt: skip
    assert routes == covered


@pytest.mark.parametrize(("method", "path", "body", "allowed"), MATRIX,
                         ids=[f"{m} {p}" for m, p, _b, _a in MATRIX])  # fmt: skip
def test_authorization_matrix(world, method, path, body, allowed) -> None:
    """Every endpoint with every role: the allowed ones get through (2xx, or
    the refusal their body earns, named in REFUSED_AFTER_ACCESS), everyone
    else (anonymous, the foreign patient, the foreign therapist, the admin for
    clinical records) is denied with 401 or 403."""
    app, ids, tokens = world
    with TestClient(app) as patient:  # the lifespan ends any live session at exit
        patient.headers["Authorization"] = f"Bearer {tokens['patient']}"
        if "{live}" in path:
            started = patient.post("/api/live/sessions", json={"video_consent": True})
            ids = {**ids, "live": started.json()["id"]}
        url = path.format(**ids)
        # those allowed go last: an allowed call may end what the others probe
        for role in sorted(ROLES, key=lambda r: r in allowed):
            c = _client(app, tokens.get(role))
            r = c.request(method, url, json=_fill(body, ids) if body else None)
            if role in allowed:
                # allowed: anything but a denial (a wrong password or SDP is a 422)
                code, says = REFUSED_AFTER_ACCESS.get((method, path, role), (None, ""))
                if code is None:  # through, and done
                    assert 200 <= r.status_code < 300, f"{role} {method} {url}: {r.text}"
                else:  # through the access check, refused for what the body says
                    assert (r.status_code, says in r.text) == (code, True), (role, url, r.text)
            else:
                expected = 401 if role == "anonymous" else 403
                assert r.status_code == expected, f"{role} {method} {url}: {r.status_code} {r.text}"


def test_cookie_login_needs_csrf_and_logout_ends_it(world) -> None:
    app, ids, _tokens = world
    c = TestClient(app)
    r = c.post("/api/auth/login", json={"email": "THEA@clinic.org", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    csrf = r.json()["csrf_token"]
    url = f"/api/patients/{ids['patient']}/programs"
    denied = c.post(url, json={"document": PROGRAM})
    assert denied.status_code == 403 and "X-CSRF-Token" in denied.json()["detail"]
    assert (
        c.post(url, json={"document": PROGRAM}, headers={"X-CSRF-Token": csrf}).status_code == 201
    )
    assert c.get("/api/auth/me").json()["role"] == "therapist"
    assert c.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert c.get("/api/auth/me").status_code == 401
    wrong = c.post("/api/auth/login", json={"email": "thea@clinic.org", "password": "nope-nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong e-mail or password"


def test_an_empty_login_names_what_is_missing(world) -> None:
    """An empty field is no failed login: a 422 naming the field, nothing
    counted against the account."""
    app, _ids, _tokens = world
    c = TestClient(app)
    cases = [({"email": "", "password": ""}, ["email", "password"]),
             ({"email": "thea@clinic.org", "password": ""}, ["password"])]  # fmt: skip
    for body, missing in cases:
        r = c.post("/api/auth/login", json=body)
        assert r.status_code == 422, r.text
        assert [p["loc"][-1] for p in r.json()["detail"]] == missing
        assert "wrong e-mail or password" not in r.text
    assert c.post("/api/auth/login", json={"email": "thea@clinic.org",
                                           "password": PASSWORD}).status_code == 200  # fmt: skip


def test_bad_input_is_named_and_loses_nothing(world) -> None:
    app, ids, tokens = world
    therapist = _client(app, tokens["therapist"])
    admin = _client(app, tokens["admin"])
    programs = f"/api/patients/{ids['patient']}/programs"
    before = therapist.get(programs).json()
    r = therapist.post(programs, content=b'{"document": {', headers={
        "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 422 and "JSON decode error" in str(r.json()["detail"])
    bad = {**PROGRAM, "exercises": [{"exercise": "sqaut", "sets": 2, "reps": 3}]}
    r = therapist.post(programs, json={"document": bad})
    assert r.status_code == 422
    assert "exercises[0].exercise: unknown exercise 'sqaut' (did you mean 'squat'?)" in r.text
    assert therapist.get(programs).json() == before
    r = admin.post("/api/users", json={"email": "pat@home.org", "name": "Again",
                                       "role": "patient", "password": PASSWORD})  # fmt: skip
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    url = f"/api/programs/{ids['program']}"
    assert therapist.put(url, json={"document": PROGRAM, "based_on_version": 1}).status_code == 200
    stale = therapist.put(url, json={"document": {**PROGRAM, "title": "Mine"},
                                     "based_on_version": 1})  # fmt: skip
    assert stale.status_code == 409 and "reload it" in stale.json()["detail"]
    latest = therapist.get(url).json()
    assert latest["latest"]["version"] == 2 and latest["latest"]["document"] == PROGRAM
    assert [v["version"] for v in latest["versions"]] == [1, 2]
    pain = _client(app, tokens["patient"]).post(
        f"/api/patients/{ids['patient']}/sessions", json={"pain_before": 11}
    )
    assert pain.status_code == 422 and "pain_before" in pain.text


def test_trends_and_csv_exports(world) -> None:
    app, ids, tokens = world
    c = _client(app, tokens["therapist"])
    trends = c.get(f"/api/patients/{ids['patient']}/trends").json()
    assert {r["exercise_id"] for r in trends["rom"]} == {"squat", "shoulder_abduction"}
    assert trends["pain"][0]["before"] == 3 and trends["pain"][0]["change"] == -1
    rows = list(csv.DictReader(io.StringIO(
        c.get(f"/api/sessions/{ids['session']}/export.csv").text)))  # fmt: skip
    assert [r["exercise_id"] for r in rows] == ["squat", "squat", "shoulder_abduction"]
    assert [r["exercise_name"] for r in rows] == ["Squat", "Squat", "Shoulder abduction"]
    assert rows[0]["excursion_deg"] == "85.0" and rows[0]["faults"] == "trunk_lean"
    # the target each repetition was judged against, and the share of it reached (rounded)
    assert rows[0]["target_rom_deg"] == "90.0" and rows[0]["target_share"] == "0.944"
    # times in UTC with their zone; one pseudonym, never the patient's id, name or e-mail
    assert rows[0]["started_at_utc"].endswith("+00:00") and rows[0]["ended_at_utc"]
    assert {r["patient"] for r in rows} == {rows[0]["patient"]}
    assert re.fullmatch(r"P-[A-Z2-7]{12}", rows[0]["patient"])
    text = c.get(f"/api/sessions/{ids['session']}/export.csv").text
    assert "pat@home.org" not in text and "Patient" not in text
    decimals = [len(v.split(".")[1]) for r in rows for v in r.values()
                if re.fullmatch(r"-?\d+\.\d+", v)]  # fmt: skip
    assert decimals and max(decimals) <= 3
    # the data dictionary names every column, and docs/exports.md is the same
    columns = c.get("/api/exports/columns").json()
    assert list(columns) == list(rows[0])
    doc = (Path(__file__).resolve().parent.parent / "docs" / "exports.md").read_text()
    assert [m for m in re.findall(r"^\| `(\w+)` \|", doc, re.M)] == list(columns)
    detail = c.get(f"/api/sessions/{ids['session']}").json()
    shares = [r["target_share"] for r in detail["reps"]]
    assert shares[0] == pytest.approx(85 / 90) and len(shares) == 3
    assert detail["mean_target_share"] == pytest.approx(sum(shares) / 3)
    whole = c.get(f"/api/patients/{ids['patient']}/export.csv")
    assert whole.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(whole.text)))) == 3
    listed = c.get("/api/patients").json()
    assert [p["email"] for p in listed] == ["pat@home.org"] and listed[0]["sessions"] == 1


def test_fhir_bundle_is_valid_r4(world) -> None:
    """Validated by the SMART on FHIR models generated from FHIR 4.0.1 (strict)."""
    from fhirclient.models.bundle import Bundle

    app, ids, tokens = world
    r = _client(app, tokens["patient"]).get(f"/api/patients/{ids['patient']}/fhir")
    assert r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    bundle = Bundle(doc, strict=True)  # raises FHIRValidationError on any schema error
    assert bundle.type == "collection"
    resources = [e["resource"] for e in doc["entry"]]
    assert resources[0]["resourceType"] == "Patient"
    pain = [x for x in resources if x.get("code", {}).get("coding", [{}])[0].get("code")
            == "72514-3"]  # fmt: skip
    assert sorted(x["valueInteger"] for x in pain) == [2, 3]
    rom = [x for x in resources if "valueQuantity" in x]
    assert {x["valueQuantity"]["code"] for x in rom} == {"deg"}
    assert {x["valueQuantity"]["system"] for x in rom} == {"http://unitsofmeasure.org"}
    by_joint = {x["bodySite"]["coding"][0]["display"]: x for x in rom}
    knee = by_joint["Knee joint structure"]
    assert knee["valueQuantity"]["value"] == 85.0
    assert knee["component"][0]["valueCodeableConcept"]["coding"][0]["display"] == "Left"
    shoulder = by_joint["Shoulder joint structure"]
    assert shoulder["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "51440002"
    adherence = [x for x in resources if "valueRatio" in x]
    assert adherence and adherence[-1]["valueRatio"]["denominator"]["value"] == 3
    from datetime import datetime, timedelta

    period = adherence[-1]["effectivePeriod"]  # the whole ISO week, with an end
    start, end = (datetime.fromisoformat(period[k]) for k in ("start", "end"))
    assert start.weekday() == 0 and end - start == timedelta(days=7, seconds=-1)


def test_server_shutdown_records_live_sessions_as_interrupted(world) -> None:
    from telerehab.server.tables import ExerciseSession

    app, _ids, tokens = world
    with TestClient(app) as patient:
        patient.headers["Authorization"] = f"Bearer {tokens['patient']}"
        sid = patient.post("/api/live/sessions", json={"pain_before": 4}).json()["id"]
        assert patient.get(f"/api/live/sessions/{sid}").status_code == 200
    # the server stopped with the session still live: nothing is left "in progress"
    with app.state.db.session() as s:
        x = s.get(ExerciseSession, sid)
        assert (x.status, x.pain_before) == ("interrupted", 4) and x.ended_at is not None


def test_a_sessions_movement_is_kept_as_a_skeleton_for_its_readers(world) -> None:
    """The movement is served to the patient and their therapist (each read
    audited), as x, y, visibility per landmark at no more than 15 frames a
    second; another patient's therapist is refused, an exercise without a
    movement is 404, and a session whose patient declined keeps nothing."""
    app, ids, tokens = world
    c = _client(app, tokens["therapist"])
    detail = c.get(f"/api/sessions/{ids['session']}").json()
    assert detail["movements"] == ["squat"] and detail["movement_consent"] is True
    got = c.get(f"/api/sessions/{ids['session']}/movement/squat").json()
    t_s, frames = _movement()
    assert got["width"] == 640 and got["height"] == 480
    assert len(got["t_s"]) == len(got["landmarks"]) == len(t_s)  # stored as given
    assert got["landmarks"][10][5] == pytest.approx(frames[10, 5].tolist(), abs=1e-3)
    assert c.get(f"/api/sessions/{ids['session']}/movement/lunge").status_code == 404
    other = _client(app, tokens["other_therapist"])
    assert other.get(f"/api/sessions/{ids['session']}/movement/squat").status_code == 403
    admin = _client(app, tokens["admin"])
    trail = admin.get("/api/audit").json()
    assert any("movement of squat" in e["target"] for e in trail)
    # the patient's list says which record, by kind, date and exercise, for the page to word
    log = _client(app, tokens["patient"]).get(f"/api/patients/{ids['patient']}/access-log").json()
    (seen,) = [e for e in log if e["record_kind"] == "movement"]
    assert seen["action"] == "read" and seen["exercise"] == "squat"
    assert seen["record_at"] == detail["started_at"] and seen["what"].endswith("movement of squat")
    (looked,) = [e for e in log if e["record_kind"] == "session"]
    assert looked["record_at"] == detail["started_at"] and looked["exercise"] is None
    # thinned to 15 frames a second when recorded; nothing kept without consent
    kept = movement.MovementRecorder()
    for k, t in enumerate(t_s):
        kept.add(float(t), frames[k] if k % 7 else None)
    back_t, back = movement.decode(kept.encode())
    assert len(back_t) == 23 and np.all(np.diff(back_t) >= 1 / 15 - 1e-6)
    assert np.isnan(back[0]).all() and not np.isnan(back[1]).any()  # frame 0: no one seen
    db = app.state.db
    with db.session() as s:
        x = records.start_session(s, ids["patient"], movement_consent=False)
        assert records.save_movement(s, x, "squat", kept.encode(), len(kept), 640, 480) is None
        declined = x.id
    assert c.get(f"/api/sessions/{declined}").json()["movements"] == []
    with pytest.raises(StorageError, match="damaged"):
        movement.decode(b"TRMV\x01\x05\x00\x00\x00garbage")


def test_a_therapist_finds_and_orders_their_patients(world) -> None:
    """Search by part of a name or e-mail, any case; order by name, by the
    latest session first, by alerts; only the therapist's own patients."""
    app, ids, tokens = world
    with app.state.db.session() as s:
        for email, name in (("zoe@home.org", "Zoe Park"), ("adam@home.org", "adam Berg")):
            p = accounts.create_user(s, email, name, "patient", PASSWORD)
            accounts.link(s, ids["therapist"], p.id)
        adam = s.query(accounts.User).filter_by(email="adam@home.org").one()
        x = records.start_session(s, adam.id)
        records.end_session(s, x, "interrupted")
    c = _client(app, tokens["therapist"])
    names = lambda r: [p["name"] for p in r.json()]  # noqa: E731
    assert names(c.get("/api/patients")) == ["adam Berg", "Patient", "Zoe Park"]
    assert names(c.get("/api/patients?q=PARK")) == ["Zoe Park"]
    assert names(c.get("/api/patients?q=home.org&sort=last_session")) == [
        "adam Berg", "Patient", "Zoe Park"]  # fmt: skip
    listed = c.get("/api/patients?sort=last_session").json()
    assert listed[0]["last_session_at"].endswith("+00:00") and listed[2]["last_session_at"] is None
    assert [len(p["alerts"]) for p in c.get("/api/patients?sort=alerts").json()] == sorted(
        (len(p["alerts"]) for p in listed), reverse=True)  # fmt: skip
    assert names(c.get("/api/patients?q=olga")) == []  # another team's patient
    assert c.get("/api/patients?sort=age").status_code == 422


def test_an_alert_names_its_sessions_and_is_acknowledged_until_its_evidence_changes(world) -> None:
    """A pain flare names the session behind it; the patient's therapist
    acknowledges it (audited), and it stays listed, marked, with who and
    when; a new flare is a new alert. No one else may acknowledge."""
    app, ids, tokens = world
    with app.state.db.session() as s:
        x = records.start_session(s, ids["patient"], pain_before=2)
        records.add_repetition(s, x, "squat", _rep(1))
        records.end_session(s, x, "complete", pain_after=6)
        flare = x.id
    c = _client(app, tokens["therapist"])
    alerts = c.get(f"/api/patients/{ids['patient']}/trends").json()["alerts"]
    (alert,) = [a for a in alerts if a["key"] == "painFlare"]
    assert alert["sessions"] == [flare] and alert["id"] == f"pain_flare:{flare}"
    assert alert["acknowledged"] is None
    url = f"/api/patients/{ids['patient']}/alerts/acknowledge"
    for who in ("other_therapist", "patient"):
        refused = _client(app, tokens[who]).post(url, json={"alert_id": alert["id"]})
        assert refused.status_code == 403
    assert c.post(url, json={"alert_id": "pain_flare:999"}).status_code == 404
    done = c.post(url, json={"alert_id": alert["id"]}).json()
    assert done["acknowledged"]["by"] == "Therapist"
    assert done["acknowledged"]["at"].endswith("+00:00")
    assert c.post(url, json={"alert_id": alert["id"]}).status_code == 200  # twice: the same
    listed = c.get("/api/patients").json()[0]["alerts"]
    assert [a["acknowledged"] is not None for a in listed if a["key"] == "painFlare"] == [True]
    trail = _client(app, tokens["admin"]).get("/api/audit").json()
    assert any(e["action"] == "alert.acknowledge" and e["target"] == alert["id"] for e in trail)
    log = _client(app, tokens["patient"]).get(f"/api/patients/{ids['patient']}/access-log").json()
    acked = [e for e in log if e["action"] == "alert.acknowledge"]
    assert acked and {(e["record_kind"], e["exercise"]) for e in acked} == {("alert", None)}
    started = c.get(f"/api/sessions/{flare}").json()["started_at"]
    assert {e["record_at"] for e in acked} == {started}  # the flare's session, by its date
    with app.state.db.session() as s:  # another flare: another alert, not acknowledged
        y = records.start_session(s, ids["patient"], pain_before=1)
        records.end_session(s, y, "complete", pain_after=7)
    alerts = c.get(f"/api/patients/{ids['patient']}/trends").json()["alerts"]
    (again,) = [a for a in alerts if a["key"] == "painFlare"]
    assert again["id"] == f"pain_flare:{y.id}" and again["acknowledged"] is None


def test_a_therapist_invites_a_patient_who_chooses_their_password(world) -> None:
    """The invitation makes a patient in the therapist's care; its link
    carries the secret in the fragment; the patient sets their password once
    with it and is logged in; the secret is no login and is spent; a wrong
    one is refused like a failed login."""
    app, _ids, tokens = world
    c = _client(app, tokens["therapist"])
    r = c.post("/api/patients/invite",
               json={"email": "Ana@Home.org", "name": "Ana Ruiz", "language": "es"})  # fmt: skip
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["patient"]["email"] == "ana@home.org" and got["patient"]["language"] == "es"
    assert got["invite_path"].startswith("/welcome?lang=es#") and got["valid_days"] == 7
    secret = got["invite_path"].split("#", 1)[1]
    assert "Ana Ruiz" in [p["name"] for p in c.get("/api/patients").json()]  # in their care
    assert _client(app, secret).get("/api/auth/me").status_code == 401  # no login
    anon = TestClient(app)
    check = anon.post("/api/auth/welcome/check", json={"token": secret})
    assert check.status_code == 200 and check.json() == {"open": True}  # asked, not spent
    weak = anon.post("/api/auth/welcome", json={"token": secret, "password": "aaaaaaaaaaaa"})
    assert weak.status_code == 422 and "password" in weak.text  # the policy, secret kept
    ok = anon.post("/api/auth/welcome", json={"token": secret, "password": "my-own-pw-42"})
    assert ok.status_code == 200 and ok.json()["user"]["role"] == "patient"
    me = anon.get("/api/auth/me").json()  # the cookie: logged in
    assert me["email"] == "ana@home.org"
    again = TestClient(app).post("/api/auth/welcome",
                                 json={"token": secret, "password": "other-pw-4242"})  # fmt: skip
    assert again.status_code == 401 and "already used" in again.text
    spent = TestClient(app).post("/api/auth/welcome/check", json={"token": secret})
    assert spent.status_code == 401 and "already used" in spent.text
    mine = {"email": "ana@home.org", "password": "my-own-pw-42"}
    login = TestClient(app).post("/api/auth/login", json=mine)
    assert login.status_code == 200
    for who in ("patient", "admin"):
        refused = _client(app, tokens[who]).post(
            "/api/patients/invite", json={"email": "x@home.org", "name": "X"})  # fmt: skip
        assert refused.status_code == 403


def _utc(iso: str) -> bool:
    """An ISO 8601 time in UTC, its zone written (Z or +00:00)."""
    return datetime.fromisoformat(iso).utcoffset() == timedelta(0)


def test_a_program_keeps_rest_and_notes_refuses_duplicates_and_tells_what_changed(world) -> None:
    """The editor's round trip through the API: rest and notes per exercise
    are kept; the same exercise on the same side twice is refused, naming
    both entries; a stale edit gets 409 naming who saved the newer version
    and when; the versions list says what changed, newest first, audited,
    to the patient and their therapist only."""
    app, ids, tokens = world
    therapist, patient = _client(app, tokens["therapist"]), _client(app, tokens["patient"])
    url = f"/api/programs/{ids['program']}"
    squat, curl = PROGRAM["exercises"][0], {"exercise": "elbow_flexion"}
    curl |= {"sets": 2, "reps": 10, "side": "left"}
    twice = {**PROGRAM, "exercises": [squat, {**curl, "side": "right"}, {**squat, "reps": 5}]}
    r = therapist.put(url, json={"document": twice, "based_on_version": 1})
    assert r.status_code == 422
    assert "exercises[2]: squat (auto) is already prescribed as exercises[0]" in r.json()["detail"]
    v2 = {**PROGRAM, "therapist_notes": "Ice after.", "exercises": [
        {**squat, "rest_s": 90, "notes": "Hold on to a chair."}, curl, {**curl, "side": "right"},
        {"exercise": "shoulder_abduction", "sets": 1, "reps": 6}]}  # fmt: skip
    r = therapist.put(url, json={"document": v2, "based_on_version": 1})
    assert r.status_code == 200 and r.json()["version"] == 2
    kept = patient.get(url).json()["latest"]["document"]["exercises"][0]
    assert kept["rest_s"] == 90 and kept["notes"] == "Hold on to a chair."
    v3 = {**v2, "title": "Knee and elbow", "exercises": [
        {**squat, "reps": 8, "rest_s": 90, "notes": "Hold on to a chair.",
         "tempo": {"up_s": 3, "down_s": 2}}, curl, {**curl, "side": "right"}]}  # fmt: skip
    assert therapist.put(url, json={"document": v3, "based_on_version": 2}).status_code == 200
    stale = therapist.put(url, json={"document": v2, "based_on_version": 2})
    assert stale.status_code == 409 and stale.headers["location"] == url
    body = stale.json()
    assert (body["version"], body["saved_by"]) == (3, "Therapist")  # the author's name
    assert _utc(body["saved_at"]) and "reload it" in body["detail"]

    versions = patient.get(f"{url}/versions")
    assert versions.status_code == 200
    history = versions.json()
    assert [v["version"] for v in history] == [3, 2, 1]
    assert {v["author"] for v in history} == {"Therapist"}
    assert all(_utc(v["created_at"]) for v in history)
    assert [c["kind"] for c in history[-1]["changes"]] == ["created"]
    said = {(c["kind"], c["exercise"], c["side"], c["field"], str(c["before"]), str(c["after"]))
            for c in history[1]["changes"]}  # fmt: skip
    assert said == {
        ("program_changed", None, None, "therapist_notes", "", "Ice after."),
        ("exercise_changed", "squat", "auto", "rest_s", "60", "90"),
        ("exercise_changed", "squat", "auto", "notes", "", "Hold on to a chair."),
        ("exercise_added", "elbow_flexion", "left", None, "None", "None"),
        ("exercise_added", "elbow_flexion", "right", None, "None", "None"),
    }
    said = [(c["kind"], c["exercise"], c["field"], c["before"], c["after"])
            for c in history[0]["changes"]]  # fmt: skip
    assert said == [
        ("program_changed", None, "title", "Knee rehab", "Knee and elbow"),
        ("exercise_changed", "squat", "reps", 3, 8),
        ("exercise_changed", "squat", "tempo", None, {"up_s": 3, "hold_s": 0, "down_s": 2}),
        ("exercise_removed", "shoulder_abduction", None, None, None),
    ]
    for role in ("other_patient", "other_therapist", "admin"):
        assert _client(app, tokens[role]).get(f"{url}/versions").status_code == 403
    assert therapist.get(f"/api/programs/{ids['program'] + 99}/versions").status_code == 403
    trail = _client(app, tokens["admin"]).get("/api/audit").json()
    read = [e for e in trail if e["target"] == f"program {ids['program']} versions"]
    assert read and read[0]["action"] == "read" and read[0]["patient_id"] == ids["patient"]
    assert therapist.get(f"{url}/versions").status_code == 200  # the patient sees it read
    log = patient.get(f"/api/patients/{ids['patient']}/access-log").json()
    assert log[0]["action"] == "read" and log[0]["record_kind"] == "program_history"
    assert log[0]["who"] == "Therapist" and log[0]["record_at"] is None
    assert {e["record_kind"] for e in log if e["action"] == "prescribe"} == {"program_version"}
