"""Pose pipeline speed: backends side by side, stages timed apart; kernel speed-ups.

    python benchmarks/pose_speed.py [--clips DIR] [--clip-names A.mp4 ...]
        [--variants lite full heavy] [--max-frames 150] [--max-people 1 4]
        [--runners blazepose blazepose-ort ... plain-tasks] [--repeats 3]
        [--stages] [--kernel-frames 1000 10000 100000 1000000]
        [--out benchmarks/out/pose_speed.json]

Side by side (one process, same clips, same model, runs interleaved and
repeated, medians): every runner does the whole job of `telerehab pose` on
each clip, decoding included, and is timed in wall and CPU seconds:
- blazepose: the project's pipeline, default settings (LiteRT, 2 threads,
  decoding on a second thread);
- blazepose-ort: the same on ONNX Runtime (CPU);
- blazepose-track10: the same with the detector every 10th frame while
  someone is followed (not the default: see RESULTS.md);
- blazepose-ort-streams: every clip at once through one ONNX Runtime backend
  (`detect_many`, one batch per frame step; the GPU use, measured on CPU);
- mediapipe: the MediaPipe Tasks backend through the same estimator;
- plain-tasks: a plain MediaPipe Tasks loop (PyAV decode, `detect_for_video`,
  the same bundle and `num_poses`), the outside reference.
Ratios are frames/s over plain-tasks'. `--stages` also times decode,
inference and kinematics apart (the older table). Prints tables and writes
JSON. Not a test: numbers depend on the machine.
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


def _blazepose(variant: str, max_people: int, **options: object):
    from telerehab.pose.backend import create_backend

    return create_backend("blazepose", variant=variant, max_people=max_people, **options)


def _run_estimator(make_backend, clips: list[Path], max_frames: int) -> dict:
    """The whole `telerehab pose` job (decode thread, backend, tracker) on each clip."""
    from telerehab.pose.estimator import estimate_video

    backend = make_backend()  # model loading is not timed: paid once per process
    frames = 0
    stages: dict[str, float] = {}
    wall = cpu = 0.0
    try:
        for clip in clips:
            if hasattr(backend, "reset"):
                backend.reset()
            t0, c0 = time.perf_counter(), time.process_time()
            seq = estimate_video(clip, backend, max_frames=max_frames)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            frames += len(seq)
            if hasattr(backend, "timings"):
                for k, v in backend.timings().items():
                    stages[k] = stages.get(k, 0) + v
    finally:
        backend.close()
    return {"frames": frames, "wall_s": wall, "cpu_s": cpu, "stages": stages}


def _run_plain_tasks(variant: str, max_people: int, clips: list[Path], max_frames: int) -> dict:
    """A plain MediaPipe Tasks loop, as a user of MediaPipe would write it."""
    import av
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from telerehab.models import default_store, pose_landmarker_bundle

    bundle = pose_landmarker_bundle(default_store(), variant)
    frames = 0
    wall = cpu = 0.0
    for clip in clips:
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(bundle)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=max_people,
        )
        with vision.PoseLandmarker.create_from_options(options) as landmarker:
            landmarker.detect_for_video(
                mp.Image(mp.ImageFormat.SRGB, np.zeros((64, 64, 3), np.uint8)), 0
            )
            t0, c0 = time.perf_counter(), time.process_time()
            with av.open(str(clip)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for k, frame in enumerate(container.decode(stream)):
                    if k >= max_frames:
                        break
                    image = mp.Image(mp.ImageFormat.SRGB, frame.to_ndarray(format="rgb24"))
                    landmarker.detect_for_video(image, 1 + int(frame.time * 1000))
                    frames += 1
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
    return {"frames": frames, "wall_s": wall, "cpu_s": cpu, "stages": {}}


def _run_streams(make_backend, clips: list[Path], max_frames: int) -> dict:
    """Every clip at once through one backend (`detect_many`): one batch per frame step."""
    from telerehab.pose.video import VideoFile, prefetch

    backend = make_backend()
    frames = 0
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        sources = {c.name: prefetch(VideoFile(c)) for c in clips}
        count = dict.fromkeys(sources, 0)
        while sources:
            batch = []
            for name, it in list(sources.items()):
                f = next(it, None)
                if f is None or count[name] >= max_frames:
                    it.close()
                    del sources[name]
                    continue
                count[name] += 1
                batch.append((name, f.rgb, f.t_s))
            if batch:
                backend.detect_many(batch)
                frames += len(batch)
        stages = backend.timings()
    finally:
        backend.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"frames": frames, "wall_s": wall, "cpu_s": cpu, "stages": stages}


RUNNERS = (
    "blazepose", "blazepose-ort", "blazepose-track10", "blazepose-ort-streams", "mediapipe",
    "plain-tasks",
)  # fmt: skip


def bench_side_by_side(
    clips: list[Path],
    variant: str,
    max_people: int,
    max_frames: int,
    runners: list[str],
    repeats: int,
) -> list[dict]:
    """Every runner on the same clips, interleaved `repeats` times; medians per runner."""
    from telerehab.pose.backend import create_backend

    makers = {
        "blazepose": lambda: _blazepose(variant, max_people),
        "blazepose-ort": lambda: _blazepose(variant, max_people, runtime="onnxruntime"),
        "blazepose-track10": lambda: _blazepose(variant, max_people, detect_every=10),
        "mediapipe": lambda: create_backend("mediapipe", variant=variant, max_people=max_people),
    }
    runs: dict[str, list[dict]] = {r: [] for r in runners}
    for _ in range(repeats):
        for r in runners:
            if r == "plain-tasks":
                runs[r].append(_run_plain_tasks(variant, max_people, clips, max_frames))
            elif r == "blazepose-ort-streams":
                runs[r].append(_run_streams(makers["blazepose-ort"], clips, max_frames))
            else:
                runs[r].append(_run_estimator(makers[r], clips, max_frames))
    rows = []
    for r, rs in runs.items():
        frames = rs[0]["frames"]
        wall = float(np.median([x["wall_s"] for x in rs]))
        cpu = float(np.median([x["cpu_s"] for x in rs]))
        stages = {
            k: float(np.median([x["stages"].get(k, 0.0) for x in rs])) for k in rs[0]["stages"]
        }
        rows.append(
            {
                "runner": r, "variant": variant, "max_people": max_people, "frames": frames,
                "repeats": repeats, "fps": frames / wall, "wall_s": wall,
                "cpu_s_per_frame": cpu / frames, "cores_busy": cpu / wall,
                "stages_ms_per_frame": {
                    k.removesuffix("_s"): 1000 * v / frames for k, v in stages.items()
                    if k.endswith("_s")
                },
                "counts": {k: v for k, v in stages.items() if not k.endswith("_s")},
            }
        )  # fmt: skip
    ref = next((x["fps"] for x in rows if x["runner"] == "plain-tasks"), None)
    for x in rows:
        x["fps_vs_plain_tasks"] = x["fps"] / ref if ref else None
    return rows


def bench_networks(variant: str, batches: list[int], runs: int = 20) -> list[dict]:
    """The bare networks, per image, under each runtime (2 threads), batch by batch."""
    from telerehab.models import default_store
    from telerehab.models.onnx_export import onnx_model
    from telerehab.pose.runtimes import LiteRTRuntime, OnnxRuntime

    store = default_store()
    rows = []
    for role, file in (("detector", store.manifest.detector()),
                       (variant, store.manifest.landmarks(variant))):  # fmt: skip
        (tflite,) = store.require(file)
        for name, rt in (("litert", LiteRTRuntime(tflite)),
                         ("onnxruntime", OnnxRuntime(onnx_model(store, file)))):  # fmt: skip
            for n in batches:
                x = np.random.default_rng(0).random((n, *rt.input_shape), np.float32)
                rt(x)
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    rt(x)
                    times.append(time.perf_counter() - t0)
                rows.append({"network": role, "runtime": name, "batch": n,
                             "ms_per_image": 1000 * float(np.median(times)) / n})  # fmt: skip
            rt.close()
    return rows


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
    p.add_argument("--clip-names", nargs="*", help="only these clips (default: every clip)")
    p.add_argument("--max-frames", type=int, default=150, help="frames per clip")
    p.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=RUNNERS)
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per runner")
    p.add_argument("--stages", action="store_true", help="also the decode/inference table")
    p.add_argument(
        "--networks",
        nargs="*",
        type=int,
        default=[],
        metavar="BATCH",
        help="also time the bare networks at these batch sizes (e.g. 1 8)",
    )
    p.add_argument("--kernel-frames", nargs="*", type=int, default=[10**3, 10**4, 10**5, 10**6])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "pose_speed.json")
    args = p.parse_args(argv)

    clips = sorted(args.clips.glob("*.mp4"))
    if args.clip_names:
        clips = [c for c in clips if c.name in args.clip_names]
    if not clips:
        print(f"no clips in {args.clips}", file=sys.stderr)
        return 2
    side = [
        row
        for v in args.variants
        for m in args.max_people
        for row in bench_side_by_side(clips, v, m, args.max_frames, args.runners, args.repeats)
    ]
    print(f"\nSide by side, {len(clips)} clip(s), <= {args.max_frames} frames each, "
          f"median of {args.repeats} interleaved runs")  # fmt: skip
    print(f"{'runner':18s} {'variant':7s} {'people':>6s} {'frames':>6s} {'fps':>6s} "
          f"{'vs plain':>8s} {'cpu ms/f':>8s} {'cores':>5s}  stages ms/frame")  # fmt: skip
    for r in side:
        ratio = f"{r['fps_vs_plain_tasks']:7.2f}x" if r["fps_vs_plain_tasks"] else "       -"
        stages = " ".join(f"{k} {v:.1f}" for k, v in r["stages_ms_per_frame"].items())
        print(
            f"{r['runner']:18s} {r['variant']:7s} {r['max_people']:6d} {r['frames']:6d} "
            f"{r['fps']:6.1f} {ratio} {1000 * r['cpu_s_per_frame']:8.1f} "
            f"{r['cores_busy']:5.2f}  {stages}"
        )
    pipeline = (
        [
            bench_pipeline(clips, v, m, args.max_frames)
            for v in args.variants
            for m in args.max_people
        ]
        if args.stages
        else []
    )
    kernels = bench_kernels(args.kernel_frames) if args.kernel_frames else []
    networks = (
        [r for v in args.variants for r in bench_networks(v, args.networks)]
        if args.networks
        else []
    )
    if networks:
        print("\nBare networks, ms per image (median of 20 calls), 2 threads")
        for r in networks:
            print(
                f"{r['network']:9s} {r['runtime']:12s} batch {r['batch']:3d} "
                f"{r['ms_per_image']:7.2f}"
            )

    if pipeline:
        print(f"\nMediaPipe backend, {len(clips)} clips, <= {args.max_frames} frames each")
        print(f"{'variant':8s} {'people':>6s} {'frames':>6s} {'decode':>8s} {'infer':>8s} "
              f"{'kinem.':>8s} {'fps':>6s} {'RSS MiB':>8s}")  # fmt: skip
    for r in pipeline:
        print(
            f"{r['variant']:8s} {r['max_people']:6d} {r['frames']:6d} "
            f"{r['decode_ms_per_frame']:7.1f}ms {r['inference_ms_per_frame']:7.1f}ms "
            f"{r['kinematics_ms_per_frame']:7.3f}ms {r['end_to_end_fps']:6.1f} "
            f"{r['peak_rss_mib']:8.0f}"
        )
    if kernels:
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
        "side_by_side": side,
        "networks": networks,
        "pipeline": pipeline,
        "kernels": kernels,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
