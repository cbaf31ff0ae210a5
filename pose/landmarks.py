"""The 33 BlazePose landmarks: names, indices and the skeleton's edges."""

from __future__ import annotations

import numpy as np

NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
N_LANDMARKS = len(NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}

# Virtual points appended after the 33 landmarks by `kinematics.with_midpoints`.
MID_SHOULDER = N_LANDMARKS
MID_HIP = N_LANDMARKS + 1
VIRTUAL_NAMES: tuple[str, ...] = ("mid_shoulder", "mid_hip")
# The landmarks each virtual point is the midpoint of.
MIDPOINT_OF: dict[int, tuple[str, str]] = {
    MID_SHOULDER: ("left_shoulder", "right_shoulder"),
    MID_HIP: ("left_hip", "right_hip"),
}
_SHOULDERS = [INDEX["left_shoulder"], INDEX["right_shoulder"]]
_HIPS = [INDEX["left_hip"], INDEX["right_hip"]]


def trunk(points: np.ndarray) -> np.ndarray:
    """The trunk vector, mid-hip to mid-shoulder, of points (..., 33, k): (..., k)
    in their units (NaN where a shoulder or hip is missing)."""
    return points[..., _SHOULDERS, :].mean(axis=-2) - points[..., _HIPS, :].mean(axis=-2)


def width_to_trunk(points: np.ndarray) -> np.ndarray:
    """Shoulder width over trunk length of image points (..., 33, 2) in pixels:
    large facing the camera, small side-on (NaN where unmeasurable)."""
    width = np.linalg.norm(points[..., _SHOULDERS[0], :] - points[..., _SHOULDERS[1], :], axis=-1)
    length = np.linalg.norm(trunk(points), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 0, width / length, np.nan)


def inside_picture(xy: np.ndarray) -> np.ndarray:
    """Whether each of the points xy (..., 2+), normalised to the picture, lies
    inside it (NaN: not). Outside, a landmark is the model's guess."""
    xy = xy[..., :2]
    return np.all((xy >= 0) & (xy <= 1), axis=-1)


# Skeleton edges for drawing (the BlazePose topology, face reduced to ears/eyes).
EDGES: tuple[tuple[int, int], ...] = (
    (0, 2), (0, 5), (2, 7), (5, 8),
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (15, 19), (16, 20), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (27, 29), (29, 31), (27, 31),
    (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
)  # fmt: skip
