"""Writes of live sessions that must survive a database outage.

A repetition is written the moment it completes, by the session's worker, so
a patient who disconnects (or a server killed the next instant) loses
nothing. When the database cannot be used then (refused, timed out, locked:
`db.unavailable`), the write waits in a bounded, process-wide queue that one
thread retries, oldest first, until the database is back. While anything
waits, new writes queue behind it, so a session's repetitions are stored in
the order they were made. A write the queue has no room for, or one the
database refuses for good (a wrong statement), is logged and counted as lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from .db import Database, unavailable

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
Outcome = Literal["stored", "queued", "lost"]


@dataclass(frozen=True, slots=True)
class Write:
    session_id: int
    what: str  # e.g. "repetition 3", for the log
    apply: Callable[[Session], None]


class StorageSink:
    """One per server process; `store` is called from session workers."""

    def __init__(self, db: Database, max_pending: int) -> None:
        self.db = db
        self.max_pending = max_pending
        self._pending: deque[Write] = deque()
        self._per_session: Counter[int] = Counter()
        self._cond = threading.Condition()
        self._closed = False
        self.retries = 0  # attempts that found the database unavailable
        self.lost: Counter[int] = Counter()  # per session
        self._thread = threading.Thread(target=self._retry, name="storage-sink", daemon=True)
        self._thread.start()

    def store(self, session_id: int, what: str, apply: Callable[[Session], None]) -> Outcome:
        """Write now; if the database is unavailable, or earlier writes still
        wait, queue it to be retried."""
        write = Write(session_id, what, apply)
        with self._cond:
            waiting = bool(self._pending)
        if not waiting:
            try:
                self._write(write)
                return "stored"
            except Exception as exc:
                if not unavailable(exc):
                    return self._lose(write, exc)
                logger.warning("session %d: %s waits for the database (%s)",
                               session_id, what, type(exc).__name__)  # fmt: skip
        with self._cond:
            if len(self._pending) >= self.max_pending:
                return self._lose(write, "the queue of writes waiting for the database is full")
            self._pending.append(write)
            self._per_session[session_id] += 1
            self._cond.notify()
        return "queued"

    def pending(self, session_id: int | None = None) -> int:
        """Writes waiting for the database (of one session, or all)."""
        with self._cond:
            return len(self._pending) if session_id is None else self._per_session[session_id]

    def drain(self, timeout_s: float) -> bool:
        """Wait until nothing waits (True) or `timeout_s` passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def close(self, timeout_s: float) -> None:
        """Stop after trying `timeout_s` to store what waits; log what could not be."""
        self.drain(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            left = list(self._pending)
        for write in left:
            logger.error("session %d: %s not stored: the database stayed unavailable until "
                         "the server stopped", write.session_id, write.what)  # fmt: skip

    def _write(self, write: Write) -> None:
        with self.db.session() as s:
            write.apply(s)

    def _lose(self, write: Write, why: object) -> Outcome:
        self.lost[write.session_id] += 1
        logger.error("session %d: %s lost: %s", write.session_id, write.what, why)
        return "lost"

    def _retry(self) -> None:
        wait_s = RETRY_FIRST_S
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                write = self._pending[0]  # removed only once stored: order is kept
            try:
                self._write(write)
            except Exception as exc:
                if unavailable(exc):
                    self.retries += 1
                    time.sleep(wait_s)
                    wait_s = min(wait_s * 2, RETRY_MAX_S)
                    continue
                self._lose(write, exc)
            else:
                wait_s = RETRY_FIRST_S
                logger.info("session %d: %s stored after waiting", write.session_id, write.what)
            with self._cond:
                self._pending.popleft()
                self._per_session[write.session_id] -= 1
                self._cond.notify_all()
