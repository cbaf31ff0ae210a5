"""Languages: the catalogues are complete, the pages take every word from
them, each user's language is kept and used (pages, exercise names and cues).
The pages in Spanish in Chromium are in test_pages.py."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from fastapi.testclient import TestClient

from telerehab.rehab_programs.library import default_library
from telerehab.server import accounts, i18n, prescriptions
from telerehab.server.app import create_app
from telerehab.server.db import open_database, upgrade
from telerehab.settings import Settings

STATIC = Path(__file__).resolve().parent.parent / "server" / "static"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _english_keys() -> set[str]:
    """What every catalogue must hold: the English catalogue's keys, and the
    name, instructions and cues of every library exercise (whose English is
    the library's YAML)."""
    keys = set(i18n.catalogue("en").messages)
    for e in default_library():
        keys |= {f"exercise.{e.id}.name", f"exercise.{e.id}.instructions"}
        keys |= {f"exercise.{e.id}.feedback.{k}" for k in e.feedback}
    return keys


@pytest.mark.parametrize("language", [x for x in i18n.languages() if x != "en"])
def test_every_catalogue_has_every_english_key(language) -> None:
    """A key English has and another catalogue lacks fails here, named; so
    does a plural form left empty or a placeholder the translation lost."""
    c = i18n.catalogue(language)
    missing = sorted(_english_keys() - set(c.messages))
    assert not missing, f"{language} lacks {len(missing)} messages: {missing[:20]}"
    english = i18n.catalogue("en").messages
    for key, text in c.messages.items():
        forms = text if isinstance(text, tuple) else (text,)
        assert all(f.strip() for f in forms), f"{language}: {key} has an empty form"
        if key in english:
            en = english[key]
            want = set(PLACEHOLDER.findall(en if isinstance(en, str) else " ".join(en)))
            for f in forms:
                assert set(PLACEHOLDER.findall(f)) == want, f"{language}: {key}: {f!r}"
            assert isinstance(en, tuple) == isinstance(text, tuple), f"{language}: {key}: plural?"


def test_english_has_every_key_the_pages_use() -> None:
    """The keys in the HTML (data-i18n) and the scripts (TR.t, TR.tn, T, as
    Babel's JavaScript extractor finds them) are all in English."""
    used: dict[str, str] = {}
    for js in sorted(STATIC.glob("*.js")):
        for line, key, *_ in extract_from_file(
            "javascript", js, keywords={"t": None, "tn": None, "T": None}
        ):
            if isinstance(key, str) and "${" not in key:  # a key built at run time is its prefix's
                used[key] = f"{js.name}:{line}"
    for page in sorted(STATIC.glob("*.html")):
        for key in re.findall(r'data-i18n(?:-label)?="([^"]+)"', page.read_text()):
            used[key] = page.name
    english = set(i18n.catalogue("en").messages)
    assert len(used) > 150
    assert not {k: w for k, w in used.items() if k not in english}


class _Words(HTMLParser):
    """Text and labelling attributes that are not the catalogue's."""

    LABELS = ("aria-label", "title", "alt", "placeholder")

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: its words are the catalogue's
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        for name in self.LABELS:
            if a.get(name) and not (name == "aria-label" and "data-i18n-label" in a):
                self.found.append(f"<{tag} {name}={a[name]!r}>")
        if tag not in ("meta", "link", "input", "br", "img"):
            self.stack.append("data-i18n" in a)

    def handle_endtag(self, tag) -> None:
        if tag not in ("meta", "link", "input", "br", "img") and self.stack:
            self.stack.pop()

    def handle_data(self, data) -> None:
        words = data.strip()
        ours = self.stack and self.stack[-1]
        brand = words in ("telerehab", "CSV")  # the name, and a file format
        if words and not ours and not brand and re.search(r"[A-Za-z]{2}", words):
            self.found.append(words)


@pytest.mark.parametrize("page", sorted(p.name for p in STATIC.glob("*.html")))
def test_no_page_holds_english_outside_the_catalogue(page) -> None:
    """Every word of the page's HTML is in an element that takes its text
    from the catalogue (data-i18n); no aria-label, title or placeholder of
    its own."""
    parser = _Words()
    parser.feed((STATIC / page).read_text())
    assert not parser.found, parser.found


# string literals of the scripts that are no words for a user: selectors,
# types, developer messages, the server's stand-in instructions (recognised, not shown),
# key names
NOT_WORDS = {"#history tbody", "#access tbody", "#patients tbody", "#sessions tbody", "body *",
             "thead th", "tbody tr", "tbody", "video/webm", "video/mp4", "same-origin",
             "Content-Type", "X-CSRF-Token", "application/json", "use strict",
             "Learned from", "point session", "Enter",
             "(prefers-reduced-motion: reduce)"}  # fmt: skip
LITERAL = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`")


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_no_script_holds_english_outside_the_catalogue(script) -> None:
    """No string in a page script reads as English words (two words in a
    row, or one capitalised word): each comes from the catalogue. Comments,
    console messages and the literals in NOT_WORDS are not for users."""
    code = (STATIC / script).read_text()
    code = re.sub(r"^\s*//.*$|\s//\s.*$", "", code, flags=re.M)  # comments
    code = re.sub(r"console\.\w+\([^;]*\);", "", code)  # for developers
    found = []
    for m in LITERAL.finditer(code):
        text = next(g for g in m.groups() if g is not None)
        text = re.sub(r"\$\{[^}]*\}", "\0", text)  # a template's expressions
        if text in NOT_WORDS or text.startswith("min("):  # a CSS length
            continue
        if re.search(r"[A-Za-z]{2,}[,.:;!?']? [A-Za-z]{2,}", text) or re.fullmatch(
            r"[A-Z][a-z]{2,}[.!?]?", text.strip()
        ):
            found.append(text)
    assert not found, found


def test_the_plural_forms_follow_the_language() -> None:
    """Spanish and English pick a form by the catalogue's own rule, and the
    pages get the same choice through Intl.PluralRules' categories."""
    es, en = i18n.catalogue("es"), i18n.catalogue("en")
    assert es.plural("live.total", 1) == "1 repetición hoy."
    assert es.plural("live.total", 12) == "12 repeticiones hoy."
    assert en.plural("live.total", 0) == "0 repetitions today."
    assert en.plural_index() == {"one": 0, "other": 1}
    assert es.plural_index()["one"] == 0 and es.plural_index()["other"] >= 1


@pytest.mark.parametrize(("header", "language"), [
    ("es-MX,es;q=0.9,en;q=0.8", "es"), ("en-GB,en;q=0.9", "en"), ("fr-FR,fr;q=0.9,es;q=0.5", "es"),
    ("de-DE", "en"), ("", "en"), ("en;q=0.2,es;q=0.8", "es"), ("*", "en"),
])  # fmt: skip
def test_the_login_page_follows_accept_language(header, language) -> None:
    assert i18n.negotiate(header) == language


@pytest.fixture
def clinic(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'i18n.db'}")
    app = create_app(Settings(data_dir=tmp_path), db)
    with db.session() as s:
        t = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", "therapist-pw-1")
        o = accounts.create_user(s, "otto@clinic.org", "Otto", "therapist", "therapist-pw-1")
        p = accounts.create_user(s, "pat@home.org", "Pat", "patient", "patient-pw-1")
        accounts.link(s, t.id, p.id)
        program = {"title": "Knee", "sessions_per_week": 3,
                   "exercises": [{"exercise": "squat", "sets": 1, "reps": 5}]}  # fmt: skip
        prescriptions.create_program(s, p.id, program, t.id)
        tokens = {u.email.split("@")[0]: accounts.issue_token(s, u, "bearer")[0] for u in (t, o, p)}
        ids = {"patient": p.id}
    clients = {}
    for who, token in tokens.items():
        clients[who] = TestClient(app)
        clients[who].headers["Authorization"] = f"Bearer {token}"
    yield clients, ids
    db.close()


def test_each_user_has_a_language_set_by_them_or_their_therapist(clinic) -> None:
    """English by default; the patient chooses Spanish, or their therapist
    does; another therapist may not; a language with no catalogue is a 422
    naming the field. The exercise library then speaks the patient's language."""
    c, ids = clinic
    pat, thea, otto = c["pat"], c["thea"], c["otto"]
    assert pat.get("/api/auth/me").json()["language"] == "en"
    squat = next(e for e in pat.get("/api/exercises").json() if e["id"] == "squat")
    assert squat["name"] == "Squat"
    assert pat.put("/api/auth/language", json={"language": "es"}).json() == {"language": "es"}
    assert pat.get("/api/auth/me").json()["language"] == "es"
    squat = next(e for e in pat.get("/api/exercises").json() if e["id"] == "squat")
    assert squat["name"] == "Sentadilla" and squat["instructions"].startswith("De pie")
    assert squat["faults"]["trunk_lean"].startswith("Mantén el pecho erguido")
    r = pat.put("/api/auth/language", json={"language": "fr"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("language: expected one of en, es")
    url = f"/api/patients/{ids['patient']}/language"
    assert thea.put(url, json={"language": "en"}).status_code == 200
    assert pat.get("/api/auth/me").json()["language"] == "en"
    assert otto.put(url, json={"language": "es"}).status_code == 403
    assert pat.put(url, json={"language": "es"}).status_code == 403  # their own: /api/auth/language
    patients = thea.get("/api/patients").json()
    assert patients[0]["language"] == "en"
    log = pat.get(f"/api/patients/{ids['patient']}/access-log").json()
    assert {r["action"] for r in log} >= {"account.language"}
    set_by_thea = [r for r in log if r["action"] == "account.language"]
    assert [(r["record_kind"], r["language"]) for r in set_by_thea] == [("language", "en")]


def test_the_catalogue_route(clinic) -> None:
    c, _ids = clinic
    anyone = TestClient(c["pat"].app)
    es = anyone.get("/api/i18n", headers={"Accept-Language": "es-ES,es;q=0.9"}).json()
    assert es["language"] == "es" and es["messages"]["login.heading"] == "Iniciar sesión"
    assert es["languages"] == [{"code": "en", "name": "English"}, {"code": "es", "name": "Español"}]
    assert isinstance(es["messages"]["live.total"], list)
    en = anyone.get("/api/i18n?lang=en", headers={"Accept-Language": "es"}).json()
    assert en["language"] == "en"
    assert anyone.get("/api/i18n?lang=xx").status_code == 404


def test_a_learned_exercise_keeps_its_name_and_the_live_session_speaks_spanish() -> None:
    """The catalogue translates the library's exercises; one it does not know
    (a therapist's own) is left as it was given."""
    squat = default_library().get("squat")
    es = i18n.exercise_in(squat, "es")
    assert es.name == "Sentadilla"
    assert es.feedback["rep.tempo"] == "Ve más despacio y controla el movimiento."

    mine = dataclasses.replace(squat, id="chair_squat", name="Chair squat")
    assert i18n.exercise_in(mine, "es").name == "Chair squat"


def test_migration_0006_gives_every_user_english(tmp_path) -> None:
    """Users stored before 0006 get English; a downgrade takes the column
    away and loses nothing else."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from telerehab.server.db import MIGRATIONS

    old = open_database(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    upgrade(old.engine, "0005")
    with old.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email, name, role, password_hash, active, is_demo, "
                          "created_at) VALUES ('a@b.org', 'A', 'patient', 'x', 1, 0, "
                          "'2026-01-01')"))  # fmt: skip
    upgrade(old.engine)
    with old.engine.begin() as conn:
        assert conn.execute(text("SELECT language FROM users")).scalar_one() == "en"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with old.engine.begin() as conn:
        assert conn.execute(text("SELECT email FROM users")).scalar_one() == "a@b.org"
        cols = [r[1] for r in conn.execute(text("PRAGMA table_info(users)"))]
        assert "language" not in cols
    old.close()
