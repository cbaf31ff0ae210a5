"""A session's movement kept as a skeleton, never as video: the image
landmarks of each exercise, thinned and compressed, for the therapist's replay.

What is kept, per session and exercise: at most `MAX_FPS` frames a second and
`MAX_FRAMES` frames (30 minutes at 15 fps), each frame's time (seconds, as the
repetitions' times) and the 33 landmarks' x, y (normalised to the picture) and
visibility, as float16 (a 640-pixel picture to within 0.3 px), compressed with
zlib: about 110 kB a minute, 3.3 MB at most (measured on two shared clips;
coding each frame as its difference from the last saved a tenth more, not
worth a second format). Nothing of the picture itself. The patient may
decline it for a session (`movement_consent`); nothing is kept then.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from telerehab.errors import StorageError

MAGIC = b"TRMV"
FORMAT = 1
MAX_FPS = 15.0
MAX_FRAMES = int(MAX_FPS * 60 * 30)
_HEADER = struct.Struct("<4sBI")  # magic, format, frames


class MovementRecorder:
    """Collects one exercise's frames as they come (live), thinned to
    `MAX_FPS` and bounded by `MAX_FRAMES` (later frames are counted in
    `dropped`, never kept)."""

    def __init__(self) -> None:
        self.t_s: list[float] = []
        self.frames: list[np.ndarray] = []
        self.dropped = 0

    def add(self, t_s: float, landmarks: np.ndarray | None) -> None:
        """A frame at `t_s`: (33, 3+) image landmarks (x, y, ..., visibility
        last), or None when no one was seen (kept as NaN: the replay shows
        the gap)."""
        if self.t_s and t_s - self.t_s[-1] < 1.0 / MAX_FPS - 1e-6:
            return
        if len(self.t_s) >= MAX_FRAMES:
            self.dropped += 1
            return
        if landmarks is None:
            frame = np.full((33, 3), np.nan, np.float32)
        else:
            frame = np.asarray(landmarks, np.float32)[:, [0, 1, -1]]
        self.frames.append(frame)  # before its time: `encode` reads the times first
        self.t_s.append(float(t_s))

    def __len__(self) -> int:
        return len(self.t_s)

    def encode(self) -> bytes:
        """What was kept so far (safe while the worker adds frames)."""
        n = len(self.t_s)
        return encode(np.asarray(self.t_s[:n]), np.asarray(self.frames[:n]).reshape(-1, 33, 3))


def of_recording(
    t_s: np.ndarray, image: np.ndarray, start_s: float = -np.inf, end_s: float = np.inf
) -> bytes:
    """A recording's (T,) times and (T, 33, 4) image landmarks
    (`PoseSequence.t_s`, `.image`), from `start_s` to `end_s` (seconds, both
    kept; default the whole recording), thinned and bounded as a live
    session's (`MovementRecorder`), encoded. Times stay the recording's, as
    its repetitions' are."""
    kept = MovementRecorder()
    for t, frame in zip(np.asarray(t_s, float), np.asarray(image), strict=True):
        if start_s <= t <= end_s:
            kept.add(float(t), None if np.isnan(frame[:, 0]).all() else frame)
    return kept.encode()


def encode(t_s: np.ndarray, landmarks: np.ndarray) -> bytes:
    """(N,) times in seconds and (N, 33, 3) x, y, visibility -> bytes."""
    t_s = np.asarray(t_s, np.float32)
    lm = np.asarray(landmarks, np.float32)
    if lm.ndim != 3 or lm.shape[1:] != (33, 3) or len(t_s) != len(lm):
        raise ValueError(f"expected (N,) times and (N, 33, 3) landmarks, got {t_s.shape} "
                         f"and {lm.shape}")  # fmt: skip
    body = t_s.tobytes() + lm.astype(np.float16).tobytes()
    return _HEADER.pack(MAGIC, FORMAT, len(t_s)) + zlib.compress(body, 6)


def frame_count(data: bytes) -> int:
    """How many frames an encoded record holds."""
    return _HEADER.unpack_from(data)[2]


def as_lists(data: bytes) -> tuple[list[float], list[list[list[float | None]] | None]]:
    """An encoded record as JSON-ready lists, as the replay draws it: times
    (ms precision) and per frame 33 [x, y, visibility] (None where unknown),
    or None for a frame where no one was seen."""
    t_s, lm = decode(data)
    lm = np.round(lm.astype(np.float64), 4)
    frames = [None if np.isnan(f[:, 0]).all() else
              [[None if np.isnan(v) else float(v) for v in p] for p in f] for f in lm]  # fmt: skip
    return [round(float(t), 3) for t in t_s], frames


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """bytes -> (N,) float32 times, (N, 33, 3) float32 x, y, visibility."""
    try:
        magic, version, n = _HEADER.unpack_from(data)
        if magic != MAGIC or version != FORMAT:
            raise ValueError(f"not a movement record of format {FORMAT}")
        body = zlib.decompress(data[_HEADER.size :])
        t_s = np.frombuffer(body, np.float32, n)
        lm = np.frombuffer(body, np.float16, n * 99, offset=4 * n).reshape(n, 33, 3)
    except (struct.error, zlib.error, ValueError) as exc:
        raise StorageError(f"a stored movement record is damaged: {exc}") from None
    return t_s.copy(), lm.astype(np.float32)
