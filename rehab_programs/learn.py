"""A new exercise from a demonstration: what moved, how far, how fast, what stayed.

A therapist records (or uploads) a few repetitions; `learn_exercise` finds:
- the signal: of every angle the kinematics table knows, the one whose
  repetitions are largest and most alike (the adaptive counter of
  `repetitions` is run on each candidate, with a floor of a quarter of its
  range; the score is the median excursion of the cycles it counts times
  1 - their coefficient of variation; at least two cycles are needed), and
  it must cover at least half the range of the angle that moved most (else
  what repeats is a side movement and the demonstration is refused);
- its direction and rest: the rest is where the signal sits at the start of
  the demonstration; the movement goes away from it;
- laterality: both sides moving alike (each at least half the other's
  excursion), or only one side seen (a side view), is bilateral; one side
  moving is unilateral; a trunk angle is midline;
- the view (front or side, from shoulder width against trunk length), the
  landmarks the angle needs, and anchors: up to two of ankles, knees, hips and
  shoulders (in that order) that travelled under half the engine's limit in
  the room (camera motion removed) during the whole demonstration;
- target range, tempo and duration bounds from the demonstrated cycles.

The result is an exercise document (the library's YAML schema) for the
therapist to review; it validates like any library file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

import numpy as np

from telerehab.errors import ProgramError
from telerehab.pose.estimator import PoseSequence
from telerehab.pose.filters import one_euro
from telerehab.pose.kinematics import ANGLE_NAMES, angle_defs, compute_angles
from telerehab.pose.landmarks import INDEX, MIDPOINT_OF, NAMES, trunk, width_to_trunk

from .engine import (
    ANCHOR_MAX_TRAVEL,
    BETA,
    FRONT_RATIO,
    MIN_CUTOFF_HZ,
    SIDE_RATIO,
    Prepared,
    prepare_sequence,
)
from .exercise import SIDES, ExerciseModel, exercise_from_model
from .repetitions import CountingModel, Cycle, RepetitionCounter

MIN_CYCLES = 2
MIN_VISIBILITY = 0.5
# Angles that judge a posture (a shrug), not a movement to count.
NOT_SIGNALS = frozenset({"ear_shoulder_angle"})
# An anchor candidate that travelled under half what the engine tolerates
# during a repetition stayed in place through the whole demonstration.
ANCHOR_TRAVEL = ANCHOR_MAX_TRAVEL / 2
ANCHOR_CANDIDATES = ("ankle", "knee", "hip", "shoulder")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One angle judged as the demonstration's signal."""

    base: str  # angle name without side
    side: str | None  # left, right, or None (the mean of both, or a midline angle)
    direction: int
    cycles: tuple[Cycle, ...]
    rest_deg: float
    excursions: tuple[float, ...]
    range_deg: float  # 5th-95th percentile range over the demonstration

    @property
    def score(self) -> float:
        if len(self.excursions) < MIN_CYCLES:
            return 0.0
        ex = np.asarray(self.excursions)
        cv = float(ex.std() / ex.mean()) if ex.mean() > 0 else 1.0
        return float(np.median(ex)) * max(0.0, 1.0 - cv)


