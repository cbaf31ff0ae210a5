"""From frames to the patient's PoseFrames: backend + patient tracking.

`PoseEstimator` is the per-frame, causal piece (live sessions use it);
`estimate_video` runs it over a whole video into a `PoseSequence` of column
arrays (offline analysis, exports, benchmarks).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from telerehab.errors import VideoError

from .backend import PoseBackend, create_backend
from .camera_motion import CameraMotion
from .frame import PoseFrame
from .tracking import PatientTracker
from .video import VideoFile, VideoFrame, VideoInfo, open_video, prefetch

logger = logging.getLogger(__name__)


class PoseEstimator:
    """Runs a backend on frames, follows one patient among the people seen, and
    measures the camera's own motion (`CameraMotion`) beside the patient.

    The camera's motion is measured with the patient's landmarks of the frame
    before left out (a patient moves far less than `camera_motion.PERSON_MARGIN`
    of the picture in one frame), so it need not wait for the pose: given an
    `executor`, it runs there while the backend works on the frame (offline,
    `estimate_video`, on the core the pose model leaves), with the same result.
    After a frame with nobody in it, it waits and leaves out this frame's
    patient (the background's corners are picked then, never on the patient).
    """

    def __init__(
        self,
        backend: PoseBackend,
        tracker: PatientTracker | None = None,
        camera: CameraMotion | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.backend = backend
        self.tracker = tracker or PatientTracker()
        self.camera = camera or CameraMotion()
        self.executor = executor
        self._patient_xy: np.ndarray | None = None  # the last frame's, for the camera

    def process(self, frame: VideoFrame) -> PoseFrame:
        """The patient's pose in `frame` (NaN landmarks when not found)."""
        h, w = frame.rgb.shape[:2]
        box = self._patient_xy
        pending = (
            self.executor.submit(self.camera.update, frame.rgb, box)
            if self.executor is not None and box is not None
            else None
        )
        found = self.backend.detect(frame.rgb, frame.t_s)
        choice = self.tracker.select(found.image)
        landmarks = found.image[choice] if choice is not None else None
        if pending is not None:
            shift = pending.result()
        else:  # nobody in the frame before: this frame's patient, if any, is left out
            shift = self.camera.update(
                frame.rgb, landmarks[:, :2] if box is None and landmarks is not None else box
            )
        self._patient_xy = None if landmarks is None else landmarks[:, :2]
        camera_xy = (float(shift[0]), float(shift[1]))
        if landmarks is None:
            return PoseFrame.empty(frame.t_s, frame.index, found.n_people, w, h, camera_xy)
        return PoseFrame(
            image_landmarks=landmarks,
            world_landmarks=found.world[choice],
            t_s=frame.t_s,
            index=frame.index,
            n_people=found.n_people,
            width=w,
            height=h,
            camera_xy=camera_xy,
        )


@dataclass(frozen=True, slots=True)
class PoseSequence:
    """The patient's poses over a whole video, as column arrays.

    image: (T, 33, 4) float32 (see `PoseFrame.image_landmarks`); NaN where not found.
    world: (T, 33, 3) float32 metres; NaN where not found.
    t_s: (T,) float64 seconds from the first frame; index: (T,) int64 frame numbers.
    n_people: (T,) int16, people seen per frame.
    camera_xy: (T, 2) float32, the camera's shift since the first frame in the
        units of landmark x/y (see `PoseFrame.camera_xy`); zeros when not measured.
    complete: False when the video broke part-way; `warnings` then says where.
    """

    image: np.ndarray
    world: np.ndarray
    t_s: np.ndarray
    index: np.ndarray
    n_people: np.ndarray
    width: int
    height: int
    source: str
    fps: float
    backend: str
    variant: str
    complete: bool = True
    warnings: tuple[str, ...] = field(default_factory=tuple)
    camera_xy: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.camera_xy is None:
            object.__setattr__(self, "camera_xy", np.zeros((len(self.t_s), 2), np.float32))

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def detected(self) -> np.ndarray:
        """(T,) bool, True where the patient was found."""
        return np.isfinite(self.image[:, :, 0]).any(axis=1)

    @property
    def detection_rate(self) -> float:
        """Share of frames in which the patient was found."""
        return float(self.detected.mean()) if len(self) else 0.0

    @property
    def max_people(self) -> int:
        """Most people seen in any one frame."""
        return int(self.n_people.max()) if len(self) else 0

    def between(self, start_s: float | None = None, end_s: float | None = None) -> PoseSequence:
        """The frames with start_s <= t_s <= end_s (None: from the start / to the end)."""
        t = self.t_s
        keep = np.ones(len(t), dtype=bool)
        if start_s is not None:
            keep &= t >= start_s
        if end_s is not None:
            keep &= t <= end_s
        return dataclasses.replace(
            self, image=self.image[keep], world=self.world[keep], t_s=t[keep],
            index=self.index[keep], n_people=self.n_people[keep], camera_xy=self.camera_xy[keep],
        )  # fmt: skip

    def frames(self) -> Iterator[PoseFrame]:
        """The sequence as PoseFrames, in order."""
        for i in range(len(self)):
            yield PoseFrame(
                self.image[i], self.world[i], float(self.t_s[i]), int(self.index[i]),
                int(self.n_people[i]), self.width, self.height,
                camera_xy=(float(self.camera_xy[i, 0]), float(self.camera_xy[i, 1])),
            )  # fmt: skip

    @classmethod
    def from_frames(cls, frames: list[PoseFrame], info: VideoInfo, **meta: object) -> PoseSequence:
        """Stack PoseFrames into columns."""
        n = len(frames)
        return cls(
            image=np.stack([f.image_landmarks for f in frames])
            if n
            else np.zeros((0, 33, 4), np.float32),
            world=np.stack([f.world_landmarks for f in frames])
            if n
            else np.zeros((0, 33, 3), np.float32),
            t_s=np.array([f.t_s for f in frames], dtype=np.float64),
            index=np.array([f.index for f in frames], dtype=np.int64),
            n_people=np.array([f.n_people for f in frames], dtype=np.int16),
            camera_xy=np.array([f.camera_xy for f in frames], dtype=np.float32).reshape(n, 2),
            width=info.width,
            height=info.height,
            source=info.source,
            fps=info.fps,
            **meta,  # type: ignore[arg-type]
        )


def estimate_video(
    source: str | Path | int | VideoFile,
    backend: PoseBackend | None = None,
    *,
    variant: str | None = None,
    tracker: PatientTracker | None = None,
    on_frame: Callable[[PoseFrame], None] | None = None,
    max_frames: int | None = None,
) -> PoseSequence:
    """Pose of the patient in every frame of `source`.

    A video that breaks part-way keeps the frames decoded before the break:
    the result has `complete=False` and a warning naming the file and where.
    Several people in view are named in a warning; the patient is tracked
    (see `PatientTracker`). Files are decoded on a second thread (`prefetch`),
    so decoding and inference share the two cores.
    """
    own_backend = backend is None
    if backend is None:
        backend = create_backend(variant=variant, mode="video")
    video = source if isinstance(source, VideoFile) else open_video(source)
    reset = getattr(backend, "reset", None)
    if reset is not None:  # a new video: nobody is followed yet (blazepose)
        reset()
    camera_worker = ThreadPoolExecutor(1, thread_name_prefix="camera-motion")
    estimator = PoseEstimator(backend, tracker, executor=camera_worker)
    frames: list[PoseFrame] = []
    warnings: list[str] = []
    complete = True
    first_crowd: float | None = None
    decoded = prefetch(video) if isinstance(video, VideoFile) else iter(video)
    try:
        for vf in decoded:
            pf = estimator.process(vf)
            frames.append(pf)
            if pf.n_people > 1 and first_crowd is None:
                first_crowd = pf.t_s
            if on_frame is not None:
                on_frame(pf)
            if max_frames is not None and len(frames) >= max_frames:
                break
    except VideoError as exc:
        if not frames:
            raise
        complete = False
        warnings.append(str(exc))
        logger.warning("%s; keeping the %d frame(s) decoded before it", exc, len(frames))
    finally:
        if hasattr(decoded, "close"):
            decoded.close()  # stops the decoding thread before the container closes
        video.close()
        camera_worker.shutdown()
        if own_backend:
            backend.close()
    seq = PoseSequence.from_frames(
        frames, video.info, backend=backend.name, variant=backend.variant, complete=complete
    )
    if first_crowd is not None:
        crowded = float((seq.n_people > 1).mean())
        text = (
            f"{video.info.source}: up to {seq.max_people} people in view (first at "
            f"{first_crowd:.2f} s, {crowded:.0%} of frames); tracking one patient, the person "
            "largest and nearest the centre at the start"
        )
        logger.warning(text)
        warnings.insert(0, text)
    return dataclasses.replace(seq, warnings=tuple(warnings))
