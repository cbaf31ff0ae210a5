"""BlazePose run by the project: detector, regions of interest, landmark model.

The pre- and post-processing follow MediaPipe's own graphs (read from
`mediapipe/tasks/cc/vision/pose_detector/pose_detector_graph.cc`,
`pose_landmarker/pose_landmarks_detector_graph.cc`, `pose_landmarker_graph.cc`
and the calculators they name); the code is ours:

- detector: the whole image letterboxed to 224x224 (zero border), values in
  [-1, 1]; 2254 SSD anchors (5 layers, strides 8/16/32/32/32, fixed size);
  boxes and 4 keypoints decoded against the anchors (scale 224), scores
  sigmoid(clip(raw, +-100)) >= 0.5; weighted non-maximum suppression (IoU 0.5);
  letterbox removed.
- region of interest (ROI): centre on keypoint 0 (hips), side twice the
  distance to keypoint 1, rotation so that keypoint 0 -> 1 points up (90 deg
  target), squared on the long side and scaled by 1.25.
- landmark model: the ROI warped to 256x256 (bilinear, border replicated),
  values in [0, 1]; 39 landmarks x (x, y, z, visibility, presence) in crop
  pixels, visibility and presence through a sigmoid, x/y refined from the
  64x64 heatmap (7x7 window, sigmoid confidences, only where the peak is
  >= 0.5), projected back through the ROI (z scaled like x); world landmarks
  (metres) rotated by the ROI's rotation; pose present when the pose flag
  (already a probability) is >= 0.5.
- tracking ("video" mode): the next frame's ROI comes from the auxiliary
  landmarks 33 (centre) and 34 (scale), as from a detection. MediaPipe runs
  the detector whenever it follows fewer people than it looks for, and a
  detected ROI replaces a tracked one it overlaps (IoU > 0.5); so does this
  backend with `detect_every=1` (the default). With `detect_every=N` the
  detector runs only every N frames while at least one person is followed (a
  second person is noticed within N frames). That is faster, but the landmark
  model is not indifferent to its ROI: tracked ROIs are about 7% smaller than
  detected ones, and on the shared clips ROM then moves by up to 10 deg from
  the reference (benchmarks/RESULTS.md), so it is not the default.
  `max_people=1` follows one person and runs the detector only when lost.
- smoothing: MediaPipe's, where MediaPipe applies it (one person looked for,
  in a stream): `LandmarkSmoother`.
- not in MediaPipe, on frames where the detector ran: its box is the face's
  (MediaPipe's pose_detection graph says so), and a skeleton whose face is
  not in its region's face box is run again with the region turned by half a
  turn, and kept that way up when the face is then in the box
  (`face_inside`); a detected body circle no larger than the face box is
  dropped, and so is a skeleton under half the trunk of another with its
  face in the same box (a copy drawn in the head). On a patient lying with
  the feet towards the camera (the floor-press clip) MediaPipe's pipeline
  draws the body upside down in 78% of the frames and a second "person" in
  58%; this one, 5% and 9% (benchmarks/RESULTS.md). On the other shared
  clips the poses are bit-identical with and without these checks.
- the landmark model runs without its segmentation branch
  (`telerehab.models.pruned`; the other outputs are bit-identical).

Units: ROIs are normalised to the image (x by width, y by height), rotation in
radians, clockwise in image coordinates (y down).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from telerehab.errors import ConfigError, PoseError

from .backend import Detections, checked_options
from .landmarks import trunk
from .runtimes import Runtime, create_runtime

logger = logging.getLogger(__name__)

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
N_MODEL_LANDMARKS = 39  # 33 body landmarks + 6 auxiliary (33: hips centre, 34: scale point)


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated square region of the image.

    x_center, y_center, width, height: normalised to the image width / height
    (square in pixels: width * image_w == height * image_h).
    rotation_rad: clockwise in image coordinates (y down).
    """

    x_center: float
    y_center: float
    width: float
    height: float
    rotation_rad: float

    def turned(self) -> Roi:
        """The same region turned by half a turn (the body the other way up)."""
        return replace(self, rotation_rad=_normalize_radians(self.rotation_rad + math.pi))

    def box(self) -> np.ndarray:
        """(4,) axis-aligned x0, y0, x1, y1, ignoring rotation (as MediaPipe compares rects)."""
        return np.array(
            [
                self.x_center - self.width / 2,
                self.y_center - self.height / 2,
                self.x_center + self.width / 2,
                self.y_center + self.height / 2,
            ]
        )


