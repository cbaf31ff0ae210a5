"""What the repetition engine reports, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RepResult:
    """One completed repetition.

    Times are seconds from the start of the video or session. rom_min/max_deg
    are the extremes of the primary signal during the repetition, excursion_deg
    their difference. t_peak_s / frame_peak: arrival at the turning point (first
    sample within max(5 deg, 5% of the excursion) of the extreme); hold_s: time
    spent within that band; up_s: from leaving rest to arrival; down_s: from
    leaving the band back to rest. quality is 0-100; faults are stable ids of
    the form rules broken, plus `short_range` (the excursion fell short of the
    target: the repetition still counts), `too_fast`, and `landmarks_unseen`
    (a landmark the exercise needs was out of frame or unseen for part of the
    repetition: its range of motion is not trusted, and trends leave it out).
    target_rom_deg: the target the repetition was judged against.
    """

    index: int
    side: str
    t_start_s: float
    t_peak_s: float
    t_end_s: float
    frame_peak: int
    rom_min_deg: float
    rom_max_deg: float
    excursion_deg: float
    duration_s: float
    up_s: float
    hold_s: float
    down_s: float
    quality: int
    faults: tuple[str, ...] = field(default_factory=tuple)
    target_rom_deg: float = float("nan")

    @property
    def target_share(self) -> float:
        """The share of the target range reached (1.0: the target; NaN: no target)."""
        if not self.target_rom_deg > 0:
            return float("nan")
        return self.excursion_deg / self.target_rom_deg

    @property
    def rom_trusted(self) -> bool:
        """False when the landmarks it needs were not all seen (see `faults`)."""
        return UNSEEN not in self.faults


UNSEEN = "landmarks_unseen"


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: something happened at `t_s`."""

    t_s: float


@dataclass(frozen=True, slots=True)
class RepStarted(Event):
    index: int


@dataclass(frozen=True, slots=True)
class RepCompleted(Event):
    rep: RepResult


@dataclass(frozen=True, slots=True)
class RepRejected(Event):
    """A movement that reached the turning zone but does not count: the body
    moved (walking, jumping, turning) instead of exercising in place."""

    reason: str


@dataclass(frozen=True, slots=True)
class SetCompleted(Event):
    set_index: int
    reps: int


@dataclass(frozen=True, slots=True)
class Feedback(Event):
    """A patient cue: a stable, translatable key and its English text."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class TrackingLost(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class TrackingRegained(Event):
    pass


@dataclass(frozen=True, slots=True)
class WrongView(Event):
    expected: tuple[str, ...]
    seen: str
    text: str


@dataclass(frozen=True, slots=True)
class SignalChosen(Event):
    """The engine counts with another of the exercise's signals from now on
    (`Exercise.alternatives`): `signal` (e.g. `knee_flexion (world)`) saw more
    repetitions than `previous`; `credited` of its repetitions that the
    previous signal missed were counted at the switch."""

    signal: str
    previous: str
    credited: int
    text: str


@dataclass(frozen=True, slots=True)
class ExerciseStarted(Event):
    """The patient is on the program's exercise `index` (0-based) from now on."""

    index: int
    exercise_id: str


@dataclass(frozen=True, slots=True)
class ExerciseCompleted(Event):
    """Every prescribed set of exercise `index` is done (more repetitions still
    count, until the patient moves on)."""

    index: int
    exercise_id: str


@dataclass(frozen=True, slots=True)
class RepWithdrawn(Event):
    """A repetition counted for one exercise was the next exercise's movement:
    it no longer counts there (`ProgramSession`)."""

    rep: RepResult
