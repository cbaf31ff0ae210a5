"""Pose pipeline speed: decode, inference and kinematics timed apart; kernel speed-ups.

    python benchmarks/pose_speed.py [--clips DIR] [--variants lite full heavy]
        [--max-frames 150] [--max-people 1 4] [--kernel-frames 1000 10000 100000 1000000]
        [--out benchmarks/out/pose_speed.json]

Prints a table and writes JSON. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLIPS = REPO.parent / "shared" / "data" / "clips"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_pipeline(clips: list[Path], variant: str, max_people: int, max_frames: int) -> dict:
    from telerehab.pose.backend import create_backend
    from telerehab.pose.kinematics import compute_angles
    from telerehab.pose.video import VideoFile

    decode_s = infer_s = kin_s = 0.0
    frames = 0
    backend = create_backend("mediapipe", variant=variant, mode="video", max_people=max_people)
    try:
        for clip in clips:
            t0 = time.perf_counter()
            decoded = []
            with VideoFile(clip) as video:
                for vf in video:
                    decoded.append(vf)
                    if len(decoded) >= max_frames:
                        break
            decode_s += time.perf_counter() - t0
            image = np.empty((len(decoded), 33, 4), np.float32)
            t0 = time.perf_counter()
            for k, vf in enumerate(decoded):
                found = backend.detect(vf.rgb, vf.t_s + 1000.0 * len(clips))  # keep time rising
                image[k] = found.image[0] if found.n_people else np.nan
            infer_s += time.perf_counter() - t0
            h, w = decoded[0].rgb.shape[:2]
            t0 = time.perf_counter()
            compute_angles(image, "image", width=w, height=h)
            kin_s += time.perf_counter() - t0
            frames += len(decoded)
    finally:
        backend.close()
    total = decode_s + infer_s + kin_s
    return {
        "variant": variant,
        "max_people": max_people,
        "frames": frames,
        "decode_ms_per_frame": 1000 * decode_s / frames,
        "inference_ms_per_frame": 1000 * infer_s / frames,
        "kinematics_ms_per_frame": 1000 * kin_s / frames,
        "end_to_end_fps": frames / total,
        "peak_rss_mib": _peak_rss_mib(),
    }


def bench_kernels(sizes: list[int]) -> list[dict]:
    from telerehab.pose.kinematics import (
        angle_defs,
        angle_table_kernel,
        angle_table_reference,
        pack_defs,
        warm_up,
        with_midpoints,
    )

    warm_up()
    rng = np.random.default_rng(0)
    defs = angle_defs("image")
    packed = pack_defs(defs)
    scale = np.array([1280.0, 720.0, 0.0])
    rows = []
    for n in sizes:
        pts = with_midpoints(rng.random((n, 33, 3)).astype(np.float32))
        best_k = min(_timed(angle_table_kernel, pts, *packed, scale) for _ in range(3))
        best_r = min(_timed(angle_table_reference, pts, *packed, scale) for _ in range(2))
        rows.append(
            {
                "frames": n,
                "angles": len(defs),
                "kernel_s": best_k,
                "reference_s": best_r,
                "speedup": best_r / best_k,
                "kernel_us_per_frame": 1e6 * best_k / n,
                "peak_rss_mib": _peak_rss_mib(),
            }
        )
    return rows


def _timed(fn: Callable[..., object], *args: object) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    p.add_argument("--variants", nargs="+", default=["lite", "full", "heavy"])
    p.add_argument("--max-people", nargs="+", type=int, default=[1, 4])
    p.add_argument("--max-frames", type=int, default=150, help="frames per clip")
    p.add_argument("--kernel-frames", nargs="+", type=int, default=[10**3, 10**4, 10**5, 10**6])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "pose_speed.json")
    args = p.parse_args(argv)

    clips = sorted(args.clips.glob("*.mp4"))
    if not clips:
        print(f"no clips in {args.clips}", file=sys.stderr)
        return 2
    pipeline = [
        bench_pipeline(clips, v, m, args.max_frames) for v in args.variants for m in args.max_people
    ]
    kernels = bench_kernels(args.kernel_frames)

    print(f"\nPose pipeline, {len(clips)} clips, <= {args.max_frames} frames each")
    print(f"{'variant':8s} {'people':>6s} {'frames':>6s} {'decode':>8s} {'infer':>8s} "
          f"{'kinem.':>8s} {'fps':>6s} {'RSS MiB':>8s}")  # fmt: skip
    for r in pipeline:
        print(
            f"{r['variant']:8s} {r['max_people']:6d} {r['frames']:6d} "
            f"{r['decode_ms_per_frame']:7.1f}ms {r['inference_ms_per_frame']:7.1f}ms "
            f"{r['kinematics_ms_per_frame']:7.3f}ms {r['end_to_end_fps']:6.1f} "
            f"{r['peak_rss_mib']:8.0f}"
        )
    print("\nAngle table kernel (numba) vs NumPy reference")
    print(f"{'frames':>9s} {'angles':>6s} {'kernel s':>9s} {'numpy s':>9s} {'speedup':>8s} "
          f"{'us/frame':>9s}")  # fmt: skip
    for r in kernels:
        print(
            f"{r['frames']:9d} {r['angles']:6d} {r['kernel_s']:9.4f} {r['reference_s']:9.4f} "
            f"{r['speedup']:7.1f}x {r['kernel_us_per_frame']:9.3f}"
        )
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "python": sys.version.split()[0],
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "pipeline": pipeline,
        "kernels": kernels,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
