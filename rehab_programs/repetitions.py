"""The repetition state machine: one signal in, repetitions out.

States: UNKNOWN (start, or after tracking was lost: wait for the rest zone),
REST, MOVING (left the rest zone, turning zone not reached yet), TURNING
(inside or past the turning zone, waiting to come back to rest). A repetition
counts when the signal goes rest -> turning zone -> rest within the allowed
duration. The gap between the two zones is the hysteresis: jitter around one
threshold cannot start or finish a repetition. A movement that returns to rest
without reaching the turning zone is a partial (reported, not counted); a
missing sample (NaN: not seen) abandons the repetition in progress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from .exercise import Phases


class State(Enum):
    UNKNOWN = "unknown"
    REST = "rest"
    MOVING = "moving"
    TURNING = "turning"


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
    new_extreme: bool = field(default=False)  # the last sample set a new extreme
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t_s, value, frame)

    def turning(self, direction: int) -> tuple[float, float, int]:
        """(arrival s, departure s, arrival frame) at the turning point: the first
        and last samples within max(5 deg, 5% of the excursion) of the extreme.
        On a plateau this is where the plateau is reached, not its last maximum."""
        band = max(5.0, 0.05 * (self.v_max - self.v_min))
        near = [s for s in self.samples if (self.extreme - s[1]) * direction <= band]
        return near[0][0], near[-1][0], near[0][2]


class RepetitionCounter:
    """Feed (t_s, value, frame) samples in time order; get outcomes back."""

    def __init__(self, phases: Phases, min_s: float, max_s: float) -> None:
        self.phases = phases
        self.min_s = min_s
        self.max_s = max_s
        self.state = State.UNKNOWN
        self.cycle: Cycle | None = None
        self._last_rest_t = math.nan
        # The furthest rest-side value since the last repetition: the position the
        # next one starts from, so its range of motion counts from there.
        self._rest_extreme = math.nan

    @property
    def rest_value_deg(self) -> float:
        """The furthest rest-side value since the last repetition (NaN before any)."""
        return self._rest_extreme

    def update(self, t_s: float, value: float, frame: int) -> tuple[str, Cycle] | None:
        """Advance by one sample. Returns None, or (outcome, cycle) with outcome
        one of "started", "completed", "partial", "too_short", "too_long",
        "abandoned"."""
        ph = self.phases
        if not math.isfinite(value):
            cycle, self.cycle = self.cycle, None
            self.state = State.UNKNOWN
            return ("abandoned", cycle) if cycle is not None else None
        if self.state is State.UNKNOWN:
            if ph.at_rest(value):
                self.state = State.REST
                self._last_rest_t = t_s
                self._rest_extreme = value
            return None
        if self.state is State.REST:
            if ph.at_rest(value):
                self._last_rest_t = t_s
                if (value - self._rest_extreme) * ph.direction < 0:
                    self._rest_extreme = value
                return None
            self.state = State.MOVING
            self.cycle = Cycle(t_start_s=self._last_rest_t)
            self.cycle.v_min = self.cycle.v_max = self._rest_extreme
            self._observe(t_s, value, frame)
            return ("started", self.cycle)
        cycle = self.cycle
        assert cycle is not None  # MOVING and TURNING always hold a cycle
        self._observe(t_s, value, frame)
        if self.state is State.MOVING:
            if ph.at_peak(value):
                self.state = State.TURNING
            elif ph.at_rest(value):
                return self._finish(t_s, "partial")
            return None
        if ph.at_rest(value):
            duration = t_s - cycle.t_start_s
            if duration < self.min_s:
                return self._finish(t_s, "too_short")
            if duration > self.max_s:
                return self._finish(t_s, "too_long")
            return self._finish(t_s, "completed")
        return None

    def _observe(self, t_s: float, value: float, frame: int) -> None:
        c = self.cycle
        assert c is not None
        c.samples.append((t_s, value, frame))
        c.v_min = min(c.v_min, value)
        c.v_max = max(c.v_max, value)
        further = value * self.phases.direction
        c.new_extreme = not math.isfinite(c.extreme) or further > c.extreme * self.phases.direction
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
        self._rest_extreme = cycle.samples[-1][1]
        return outcome, cycle
