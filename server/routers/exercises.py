"""The exercise library: everyone signed in reads it; therapists teach it new
exercises from a demonstration (learn, review, add)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from telerehab.errors import ProgramError
from telerehab.rehab_programs.demonstration import of_exercise, of_exercise_sequence
from telerehab.rehab_programs.program import PrescribedModel

from .. import exercises, movement
from ..audit import Touched
from ..deps import Audit, DbSession, User, require_role
from ..i18n import library_in
from ..schemas import MovementOut

router = APIRouter(prefix="/api/exercises", tags=["exercises"])
REST_S = PrescribedModel.model_fields["rest_s"].default  # a prescription's rest unless it says
LEARN_PATH = "/api/exercises/learn"
VIDEO_TYPES = exercises.VIDEO_TYPES


@router.get("")
def list_exercises(s: DbSession, who: User) -> list[dict]:
    """The exercise library, for prescribing: the shipped exercises and those
    added on this server (`custom`), each with the signals it counts on."""
    custom = exercises.custom_ids(s)
    # names, instructions and cues in the reader's language; one a therapist
    # taught keeps the words it was given
    library = library_in(exercises.clinic_library(s), who.language)
    return [{
        "id": e.id, "name": e.name, "views": list(e.views), "laterality": e.laterality,
        "signal_angle": e.signal_angle,
        "faults": {r.id: e.feedback[r.message] for r in e.form_rules},
        "target_rom_deg": list(e.target_rom_deg), "tempo_s": list(e.tempo_s),
        "instructions": e.instructions, "custom": e.id in custom, "rest_s": REST_S,
        "signals": [c.signal_label for c in e.candidates()],
    } for e in library]  # fmt: skip


@router.get("/{exercise_id}/demonstration")
def demonstration(exercise_id: str, s: DbSession, who: User) -> MovementOut:
    """How the exercise is done, as a skeleton to replay (the movement record
    a session's replay draws): a neutral body doing a few repetitions at the
    exercise's tempo, made from its definition (`rehab_programs.demonstration`).
    404 when the exercise is unknown or its movement is no single joint's."""
    library = exercises.clinic_library(s)
    if exercise_id not in library:
        raise HTTPException(404, f"no exercise {exercise_id[:64]!r}")
    exercise = library.get(exercise_id)
    seq = of_exercise_sequence(exercise)
    if seq is None:
        raise HTTPException(404, f"exercise {exercise_id!r} has no demonstration")
    t_s, frames = movement.as_lists(movement.of_recording(seq.t_s, seq.image))
    return MovementOut(exercise_id=exercise_id, width=seq.width, height=seq.height,
                       t_s=t_s, landmarks=frames, view=of_exercise(exercise).view)  # fmt: skip


@router.post(
    "/learn",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in VIDEO_TYPES},
        }
    },
)
async def learn(
    request: Request,
    who: User,
    audit: Audit,
    exercise_id: Annotated[str, Query(alias="id", pattern=r"^[a-z][a-z0-9_]*$", max_length=64)],
    name: Annotated[str, Query(min_length=2, max_length=120)],
    start_s: Annotated[float | None, Query(ge=0, le=3600)] = None,
    end_s: Annotated[float | None, Query(ge=0, le=3600)] = None,
    instructions: Annotated[str | None, Query(min_length=10, max_length=2000)] = None,
) -> dict:
    """A new exercise learned from a demonstration video (the request body,
    with its video Content-Type), for the therapist to review: nothing is
    stored. The movement that repeats most consistently becomes the signal;
    its rest and turning point, the view, the landmarks, the anchors and the
    tempo come from the demonstration. At least two repetitions from rest."""
    require_role(who, "therapist")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in VIDEO_TYPES:
        raise ProgramError(
            f"demonstration: Content-Type {kind or 'missing'!s}; expected one of "
            + ", ".join(VIDEO_TYPES)
        )
    data = await request.body()
    document = await run_in_threadpool(
        exercises.learn_from_upload, data, VIDEO_TYPES[kind], exercise_id, name,
        start_s=start_s, end_s=end_s, instructions=instructions,
    )  # fmt: skip
    audit("exercise.learn", None, exercise_id, what=Touched("exercise", exercise_id=exercise_id))
    return {"document": document}


class ExerciseIn(BaseModel):
    document: dict[str, Any] = Field(description="an exercise in the library's YAML schema")


@router.post("", status_code=201)
def add(body: ExerciseIn, s: DbSession, who: User, audit: Audit) -> dict:
    """Add a reviewed exercise document to this server's library; programs can
    prescribe it at once. 409 when the id is taken."""
    require_role(who, "therapist")
    exercise = exercises.add_exercise(s, body.document, who.id)
    audit("exercise.add", None, exercise.id, what=Touched("exercise", exercise_id=exercise.id))
    return {"id": exercise.id, "name": exercise.name}
