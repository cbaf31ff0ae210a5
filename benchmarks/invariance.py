"""Does the count survive what changes between recordings of the same movements?

    python benchmarks/invariance.py [DATASET_DIR] [--cache DIR] [--out FILE.json]

Every clip of a dataset laid out like ../shared/data runs through the pose
model once (MediaPipe, full; `--cache` keeps the poses between runs), then
its exercise is counted on the same poses changed as another recording of
the same movements would change them:
- mirrored (`telerehab.pose.views.mirrored`): filmed facing the other way;
- played at 0.5x to 2x (`at_speed`): a slower or faster patient;
- with landmark jitter added (Gaussian, a share of the median trunk length,
  3 seeds): a smaller, more distant or blurred patient;
- started at every whole second (`PoseSequence.between`): a camera switched
  on late. The count must be the repetitions the whole recording counted
  from there on, one more only when the cut fell inside one;
- with `--smaller W ...`: the video itself scaled down to W pixels wide (an
  old webcam), the model run again on it: this one tests model and engine.
A clip of no exercise is counted under every library exercise at every
speed and jitter (phantoms). Prints a table and the totals, writes JSON.
Apart from `--smaller`, the model is not run on changed videos: this tests
the engine, not the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
SPEEDS = (0.5, 0.8, 1.25, 1.4, 2.0)
JITTER = (0.02, 0.05)  # of the median trunk length
SEEDS = (0, 1, 2)


def jittered(seq, share: float, seed: int):
    """`seq` with Gaussian noise of `share` trunk lengths (sd) on every image
    landmark and of `share` of a 0.5 m trunk on every world landmark."""
    from telerehab.pose.landmarks import trunk

    px = seq.image[..., :2] * (seq.width, seq.height)
    length = float(np.nanmedian(np.linalg.norm(trunk(px), axis=-1)))
    rng = np.random.default_rng(seed)
    image = seq.image.copy()
    sd = share * length / np.array([seq.width, seq.height])
    image[..., :2] += (rng.standard_normal(image[..., :2].shape) * sd).astype(np.float32)
    world = seq.world + (rng.standard_normal(seq.world.shape) * share * 0.5).astype(np.float32)
    return dataclasses.replace(seq, image=image, world=world)


def _smaller(path: Path, width: int):
    """The video at `path` with its frames scaled down to `width` pixels wide
    (area averaging, as a camera's own scaler does), for `estimate_video`."""
    from telerehab.pose.video import VideoFile

    class Smaller(VideoFile):
        def __init__(self) -> None:
            super().__init__(path)
            w = min(width, self.info.width)  # never larger than it was
            self.size = (w, max(2, round(self.info.height * w / self.info.width)))
            self.info = dataclasses.replace(self.info, width=self.size[0], height=self.size[1])

        def __iter__(self):
            import cv2

            for frame in super().__iter__():
                rgb = cv2.resize(frame.rgb, self.size, interpolation=cv2.INTER_AREA)
                yield dataclasses.replace(frame, rgb=rgb)

    return Smaller()


def main(argv: list[str] | None = None) -> int:
    from accuracy import read_dataset, report  # benchmarks/accuracy.py, beside this script

    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.pose.views import at_speed, mirrored
    from telerehab.rehab_programs.engine import analyze_sequence
    from telerehab.rehab_programs.library import default_library

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset", type=Path, nargs="?", default=DEFAULT_DATA)
    p.add_argument("--cache", type=Path, help="folder keeping the clips' poses between runs")
    p.add_argument("--default-exercise", default="squat")
    p.add_argument(
        "--smaller",
        type=int,
        nargs="*",
        default=[],
        metavar="WIDTH",
        help="also run the model on each clip scaled down to these widths (pixels)",
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "invariance.json")
    args = p.parse_args(argv)

    if (found := read_dataset(args.dataset)) is None:
        return 2
    clips, folder = found
    library = default_library()

    def poses(name: str, width: int | None = None):
        tag = f".w{width}" if width else ""
        cached = args.cache / f"{name}{tag}.poses.pkl" if args.cache else None
        if cached is not None and cached.is_file():
            return pickle.loads(cached.read_bytes())
        backend = create_backend("mediapipe", variant="full", mode="video")
        try:
            source = _smaller(folder / name, width) if width else folder / name
            seq = estimate_video(source, backend)
        finally:
            backend.close()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps(seq))
        return seq

    rows = []
    head = (
        f"{'clip':38s} {'exercise':18s} truth base mirror "
        + " ".join(f"x{s:<4g}" for s in SPEEDS)
        + " "
        + " ".join(f"jit{j:g}" for j in JITTER)
        + " cut-viol"
        + "".join(f" w{w}" for w in args.smaller)
    )
    print(head)
    for name, entry in clips.items():
        seq = poses(name)
        exercise = library.match(entry.get("exercise")) or library.get(args.default_exercise)
        # Every changed recording once (the smaller ones cost a model run each).
        speeds = {s: at_speed(seq, s) for s in SPEEDS}
        jitters = {j: [jittered(seq, j, k) for k in SEEDS] for j in JITTER}
        smaller = {w: poses(name, w) for w in args.smaller}
        base = analyze_sequence(seq, exercise)
        row = {
            "clip": name, "exercise": exercise.id, "truth": entry["reps"],
            "base": base.summary.reps,
            "mirror": analyze_sequence(mirrored(seq), exercise).summary.reps,
            "speed": {str(s): analyze_sequence(v, exercise).summary.reps
                      for s, v in speeds.items()},
            "jitter": {str(j): [analyze_sequence(v, exercise).summary.reps for v in vs]
                       for j, vs in jitters.items()},
            "smaller": {str(w): analyze_sequence(v, exercise).summary.reps
                        for w, v in smaller.items()},
        }  # fmt: skip
        cuts = []
        for cut in map(float, np.arange(1.0, seq.t_s[-1] - 0.5, 1.0)):  # plain numbers for JSON
            after = int(sum(r.t_start_s >= cut for r in base.reps))
            inside = any(r.t_start_s < cut < r.t_end_s for r in base.reps)
            got = analyze_sequence(seq.between(cut), exercise).summary.reps
            if not after <= got <= after + inside:
                cuts.append({"cut_s": cut, "expected": after, "inside": inside, "got": got})
        row["cut_violations"] = cuts
        if entry.get("exercise") is None:  # no exercise: every exercise, every change
            changed = [seq, *speeds.values(), *(v for vs in jitters.values() for v in vs),
                       *smaller.values()]  # fmt: skip
            phantom = {}
            for ex in library:
                n = sum(analyze_sequence(v, ex).summary.reps for v in changed)
                if n:
                    phantom[ex.id] = n
            row["phantoms_under_every_exercise"] = phantom
        rows.append(row)
        jit = " ".join(f"{'/'.join(map(str, v)):6s}" for v in row["jitter"].values())
        speed_cells = " ".join(f"{v:<5d}" for v in row["speed"].values())
        print(f"{name:38s} {exercise.id:18s} {row['truth']:5d} {row['base']:4d} "
              f"{row['mirror']:6d} {speed_cells} {jit} {len(cuts):8d}"
              + "".join(f" {v:4d}" for v in row["smaller"].values()))  # fmt: skip
        if "phantoms_under_every_exercise" in row:
            print(f"  no exercise, under every exercise, speeds, jitters and sizes: "
                  f"{row['phantoms_under_every_exercise'] or 'none'}")  # fmt: skip

    counted = [r for r in rows if r["exercise"] and clips[r["clip"]].get("exercise")]
    totals = {
        "clips": len(rows),
        "mirror_same_rate": float(np.mean([r["mirror"] == r["base"] for r in rows])),
        **{f"speed_{s}_same_rate": float(np.mean([r["speed"][str(s)] == r["base"] for r in rows]))
           for s in SPEEDS},
        **{f"jitter_{j}_same_rate": float(np.mean([c == r["base"] for r in rows
                                                   for c in r["jitter"][str(j)]]))
           for j in JITTER},
        "cut_violations": sum(len(r["cut_violations"]) for r in rows),
        **{f"smaller_{w}_same_rate": float(np.mean([r["smaller"][str(w)] == r["base"]
                                                   for r in rows]))
           for w in args.smaller},
        "no_exercise_phantoms": sum(sum(r.get("phantoms_under_every_exercise", {}).values())
                                    for r in rows),
        "exercise_clips": len(counted),
    }  # fmt: skip
    report(args.out, totals, rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
