"""The `telerehab` command: parse, call the library, print."""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from telerehab import cli_server
from telerehab.errors import TelerehabError

logger = logging.getLogger("telerehab")

# Angles summarised at the end of `telerehab angles` when present.
_SUMMARY_ANGLES = (
    "left_knee_flexion", "right_knee_flexion", "left_hip_flexion", "right_hip_flexion",
    "left_elbow_flexion", "right_elbow_flexion", "left_shoulder_elevation",
    "right_shoulder_elevation", "trunk_lean",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TelerehabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`telerehab exercises list | head`)
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    from telerehab import __version__

    p = argparse.ArgumentParser(prog="telerehab", description=__doc__)
    p.add_argument("--version", action="version", version=f"telerehab {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    models = sub.add_parser("models", help="fetch, list and verify model weights")
    msub = models.add_subparsers(title="models commands", metavar="ACTION")
    fetch = msub.add_parser("fetch", help="download and verify weights from their registries")
    fetch.add_argument("--variant", default="full", choices=["lite", "full", "heavy", "all"])
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    fetch.set_defaults(func=_models_fetch)
    msub.add_parser("list", help="list the weight files and their state").set_defaults(
        func=_models_list
    )
    msub.add_parser("verify", help="check every present file's SHA-256").set_defaults(
        func=_models_verify
    )
    models.set_defaults(func=lambda a: (models.print_help(), 2)[1])

    for name, helptext, func in (
        ("pose", "landmarks of the patient in every frame", _pose),
        ("angles", "joint and segment angles in every frame", _angles),
    ):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("--out", "-o", required=True, help="output file: .csv, .parquet or .json")
        _add_video_options(c)
        c.set_defaults(func=func)
        if name == "angles":
            c.add_argument(
                "--filter",
                choices=["butterworth", "none"],
                default="butterworth",
                help="zero-phase low-pass of landmarks before angles (default butterworth)",
            )
            c.add_argument("--cutoff-hz", type=float, default=6.0, help="low-pass cutoff")
            c.add_argument(
                "--min-visibility", type=float, default=0.0, help="ignore less visible landmarks"
            )

    c = sub.add_parser("analyze", help="repetitions, ROM, tempo and quality in a video")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--exercise", help="exercise id (see `telerehab exercises list`)")
    which.add_argument(
        "--program",
        help="program YAML: follow its exercises in order through the video (or only --pick)",
    )
    c.add_argument("--pick", help="with --program: analyse only this one of its exercises")
    c.add_argument("--side", choices=["auto", "left", "right"], default=None)
    c.add_argument(
        "--calibration",
        metavar="REST,END",
        help="the patient's own range in degrees (e.g. 10,80 for a stiff shoulder): "
        "repetitions are judged against it",
    )
    c.add_argument(
        "--exercises", metavar="DIR", help="more exercise files (learned ones) beside the library"
    )
    c.add_argument("--json", metavar="FILE", help="write summary, repetitions and events as JSON")
    c.add_argument("--csv", metavar="FILE", help="write one row per repetition")
    cli_server.add_save_options(c)
    _add_video_options(c)
    c.set_defaults(func=_analyze)

    ex = sub.add_parser("exercises", help="the exercise library")
    exsub = ex.add_subparsers(title="exercises commands", metavar="ACTION")
    exsub.add_parser("list", help="every exercise").set_defaults(func=_exercises_list)
    show = exsub.add_parser("show", help="one exercise in full")
    show.add_argument("id")
    show.set_defaults(func=_exercises_show)
    learn = exsub.add_parser(
        "learn", help="a new exercise from a demonstration video (written for review)"
    )
    _add_video_options(learn)
    learn.add_argument("--id", required=True, help="the new exercise's id, e.g. wall_slide")
    learn.add_argument("--name", required=True, help="its name, as the patient reads it")
    learn.add_argument("--start", type=float, metavar="S", help="the demonstration starts here")
    learn.add_argument("--end", type=float, metavar="S", help="and ends here (seconds)")
    learn.add_argument("--instructions", help="what the patient is told (else a placeholder)")
    learn.add_argument(
        "--out", dest="exercise_out", metavar="FILE", help="the exercise file (default ID.yaml)"
    )
    learn.set_defaults(func=_exercises_learn)
    ex.set_defaults(func=lambda a: (ex.print_help(), 2)[1])

    pr = sub.add_parser("programs", help="exercise programs (prescriptions)")
    prsub = pr.add_subparsers(title="programs commands", metavar="ACTION")
    val = prsub.add_parser("validate", help="check a program file")
    val.add_argument("file")
    val.set_defaults(func=_programs_validate)
    pr.set_defaults(func=lambda a: (pr.print_help(), 2)[1])
    cli_server.add_parsers(sub)
    return p


def _add_video_options(c: argparse.ArgumentParser) -> None:
    """The video and pose options shared by pose, angles and analyze."""
    c.add_argument("video", help="video file, or a camera index such as 0")
    c.add_argument("--variant", choices=["lite", "full", "heavy"], help="model size")
    c.add_argument(
        "--backend",
        choices=["blazepose", "mediapipe"],
        help="pose backend: mediapipe (MediaPipe Tasks, the default) or blazepose (the "
        "project's pipeline, faster); TELEREHAB_POSE_BACKEND",
    )
    c.add_argument(
        "--runtime",
        choices=["litert", "onnxruntime"],
        help="runtime of the blazepose backend (default litert); TELEREHAB_POSE_RUNTIME",
    )
    c.add_argument("--max-people", type=int, default=4, help="people the detector looks for")
    c.add_argument("--person", metavar="X,Y", help="track the person nearest this point (0..1)")
    c.add_argument("--annotate", metavar="OUT.mp4", help="also write an overlay video")
    c.add_argument("--max-frames", type=int, help="stop after this many frames")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")


# --------------------------------------------------------------------------- progress


class _TqdmBytes:
    def __init__(self, label: str, total: int | None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, leave=False)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


# --------------------------------------------------------------------------- models


def _models_fetch(args: argparse.Namespace) -> int:
    from telerehab.models import default_store

    store = default_store()
    files = store.manifest.files_for(args.variant)
    paths = store.fetch(files, force=args.force, progress=_TqdmBytes)
    for f, path in zip(files, paths, strict=True):
        print(f"ok  {f.name:28s} {f.sha256[:16]}…  {path}")
    return 0


def _models_list(_args: argparse.Namespace) -> int:
    from telerehab.models import default_store

    store = default_store()
    print(f"model folder: {store.root}")
    for st in store.status():
        f = st.file
        state = "ok" if st.ok else ("CORRUPT" if st.present else "missing")
        role = f.role + (f" ({f.variant})" if f.variant else "")
        src = f.sources[0].package
        print(
            f"{state:8s} {f.name:28s} {role:18s} {f.size:>11,d} B  "
            f"{src.registry}:{src.name}@{src.version}  {f.licence}"
        )
    return 0


def _models_verify(_args: argparse.Namespace) -> int:
    from telerehab.models import default_store

    store = default_store()
    bad = 0
    for st in store.status():
        if not st.present:
            print(f"missing  {st.path}")
        elif st.ok:
            print(f"ok       {st.path}")
        else:
            bad += 1
            print(f"CORRUPT  {st.path}: expected {st.file.sha256}, got {st.sha256}")
    if bad:
        print(f"{bad} corrupt file(s): run `telerehab models fetch --force`", file=sys.stderr)
    return 1 if bad else 0


# --------------------------------------------------------------------------- pose / angles


def _estimate(args: argparse.Namespace):
    from tqdm import tqdm

    from telerehab.errors import ConfigError
    from telerehab.pose.backend import create_backend
    from telerehab.pose.estimator import estimate_video
    from telerehab.pose.export import check_output_path
    from telerehab.pose.tracking import PatientTracker
    from telerehab.pose.video import open_video

    for out in (getattr(args, name, None) for name in ("out", "csv")):
        if out:
            check_output_path(out)  # before minutes of inference, not after
    target = None
    if args.person:
        try:
            x, y = (float(v) for v in args.person.split(","))
        except ValueError:
            raise ConfigError(f"--person: expected X,Y in 0..1, got {args.person!r}") from None
        target = (x, y)
    video = open_video(args.video)
    backend = create_backend(
        args.backend, variant=args.variant, mode="video", max_people=args.max_people,
        runtime=args.runtime, progress=_TqdmBytes,
    )  # fmt: skip
    total = video.info.n_frames
    if args.max_frames:
        total = min(total or args.max_frames, args.max_frames)
    bar = tqdm(total=total, unit="frame", desc=Path(str(args.video)).name, disable=args.no_progress)
    started = time.perf_counter()
    try:
        seq = estimate_video(
            video, backend, tracker=PatientTracker(target=target),
            on_frame=lambda _f: bar.update(1), max_frames=args.max_frames,
        )  # fmt: skip
    finally:
        bar.close()
        backend.close()
    return seq, time.perf_counter() - started


def _report(seq, elapsed: float, out: Path) -> None:
    n = len(seq)
    print(f"video      {seq.source}  {seq.width}x{seq.height}  {seq.fps:.2f} fps")
    duration = seq.t_s[-1] if n else 0.0
    print(f"frames     {n} ({duration:.2f} s), patient found in {seq.detection_rate:.1%}")
    print(f"people     up to {seq.max_people} in one frame")
    print(f"model      {seq.backend} {seq.variant}, {elapsed / max(n, 1) * 1000:.1f} ms/frame")
    for w in seq.warnings:
        print(f"warning    {w}")
    print(f"written    {out}")


def _pose(args: argparse.Namespace) -> int:
    from telerehab.pose.export import landmark_columns, sequence_meta, write_table

    seq, elapsed = _estimate(args)
    out = write_table(landmark_columns(seq), args.out, sequence_meta(seq))
    if args.annotate:
        from telerehab.pose.annotate import write_annotated

        print(f"overlay    {write_annotated(args.video, seq, None, args.annotate)}")
    _report(seq, elapsed, out)
    return 0 if seq.complete else 1


def _angles(args: argparse.Namespace) -> int:
    from telerehab.pose.export import angle_columns, sequence_meta, write_table
    from telerehab.pose.filters import butterworth
    from telerehab.pose.kinematics import compute_angles

    seq, elapsed = _estimate(args)
    image, world = seq.image, seq.world
    if args.filter == "butterworth" and len(seq) > 1:
        image = image.copy()
        image[:, :, :3] = butterworth(seq.image[:, :, :3], seq.t_s, cutoff_hz=args.cutoff_hz)
        world = butterworth(seq.world, seq.t_s, cutoff_hz=args.cutoff_hz)
    img = compute_angles(
        image, "image", width=seq.width, height=seq.height, min_visibility=args.min_visibility
    )
    wld = compute_angles(
        world, "world", visibility=seq.image[:, :, 3], min_visibility=args.min_visibility
    )
    meta = sequence_meta(seq) | {"filter": args.filter, "cutoff_hz": args.cutoff_hz}
    out = write_table(angle_columns(seq, img, wld), args.out, meta)
    if args.annotate:
        from telerehab.pose.annotate import write_annotated

        seen = compute_angles(
            image, "image", width=seq.width, height=seq.height, min_visibility=0.5
        )
        print(f"overlay    {write_annotated(args.video, seq, seen, args.annotate)}")
    _report(seq, elapsed, out)
    print(f"{'angle (image plane)':28s} {'min':>7s} {'max':>7s} {'range':>7s}  deg")
    for name in _SUMMARY_ANGLES:
        span = img.range_deg(name)
        if span is not None:
            print(f"{name:28s} {span[0]:7.1f} {span[1]:7.1f} {span[1] - span[0]:7.1f}")
    return 0 if seq.complete else 1


# --------------------------------------------------------------------------- exercises


def _exercises_list(_args: argparse.Namespace) -> int:
    from telerehab.rehab_programs.library import default_library

    for ex in default_library():
        views = "/".join(ex.views)
        print(f"{ex.id:24s} {ex.name:32s} {ex.laterality:10s} {views:12s} {ex.signal_angle}")
    return 0


def _exercises_learn(args: argparse.Namespace) -> int:
    import yaml

    from telerehab.rehab_programs.learn import learn_exercise

    out = Path(args.exercise_out or f"{args.id}.yaml")
    if out.suffix not in (".yaml", ".yml"):
        raise TelerehabError(f"--out {str(out)!r}: expected a .yaml file")
    seq, _elapsed = _estimate(args)
    demo = seq.between(args.start, args.end)
    span = f"{demo.t_s[0]:.1f}-{demo.t_s[-1]:.1f} s" if len(demo) else "no frames"
    doc = learn_exercise(
        demo, args.id, args.name, instructions=args.instructions, origin=f"{args.video} {span}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    ph, rom = doc["phases"], doc["target_rom"]
    print(f"signal     {doc['signal']['angle']} ({doc['laterality']}), {ph['direction']}s "
          f"from {ph['rest_deg']:g} to {ph['peak_deg']:g} deg")  # fmt: skip
    print(f"view       {', '.join(doc['views'])}; anchors {', '.join(doc['anchors']) or 'none'}")
    print(f"target     {rom['min_deg']:g}-{rom['max_deg']:g} deg ({rom['source']})")
    t = doc["tempo"]
    print(f"tempo      up {t['up_s']:g} s, hold {t['hold_s']:g} s, down {t['down_s']:g} s")
    print(f"written    {out}: review it, then use it with --exercises {out.parent}")
    return 0


def _exercises_show(args: argparse.Namespace) -> int:
    from telerehab.rehab_programs.library import default_library

    ex = default_library().get(args.id)
    ph = ex.phases
    way = "rises" if ph.direction > 0 else "falls"
    print(f"{ex.name} ({ex.id})\n\n{ex.instructions}\n")
    print(f"camera view     {', '.join(ex.views)}")
    print(f"sides           {ex.laterality}")
    print(f"signal          {ex.signal_angle} ({ex.signal_space} space); it {way} during the move")
    for alt in ex.alternatives:
        print(f"or              {alt.angle} ({alt.space} space): {alt.why}")
    print(
        f"counting        any excursion from the patient's own rest of at least "
        f"{ph.min_excursion_deg:g} deg (more if the signal is noisy); typical rest "
        f"{ph.rest_deg:g} deg, turning point {ph.peak_deg:g} deg"
    )
    print(f"repetition      {ex.rep_min_s:g}-{ex.rep_max_s:g} s")
    lo, hi = ex.target_rom_deg
    print(f"target ROM      {lo:g}-{hi:g} deg ({ex.target_rom_source})")
    up, hold, down = ex.tempo_s
    print(f"tempo           up {up:g} s, hold {hold:g} s, down {down:g} s")
    for rule in ex.form_rules:
        print(f"form rule       {rule.id}: {rule.kind} {rule.angle} {rule.limit_deg:g} deg")
    print(f"needs           {', '.join(ex.landmarks)} (visibility >= {ex.min_visibility:g})")
    return 0


def _programs_validate(args: argparse.Namespace) -> int:
    from telerehab.rehab_programs.program import load_program

    prog = load_program(args.file)
    print(f"ok  {args.file}: {prog.title!r}, {prog.sessions_per_week} sessions/week")
    for item in prog.exercises:
        print(f"    {item.exercise_id:24s} {item.sets} x {item.reps}  side {item.side}")
    return 0


def _calibration(text: str, exercise) -> tuple[float, float]:
    from telerehab.errors import ConfigError

    try:
        rest, end = (float(v) for v in text.split(","))
        exercise.phases.calibrated_span(rest, end)
    except ValueError as exc:
        why = str(exc) if "calibration" in str(exc) else "expected two numbers REST,END"
        raise ConfigError(f"--calibration {text!r}: {why}") from None
    return rest, end


def _analyze(args: argparse.Namespace) -> int:
    from telerehab.errors import ConfigError
    from telerehab.pose.export import sequence_meta
    from telerehab.rehab_programs.engine import analyze_sequence
    from telerehab.rehab_programs.library import default_library
    from telerehab.rehab_programs.program import load_program

    library = default_library()
    if args.exercises:
        library = library.with_folder(args.exercises)
    options: dict = {}
    if args.program:
        prog = load_program(args.program, library)
        items = [i for i in prog.exercises if args.pick in (None, i.exercise_id)]
        if not items:
            known = ", ".join(i.exercise_id for i in prog.exercises)
            raise ConfigError(f"--pick {args.pick!r}: not in {args.program} (it has {known})")
        if args.pick is None and len(items) > 1:
            if args.side or args.calibration or args.annotate:
                raise ConfigError(
                    "--side, --calibration and --annotate apply to one exercise: give --pick, "
                    f"or set side and calibration per exercise in {args.program}"
                )
            return _analyze_program(args, prog)
        item = items[0]
        exercise = library.get(item.exercise_id)
        options = item.engine_options()
    else:
        exercise = library.get(args.exercise)
    if args.side:
        options["side"] = args.side
    if args.calibration:
        options["calibration_deg"] = _calibration(args.calibration, exercise)
    cli_server.check_save(args)
    seq, elapsed = _estimate(args)
    analysis = analyze_sequence(seq, exercise, **options)
    meta = sequence_meta(seq) | {"exercise": exercise.id}
    _report(seq, elapsed, Path(args.json or args.csv or "-"))
    _print_analysis(analysis)
    _write_results(args, analysis, meta, seq)
    if args.annotate:
        from telerehab.pose.annotate import write_annotated
        from telerehab.pose.kinematics import compute_angles

        angles = compute_angles(seq.image, "image", width=seq.width, height=seq.height)
        show = tuple(n for n in angles.names if n.endswith(exercise.signal_angle))
        out = write_annotated(args.video, seq, angles, args.annotate, show=show,
                              extra_labels=_rep_labels(seq, analysis))  # fmt: skip
        print(f"overlay    {out}")
    return 0 if seq.complete else 1


def _analyze_program(args: argparse.Namespace, prog) -> int:
    from telerehab.pose.export import sequence_meta
    from telerehab.rehab_programs.program_run import analyze_program

    cli_server.check_save(args)
    seq, elapsed = _estimate(args)
    result = analyze_program(seq, prog)
    meta = sequence_meta(seq) | {"program": prog.title}
    _report(seq, elapsed, Path(args.json or args.csv or "-"))
    for run in result.runs:
        p = run.prescribed
        span = (
            "not reached"
            if math.isnan(run.t_start_s)
            else f"{run.t_start_s:.1f}-{run.t_end_s:.1f} s"
        )
        print(f"\n== {p.exercise_id}: prescribed {p.sets} x {p.reps}, {span}")
        _print_analysis(run.analysis)
    _write_results(args, result, meta, seq)
    return 0 if seq.complete else 1


def _write_results(args: argparse.Namespace, result, meta: dict, seq) -> None:
    """--json, --csv and --save for an analysis or a program analysis."""
    from telerehab.pose.export import write_table
    from telerehab.rehab_programs.report import rep_columns, write_analysis_json

    if args.json:
        write_analysis_json(result, args.json, meta)
    if args.csv:
        write_table(rep_columns(result), args.csv, meta)
    if args.save:
        cli_server.save_analysis(args, result, seq)


def _print_analysis(analysis) -> None:
    s = analysis.summary
    head = ("#", "side", "start", "turn", "end", "up", "hold", "down", "min", "max", "ROM", "qual")
    widths = (3, -5, 6, 6, 6, 5, 5, 5, 6, 6, 6, 4)
    print(
        "\n"
        + " ".join(
            f"{h:<{-w}s}" if w < 0 else f"{h:>{w}s}" for h, w in zip(head, widths, strict=True)
        )
        + "  faults"
    )
    for r in analysis.reps:
        print(
            f"{r.index:3d} {r.side:5s} {r.t_start_s:6.2f} {r.t_peak_s:6.2f} {r.t_end_s:6.2f} "
            f"{r.up_s:5.2f} {r.hold_s:5.2f} {r.down_s:5.2f} {r.rom_min_deg:6.1f} "
            f"{r.rom_max_deg:6.1f} {r.excursion_deg:6.1f} {r.quality:4d}  {', '.join(r.faults)}"
        )
    share = (
        f", mean {s.mean_target_share:.0%} of the {s.target_rom_deg:.0f} deg target ROM"
        if math.isfinite(s.mean_target_share)
        else ""
    )
    print(
        f"\n{s.exercise}: {s.reps} repetition(s) ({s.partials} partial), side {s.side}, "
        f"mean ROM {s.mean_excursion_deg:.1f} deg{share}, mean quality {s.mean_quality:.0f}"
    )
    print(f"signal     {s.signal}")
    if s.faults:
        print("faults     " + ", ".join(f"{k} x{v}" for k, v in sorted(s.faults.items())))
    for e in analysis.events:
        text = getattr(e, "text", None)
        if text and type(e).__name__ == "WrongView":
            print(f"warning    {text}")
        elif text and type(e).__name__ == "SignalChosen":
            print(f"at {e.t_s:5.1f} s {text}")


def _rep_labels(seq, analysis) -> dict[int, list[str]]:
    """Per frame index: the repetition count so far and the latest cue."""
    done = sorted(r.t_end_s for r in analysis.reps)
    cues = [(e.t_s, e.text) for e in analysis.events if type(e).__name__ == "Feedback"]
    labels: dict[int, list[str]] = {}
    for i, t in zip(seq.index, seq.t_s, strict=True):
        count = sum(1 for d in done if d <= t)
        recent = [text for ct, text in cues if 0 <= t - ct < 2.5]
        labels[int(i)] = [f"reps: {count}", *recent[-1:]]
    return labels


if __name__ == "__main__":
    sys.exit(main())
