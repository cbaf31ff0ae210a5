"""The exercise engine: angles in, repetition events out; one engine, two drivers.

`RepetitionEngine.step` takes one frame's angles and landmark visibility and
returns events. Two drivers feed it the same numbers for the same frames
(implausible poses masked, then causal One-Euro smoothing of the angles and
the image landmarks), so a recording counts the same offline and live:
- `LiveAnalyzer.process(PoseFrame)`: frame by frame (live sessions);
- `analyze_sequence(PoseSequence)`: a whole video (offline analysis), the
  masking and smoothing done once per sequence (`prepare_sequence`).

Signal: the exercise's angle; bilateral exercises use the mean of the sides
whose landmarks are seen, unilateral ones one side (given, or chosen
automatically as the better-seen side until the first repetition starts, then
kept), midline ones the angle itself. A side whose landmarks are less visible
than the exercise's `min_visibility` does not count: nothing is counted while
the needed landmarks are not seen.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telerehab.pose.estimator import PoseSequence
from telerehab.pose.filters import OneEuroFilter, one_euro
from telerehab.pose.frame import PoseFrame
from telerehab.pose.kinematics import compute_angles, in_picture
from telerehab.pose.landmarks import INDEX, NAMES, inside_picture, trunk, width_to_trunk
from telerehab.pose.plausibility import PlausibilityCheck, mask_implausible, without_implausible

from .demonstration import BODY_JOINTS, held_joints, moved_joints
from .events import (
    UNSEEN,
    Event,
    Feedback,
    RepCompleted,
    RepRejected,
    RepResult,
    RepStarted,
    SetCompleted,
    SignalChosen,
    TrackingLost,
    TrackingRegained,
    WrongView,
)
from .exercise import SIDES, Exercise
from .repetitions import START_SHARE, Cycle, RepetitionCounter, State

LOST_AFTER_S = 0.3  # unseen this long: tracking_lost, and the repetition in progress is dropped
VIEW_SAMPLES = 30  # frames with shoulders and hips seen before the view is judged
FRONT_RATIO = 0.55  # shoulder width / trunk length above this: front (or back) view
SIDE_RATIO = 0.30  # below this: side view
TEMPO_FAST_SHARE = 0.5  # faster than this share of the prescribed tempo: too fast
ROM_PENALTY = 40
TEMPO_PENALTY = 15
FAULT_PENALTY = 20
# An anchor (the feet in a squat) that travels further than this many trunk
# lengths in the room (the camera's own motion removed, `pose.camera_motion`)
# during a repetition means the body moved: walking, jumping, turning. A
# quarter of a trunk is about 12 cm: more than standing sway (2-5 cm), less
# than a step (a foot's length, about half a trunk). Measured on the shared
# clips: real repetitions 0.02-0.17, the parkour clip's movements 0.29-1.8
# (benchmarks/RESULTS.md).
ANCHOR_MAX_TRAVEL = 0.25
# The trunk's direction in the image turned at most 43 deg during a real
# repetition on the shared clips (back extension 33-43, squats under 30): a roll,
# a flip or a turn on the spot turns it further.
TRUNK_MAX_TURN_DEG = 90.0
# A needed landmark out of frame or unseen in more than this share of a
# repetition's frames makes its range of motion untrusted (`landmarks_unseen`):
# a crop that hides the feet inflates squat knee flexion by about 30 deg.
UNSEEN_MAX_SHARE = 0.25
# A joint the next exercise of a program holds still, turning by this share of
# the look-ahead repetition's excursion, makes it the current exercise's
# movement (`RepetitionEngine.held_joint_moved`).
HELD_MOVED_SHARE = 0.5
# The landmarks each of demonstration.BODY_JOINTS is measured from, per side.
_BODY_JOINT_POINTS = {
    (j, s): [INDEX[f"{s}_{n}"] for n in names]
    for j, names in (
        ("knee_flexion", ("hip", "knee", "ankle")),
        ("hip_flexion", ("shoulder", "hip", "knee")),
        ("elbow_flexion", ("shoulder", "elbow", "wrist")),
    )
    for s in ("left", "right")
}


@dataclass(frozen=True, slots=True)
class InView:
    """Whether the landmarks an exercise needs are all in the picture: `whole`
    when some side it may count (or the midline) has every needed landmark
    visible and inside the image; else `missing`, the landmarks of the side
    closest to whole that are not (landmark names, e.g. `left_ankle`)."""

    whole: bool
    missing: tuple[str, ...] = ()


def in_view(
    exercise: Exercise,
    visibility: np.ndarray,
    image_landmarks: np.ndarray | None = None,
    side: str = "",
) -> InView:
    """`InView` of one frame: `visibility` (33,), `image_landmarks` (33, 2+)
    normalised to the picture (None: only visibility is judged); `side` the
    side counted (left, right), else any side may do. One definition of a
    landmark being seen, for the engine's `landmarks_unseen` and the live
    session's camera check."""
    if exercise.laterality == "midline":
        sides: tuple[str | None, ...] = (None,)
    else:
        sides = (side,) if side in SIDES else SIDES
    best: tuple[str, ...] | None = None
    for s in sides:
        names = exercise.landmarks_for(s)
        idx = [INDEX[n] for n in names]
        ok = visibility[idx] >= exercise.min_visibility
        if image_landmarks is not None:
            ok &= inside_picture(image_landmarks[idx])
        if ok.all():
            return InView(True)
        missing = tuple(n for n, good in zip(names, ok, strict=True) if not good)
        if best is None or len(missing) < len(best):
            best = missing
    return InView(False, best or ())


def view_of(ratios: list[float]) -> str | None:
    """The camera view from shoulder width / trunk length ratios of some
    frames (`width_to_trunk`): "front" (or back), "side", or None when the
    median lies between (turned part-way) or nothing was measured."""
    if not ratios:
        return None
    ratio = float(np.median(ratios))
    return "front" if ratio > FRONT_RATIO else "side" if ratio < SIDE_RATIO else None


def view_fits(seen: str | None, views: tuple[str, ...]) -> bool:
    """Whether an exercise measured from `views` can be measured from `seen`
    (None, not judged: it may)."""
    return (
        seen is None or seen in views or "above" in views or (seen == "front" and "back" in views)
    )


UPRIGHT = ("standing", "sitting")
LYING = ("supine", "prone")  # the push-up's plank is prone
POSTURE_SPLIT_DEG = 45.0  # trunk from the picture's vertical: upright below, lying above


