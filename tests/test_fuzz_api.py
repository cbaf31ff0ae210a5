"""schemathesis against the app's own OpenAPI schema, logged in as a patient
and as a therapist: no server error, no status the schema does not declare, no
response that breaks its schema. Bounded in time (FUZZ_EXAMPLES per operation
and role); `FUZZ_EXAMPLES=500 pytest tests/test_fuzz_api.py` for a longer run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from telerehab.server import accounts, prescriptions, records
from telerehab.server.app import create_app
from telerehab.server.db import open_database
from telerehab.settings import Settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# A demonstration video (POST /api/exercises/learn) is sent as raw bytes.
for _video in ("video/mp4", "video/webm", "video/quicktime", "video/x-matroska", "video/x-msvideo"):
    schemathesis.serializer.alias(_video, "application/octet-stream")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations that would end the login the fuzzer runs with, or are public and
# slow by design (each login hashes a password): probed by their own tests.
LEFT_OUT = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password")}
PASSWORD = "correct-horse-1"
PROGRAM = {
    "title": "Knee rehab",
    "sessions_per_week": 3,
    "exercises": [{"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90}],
}
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "out" / "fuzz_api.json"


def _no_model(_variant: str, _people: int):
    def build():
        raise RuntimeError("no pose model in the fuzz test")

    return build


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    # FUZZ_DATABASE_URL: an empty database (e.g. a PostgreSQL schema) for a longer run
    db = open_database(os.environ.get("FUZZ_DATABASE_URL") or f"sqlite:///{folder / 'fuzz.db'}")
    app = create_app(Settings(data_dir=folder), db)
    app.state.estimator_factory = _no_model
    tokens = {}
    with db.session() as s:
        t = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", PASSWORD)
        p = accounts.create_user(s, "pat@home.org", "Pat", "patient", PASSWORD)
        accounts.link(s, t.id, p.id)
        version = prescriptions.create_program(s, p.id, PROGRAM, t.id)
        x = records.start_session(s, p.id, program_version_id=version.id, pain_before=3)
        records.end_session(s, x, "complete", pain_after=2)
        for user in (t, p):
            tokens[user.role] = accounts.issue_token(s, user, "bearer")[0]
    yield app, tokens
    db.close()


def _fuzz(
    op, role: str, mode, token: str, cases: Counter, statuses: Counter, failures: dict
) -> None:
    """EXAMPLES cases of one operation as `role`, valid (positive) or invalid
    (negative) input; a failed check is kept and the run goes on (one line per
    operation, role and mode)."""

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case) -> None:
        cases[f"{role} {mode.value}"] += 1
        try:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
            )
            statuses[response.status_code] += 1
        except (Exception, BaseExceptionGroup) as exc:  # a failed check
            first = " / ".join(str(exc).strip().splitlines()[:4])
            failures.setdefault(f"{role} {mode.value} {op.method.upper()} {op.path}", first)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without input)
        assert mode == GenerationMode.NEGATIVE


def test_the_api_survives_schemathesis(fuzzed) -> None:
    app, tokens = fuzzed
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: dict[str, str] = {}
    started = time.monotonic()
    logging.getLogger("telerehab").setLevel(logging.CRITICAL)  # refused logins warn
    for role, token in sorted(tokens.items()):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for op in operations:
                if (op.method.upper(), op.path) not in LEFT_OUT:
                    _fuzz(op, role, mode, token, cases, statuses, failures)
    seconds = time.monotonic() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "examples_per_operation": EXAMPLES,
                "operations": len(operations),
                "cases": dict(cases),
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "failures": failures,
                "seconds": round(seconds, 1),
            },
            indent=2,
        )
    )
    assert not failures, json.dumps(failures, indent=2)
    assert sum(cases.values()) >= 2 * len(operations) * EXAMPLES  # it really ran
