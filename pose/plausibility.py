"""Anatomically implausible poses: frames no real body could be in.

A pose model can turn a skeleton head-to-feet from one frame to the next (seen
on a dim clip of a floor press filmed from the feet: shoulders put below the
hips for seconds at a time), jump to another person, or stretch a limb far
beyond the body. Such frames are missing data, never movement: counting them
would turn a model's mistake into a repetition (or lose a real one).

`PlausibilityCheck` judges one frame at a time and causally (live sessions use
it as frames arrive; `mask_implausible` runs it over a whole sequence), from:
- flip: the trunk (mid-hip to mid-shoulder, image plane) turns by more than
  `FLIP_DEG` between frames less than `FLIP_WITHIN_S` apart: a body cannot
  rotate that fast. Frames stay implausible until the trunk is back within
  `FLIP_DEG` of its direction before the flip, or until the new direction
  has lasted as long as the one before it had (at least `FLIP_MIN_HOLD_S`,
  at most `FLIP_HOLD_S`): then it is accepted, the patient may really have
  turned; the longer-held direction is the likelier body, and a model that
  started a track the wrong way up for a few frames and righted itself (the
  project's pipeline does, `pose.blazepose.face_inside`) does not have its
  right frames masked for seconds. The frame that ends a flip is judged for a
  jump like any other;
- jump: the mid-hip moves faster than `MAX_SPEED_TRUNKS` trunk lengths a
  second (walking is about 2-3, a jump about 6): another person was taken;
- segment: a limb segment (world landmarks, metres) longer than `MAX_SEGMENT`
  times the trunk; the longest (the thigh) is about 0.9 trunk lengths;
- flicker: the patient was found in under half the frames of the last
  `FLICKER_S`: a track that comes and goes (the body lost in the dark) lands
  on a different place each time it comes back.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .frame import PoseFrame
from .landmarks import INDEX, trunk

if TYPE_CHECKING:
    from .estimator import PoseSequence

FLIP_DEG = 120.0
FLIP_WITHIN_S = 0.2
FLIP_HOLD_S = 5.0
FLIP_MIN_HOLD_S = 1.0
MAX_SPEED_TRUNKS = 15.0
MAX_SEGMENT = 1.6
FLICKER_S = 0.5

_HIP = [INDEX["left_hip"], INDEX["right_hip"]]
_SEGMENTS = [
    (INDEX[f"{s}_{a}"], INDEX[f"{s}_{b}"])
    for s in ("left", "right")
    for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))
]


def _turn_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


class PlausibilityCheck:
    """Feed frames in time order; `check` returns why a frame is implausible, or ""."""

    def __init__(self) -> None:
        self._last: tuple[float, np.ndarray, np.ndarray, float] | None = None  # t, hip, dir, trunk
        self._before_flip: np.ndarray | None = None  # trunk direction before a flip
        self._flip_t = math.nan
        self._since = math.nan  # when the accepted trunk direction began
        self._seen: deque[tuple[float, bool]] = deque()  # (t_s, found) over FLICKER_S
        self.counts: dict[str, int] = {"flip": 0, "jump": 0, "segment": 0, "flicker": 0}

    def check(self, frame: PoseFrame) -> str:
        """ "" for a plausible frame (or one with no trunk to judge), else the reason."""
        why = self._judge(frame)
        if why:
            self.counts[why] += 1
        return why

    def _judge(self, frame: PoseFrame) -> str:
        xy = frame.image_landmarks[:, :2].astype(np.float64) * (frame.width, frame.height)
        hip = xy[_HIP].mean(axis=0)
        trunk_vec = trunk(xy)
        length = float(np.linalg.norm(trunk_vec))
        t = frame.t_s
        found = bool(np.isfinite(length) and length > 0)
        seen = self._seen
        seen.append((t, found))
        while t - seen[0][0] > FLICKER_S:
            seen.popleft()
        if not found:
            return ""
        if t - seen[0][0] >= FLICKER_S * 0.9 and 2 * sum(f for _t, f in seen) < len(seen):
            return "flicker"
        w = frame.world_landmarks.astype(np.float64)
        w_trunk = float(np.linalg.norm(trunk(w)))
        if np.isfinite(w_trunk) and w_trunk > 0:
            longest = max((float(np.linalg.norm(w[a] - w[b])) for a, b in _SEGMENTS), default=0.0)
            if longest > MAX_SEGMENT * w_trunk:
                return "segment"
        if self._before_flip is not None:
            back = _turn_deg(trunk_vec, self._before_flip) <= FLIP_DEG
            held_before = min(FLIP_HOLD_S, max(FLIP_MIN_HOLD_S, self._flip_t - self._since))
            if not back and t - self._flip_t <= held_before:
                return "flip"
            if not back:  # the new direction has lasted: it is the body's now
                self._since = self._flip_t
            # The flip is over; the frame is judged against the last plausible
            # one as any other: a trunk turned back the right way may still be
            # another person's, far from where the patient was.
            self._before_flip = None
        last, self._last = self._last, (t, hip, trunk_vec, length)
        if last is None:
            self._since = t
            return ""
        t0, hip0, dir0, length0 = last
        dt = t - t0
        if dt <= 0:
            return ""
        turned = _turn_deg(trunk_vec, dir0) > FLIP_DEG
        if turned and dt > FLIP_WITHIN_S:
            self._since = t  # found again after a gap, the other way: a new direction
        if turned and dt <= FLIP_WITHIN_S:
            self._before_flip, self._flip_t = dir0, t
            self._last = last
            return "flip"
        speed = float(np.linalg.norm(hip - hip0)) / max(length, length0) / dt
        if speed > MAX_SPEED_TRUNKS:
            self._last = last
            return "jump"
        return ""


def mask_implausible(frame: PoseFrame, why: str) -> PoseFrame:
    """`frame` with its landmarks missing when `why` names a reason."""
    if not why:
        return frame
    return PoseFrame.empty(
        frame.t_s, frame.index, frame.n_people, frame.width, frame.height, frame.camera_xy
    )


def implausible_frames(
    image: np.ndarray, world: np.ndarray, t_s: np.ndarray, width: int, height: int
) -> np.ndarray:
    """(T,) bool: the frames `PlausibilityCheck` rejects, judged in order.

    image (T, 33, 4) and world (T, 33, 3) as in `PoseSequence`.
    """
    check = PlausibilityCheck()
    out = np.zeros(len(t_s), dtype=bool)
    for i in range(len(t_s)):
        f = PoseFrame(image[i], world[i], float(t_s[i]), i, 1, width, height)
        out[i] = bool(check.check(f))
    return out


def without_implausible(seq: PoseSequence) -> PoseSequence:
    """A copy of `seq` whose implausible frames have NaN landmarks."""
    bad = implausible_frames(seq.image, seq.world, seq.t_s, seq.width, seq.height)
    if not bad.any():
        return seq
    image, world = seq.image.copy(), seq.world.copy()
    image[bad] = np.nan
    world[bad] = np.nan
    return dataclasses.replace(seq, image=image, world=world)
