"""Skeleton-and-angles overlay, written to a video file only when asked."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .estimator import PoseSequence
from .kinematics import Angles
from .landmarks import EDGES
from .video import VideoFile

logger = logging.getLogger(__name__)

_LEFT = (66, 135, 245)  # RGB
_RIGHT = (245, 130, 48)
_TEXT = (255, 255, 255)


def draw_pose(
    rgb: np.ndarray, landmarks: np.ndarray, labels: list[str], min_visibility: float = 0.3
) -> None:
    """Draw the skeleton of (33, 4) `landmarks` and text `labels` onto `rgb` in place."""
    import cv2

    h, w = rgb.shape[:2]
    thick = max(2, round(min(h, w) / 240))
    pts = landmarks[:, :2] * (w, h)
    seen = np.isfinite(pts).all(axis=1) & (np.nan_to_num(landmarks[:, 3]) >= min_visibility)
    for a, b in EDGES:
        if seen[a] and seen[b]:
            colour = (
                _LEFT
                if a % 2 == 1 and b % 2 == 1
                else _RIGHT
                if a % 2 == 0 and b % 2 == 0
                else _TEXT
            )
            cv2.line(rgb, _pt(pts[a]), _pt(pts[b]), colour, thick, cv2.LINE_AA)
    for i in np.flatnonzero(seen):
        cv2.circle(rgb, _pt(pts[i]), thick + 1, _TEXT, -1, cv2.LINE_AA)
    scale = max(0.5, min(h, w) / 600)
    y = int(30 * scale)
    for text in labels:
        cv2.putText(
            rgb, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA
        )
        cv2.putText(rgb, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, _TEXT, thick, cv2.LINE_AA)
        y += int(30 * scale)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def most_moving(angles: Angles, n: int = 4) -> tuple[str, ...]:
    """The `n` angles with the widest range (2nd-98th percentile) over the video."""
    spans = []
    for name in angles.names:
        span = angles.range_deg(name, min_share=0.5)
        if span is not None:
            spans.append((span[1] - span[0], name))
    return tuple(name for _, name in sorted(spans, reverse=True)[:n])


def write_annotated(
    video_path: str | Path, seq: PoseSequence, angles: Angles | None, out_path: str | Path,
    show: tuple[str, ...] = (), extra_labels: Mapping[int, list[str]] | None = None,
) -> Path:  # fmt: skip
    """Re-read `video_path` and write it with the overlay to `out_path` (H.264 MP4).

    `extra_labels` adds lines of text per frame index (a count, a cue)."""
    import av

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    by_index = {int(i): k for k, i in enumerate(seq.index)}
    names = show or (most_moving(angles) if angles is not None else ())
    rate = round(seq.fps) if seq.fps > 0 else 30
    with VideoFile(video_path) as video, av.open(str(out_path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width = seq.width - seq.width % 2
        stream.height = seq.height - seq.height % 2
        stream.pix_fmt = "yuv420p"
        for vf in video:
            k = by_index.get(vf.index)
            if k is None:
                break
            rgb = np.ascontiguousarray(vf.rgb[: stream.height, : stream.width])
            labels = [f"t {vf.t_s:5.2f} s"]
            if angles is not None:
                labels += [
                    f"{n.replace('_', ' ')}: {angles[n][k]:.0f} deg"
                    for n in names
                    if np.isfinite(angles[n][k])
                ]
            if not seq.detected[k]:
                labels.append("no person found")
            if extra_labels is not None:
                labels += extra_labels.get(vf.index, [])
            draw_pose(rgb, seq.image[k], labels)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out_path
