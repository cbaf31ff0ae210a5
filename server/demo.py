"""Demo data for `telerehab serve --demo`: a therapist, a patient, a program and
three weeks of sessions whose measurements come from really analysing the
shared exercise clips. Every demo row is flagged `is_demo` and the demo users
are named as such.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from telerehab.errors import ConfigError
from telerehab.pose.estimator import PoseSequence

from . import accounts, prescriptions, records
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
# (days ago, pain before, pain after, effort): three weeks, fewer sessions lately
# and pain creeping up, so the dashboard has something to show.
SCHEDULE = [(20, 3, 2, 4), (18, 3, 3, 4), (16, 2, 2, 5), (13, 3, 2, 5), (11, 2, 2, 5),
            (9, 3, 3, 6), (4, 5, 6, 6), (1, 5, 7, 7)]  # fmt: skip


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
        for days, before, after, rpe in SCHEDULE:
            session = records.start_session(
                s, patient.id, program_version_id=version.id, device="demo: shared clips",
                source="video", pain_before=before, started_at=now - timedelta(days=days),
                is_demo=True,
            )  # fmt: skip
            for item in PROGRAM["exercises"]:
                analysis = analyses[item["exercise"]]
                for k in range(1, item["sets"] + 1):
                    reps = list(analysis.reps)
                    for rep in reps:
                        records.add_repetition(s, session, item["exercise"], rep, set_index=k)
                    records.add_set(s, session, item["exercise"], k, reps, item["reps"])
            records.end_session(
                s, session, "complete", pain_after=after, rpe=rpe,
                notes="demo data: measurements from the shared clips",
                ended_at=session.started_at + timedelta(minutes=20),
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
        out[exercise_id] = analyze_sequence(
            seq, library.get(exercise_id), side=item.get("side", "auto")
        )
    return out