@dataclass(frozen=True, slots=True)
class PoseDetection:
    """Detector output in image coordinates (normalised).

    box: (4,) x0, y0, x1, y1. keypoints: (4, 2) x, y (0: hips centre, 1: a
    point above the head giving the body's scale and direction). score: 0..1.
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


# --------------------------------------------------------------------------- detector


@lru_cache(maxsize=1)
def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres x, y in 0..1 (fixed size 1, so only centres matter).

    Strides 8, 16, 32, 32, 32 on a 224 input; layers of equal stride share a
    grid. Each layer adds 2 anchors per cell (aspect ratio 1 and the
    interpolated scale), so the 7x7 grid carries 6.
    """
    strides = [8, 16, 32, 32, 32]
    out = []
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2
            last += 1
        side = math.ceil(DETECTOR_SIZE / strides[layer])
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        centres = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        layer = last
    return np.concatenate(out).astype(np.float32)


def letterbox_matrix(
    width: int, height: int, size: int = DETECTOR_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Affine (2, 3) image -> size x size tensor keeping the aspect ratio, and the
    padding (left, top, right, bottom) as shares of the tensor."""
    side = max(width, height)
    s = size / side
    m = np.array([[s, 0, size / 2 - s * width / 2], [0, s, size / 2 - s * height / 2]])
    pad_x = (1 - width / side) / 2
    pad_y = (1 - height / side) / 2
    return m, np.array([pad_x, pad_y, pad_x, pad_y])


def detector_input(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(224, 224, 3) float32 in [-1, 1] of an (H, W, 3) uint8 image, and the padding."""
    import cv2

    h, w = rgb.shape[:2]
    _, pad = letterbox_matrix(w, h)
    side = max(w, h)
    tensor = _warp(rgb, (w / 2, h / 2), (side, side), 0.0, DETECTOR_SIZE, cv2.BORDER_CONSTANT)
    return tensor.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0), pad


def decode_detections(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (K, 4) x0, y0, x1, y1, keypoints (K, 4, 2) and scores (K,) of the
    anchors scoring at least `min_score`, in letterboxed tensor coordinates (0..1).

    raw_boxes: (2254, 12) x/y centre offset, w, h, then 4 keypoints x, y, in
    tensor pixels; raw_scores: (2254,) or (2254, 1) logits.
    """
    scores = _sigmoid(np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0))
    keep = np.flatnonzero(scores >= min_score)
    raw = raw_boxes[keep] / DETECTOR_SIZE
    anchors = ssd_anchors()[keep]
    cx = raw[:, 0] + anchors[:, 0]
    cy = raw[:, 1] + anchors[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
    return boxes, kps, scores[keep]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box `a` (4,) x0, y0, x1, y1 against boxes `b` (K, 4); 0 for empty unions."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Weighted non-maximum suppression, best first.

    The best remaining box takes every box overlapping it by more than
    `iou_threshold` (itself included) and becomes their score-weighted mean
    (box and keypoints); its score stays the best one's.
    """
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        overlap = box_iou(boxes[best], boxes[order])
        group = order[overlap > iou_threshold]
        if group.size == 0:  # a degenerate box that does not overlap itself
            group = order[:1]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(axis=0) / w.sum()
        kps = (keypoints[group] * w[:, :, None]).sum(axis=0) / w.sum()
        out.append((box, kps, float(scores[best])))
        order = order[~np.isin(order, group)]
    return out


def remove_letterbox(points: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """(..., 2) tensor coordinates (0..1) -> image coordinates (0..1)."""
    scale = np.array([1 - pad[0] - pad[2], 1 - pad[1] - pad[3]])
    return (points - pad[:2]) / scale


def roi_from_points(
    centre: np.ndarray, scale_point: np.ndarray, width: int, height: int, scale: float = 1.25
) -> Roi:
    """The landmark model's ROI from a centre and a scale point (normalised):
    side twice their distance, rotated so centre -> scale point points up,
    squared on the long side (already square) and enlarged `scale` times
    (MediaPipe: 1.25)."""
    cx, cy = centre[0] * width, centre[1] * height
    sx, sy = scale_point[0] * width, scale_point[1] * height
    side = 2.0 * math.hypot(sx - cx, sy - cy) * scale
    rotation = _normalize_radians(math.pi / 2 - math.atan2(-(sy - cy), sx - cx))
    return Roi(float(centre[0]), float(centre[1]), side / width, side / height, rotation)


def _normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle - (-math.pi)) / (2 * math.pi))


# --------------------------------------------------------------------------- landmarks


