"""One message schema (`rehab_programs.messages`) for the live DataChannel, the
WebSocket, the Redis fan-out and the JSON report."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jsonschema_rs
import pytest

from telerehab.rehab_programs import events as ev
from telerehab.rehab_programs.engine import analyze_sequence
from telerehab.rehab_programs.library import default_library
from telerehab.rehab_programs.messages import (
    VERSION,
    event_message,
    event_types,
    json_schema,
)
from telerehab.rehab_programs.report import analysis_to_dict

DOCS = Path(__file__).resolve().parents[1] / "docs"

REP = ev.RepResult(
    index=1, side="left", t_start_s=0.5, t_peak_s=1.2, t_end_s=2.0, frame_peak=36,
    rom_min_deg=10.0, rom_max_deg=95.5, excursion_deg=85.5, duration_s=1.5, up_s=0.7,
    hold_s=0.1, down_s=0.7, quality=90, faults=("short_range",), target_rom_deg=float("nan"),
)  # fmt: skip
SAMPLES = {
    "rep_started": ev.RepStarted(0.5, 1),
    "rep_completed": ev.RepCompleted(2.0, REP),
    "rep_rejected": ev.RepRejected(2.0, "the body moved"),
    "rep_withdrawn": ev.RepWithdrawn(3.0, REP),
    "set_completed": ev.SetCompleted(2.0, 1, 5),
    "feedback": ev.Feedback(1.0, "too_fast", "Slower, please"),
    "tracking_lost": ev.TrackingLost(1.0, "no person"),
    "tracking_regained": ev.TrackingRegained(1.5),
    "wrong_view": ev.WrongView(1.0, ("side",), "front", "Turn sideways"),
    "signal_chosen": ev.SignalChosen(4.0, "knee_flexion (world)", "knee_flexion", 2, "..."),
    "exercise_started": ev.ExerciseStarted(0.0, 0, "squat"),
    "exercise_completed": ev.ExerciseCompleted(9.0, 0, "squat"),
}


@pytest.fixture(scope="module")
def validator():
    return jsonschema_rs.validator_for(json_schema())


def test_every_event_class_is_a_message_type_and_valid(validator) -> None:
    """A sample of every event class: its message has the version, the type
    named after the class, every field, and passes the derived schema (NaN is
    sent as null)."""
    assert set(event_types()) == set(SAMPLES), "a new event class needs a sample here"
    for kind, event in SAMPLES.items():
        msg = json.loads(json.dumps(event_message(event), allow_nan=False))
        assert msg["v"] == VERSION and msg["type"] == kind
        assert {f.name for f in dataclasses.fields(event)} <= msg.keys()
        validator.validate(msg)
    rep = event_message(SAMPLES["rep_completed"])["rep"]
    assert rep["target_rom_deg"] is None and rep["faults"] == ["short_range"]
    assert rep["rom_trusted"] is True and rep["excursion_deg"] == 85.5


def test_the_schema_rejects_what_it_should(validator) -> None:
    msg = event_message(SAMPLES["set_completed"])
    for broken in ({**msg, "v": VERSION - 1}, {**msg, "type": "set"},
                   {k: v for k, v in msg.items() if k != "set_index"}):  # fmt: skip
        with pytest.raises(jsonschema_rs.ValidationError):
            validator.validate(broken)


def test_context_adds_fields_but_never_replaces_the_events_own() -> None:
    msg = event_message(SAMPLES["set_completed"], exercise_id="squat", sets=3)
    assert msg["exercise_id"] == "squat" and msg["sets"] == 3 and msg["reps"] == 5
    with pytest.raises(ValueError, match="reps"):
        event_message(SAMPLES["set_completed"], reps=10)


def test_the_published_schema_is_the_derived_one() -> None:
    """docs/messages.schema.json is what clients read: it may not drift from
    the event classes (regenerate it with `json_schema()` after a change)."""
    published = json.loads((DOCS / "messages.schema.json").read_text())
    assert published == json.loads(json.dumps(json_schema())), (
        "docs/messages.schema.json is stale: regenerate it from messages.json_schema()"
    )
    assert f"version {VERSION}" in (DOCS / "messages.md").read_text()


def test_a_reports_events_are_the_same_messages(pose_of, validator) -> None:
    """The JSON report of a real clip: every event is a message of the schema,
    the repetitions in its events are the report's repetitions."""
    seq = pose_of("squat_side_medflex.mp4")
    doc = analysis_to_dict(analyze_sequence(seq, default_library().get("squat")))
    doc = json.loads(json.dumps(doc, allow_nan=False))
    assert doc["events"], "the clip gives events"
    for msg in doc["events"]:
        validator.validate(msg)
    done = [m["rep"] for m in doc["events"] if m["type"] == "rep_completed"]
    assert done == doc["reps"] and len(done) >= 1
    assert all(math.isfinite(r["excursion_deg"]) for r in done)
