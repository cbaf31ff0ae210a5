"""Exercise definitions: the YAML schema (pydantic, at the edge) and the frozen
dataclasses the engine uses.

An exercise names its primary signal (an angle of `telerehab.pose.kinematics`),
the direction of the movement with priors and a noise floor, duration and
tempo targets, the target range of motion with its clinical source, form
rules, the landmarks it needs and its patient-facing feedback messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from telerehab.errors import ProgramError
from telerehab.pose.kinematics import ANGLE_NAMES
from telerehab.pose.landmarks import NAMES

from .demonstration import JOINTS, POSTURES, Demonstration, JointMove, fixed_indices
from .documents import closest, load_yaml, validate
from .repetitions import CountingModel

View = Literal["side", "front", "above", "back"]
Laterality = Literal["bilateral", "unilateral", "midline"]
SIDES = ("left", "right")
_OTHER = {"left": "right", "right": "left"}
MIN_CALIBRATED_SPAN_DEG = 10.0  # a smaller range cannot be told from jitter


# --------------------------------------------------------------------------- YAML schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalModel(_Strict):
    angle: str = Field(description="angle name without side, e.g. knee_flexion; or trunk_lean")
    space: Literal["image", "world"] = "image"


class PhasesModel(_Strict):
    direction: Literal["increase", "decrease"] = Field(
        description="how the signal moves from the rest position towards the turning point"
    )
    rest_deg: float = Field(
        ge=-90, le=180, description="prior: where a typical patient's rest lies (not a gate)"
    )
    peak_deg: float = Field(
        ge=-90, le=180, description="prior: a typical turning point (not a gate)"
    )
    min_excursion_deg: float = Field(
        ge=2,
        le=90,
        description="the smallest excursion from rest that is a repetition, whatever the jitter",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PhasesModel:
        if (self.peak_deg - self.rest_deg) * (1 if self.direction == "increase" else -1) <= 0:
            raise ValueError(
                f"peak_deg ({self.peak_deg}) must lie beyond rest_deg ({self.rest_deg}) "
                f"in the direction {self.direction!r}"
            )
        return self


class DurationModel(_Strict):
    min_s: float = Field(gt=0, le=60)
    max_s: float = Field(gt=0, le=120)


class RomModel(_Strict):
    min_deg: float = Field(ge=0, le=180)
    max_deg: float = Field(ge=0, le=180)
    source: str = Field(min_length=3)


class TempoModel(_Strict):
    up_s: float = Field(gt=0, le=30)
    hold_s: float = Field(default=0, ge=0, le=60)
    down_s: float = Field(gt=0, le=30)


class AlternativeModel(_Strict):
    signal: SignalModel
    phases: PhasesModel | None = Field(
        default=None, description="priors in this signal's units; default: the primary's"
    )
    target_rom: RomModel | None = Field(
        default=None, description="needed when the angle differs from the primary's"
    )
    why: str = Field(
        min_length=20,
        description="what camera or body this signal survives that the primary does not",
    )


class FormRuleModel(_Strict):
    id: str
    kind: Literal["max_angle", "min_angle", "asymmetry", "drift"]
    angle: str
    limit_deg: float = Field(ge=0, le=180)
    message: str


class JointMoveModel(_Strict):
    joint: Literal[JOINTS]  # type: ignore[valid-type]
    side: Literal["both", "moving", "other"] = "both"
    from_deg: float = Field(ge=-180, le=180, description="at rest, from the body at attention")
    to_deg: float = Field(ge=-180, le=180, description="at the turning point")


class DemonstrationModel(_Strict):
    """The animated skeleton the patient sees (`rehab_programs.demonstration`)."""

    posture: Literal[POSTURES]  # type: ignore[valid-type]
    view: Literal["side", "front"]
    joints: list[JointMoveModel] = Field(min_length=1, max_length=12)
    fixed: list[str] = Field(
        default_factory=list,
        description="what stays in place (feet on the floor): ankle, moving_ankle, other_ankle",
    )


class ExerciseModel(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=2)
    instructions: str = Field(min_length=10)
    views: list[View] = Field(min_length=1)
    laterality: Laterality
    signal: SignalModel
    alternatives: list[AlternativeModel] = Field(
        default_factory=list,
        max_length=3,
        description="other signals of the same movement, for views or bodies the primary "
        "cannot see; the engine picks per recording (see `engine.RepetitionEngine`)",
    )
    phases: PhasesModel
    rep_duration: DurationModel
    target_rom: RomModel
    tempo: TempoModel
    form_rules: list[FormRuleModel] = Field(default_factory=list)
    landmarks: list[str] = Field(min_length=2)
    anchors: list[str] = Field(
        default_factory=list,
        description="landmarks that stay in place during a repetition (feet in a squat)",
    )
    min_visibility: float = Field(default=0.5, ge=0, le=1)
    feedback: dict[str, str]
    demonstration: DemonstrationModel | None = Field(
        default=None, description="how the skeleton on the patient's page shows the movement"
    )


# --------------------------------------------------------------------------- inside


@dataclass(frozen=True, slots=True)
class Phases:
    """How the primary signal moves, in degrees.

    direction: +1 when the movement increases the signal, -1 when it decreases it.
    rest_deg / peak_deg: priors, where a typical patient rests and turns. They
        never gate counting (the counter learns the patient's own rest and
        range, see `repetitions`); before anything is learned they say whether
        a recording starts at rest or mid-movement.
    min_excursion_deg: the absolute part of the counter's noise floor.
    """

    direction: int
    rest_deg: float
    peak_deg: float
    min_excursion_deg: float

    def calibrated_span(self, rest_deg: float, end_deg: float) -> float:
        """The span of a patient's calibrated range (rest to end) in the movement's
        direction; ValueError naming both when it is too small or backwards."""
        span = (end_deg - rest_deg) * self.direction
        if not (math.isfinite(span) and span >= MIN_CALIBRATED_SPAN_DEG):
            way = "above" if self.direction > 0 else "below"
            raise ValueError(
                f"calibration: the end of the range ({end_deg:g} deg) must lie at least "
                f"{MIN_CALIBRATED_SPAN_DEG:g} deg {way} its rest ({rest_deg:g} deg)"
            )
        return span

    def counting(
        self, min_s: float, max_s: float, calibration_deg: tuple[float, float] | None = None
    ) -> CountingModel:
        """The counter's model; `calibration_deg` (rest, end) is a patient's own
        range measured by the therapist: the rest to start from and the typical
        excursion, instead of learning them from the recording."""
        prior = (self.rest_deg, self.peak_deg)
        if calibration_deg is None:
            return CountingModel(
                self.direction, self.min_excursion_deg, min_s, max_s, prior_deg=prior
            )
        rest_deg = calibration_deg[0]
        span = self.calibrated_span(*calibration_deg)
        # A span measured by the therapist is this patient's range: a floor above
        # half of it would refuse the repetitions it describes.
        floor = min(self.min_excursion_deg, span / 2)
        return CountingModel(self.direction, floor, min_s, max_s, rest_deg, span, prior)


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another signal of the same movement (`Exercise.alternatives`): `angle` in
    `space`, with its own priors and target range, and `why` it survives a
    camera or body that the primary signal does not."""

    angle: str
    space: str
    phases: Phases
    target_rom_deg: tuple[float, float]
    why: str


