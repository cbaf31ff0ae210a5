"""Faults mid-set, with real server processes, a real aiortc patient streaming
a shared clip and a real database: is any completed repetition lost, and how
long until the service is whole again?

    python benchmarks/faults.py [--clip FILE] [--out benchmarks/out/faults.json]

Rows:
- kill -9 mid-set, then restart: recovery = from the kill until the restarted
  process answers and shows the session interrupted;
- SIGTERM mid-set with a therapist's WebSocket open: recovery = from the
  signal until the process has exited (TELEREHAB_SHUTDOWN_TIMEOUT_S bounds it);
- PostgreSQL refused from the first frame through the clip, then back:
  recovery = from its return until every waiting write is stored.

"completed before" counts the repetitions the patient was told of before the
fault (the database row: all of them, made while it was down); "stored after"
those found in the database afterwards; "lost" those told but not stored.
Goal: 0 lost in every row. The setup is the tests' (`tests/test_faults.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' helpers

from tests.test_faults import _exit_time, _first_rep_then, _login_sync, served  # noqa: E402
from tests.test_live import _feed, _login, _patient_streaming, _seed, _until  # noqa: E402

DEFAULT_CLIP = REPO.parent / "shared" / "data" / "clips" / "squat_side_medflex.mp4"
POSTGRES = os.environ.get(
    "TELEREHAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _stored(url: str, sid: int) -> tuple[str, set[float]]:
    from telerehab.server.db import open_database
    from telerehab.server.tables import ExerciseSession

    db = open_database(url)
    with db.session() as s:
        x = s.get(ExerciseSession, sid)
        found = (x.status, {round(r.t_end_s, 4) for r in x.repetitions})
    db.close()
    return found


def _env(folder: Path) -> tuple[dict, str]:
    from telerehab.server.db import open_database

    url = f"sqlite:///{folder / 'clinic.db'}"
    db = open_database(url)
    _seed(db)
    db.close()
    return {**os.environ, "TELEREHAB_DATABASE_URL": url, "TELEREHAB_DATA_DIR": str(folder)}, url


def kill_9(folder: Path, clip: Path) -> dict:
    import httpx

    env, url = _env(folder)
    with served(env) as (proc, base, _):
        killed: list[float] = []

        async def kill(_sid: int) -> None:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(time.monotonic())

        sid, told = asyncio.run(_first_rep_then(base, clip, kill))
        proc.wait(10)
    with served(env) as (_proc, base, _):
        with httpx.Client(base_url=base, timeout=30) as c:
            _login_sync(c, "pat@home.org", "patient-pw-1")
            state = c.get(f"/api/live/sessions/{sid}").json()["state"]
        recovered = time.monotonic() - killed[0]
    status, stored = _stored(url, sid)
    return _row("kill -9 mid-set, restart", told, stored, recovered, f"{status}/{state}")


def sigterm(folder: Path, clip: Path) -> dict:
    import httpx

    env, url = _env(folder)
    took: list[float] = []
    with served(env) as (proc, base, _):

        async def stop(sid: int) -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as t:
                token = await _login(t, "thea@clinic.org", "therapist-pw-1")
            async with _feed(base.removeprefix("http://"), sid, token) as ws:
                await ws.recv()  # the therapist follows the session
                sent = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                exited = await asyncio.to_thread(_exit_time, proc, 120)
                took.append((exited or float("nan")) - sent)

        sid, told = asyncio.run(_first_rep_then(base, clip, stop))
    status, stored = _stored(url, sid)
    return _row("SIGTERM mid-set, therapist watching", told, stored, took[0], status)


def database_down(folder: Path, clip: Path) -> dict:
    import uuid

    import httpx
    from sqlalchemy import create_engine, make_url, text

    from telerehab.server.app import create_app
    from telerehab.server.db import open_database
    from telerehab.settings import Settings
    from tests.conftest import running
    from tests.faulty_link import FaultyLink

    pg = make_url(POSTGRES)
    schema = f"telerehab_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    link = FaultyLink((pg.host or "127.0.0.1", pg.port or 5432))
    url = pg.set(host="127.0.0.1", port=link.port, query={"options": f"-csearch_path={schema}"})
    url = url.render_as_string(hide_password=False)
    db = open_database(url, connect_timeout_s=2)
    _seed(db)
    app = create_app(Settings(data_dir=folder, database_connect_timeout_s=2), db)

    async def run(base: str) -> tuple[int, list[float], float]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            sid, pc, player, messages = await _patient_streaming(c, clip)

            async def seen(kind: str) -> bool:
                return any(m["type"] == kind for m in messages)

            async def played() -> bool:
                return player.video.readyState == "ended"

            await _until(lambda: seen("pose"), what="the first frame analysed")
            link.cut()
            await _until(played, timeout=60, what="the clip to play")
            await _until(lambda: seen("rep_completed"), what="a repetition")
            link.restore()
            back = time.monotonic()

            async def stored() -> bool:
                r = await c.get(f"/api/live/sessions/{sid}")
                return r.status_code == 200 and r.json()["writes_waiting"] == 0

            await _until(stored, timeout=60, what="the waiting writes to be stored")
            recovered = time.monotonic() - back
            await c.post(f"/api/live/sessions/{sid}/end", json={})
            await pc.close()
            told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
            return sid, told, recovered

    try:
        with running(app) as port:
            sid, told, recovered = asyncio.run(run(f"http://127.0.0.1:{port}"))
        db.close()
        status, stored = _stored(url, sid)
    finally:
        link.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return _row("PostgreSQL refused through the set, then back", told, stored, recovered, status)


def _row(fault: str, told: list[float], stored: set[float], recovery_s: float, status: str) -> dict:
    return {
        "fault": fault,
        "completed_before": len(told),
        "stored_after": len(stored),
        "lost": len(set(told) - stored),
        "recovery_s": round(recovery_s, 2),
        "session": status,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "faults.json")
    args = parser.parse_args(argv)
    rows = []
    for fault in (kill_9, sigterm, database_down):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(fault(Path(tmp), args.clip))
    print(f"{'fault':48s} {'before':>7s} {'stored':>7s} {'lost':>5s} {'recovery s':>11s}  session")
    for r in rows:
        print(f"{r['fault']:48s} {r['completed_before']:7d} {r['stored_after']:7d} "
              f"{r['lost']:5d} {r['recovery_s']:11.2f}  {r['session']}")  # fmt: skip
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "clip": args.clip.name,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written    {args.out}")
    return 0 if all(r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
