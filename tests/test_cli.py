"""The `telerehab` command as a user runs it, on a short real clip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from telerehab.cli import main

SHORT = "pushup_correct1.mp4"  # 61 frames


@pytest.fixture
def model_dir(store, fresh_settings: pytest.MonkeyPatch) -> Path:
    fresh_settings.setenv("TELEREHAB_MODEL_DIR", str(store.root))
    return store.root


def test_pose_writes_csv_parquet_json(model_dir: Path, clip, tmp_path: Path, capsys) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    video = clip(SHORT)
    for suffix in (".csv", ".parquet", ".json"):
        out = tmp_path / f"pose{suffix}"
        args = ["pose", str(video), "--out", str(out), "--variant", "lite", "--no-progress"]
        assert main(args) == 0
        if suffix == ".json":
            doc = json.loads(out.read_text())
            rows, meta = doc["rows"], doc["meta"]
            assert meta["variant"] == "lite" and meta["source"] == str(video)
            assert {"nose_x", "left_knee_visibility", "world_left_hip_z_m"} <= set(rows[0])
        else:
            table = pq.read_table(out) if suffix == ".parquet" else pcsv.read_csv(out)
            rows = table.to_pylist()
            assert table.num_columns == 4 + 33 * 4 + 33 * 3
        assert len(rows) == 61 and [r["frame"] for r in rows] == list(range(61))
    printed = capsys.readouterr().out
    assert "frames     61" in printed and "patient found in" in printed


def test_angles_with_overlay(model_dir: Path, clip, tmp_path: Path, capsys) -> None:
    import av
    import pyarrow.csv as pcsv

    out, overlay = tmp_path / "angles.csv", tmp_path / "overlay.mp4"
    argv = ["angles", str(clip(SHORT)), "-o", str(out), "--annotate", str(overlay), "--no-progress"]
    assert main(argv) == 0
    table = pcsv.read_csv(out)
    elbow = np.array(table["right_elbow_flexion_deg"].to_pylist(), dtype=float)
    assert table.num_rows == 61 and np.isfinite(elbow).mean() > 0.9
    assert "world_left_shoulder_abduction_deg" in table.column_names
    with av.open(str(overlay)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 61
    printed = capsys.readouterr().out
    assert "right_elbow_flexion" in printed and "overlay" in printed


def test_missing_video_is_named(model_dir: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.mp4"
    assert main(["pose", str(missing), "--out", str(tmp_path / "x.csv")]) == 1
    assert f"error: {missing}: no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_unknown_variant_and_format(model_dir: Path, clip, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pose", str(clip(SHORT)), "--out", "x.csv", "--variant", "giant"])
    assert info.value.code == 2 and "'giant'" in capsys.readouterr().err
    assert main(["pose", str(clip(SHORT)), "--out", str(tmp_path / "x.xlsx")]) == 1
    assert "unknown output format '.xlsx'" in capsys.readouterr().err


def test_output_format_is_checked_before_any_work(
    fresh_settings: pytest.MonkeyPatch, clip, tmp_path: Path, capsys
) -> None:
    """With no model at hand, a bad --out still fails on the format: nothing ran first."""
    fresh_settings.setenv("TELEREHAB_MODEL_DIR", str(tmp_path / "no-models"))
    fresh_settings.setenv("TELEREHAB_AUTO_FETCH", "0")
    assert main(["angles", str(clip(SHORT)), "--out", str(tmp_path / "a.txt")]) == 1
    err = capsys.readouterr().err
    assert "unknown output format '.txt'" in err and "model file missing" not in err


def test_corrupted_model_is_named(store, fresh_settings, clip, tmp_path: Path, capsys) -> None:
    local = tmp_path / "models"
    local.mkdir()
    for f in store.manifest.files_for("lite"):
        shutil.copy(store.path(f), local / f.name)
    bad = local / "pose_landmark_lite.tflite"
    bad.write_bytes(b"\0" * 100 + bad.read_bytes()[100:])
    fresh_settings.setenv("TELEREHAB_MODEL_DIR", str(local))
    fresh_settings.setenv("TELEREHAB_AUTO_FETCH", "0")
    argv = ["pose", str(clip(SHORT)), "--out", str(tmp_path / "x.csv"), "--variant", "lite"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "SHA-256 mismatch" in err
    assert main(["models", "verify"]) == 1
    out = capsys.readouterr()
    assert f"CORRUPT  {bad}" in out.out and "models fetch --force" in out.err


def test_models_list_and_verify(model_dir: Path, capsys) -> None:
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert (
        "pose_landmark_heavy.tflite" in listing and "npm:@mediapipe/pose@0.5.1675469404" in listing
    )
    assert main(["models", "verify"]) == 0
    assert capsys.readouterr().out.count("ok ") == 4


def test_analyze_writes_json_and_csv(model_dir: Path, clip, tmp_path: Path, capsys) -> None:
    import pyarrow.csv as pcsv

    video = clip("bridge_side_physioplus.mp4")
    out_json, out_csv = tmp_path / "a.json", tmp_path / "a.csv"
    argv = ["analyze", str(video), "--exercise", "glute_bridge", "--json", str(out_json),
            "--csv", str(out_csv), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "glute_bridge: 1 repetition(s)" in printed
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "telerehab.analysis/1" and doc["summary"]["reps"] == 1
    assert doc["meta"]["exercise"] == "glute_bridge" and doc["reps"][0]["excursion_deg"] > 40
    types = [e["type"] for e in doc["events"]]
    assert types.index("rep_started") < types.index("rep_completed")
    table = pcsv.read_csv(out_csv)
    assert table.num_rows == 1 and {"t_peak_s", "quality", "faults"} <= set(table.column_names)


def test_analyze_with_a_program_and_bad_input(
    model_dir: Path, clip, tmp_path: Path, capsys
) -> None:
    import pyarrow.csv as pcsv

    program = tmp_path / "p.yaml"
    program.write_text(
        "title: Hips\nsessions_per_week: 3\nexercises:\n"
        "  - {exercise: glute_bridge, sets: 2, reps: 1}\n"
    )
    video = str(clip("bridge_side_physioplus.mp4"))
    assert main(["analyze", video, "--program", str(program), "--no-progress"]) == 0
    assert "glute_bridge: 1 repetition(s)" in capsys.readouterr().out
    two = tmp_path / "two.yaml"
    two.write_text(
        "title: Hips\nsessions_per_week: 3\nexercises:\n"
        "  - {exercise: glute_bridge, sets: 1, reps: 1}\n"
        "  - {exercise: straight_leg_raise, sets: 1, reps: 10}\n"
    )
    out_json, out_csv = tmp_path / "prog.json", tmp_path / "prog.csv"
    args = ["analyze", video, "--program", str(two), "--json", str(out_json), "--csv", str(out_csv)]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "== glute_bridge: prescribed 1 x 1, 0.0-" in out
    assert "== straight_leg_raise: prescribed 1 x 10, not reached" in out
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "telerehab.program_analysis/1" and doc["program"] == "Hips"
    assert [(e["exercise"], e["summary"]["reps"]) for e in doc["exercises"]] == [
        ("glute_bridge", 1), ("straight_leg_raise", 0),
    ]  # fmt: skip
    assert doc["exercises"][1]["t_start_s"] is None
    table = pcsv.read_csv(out_csv)
    assert table.column("exercise").to_pylist() == ["glute_bridge"]
    assert main(["analyze", video, "--program", str(two), "--side", "left"]) == 1
    assert "give --pick" in capsys.readouterr().err
    assert main(["analyze", video, "--exercise", "glute_bridge", "--calibration", "0"]) == 1
    assert "--calibration '0': expected two numbers REST,END" in capsys.readouterr().err
    assert main(["analyze", video, "--exercise", "bridge_glute"]) == 1
    assert "unknown exercise 'bridge_glute'" in capsys.readouterr().err
    assert main(["analyze", video, "--program", str(program), "--pick", "squat"]) == 1
    assert "--pick 'squat': not in" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["litert", "onnxruntime"])
def test_pose_with_the_blazepose_backend(model_dir: Path, clip, tmp_path: Path, capsys, runtime):
    """`--backend blazepose [--runtime R]` runs the project's pipeline and says so."""
    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime")
    out = tmp_path / "pose.csv"
    argv = ["pose", str(clip(SHORT)), "--out", str(out), "--variant", "lite", "--no-progress",
            "--backend", "blazepose", "--runtime", runtime]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "model      blazepose lite" in printed.out and "frames     61" in printed.out
    assert "XNNPACK" not in printed.err  # LiteRT's own log lines stay quiet
    with pytest.raises(SystemExit):
        main(["pose", str(clip(SHORT)), "--out", str(out), "--backend", "tensorflow"])
