"""The pose backend protocol: an RGB image in, every person's landmarks out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from telerehab.errors import ConfigError

BACKENDS = ("blazepose", "mediapipe")
MODES = ("image", "video", "live")  # each frame alone / a video file / a live stream


def checked_options(variant: str | None, mode: str, max_people: int) -> str:
    """The model variant to load (the `model_variant` setting when None), after
    checking the options every backend shares; ConfigError names a bad one."""
    from telerehab.models import VARIANTS
    from telerehab.settings import get_settings

    variant = variant or get_settings().model_variant
    if variant not in VARIANTS:
        raise ConfigError(
            f"unknown model variant {variant!r}: expected one of {', '.join(VARIANTS)}"
        )
    if mode not in MODES:
        raise ConfigError(f"unknown pose mode {mode!r}: expected one of {', '.join(MODES)}")
    if max_people < 1:
        raise ConfigError(f"max_people must be at least 1, got {max_people}")
    return variant


@dataclass(frozen=True, slots=True)
class Detections:
    """Every person a backend found in one image.

    image: (P, 33, 4) float32, x/y normalised, z relative, visibility 0..1.
    world: (P, 33, 3) float32, metres, origin between the hips.
    P may be 0.
    """

    image: np.ndarray
    world: np.ndarray

    @property
    def n_people(self) -> int:
        """How many people were found."""
        return int(self.image.shape[0])

    @classmethod
    def none(cls) -> Detections:
        """No person found."""
        return cls(np.zeros((0, 33, 4), np.float32), np.zeros((0, 33, 3), np.float32))


@runtime_checkable
class PoseBackend(Protocol):
    """Runs a pose model on RGB frames in time order."""

    name: str
    variant: str

    def detect(self, rgb: np.ndarray, t_s: float) -> Detections:
        """All people in `rgb` ((H, W, 3) uint8) at time `t_s` (increasing)."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


def create_backend(name: str | None = None, **options: object) -> PoseBackend:
    """A backend by name (default: the `pose_backend` setting); `options` go to
    its constructor.

    "blazepose" (the project's pipeline, `telerehab.pose.blazepose`) takes
    `runtime` and `device` besides the common options; "mediapipe" (MediaPipe
    Tasks, the reference) ignores them.
    """
    if name is None:
        from telerehab.settings import get_settings

        name = get_settings().pose_backend
    if name == "blazepose":
        from .blazepose import BlazePoseBackend

        return BlazePoseBackend(**options)  # type: ignore[arg-type]
    if name == "mediapipe":
        for key in ("runtime", "device", "threads", "detect_every", "track_scale"):
            options.pop(key, None)
        from .mediapipe_backend import MediaPipeBackend

        return MediaPipeBackend(**options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown pose backend {name!r}: expected one of {', '.join(BACKENDS)}")
