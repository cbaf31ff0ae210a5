"""One BlazePose backend shared by many live sessions, their frames run in batches.

Each live session keeps its own worker thread and latest-frame-wins slot (see
`telerehab.server.live`); its backend is a `SessionBackend` from a
`BatchScheduler`. A session's `detect` hands its frame to the scheduler and
waits. The scheduler's one thread takes the frames waiting, waits at most
`max_wait_s` for the other active sessions' next frames (never longer, so a
lone session is not slowed), and runs them through `BlazePoseBackend.detect_many`:
one call per network for all sessions, each session tracked apart. Each session
has at most one frame waiting, so the batch holds the latest frame of every
active session. On a GPU (ONNX Runtime, CUDA) one batched call costs about as
much as one image; on a CPU it at least stops N sessions' threads from fighting
over the cores.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from concurrent.futures import Future

import numpy as np

from telerehab.errors import PoseError

from .backend import Detections
from .blazepose import BlazePoseBackend

logger = logging.getLogger(__name__)


class BatchScheduler:
    """Batches the frames of the sessions it serves; see the module docstring.

    max_wait_s: longest a frame waits for other sessions' frames.
    max_batch: most frames per batch.
    """

    def __init__(
        self, backend: BlazePoseBackend, max_wait_s: float = 0.005, max_batch: int = 32
    ) -> None:
        self.backend = backend
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self._pending: dict[int, tuple[np.ndarray, float, Future]] = {}
        self._active: set[int] = set()
        self._cond = threading.Condition()
        self._keys = itertools.count()
        self._closed = False
        self.batches = 0
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name="pose-batches", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def variant(self) -> str:
        return self.backend.variant

    def session(self) -> SessionBackend:
        """A backend for one more session (a `PoseBackend`)."""
        with self._cond:
            if self._closed:
                raise PoseError("the pose batch scheduler is closed")
            key = next(self._keys)
            self._active.add(key)
        return SessionBackend(self, key)

    def submit(self, key: int, rgb: np.ndarray, t_s: float) -> Future:
        """Queue one frame of session `key`; the future gets its Detections."""
        done: Future = Future()
        with self._cond:
            if self._closed:
                raise PoseError("the pose batch scheduler is closed")
            if key in self._pending:
                raise PoseError(f"session {key}: a frame is already waiting")
            self._pending[key] = (rgb, t_s, done)
            self._cond.notify_all()
        return done

    def leave(self, key: int) -> None:
        """Session `key` ended: forget its tracking."""
        with self._cond:
            self._active.discard(key)
            self._cond.notify_all()
        self.backend.forget(key)

    def close(self) -> None:
        """Stop the thread (waiting frames fail) and close the backend."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self.backend.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    for _, _, done in self._pending.values():
                        done.set_exception(PoseError("the pose batch scheduler is closed"))
                    self._pending.clear()
                    return
                deadline = time.monotonic() + self.max_wait_s
                while len(self._pending) < min(len(self._active), self.max_batch):
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._cond.wait(left)
                keys = list(self._pending)[: self.max_batch]
                batch = [(k, *self._pending.pop(k)) for k in keys]
            try:
                found = self.backend.detect_many([(k, rgb, t_s) for k, rgb, t_s, _ in batch])
            except Exception as exc:  # handed to every waiting session, which logs it
                for *_, done in batch:
                    done.set_exception(exc)
                continue
            self.batches += 1
            self.frames += len(batch)
            for (*_, done), result in zip(batch, found, strict=True):
                done.set_result(result)


class SessionBackend:
    """One session's view of a `BatchScheduler`: the `PoseBackend` protocol."""

    def __init__(self, scheduler: BatchScheduler, key: int) -> None:
        self._scheduler = scheduler
        self._key = key
        self.name = scheduler.name
        self.variant = scheduler.variant

    def detect(self, rgb: np.ndarray, t_s: float) -> Detections:
        """All people in `rgb` at `t_s`, run in the next batch."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise PoseError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        return self._scheduler.submit(self._key, rgb, t_s).result()

    def close(self) -> None:
        """The session ended (the shared backend stays open)."""
        self._scheduler.leave(self._key)
