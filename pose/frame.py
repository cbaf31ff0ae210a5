"""PoseFrame: one video frame's pose, the type every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .landmarks import N_LANDMARKS


def _nan(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class PoseFrame:
    """The tracked patient's pose in one frame.

    image_landmarks: (33, 4) float32: x, y normalised to the image width and
        height (0..1, may lie outside), z relative depth in the same scale as x
        (smaller is nearer the camera, hips' midpoint near 0), visibility 0..1.
    world_landmarks: (33, 3) float32, metres, origin between the hips, y down.
    t_s: presentation time of the frame in seconds from the first frame.
    index: frame number in the source, from 0.
    n_people: how many people the backend saw in this frame.
    width, height: image size in pixels (for aspect-correct image-plane angles).
    camera_xy: how far the camera's view moved since the first frame, in the
        units of landmark x and y (`pose.camera_motion`); a landmark's place in
        the room is its image position minus this. (0, 0) when not measured.
    No person: every landmark is NaN and `detected` is False; never an exception.
    """

    image_landmarks: np.ndarray
    world_landmarks: np.ndarray
    t_s: float
    index: int
    n_people: int
    width: int
    height: int
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    camera_xy: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.image_landmarks.shape != (N_LANDMARKS, 4):
            raise ValueError(f"image_landmarks: expected (33, 4), got {self.image_landmarks.shape}")
        if self.world_landmarks.shape != (N_LANDMARKS, 3):
            raise ValueError(f"world_landmarks: expected (33, 3), got {self.world_landmarks.shape}")

    @property
    def detected(self) -> bool:
        """True when the patient's landmarks are present in this frame."""
        return bool(np.isfinite(self.image_landmarks[:, 0]).any())

    @classmethod
    def empty(
        cls,
        t_s: float,
        index: int,
        n_people: int,
        width: int,
        height: int,
        camera_xy: tuple[float, float] = (0.0, 0.0),
    ) -> PoseFrame:
        """A frame in which the patient was not found."""
        return cls(
            _nan((N_LANDMARKS, 4)), _nan((N_LANDMARKS, 3)), t_s, index, n_people, width, height,
            camera_xy=camera_xy,
        )  # fmt: skip