def _cycles(
    values: np.ndarray, t_s: np.ndarray
) -> tuple[int, float, list[Cycle], list[float], float]:
    """Run the counter on `values` with the direction taken from where the
    signal sits at the start: (direction, rest, completed cycles, excursions, range)."""
    finite = values[np.isfinite(values)]
    if finite.size < 10:
        return 1, math.nan, [], [], 0.0
    lo, hi = np.percentile(finite, [5, 95])
    start = float(np.median(finite[: max(5, len(finite) // 20)]))  # where it sits at first
    direction = 1 if abs(start - lo) <= abs(start - hi) else -1
    span = float(hi - lo)
    prior = (start, start + direction * span)  # rest where it starts, the range it covers
    model = CountingModel(direction, max(6.0, 0.25 * span), 0.3, 30.0, prior_deg=prior)
    counter = RepetitionCounter(model)
    cycles: list[Cycle] = []
    excursions: list[float] = []
    for i, v in enumerate(values):
        out = counter.update(float(t_s[i]), float(v), i)
        if out is not None and out[0] == "completed":
            cycles.append(out[1])
            excursions.append(out[1].excursion_deg)
    return direction, start, cycles, excursions, span


def candidates(seq: PoseSequence, prepared: Prepared | None = None) -> list[Candidate]:
    """Every angle of the image-plane table judged as the signal, best first
    (`prepared`: `prepare_sequence(seq)`, when the caller has it)."""
    p = prepared or prepare_sequence(seq)
    # A landmark the model barely sees (the far side's ear in a side view) would
    # make its angle swing: such frames are missing here.
    table = compute_angles(
        p.image, "image", width=seq.width, height=seq.height, min_visibility=MIN_VISIBILITY
    )
    out: list[Candidate] = []
    bases = sorted(
        {n.split("_", 1)[1] if n.startswith(SIDES) else n for n in table.names} - NOT_SIGNALS
    )
    for base in bases:
        sided = f"left_{base}" in table.names
        options: list[tuple[str | None, np.ndarray]] = []
        if sided:
            left, right = table[f"left_{base}"], table[f"right_{base}"]
            options += [("left", left), ("right", right)]
            both = np.stack([left, right])
            seen = np.isfinite(both).sum(axis=0)
            mean = np.where(seen > 0, np.nansum(both, axis=0) / np.maximum(seen, 1), np.nan)
            options.append((None, mean))
        elif base in table.names:
            options.append((None, table[base]))
        for side, raw in options:
            values = one_euro(raw, seq.t_s, MIN_CUTOFF_HZ, BETA)  # as the engine's drivers
            direction, rest, cycles, excursions, span = _cycles(values, seq.t_s)
            out.append(
                Candidate(base, side, direction, tuple(cycles), rest, tuple(excursions), span)
            )
    return sorted(out, key=lambda c: c.score, reverse=True)


def _view(seq: PoseSequence) -> str:
    """front or side: the engine's ratio of shoulder width to trunk length,
    split half-way between its front and side limits."""
    ratios = width_to_trunk(seq.image[:, :, :2] * (seq.width, seq.height))
    ratios = ratios[np.isfinite(ratios)]
    ratio = float(np.median(ratios)) if ratios.size else math.nan
    return "front" if math.isfinite(ratio) and ratio > (FRONT_RATIO + SIDE_RATIO) / 2 else "side"


def _needed(base: str) -> list[str]:
    """The landmark names (side-less, `side_` prefixed) the angle `base` reads."""
    name = f"left_{base}" if f"left_{base}" in ANGLE_NAMES else base
    spaces = ("image", "world")
    d = next(a for s in spaces for a in angle_defs(s) if a.name == name)
    names: list[str] = []
    for idx in (*d.points, *d.plane):
        if idx < 0:  # no point
            continue
        for n in MIDPOINT_OF.get(idx, (NAMES[idx],) if idx < len(NAMES) else ()):
            names.append(n.replace("left_", "side_", 1) if n.startswith("left_") else n)
    return list(dict.fromkeys(names))


def _anchors(seq: PoseSequence, p: Prepared, laterality: str, side: str | None) -> list[str]:
    """Up to two candidates that stayed in place in the room (camera motion removed)."""
    xy = (p.xy - seq.camera_xy[:, None, :]) * (seq.width, seq.height)
    trunks = np.linalg.norm(trunk(xy), axis=-1)
    trunks = trunks[np.isfinite(trunks)]
    length = float(np.median(trunks)) if trunks.size else math.nan
    found: list[str] = []
    for part in ANCHOR_CANDIDATES:
        sides = (side,) if laterality == "unilateral" and side else SIDES
        travels = []
        for s in sides:  # the sides seen in at least half the frames
            track = xy[:, INDEX[f"{s}_{part}"]]
            track = track[np.isfinite(track).all(axis=1)]
            if len(track) >= len(xy) / 2 and length > 0:
                lo, hi = np.percentile(track, [10, 90], axis=0)
                travels.append(float(np.max(hi - lo)) / length)
        if travels and max(travels) < ANCHOR_TRAVEL:
            found.append(f"side_{part}")
        if len(found) == 2:
            break
    return found


def learn_exercise(
    seq: PoseSequence,
    exercise_id: str,
    name: str,
    *,
    instructions: str | None = None,
    origin: str = "a demonstration",
) -> dict:
    """An exercise document (the library's YAML schema, as a dict) learned from
    `seq`, a demonstration of at least two repetitions. Raises ProgramError
    naming `origin` when no angle repeats."""
    if len(seq) < 2:
        raise ProgramError(f"{origin}: no video frames to learn from")
    prepared = prepare_sequence(seq)
    found = candidates(seq, prepared)
    if not found:
        raise ProgramError(f"{origin}: no body was seen in this demonstration")
    best = found[0]
    mover = max(found, key=lambda c: c.range_deg)
    if best.score <= 0 or best.range_deg < 0.5 * mover.range_deg:
        # Nothing repeats, or what repeats is a small side movement while what
        # moved most did not repeat.
        raise ProgramError(
            f"{origin}: {mover.base} moved most ({mover.range_deg:.0f} deg) but completed "
            f"{len(mover.excursions)} repetition(s) from rest and back; demonstrate at least "
            f"{MIN_CYCLES}, starting at rest"
        )
    sided = f"left_{best.base}" in ANGLE_NAMES
    if not sided:
        laterality, side = "midline", None
    else:
        per_side = {c.side: c for c in found if c.base == best.base and c.side in SIDES}
        ex = {s: (median(c.excursions) if c.excursions else 0.0) for s, c in per_side.items()}
        seen = [s for s, c in per_side.items() if math.isfinite(c.rest_deg)]
        big = max(ex.values())
        # Seen from the side, the far limb is hidden: whether it moved cannot be
        # told, and the engine's bilateral signal (the mean of the sides seen)
        # serves either way.
        both = len(seen) < 2 or min(ex.values()) >= 0.5 * big
        laterality = "bilateral" if both else "unilateral"
        side = max(ex, key=ex.get) if laterality == "unilateral" else None
    chosen = best
    if sided and laterality == "unilateral":
        chosen = next(c for c in found if c.base == best.base and c.side == side)
    cycles = chosen.cycles
    excursions = [c.excursion_deg for c in cycles]
    rest = float(median(c.rest_deg for c in cycles))
    peak = float(median(c.extreme for c in cycles))
    phases = [c.turning(chosen.direction) for c in cycles]
    up = median(a - c.t_start_s for c, (a, _d, _f) in zip(cycles, phases, strict=True))
    hold = median(d - a for a, d, _f in phases)
    down = median(c.t_end_s - d for c, (_a, d, _f) in zip(cycles, phases, strict=True))
    durations = [c.t_end_s - c.t_start_s for c in cycles]
    needed = _needed(best.base)
    span = abs(peak - rest)
    doc = {
        "id": exercise_id,
        "name": name,
        "instructions": instructions
        or f"Learned from {origin}: review, then describe the movement for the patient.",
        "views": [_view(seq)],
        "laterality": laterality,
        "signal": {"angle": best.base, "space": "image"},
        "alternatives": [
            {
                "signal": {"angle": best.base, "space": "world"},
                "why": (
                    "The same angle in world space, for a patient filmed from another side "
                    "than this demonstration: the image-plane angle is foreshortened when "
                    "the movement turns towards the camera."
                ),
            }
        ],
        "phases": {
            "direction": "increase" if chosen.direction > 0 else "decrease",
            "rest_deg": round(rest, 1),
            "peak_deg": round(peak, 1),
            "min_excursion_deg": max(6, round(0.25 * span)),
        },
        "rep_duration": {
            "min_s": round(max(0.3, 0.5 * min(durations)), 2),
            "max_s": round(min(60.0, 3.0 * max(durations)), 2),
        },
        "target_rom": {
            "min_deg": round(min(180.0, float(np.median(excursions))), 1),
            "max_deg": round(min(180.0, max(excursions)), 1),
            "source": f"demonstrated ({origin}, {len(cycles)} repetitions)",
        },
        "tempo": {
            "up_s": round(max(0.1, up), 2),
            "hold_s": round(max(0.0, hold), 2),
            "down_s": round(max(0.1, down), 2),
        },
        "form_rules": [],
        "landmarks": needed,
        "anchors": _anchors(seq, prepared, laterality, side),
        "min_visibility": 0.5,
        "feedback": {
            "rep.rom": "Move a little further if it is comfortable.",
            "rep.tempo": "Slow down and control the movement.",
        },
    }
    # The document must load like any library file.
    exercise_from_model(ExerciseModel.model_validate(doc), origin)
    return doc
