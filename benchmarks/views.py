"""Counting when the camera stands elsewhere: every exercise clip of a dataset
re-projected as cameras at other angles would see it (`telerehab.pose.views`),
counted on the exercise's primary signal alone and with its candidate
signals, side by side in one run.

    python benchmarks/views.py [DATASET_DIR] [--out FILE.json]

Views: the recording's own (0, 0), turned 45 and 90 deg about the vertical
(yaw), and tilted 60 and 90 deg about the left-right axis (pitch; 90 is a
camera straight above). The exercise's anchors are held in place (else the
hips). Prints a table and the totals, writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
VIEWS = [(0, 0), (45, 0), (90, 0), (0, 60), (0, 90)]


def main(argv: list[str] | None = None) -> int:
    from accuracy import read_dataset, report  # benchmarks/accuracy.py, beside this script

    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.pose.landmarks import INDEX
    from telerehab.pose.views import seen_from
    from telerehab.rehab_programs.engine import analyze_live, analyze_sequence
    from telerehab.rehab_programs.library import default_library

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset", type=Path, nargs="?", default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "views.json")
    args = p.parse_args(argv)
    if (found := read_dataset(args.dataset)) is None:
        return 2
    clips, folder = found
    library = default_library()
    rows = []
    print(f"{'clip':34s} {'yaw':>4s} {'pitch':>5s} {'truth':>5s} {'primary':>7s} "
          f"{'chosen':>6s} {'live':>4s}  signal")  # fmt: skip
    for name, entry in clips.items():
        exercise = library.match(entry.get("exercise"))
        if exercise is None:
            continue
        backend = create_backend("mediapipe", variant="full", mode="video")
        try:
            seq = estimate_video(folder / name, backend)
        finally:
            backend.close()
        fixed = [INDEX[n] for n in exercise.anchors_for("both")] or [
            INDEX["left_hip"], INDEX["right_hip"]
        ]  # fmt: skip
        primary = dataclasses.replace(exercise, alternatives=())
        for yaw, pitch in VIEWS:
            view = seen_from(seq, yaw, pitch, fixed)
            alone = analyze_sequence(view, primary).summary.reps
            chosen = analyze_sequence(view, exercise)
            live = analyze_live(view, exercise).summary.reps
            rows.append({
                "clip": name, "exercise": exercise.id, "yaw_deg": yaw, "pitch_deg": pitch,
                "truth": entry["reps"], "tolerance": entry.get("tolerance", 0),
                "primary_only": alone, "candidates": chosen.summary.reps, "streaming": live,
                "signal": chosen.summary.signal,
            })  # fmt: skip
            got = chosen.summary.reps
            print(f"{name[:34]:34s} {yaw:4d} {pitch:5d} {entry['reps']:5d} {alone:7d} "
                  f"{got:6d} {live:4d}  {chosen.summary.signal}", flush=True)  # fmt: skip

    def rate(key: str, within: bool) -> float:
        ok = [abs(r[key] - r["truth"]) <= (r["tolerance"] if within else 0) for r in rows]
        return sum(ok) / len(ok) if ok else float("nan")

    totals = {
        "views": len(rows),
        "primary_only_exact": rate("primary_only", False),
        "candidates_exact": rate("candidates", False),
        "primary_only_within_tolerance": rate("primary_only", True),
        "candidates_within_tolerance": rate("candidates", True),
        "candidates_over_truth": sum(r["candidates"] > r["truth"] + r["tolerance"] for r in rows),
        "streaming_equals_offline": sum(r["streaming"] == r["candidates"] for r in rows),
    }
    report(args.out, totals, dataset=str(args.dataset), rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
