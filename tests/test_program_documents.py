"""Program documents from anywhere (an API body, a YAML file) are checked at
the border: whatever the document, only a `ProgramError` naming the field
escapes, and its message stays short."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telerehab.errors import ProgramError
from telerehab.rehab_programs.library import default_library
from telerehab.rehab_programs.program import program_from_data

LIBRARY = default_library()
FIELDS = (
    "exercise",
    "sets",
    "reps",
    "side",
    "target_rom_deg",
    "tempo",
    "rest_s",
    "calibration",
    "notes",
    "up_s",
    "hold_s",
    "down_s",
    "rest_deg",
    "end_deg",
)
TOP = ("title", "sessions_per_week", "therapist_notes", "exercises")
GOOD = {
    "title": "Knee rehab",
    "sessions_per_week": 3,
    "exercises": [{"exercise": "squat", "sets": 2, "reps": 3, "target_rom_deg": 90}],
}

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 180, 181, 1e400, -0.0, 2**63]),
)
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["squat", "sqaut", "left", "both", "\x00", "\ud800", "x" * 5000]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
keys = st.one_of(st.sampled_from(FIELDS + TOP), st.text(max_size=12))
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
exercise = st.fixed_dictionaries(
    {"exercise": st.one_of(st.sampled_from(sorted(LIBRARY._by_id)), texts)},
    optional={k: values for k in FIELDS[1:9]},
)
documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "title": st.one_of(texts, values),
            "sessions_per_week": values,
            "therapist_notes": values,
            "exercises": st.one_of(st.lists(exercise, max_size=4), values),
        },
    ),
)
FIELD_NAMED = re.compile(r"^doc: ((\(document\))|[a-z_]+|exercises\[\d+\])")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_only_a_program_error_naming_the_field_escapes(doc) -> None:
    try:
        program = program_from_data(doc, "doc", LIBRARY)
    except ProgramError as exc:
        message = str(exc)
        assert FIELD_NAMED.match(message), message
        assert len(message) < 1500, len(message)
        assert "x" * 100 not in message  # a long value is never repeated whole
        return
    # accepted: a program the engine can run, with finite numbers in range
    assert 1 <= len(program.exercises) <= 50 and 1 <= program.sessions_per_week <= 14
    assert 2 <= len(program.title) <= 200 and len(program.therapist_notes) <= 5000
    for p in program.exercises:
        assert p.exercise_id in LIBRARY and 1 <= p.sets <= 20 and 1 <= p.reps <= 100
        assert math.isfinite(p.rest_s)
        assert p.target_rom_deg is None or 0 <= p.target_rom_deg <= 180


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TOP), values)
def test_one_bad_top_level_field_is_named(field, value) -> None:
    doc = {**GOOD, field: value}
    try:
        program_from_data(doc, "doc", LIBRARY)
    except ProgramError as exc:
        assert str(exc).startswith(f"doc: {field}"), str(exc)


def test_an_exercise_is_prescribed_once_per_side() -> None:
    """The same exercise on the same side twice is refused, both entries
    named; the same exercise on the left and on the right is two entries."""
    curl = {"exercise": "elbow_flexion", "sets": 2, "reps": 10}
    both = program_from_data({**GOOD, "exercises": [
        {**curl, "side": "left"}, {**curl, "side": "right"}]}, "doc", LIBRARY)  # fmt: skip
    assert [p.side for p in both.exercises] == ["left", "right"]
    again = {**GOOD, "exercises": [{**curl, "side": "left"}, {**curl, "side": "right"},
                                   {**curl, "side": "left", "reps": 5}]}  # fmt: skip
    with pytest.raises(ProgramError) as exc:
        program_from_data(again, "doc", LIBRARY)
    assert str(exc.value) == (
        "doc: exercises[2]: elbow_flexion (left) is already prescribed as exercises[0]"
    )
