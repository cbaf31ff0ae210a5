"""Video sources: files decoded with PyAV, webcams through OpenCV.

Frames stay in memory; nothing here writes a frame to disk. Timestamps come
from the container (presentation time stamps), so variable-frame-rate files
keep their real timing; a frame without a timestamp gets the previous one plus
the nominal frame interval.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telerehab.errors import VideoError

logger = logging.getLogger(__name__)

# Containers may miscount a frame or two (edit lists, a dropped last frame).
_FRAME_COUNT_SLACK = 2


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One decoded frame: rgb (H, W, 3) uint8, t_s seconds from the first frame."""

    rgb: np.ndarray
    t_s: float
    index: int


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container says about its video stream."""

    source: str
    width: int
    height: int
    fps: float  # nominal (average) frame rate; 0 when unknown
    n_frames: int | None  # the container's count, None when it does not say
    duration_s: float | None
    codec: str


def _quarter_turns(path: Path) -> int:
    """Counter-clockwise quarter turns that show the video `path` upright: its
    display matrix's rotation (read off its first frame, where PyAV gives it),
    to the nearest quarter turn, 0..3. 0 when there is none or the first frame
    cannot be read (decoding then says why, with the frames it reached)."""
    import av

    try:
        with av.open(str(path)) as probe:
            first = next(probe.decode(video=0), None)
            degrees = first.rotation if first is not None else 0
    except (av.error.FFmpegError, StopIteration, ValueError):
        return 0
    return round((degrees or 0) / 90) % 4


class VideoFile:
    """Frames of a video file, in order, with container timestamps, turned as
    the container says they are displayed (a phone held upright).

    Opening validates the file: a missing, empty or non-video file, or one with
    no video stream, raises `VideoError` naming the path. A stream that breaks
    part-way raises `VideoError` after the last good frame, saying where.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise VideoError(f"{self.path}: is a folder, not a video file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path}: file is empty (0 bytes)")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise VideoError(f"{self.path}: not a readable video ({_why(exc)})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.path}: contains no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        # A phone held upright stores its picture on its side and says so in the
        # container (the display matrix); players turn it, and so do we: the
        # frames, their size and everything measured on them are as displayed.
        self.quarter_turns = _quarter_turns(self.path)
        ctx = stream.codec_context
        width, height = int(ctx.width), int(ctx.height)
        if self.quarter_turns % 2:
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else None
        )
        self.info = VideoInfo(
            source=str(self.path),
            width=width,
            height=height,
            fps=float(rate) if rate else 0.0,
            n_frames=int(stream.frames) or None,
            duration_s=duration,
            codec=ctx.name,
        )
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise VideoError(f"{self.path}: video stream has no frame size (corrupt header?)")

    def __iter__(self) -> Iterator[VideoFrame]:
        import av
        import cv2

        step = 1.0 / self.info.fps if self.info.fps > 0 else 1.0 / 30.0
        turn = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
        t0: float | None = None
        last_t = -np.inf
        index = 0
        try:
            for frame in self._container.decode(self._stream):
                raw_t = frame.time
                if raw_t is None:
                    t = last_t + step if index else 0.0
                else:
                    if t0 is None:
                        t0 = raw_t
                    t = raw_t - t0
                if t <= last_t:  # duplicate or out-of-order stamps: keep time increasing
                    t = last_t + 1e-3
                last_t = t
                rgb = frame.to_ndarray(format="rgb24")
                if self.quarter_turns:
                    rgb = cv2.rotate(rgb, turn[self.quarter_turns])
                yield VideoFrame(rgb, float(t), index)
                index += 1
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"{self.path}: decoding failed after {index} frame(s) "
                f"({max(last_t, 0.0):.2f} s): {_why(exc)}"
            ) from exc
        if index == 0:
            raise VideoError(f"{self.path}: contains no decodable video frames")
        expected = self.info.n_frames
        if expected and index < expected - _FRAME_COUNT_SLACK:
            raise VideoError(
                f"{self.path}: truncated: decoded {index} of the {expected} frames "
                f"the container lists (stopped at {last_t:.2f} s)"
            )

    def close(self) -> None:
        """Release the container."""
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Webcam:
    """Frames from a camera by index, stamped with the monotonic clock."""

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None) -> None:
        import cv2

        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise VideoError(f"camera {index}: cannot be opened (is it connected and free?)")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.info = VideoInfo(f"camera:{index}", w, h, fps, None, None, "camera")
        self._index = index

    def __iter__(self) -> Iterator[VideoFrame]:
        import cv2

        t0 = time.monotonic()
        i = 0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                if i == 0:
                    raise VideoError(f"camera {self._index}: delivered no frame")
                return
            yield VideoFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic() - t0, i)
            i += 1

    def close(self) -> None:
        """Release the camera."""
        self._cap.release()

    def __enter__(self) -> Webcam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prefetch(frames: Iterable[VideoFrame], depth: int = 4) -> Iterator[VideoFrame]:
    """The same frames, decoded on a background thread up to `depth` ahead.

    Offline, decoding then runs on one core while inference runs on the other.
    The queue is bounded, so memory stays at `depth` frames. An error raised
    while decoding (a `VideoError` part-way) is raised here, after the frames
    decoded before it. Closing the iterator (or leaving a `for` early and
    calling `close()`) stops the thread before it returns.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        slots.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: object = done
        except BaseException as exc:  # handed to the consumer, raised there
            item = exc
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=produce, name="video-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def open_video(source: str | Path | int) -> VideoFile | Webcam:
    """A file path, or a camera index (an int or a string of digits)."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return Webcam(int(source))
    return VideoFile(source)


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '", 1)[0].strip() or type(exc).__name__