@dataclass(frozen=True, slots=True)
class Seen:
    """How a repetition was seen, from its own frames: the camera view
    (`view_of`), the angle of the trunk (mid-hip to mid-shoulder) from the
    picture's vertical in degrees on the rest side of the repetition
    (`_posture_trunk_deg`; 0 upright, 90 lying; NaN unseen), and how far the
    body's large joints turned (`turns_deg`)."""

    view: str | None
    trunk_from_vertical_deg: float
    # how far each of demonstration.BODY_JOINTS turned from the rest before the
    # repetition to its turning point, degrees, the larger of the sides seen
    # (NaN: neither side seen at both)
    turns_deg: Mapping[str, float] = field(default_factory=dict)


def _posture_trunk_deg(trunk: list[tuple[float, float]], cycle: Cycle, direction: int) -> float:
    """The trunk's angle from the picture's vertical in the posture a repetition
    is done in: the median over its frames nearer its rest than its turning
    point (NaN: none seen). Not over the whole repetition: in some exercises
    the trunk is what turns (a back extension over a bench sweeps it from
    lying to hanging, and its median came out "upright")."""
    mid = (cycle.rest_deg + cycle.extreme) / 2
    near = [deg for value, deg in trunk if math.isfinite(value) and (value - mid) * direction <= 0]
    return float(np.median(near)) if near else math.nan


def posture_fits(
    trunk_from_vertical_deg: float, posture: str | None, views: tuple[str, ...]
) -> bool:
    """Whether a trunk at that angle from the picture's vertical can be an
    exercise done in `posture`: upright postures within `POSTURE_SPLIT_DEG` of
    vertical, lying ones beyond it. A camera held upright (a laptop, a phone
    standing) is assumed, as the views are; a lying exercise filmed from
    above may show the trunk any way up, and an unseen trunk or an unstated
    posture fits."""
    if not math.isfinite(trunk_from_vertical_deg) or posture is None:
        return True
    if posture in UPRIGHT:
        return trunk_from_vertical_deg <= POSTURE_SPLIT_DEG
    if posture in LYING:
        return "above" in views or trunk_from_vertical_deg >= POSTURE_SPLIT_DEG
    return True


def upright_side_on(seen: Seen, views: tuple[str, ...]) -> bool:
    """Whether a repetition was seen upright from the side, which no exercise
    done lying can be: a body lying seen from the side shows its trunk across
    the picture, and one lying seen from its feet, its head or above (where
    its trunk may point any way in the picture) shows its shoulders' width,
    a front view. Not judged (False): an exercise filmed from above, a view
    between or unmeasured, a trunk unseen. Lying is `posture_fits`'s, the rule
    program following judges postures by (both lying postures alike)."""
    return seen.view == "side" and not posture_fits(seen.trunk_from_vertical_deg, LYING[0], views)


@dataclass(slots=True)
class _AnchorTrack:
    """Where the anchors and the trunk went during the repetition in progress.

    Everything is kept per frame with the signal, so that the judgement at the
    end covers the repetition proper (`core`): the frames where the signal is
    beyond the counter's start threshold, not the tails spent at rest.
    """

    signal: list[float] = field(default_factory=list)  # u = direction * signal, per frame
    seen: dict[int, list[tuple[int, float, float, float]]] = field(
        default_factory=dict
    )  # (k, x, y, visibility)
    trunk_px: list[tuple[int, float]] = field(default_factory=list)
    trunk_dir_deg: list[tuple[int, float]] = field(default_factory=list)  # unwrapped
    core: set[int] | None = None

    def restrict(self, rest_u: float, beyond: float) -> None:
        """Keep the frames whose u is more than `beyond` from `rest_u`."""
        u = np.asarray(self.signal, dtype=np.float64)
        if not u.size or not math.isfinite(rest_u):
            return
        self.core = {int(k) for k in np.flatnonzero(u - rest_u > beyond)}

    def _keep(self, k: int) -> bool:
        return self.core is None or k in self.core

    def turned_deg(self) -> float:
        """How far the trunk turned in the image plane (10th-90th percentile)."""
        dirs = [d for k, d in self.trunk_dir_deg if self._keep(k)]
        if len(dirs) < 2:
            return 0.0
        lo, hi = np.percentile(dirs, [10, 90])
        return float(hi - lo)

    def travel(self) -> tuple[int, float] | None:
        """(landmark, extent in trunk lengths) of the body part that travelled
        furthest, among anchors seen in at least half the frames; None when
        none was or the trunk was not seen.

        The extent is the 10th-90th percentile range of x and of y, so a pose
        glitch of a few frames does not reject a repetition. A part anchored
        on both sides (the feet of a squat) is judged on its better seen side
        (the higher mean visibility): walking, jumping or being another person
        moves that one too, while the far foot of a side view, hidden behind
        the near one, is where the model guesses and wobbles on its own.
        """
        trunks = [v for k, v in self.trunk_px if self._keep(k)]
        if not trunks:
            return None
        trunk = float(np.median(trunks))
        frames = len(self.core) if self.core is not None else len(self.signal)
        judged: dict[str, tuple[float, int, float]] = {}  # part -> (visibility, landmark, extent)
        for idx, pts in self.seen.items():
            kept = [(x, y, v) for k, x, y, v in pts if self._keep(k)]
            if len(kept) * 2 < frames or trunk <= 0:
                continue
            xyv = np.asarray(kept)
            lo, hi = np.percentile(xyv[:, :2], [10, 90], axis=0)
            extent = float(np.max(hi - lo)) / trunk
            seen = float(xyv[:, 2].mean())
            part = NAMES[idx].removeprefix("left_").removeprefix("right_")
            if part not in judged or seen > judged[part][0]:
                judged[part] = (seen, idx, extent)
        worst = max(judged.values(), key=lambda j: j[2], default=None)
        return (worst[1], worst[2]) if worst is not None else None


@dataclass(slots=True)
class _RuleTrack:
    max_value: float = -math.inf
    at_peak: float = math.nan
    asym_at_peak: float = math.nan
    start: dict[str, float] = field(default_factory=dict)  # first value per side
    max_drift: float = 0.0  # furthest any side went from its start


