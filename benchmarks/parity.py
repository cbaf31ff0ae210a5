"""Parity of the project's BlazePose pipeline with the MediaPipe backend, every shared clip.

    python benchmarks/parity.py [DATASET_DIR] [--variant full] [--runtime litert]
        [--detect-every N] [--max-people 4] [--max-frames N] [--out benchmarks/out/parity.json]

Per clip: median and 95th-percentile landmark distance (% of the image
diagonal, frames where both found the patient, landmarks seen with visibility
>= 0.5 by the reference), frames found by each, repetition counts
(`analyze_sequence`, the clip's exercise) and the largest ROM difference
between matching repetitions. The goals (issue 13): median < 1%, the same
counts, ROM within 2 deg. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def landmark_distance(ref, new) -> np.ndarray:
    """Distances (% of the diagonal) of landmarks the reference saw (visibility >= 0.5)."""
    both = ref.detected & new.detected
    scale = np.array([ref.width, ref.height])
    d = np.linalg.norm((ref.image[both, :, :2] - new.image[both, :, :2]) * scale, axis=2)
    seen = ref.image[both, :, 3] >= 0.5
    return 100.0 * d[seen] / float(np.hypot(ref.width, ref.height))


def compare(ref, new, exercise) -> dict:
    """Parity figures of two PoseSequences of one clip."""
    from telerehab.rehab_programs.engine import analyze_sequence

    d = landmark_distance(ref, new)
    a, b = analyze_sequence(ref, exercise), analyze_sequence(new, exercise)
    rom = [abs(x.excursion_deg - y.excursion_deg) for x, y in zip(a.reps, b.reps, strict=False)]
    return {
        "frames": len(ref),
        "found_ref": int(ref.detected.sum()),
        "found_new": int(new.detected.sum()),
        "median_pct_diag": float(np.median(d)) if d.size else float("nan"),
        "p95_pct_diag": float(np.percentile(d, 95)) if d.size else float("nan"),
        "reps_ref": a.summary.reps,
        "reps_new": b.summary.reps,
        "rom_max_diff_deg": float(max(rom)) if rom else 0.0,
        "max_people_ref": ref.max_people,
        "max_people_new": new.max_people,
    }


def main(argv: list[str] | None = None) -> int:
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.rehab_programs.library import default_library

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset", type=Path, nargs="?", default=DEFAULT_DATA)
    p.add_argument("--variant", default="full", choices=["lite", "full", "heavy"])
    p.add_argument("--runtime", default="litert", choices=["litert", "onnxruntime"])
    p.add_argument("--detect-every", type=int, help="default: the backend's (1)")
    p.add_argument("--max-people", type=int, default=4)
    p.add_argument("--track-scale", type=float, default=None)
    p.add_argument("--max-frames", type=int)
    p.add_argument("--clips", nargs="*", help="only these clips")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "parity.json")
    args = p.parse_args(argv)

    clips = json.loads((args.dataset / "ground_truth.json").read_text())["clips"]
    library = default_library()
    rows = []
    for name, entry in clips.items():
        if args.clips and name not in args.clips:
            continue
        exercise = library.match(entry.get("exercise")) or library.get("squat")
        seqs = []
        for backend_name in ("mediapipe", "blazepose"):
            opts: dict[str, object] = {"runtime": args.runtime}
            if args.detect_every:
                opts["detect_every"] = args.detect_every
            if args.track_scale:
                opts["track_scale"] = args.track_scale
            backend = create_backend(
                backend_name, variant=args.variant, max_people=args.max_people, **opts
            )
            try:
                path = args.dataset / "clips" / name
                seqs.append(estimate_video(path, backend, max_frames=args.max_frames))
            finally:
                backend.close()
        rows.append({"clip": name, "exercise": exercise.id, **compare(*seqs, exercise)})
        r = rows[-1]
        print(
            f"{name:36s} {r['frames']:4d} found {r['found_ref']:4d}/{r['found_new']:4d} "
            f"median {r['median_pct_diag']:.3f}% p95 {r['p95_pct_diag']:.3f}% "
            f"reps {r['reps_ref']}/{r['reps_new']} ROM diff {r['rom_max_diff_deg']:.2f} deg "
            f"people {r['max_people_ref']}/{r['max_people_new']}",
            flush=True,
        )
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "variant": args.variant,
        "runtime": args.runtime,
        "detect_every": args.detect_every,
        "clips": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
