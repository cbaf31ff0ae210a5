"""What a therapist acts on: ROM over weeks against the target band, adherence,
pain before and after, quality, and alerts. Pure functions over stored rows.

Weeks are ISO weeks (Monday to Sunday, UTC). Alerts:
- `pain_rising`: the mean pain before exercise over the last 3 sessions is at
  least 2 points (of 10) above the 3 sessions before them; or the latest
  session whose pain after was given ended at least 3 points more painful
  than it began;
- `rom_falling`: an exercise's mean ROM in its latest week is more than 10%
  (and at least 5 deg) below the week before;
- `missed_sessions`: the last complete week had fewer sessions than prescribed.

A session is one that took place (complete, partial or interrupted); pain-diary
entries are none (not counted for adherence), but their pain is a pain reading.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from telerehab.rehab_programs.library import Library, default_library

from .tables import ENDED, ExerciseSession, as_utc

PAIN_RISE = 2.0
PAIN_FLARE = 3
ROM_DROP_SHARE = 0.10
ROM_DROP_MIN_DEG = 5.0


@dataclass(frozen=True, slots=True)
class WeekValue:
    week: str  # ISO week, e.g. 2026-W47
    value: float | None
    n: int


@dataclass(frozen=True, slots=True)
class SessionValue:
    """One session's mean of a measure, for a plot's point."""

    session_id: int
    day: str  # ISO date (UTC)
    week: str  # its ISO week
    value: float
    n: int  # repetitions behind it


@dataclass(frozen=True, slots=True)
class RomTrend:
    exercise_id: str
    target_min_deg: float
    target_max_deg: float
    weeks: tuple[WeekValue, ...]  # mean excursion per week
    sides: tuple[str, ...] = ()  # the sides measured (left, right, both), sorted
    sessions: tuple[SessionValue, ...] = ()  # each session's mean excursion, oldest first


@dataclass(frozen=True, slots=True)
class Adherence:
    week: str
    done: int  # sessions that took place (diary entries are none)
    prescribed: int
    partial: int = 0  # of those done, how many not in full (partial or interrupted)


@dataclass(frozen=True, slots=True)
class PainPoint:
    session_id: int
    day: str
    before: int | None
    after: int | None
    change: int | None
    diary: bool = False  # from a pain-diary entry, not an exercise session


@dataclass(frozen=True, slots=True)
class Alert:
    """`message` in English; `key` and `values` say the same for a message
    catalogue (`alert.<key>` with `{value}` placeholders; weeks as ISO weeks,
    days as ISO dates, for the reader's own date format)."""

    kind: str
    message: str
    key: str = ""
    values: dict[str, float | int | str] = field(default_factory=dict)
    # the sessions behind it (ids, oldest first), and a stable id a therapist
    # acknowledges it by: the same evidence, the same id (a new flare, a later
    # week, another exercise: a new alert)
    sessions: tuple[int, ...] = ()
    id: str = ""


@dataclass(frozen=True, slots=True)
class Trends:
    patient_id: int
    weeks: tuple[str, ...]
    rom: tuple[RomTrend, ...]
    adherence: tuple[Adherence, ...]
    pain: tuple[PainPoint, ...]
    quality: tuple[WeekValue, ...]
    alerts: tuple[Alert, ...] = field(default_factory=tuple)


def week_words(week: str) -> str:
    """`2026-W48` as a person says it: `week of 23 Nov 2026` (its Monday)."""
    monday = datetime.strptime(f"{week}-1", "%G-W%V-%u").date()
    return f"week of {monday.day} {monday:%b %Y}"


def iso_week(t: datetime | date) -> str:
    """`2026-W47` for a time (UTC) or a date."""
    if isinstance(t, datetime):
        t = as_utc(t).date()
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


def _week_range(first: date, last: date) -> list[str]:
    start = first - timedelta(days=first.weekday())
    weeks = []
    while start <= last:
        weeks.append(iso_week(start))
        start += timedelta(days=7)
    return weeks


def _day(t: datetime) -> date:
    return as_utc(t).date()


def compute_trends(
    patient_id: int,
    sessions: list[ExerciseSession],
    program: dict | None,
    *,
    today: date | None = None,
    library: Library | None = None,
) -> Trends:
    """Trends of one patient from their sessions (with repetitions loaded) and
    the program document in force (for targets and sessions per week)."""
    library = library or default_library()
    today = today or datetime.now(UTC).date()
    done_sessions = [x for x in sessions if x.status in ENDED]
    with_pain = [x for x in sessions if x.status in ENDED or x.status == "diary"]
    first = min((_day(x.started_at) for x in sessions), default=today)
    weeks = _week_range(first, today)

    targets: dict[str, tuple[float, float]] = {}
    per_week_prescribed = int(program.get("sessions_per_week", 0)) if program else 0
    for item in (program or {}).get("exercises", []):
        ex = library.get(item["exercise"])
        lo, hi = ex.target_rom_deg
        if item.get("target_rom_deg") is not None:
            lo = float(item["target_rom_deg"])
        targets[ex.id] = (lo, max(lo, hi))

    rom: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_session: dict[str, list[SessionValue]] = defaultdict(list)
    sides: dict[str, set[str]] = defaultdict(set)
    quality: dict[str, list[float]] = defaultdict(list)
    for x in done_sessions:
        wk = iso_week(x.started_at)
        mine: dict[str, list[float]] = defaultdict(list)
        for r in x.repetitions:
            if r.rom_trusted:  # a range measured with a landmark unseen is not a trend
                rom[r.exercise_id][wk].append(r.excursion_deg)
                mine[r.exercise_id].append(r.excursion_deg)
                sides[r.exercise_id].add(r.side)
            quality[wk].append(float(r.quality))
        day = _day(x.started_at).isoformat()
        for ex_id, values in mine.items():
            mean = float(sum(values) / len(values))
            per_session[ex_id].append(SessionValue(x.id, day, wk, mean, len(values)))
    rom_trends = []
    for ex_id in sorted(rom):
        lo, hi = targets.get(ex_id) or library.get(ex_id).target_rom_deg
        rom_trends.append(RomTrend(ex_id, lo, hi, tuple(
            WeekValue(w, _mean(rom[ex_id].get(w, [])), len(rom[ex_id].get(w, []))) for w in weeks
        ), tuple(sorted(sides[ex_id])), tuple(per_session[ex_id])))  # fmt: skip
    done_per_week: dict[str, int] = defaultdict(int)
    partial_per_week: dict[str, int] = defaultdict(int)
    for x in done_sessions:
        done_per_week[iso_week(x.started_at)] += 1
        # an interrupted session was cut short: not done in full, as a partial one
        partial_per_week[iso_week(x.started_at)] += x.status != "complete"
    adherence = tuple(
        Adherence(w, done_per_week.get(w, 0), per_week_prescribed, partial_per_week.get(w, 0))
        for w in weeks
    )
    pain = tuple(
        PainPoint(
            x.id, _day(x.started_at).isoformat(), x.pain_before, x.pain_after,
            None if x.pain_before is None or x.pain_after is None else x.pain_after - x.pain_before,
            x.status == "diary",
        )
        for x in with_pain
    )  # fmt: skip
    quality_weeks = tuple(WeekValue(w, _mean(quality.get(w, [])), len(quality.get(w, [])))
                          for w in weeks)  # fmt: skip
    # alerts judge exercise sessions: a later diary entry neither raises nor hides a flare
    names = {t.exercise_id: library.get(t.exercise_id).name for t in rom_trends
             if t.exercise_id in library}  # fmt: skip
    held: dict[tuple[str, str], list[int]] = defaultdict(list)  # (exercise or "", week) -> ids
    for x in done_sessions:
        wk = iso_week(x.started_at)
        held["", wk].append(x.id)
        for ex_id in sorted({r.exercise_id for r in x.repetitions if r.rom_trusted}):
            held[ex_id, wk].append(x.id)
    alerts = _alerts(tuple(p for p in pain if not p.diary), rom_trends, adherence, today, names,
                     held)  # fmt: skip
    return Trends(patient_id, tuple(weeks), tuple(rom_trends), adherence, pain, quality_weeks,
                  alerts)  # fmt: skip


def alert_subject(alert: Alert) -> tuple[int | None, str | None]:
    """What `alert` is about, as (session id, exercise id), as its id names it:
    a pain alert its latest session, a falling range its exercise; a week of
    missed sessions neither."""
    if alert.kind == "pain_rising":
        return (alert.sessions[-1] if alert.sessions else None), None
    exercise = alert.values.get("exercise")
    return None, exercise if isinstance(exercise, str) else None


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _alerts(
    pain: tuple[PainPoint, ...],
    rom: list[RomTrend],
    adherence: tuple[Adherence, ...],
    today: date,
    names: dict[str, str] | None = None,
    held: dict[tuple[str, str], list[int]] | None = None,
) -> tuple[Alert, ...]:
    """Alerts in words a therapist reads: exercise names, weeks by the date
    they start (`names`: exercise names by id), each with the sessions behind
    it (`held`: session ids by exercise, or "", and week)."""
    names = names or {}
    held = held or {}
    alerts: list[Alert] = []
    rated = [p for p in pain if p.before is not None]
    before = [p.before for p in rated]
    if len(before) >= 6:
        recent, earlier = before[-3:], before[-6:-3]
        if sum(recent) - sum(earlier) >= 3 * PAIN_RISE:  # whole numbers: no rounding error
            rose = {"from": round(sum(earlier) / 3, 1), "to": round(sum(recent) / 3, 1)}
            behind = tuple(p.session_id for p in rated[-6:])
            alerts.append(Alert("pain_rising", (
                f"pain before exercise rose from {sum(earlier) / 3:.1f} to "
                f"{sum(recent) / 3:.1f} /10 over the last 6 sessions"
            ), "painRose", rose, behind, f"pain_rose:{behind[-1]}"))  # fmt: skip
    # the latest session whose pain after was given (an interrupted one has
    # none: it does not hide the flare of the session before it)
    told = [p for p in pain if p.change is not None]
    if told and told[-1].change >= PAIN_FLARE:
        p = told[-1]
        alerts.append(Alert("pain_rising", (
            f"the session of {p.day} ended at {p.after}/10 pain, {p.change} more than it began"
        ), "painFlare", {"day": p.day, "after": p.after or 0, "change": p.change},
            (p.session_id,), f"pain_flare:{p.session_id}"))  # fmt: skip
    for trend in rom:
        seen = [w for w in trend.weeks if w.value is not None]
        if len(seen) >= 2:
            prev, last = float(seen[-2].value or 0.0), float(seen[-1].value or 0.0)
            drop = prev - last
            if drop >= ROM_DROP_MIN_DEG and drop > ROM_DROP_SHARE * prev:
                fell = {"exercise": trend.exercise_id, "from": round(prev), "to": round(last),
                        "week_from": seen[-2].week, "week_to": seen[-1].week}  # fmt: skip
                ex_id = trend.exercise_id
                behind = (*held.get((ex_id, seen[-2].week), []),
                          *held.get((ex_id, seen[-1].week), []))  # fmt: skip
                alerts.append(Alert("rom_falling", (
                    f"{names.get(ex_id, ex_id)}: mean range of motion "
                    f"fell from {prev:.0f}° to {last:.0f}° ({week_words(seen[-2].week)} "
                    f"to {week_words(seen[-1].week)})"
                ), "romFell", fell, behind, f"rom_falling:{ex_id}:{seen[-1].week}"))  # fmt: skip
    this_week = iso_week(today)
    complete = [a for a in adherence if a.week != this_week]
    if complete and complete[-1].prescribed and complete[-1].done < complete[-1].prescribed:
        a = complete[-1]
        alerts.append(Alert("missed_sessions", (
            f"{a.done} of {a.prescribed} prescribed sessions done in the "
            f"{week_words(a.week)}"
        ), "missed", {"done": a.done, "prescribed": a.prescribed, "week": a.week},
            tuple(held.get(("", a.week), [])), f"missed_sessions:{a.week}"))  # fmt: skip
    return tuple(alerts)
