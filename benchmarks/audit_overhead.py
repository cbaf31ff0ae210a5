"""What auditing costs a request: the same record reads with the audit trail
written (as served) and with `audit.record` replaced by a no-op.

    python benchmarks/audit_overhead.py [--requests 300] [--postgres URL] [--out FILE.json]

Requests go through the whole app in-process (Starlette's TestClient: routing,
login lookup, the read, the JSON), on SQLite (a file in a temporary folder,
WAL) and, with --postgres, on an empty schema of that server. Audited and
unaudited requests alternate in blocks of 20 so that drift of a busy machine
falls on both alike. It prints the median and p95 per request and the
difference, and writes them as JSON. Not a test: the numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
logger = logging.getLogger("audit_overhead")
PROGRAM = {
    "title": "Knee rehab",
    "sessions_per_week": 3,
    "exercises": [{"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90}],
}
BLOCK = 20


def _world(url: str):
    from fastapi.testclient import TestClient

    from telerehab.rehab_programs.events import RepResult
    from telerehab.server import accounts, prescriptions, records
    from telerehab.server.app import create_app
    from telerehab.server.db import open_database
    from telerehab.settings import Settings

    db = open_database(url)
    app = create_app(Settings(data_dir=Path(tempfile.mkdtemp())), db)
    with db.session() as s:
        t = accounts.create_user(s, "thea@clinic.org", "Thea", "therapist", "therapist-pw-1")
        p = accounts.create_user(s, "pat@home.org", "Pat", "patient", "patient-pw-1")
        accounts.link(s, t.id, p.id)
        version = prescriptions.create_program(s, p.id, PROGRAM, t.id)
        x = records.start_session(s, p.id, program_version_id=version.id, pain_before=3)
        for i in range(1, 9):
            rep = RepResult(
                index=i,
                side="left",
                t_start_s=3.0 * i,
                t_peak_s=3.0 * i + 1,
                t_end_s=3.0 * i + 2.5,
                frame_peak=30 * i,
                rom_min_deg=5,
                rom_max_deg=90,
                excursion_deg=85,
                duration_s=2.5,
                up_s=1,
                hold_s=0.2,
                down_s=1.3,
                quality=90,
                faults=(),
            )
            records.add_repetition(s, x, "squat", rep)
        records.end_session(s, x, "complete", pain_after=2)
        token = accounts.issue_token(s, t, "bearer")[0]
        ids = {"patient": p.id, "session": x.id}
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {token}"
    return db, client, ids


def _measure(client, url: str, n: int) -> dict[str, list[float]]:
    from telerehab.server import audit

    real = audit.record
    times: dict[str, list[float]] = {"audited": [], "not audited": []}
    for _warm in range(10):
        assert client.get(url).status_code == 200
    try:
        for block in range(2 * n // BLOCK):
            mode = "audited" if block % 2 == 0 else "not audited"
            audit.record = real if mode == "audited" else (lambda *_a, **_k: None)
            for _ in range(BLOCK):
                t0 = time.perf_counter()
                r = client.get(url)
                times[mode].append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
    finally:
        audit.record = real
    return times


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="per endpoint and mode")
    ap.add_argument("--postgres", default="", help="a PostgreSQL URL (an empty schema is made)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "audit_overhead.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("telerehab").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

    databases = [("sqlite", f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}", None)]
    if args.postgres:
        from sqlalchemy import create_engine, text

        schema = f"telerehab_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.postgres else "?"
        databases.append(
            ("postgresql", f"{args.postgres}{sep}options=-csearch_path%3D{schema}", (admin, schema))
        )
    rows = []
    try:
        for name, url, _cleanup in databases:
            db, client, ids = _world(url)
            for label, path in (
                ("session with 8 repetitions", f"/api/sessions/{ids['session']}"),
                ("trends", f"/api/patients/{ids['patient']}/trends"),
            ):
                times = _measure(client, path, args.requests)
                on, off = times["audited"], times["not audited"]
                rows.append(
                    {
                        "database": name,
                        "request": f"GET {label}",
                        "requests": len(on),
                        "median_ms_audited": round(statistics.median(on), 3),
                        "median_ms_not_audited": round(statistics.median(off), 3),
                        "p95_ms_audited": round(_p95(on), 3),
                        "p95_ms_not_audited": round(_p95(off), 3),
                    }
                )
            db.close()
    finally:
        for _name, _url, cleanup in databases:
            if cleanup:
                admin, schema = cleanup
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

    logger.info(
        "| database | request | median audited ms | median not audited ms | difference "
        "| p95 audited ms | p95 not audited ms |"
    )
    logger.info("|---|---|---|---|---|---|---|")
    for r in rows:
        diff = r["median_ms_audited"] - r["median_ms_not_audited"]
        r["median_difference_ms"] = round(diff, 3)
        r["median_difference_pct"] = round(100 * diff / r["median_ms_not_audited"], 1)
        logger.info(
            f"| {r['database']} | {r['request']} | {r['median_ms_audited']:.2f} | "
            f"{r['median_ms_not_audited']:.2f} | {diff:+.2f} ms "
            f"({r['median_difference_pct']:+.1f}%) | {r['p95_ms_audited']:.2f} | "
            f"{r['p95_ms_not_audited']:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2))
    logger.info("written %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
