"""The repetition state machine: one signal in, repetitions out, with the rest
position, the noise and the patient's range learned from the signal itself.

A repetition is one cycle of the signal away from the patient's rest position
and back: an excursion larger than a noise floor, within the exercise's
duration bounds. Nothing depends on reaching the library's range, so a patient
whose range is reduced is counted like anyone else (the engine then reports
how much of the target each repetition reached). The method, its constants and
the failure cases it handles are written down in `docs/counting.md`.

Working in `u = direction * signal` (the movement always increases u):

- rest `R`: the lowest u since the last repetition, re-learned as the mean of
  any still second (u spread under a quarter of the floor) in the rest state,
  so a patient who settles into a new rest posture is followed (a slow
  movement spreads more and is not taken for one). It is frozen while a
  repetition is under way. It is confirmed once u has been still there for
  half a second, has come down to it and turned, or (at the very start) lies
  on the rest side of the exercise's prior: a recording, or a track regained,
  that begins mid-movement does not count its first half-cycle.
- noise `sigma`: the jitter of u, from the running mean absolute second
  difference at rest (white noise of sd s gives s*sqrt(6); a smooth movement
  adds little), weighted by what was observed (not pulled towards 0 at the
  start); the floor is `max(min_excursion_deg, NOISE_K * sigma)`.
- a repetition starts when u rises by half the floor from its lowest point
  since the last repetition ended (from rest, or from a partial return); it turns when u
  falls back from its furthest point by half the floor; it completes when u
  comes back within `RETURN_SHARE` of its own excursion from rest. The
  hysteresis is therefore relative to each repetition's own range.
- it counts when its excursion reaches the floor and at least `LEARNED_SHARE`
  of the patient's typical repetition (the median of the last ones counted),
  it started from a rest on the rest side of the exercise's prior (a reduced
  range shortens how far a patient goes, not where they rest), and its
  duration is within bounds; otherwise it is reported as a partial.

Every state change depends only on the samples so far (causal), so the live
and the offline drivers count the same way. A missing sample (NaN: not seen)
abandons the repetition in progress and the rest is learned again.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from statistics import median

START_SHARE = 0.5  # of the floor: leaving rest by this much starts a repetition
RETURN_SHARE = 0.35  # of the repetition's own excursion: back within this is back at rest
LEARNED_SHARE = 1 / 3  # of the typical excursion: smaller movements are partials
LEARNED_REPS = 5  # repetitions the typical excursion is the median of
# Between sets (`rest_between_sets`) a movement counts only when it is like the
# patient's own repetitions: at least this share of the typical excursion, twice
# the share asked during a set. Shaking out the arms, reaching for a drink or
# settling into a chair stays under it; the next set started early does not.
BREAK_SHARE = 2 / 3
NOISE_K = 8.0  # floor in sd of the rest jitter: beyond the +-4 sd that jitter reaches
CONFIRM_S = 0.5  # still this long (spread under half the floor): the rest is confirmed
RELEARN_S = 1.0  # still this long (spread under a quarter of the floor): rest re-learned
NOISE_TAU_S = 2.0  # time constant of the jitter estimate


class State(Enum):
    UNKNOWN = "unknown"
    REST = "rest"
    MOVING = "moving"
    TURNING = "turning"


@dataclass(frozen=True, slots=True)
class CountingModel:
    """What the counter needs of an exercise.

    direction: +1 when the movement increases the signal, -1 when it decreases it.
    min_excursion_deg: the smallest excursion that is a repetition of this
        exercise whatever the measured jitter (the absolute part of the floor).
    min_s / max_s: a repetition's duration bounds.
    rest_deg / range_deg: an explicit calibration (the therapist's measured rest
        and span): the rest to start from and the typical excursion, instead of
        learning them. NaN: learn both from the recording.
    prior_deg: (rest, turning point) of a typical patient: what to expect
        before anything is learned (see `plausible_rest`); never a gate.
    """

    direction: int
    min_excursion_deg: float
    min_s: float
    max_s: float
    rest_deg: float = math.nan
    range_deg: float = math.nan
    prior_deg: tuple[float, float] = (math.nan, math.nan)

    def plausible_rest(self, value: float, *, strict: bool = True) -> bool:
        """The prior: `value` lies on the rest side of the midway point between a
        typical patient's rest and turning point (`prior_deg`). A reduced range
        shortens how far a patient goes, not where they rest: a repetition
        starts from such a rest, and a recording that starts there can be taken
        to start at rest. Without a prior: False when `strict`, else True."""
        rest, peak = self.prior_deg
        if not (math.isfinite(rest) and math.isfinite(peak)):
            return not strict
        return (value - (rest + peak) / 2) * self.direction <= 0


@dataclass(slots=True)
class Cycle:
    """A repetition in progress (mutable while it lasts)."""

    t_start_s: float
    t_peak_s: float = math.nan
    frame_peak: int = -1
    extreme: float = math.nan  # furthest value in the movement's direction
    v_min: float = math.inf
    v_max: float = -math.inf
    t_end_s: float = math.nan
    rest_deg: float = math.nan  # the rest it started from (signal units)
    from_confirmed_rest: bool = True  # False: the recording began mid-movement
    new_extreme: bool = field(default=False)  # the last sample set a new extreme
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t_s, value, frame)

    @property
    def excursion_deg(self) -> float:
        """How far the signal went from the rest it started from."""
        return abs(self.extreme - self.rest_deg)

    def turning(self, direction: int) -> tuple[float, float, int]:
        """(arrival s, departure s, arrival frame) at the turning point: the first
        and last samples within max(5 deg, 5% of the excursion) of the extreme.
        On a plateau this is where the plateau is reached, not its last maximum."""
        band = max(5.0, 0.05 * (self.v_max - self.v_min))
        near = [s for s in self.samples if (self.extreme - s[1]) * direction <= band]
        return near[0][0], near[-1][0], near[0][2]


class RepetitionCounter:
    """Feed (t_s, value, frame) samples in time order; get outcomes back."""

    def __init__(self, model: CountingModel) -> None:
        self.model = model
        self.direction = model.direction
        self.state = State.UNKNOWN
        self.cycle: Cycle | None = None
        self.typical: deque[float] = deque(maxlen=LEARNED_REPS)  # excursions counted
        if math.isfinite(model.range_deg):
            self.typical.append(abs(model.range_deg))
        self._rest = model.rest_deg * model.direction  # R, in u units (NaN: learn it)
        self._last_rest_t = math.nan
        self._window: deque[tuple[float, float]] = deque()  # (t_s, u) at rest, the last RELEARN_S
        self._recent: deque[float] = deque(maxlen=2)  # the last two u values
        self._abs_d2 = 0.0  # running weighted sum of |second difference| of u at rest
        self._noise_w = 0.0  # ... and the weight observed so far (1 - the share of the prior 0)
        self._last_t = math.nan
        # The lowest u since the rest state began: a repetition starts when u
        # leaves it, so one that follows without a full return still starts.
        self._valley = math.nan
        # The rest is confirmed once u has been still there, or has come down to
        # it and turned: a recording that starts mid-movement does not count its
        # first half-cycle as a repetition.
        self._confirmed = False
        self._came_down = False
        self.break_until_s = -math.inf  # see `rest_between_sets`

    def rest_between_sets(self, until_s: float) -> None:
        """The patient rests between sets until `until_s`: a movement that starts
        before then counts only at `BREAK_SHARE` of the typical excursion."""
        self.break_until_s = until_s

    # ------------------------------------------------------------------ learned values

    @property
    def rest_value_deg(self) -> float:
        """The learned rest position in signal units (NaN before any sample)."""
        return self._rest * self.direction if math.isfinite(self._rest) else math.nan

    @property
    def noise_deg(self) -> float:
        """The measured jitter at rest (standard deviation, signal units; 0
        before any was measured). The running mean starts from nothing: it is
        divided by the weight observed (as a bias-corrected moving average),
        so the first seconds are not taken for a steadier signal than it is."""
        if self._noise_w <= 0:
            return 0.0
        return self._abs_d2 / self._noise_w * math.sqrt(math.pi / 2) / math.sqrt(6)

    @property
    def floor_deg(self) -> float:
        """The smallest excursion that counts, before the learned range applies."""
        return max(self.model.min_excursion_deg, NOISE_K * self.noise_deg)

    @property
    def typical_excursion_deg(self) -> float:
        """The patient's typical excursion so far (NaN before the first repetition)."""
        return median(self.typical) if self.typical else math.nan

    @property
    def count_threshold_deg(self) -> float:
        """The excursion a movement needs to count now (more between sets)."""
        c = self.cycle
        share = BREAK_SHARE if c is not None and c.t_start_s < self.break_until_s else LEARNED_SHARE
        learned = share * self.typical_excursion_deg if self.typical else 0.0
        return max(self.floor_deg, learned)

    @property
    def in_repetition(self) -> bool:
        """A movement is under way that is already large enough to count (a
        start on jitter or a small dip is not one yet)."""
        c = self.cycle
        if c is None:
            return False
        return (c.extreme - c.rest_deg) * self.direction >= self.count_threshold_deg

    # ------------------------------------------------------------------ per sample

    def update(self, t_s: float, value: float, frame: int) -> tuple[str, Cycle] | None:
        """Advance by one sample. Returns None, or (outcome, cycle) with outcome
        one of "started", "completed", "partial", "too_short", "too_long",
        "abandoned"."""
        if not math.isfinite(value):
            cycle, self.cycle = self.cycle, None
            self.state = State.UNKNOWN
            self._window.clear()
            self._recent.clear()
            return ("abandoned", cycle) if cycle is not None else None
        u = value * self.direction
        dt = t_s - self._last_t if math.isfinite(self._last_t) else 0.0
        self._last_t = t_s
        try:
            return self._advance(t_s, u, value, frame, dt)
        finally:
            self._recent.append(u)

    def _advance(
        self, t_s: float, u: float, value: float, frame: int, dt: float
    ) -> tuple[str, Cycle] | None:
        if self.state is State.UNKNOWN:
            self.state = State.REST
            # After a gap the patient may have moved: rest is learned again from
            # here (a calibrated rest stays the starting point).
            calibrated = self.model.rest_deg * self.direction
            self._rest = min(calibrated, u) if math.isfinite(calibrated) else u
            self._valley = u
            self._came_down = False
            self._confirmed = math.isfinite(calibrated) or self.model.plausible_rest(value)
            self._at_rest(t_s, u, dt)
            return None
        if self.state is State.REST:
            self._valley = min(self._valley, u)
            if u - self._valley <= START_SHARE * self.floor_deg:
                self._at_rest(t_s, u, dt)
                return None
            self.state = State.MOVING
            self.cycle = Cycle(
                t_start_s=self._last_rest_t,
                rest_deg=self.rest_value_deg,
                from_confirmed_rest=self._confirmed,
            )
            self.cycle.v_min = self.cycle.v_max = self.rest_value_deg
            self._observe(t_s, value, frame)
            return ("started", self.cycle)
        cycle = self.cycle
        assert cycle is not None  # MOVING and TURNING always hold a cycle
        self._observe(t_s, value, frame)
        if t_s - cycle.t_start_s > self.model.max_s:
            # No repetition of this exercise lasts this long: the patient is no
            # longer at the rest this movement left (sat down, moved the chair,
            # turned, or the signal moves with another exercise). The movement
            # ends uncounted now, not at a return that may never come, and the
            # rest is learned again from the next sample, as after a gap.
            outcome = self._finish(t_s, "too_long")
            self.state = State.UNKNOWN
            return outcome
        excursion = cycle.extreme * self.direction - self._rest
        half_floor = START_SHARE * self.floor_deg
        if self.state is State.MOVING and cycle.extreme * self.direction - u >= half_floor:
            self.state = State.TURNING
        if u - self._rest > max(RETURN_SHARE * excursion, 0.5 * half_floor):
            return None
        if (
            excursion < self.count_threshold_deg
            or not cycle.from_confirmed_rest
            or not self.model.plausible_rest(cycle.rest_deg, strict=False)
        ):
            return self._finish(t_s, "partial")
        if t_s - cycle.t_start_s < self.model.min_s:
            return self._finish(t_s, "too_short")
        self.typical.append(excursion)
        return self._finish(t_s, "completed")

    def _at_rest(self, t_s: float, u: float, dt: float) -> None:
        """Learn the rest position and the jitter from a sample at rest."""
        self._last_rest_t = t_s
        settling = u < self._rest  # still on the way down to rest: motion, not jitter
        if settling:
            self._came_down = True
        elif self._came_down and self._recent and u > self._recent[-1]:
            self._confirmed = True  # came down to rest and turned
        self._rest = min(self._rest, u)
        h = self._recent
        if not settling and len(h) == 2 and dt > 0:
            # White noise of sd s gives a second difference of sd s*sqrt(6); a smooth
            # movement adds little to it. Mean absolute value -> sd: * sqrt(pi/2).
            a = 1.0 - math.exp(-dt / NOISE_TAU_S)
            self._abs_d2 += a * (abs(u - 2 * h[-1] + h[-2]) - self._abs_d2)
            self._noise_w += a * (1.0 - self._noise_w)
        w = self._window
        w.append((t_s, u))
        while w and t_s - w[0][0] > RELEARN_S:
            w.popleft()
        recent = [x for t, x in w if t_s - t <= CONFIRM_S]
        if t_s - w[0][0] >= CONFIRM_S * 0.95 and max(recent) - min(recent) < 0.5 * self.floor_deg:
            self._confirmed = True  # still at rest
        if t_s - w[0][0] >= RELEARN_S * 0.95:
            values = [x for _t, x in w]
            if max(values) - min(values) < 0.25 * self.floor_deg:
                self._rest = self._valley = sum(values) / len(values)
                w.clear()

    def _observe(self, t_s: float, value: float, frame: int) -> None:
        c = self.cycle
        assert c is not None
        c.samples.append((t_s, value, frame))
        c.v_min = min(c.v_min, value)
        c.v_max = max(c.v_max, value)
        further = value * self.direction
        c.new_extreme = not math.isfinite(c.extreme) or further > c.extreme * self.direction
        if c.new_extreme:
            c.extreme = value
            c.t_peak_s = t_s
            c.frame_peak = frame

    def _finish(self, t_s: float, outcome: str) -> tuple[str, Cycle]:
        cycle = self.cycle
        assert cycle is not None
        cycle.t_end_s = t_s
        self.cycle = None
        self.state = State.REST
        self._last_rest_t = t_s
        self._valley = cycle.samples[-1][1] * self.direction
        self._window.clear()
        return outcome, cycle
