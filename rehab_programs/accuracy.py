"""Scoring repetition counts and turning points against a dataset's ground truth.

A dataset is a folder laid out like `shared/data`: video clips (in `clips/` or
beside the file) and `ground_truth.json`:

    {"clips": {"NAME.mp4": {
        "exercise": "plain name, e.g. squat or 'prone back extension'",  (null: none)
        "reps": 3, "tolerance": 0,
        "rep_marks_frame": [84, 168, 252] | null,
        "marks_are": "bottom of each squat" | "end of each cycle" ...}}}

The exercise text is matched to the library (`Library.match`); marks whose
`marks_are` mentions "end" are cycle boundaries (scored against the rest after
each repetition), others are turning points (scored against `t_peak_s`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .events import RepResult


def turning_point_errors_s(
    reps: Sequence[RepResult], t_s: np.ndarray, marks_frame: Sequence[int], marks_are: str
) -> list[float]:
    """Seconds from each mark to the nearest repetition's matching moment (inf if none)."""
    if not reps:
        return [float("inf")] * len(marks_frame)
    marks = [float(t_s[min(m, len(t_s) - 1)]) for m in marks_frame]
    if "end" in marks_are:
        spans = [
            (r.t_end_s, reps[k + 1].t_start_s if k + 1 < len(reps) else float(t_s[-1]))
            for k, r in enumerate(reps)
        ]
        return [min(max(a - m, m - b, 0.0) for a, b in spans) for m in marks]
    return [min(abs(r.t_peak_s - m) for r in reps) for m in marks]