class SignalEngine:
    """Repetitions, tempo, quality and cues for one exercise, counted on its
    primary signal (`RepetitionEngine` runs one per candidate signal).

    Options as `RepetitionEngine`'s, but for `reps_per_set` (sets are the
    caller's) and `index` of repetitions (numbered by the caller).
    """

    def __init__(
        self,
        exercise: Exercise,
        *,
        side: str = "auto",
        target_rom_deg: float | None = None,
        tempo_s: tuple[float, float, float] | None = None,
        feedback_interval_s: float = 3.0,
        calibration_deg: tuple[float, float] | None = None,
    ) -> None:
        if exercise.laterality == "unilateral" and side not in ("auto", *SIDES):
            raise ValueError(f"side: expected auto, left or right, got {side!r}")
        self.exercise = exercise
        model = exercise.phases.counting(exercise.rep_min_s, exercise.rep_max_s, calibration_deg)
        if calibration_deg is not None:
            target_rom_deg = target_rom_deg or model.range_deg
        self.counter = RepetitionCounter(model)
        self.target_rom_deg = target_rom_deg or exercise.target_rom_deg[0]
        self.tempo_s = tempo_s or exercise.tempo_s
        self.feedback_interval_s = feedback_interval_s
        self.reps: list[RepResult] = []
        self.partials = 0
        self.rejected = 0
        self.last_signal_deg = math.nan  # the primary signal at the last frame (NaN: unseen)
        self._anchors = _AnchorTrack()
        self._unseen = [0, 0]  # frames of the repetition in progress: unseen, all
        # width_to_trunk and the trunk's angle from the picture's vertical in
        # the repetition in progress, and how each counted repetition was seen
        # (by its start time), for a program deciding whether the patient
        # moved on (`RepetitionEngine.seen_as_measured`).
        self._rep_ratios: list[float] = []
        self._rep_trunk_deg: list[tuple[float, float]] = []  # (signal, trunk angle) per frame
        self.rep_seen: dict[float, Seen] = {}
        self._fixed_side = side if exercise.laterality == "unilateral" and side != "auto" else None
        self._side_score = dict.fromkeys(SIDES, 0.0)
        self._side_locked = self._fixed_side is not None
        self._rules: dict[str, _RuleTrack] = {}
        self._last_seen_t = math.nan
        self._last_frame_t = math.nan  # the last frame, seen or not
        self._lost = False
        self._view_ratios: list[float] = []
        self._view_done = False
        self._last_cue_t: dict[str, float] = {}
        self._cued = False  # the repetition in progress has had its one cue
        self._rest_angles: Mapping[str, float] = {}  # the last frame before a repetition
        self._rest_visibility: np.ndarray | None = None
        self._turn_angles: Mapping[str, float] = {}  # the furthest frame of the repetition
        self._turn_visibility: np.ndarray | None = None
        self._current_side = self._fixed_side or (
            "both" if exercise.laterality == "bilateral" else "none"
        )
        sides = (None,) if exercise.laterality == "midline" else SIDES
        self._landmark_idx = {s: [INDEX[n] for n in exercise.landmarks_for(s)] for s in sides}

    @property
    def rest_deg(self) -> float:
        """Where the patient rests between repetitions (the counter's rest extreme)."""
        return self.counter.rest_value_deg

    @property
    def side(self) -> str:
        """The side counted: left, right, both (bilateral) or none (midline)."""
        if self.exercise.laterality == "unilateral":
            return self._fixed_side or max(self._side_score, key=self._side_score.get)
        return self._current_side

    # ------------------------------------------------------------------ per frame

    def step(
        self,
        t_s: float,
        frame: int,
        angles: Mapping[str, float],
        visibility: np.ndarray,
        image_landmarks: np.ndarray | None = None,
        size: tuple[int, int] | None = None,
        camera_xy: tuple[float, float] = (0.0, 0.0),
    ) -> list[Event]:
        """One frame: `angles` by table name, `visibility` (33,) of the raw landmarks.

        `image_landmarks` (33, 4), smoothed by the driver, with `size` (width,
        height) in pixels: used to judge the camera view and whether the
        exercise's anchors stayed in place in the room (`camera_xy`: the
        camera's shift, see `PoseFrame.camera_xy`).
        """
        events: list[Event] = []
        if image_landmarks is not None and size is not None and not self._view_done:
            events += self._check_view(t_s, image_landmarks, size)
        value = self._signal(angles, visibility, image_landmarks)
        self.last_signal_deg = value
        no_frame_s = t_s - self._last_frame_t if math.isfinite(self._last_frame_t) else 0.0
        self._last_frame_t = t_s
        if math.isfinite(value):
            if no_frame_s >= self.exercise.rep_min_s and not self._lost:
                # No frame at all for as long as a whole repetition could take
                # (two recordings joined, a stalled stream): what happened in
                # between is unknown, as when unseen. Shorter gaps are a slow
                # device's frame rate (a live worker takes the latest frame):
                # the movement is sampled sparsely, not lost.
                self.counter.update(t_s, math.nan, frame)
            if self._lost:
                events.append(TrackingRegained(t_s))
                self._lost = False
            self._last_seen_t = t_s
        elif (
            not self._lost
            and math.isfinite(self._last_seen_t)
            and t_s - self._last_seen_t >= LOST_AFTER_S
        ):
            self._lost = True
            events.append(TrackingLost(t_s, "the needed body parts are not visible"))
        if not math.isfinite(value) and (
            math.isfinite(self._last_seen_t) and t_s - self._last_seen_t < LOST_AFTER_S
        ):
            return events  # a short gap is bridged: the repetition in progress goes on
        outcome = self.counter.update(t_s, value, frame)
        kind, cycle = outcome if outcome is not None else ("", None)
        if kind == "started":
            self._side_locked = True
            self._rules = {r.id: _RuleTrack() for r in self.exercise.form_rules}
            self._anchors = _AnchorTrack()
            self._unseen = [0, 0]
            self._rep_ratios = []
            self._rep_trunk_deg = []
            self._cued = False
            for rule in self.exercise.form_rules:  # drift counts from the rest position
                if rule.kind == "drift":
                    self._track_drift(self._rules[rule.id], self._rest_angles, rule.angle)
        elif self.counter.cycle is None:
            self._rest_angles, self._rest_visibility = angles, visibility
        if kind == "started" or (self.counter.cycle is not None and self.counter.cycle.new_extreme):
            self._turn_angles, self._turn_visibility = angles, visibility
        if self.counter.cycle is not None:
            self._track_rules(angles)
            if not self._cued:
                events += self._cue_during(t_s, value)
        if self.counter.cycle is not None or kind == "completed":
            self._track_anchors(value, visibility, image_landmarks, size, camera_xy)
            self._track_unseen(visibility, image_landmarks)
            if image_landmarks is not None and size is not None:
                px = image_landmarks[:, :2] * size
                ratio = float(width_to_trunk(px))
                if math.isfinite(ratio):
                    self._rep_ratios.append(ratio)
                dx, dy = trunk(px)
                if math.isfinite(dx) and math.isfinite(dy) and (dx or dy):
                    self._rep_trunk_deg.append((value, math.degrees(math.atan2(abs(dx), abs(dy)))))
        if cycle is None:
            return events
        if kind == "started":
            events.append(RepStarted(cycle.t_start_s, len(self.reps) + 1))
        elif kind == "completed":
            seen = self._seen(cycle)
            if why := self._moved(cycle) or self._not_lying(seen):
                self.rejected += 1
                events.append(RepRejected(t_s, why))
                return events
            rep = self._result(cycle)
            self.reps.append(rep)
            self.rep_seen[rep.t_start_s] = seen
            events.append(RepCompleted(t_s, rep))
            if not self._cued:
                events += self._cues(t_s, rep)
        elif kind == "partial":
            self.partials += 1
        return events

    def _visible(self, visibility: np.ndarray, side: str | None) -> bool:
        # The mean, not the minimum: one landmark flickering (a knee at the frame
        # edge) should not hide a limb whose other landmarks are clearly seen.
        v = visibility[self._landmark_idx[side]]
        return bool(np.all(np.isfinite(v)) and v.mean() >= self.exercise.min_visibility)

    def _side_value(self, angles: Mapping[str, float], name: str, side: str | None) -> float:
        return float(angles.get(name if side is None else f"{side}_{name}", math.nan))

    def _signal_value(self, angles: Mapping[str, float], side: str | None) -> float:
        return float(angles.get(self.exercise.signal_key(side), math.nan))

    def _shown(self, lm: np.ndarray | None, side: str | None) -> bool:
        """Whether the picture shows the signal's angle on `side` (`in_picture`);
        without landmarks, not judged."""
        return lm is None or in_picture(self.exercise.angle_name(side), lm)

    def _signal(
        self, angles: Mapping[str, float], visibility: np.ndarray, lm: np.ndarray | None
    ) -> float:
        ex = self.exercise
        if ex.laterality == "midline":
            ok = self._visible(visibility, None) and self._shown(lm, None)
            return self._signal_value(angles, None) if ok else math.nan
        seen = {s: self._visible(visibility, s) and self._shown(lm, s) for s in SIDES}
        if ex.laterality == "bilateral":
            values = [self._signal_value(angles, s) for s in SIDES if seen[s]]
            values = [v for v in values if math.isfinite(v)]
            return sum(values) / len(values) if values else math.nan
        if not self._side_locked:
            for s in SIDES:
                idx = self._landmark_idx[s]
                self._side_score[s] += float(np.nansum(visibility[idx]))
        side = self.side
        return self._signal_value(angles, side) if seen[side] else math.nan

    def _rule_value(self, angles: Mapping[str, float], name: str) -> float:
        if name in angles:
            return float(angles[name])
        side = self.side
        if side in SIDES:
            return self._side_value(angles, name, side)
        values = [self._side_value(angles, name, s) for s in SIDES]
        values = [v for v in values if math.isfinite(v)]
        return max(values) if values else math.nan

    def _track_anchors(
        self,
        value: float,
        visibility: np.ndarray,
        lm: np.ndarray | None,
        size: tuple[int, int] | None,
        camera_xy: tuple[float, float],
    ) -> None:
        if lm is None or size is None:
            return
        w, h = size
        track = self._anchors
        k = len(track.signal)
        track.signal.append(value * self.counter.direction)
        pts = (lm[:, :2] - camera_xy) * (w, h)  # in the room, not the frame
        vec = trunk(pts)
        length = float(np.linalg.norm(vec))
        if math.isfinite(length):
            track.trunk_px.append((k, length))
            deg = math.degrees(math.atan2(vec[1], vec[0]))
            if track.trunk_dir_deg:  # unwrap: the nearest turn to the last direction
                deg += 360.0 * round((track.trunk_dir_deg[-1][1] - deg) / 360.0)
            track.trunk_dir_deg.append((k, deg))
        inside = inside_picture(lm)
        for name in self.exercise.anchors_for(self.side) if self.exercise.anchors else ():
            idx = INDEX[name]
            # outside the picture an anchor is the model's guess, free to wander
            # (feet cropped by a webcam): not judged
            if visibility[idx] >= self.exercise.min_visibility and inside[idx]:
                xyv = (k, float(pts[idx, 0]), float(pts[idx, 1]), float(visibility[idx]))
                track.seen.setdefault(idx, []).append(xyv)

    def _track_unseen(self, visibility: np.ndarray, lm: np.ndarray | None) -> None:
        """Count the frame as unseen when no side that is counted has all its
        needed landmarks visible and inside the image (`in_view`)."""
        seen = in_view(self.exercise, visibility, lm, self.side)
        self._unseen[0] += not seen.whole
        self._unseen[1] += 1

    def _joint_turns(self) -> dict[str, float]:
        """`Seen.turns_deg` of the repetition just completed."""
        rest, turn = self._rest_angles, self._turn_angles
        seen = {
            (j, s): all(
                v is not None
                and bool(np.all(v[_BODY_JOINT_POINTS[j, s]] >= self.exercise.min_visibility))
                for v in (self._rest_visibility, self._turn_visibility)
            )
            for j in BODY_JOINTS
            for s in SIDES
        }
        out: dict[str, float] = {}
        for j in BODY_JOINTS:
            keys = [f"world:{s}_{j}" for s in SIDES if seen[j, s]]
            turned = [abs(turn.get(k, math.nan) - rest.get(k, math.nan)) for k in keys]
            turned = [d for d in turned if math.isfinite(d)]
            out[j] = max(turned) if turned else math.nan
        return out

    def _seen(self, cycle: Cycle) -> Seen:
        """How the repetition just completed was seen (`Seen`), from its frames."""
        return Seen(
            view_of(self._rep_ratios),
            _posture_trunk_deg(self._rep_trunk_deg, cycle, self.counter.direction),
            self._joint_turns(),
        )

    def _not_lying(self, seen: Seen) -> str:
        """Why a repetition of an exercise done lying does not count when it was
        seen upright from the side, or "" (`upright_side_on`)."""
        ex = self.exercise
        if ex.posture not in LYING or not upright_side_on(seen, ex.views):
            return ""
        return (
            f"not counted: the trunk was upright ({seen.trunk_from_vertical_deg:.0f} deg from "
            f"vertical), seen from the side; this exercise is done lying ({ex.posture})"
        )

    def _moved(self, cycle: Cycle) -> str:
        """Why the repetition just completed does not count, or "" if it does."""
        self._anchors.restrict(
            cycle.rest_deg * self.counter.direction, START_SHARE * self.counter.floor_deg
        )
        turned = self._anchors.turned_deg()
        if turned > TRUNK_MAX_TURN_DEG:
            return (
                f"not counted: the body turned {turned:.0f} deg (more than "
                f"{TRUNK_MAX_TURN_DEG:g}); this exercise is done in place"
            )
        worst = self._anchors.travel()
        if worst is None or worst[1] <= ANCHOR_MAX_TRAVEL:
            return ""
        name = NAMES[worst[0]].replace("_", " ")
        return (
            f"not counted: the {name} moved {worst[1]:.1f} trunk lengths "
            f"(more than {ANCHOR_MAX_TRAVEL}); this exercise is done in place"
        )

    def _track_drift(self, track: _RuleTrack, angles: Mapping[str, float], name: str) -> None:
        if name in angles:
            values = {"": float(angles[name])}
        else:
            sides = (self.side,) if self.side in SIDES else SIDES
            values = {s: self._side_value(angles, name, s) for s in sides}
        for key, value in values.items():
            if not math.isfinite(value):
                continue
            start = track.start.setdefault(key, value)
            track.max_drift = max(track.max_drift, abs(value - start))

    def _track_rules(self, angles: Mapping[str, float]) -> None:
        cycle = self.counter.cycle
        for rule in self.exercise.form_rules:
            track = self._rules.setdefault(rule.id, _RuleTrack())
            value = self._rule_value(angles, rule.angle)
            if math.isfinite(value):
                track.max_value = max(track.max_value, value)
            if rule.kind == "drift":
                self._track_drift(track, angles, rule.angle)
            if cycle is not None and cycle.new_extreme:
                track.at_peak = value
                left = self._side_value(angles, rule.angle, "left")
                right = self._side_value(angles, rule.angle, "right")
                track.asym_at_peak = abs(left - right)

    # ------------------------------------------------------------------ per repetition

    def _result(self, c: Cycle) -> RepResult:
        faults: list[str] = []
        for rule in self.exercise.form_rules:
            track = self._rules.get(rule.id, _RuleTrack())
            broken = (
                (rule.kind == "max_angle" and track.max_value > rule.limit_deg)
                or (rule.kind == "min_angle" and track.at_peak < rule.limit_deg)
                or (rule.kind == "asymmetry" and track.asym_at_peak > rule.limit_deg)
                or (rule.kind == "drift" and track.max_drift > rule.limit_deg)
            )
            if broken:
                faults.append(rule.id)
        excursion = c.v_max - c.v_min
        quality = 100.0
        if excursion < self.target_rom_deg:
            faults.append("short_range")
            quality -= ROM_PENALTY * min(
                1.0, (self.target_rom_deg - excursion) / self.target_rom_deg
            )
        duration = c.t_end_s - c.t_start_s
        if duration < TEMPO_FAST_SHARE * sum(self.tempo_s):
            faults.append("too_fast")
            quality -= TEMPO_PENALTY
        quality -= FAULT_PENALTY * sum(1 for f in faults if f not in ("short_range", "too_fast"))
        unseen, frames = self._unseen
        if frames and unseen > UNSEEN_MAX_SHARE * frames:
            faults.append(UNSEEN)
        arrive, depart, frame = c.turning(self.exercise.phases.direction)
        return RepResult(
            index=len(self.reps) + 1,
            side=self.side,
            t_start_s=c.t_start_s,
            t_peak_s=arrive,
            t_end_s=c.t_end_s,
            frame_peak=frame,
            rom_min_deg=c.v_min,
            rom_max_deg=c.v_max,
            excursion_deg=excursion,
            duration_s=duration,
            up_s=arrive - c.t_start_s,
            hold_s=depart - arrive,
            down_s=c.t_end_s - depart,
            quality=round(max(0.0, min(100.0, quality))),
            faults=tuple(faults),
            target_rom_deg=self.target_rom_deg,
        )

    def _emit(self, t_s: float, key: str) -> list[Event]:
        """The cue `key`, unless it was given within `feedback_interval_s`. Either
        way the repetition has had its cue: one per repetition, so two cues
        never compete."""
        self._cued = True
        if t_s - self._last_cue_t.get(key, -math.inf) < self.feedback_interval_s:
            return []
        self._last_cue_t[key] = t_s
        return [Feedback(t_s, key, self.exercise.feedback[key])]

    def _cue_during(self, t_s: float, value: float) -> list[Event]:
        """A cue while the repetition is under way: a form rule broken now
        (max_angle, drift), or a turn short of the target range ("go deeper")."""
        feedback = self.exercise.feedback
        for rule in self.exercise.form_rules:
            track = self._rules.get(rule.id)
            if track is None or rule.message not in feedback:
                continue
            if (rule.kind == "max_angle" and track.max_value > rule.limit_deg) or (
                rule.kind == "drift" and track.max_drift > rule.limit_deg
            ):
                return self._emit(t_s, rule.message)
        c = self.counter.cycle
        direction = self.counter.direction
        if (
            c is not None
            and "rep.rom" in feedback
            and self.counter.state is State.TURNING
            and math.isfinite(value)
            and (c.extreme - value) * direction > max(5.0, 0.05 * (c.v_max - c.v_min))
            and c.v_max - c.v_min < self.target_rom_deg
        ):
            return self._emit(t_s, "rep.rom")  # turning back short of the target
        return []

    def _cues(self, t_s: float, rep: RepResult) -> list[Event]:
        """After a repetition that had no cue during it: the first fault that
        has a message (too fast, a rule judged at the turning point)."""
        messages = {r.id: r.message for r in self.exercise.form_rules}
        messages |= {"short_range": "rep.rom", "too_fast": "rep.tempo"}
        for fault in rep.faults:
            key = messages.get(fault)
            if key is not None and key in self.exercise.feedback:
                return self._emit(t_s, key)
        return []

    def _check_view(self, t_s: float, lm: np.ndarray, size: tuple[int, int]) -> list[Event]:
        ratio = float(width_to_trunk(lm[:, :2] * size))
        if not math.isfinite(ratio):
            return []
        self._view_ratios.append(ratio)
        if len(self._view_ratios) < VIEW_SAMPLES:
            return []
        self._view_done = True
        seen = view_of(self._view_ratios)
        views = self.exercise.views
        if view_fits(seen, views):
            return []
        text = (
            f"{self.exercise.name} is measured from the {' or '.join(views)}; "
            f"this video looks {'side-on' if seen == 'side' else 'front-on'}"
        )
        return [WrongView(t_s, views, seen, text)]

    def interrupt(self) -> None:
        """What the patient does next is unknown for a while (the live camera
        check paused counting: they left the picture): the repetition in
        progress, if any, is abandoned, and the rest is learned again once
        frames come, as after any gap."""
        self.counter.update(math.nan, math.nan, -1)

    def recheck_view(self) -> None:
        """Judge the camera view again from the next frames (a new exercise
        begins: the patient may have turned)."""
        self._view_ratios.clear()
        self._view_done = False

    def summary(self) -> Summary:
        """Counts, means and faults so far."""
        return summarise(self, self.reps)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a patient and therapist read at the end of a set or video."""

    exercise: str
    side: str
    reps: int
    partials: int
    rejected: int  # reached the turning zone but the body moved (RepRejected)
    mean_excursion_deg: float
    max_excursion_deg: float
    mean_duration_s: float
    mean_up_s: float
    mean_hold_s: float
    mean_down_s: float
    mean_quality: float
    faults: dict[str, int]
    mean_target_share: float = math.nan  # of the target range, repetitions seen whole
    target_rom_deg: float = math.nan
    signal: str = ""  # the signal counted with at the end, e.g. "knee_flexion (world)"


@dataclass(frozen=True, slots=True)
class Analysis:
    """The result of analysing a recorded video."""

    summary: Summary
    reps: tuple[RepResult, ...]
    events: tuple[Event, ...] = field(default_factory=tuple)


def summarise(engine: SignalEngine, reps: list[RepResult], signal: str = "") -> Summary:
    """Counts, means and faults of `reps`, counted by `engine`."""
    faults = Counter(f for r in reps for f in r.faults)

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else math.nan

    return Summary(
        exercise=engine.exercise.id,
        side=engine.side,
        reps=len(reps),
        partials=engine.partials,
        rejected=engine.rejected,
        mean_excursion_deg=mean([r.excursion_deg for r in reps]),
        max_excursion_deg=max((r.excursion_deg for r in reps), default=math.nan),
        mean_duration_s=mean([r.duration_s for r in reps]),
        mean_up_s=mean([r.up_s for r in reps]),
        mean_hold_s=mean([r.hold_s for r in reps]),
        mean_down_s=mean([r.down_s for r in reps]),
        mean_quality=mean([r.quality for r in reps]),
        faults=dict(faults),
        mean_target_share=mean([r.target_share for r in reps if r.rom_trusted]),
        target_rom_deg=engine.target_rom_deg,
        signal=signal or engine.exercise.signal_label,
    )


# A candidate signal replaces the one counting when it has counted at least this
# many more repetitions: one more can be a boundary effect (a recording that
# starts mid-movement is at rest for one signal's prior and not for the
# other's), two more is a movement one signal sees and the other does not.
SWITCH_LEAD = 2


class RepetitionEngine:
    """Repetitions, tempo, quality and cues for one exercise, on whichever of
    its candidate signals sees the movement.

    One `SignalEngine` per candidate (`Exercise.candidates`: the primary signal
    first, then the alternatives the exercise names) follows every frame. The
    primary counts first; a candidate takes over when, with both at rest, it has
    counted `SWITCH_LEAD` more repetitions than the one counting (a camera from
    the front hides knee flexion in the image plane, not in world space). At the
    switch its repetitions that overlap none already reported are counted then
    (`SignalChosen` says so), so the count does not depend on when the choice
    was made, and the live and offline drivers agree. Repetitions are numbered,
    and sets completed, here.

    side: "auto", "left", "right" (unilateral), ignored otherwise.
    target_rom_deg / tempo_s: the program's prescription, else the exercise's
        (a target applies to the candidates measuring the primary's angle; the
        others use their own, `Alternative.target_rom_deg`).
    reps_per_set: emit SetCompleted every that many repetitions.
    rest_s: the prescribed rest between sets: for that long after a set is
        completed, a movement counts only when it is like the patient's own
        repetitions (`RepetitionCounter.rest_between_sets`).
    calibration_deg: (rest, end) of the patient's own range on the primary
        signal, measured by the therapist: the counter starts from that rest and
        range instead of learning them (`Phases.counting`), and it is the target
        range unless one is prescribed. A calibrated exercise counts on its
        primary signal only: the calibration says nothing of the others.
    """

    def __init__(
        self,
        exercise: Exercise,
        *,
        side: str = "auto",
        target_rom_deg: float | None = None,
        tempo_s: tuple[float, float, float] | None = None,
        reps_per_set: int | None = None,
        rest_s: float = 0.0,
        feedback_interval_s: float = 3.0,
        calibration_deg: tuple[float, float] | None = None,
    ) -> None:
        self.exercise = exercise
        self.rest_s = rest_s
        variants = exercise.candidates()[: 1 if calibration_deg is not None else None]
        self.engines = [
            SignalEngine(
                v,
                side=side,
                target_rom_deg=target_rom_deg if v.signal_angle == exercise.signal_angle else None,
                tempo_s=tempo_s,
                feedback_interval_s=feedback_interval_s,
                calibration_deg=calibration_deg,
            )
            for v in variants
        ]
        self.active = 0
        self.reps_per_set = reps_per_set
        self.reps: list[RepResult] = []

    @property
    def counting(self) -> SignalEngine:
        """The candidate counting now."""
        return self.engines[self.active]

    @property
    def signal(self) -> str:
        """The signal counting now, e.g. `knee_flexion (world)`."""
        return self.counting.exercise.signal_label

    # What callers read of the signal counting now.
    counter = property(lambda self: self.counting.counter)
    target_rom_deg = property(lambda self: self.counting.target_rom_deg)
    last_signal_deg = property(lambda self: self.counting.last_signal_deg)
    rest_deg = property(lambda self: self.counting.rest_deg)
    side = property(lambda self: self.counting.side)
    partials = property(lambda self: self.counting.partials)
    rejected = property(lambda self: self.counting.rejected)
    direction = property(lambda self: self.counting.exercise.phases.direction)

    def step(
        self,
        t_s: float,
        frame: int,
        angles: Mapping[str, float],
        visibility: np.ndarray,
        image_landmarks: np.ndarray | None = None,
        size: tuple[int, int] | None = None,
        camera_xy: tuple[float, float] = (0.0, 0.0),
    ) -> list[Event]:
        """One frame, as `SignalEngine.step`; `angles` holds every candidate's
        signal (`Exercise.signal_key`)."""
        got: list[Event] = []
        for k, engine in enumerate(self.engines):
            seen = engine.step(t_s, frame, angles, visibility, image_landmarks, size, camera_xy)
            if k == self.active:
                got = seen
        events: list[Event] = []
        for event in got:
            if isinstance(event, RepStarted):
                events.append(RepStarted(event.t_s, len(self.reps) + 1))
            elif isinstance(event, RepCompleted):
                events += self._count(event.t_s, event.rep)
            else:
                events.append(event)
        return events + self._choose(t_s)

    def _count(self, t_s: float, rep: RepResult) -> list[Event]:
        rep = dataclasses.replace(rep, index=len(self.reps) + 1)
        self.reps.append(rep)
        events: list[Event] = [RepCompleted(t_s, rep)]
        if self.reps_per_set and len(self.reps) % self.reps_per_set == 0:
            events.append(SetCompleted(t_s, len(self.reps) // self.reps_per_set, self.reps_per_set))
            for engine in self.engines:  # rest between sets is rest
                engine.counter.rest_between_sets(t_s + self.rest_s)
        return events

    def _choose(self, t_s: float) -> list[Event]:
        """Switch to the candidate that sees the movement (see the class docstring)."""
        current = self.counting
        if len(self.engines) == 1 or current.counter.in_repetition:
            return []
        best = max(range(len(self.engines)), key=lambda k: (len(self.engines[k].reps), -k))
        chosen = self.engines[best]
        # A movement the current signal rejected (the body moved) was seen, not
        # missed: only what it did not see at all, or saw too small, is missed.
        seen = len(current.reps) + current.rejected
        if len(chosen.reps) < seen + SWITCH_LEAD or chosen.counter.in_repetition:
            return []
        previous = self.signal
        self.active = best
        missed = [
            r
            for r in chosen.reps
            if not any(r.t_start_s < o.t_end_s and o.t_start_s < r.t_end_s for o in self.reps)
        ]
        text = (
            f"counting on {self.signal} from now on: it saw {len(chosen.reps)} repetitions, "
            f"{previous} {len(current.reps)}; {len(missed)} counted now"
        )
        events: list[Event] = [SignalChosen(t_s, self.signal, previous, len(missed), text)]
        for rep in missed:
            events += self._count(t_s, rep)
        return events

    def interrupt(self) -> None:
        """`SignalEngine.interrupt` on every candidate signal."""
        for engine in self.engines:
            engine.interrupt()

    def recheck_view(self) -> None:
        """Judge the camera view again from the next frames (a new exercise
        begins: the patient may have turned)."""
        for engine in self.engines:
            engine.recheck_view()

    def seen_as_measured(self, rep: RepResult) -> bool:
        """Whether `rep`, judged on its own frames, was seen as this exercise
        is measured: from one of its views (`view_fits`) and in its posture
        (`posture_fits`). Not judged (a trunk unseen, a view between): it was."""
        for engine in (self.counting, *self.engines):
            if (seen := engine.rep_seen.get(rep.t_start_s)) is not None:
                return view_fits(seen.view, self.exercise.views) and posture_fits(
                    seen.trunk_from_vertical_deg, self.exercise.posture, self.exercise.views
                )
        return True

    def held_joint_moved(self, rep: RepResult, current: Exercise) -> str | None:
        """A joint this exercise holds still and `current` moves
        (`demonstration.held_joints`, `moved_joints`) that turned in `rep` by
        at least `HELD_MOVED_SHARE` of the repetition's own excursion: then the
        movement is `current`'s, whatever this exercise's angle did (a patient
        squatting with clasped hands bends the elbows as a wall push-up does,
        but a wall push-up keeps the knees straight). None when no such joint
        turned that far, or none was seen."""
        joints = held_joints(self.exercise) & moved_joints(current)
        for engine in (self.counting, *self.engines):
            if (seen := engine.rep_seen.get(rep.t_start_s)) is not None:
                limit = HELD_MOVED_SHARE * rep.excursion_deg
                return next(
                    (j for j in sorted(joints) if seen.turns_deg.get(j, math.nan) >= limit), None
                )
        return None

    def summary(self) -> Summary:
        """Counts, means and faults so far."""
        return summarise(self.counting, self.reps, self.signal)


# --------------------------------------------------------------------------- drivers


def _signal_keys(exercise: Exercise) -> list[tuple[str, str]]:
    """(space, kinematics name) of every candidate signal, every side."""
    out: list[tuple[str, str]] = []
    for v in exercise.candidates():
        sides = (None,) if v.laterality == "midline" else SIDES
        out += [(v.signal_space, v.angle_name(s)) for s in sides]
    return out


def _angle_space_tables(
    exercise: Exercise, image: np.ndarray, world: np.ndarray, width: int, height: int
) -> dict[str, np.ndarray]:
    """Needed angles (T,) by table key (`Exercise.signal_key`): every candidate
    signal in its space, the form rules' angles in the image plane."""
    from telerehab.pose.kinematics import angle_defs

    # the body's large joints for every exercise (`Seen.turns_deg`)
    wanted = _signal_keys(exercise) + [("world", f"{s}_{j}") for j in BODY_JOINTS for s in SIDES]
    for rule in exercise.form_rules:  # sided (knee_flexion) or not (trunk_lean)
        wanted += [("image", rule.angle)] + [("image", f"{s}_{rule.angle}") for s in SIDES]
    out: dict[str, np.ndarray] = {}
    for space, landmarks in (("image", image), ("world", world)):
        known = {d.name for d in angle_defs(space)}
        names = tuple(dict.fromkeys(n for sp, n in wanted if sp == space and n in known))
        if not names:
            continue
        size = {"width": width, "height": height} if space == "image" else {}
        table = compute_angles(landmarks, space, names=names, **size)
        prefix = "world:" if space == "world" else ""
        for n in names:
            out[prefix + n] = table[n]
    return out


