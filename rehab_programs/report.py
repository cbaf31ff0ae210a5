"""An analysis as plain data: JSON documents and per-repetition tables."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .engine import Analysis
from .events import RepResult
from .messages import event_message, json_ready, rep_to_dict
from .program_run import ProgramAnalysis

# Every RepResult field, then what is derived from them (`rep_to_dict`).
REP_COLUMNS = (*(f.name for f in dataclasses.fields(RepResult)), "target_share", "rom_trusted")


def analysis_to_dict(analysis: Analysis, meta: dict | None = None) -> dict:
    """The whole analysis as a JSON-ready document."""
    return {
        "schema": "telerehab.analysis/1",
        "meta": meta or {},
        "summary": json_ready(dataclasses.asdict(analysis.summary)),
        "reps": [json_ready(rep_to_dict(r)) for r in analysis.reps],
        "events": [event_message(e) for e in analysis.events],
    }


def program_analysis_to_dict(result: ProgramAnalysis, meta: dict | None = None) -> dict:
    """A program followed through a recording, as a JSON-ready document."""
    exercises = []
    for run in result.runs:
        p = run.prescribed
        one = analysis_to_dict(run.analysis)
        del one["schema"], one["meta"]
        exercises.append({
            "exercise": p.exercise_id,
            "prescribed": {"sets": p.sets, "reps": p.reps, "side": p.side},
            "t_start_s": json_ready(run.t_start_s),
            "t_end_s": json_ready(run.t_end_s),
            **one,
        })  # fmt: skip
    return {
        "schema": "telerehab.program_analysis/1",
        "meta": meta or {},
        "program": result.program.title,
        "exercises": exercises,
    }


def write_analysis_json(
    analysis: Analysis | ProgramAnalysis, path: str | Path, meta: dict | None = None
) -> Path:
    """Write `analysis_to_dict` (or `program_analysis_to_dict`) to `path`."""
    doc = (
        program_analysis_to_dict(analysis, meta)
        if isinstance(analysis, ProgramAnalysis)
        else analysis_to_dict(analysis, meta)
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False))
    return path


def rep_columns(analysis: Analysis | ProgramAnalysis) -> dict[str, np.ndarray]:
    """One column per RepResult field (faults joined with ';'); for a program,
    an `exercise` column first."""
    cols: dict[str, np.ndarray] = {}
    if isinstance(analysis, ProgramAnalysis):
        reps = [r for run in analysis.runs for r in run.analysis.reps]
        cols["exercise"] = np.array(
            [run.prescribed.exercise_id for run in analysis.runs for _ in run.analysis.reps],
            dtype=object,
        )
    else:
        reps = list(analysis.reps)
    for name in REP_COLUMNS:
        values = [getattr(r, name) for r in reps]
        if name == "faults":
            cols[name] = np.array([";".join(v) for v in values], dtype=object)
        else:
            cols[name] = np.array(values)
    return cols
