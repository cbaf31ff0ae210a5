"""What the repetition engine reports, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _doc(text: str, digits: int | None = None, chars: int | None = None, **default: Any) -> Any:
    """A RepResult field's record: what it holds, in words with its unit (the
    exports' data dictionary), the decimals it is exported with, and for text
    its longest length in storage; `default`/`default_factory` as `field`'s."""
    return field(metadata={"doc": text, "digits": digits, "chars": chars}, **default)


@dataclass(frozen=True, slots=True)
class RepResult:
    """One completed repetition: the one definition of a repetition record.

    Storage (`server/tables.Repetition`), the API (`server/schemas.RepetitionOut`),
    the CSV exports and their data dictionary, the live messages and the JSON
    report are all derived from these fields and their `metadata` (`doc`, the
    decimals `digits`, the storage length `chars` of text). A new field is this
    one change plus a database migration (a test compares the two).

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

    index: int = _doc("the repetition within the exercise, from 1")
    side: str = _doc("the side measured: left, right, or both", chars=8)
    t_start_s: float = _doc("start of the repetition, seconds from the start of the recording", 2)
    t_peak_s: float = _doc("the turning point, seconds", 2)
    t_end_s: float = _doc("end of the repetition, seconds", 2)
    frame_peak: int = _doc("the recording's frame at the turning point (-1: not known)")
    rom_min_deg: float = _doc("smallest joint angle in the repetition, degrees", 1)
    rom_max_deg: float = _doc("largest joint angle, degrees", 1)
    excursion_deg: float = _doc("range of motion (largest - smallest angle), degrees", 1)
    duration_s: float = _doc("duration of the repetition, seconds", 2)
    up_s: float = _doc("time moving away from rest, seconds", 2)
    hold_s: float = _doc("time held at the turning point, seconds", 2)
    down_s: float = _doc("time returning to rest, seconds", 2)
    quality: int = _doc("movement quality score, 0 to 100")
    faults: tuple[str, ...] = _doc(
        "faults found, ;-separated ids: the exercise's form rules, short_range (short of the "
        "target), too_fast, landmarks_unseen (range not trusted)",
        default_factory=tuple,
    )
    target_rom_deg: float = _doc(
        "the target range the repetition was judged against, degrees (empty: none)",
        1,
        default=float("nan"),
    )

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

# What records derive from a repetition's fields (the properties above): the
# name, what it holds, the decimals it is exported with.
REP_DERIVED: dict[str, tuple[str, int | None]] = {
    "target_share": ("excursion_deg / target_rom_deg (1.0: the target reached)", 3),
    "rom_trusted": ("false: a landmark the repetition needs was unseen, so its range is "
                    "left out of trends and alerts", None),
}  # fmt: skip


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