# The drivers' smoothing: a One-Euro filter on the angles and on the image
# landmarks, causal, so that a recording analysed offline and the same frames
# streamed live give the engine the very same numbers.
MIN_CUTOFF_HZ = 1.5
BETA = 0.02


@dataclass(frozen=True, slots=True)
class Prepared:
    """What every exercise's feed of one sequence shares.

    image (T, 33, 4) / world (T, 33, 3): the landmarks, anatomically
    implausible frames (`pose.plausibility`) missing; xy (T, 33, 2): the image
    x/y smoothed causally (One-Euro), for the view and anchor checks.
    """

    image: np.ndarray
    world: np.ndarray
    xy: np.ndarray


def prepare_sequence(seq: PoseSequence) -> Prepared:
    """Mask implausible frames and smooth the image landmarks, as `LiveAnalyzer`
    does frame by frame."""
    seq = without_implausible(seq)
    xy = one_euro(seq.image[:, :, :2], seq.t_s, MIN_CUTOFF_HZ, BETA)
    return Prepared(seq.image, seq.world, xy)


class OfflineFeed:
    """One exercise's engine fed frame by frame from a whole sequence; the same
    numbers `LiveAnalyzer` computes for the same frames (`prepare_sequence`,
    shared by several feeds via `prepared`)."""

    def __init__(
        self,
        seq: PoseSequence,
        exercise: Exercise,
        prepared: Prepared | None = None,
        **options: Any,
    ) -> None:
        self.seq = seq
        self.exercise = exercise
        self.options = options
        self.prepared = prepared or prepare_sequence(seq)
        p = self.prepared
        raw = _angle_space_tables(exercise, p.image, p.world, seq.width, seq.height)
        self.tables = {
            name: one_euro(values, seq.t_s, MIN_CUTOFF_HZ, BETA) for name, values in raw.items()
        }
        self.engine = RepetitionEngine(exercise, **options)

    def reset(self) -> None:
        """A fresh engine: forget every repetition and state."""
        self.engine = RepetitionEngine(self.exercise, **self.options)

    def step(self, i: int) -> list[Event]:
        """Events caused by frame `i` of the sequence."""
        seq, p = self.seq, self.prepared
        angles = {n: float(v[i]) for n, v in self.tables.items()}
        landmarks = p.image[i].copy()
        landmarks[:, :2] = p.xy[i]
        camera_xy = (float(seq.camera_xy[i, 0]), float(seq.camera_xy[i, 1]))
        return self.engine.step(
            float(seq.t_s[i]), int(seq.index[i]), angles, p.image[i, :, 3],
            landmarks, (seq.width, seq.height), camera_xy,
        )  # fmt: skip

    def analysis(self, events: list[Event]) -> Analysis:
        """The engine's results so far, with `events`."""
        return Analysis(self.engine.summary(), tuple(self.engine.reps), tuple(events))


