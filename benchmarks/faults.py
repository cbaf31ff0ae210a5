"""Faults mid-set, with real server processes, a real aiortc patient streaming
a shared clip and a real database: is any completed repetition lost, and how
long until the service is whole again?

    python benchmarks/faults.py [--clip FILE] [--out benchmarks/out/faults.json]
                                [--rows kill_9,sigterm,database_down,redis_cut,owner_killed]

Rows:
- kill -9 mid-set, then restart: recovery = from the kill until the restarted
  process answers and shows the session interrupted;
- SIGTERM mid-set with a therapist's WebSocket open: recovery = from the
  signal until the process has exited (TELEREHAB_SHUTDOWN_TIMEOUT_S bounds it);
- PostgreSQL refused from the first frame through the clip, then back:
  recovery = from its return until every waiting write is stored;
- Redis cut (its TCP link) at the first repetition through the rest of the
  clip, two processes, the session on A: recovery = from its return until a
  control request through B (status) is answered by A again; the patient
  ends through B;
- the process holding the session (A) killed -9 at the first repetition, the
  patient's control requests through B: "503 in" is how long B took to
  answer the first one; recovery = from the kill until the patient's end
  through B succeeds (once A's heartbeat has expired, B records the session
  as interrupted), no restart.

"completed before" counts the repetitions the patient was told of before the
fault (the database and Redis rows: all of them, made while it was down);
"stored after" those found in the database afterwards; "lost" those told but
not stored.
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
from tests.test_live import (  # noqa: E402
    _connect,
    _feed,
    _login,
    _patient_streaming,
    _ready,
    _seed,
    _start,
    _until,
)

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


REDIS = os.environ.get("TELEREHAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _two_processes(folder: Path, clip: Path, redis_url: str, fault, **env: str):
    """Processes A and B on one database and Redis; Pat starts a session on A
    and streams `clip` to it; at the first repetition `await fault(sid, a,
    base_a, base_b, patient client on B, player) -> (recovery s, note)`.
    (told, stored, recovery s, note, status)."""
    import uuid

    import httpx

    base_env, url = _env(folder)
    prefix = f"telerehab-bench-{uuid.uuid4().hex[:8]}"
    full = {**base_env, "TELEREHAB_REDIS_URL": redis_url, "TELEREHAB_REDIS_PREFIX": prefix,
            **{f"TELEREHAB_{k.upper()}": v for k, v in env.items()}}  # fmt: skip

    async def run(a, base_a: str, base_b: str):
        async with httpx.AsyncClient(base_url=base_a, timeout=30) as on_a, \
                httpx.AsyncClient(base_url=base_b, timeout=30) as on_b:  # fmt: skip
            await _login(on_a, "pat@home.org", "patient-pw-1")
            await _login(on_b, "pat@home.org", "patient-pw-1")
            sid = await _start(on_a, {})
            await _ready(on_a, sid)
            messages: list[dict] = []
            pc, player = await _connect(on_a, sid, clip, messages)

            async def first_rep() -> bool:
                return any(m["type"] == "rep_completed" for m in messages)

            await _until(first_rep, timeout=60, what="the first repetition")
            recovery, note = await fault(sid, a, on_a, on_b, player)
            await pc.close()
            told = [m["rep"]["t_end_s"] for m in messages if m["type"] == "rep_completed"]
            return sid, told, recovery, note

    try:
        with served(full) as (a, base_a, _), served(full) as (_b, base_b, _):
            sid, told, recovery, note = asyncio.run(run(a, base_a, base_b))
    finally:
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
    status, stored = _stored(url, sid)
    return told, stored, recovery, f"{status}{note}"


def redis_cut(folder: Path, clip: Path) -> dict:
    from tests.faulty_link import FaultyLink

    link = FaultyLink(("127.0.0.1", 6379))

    async def fault(sid, _a, on_a, on_b, player) -> tuple[float, str]:
        link.cut()

        async def played() -> bool:
            return player.video.readyState == "ended"

        await _until(played, timeout=60, what="the clip to play")
        during = (await on_b.get(f"/api/live/sessions/{sid}")).status_code
        link.restore()
        back = time.monotonic()

        async def through_b() -> bool:
            return (await on_b.get(f"/api/live/sessions/{sid}")).status_code == 200

        await _until(through_b, timeout=60, what="B to reach A again")
        recovered = time.monotonic() - back
        end = await on_b.post(f"/api/live/sessions/{sid}/end", json={})
        return recovered, f"/B {during} while cut, end via B {end.status_code}"

    try:
        told, stored, recovery, note = _two_processes(
            folder, clip, f"redis://127.0.0.1:{link.port}/0", fault,
            redis_ttl_s="3", redis_timeout_s="0.5",
        )  # fmt: skip
    finally:
        link.close()
    return _row("Redis cut at the first rep, back after the clip", told, set(stored), recovery,
                note)  # fmt: skip


def owner_killed(folder: Path, clip: Path) -> dict:
    async def fault(sid, a, _on_a, on_b, _player) -> tuple[float, str]:
        os.kill(a.pid, signal.SIGKILL)
        killed = time.monotonic()
        first = await on_b.post(f"/api/live/sessions/{sid}/pause")
        answer_s = time.monotonic() - killed
        while (end := await on_b.post(f"/api/live/sessions/{sid}/end", json={})).status_code != 200:
            if time.monotonic() - killed > 120:
                raise AssertionError(f"the patient could not end the session: {end.text}")
            await asyncio.sleep(0.2)
        return time.monotonic() - killed, f"/B {first.status_code} in {answer_s:.2f} s"

    told, stored, recovery, note = _two_processes(folder, clip, REDIS, fault, redis_ttl_s="5")
    return _row("owner killed -9 at the first rep, control via B", told, set(stored), recovery,
                note)  # fmt: skip


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
    rows_by_name = {f.__name__: f for f in (kill_9, sigterm, database_down, redis_cut,
                                            owner_killed)}  # fmt: skip
    parser.add_argument("--rows", default=",".join(rows_by_name),
                        help="comma-separated rows to run (default: all)")  # fmt: skip
    args = parser.parse_args(argv)
    rows = []
    for fault in (rows_by_name[name] for name in args.rows.split(",")):
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
