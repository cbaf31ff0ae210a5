"""Demo data for `telerehab serve --demo`: a therapist, a patient, a program and
four weeks of sessions whose measurements come from really analysing the
shared exercise clips, their range scaled along a recovery curve (`SCHEDULE`,
said in each session's notes). Every demo row is flagged `is_demo` and the demo users
are named as such.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from telerehab.errors import ConfigError
from telerehab.pose.estimator import PoseSequence

from . import accounts, movement, prescriptions, records
from .db import Database
from .tables import User

logger = logging.getLogger(__name__)

THERAPIST = ("therapist@demo.telerehab", "Demo Therapist (demo data)", "demo-therapist")
PATIENT = ("patient@demo.telerehab", "Demo Patient (demo data)", "demo-patient")
CLIPS = {  # exercise -> clip in the shared data folder
    "squat": "squat_side_yuyoujiang.mp4",
    "elbow_flexion": "bicep_curl_side_medflex.mp4",
    "shoulder_abduction": "shoulder_abduction_front_sagor.mp4",
}
PROGRAM = {
    "title": "Knee and shoulder, weeks 1-4 (demo)",
    "sessions_per_week": 3,
    "therapist_notes": "Demo program. Stop if pain rises above 5/10.",
    "exercises": [
        {"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90, "rest_s": 60},
        {"exercise": "elbow_flexion", "sets": 2, "reps": 2, "side": "left"},
        {"exercise": "shoulder_abduction", "sets": 1, "reps": 6},
    ],
}
# Four weeks of a recovery as the dashboard should show one. Per session:
# (days ago, pain before, pain after, effort, share of the measured range,
# sets done of those prescribed). The range rises from 60% of what the clips
# measured to all of it, pain eases, then flares in the last week with a
# session cut short (partial) and fewer sessions; one day is a pain-diary
# entry only.
SCHEDULE = [
    (27, 5, 5, 6, 0.60, 1.0), (25, 5, 4, 6, 0.63, 1.0), (22, 4, 4, 5, 0.68, 1.0),
    (20, 4, 3, 5, 0.72, 1.0), (18, 4, 3, 5, 0.76, 1.0), (15, 3, 3, 4, 0.80, 1.0),
    (13, 3, 2, 4, 0.85, 1.0), (11, 2, 2, 4, 0.90, 1.0), (8, 2, 2, 4, 0.95, 1.0),
    (4, 4, 6, 6, 0.85, 0.5), (1, 5, 7, 7, 0.78, 1.0),
]  # fmt: skip
DIARY = (6, 3, 3, "Knee sore after gardening; no exercise today.")  # days ago, pain, pain, note


def _scaled(rep, share: float, target: float):
    """`rep` with its excursion scaled to `share` (the demo's recovery curve):
    the range from its start position, the short-range fault and quality
    re-judged against `target` (the prescription's), which it then carries,
    as the engine judges them."""
    from telerehab.rehab_programs.engine import ROM_PENALTY

    excursion = rep.excursion_deg * share
    faults = [f for f in rep.faults if f != "short_range"]
    penalty = ROM_PENALTY * min(1.0, max(0.0, (target - excursion) / target))
    before = ROM_PENALTY * min(1.0, max(0.0, (target - rep.excursion_deg) / target))
    if excursion < target:
        faults.append("short_range")
    return replace(
        rep, rom_max_deg=rep.rom_min_deg + excursion, excursion_deg=excursion,
        target_rom_deg=target, faults=tuple(faults),
        quality=round(max(0.0, min(100.0, rep.quality + before - penalty))),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoLogins:
    therapist: tuple[str, str]
    patient: tuple[str, str]


def seed_demo(
    db: Database,
    data_dir: Path,
    *,
    variant: str = "full",
    progress: Callable[[str], None] = logger.info,
    poses: Callable[[Path], PoseSequence] | None = None,
) -> DemoLogins:
    """Create the demo accounts, program and sessions (once; a second call only
    returns the logins). Raises ConfigError naming `data_dir` if clips are missing.
    `poses` turns a clip into poses (default: the BlazePose `variant`)."""
    logins = DemoLogins(THERAPIST[::2], PATIENT[::2])
    with db.session() as s:
        if s.scalar(select(User.id).where(User.email == PATIENT[0])) is not None:
            return logins
    missing = [n for n in CLIPS.values() if not (data_dir / "clips" / n).is_file()]
    if missing:
        raise ConfigError(
            f"--demo analyses the shared clips, but {data_dir / 'clips'} lacks "
            f"{', '.join(missing)} (give the folder with --demo-data)"
        )
    analyses = _analyse(data_dir, poses or _estimator(variant), progress)
    with db.session() as s:
        therapist = accounts.create_user(s, THERAPIST[0], THERAPIST[1], "therapist", THERAPIST[2],
                                         is_demo=True)  # fmt: skip
        patient = accounts.create_user(s, PATIENT[0], PATIENT[1], "patient", PATIENT[2],
                                       is_demo=True)  # fmt: skip
        accounts.link(s, therapist.id, patient.id)
        version = prescriptions.create_program(s, patient.id, PROGRAM, therapist.id)
        now = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
        for days, before, after, rpe, share, done in SCHEDULE:
            session = records.start_session(
                s, patient.id, program_version_id=version.id, device="demo: shared clips",
                source="video", pain_before=before, started_at=now - timedelta(days=days),
                is_demo=True,
            )  # fmt: skip
            for item in PROGRAM["exercises"]:
                analysis, moved = analyses[item["exercise"]]
                target = analysis.summary.target_rom_deg
                if item.get("target_rom_deg"):
                    target = item["target_rom_deg"]
                reps = [_scaled(r, share, target) for r in analysis.reps]
                records.save_movement(s, session, item["exercise"], *moved)
                for k in range(1, max(1, round(item["sets"] * done)) + 1):
                    for rep in reps:
                        records.add_repetition(s, session, item["exercise"], rep, set_index=k)
                    records.add_set(s, session, item["exercise"], k, reps, item["reps"])
            records.end_session(
                s, session, "complete", pain_after=after, rpe=rpe,
                notes=f"demo data: the shared clips' measurements, range scaled to {share:.0%}",
                ended_at=session.started_at + timedelta(minutes=20),
            )  # fmt: skip
        days, before, after, note = DIARY
        records.record_diary(
            s, patient.id, program_version_id=version.id, pain_before=before, pain_after=after,
            notes=f"{note} (demo data)", started_at=now - timedelta(days=days), is_demo=True,
        )  # fmt: skip
    return logins


def _estimator(variant: str) -> Callable[[Path], PoseSequence]:
    def run(path: Path) -> PoseSequence:
        from telerehab.pose.backend import create_backend
        from telerehab.pose.estimator import estimate_video

        backend = create_backend("mediapipe", variant=variant, mode="video")
        try:
            return estimate_video(path, backend)
        finally:
            backend.close()

    return run


def _analyse(
    data_dir: Path, poses: Callable[[Path], PoseSequence], progress: Callable[[str], None]
) -> dict:
    from telerehab.rehab_programs.engine import analyze_sequence
    from telerehab.rehab_programs.library import default_library

    library = default_library()
    out = {}
    for exercise_id, name in CLIPS.items():
        progress(f"analysing {name} as {exercise_id}")
        seq = poses(data_dir / "clips" / name)
        item = next(i for i in PROGRAM["exercises"] if i["exercise"] == exercise_id)
        data = movement.of_recording(seq.t_s, seq.image)  # the replay's skeleton
        out[exercise_id] = (
            analyze_sequence(seq, library.get(exercise_id), side=item.get("side", "auto")),
            (data, movement.frame_count(data), seq.width, seq.height),
        )
    return out