def roi_matrix(roi: Roi, width: int, height: int, size: int = LANDMARK_SIZE) -> np.ndarray:
    """Affine (2, 3) image pixels -> size x size crop of the rotated ROI.

    The ROI's top-left corner maps to (0, 0) and its bottom-right to
    (size, size), as MediaPipe's OpenCV converter maps the rotated rectangle's
    corners.
    """
    c = np.array([roi.x_center * width, roi.y_center * height])
    s = size / (roi.width * width)
    cos, sin = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
    r_inv = np.array([[cos, sin], [-sin, cos]]) * s  # rotate by -rotation, then scale
    return np.hstack([r_inv, (size / 2 - r_inv @ c)[:, None]])


def landmark_input(rgb: np.ndarray, roi: Roi) -> np.ndarray:
    """(256, 256, 3) float32 in [0, 1]: the ROI of an (H, W, 3) uint8 image."""
    import cv2

    h, w = rgb.shape[:2]
    crop = _warp(
        rgb, (roi.x_center * w, roi.y_center * h), (roi.width * w, roi.height * h),
        roi.rotation_rad, LANDMARK_SIZE, cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return crop.astype(np.float32) * np.float32(1 / 255.0)


def _warp(
    rgb: np.ndarray,
    centre: tuple[float, float],
    size: tuple[float, float],
    rotation_rad: float,
    out: int,
    border: int,
) -> np.ndarray:
    """The rotated rectangle of `rgb` (pixels) resampled to out x out, exactly as
    MediaPipe's OpenCV converter does it (corners from `cv2.boxPoints`, a
    perspective warp, bilinear): the same call, so the same fixed-point rounding.
    `roi_matrix` is the same mapping as an affine matrix."""
    import cv2

    src = cv2.boxPoints((centre, size, math.degrees(rotation_rad)))
    dst = np.array([[0, out], [0, 0], [out, 0], [out, out]], np.float32)
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst)
    return cv2.warpPerspective(
        rgb, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def refine_from_heatmap(
    xy: np.ndarray, heatmap: np.ndarray, kernel: int = 7, min_confidence: float = 0.5
) -> np.ndarray:
    """(L, 2) crop-normalised x, y refined from an (Hm, Wm, L) heatmap of logits.

    Each landmark inside the heatmap moves to the confidence-weighted mean cell
    of the `kernel` x `kernel` window around it (cells outside the heatmap
    weigh nothing), when the window's highest confidence is >= `min_confidence`.
    Cell indices are truncated towards zero, as MediaPipe's int conversion does.
    """
    hm_h, hm_w, _ = heatmap.shape
    col = np.trunc(xy[:, 0] * hm_w).astype(np.int64)
    row = np.trunc(xy[:, 1] * hm_h).astype(np.int64)
    inside = (col >= 0) & (col < hm_w) & (row >= 0) & (row < hm_h)
    out = xy.copy()
    if not inside.any():
        return out
    half = (kernel - 1) // 2
    padded = np.pad(heatmap, ((half, half), (half, half), (0, 0)), constant_values=-np.inf)
    idx = np.flatnonzero(inside)
    offs = np.arange(-half, half + 1)
    rows = row[idx, None] + offs  # (k, kernel) in heatmap cells
    cols = col[idx, None] + offs
    win = padded[rows[:, :, None] + half, cols[:, None, :] + half, idx[:, None, None]]
    conf = _sigmoid(win.astype(np.float64))
    total = conf.sum(axis=(1, 2))
    peak = conf.max(axis=(1, 2))
    wc = (conf * cols[:, None, :]).sum(axis=(1, 2))
    wr = (conf * rows[:, :, None]).sum(axis=(1, 2))
    ok = (peak >= min_confidence) & (total > 0)
    out[idx[ok], 0] = wc[ok] / hm_w / total[ok]
    out[idx[ok], 1] = wr[ok] / hm_h / total[ok]
    return out


@dataclass(frozen=True, slots=True)
class LandmarkResult:
    """One ROI's landmark model result, in image coordinates.

    image: (33, 4) float32 x, y normalised, z like x, visibility 0..1.
    world: (33, 3) float32 metres, hips' centre at the origin, y down.
    auxiliary: (2, 2) float64 x, y of landmarks 33 (centre) and 34 (scale).
    presence: the pose flag, 0..1.
    """

    image: np.ndarray
    world: np.ndarray
    auxiliary: np.ndarray
    presence: float


def decode_landmarks(
    raw: np.ndarray, flag: np.ndarray, heatmap: np.ndarray, world: np.ndarray, roi: Roi
) -> LandmarkResult:
    """One crop's model outputs -> landmarks in the image.

    raw: (195,) 39 x (x, y, z, visibility, presence) in crop pixels, logits
    for the last two; flag: (1,) probability; heatmap: (64, 64, 39) logits;
    world: (117,) 39 x (x, y, z) metres.
    """
    lm = raw.reshape(N_MODEL_LANDMARKS, 5).astype(np.float64)
    xy = refine_from_heatmap(lm[:, :2] / LANDMARK_SIZE, heatmap)
    z = lm[:, 2] / LANDMARK_SIZE
    visibility = _sigmoid(lm[:, 3])
    cos, sin = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
    x, y = xy[:, 0] - 0.5, xy[:, 1] - 0.5
    px = (cos * x - sin * y) * roi.width + roi.x_center
    py = (sin * x + cos * y) * roi.height + roi.y_center
    image = np.stack([px, py, z * roi.width, visibility], axis=1)
    w = world.reshape(N_MODEL_LANDMARKS, 3)[:33].astype(np.float64)
    world_xyz = np.stack([cos * w[:, 0] - sin * w[:, 1], sin * w[:, 0] + cos * w[:, 1], w[:, 2]], 1)
    return LandmarkResult(
        image=image[:33].astype(np.float32),
        world=world_xyz.astype(np.float32),
        auxiliary=np.stack([px[33:35], py[33:35]], axis=1),
        presence=float(np.asarray(flag).reshape(-1)[0]),
    )


def associate(tracked: list[Roi], detected: list[Roi], min_iou: float = 0.5) -> list[Roi]:
    """Non-overlapping ROIs, later ones preferred, as MediaPipe's
    AssociationNormRectCalculator: each ROI, tracked ones first, then detected
    ones, removes those before it that it overlaps (IoU > `min_iou`, axis-aligned)
    and joins the end. So a detected ROI replaces the tracked one it overlaps,
    and two tracked ROIs that came onto one person become one."""
    out: list[Roi] = []
    for roi in [*tracked, *detected]:
        if out:
            overlap = box_iou(roi.box(), np.stack([r.box() for r in out]))
            out = [r for r, o in zip(out, overlap, strict=True) if o <= min_iou]
        out.append(roi)
    return out


FACE = slice(0, 11)  # nose, eyes, ears, mouth


def face_of_roi(faces: np.ndarray, roi: Roi, width: int, height: int) -> int | None:
    """Which of the detector's face boxes `faces` (K, 4: x0, y0, x1, y1
    normalised, best first) the body in `roi` has: the best one whose centre
    lies within half the ROI's side of its centre (pixels); None without one.
    (A body lying feet first can also get a weaker "face" over its hips.)"""
    centres = (faces[:, :2] + faces[:, 2:]) / 2 * [width, height]
    d = np.hypot(*(centres - [roi.x_center * width, roi.y_center * height]).T)
    inside = np.flatnonzero(d <= roi.width * width / 2)
    return int(inside[0]) if inside.size else None


def face_inside(result: LandmarkResult, face: np.ndarray) -> bool:
    """Whether the landmarks' face (the mean of its 11 points) lies inside the
    detector's face box `face` (x0, y0, x1, y1), and nearer its centre than
    the hips' midpoint does.

    The detector is a face detector first (MediaPipe's pose_detection graph:
    its box is the face's), and it finds the face of a body it cannot orient:
    on a patient lying with the feet towards the camera, its hips-to-head
    keypoints point one way, then the other, and the landmark model given the
    region upside down draws a whole skeleton upside down with the same
    confidence (its face over the hips, its legs reaching for the dumbbells;
    benchmarks/RESULTS.md, the floor-press study). The face box still sits on
    the head. So a skeleton whose face is not in its region's face box
    (`face_of_roi`), while the region turned by half a turn puts it there, was
    the wrong way up (`BlazePoseBackend._landmarks`). The lite model draws
    the wrong way up skeleton shorter, its face at the box's edge and its hips
    nearer the box's centre: the face must be the nearer of the two.
    """
    xy = result.image[:, :2].astype(np.float64)
    centre, half = (face[:2] + face[2:]) / 2, np.maximum((face[2:] - face[:2]) / 2, 1e-9)
    at_face = (xy[FACE].mean(axis=0) - centre) / half  # in half-sides of the box
    at_hips = ((xy[23] + xy[24]) / 2 - centre) / half
    return bool(np.all(np.abs(at_face) <= 1) and np.hypot(*at_face) < np.hypot(*at_hips))


def trunk_px(result: LandmarkResult, width: int, height: int) -> float:
    """The trunk's length in the image (shoulders' to hips' midpoint), pixels."""
    xy = result.image[:, :2].astype(np.float64) * (width, height)
    return float(np.linalg.norm(trunk(xy)))


def head_copies(
    image_of: list[int],
    results: list[LandmarkResult],
    face: list[tuple[int, np.ndarray] | None],
    sizes: list[tuple[int, int]],
    min_presence: float,
) -> set[int]:
    """One face, one body: the indices of `results` that are small copies of
    another skeleton drawn in its head. Of two present skeletons of one image
    (`image_of`) with their face in the same face box (`face`: (box index,
    box) per result, None where the detector did not run), one whose trunk
    is under half the other's is such a copy (the floor-press clip, in regions
    the detector's keypoints put around the head), not a second person.
    `sizes`: (width, height) of each image."""
    trunks = [trunk_px(r, *sizes[i]) for i, r in zip(image_of, results, strict=True)]
    largest: dict[tuple[int, int], float] = {}  # (image, face box) -> the longest trunk
    sharing = []
    for k, (res, f) in enumerate(zip(results, face, strict=True)):
        if f and res.presence >= min_presence and face_inside(res, f[1]):
            key = (image_of[k], f[0])
            largest[key] = max(largest.get(key, 0.0), trunks[k])
            sharing.append((k, key))
    return {k for k, key in sharing if trunks[k] < largest[key] / 2}


# --------------------------------------------------------------------------- smoothing


class _OneEuro:
    """MediaPipe's One-Euro filter (`mediapipe/util/filtering/one_euro_filter.cc`)
    over an array of values sharing one clock: integer nanoseconds, frequency
    30 Hz until two non-zero stamps are seen, derivative of the raw values,
    a stamp not after the last one passes the value through unfiltered."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self.frequency = 30.0
        self.last_ns = 0
        self.x: np.ndarray | None = None
        self.raw: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.frequency)

    def __call__(self, value: np.ndarray, t_ns: int, value_scale: float) -> np.ndarray:
        if self.last_ns >= t_ns:
            return value
        if self.last_ns != 0 and t_ns != 0:
            self.frequency = 1e9 / (t_ns - self.last_ns)
        self.last_ns = t_ns
        d = np.zeros_like(value) if self.raw is None else (value - self.raw) * value_scale
        d = d * (self.frequency if self.raw is not None else 1.0)
        a_d = self._alpha(self.d_cutoff)
        self.dx = d if self.dx is None else a_d * d + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = value if self.x is None else a * value + (1 - a) * self.x
        self.raw = value
        return self.x


class LandmarkSmoother:
    """The smoothing MediaPipe Tasks applies when it looks for one person in a
    stream (`pose_landmarks_detector_graph.cc`): visibility through a low-pass
    filter (alpha 0.1); image landmarks, in pixels (z scaled like x), through a
    One-Euro filter (min cutoff 0.05 Hz, beta 80, derivative cutoff 1 Hz) whose
    speeds are divided by the ROI's size in pixels; world landmarks through a
    One-Euro filter (0.1 Hz, 40, 1 Hz) on metres. Any frame without the person
    starts it afresh."""

    def __init__(self) -> None:
        self._image = _OneEuro(0.05, 80.0, 1.0)
        self._world = _OneEuro(0.1, 40.0, 1.0)
        self._vis: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the past (the person was lost)."""
        self._image.reset()
        self._world.reset()
        self._vis = None

    def __call__(self, result: LandmarkResult, roi: Roi, t_ms: int, width: int, height: int):
        """Smoothed (image (33, 4), world (33, 3)) float32 of one result at `t_ms`."""
        t_ns = int(t_ms) * 1_000_000
        vis = result.image[:, 3].astype(np.float64)
        self._vis = vis if self._vis is None else 0.1 * vis + 0.9 * self._vis
        px = result.image[:, :3].astype(np.float64) * [width, height, width]
        scale = (roi.width * width + roi.height * height) / 2
        px = self._image(px, t_ns, 1.0 / scale) if scale >= 1e-6 else px
        image = np.column_stack([px / [width, height, width], self._vis])
        world = self._world(result.world.astype(np.float64), t_ns, 1.0)
        return image.astype(np.float32), world.astype(np.float32)


# --------------------------------------------------------------------------- the backend


def _pick(outputs: tuple[np.ndarray, ...], tail: tuple[int, ...], model: str) -> np.ndarray:
    for o in outputs:
        if tuple(o.shape[1:]) == tail:
            return o
    raise PoseError(f"{model}: no output of shape (N, {tail}) among {[o.shape for o in outputs]}")


@dataclass(slots=True)
class _Stream:
    """What the backend remembers of one stream between its frames (not shared)."""

    tracked: list[Roi] = field(default_factory=list)
    since_detector: int = 0
    last_ms: int = -1
    smoother: LandmarkSmoother | None = None

    def reset(self) -> None:
        self.tracked = []
        self.since_detector = 0
        self.last_ms = -1
        if self.smoother is not None:
            self.smoother.reset()


class BlazePoseBackend:
    """BlazePose lite / full / heavy run by the project on LiteRT or ONNX Runtime.

    A `PoseBackend`: `detect(rgb, t_s)` returns every person found. Modes:
    "image" runs the detector on every frame; "video" and "live" follow people
    from frame to frame (see the module docstring). `timings()` says where the
    time went.

    variant: lite / full / heavy (default: the model_variant setting).
    runtime: "litert" or "onnxruntime" (default: the pose_runtime setting);
    device: "cpu" or "cuda" (onnxruntime); threads: per network (default:
    the usable cores, at most 4). max_people: people looked for.
    detect_every: frames between detector runs while someone is followed (1:
    MediaPipe's rule). track_scale: ROI enlargement from tracked landmarks
    (MediaPipe: 1.25). smooth: MediaPipe's landmark smoothing (default: only
    when max_people is 1 in a stream, as MediaPipe does).
    min_detection_confidence, min_presence_confidence, min_tracking_iou:
    MediaPipe's thresholds (0.5 each).

    Several streams (videos, live sessions) can share one backend through
    `detect_many`: each keeps its own tracking, and the crops of all of them go
    through the landmark model in one call (and the detector inputs in
    another), which is where ONNX Runtime's batches pay (GPUs).
    """

    name = "blazepose"

    def __init__(
        self,
        variant: str | None = None,
        mode: str = "video",
        max_people: int = 4,
        runtime: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
        detect_every: int = 1,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_iou: float = 0.5,
        track_scale: float = 1.25,
        smooth: bool | None = None,
        store: object | None = None,
        fetch: bool | None = None,
        progress: object | None = None,
    ) -> None:
        from telerehab.models import default_store
        from telerehab.settings import get_settings

        settings = get_settings()
        variant = checked_options(variant, mode, max_people)
        runtime = runtime or settings.pose_runtime
        if detect_every < 1:
            raise ConfigError(f"detect_every must be at least 1, got {detect_every}")
        self.variant = variant
        self.mode = mode
        self.max_people = max_people
        self.detect_every = detect_every
        self.min_detection_confidence = min_detection_confidence
        self.min_presence_confidence = min_presence_confidence
        self.min_tracking_iou = min_tracking_iou
        self.track_scale = track_scale
        self.runtime_name = runtime
        store = store or default_store()
        fetch = settings.auto_fetch if fetch is None else fetch
        det_path, lm_path = _model_paths(store, variant, runtime, fetch, progress)
        options: dict[str, object] = {"threads": threads}
        if runtime == "onnxruntime":
            options["device"] = device
        self.detector: Runtime = create_runtime(runtime, det_path, **options)
        self.landmarker: Runtime = create_runtime(runtime, lm_path, **options)
        # MediaPipe smooths only when it looks for one person in a stream.
        self.smooth = max_people == 1 and mode != "image" if smooth is None else smooth
        self._streams: dict[Hashable, _Stream] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._times = dict.fromkeys(
            ("detector_prep", "detector_infer", "detector_post",
             "landmark_prep", "landmark_infer", "landmark_post"), 0.0,
        )  # fmt: skip
        counted = ("frames", "detector_runs", "landmark_crops")
        corrected = ("turned_rois", "smaller_than_face", "head_copies")  # `_landmarks`
        self._counts = dict.fromkeys((*counted, *corrected), 0)
        self.detect(np.zeros((64, 64, 3), np.uint8), 0.0)  # warm up: first frame pays nothing
        self.reset()

    # The PoseBackend protocol ------------------------------------------------

    def detect(self, rgb: np.ndarray, t_s: float) -> Detections:
        """All people in `rgb` ((H, W, 3) uint8 RGB) at `t_s` seconds."""
        return self.detect_many([(None, rgb, t_s)])[0]

    def detect_many(self, frames: Sequence[tuple[Hashable, np.ndarray, float]]) -> list[Detections]:
        """All people in one frame of each of several streams, in one batch per network.

        frames: (stream key, (H, W, 3) uint8 RGB, t_s) with distinct keys; each
        stream's frames must come in time order. `detect` is the stream `None`.
        """
        for key, rgb, _ in frames:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise PoseError(
                    f"stream {key!r}: expected an (H, W, 3) uint8 RGB image, "
                    f"got {rgb.shape} {rgb.dtype}"
                )
        with self._lock:
            if self._closed:
                raise PoseError("the BlazePose backend is closed")
            streams = [self._stream(key) for key, _, _ in frames]
            self._counts["frames"] += len(frames)
            tracked = [st.tracked if self.mode != "image" else [] for st in streams]
            due = [self._detector_due(st, len(tr)) for st, tr in zip(streams, tracked, strict=True)]
            found = self._detect_rois(
                [rgb for (_, rgb, _), d in zip(frames, due, strict=True) if d]
            )
            rois, faces = [], []
            for st, tr, d in zip(streams, tracked, due, strict=True):
                if d:
                    detected, boxes = found.pop(0)
                    rois.append(associate(tr, detected, self.min_tracking_iou))
                    faces.append(boxes)
                    st.since_detector = 0
                else:
                    rois.append(tr)
                    faces.append(None)
                    st.since_detector += 1
            rois = [r[: self.max_people] for r in rois]
            results = self._landmarks([f[1] for f in frames], rois, faces)
            return [
                self._finish(st, rgb, t_s, res)
                for st, (_, rgb, t_s), res in zip(streams, frames, results, strict=True)
            ]

    def _finish(
        self, st: _Stream, rgb: np.ndarray, t_s: float, results: list[LandmarkResult]
    ) -> Detections:
        present = [r for r in results if r.presence >= self.min_presence_confidence]
        h, w = rgb.shape[:2]
        st.tracked = [
            roi_from_points(r.auxiliary[0], r.auxiliary[1], w, h, self.track_scale) for r in present
        ]
        # MediaPipe's integer-millisecond clock, strictly increasing.
        t_ms = max(round(t_s * 1000.0), st.last_ms + 1)
        st.last_ms = t_ms
        if not present:
            if st.smoother is not None:
                st.smoother.reset()
            return Detections.none()
        image = np.stack([r.image for r in present])
        world = np.stack([r.world for r in present])
        if st.smoother is not None:
            image[0], world[0] = st.smoother(present[0], st.tracked[0], t_ms, w, h)
        return Detections(image, world)

    def close(self) -> None:
        """Release both networks."""
        with self._lock:
            if not self._closed:
                self.detector.close()
                self.landmarker.close()
                self._closed = True

    def __enter__(self) -> BlazePoseBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Beyond the protocol -------------------------------------------------------

    def reset(self, key: Hashable = None) -> None:
        """Forget the people followed in stream `key` (a new video or session),
        and the timings."""
        self._streams.pop(key, None)
        for k in self._times:
            self._times[k] = 0.0
        for k in self._counts:
            self._counts[k] = 0

    def forget(self, key: Hashable) -> None:
        """Drop stream `key` (a session ended)."""
        with self._lock:
            self._streams.pop(key, None)

    def timings(self) -> dict[str, float]:
        """Seconds spent per stage since the last reset, and counts of frames,
        detector runs and landmark crops."""
        return {**{f"{k}_s": v for k, v in self._times.items()}, **self._counts}

    def detect_people(self, rgb: np.ndarray) -> list[PoseDetection]:
        """The detector alone on one image: people best first, after suppression."""
        return self._detect_batch([rgb])[0]

    def _detect_batch(self, images: list[np.ndarray]) -> list[list[PoseDetection]]:
        if not images:
            return []
        t0 = time.perf_counter()
        prepared = [detector_input(rgb) for rgb in images]
        t1 = time.perf_counter()
        outputs = self.detector(np.stack([t for t, _ in prepared]))
        t2 = time.perf_counter()
        all_boxes = _pick(outputs, (2254, 12), "detector")
        all_scores = _pick(outputs, (2254, 1), "detector")
        out = []
        for i, (_, pad) in enumerate(prepared):
            boxes, kps, scores = decode_detections(
                all_boxes[i], all_scores[i], self.min_detection_confidence
            )
            found = []
            for box, kp, score in weighted_nms(boxes, kps, scores):
                corners = remove_letterbox(box.reshape(2, 2), pad).reshape(4)
                found.append(PoseDetection(corners, remove_letterbox(kp, pad), score))
            out.append(found)
        t3 = time.perf_counter()
        self._times["detector_prep"] += t1 - t0
        self._times["detector_infer"] += t2 - t1
        self._times["detector_post"] += t3 - t2
        self._counts["detector_runs"] += len(images)
        return out

    # Internals -----------------------------------------------------------------

    def _stream(self, key: Hashable) -> _Stream:
        st = self._streams.get(key)
        if st is None:
            st = self._streams[key] = _Stream(smoother=LandmarkSmoother() if self.smooth else None)
        return st

    def _detector_due(self, st: _Stream, n_tracked: int) -> bool:
        if n_tracked == 0:
            return True
        if n_tracked >= self.max_people:
            return False
        return st.since_detector + 1 >= self.detect_every

    def _detect_rois(self, images: list[np.ndarray]) -> list[tuple[list[Roi], np.ndarray]]:
        """Per image: the detected people's ROIs, and their face boxes (K, 4)."""
        out = []
        for rgb, people in zip(images, self._detect_batch(images), strict=True):
            h, w = rgb.shape[:2]
            rois = [roi_from_points(p.keypoints[0], p.keypoints[1], w, h) for p in people]
            faces = np.array([p.box for p in people]).reshape(-1, 4)
            # A body circle no larger than the face box is the detector's
            # keypoints drawn around the head alone: the landmark model would
            # find a small whole skeleton in it (seen on the floor-press clip).
            face_side = np.maximum((faces[:, 2] - faces[:, 0]) * w, (faces[:, 3] - faces[:, 1]) * h)
            whole = [r.width * w > side for r, side in zip(rois, face_side, strict=True)]
            self._counts["smaller_than_face"] += len(whole) - sum(whole)
            out.append(([r for r, ok in zip(rois, whole, strict=True) if ok], faces))
        return out

    def _landmarks(
        self,
        images: list[np.ndarray],
        rois: list[list[Roi]],
        faces: list[np.ndarray | None],
    ) -> list[list[LandmarkResult]]:
        """Landmarks of every ROI of every image, through one model call; and
        a second for the skeletons the wrong way up against the face boxes the
        detector found on their image (`faces`, None where it did not run;
        see `face_inside`); small copies of a skeleton in its own head dropped."""
        flat = [(i, roi) for i, rs in enumerate(rois) for roi in rs]
        out: list[list[LandmarkResult]] = [[] for _ in images]
        if not flat:
            return out
        results = self._landmark_results(images, flat)
        # (face box index, face box) of each ROI, where the detector ran
        face: list[tuple[int, np.ndarray] | None] = []
        for i, roi in flat:
            h, w = images[i].shape[:2]
            b = face_of_roi(faces[i], roi, w, h) if faces[i] is not None else None
            face.append(None if b is None else (b, faces[i][b]))  # type: ignore[index]
        wrong = [k for k, f in enumerate(face) if f and not face_inside(results[k], f[1])]
        if wrong:
            turned = [(flat[k][0], flat[k][1].turned()) for k in wrong]
            for k, res in zip(wrong, self._landmark_results(images, turned), strict=True):
                box = face[k][1]  # type: ignore[index]
                if face_inside(res, box) and res.presence >= self.min_presence_confidence:
                    results[k] = res
                    self._counts["turned_rois"] += 1
        copies = head_copies(
            [i for i, _ in flat], results, face, [im.shape[1::-1] for im in images],
            self.min_presence_confidence,
        )  # fmt: skip
        self._counts["head_copies"] += len(copies)
        for k, ((i, _), res) in enumerate(zip(flat, results, strict=True)):
            if k not in copies:
                out[i].append(res)
        return out

    def _landmark_results(
        self, images: list[np.ndarray], flat: list[tuple[int, Roi]]
    ) -> list[LandmarkResult]:
        """The landmark model on (image index, ROI) pairs, in one call."""
        t0 = time.perf_counter()
        batch = np.stack([landmark_input(images[i], roi) for i, roi in flat])
        t1 = time.perf_counter()
        outputs = self.landmarker(batch)
        t2 = time.perf_counter()
        raw = _pick(outputs, (195,), "landmark model")
        flag = _pick(outputs, (1,), "landmark model")
        heatmap = _pick(outputs, (64, 64, 39), "landmark model")
        world = _pick(outputs, (117,), "landmark model")
        results = [
            decode_landmarks(raw[k], flag[k], heatmap[k], world[k], roi)
            for k, (_, roi) in enumerate(flat)
        ]
        t3 = time.perf_counter()
        self._times["landmark_prep"] += t1 - t0
        self._times["landmark_infer"] += t2 - t1
        self._times["landmark_post"] += t3 - t2
        self._counts["landmark_crops"] += len(flat)
        return results


def _model_paths(
    store: object, variant: str, runtime: str, fetch: bool, progress: object
) -> tuple[Path, Path]:
    """Verified detector and landmark model files for `runtime`."""
    manifest = store.manifest  # type: ignore[attr-defined]
    detector, landmarks = manifest.detector(), manifest.landmarks(variant)
    det, _ = store.require(detector, landmarks, fetch=fetch, progress=progress)  # type: ignore[attr-defined]
    if runtime == "onnxruntime":
        from telerehab.models.onnx_export import onnx_model

        return onnx_model(store, detector), onnx_model(store, landmarks)  # type: ignore[arg-type]
    from telerehab.models.pruned import landmarks_without_segmentation

    # The pinned file minus the mask branch nobody reads: a third less work.
    return det, landmarks_without_segmentation(store, landmarks)  # type: ignore[arg-type]
