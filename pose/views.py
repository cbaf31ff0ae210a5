"""A recorded pose as a camera elsewhere would have seen it: for checking that
counting survives the camera's position without filming every view; and the
same recording mirrored (`mirrored`) or played faster or slower (`at_speed`).

BlazePose's world landmarks are metric 3D coordinates around the hips.
`seen_from` turns them (yaw about the vertical axis, then pitch about the
left-right axis), keeps chosen landmarks in place (the feet of a squat: the
world frame follows the hips, a room does not) and projects them
orthographically into a new image. Visibility, timing and everything else
are those of the recording. An orthographic camera has no perspective, so
this tests the geometry of the view, not a lens.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from telerehab.errors import PoseError

from .estimator import PoseSequence
from .landmarks import INDEX, NAMES

# Each landmark's mirror image: left_* <-> right_*, the midline (nose) itself.
_MIRROR = np.array(
    [INDEX[n.replace("left", "\0").replace("right", "left").replace("\0", "right")] for n in NAMES]
)


def seen_from(
    seq: PoseSequence,
    yaw_deg: float,
    pitch_deg: float,
    fixed: list[int],
    size: tuple[int, int] = (640, 480),
) -> PoseSequence:
    """`seq` as a camera turned `yaw_deg` about the vertical and `pitch_deg`
    about the left-right axis would see it (0, 0: the recording's own view),
    with the landmarks `fixed` (indices) held in place, in an image of `size`
    (width, height) pixels. A frame without `fixed` landmarks is unseen."""
    w = seq.world.astype(np.float64)
    if fixed:
        with warnings.catch_warnings():  # a frame without them: NaN, unseen
            warnings.simplefilter("ignore", RuntimeWarning)
            w = w - np.nanmean(w[:, fixed], axis=1, keepdims=True)
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    yaw = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    pitch = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    p = w @ (pitch @ yaw).T
    width, height = size
    image = seq.image.copy()
    scale = 0.4  # a 2 m body fills most of the image height
    image[..., 0] = 0.5 + p[..., 0] * scale * height / width
    image[..., 1] = 0.6 + p[..., 1] * scale
    return dataclasses.replace(seq, image=image.astype(np.float32), width=width, height=height)


def mirrored(seq: PoseSequence) -> PoseSequence:
    """`seq` as the mirror image of its video would give it: x flipped in the
    image and in the world, the camera's shift flipped, and every left
    landmark exchanged with its right one (in a mirror a person's left side
    looks like a right side). A patient filmed facing the other way, or a
    webcam that mirrors its picture, should be counted the same."""
    image = seq.image[:, _MIRROR].copy()
    image[..., 0] = 1.0 - image[..., 0]
    world = seq.world[:, _MIRROR].copy()
    world[..., 0] = -world[..., 0]
    camera = seq.camera_xy.copy()
    camera[:, 0] = -camera[:, 0]
    return dataclasses.replace(seq, image=image, world=world, camera_xy=camera)


def at_speed(seq: PoseSequence, factor: float) -> PoseSequence:
    """`seq` played `factor` times as fast (2: twice as fast; the same frames,
    their times divided by it): the same movements by a patient who moves
    faster or slower."""
    if not factor > 0:
        raise PoseError(f"speed factor: expected a number above 0, got {factor!r}")
    return dataclasses.replace(seq, t_s=seq.t_s / factor, fps=seq.fps * factor)
