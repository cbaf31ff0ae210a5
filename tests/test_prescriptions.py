"""What changed between two versions of a program (`prescriptions.changes`):
the data the history on the therapist's page words."""

from __future__ import annotations

from telerehab.server.prescriptions import changes

SQUAT = {"exercise": "squat", "sets": 2, "reps": 10}
CURL = {"exercise": "elbow_flexion", "sets": 2, "reps": 10, "side": "left"}
PROGRAM = {"title": "Knee", "sessions_per_week": 3, "exercises": [SQUAT, CURL]}


def _said(previous: dict | None, current: dict) -> list[tuple]:
    return [tuple(c[k] for k in ("kind", "exercise", "side", "field", "before", "after"))
            for c in changes(previous, current)]  # fmt: skip


def test_the_first_version_is_created_and_the_same_document_changes_nothing() -> None:
    assert _said(None, PROGRAM) == [("created", None, None, None, None, None)]
    assert changes(PROGRAM, PROGRAM) == []


def test_a_default_given_explicitly_is_no_change() -> None:
    """`rest_s: 60` is the default; `side: auto` too; a tempo's hold is 0
    unless given."""
    explicit = {**SQUAT, "rest_s": 60, "side": "auto", "notes": ""}
    assert changes(PROGRAM, {**PROGRAM, "exercises": [explicit, CURL]}) == []
    a = {**PROGRAM, "exercises": [{**SQUAT, "tempo": {"up_s": 2, "down_s": 2}}, CURL]}
    b = {**PROGRAM, "exercises": [{**SQUAT, "tempo": {"up_s": 2, "hold_s": 0, "down_s": 2}}, CURL]}
    assert changes(a, b) == []


def test_program_fields_then_exercises_in_order_then_removals() -> None:
    after = {
        "title": "Knee and elbow", "sessions_per_week": 4, "therapist_notes": "Ice after.",
        "exercises": [
            {**SQUAT, "reps": 12, "target_rom_deg": 90, "rest_s": 45, "notes": "Slowly."},
            {"exercise": "lunge", "sets": 1, "reps": 8},
        ],
    }  # fmt: skip
    assert _said(PROGRAM, after) == [
        ("program_changed", None, None, "title", "Knee", "Knee and elbow"),
        ("program_changed", None, None, "sessions_per_week", 3, 4),
        ("program_changed", None, None, "therapist_notes", "", "Ice after."),
        ("exercise_changed", "squat", "auto", "reps", 10, 12),
        ("exercise_changed", "squat", "auto", "target_rom_deg", None, 90),  # None: the library's
        ("exercise_changed", "squat", "auto", "rest_s", 60, 45),
        ("exercise_changed", "squat", "auto", "notes", "", "Slowly."),
        ("exercise_added", "lunge", "auto", None, None, None),
        ("exercise_removed", "elbow_flexion", "left", None, None, None),
    ]


def test_an_exercise_is_followed_by_its_side_then_by_its_place() -> None:
    """Left and right of one exercise are two entries: reordering them is no
    change; adding the right one is an addition; an entry whose side changed
    (and nothing else matches it) is the same entry with its side changed."""
    right = {**CURL, "side": "right"}
    both = {**PROGRAM, "exercises": [SQUAT, CURL, right]}
    assert _said(PROGRAM, both) == [("exercise_added", "elbow_flexion", "right", None, None, None)]
    assert changes(both, {**both, "exercises": [right, SQUAT, CURL]}) == []
    moved = {**PROGRAM, "exercises": [SQUAT, {**CURL, "side": "right", "sets": 3}]}
    assert _said(PROGRAM, moved) == [
        ("exercise_changed", "elbow_flexion", "right", "side", "left", "right"),
        ("exercise_changed", "elbow_flexion", "right", "sets", 2, 3),
    ]


def test_a_tempo_is_one_change_with_all_its_parts_and_back_to_the_default() -> None:
    """A tempo is one field: set, it holds all three parts (the hold 0 unless
    given); removed, it is the library's again (None)."""
    timed = {**PROGRAM, "exercises": [{**SQUAT, "tempo": {"up_s": 3, "down_s": 2}}, CURL]}
    tempo = {"up_s": 3, "hold_s": 0, "down_s": 2}
    assert _said(PROGRAM, timed) == [("exercise_changed", "squat", "auto", "tempo", None, tempo)]
    assert _said(timed, PROGRAM) == [("exercise_changed", "squat", "auto", "tempo", tempo, None)]
