"""Server processes: uvicorn serving the app, with an orderly, bounded stop;
one process (`serve`), or several on one port (`serve_workers`).

Left to itself, uvicorn on SIGTERM stops listening, then waits for every open
connection (a therapist's WebSocket may stay open for hours) before it runs
the app's shutdown, where live sessions are recorded as interrupted. Here the
live sessions are closed first (recorded as interrupted, peers and workers
stopped, their WebSockets sent the summary), then open connections get what
is left of `shutdown_timeout_s`, at least `MIN_GRACE_S`, and are cancelled.

Several processes: the parent (which has run the migrations) binds the port
and starts `workers` processes (multiprocessing, spawn), each building its
own app from the settings it reads from the environment it inherits, on the
database the parent migrated (it checks the revision, never migrates), and
serving the one socket; the kernel shares connections among them. A worker
that dies is replaced; one whose parent died (kill -9) stops by itself.
SIGTERM or Ctrl+C to the parent is passed to every worker, which stops as
one process does; one still running `STOP_SLACK_S` after its own bound is
killed (the next start records its sessions as interrupted). uvicorn's own
`--workers` supervisor is not used: its workers are plain uvicorn servers
(not this bounded stop) and it waits for them without a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from telerehab.settings import Settings, get_settings

logger = logging.getLogger(__name__)
MIN_GRACE_S = 1.0
STOP_SLACK_S = 5.0  # beyond a worker's own bound before the parent kills it
READY_TIMEOUT_S = 120.0  # for every worker to listen
STARTUP_FAILURE = 3  # a worker's exit status when it could not start (uvicorn's too)
ORPHAN_CHECK_S = 0.5  # how often a worker checks that its parent is alive


class Server(uvicorn.Server):
    """uvicorn's server, saying where it listens and stopping within a bound."""

    def __init__(self, config: uvicorn.Config, bound_s: float,
                 on_listen: Callable[[str], None] | None = None) -> None:  # fmt: skip
        super().__init__(config)
        self.bound_s = bound_s
        self.on_listen = on_listen

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        for server in self.servers if self.on_listen else ():
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self.on_listen(f"http://{host}:{port}/")

    async def shutdown(self, sockets=None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bound_s
        app: FastAPI = self.config.app
        try:
            await asyncio.wait_for(app.state.live.close_all(), self.bound_s)
        except TimeoutError:
            logger.error("live sessions not all closed within %g s; the next start "
                         "records what is left as interrupted", self.bound_s)  # fmt: skip
        self.config.timeout_graceful_shutdown = max(MIN_GRACE_S, deadline - loop.time())
        await super().shutdown(sockets)


def _config(app: FastAPI, settings: Settings, **where) -> uvicorn.Config:
    # A WebSocket client sends one small message (its login); the body limit bounds it too.
    return uvicorn.Config(
        app, log_level="warning", ws_max_size=settings.max_body_bytes,
        timeout_graceful_shutdown=settings.shutdown_timeout_s, **where,
    )  # fmt: skip


def serve(app: FastAPI, settings: Settings, host: str, port: int,
          on_listen: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Serve `app` until SIGTERM or Ctrl+C; `on_listen(url)` once it listens."""
    config = _config(app, settings, host=host, port=port)
    Server(config, settings.shutdown_timeout_s, on_listen).run()


def serve_workers(settings: Settings, host: str, port: int, workers: int,
                  on_listen: Callable[[str, list[int]], None] | None = None) -> int:  # fmt: skip
    """Serve with `workers` processes on one port (see the module's docstring)
    until SIGTERM or Ctrl+C; `on_listen(url, worker pids)` once every one
    listens. The exit status: 0, or STARTUP_FAILURE if a worker could not start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Queue()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}  # fmt: skip

    def start() -> multiprocessing.process.BaseProcess:
        proc = spawn.Process(target=_worker, args=(sock, ready), name="telerehab-worker")
        proc.start()
        return proc

    procs = [start() for _ in range(workers)]
    try:
        listening: set[int] = set()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(listening) < workers and not stop.is_set():
            failed = [p for p in procs if p.exitcode is not None]
            if failed or time.monotonic() > deadline:
                logger.error("a server process did not start (exit status %s)",
                             failed[0].exitcode if failed else "none: still starting")  # fmt: skip
                return STARTUP_FAILURE
            with contextlib.suppress(queue.Empty):
                listening.add(ready.get(timeout=0.2))
        if on_listen is not None and not stop.is_set():
            name, bound = sock.getsockname()[:2]
            on_listen(f"http://{name}:{bound}/", [p.pid for p in procs])
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                if proc.exitcode is None:
                    continue
                if proc.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                    logger.error("server process %s could not start: stopping", proc.pid)
                    return STARTUP_FAILURE
                logger.warning("server process %s exited (%s): replaced", proc.pid, proc.exitcode)
                procs[i] = start()
    finally:
        _stop_all(procs, settings.shutdown_timeout_s + MIN_GRACE_S + STOP_SLACK_S)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        ready.close()
    return 0


def _stop_all(procs: list, bound_s: float) -> None:
    """SIGTERM to every worker; SIGKILL to any still running after `bound_s`."""
    for proc in procs:
        if proc.exitcode is None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + bound_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.exitcode is None:
            logger.error("server process %s still running %g s after SIGTERM: killed",
                         proc.pid, bound_s)  # fmt: skip
            proc.kill()
            proc.join(5)


def _stop_when_orphaned(parent: int) -> None:
    """A worker whose parent died (kill -9) stops as on SIGTERM, within its
    bound: it would otherwise hold the port, and its sessions, forever."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    logger.warning("the parent server process %s is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(sock: socket.socket, ready) -> None:
    """One worker process: its own app on the database the parent migrated,
    serving the parent's socket; puts its pid in `ready` once it listens."""
    import sys

    from telerehab.errors import TelerehabError
    from telerehab.server.app import create_app
    from telerehab.server.db import open_configured, require_head

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    settings = get_settings()
    try:
        db = open_configured(settings, migrate=False)
        require_head(db)
    except TelerehabError as exc:
        logger.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    try:
        app = create_app(settings, db)
        config = _config(app, settings)
        server = Server(config, settings.shutdown_timeout_s, lambda _url: ready.put(os.getpid()))
        server.run(sockets=[sock])
        if not server.started:
            sys.exit(STARTUP_FAILURE)
    finally:
        db.close()
