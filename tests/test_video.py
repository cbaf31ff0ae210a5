"""Video sources: real clips decode with container timing; bad files fail by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telerehab.errors import VideoError
from telerehab.pose.video import VideoFile, open_video


def test_real_clip_decodes_with_container_timestamps(clip) -> None:
    v = VideoFile(clip("squat_side_yuyoujiang.mp4"))
    assert (v.info.width, v.info.height) == (960, 544)
    frames = list(v)
    assert len(frames) == v.info.n_frames == 322
    t = np.array([f.t_s for f in frames])
    assert t[0] == 0.0 and (np.diff(t) > 0).all()
    assert t[-1] == pytest.approx(321 / v.info.fps, abs=0.05)
    assert frames[0].rgb.shape == (544, 960, 3) and frames[0].rgb.dtype == np.uint8


def _reencoded(
    source: Path, out: Path, degrees: int = 0, frames: int | None = None, keep_top: float = 1.0
) -> None:
    """`source` re-encoded: each picture turned back by `degrees` (counter-
    clockwise) with a display matrix saying to turn it by `degrees` to show
    it, as a phone held upright stores it (players show it as `source`
    looks), and cut to its top `keep_top` share of rows (a camera that does
    not see the feet)."""
    import av

    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = None
        for i, frame in enumerate(src.decode(video=0)):
            if frames is not None and i >= frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            rgb = rgb[: int(rgb.shape[0] * keep_top) // 2 * 2]
            rgb = np.ascontiguousarray(np.rot90(rgb, -degrees // 90))
            if stream is None:
                stream = dst.add_stream("libx264", rate=src.streams.video[0].average_rate)
                stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
                stream.options = {"crf": "18", "preset": "veryfast"}
                if degrees:
                    stream.set_display_rotation(degrees)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)


@pytest.mark.parametrize("degrees", [-90, 90, 180])
def test_a_phone_video_is_read_the_way_up_it_is_shown(clip, tmp_path: Path, degrees: int) -> None:
    """A phone held upright stores its picture on its side, with a display
    matrix saying how to turn it: frames and size come out as a player shows
    them, so the patient stands upright in every measurement (before, the
    trunk read as lying: a false trunk_lean on every squat, see test_engine)."""
    source = clip("squat_side_yuyoujiang.mp4")
    turned = tmp_path / f"phone{degrees}.mp4"
    _reencoded(source, turned, degrees, frames=12)
    upright = [f.rgb for f, _ in zip(VideoFile(source), range(12), strict=False)]
    video = VideoFile(turned)
    assert (video.info.width, video.info.height) == (960, 544)
    frames = [f.rgb for f in video]
    assert len(frames) == 12 and frames[0].shape == (544, 960, 3)
    for got, want in zip(frames, upright, strict=True):  # as shown: re-encoding loss only
        assert np.abs(got.astype(int) - want).mean() < 3
    stored = np.rot90(frames[0], -degrees // 90)  # the picture as stored, for contrast
    assert stored.shape != frames[0].shape or np.abs(stored.astype(int) - upright[0]).mean() > 20


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, ground_truth) -> dict[str, Path]:
    import av

    from tests.conftest import CLIPS

    d = tmp_path_factory.mktemp("bad")
    files = {"missing": d / "missing.mp4", "empty": d / "empty.mp4"}
    files["empty"].write_bytes(b"")
    files["text"] = d / "notes.mp4"
    files["text"].write_text("exercise notes, not a video\n")
    files["truncated"] = d / "truncated.mp4"
    files["truncated"].write_bytes((CLIPS / "squat_side_yuyoujiang.mp4").read_bytes()[:300_000])
    files["truncated_tail"] = d / "truncated_tail.mp4"  # moov atom at the end: cut off
    files["truncated_tail"].write_bytes((CLIPS / "pushup_correct1.mp4").read_bytes()[:40_000])
    files["zero_frames"] = d / "zero_frames.avi"
    with av.open(str(files["zero_frames"]), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
    return files


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file"),
        ("empty", r"file is empty \(0 bytes\)"),
        ("text", "not a readable video"),
        ("truncated_tail", "not a readable video"),
        ("zero_frames", "contains no decodable video frames"),
    ],
)
def test_bad_video_is_named(bad_files: dict[str, Path], kind: str, message: str) -> None:
    with pytest.raises(VideoError, match=message) as info:
        list(VideoFile(bad_files[kind]))
    assert str(bad_files[kind]) in str(info.value)


def test_truncated_video_keeps_good_frames_then_says_where(bad_files: dict[str, Path]) -> None:
    got = []
    with pytest.raises(VideoError, match=r"truncated: decoded (\d+) of the 322 frames") as info:
        for f in VideoFile(bad_files["truncated"]):
            got.append(f)
    assert 0 < len(got) < 322 and str(bad_files["truncated"]) in str(info.value)


def test_folder_and_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="is a folder"):
        VideoFile(tmp_path)
    with pytest.raises(VideoError, match="camera 97: cannot be opened"):
        open_video("97")


def test_prefetch_keeps_frames_errors_and_stops_early(clip, bad_files: dict[str, Path]) -> None:
    """Decoding on a second thread: same frames in order, the break raised after the
    good frames, and an early stop ends the thread."""
    import threading

    from telerehab.pose.video import prefetch

    name = clip("pushup_wrong51.mp4")
    direct = [(f.index, f.t_s, f.rgb.sum()) for f in VideoFile(name)]
    assert [(f.index, f.t_s, f.rgb.sum()) for f in prefetch(VideoFile(name), depth=2)] == direct

    got = []
    with pytest.raises(VideoError, match="truncated: decoded"):
        for f in prefetch(VideoFile(bad_files["truncated"])):
            got.append(f)
    assert 0 < len(got) < 322

    before = threading.active_count()
    frames = prefetch(VideoFile(clip("squat_side_yuyoujiang.mp4")), depth=2)
    assert next(frames).index == 0
    frames.close()
    assert threading.active_count() == before


def test_overlapping_model_loads_leave_stderr_where_it_was() -> None:
    """Live sessions load their models on their own threads at once; stderr
    is quieted for the process while any load runs and restored after the
    last one, whatever order they finish in (each saving and restoring it on
    its own left it pointing at /dev/null)."""
    import os
    import threading

    from telerehab.pose.mediapipe_backend import quiet_native_stderr

    def where() -> tuple[int, int]:
        st = os.fstat(2)
        return st.st_dev, st.st_ino

    null = os.stat(os.devnull)
    before = where()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int]] = {}

    def a() -> None:
        with quiet_native_stderr():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with quiet_native_stderr():
            b_in.set()
            a_out.wait(5)
            seen["b, after a left"] = where()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["b, after a left"] == (null.st_dev, null.st_ino)  # still quiet for b
    assert where() == before  # and the real stderr back once both are done