def analyze_sequence(seq: PoseSequence, exercise: Exercise, **options: Any) -> Analysis:
    """Offline driver: the engine frame by frame over a whole sequence.

    `options` go to `RepetitionEngine` (side, target_rom_deg, tempo_s, reps_per_set,
    calibration_deg).
    """
    feed = OfflineFeed(seq, exercise, **options)
    events: list[Event] = []
    for i in range(len(seq)):
        events += feed.step(i)
    return feed.analysis(events)


class LiveAnalyzer:
    """Streaming driver: one PoseFrame at a time, causal One-Euro smoothing."""

    def __init__(self, exercise: Exercise, **options: Any) -> None:
        """`options` go to `RepetitionEngine` (side, target_rom_deg, tempo_s, reps_per_set)."""
        self.engine = RepetitionEngine(exercise, **options)
        self.exercise = exercise
        self.options = options
        self._filter = OneEuroFilter(min_cutoff_hz=MIN_CUTOFF_HZ, beta=BETA)
        self._xy_filter = OneEuroFilter(min_cutoff_hz=MIN_CUTOFF_HZ, beta=BETA)
        self.last_angles: dict[str, float] = {}  # the smoothed angles of the last frame
        self.plausibility = PlausibilityCheck()

    def process(self, frame: PoseFrame) -> list[Event]:
        """Events caused by this frame (an implausible pose counts as not seen)."""
        frame = mask_implausible(frame, self.plausibility.check(frame))
        tables = _angle_space_tables(
            self.exercise, frame.image_landmarks[None], frame.world_landmarks[None],
            frame.width, frame.height,
        )  # fmt: skip
        names = list(tables)
        raw = np.array([tables[n][0] for n in names])
        smooth = self._filter(raw, frame.t_s)
        angles = dict(zip(names, (float(v) for v in smooth), strict=True))
        self.last_angles = angles
        landmarks = frame.image_landmarks.copy()
        landmarks[:, :2] = self._xy_filter(landmarks[:, :2], frame.t_s)
        return self.engine.step(
            frame.t_s, frame.index, angles, frame.image_landmarks[:, 3],
            landmarks, (frame.width, frame.height), frame.camera_xy,
        )  # fmt: skip

    def step(self, frame: PoseFrame) -> list[Event]:
        """`process`, under the name every feed of a `ProgramSession` has."""
        return self.process(frame)

    def reset(self) -> None:
        """A fresh engine (the smoothing goes on): forget every repetition and state."""
        self.engine = RepetitionEngine(self.exercise, **self.options)

    def analysis(self, events: list[Event]) -> Analysis:
        """The engine's results so far, with `events`."""
        return Analysis(self.engine.summary(), tuple(self.engine.reps), tuple(events))

    def summary(self) -> Summary:
        """Counts, means and faults so far."""
        return self.engine.summary()


def analyze_live(seq: PoseSequence, exercise: Exercise, **options: Any) -> Analysis:
    """Replay a recorded sequence through the streaming driver (for checks and tests)."""
    live = LiveAnalyzer(exercise, **options)
    events: list[Event] = []
    for frame in seq.frames():
        events += live.process(frame)
    return Analysis(live.summary(), tuple(live.engine.reps), tuple(events))
