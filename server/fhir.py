"""FHIR R4 export: a Bundle (type collection) with the Patient and one
Observation per measurement.

- Pain: LOINC 72514-3 (pain severity, 0-10 numeric rating), valueInteger,
  one before and one after each session that recorded them.
- Range of motion: SNOMED CT 364564000 (range of joint movement), the best
  repetition of each exercise in a session as `valueQuantity` in UCUM `deg`;
  `bodySite` is the joint (SNOMED CT), laterality a component (SNOMED CT
  272741003 with left / right / both).
- Adherence: sessions done against sessions prescribed in an ISO week, as a
  `valueRatio` over an `effectivePeriod` from Monday 00:00:00 to Sunday
  23:59:59 UTC, coded in telerehab's own code system.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from telerehab.rehab_programs.library import Library, default_library

from .tables import ENDED, ExerciseSession, User, as_utc
from .trends import Trends

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
TELEREHAB = "urn:telerehab:measure"

# The joint each exercise's primary angle is measured at (SNOMED CT body structures).
JOINTS = {
    "knee": ("72696002", "Knee joint structure"),
    "hip": ("24136001", "Hip joint structure"),
    "shoulder": ("91774008", "Shoulder joint structure"),
    "elbow": ("16953009", "Elbow joint structure"),
    "ankle": ("70258002", "Ankle joint structure"),
    "spine": ("421060004", "Structure of vertebral column"),
}
SIGNAL_JOINT = {
    "knee_flexion": "knee", "hip_flexion": "hip", "thigh_inclination": "hip",
    "shoulder_elevation": "shoulder", "shoulder_flexion": "shoulder",
    "shoulder_abduction": "shoulder", "elbow_flexion": "elbow",
    "ankle_dorsiflexion": "ankle", "trunk_lean": "spine",
}  # fmt: skip
LATERALITY = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
    "both": ("51440002", "Right and left"),
}


def _iso(t: datetime) -> str:
    return as_utc(t).isoformat(timespec="seconds")


def _observation(subject: str, category: str, code: dict, when: datetime, **value) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": code,
        "subject": {"reference": subject},
        "effectiveDateTime": _iso(when),
        **value,
    }


def patient_bundle(
    patient: User,
    sessions: list[ExerciseSession],
    trends: Trends,
    library: Library | None = None,
) -> dict:
    """The patient's measurements as a FHIR R4 Bundle (a plain JSON dict)."""
    library = library or default_library()
    patient_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'telerehab:patient:{patient.id}')}"
    entries: list[dict] = [{
        "fullUrl": patient_url,
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:telerehab:user", "value": str(patient.id)}],
            "name": [{"text": patient.name}],
            "telecom": [{"system": "email", "value": patient.email}],
        },
    }]  # fmt: skip
    pain_code = {
        "coding": [{"system": LOINC, "code": "72514-3",
                    "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}],
        "text": "Pain (0-10)",
    }  # fmt: skip
    for x in sessions:
        if x.status not in (*ENDED, "diary"):
            continue
        occasion = "in the pain diary" if x.status == "diary" else f"exercise session {x.id}"
        for label, value, when in (
            ("before", x.pain_before, x.started_at),
            ("after", x.pain_after, x.ended_at or x.started_at),
        ):
            if value is not None:
                obs = _observation(patient_url, "survey", pain_code, when, valueInteger=value)
                obs["note"] = [{"text": f"reported {label} {occasion}"}]
                entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": obs})
        best: dict[tuple[str, str], float] = {}
        for r in x.repetitions:
            if not r.rom_trusted:  # measured with a needed landmark unseen
                continue
            key = (r.exercise_id, r.side)
            best[key] = max(best.get(key, 0.0), r.excursion_deg)
        for (exercise_id, side), deg in sorted(best.items()):
            exercise = library.get(exercise_id)
            joint_code, joint_name = JOINTS[SIGNAL_JOINT.get(exercise.signal_angle, "spine")]
            obs = _observation(
                patient_url, "exam",
                {"coding": [{"system": SNOMED, "code": "364564000",
                             "display": "Range of joint movement"}],
                 "text": f"{exercise.name}: range of motion"},
                x.ended_at or x.started_at,
                valueQuantity={"value": round(deg, 1), "unit": "deg", "system": UCUM,
                               "code": "deg"},
                bodySite={"coding": [{"system": SNOMED, "code": joint_code,
                                      "display": joint_name}]},
            )  # fmt: skip
            if side in LATERALITY:
                code, display = LATERALITY[side]
                obs["component"] = [{
                    "code": {"coding": [{"system": SNOMED, "code": "272741003",
                                         "display": "Laterality"}]},
                    "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code,
                                                         "display": display}]},
                }]  # fmt: skip
            entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": obs})
    for a in trends.adherence:
        if not a.prescribed:
            continue
        monday = datetime.strptime(f"{a.week}-1", "%G-W%V-%u").replace(tzinfo=UTC)
        obs = _observation(
            patient_url, "activity",
            {"coding": [{"system": TELEREHAB, "code": "adherence-week",
                         "display": "Exercise sessions done / prescribed in a week"}],
             "text": "Exercise adherence"},
            monday,
            valueRatio={"numerator": {"value": a.done, "unit": "sessions"},
                        "denominator": {"value": a.prescribed, "unit": "sessions"}},
        )  # fmt: skip
        sunday_end = monday + timedelta(days=7) - timedelta(seconds=1)  # the ISO week, whole
        obs["effectivePeriod"] = {"start": obs.pop("effectiveDateTime"), "end": _iso(sunday_end)}
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": obs})
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _iso(datetime.now(UTC)),
        "entry": entries,
    }
