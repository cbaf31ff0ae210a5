"""A clinic's exercise library: the exercises shipped with telerehab and those
its therapists added, learned from a demonstration and reviewed.

A therapist uploads a demonstration (a file, or a clip recorded on the page);
`learn_from_upload` finds the angle that moves most and most consistently
(`rehab_programs.learn`) and answers with an exercise document to review.
Nothing is stored until the therapist adds the reviewed document
(`add_exercise`); from then on every program, live session, trend and export
of this server knows it (`clinic_library`). The demonstration is decoded from
a private temporary file deleted as soon as its poses are read; only the
document is kept. The patient's page shows such an exercise's demonstration
as it shows a library one's, a skeleton animated from the document (its
signal's joint from the taught rest to the taught turning point,
`rehab_programs.demonstration.of_exercise`): the therapist's own movement is
not kept, so nothing of the person who taught it is shown to patients.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from telerehab.errors import ConflictError, ProgramError, VideoError
from telerehab.rehab_programs.exercise import Exercise, ExerciseModel, exercise_from_model
from telerehab.rehab_programs.library import Library, default_library

from .tables import CustomExercise

MAX_DEMO_S = 60.0  # a demonstration of a few repetitions; longer uploads are refused
VIDEO_TYPES = {  # what a demonstration may be sent as, and its file extension
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
}


def _origin(exercise_id: str) -> str:
    return f"exercise {exercise_id!r} (added on this server)"


def _frozen(document: Any, origin: str) -> Exercise:
    from telerehab.rehab_programs.documents import validate

    return exercise_from_model(validate(ExerciseModel, document, origin), origin)


def clinic_library(s: Session) -> Library:
    """The shipped library and every exercise added on this server."""
    rows = s.scalars(select(CustomExercise).order_by(CustomExercise.id)).all()
    if not rows:
        return default_library()
    return default_library().with_exercises(
        {_origin(r.id): _frozen(r.document, _origin(r.id)) for r in rows}
    )


def custom_ids(s: Session) -> set[str]:
    """The ids of the exercises added on this server."""
    return set(s.scalars(select(CustomExercise.id)))


def add_exercise(s: Session, document: Any, by: int) -> Exercise:
    """Validate a reviewed document and add it to the clinic's library.

    ProgramError names the field that does not validate; ConflictError when
    the id is taken (by the shipped library or an exercise added before).
    """
    origin = "exercise document"
    exercise = _frozen(document, origin)
    if exercise.id in clinic_library(s):
        raise ConflictError(f"exercise {exercise.id!r} exists already; choose another id")
    s.add(CustomExercise(id=exercise.id, document=document, created_by=by))
    s.flush()
    return exercise


def learn_from_upload(
    data: bytes,
    suffix: str,
    exercise_id: str,
    name: str,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    instructions: str | None = None,
    backend: Any = None,
) -> dict:
    """An exercise document learned from an uploaded demonstration (not stored).

    `suffix` keeps the container's file extension (".mp4", ".webm") for the
    decoder. `backend`: a pose backend (default: MediaPipe, video mode).
    ProgramError names the upload when nothing repeats in it.
    """
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.pose.video import VideoFile
    from telerehab.rehab_programs.learn import learn_exercise

    if not data:
        raise ProgramError("demonstration: the uploaded file is empty")
    suffix = suffix if suffix in VIDEO_TYPES.values() else ".mp4"
    folder = tempfile.mkdtemp(prefix="telerehab-demo-")  # 0700: this user only
    path = Path(folder) / f"demonstration{suffix}"
    own = backend is None
    try:
        path.write_bytes(data)
        video = VideoFile(path)  # a file that is no video is refused before a model loads
        if own:
            backend = create_backend("mediapipe", mode="video")
        seq = estimate_video(video, backend)
    except VideoError as exc:  # named as the upload, not as the temporary file
        raise ProgramError(str(exc).replace(f"{path}: ", "demonstration: ", 1)) from None
    finally:
        path.unlink(missing_ok=True)
        os.rmdir(folder)
        if own and backend is not None:
            backend.close()
    if len(seq) and seq.t_s[-1] > MAX_DEMO_S and start_s is None and end_s is None:
        raise ProgramError(
            f"demonstration: {seq.t_s[-1]:.0f} s long; give the start and end of at most "
            f"{MAX_DEMO_S:g} s with the repetitions"
        )
    demo = seq.between(start_s, end_s)
    span = f"{demo.t_s[0]:.1f}-{demo.t_s[-1]:.1f} s" if len(demo) else "no frames"
    return learn_exercise(
        demo, exercise_id, name, instructions=instructions, origin=f"the demonstration, {span}"
    )