@dataclass(frozen=True, slots=True)
class FormRule:
    """A fault when `angle` passes `limit_deg` during a repetition.

    max_angle: fault when the angle exceeds the limit; min_angle: when it stays
    below it at the turning point; asymmetry: when left and right differ by
    more than the limit at the turning point; drift: when the angle moves more
    than the limit away from its value at the start of the repetition (an
    elbow leaving the side during a curl, a shoulder hiked during abduction).
    """

    id: str
    kind: str
    angle: str
    limit_deg: float
    message: str


@dataclass(frozen=True, slots=True)
class Exercise:
    """A library exercise (see the module docstring)."""

    id: str
    name: str
    instructions: str
    views: tuple[str, ...]
    laterality: str
    signal_angle: str
    signal_space: str
    phases: Phases
    rep_min_s: float
    rep_max_s: float
    target_rom_deg: tuple[float, float]
    target_rom_source: str
    tempo_s: tuple[float, float, float]  # up, hold, down
    form_rules: tuple[FormRule, ...]
    landmarks: tuple[str, ...]
    min_visibility: float
    feedback: dict[str, str]
    anchors: tuple[str, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    demonstration: Demonstration | None = None

    @property
    def posture(self) -> str | None:
        """The posture the exercise is done in (standing, sitting, supine,
        prone; None: not stated), as its demonstration shows it."""
        return self.demonstration.posture if self.demonstration is not None else None

    def angle_name(self, side: str | None) -> str:
        """The kinematics-table name of the primary signal for `side`."""
        return self.signal_angle if side is None else f"{side}_{self.signal_angle}"

    def signal_key(self, side: str | None) -> str:
        """Where the primary signal of `side` is in the engine's angle table:
        its kinematics name, behind `world:` when it is measured in world space
        (the image-plane angle of the same name stays for the form rules)."""
        name = self.angle_name(side)
        return f"world:{name}" if self.signal_space == "world" else name

    @property
    def signal_label(self) -> str:
        """The primary signal in words a researcher reads: `knee_flexion (world)`."""
        return f"{self.signal_angle} ({self.signal_space})"

    def candidates(self) -> tuple[Exercise, ...]:
        """This exercise with its primary signal, then with each alternative
        signal as the primary: what the engine counts with, one per signal. A
        midline exercise's alternative that has sides (the hip angle of a
        crunch) is the mean of both sides, as for a bilateral exercise."""
        alone = replace(self, alternatives=())
        return (
            alone,
            *(
                replace(
                    alone,
                    signal_angle=a.angle,
                    signal_space=a.space,
                    phases=a.phases,
                    target_rom_deg=a.target_rom_deg,
                    laterality=(
                        "bilateral"
                        if self.laterality == "midline" and f"left_{a.angle}" in ANGLE_NAMES
                        else self.laterality
                    ),
                )
                for a in self.alternatives
            ),
        )

    def landmarks_for(self, side: str | None) -> tuple[str, ...]:
        """Landmark names needed on `side` (unsided names as they are)."""
        if side is None:
            return self.landmarks
        return tuple(n if not n.startswith("side_") else f"{side}_{n[5:]}" for n in self.landmarks)

    def anchors_for(self, side: str) -> tuple[str, ...]:
        """Anchor landmark names for the counted `side` (left, right, both or none).

        `side_X` is X of the counted side (both sides when both or none are
        counted); `other_X` is X of the opposite side of a one-sided exercise.
        """
        sides = (side,) if side in SIDES else SIDES
        out: list[str] = []
        for n in self.anchors:
            if n.startswith("side_"):
                out += [f"{s}_{n[5:]}" for s in sides]
            elif n.startswith("other_"):
                out += [f"{_OTHER[s]}_{n[6:]}" for s in sides] if side in SIDES else []
            else:
                out.append(n)
        return tuple(dict.fromkeys(out))


def _check_landmarks(origin: str, field: str, names: list[str], prefixes: tuple[str, ...]) -> None:
    """Every name is a landmark, or one with a side prefix (`side_knee`)."""
    known = [*NAMES, *(f"side_{n[5:]}" for n in NAMES if n.startswith("left_"))]
    for i, name in enumerate(names):
        real = name
        for prefix in prefixes:
            real = real.replace(prefix, "left_", 1)
        if real not in NAMES:
            raise ProgramError(
                f"{origin}: {field}[{i}]: unknown landmark {name!r}{closest(name, known)}"
            )


def exercise_from_model(m: ExerciseModel, origin: str) -> Exercise:
    """Check cross-references the schema cannot express, then freeze."""
    sided = m.laterality != "midline"
    angle = f"left_{m.signal.angle}" if sided else m.signal.angle
    if angle not in ANGLE_NAMES:
        bases = {n.split("_", 1)[1] if n.startswith(SIDES) else n for n in ANGLE_NAMES}
        hint = closest(m.signal.angle, bases)
        raise ProgramError(f"{origin}: signal.angle: unknown angle {m.signal.angle!r}{hint}")
    _check_landmarks(origin, "landmarks", m.landmarks, ("side_",))
    _check_landmarks(origin, "anchors", m.anchors, ("side_", "other_"))
    for i, name in enumerate(m.anchors):
        if name.startswith("other_") and m.laterality != "unilateral":
            raise ProgramError(
                f"{origin}: anchors[{i}]: {name!r} needs a unilateral exercise "
                f"(this one is {m.laterality})"
            )
    for i, rule in enumerate(m.form_rules):
        full = rule.angle if rule.angle in ANGLE_NAMES else f"left_{rule.angle}"
        if full not in ANGLE_NAMES:
            raise ProgramError(
                f"{origin}: form_rules[{i}].angle: unknown angle {rule.angle!r}"
                f"{closest(rule.angle, ANGLE_NAMES)}"
            )
        if rule.message not in m.feedback:
            raise ProgramError(
                f"{origin}: form_rules[{i}].message: {rule.message!r} has no text in feedback"
            )
    alternatives = tuple(_alternative(m, i, a, origin) for i, a in enumerate(m.alternatives))
    if m.rep_duration.min_s >= m.rep_duration.max_s:
        raise ProgramError(f"{origin}: rep_duration: min_s must be below max_s")
    return Exercise(
        id=m.id,
        name=m.name,
        instructions=m.instructions.strip(),
        views=tuple(m.views),
        laterality=m.laterality,
        signal_angle=m.signal.angle,
        signal_space=m.signal.space,
        phases=_phases(m.phases),
        rep_min_s=m.rep_duration.min_s,
        rep_max_s=m.rep_duration.max_s,
        target_rom_deg=(m.target_rom.min_deg, m.target_rom.max_deg),
        target_rom_source=m.target_rom.source,
        tempo_s=(m.tempo.up_s, m.tempo.hold_s, m.tempo.down_s),
        form_rules=tuple(
            FormRule(r.id, r.kind, r.angle, r.limit_deg, r.message) for r in m.form_rules
        ),
        landmarks=tuple(m.landmarks),
        min_visibility=m.min_visibility,
        feedback=dict(m.feedback),
        anchors=tuple(m.anchors),
        alternatives=alternatives,
        demonstration=_demonstration(m, origin),
    )


def _demonstration(m: ExerciseModel, origin: str) -> Demonstration | None:
    """Check the demonstration's view against the exercise's and its fixed names."""
    d = m.demonstration
    if d is None:
        return None
    if d.view not in m.views:
        raise ProgramError(
            f"{origin}: demonstration.view: {d.view!r} is not one of this exercise's "
            f"views {m.views}"
        )
    for i, name in enumerate(d.fixed):
        try:
            fixed_indices((name,))
        except KeyError:
            parts = [n[5:] for n in NAMES if n.startswith("left_")]
            raise ProgramError(
                f"{origin}: demonstration.fixed[{i}]: unknown landmark or part {name!r}"
                f"{closest(name, parts)}"
            ) from None
    return Demonstration(
        posture=d.posture,
        view=d.view,
        joints=tuple(JointMove(j.joint, j.side, j.from_deg, j.to_deg) for j in d.joints),
        fixed=tuple(d.fixed),
    )


def _phases(m: PhasesModel) -> Phases:
    return Phases(
        1 if m.direction == "increase" else -1, m.rest_deg, m.peak_deg, m.min_excursion_deg
    )


def _alternative(m: ExerciseModel, i: int, a: AlternativeModel, origin: str) -> Alternative:
    """Check one alternative signal: a known angle, not the primary again, and
    its own priors and target when it measures another angle."""
    where = f"{origin}: alternatives[{i}]"
    if not {a.signal.angle, f"left_{a.signal.angle}"} & set(ANGLE_NAMES):
        bases = {n.split("_", 1)[1] if n.startswith(SIDES) else n for n in ANGLE_NAMES}
        hint = closest(a.signal.angle, bases)
        raise ProgramError(f"{where}.signal.angle: unknown angle {a.signal.angle!r}{hint}")
    same_angle = a.signal.angle == m.signal.angle
    if same_angle and a.signal.space == m.signal.space:
        raise ProgramError(f"{where}.signal: the same as the primary signal")
    if (a.phases is None or a.target_rom is None) and not same_angle:
        raise ProgramError(
            f"{where}: {a.signal.angle!r} is not the primary's angle ({m.signal.angle!r}): "
            "it needs its own phases and target_rom"
        )
    rom = a.target_rom or m.target_rom
    return Alternative(
        angle=a.signal.angle,
        space=a.signal.space,
        phases=_phases(a.phases or m.phases),
        target_rom_deg=(rom.min_deg, rom.max_deg),
        why=" ".join(a.why.split()),
    )


def load_exercise(path: str | Path) -> Exercise:
    """Read, validate and freeze one exercise file."""
    origin = str(path)
    return exercise_from_model(validate(ExerciseModel, load_yaml(path), origin), origin)
