"""Repetition-count and turning-point accuracy on a dataset folder.

    python benchmarks/accuracy.py [DATASET_DIR] [--variant full] [--out FILE.json]

DATASET_DIR is laid out like ../shared/data (see `telerehab.rehab_programs.accuracy`
for the format). Every clip runs through the pose model once, then through the
offline and the streaming engine, and in a program with every other library
exercise after it (the next exercise must not take its repetitions) and
before it (a skipped exercise must not keep the clip's exercise from its
repetitions). Prints a
per-clip table and the totals (exact-match rate, mean absolute error,
off-by-one accuracy, within-tolerance rate, mean turning-point error,
program takeovers) and writes JSON. Thresholds live in the exercise
library and are never tuned per clip.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.rehab_programs.accuracy import turning_point_errors_s
    from telerehab.rehab_programs.engine import analyze_live, analyze_sequence
    from telerehab.rehab_programs.library import default_library
    from telerehab.rehab_programs.program_run import analyze_program

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset", type=Path, nargs="?", default=DEFAULT_DATA)
    p.add_argument("--variant", default="full", choices=["lite", "full", "heavy"])
    p.add_argument(
        "--default-exercise",
        default="squat",
        help="exercise run on clips whose ground truth names none (they expect 0)",
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "accuracy.json")
    args = p.parse_args(argv)

    if (found := read_dataset(args.dataset)) is None:
        return 2
    clips, folder = found
    library = default_library()
    rows = []
    for name, entry in clips.items():
        exercise = library.match(entry.get("exercise")) or library.get(args.default_exercise)
        started = time.perf_counter()
        backend = create_backend("mediapipe", variant=args.variant, mode="video")
        try:
            seq = estimate_video(folder / name, backend)
        finally:
            backend.close()
        offline = analyze_sequence(seq, exercise)
        live = analyze_live(seq, exercise)
        # A clip of no exercise must count nothing whatever the patient was asked to do.
        phantom = (
            {ex.id: analyze_sequence(seq, ex).summary.reps for ex in library}
            if entry.get("exercise") is None
            else {}
        )
        # A program of the clip's exercise then each other library exercise:
        # the next one's look-ahead must not take the clip's repetitions.
        # And each other library exercise, skipped, then the clip's: the clip's
        # exercise should still get its repetitions.
        takeovers = []
        after_skip = {}
        if entry.get("exercise") is not None:
            for other in library:
                if other.id == exercise.id:
                    continue
                first, _second = analyze_program(seq, _pair(exercise.id, other.id)).runs
                if first.analysis.summary.reps != offline.summary.reps:
                    takeovers.append(other.id)
                _skipped, own = analyze_program(seq, _pair(other.id, exercise.id)).runs
                after_skip[other.id] = own.analysis.summary.reps
        marks = entry.get("rep_marks_frame")
        errors = (
            turning_point_errors_s(offline.reps, seq.t_s, marks, entry.get("marks_are", ""))
            if marks
            else []
        )
        rows.append(
            {
                "clip": name,
                "exercise": exercise.id,
                "truth": entry["reps"],
                "tolerance": entry.get("tolerance", 0),
                "offline": offline.summary.reps,
                "streaming": live.summary.reps,
                "rejected": offline.summary.rejected,
                "phantom_under_every_exercise": phantom,
                "program_pairs": len(library) - 1 if entry.get("exercise") is not None else 0,
                "program_takeovers": takeovers,
                "reps_after_a_skipped_exercise": after_skip,
                "turning_error_s": errors,
                "mean_quality": offline.summary.mean_quality,
                "mean_target_share": offline.summary.mean_target_share,
                "landmarks_unseen": sum(not r.rom_trusted for r in offline.reps),
                "faults": offline.summary.faults,
                "seconds": time.perf_counter() - started,
            }
        )
        r = rows[-1]
        print(f"{name:38s} {r['exercise']:18s} truth {r['truth']:2d}  offline {r['offline']:2d}  "
              f"streaming {r['streaming']:2d}", flush=True)  # fmt: skip

    truth = np.array([r["truth"] for r in rows])
    got = np.array([r["offline"] for r in rows])
    tol = np.array([r["tolerance"] for r in rows])
    errs = [e for r in rows for e in r["turning_error_s"]]
    totals = {
        "clips": len(rows),
        "exact_match_rate": float(np.mean(got == truth)),
        "within_tolerance_rate": float(np.mean(np.abs(got - truth) <= tol)),
        "off_by_one_accuracy": float(np.mean(np.abs(got - truth) <= 1)),
        "mae_reps": float(np.mean(np.abs(got - truth))),
        "streaming_equals_offline_rate": float(
            np.mean([r["offline"] == r["streaming"] for r in rows])
        ),
        "mean_turning_error_s": float(np.mean(errs)) if errs else None,
        "turning_within_0_3_s_rate": float(np.mean(np.array(errs) <= 0.3)) if errs else None,
        "no_exercise_clips_phantom_reps_all_exercises": sum(
            sum(r["phantom_under_every_exercise"].values()) for r in rows
        ),
        "program_pairs": sum(r["program_pairs"] for r in rows),
        "program_takeovers": sum(len(r["program_takeovers"]) for r in rows),
        # the clip's exercise after each skipped one: its repetitions, of those
        # it gets alone (each pair capped at that)
        "program_skip_reps_kept": sum(
            min(n, r["offline"]) for r in rows for n in r["reps_after_a_skipped_exercise"].values()
        ),
        "program_skip_reps_alone": sum(
            r["offline"] * len(r["reps_after_a_skipped_exercise"]) for r in rows
        ),
    }
    print(
        f"\n{'clip':38s} {'exercise':18s} {'truth':>5s} {'off':>4s} {'live':>4s} {'tp max s':>8s}"
        f" {'target':>6s}"
    )
    for r in rows:
        tp = max(r["turning_error_s"]) if r["turning_error_s"] else float("nan")
        share = r["mean_target_share"]
        print(f"{r['clip']:38s} {r['exercise']:18s} {r['truth']:5d} {r['offline']:4d} "
              f"{r['streaming']:4d} {tp:8.2f} {share:6.0%}")  # fmt: skip
    for r in rows:
        if r["program_takeovers"]:
            print(f"{r['clip']} then {', '.join(r['program_takeovers'])} in a program: "
                  f"the next exercise took {r['exercise']}'s repetitions")  # fmt: skip
    for r in rows:
        if r["phantom_under_every_exercise"]:
            counted = {k: v for k, v in r["phantom_under_every_exercise"].items() if v}
            print(f"{r['clip']} (no exercise) under each library exercise: {counted or 'none'}")
    report(args.out, totals, dataset=str(args.dataset), variant=args.variant, clips=rows)
    return 0


def _pair(first: str, second: str):
    """A program of two exercises, one set of ten each."""
    from telerehab.rehab_programs.program import program_from_data

    return program_from_data(
        {"title": "Pair", "sessions_per_week": 3,
         "exercises": [{"exercise": first, "sets": 1, "reps": 10},
                       {"exercise": second, "sets": 1, "reps": 10}]},
        "accuracy",
    )  # fmt: skip


def read_dataset(dataset: Path) -> tuple[dict, Path] | None:
    """(the clips' ground truth, the folder they are in) of a dataset folder
    laid out like ../shared/data; None, saying why on stderr, without one."""
    gt_path = dataset / "ground_truth.json"
    if not gt_path.is_file():
        print(f"{gt_path}: not found", file=sys.stderr)
        return None
    clips = json.loads(gt_path.read_text())["clips"]
    return clips, dataset / "clips" if (dataset / "clips").is_dir() else dataset


def report(out: Path, totals: dict, **payload) -> None:
    """Print `totals`; write them with `payload`, the date and the machine as JSON to `out`."""
    print()
    for k, v in totals.items():
        print(f"{k:32s} {v:.3f}" if isinstance(v, float) else f"{k:32s} {v}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}",
        **payload, "totals": totals,
    }, indent=1))  # fmt: skip
    print(f"\nwritten {out}")


if __name__ == "__main__":
    sys.exit(main())
