"""BlazePose through the MediaPipe Tasks PoseLandmarker, on fetched weights.

Why the Tasks API (mediapipe 1.2.x) and not the legacy `mediapipe.solutions`:
the 0.10.21 wheel pins numpy<2 and protobuf<5 and pulls jax, and its lite and
heavy models are downloaded from a model hub at run time. The 1.2.x wheel runs
with numpy 2, and takes a bundle that `telerehab.models.bundle` assembles
offline from the npm weights (metadata written by us). Nothing is downloaded
from a hub; the bundle's digest is checked on every start.

Modes: "image" (every frame detected independently), "video" (detection plus
landmark tracking between frames, for files), "live" (the same tracking, fed
from a camera stream; frames handed in must have increasing timestamps and may
be dropped by the caller, never reordered).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

import numpy as np

from telerehab.errors import PoseError

from .backend import Detections, checked_options

logger = logging.getLogger(__name__)


# Quiet the C++ logging of MediaPipe / LiteRT unless the user asked otherwise.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class MediaPipeBackend:
    """BlazePose lite / full / heavy via MediaPipe Tasks."""

    name = "mediapipe"

    def __init__(
        self,
        variant: str | None = None,
        mode: str = "video",
        max_people: int = 4,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        store: object | None = None,
        fetch: bool | None = None,
        progress: object | None = None,
    ) -> None:
        from telerehab.models import default_store, pose_landmarker_bundle
        from telerehab.settings import get_settings

        settings = get_settings()
        variant = checked_options(variant, mode, max_people)
        self.variant = variant
        self.mode = mode
        self.max_people = max_people
        store = store or default_store()
        bundle = pose_landmarker_bundle(
            store,  # type: ignore[arg-type]
            variant,
            fetch=settings.auto_fetch if fetch is None else fetch,
            progress=progress,
        )

        from mediapipe.tasks.python import BaseOptions, vision

        running_mode = vision.RunningMode.IMAGE if mode == "image" else vision.RunningMode.VIDEO
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(bundle)),
            running_mode=running_mode,
            num_poses=max_people,
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_segmentation_masks=False,
        )
        try:
            with quiet_native_stderr():
                self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise PoseError(f"{bundle}: MediaPipe refused the model bundle ({exc})") from exc
        self._last_ms = -1
        self._lock = threading.Lock()
        self._closed = False
        self._noisy = True
        # Warm up on a blank frame (no person, so no tracking state is left):
        # the first patient frame then pays no start-up cost, and MediaPipe's
        # first-run log lines stay quiet.
        with quiet_native_stderr():
            self.detect(np.zeros((64, 64, 3), np.uint8), 0.0)

    def detect(self, rgb: np.ndarray, t_s: float) -> Detections:
        """All people in `rgb` at `t_s` seconds (timestamps must increase)."""
        import mediapipe as mp

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise PoseError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock:
            if self._closed:
                raise PoseError("the MediaPipe backend is closed")
            if self.mode == "image":
                result = self._landmarker.detect(image)
            else:
                # MediaPipe wants strictly increasing integer milliseconds.
                ms = max(round(t_s * 1000.0), self._last_ms + 1)
                self._last_ms = ms
                if self._noisy:
                    # The first frame with a person logs a one-off C++ warning.
                    with quiet_native_stderr():
                        result = self._landmarker.detect_for_video(image, ms)
                    self._noisy = not result.pose_landmarks
                else:
                    result = self._landmarker.detect_for_video(image, ms)
        return _to_detections(result)

    def close(self) -> None:
        """Release the landmarker (MediaPipe needs an explicit close)."""
        with self._lock:
            if not self._closed:
                with quiet_native_stderr():
                    self._landmarker.close()
                self._closed = True

    def __enter__(self) -> MediaPipeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_stderr_lock = threading.Lock()
_stderr_quieted = 0  # how many callers are inside quiet_native_stderr
_stderr_saved: int | None = None  # the real stderr while quieted


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C++ logging (LiteRT prints dozens of lines per model load).

    GLOG_minloglevel does not reach LiteRT's own logger, so the file
    descriptor is redirected while the model loads; Python exceptions still
    carry MediaPipe's message. Skipped when logging is at DEBUG level.

    File descriptor 2 belongs to the whole process and live sessions load
    their models on their own threads at once: the first caller saves the real
    stderr and redirects it, the last one out restores it (counted under a
    lock), so two overlapping loads cannot leave stderr pointing at /dev/null.
    """
    global _stderr_quieted, _stderr_saved
    if logging.getLogger("telerehab").isEnabledFor(logging.DEBUG):
        yield
        return
    with _stderr_lock:
        if _stderr_quieted == 0:
            sys.stderr.flush()
            _stderr_saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _stderr_quieted += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_quieted -= 1
            if _stderr_quieted == 0 and _stderr_saved is not None:
                os.dup2(_stderr_saved, 2)
                os.close(_stderr_saved)
                _stderr_saved = None


def _to_detections(result: object) -> Detections:
    people = result.pose_landmarks  # type: ignore[attr-defined]
    worlds = result.pose_world_landmarks  # type: ignore[attr-defined]
    if not people:
        return Detections.none()
    image = np.array(
        [[(lm.x, lm.y, lm.z, lm.visibility if lm.visibility is not None else np.nan) for lm in p]
         for p in people],
        dtype=np.float32,
    )  # fmt: skip
    world = np.array([[(lm.x, lm.y, lm.z) for lm in p] for p in worlds], dtype=np.float32)
    return Detections(image, world)
