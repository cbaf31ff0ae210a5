"""Joint and segment angles from landmarks: numba kernels and NumPy references.

Conventions (ISB-style, 0 deg = anatomical neutral, unsigned magnitudes):
- flexion angles are 180 deg minus the included angle at the joint, so a
  straight knee or elbow reads 0 and flexion grows positive;
- shoulder elevation is the included angle between trunk (shoulder->hip) and
  upper arm (shoulder->elbow): arm at the side 0, overhead about 180. In the
  image plane it is flexion from a side view and abduction from a front view;
  with world landmarks, flexion and abduction are measured in the body's
  sagittal and frontal planes (built from the shoulders and hips);
- ankle dorsiflexion is 90 deg minus the shank-foot angle (plantarflexion < 0);
- the ear-shoulder angle is the included angle at the shoulder between the ear
  and the other shoulder: it shrinks when the shoulder is hiked (a shrug);
- segment angles (trunk lean, shank, thigh, upper arm) are against the vertical
  of the image or of the world frame (both have y pointing down).
Image-plane angles use aspect-correct pixels (x * width, y * height).

Missing data: a NaN coordinate or a zero-length segment gives NaN for that
angle in that frame; nothing is interpolated here (see `filters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

from .landmarks import INDEX, MID_HIP, MID_SHOULDER, MIDPOINT_OF, N_LANDMARKS, inside_picture

Space = Literal["image", "world"]

JOINT, PLANE, SEGMENT = 0, 1, 2
_UP = (0.0, -1.0, 0.0)
_DOWN = (0.0, 1.0, 0.0)
_NONE = -1


@dataclass(frozen=True, slots=True)
class AngleDef:
    """One named angle: value = sign * measured + offset, in degrees.

    kind JOINT: included angle at b between b->a and b->c.
    kind PLANE: the same after projecting both vectors onto the plane whose
        normal is (q - p) x (r - p), or q - p when r is -1.
    kind SEGMENT: angle between segment a->b and the unit vector `ref`.
    """

    name: str
    kind: int
    points: tuple[int, int, int] = (_NONE, _NONE, _NONE)
    plane: tuple[int, int, int] = (_NONE, _NONE, _NONE)
    ref: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sign: float = 1.0
    offset: float = 0.0
    spaces: tuple[str, ...] = ("image", "world")


def _i(name: str) -> int:
    return INDEX[name]


def _flexion(name: str, a: int, b: int, c: int, neutral_deg: float = 180) -> AngleDef:
    """neutral_deg minus the included angle at b (0 at anatomical neutral)."""
    return AngleDef(name, JOINT, (a, b, c), sign=-1, offset=neutral_deg)


def _sided() -> list[AngleDef]:
    out: list[AngleDef] = []
    shoulders = (_i("left_shoulder"), _i("right_shoulder"))
    for side, other in (("left", "right"), ("right", "left")):
        sh, el, wr, hip, knee, ankle, toe = (
            _i(f"{side}_{n}")
            for n in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "foot_index")
        )
        out += [
            _flexion(f"{side}_knee_flexion", hip, knee, ankle),
            _flexion(f"{side}_hip_flexion", sh, hip, knee),
            _flexion(f"{side}_ankle_dorsiflexion", knee, ankle, toe, neutral_deg=90),
            _flexion(f"{side}_elbow_flexion", sh, el, wr),
            AngleDef(f"{side}_shoulder_elevation", JOINT, (hip, sh, el)),
            # World space: elevation split into the body's sagittal and frontal planes.
            AngleDef(f"{side}_shoulder_flexion", PLANE, (hip, sh, el),
                     plane=(*shoulders, _NONE), spaces=("world",)),
            AngleDef(f"{side}_shoulder_abduction", PLANE, (hip, sh, el),
                     plane=(*shoulders, MID_HIP), spaces=("world",)),
            AngleDef(f"{side}_upper_arm_inclination", SEGMENT, (sh, el, _NONE), ref=_DOWN),
            # Shrinks when the shoulder is hiked (shrugged) towards the ear.
            AngleDef(f"{side}_ear_shoulder_angle", JOINT,
                     (_i(f"{side}_ear"), sh, _i(f"{other}_shoulder"))),
            AngleDef(f"{side}_thigh_inclination", SEGMENT, (hip, knee, _NONE), ref=_DOWN),
            AngleDef(f"{side}_shank_inclination", SEGMENT, (ankle, knee, _NONE), ref=_UP),
        ]  # fmt: skip
    return out


ANGLES: tuple[AngleDef, ...] = (
    *_sided(),
    AngleDef("trunk_lean", SEGMENT, (MID_HIP, MID_SHOULDER, _NONE), ref=_UP),
)
ANGLE_NAMES: tuple[str, ...] = tuple(a.name for a in ANGLES)
_BY_NAME = {a.name: a for a in ANGLES}


def in_picture(name: str, xy: np.ndarray) -> bool:
    """Whether the picture shows enough of angle `name` to measure it: both
    ends of a segment angle; the vertex of a joint angle and the far end of
    at least one of its two segments (a knee with its thigh: the feet may be
    cropped). xy (33, 2+): image landmarks normalised to the picture.

    Outside the picture a landmark is the model's guess: the legs of a curl
    filmed from the waist up lie below the bottom edge, and the lite model
    "bends" their knees by 100 deg as it imagines them."""
    d = _BY_NAME[name]
    a, b, c = d.points

    def inside(i: int) -> bool:
        if i < 0:
            return False
        pts = xy[[INDEX[n] for n in MIDPOINT_OF[i]] if i in MIDPOINT_OF else [i], :2]
        return bool(inside_picture(pts.mean(axis=0)))

    if d.kind == SEGMENT:
        return inside(a) and inside(b)
    return inside(b) and (inside(a) or inside(c))


def angle_defs(space: Space, names: tuple[str, ...] | None = None) -> tuple[AngleDef, ...]:
    """The table's definitions for `space`, optionally only `names` (in that order)."""
    table = {a.name: a for a in ANGLES if space in a.spaces}
    if names is None:
        return tuple(table.values())
    missing = [n for n in names if n not in table]
    if missing:
        raise KeyError(f"unknown angle(s) for {space} space: {', '.join(missing)}")
    return tuple(table[n] for n in names)


def pack_defs(defs: tuple[AngleDef, ...]) -> tuple[np.ndarray, ...]:
    """Column arrays (kind, idx (n, 6), ref (n, 3), sign, offset) for the kernels."""
    kind = np.array([d.kind for d in defs], dtype=np.int64)
    idx = np.array([(*d.points, *d.plane) for d in defs], dtype=np.int64).reshape(-1, 6)
    ref = np.array([d.ref for d in defs], dtype=np.float64).reshape(-1, 3)
    sign = np.array([d.sign for d in defs], dtype=np.float64)
    offset = np.array([d.offset for d in defs], dtype=np.float64)
    return kind, idx, ref, sign, offset


def with_midpoints(points: np.ndarray) -> np.ndarray:
    """(T, 33, k) -> (T, 35, k): mid-shoulder and mid-hip appended (NaN if either is)."""
    mid_sh = (points[:, _i("left_shoulder")] + points[:, _i("right_shoulder")]) / 2
    mid_hip = (points[:, _i("left_hip")] + points[:, _i("right_hip")]) / 2
    return np.concatenate([points, mid_sh[:, None], mid_hip[:, None]], axis=1)


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)
def _vec(points, t, i, j, scale, out):
    for d in range(3):
        # Widen before subtracting: float32 landmarks lose digits otherwise.
        out[d] = (np.float64(points[t, j, d]) - np.float64(points[t, i, d])) * scale[d]


@numba.njit(cache=True, nogil=True)
def _angle_between(u, v):
    # atan2(|u x v|, u . v) stays accurate near 0 and 180 deg, where arccos is not.
    nu = np.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2])
    nv = np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if not (nu > 0.0 and nv > 0.0):  # zero length or NaN
        return np.nan
    c0 = u[1] * v[2] - u[2] * v[1]
    c1 = u[2] * v[0] - u[0] * v[2]
    c2 = u[0] * v[1] - u[1] * v[0]
    cross = np.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
    return np.degrees(np.arctan2(cross, u[0] * v[0] + u[1] * v[1] + u[2] * v[2]))


@numba.njit(cache=True, nogil=True)
def _project(u, n):
    nn = n[0] * n[0] + n[1] * n[1] + n[2] * n[2]
    if not nn > 0.0:
        for d in range(3):
            u[d] = np.nan
        return
    k = (u[0] * n[0] + u[1] * n[1] + u[2] * n[2]) / nn
    for d in range(3):
        u[d] -= k * n[d]


@numba.njit(cache=True, nogil=True)
def angle_table_kernel(points, kind, idx, ref, sign, offset, scale):
    """Angles (T, n) in degrees of `points` (T, N, 3) float, one column per definition.

    `scale` (3,) multiplies coordinates (image: width, height, 0 for 2D).
    """
    n_t = points.shape[0]
    n_a = kind.shape[0]
    out = np.empty((n_t, n_a), dtype=np.float64)
    u = np.empty(3)
    v = np.empty(3)
    w = np.empty(3)
    nrm = np.empty(3)
    for t in range(n_t):
        for a in range(n_a):
            k = kind[a]
            if k == SEGMENT:
                _vec(points, t, idx[a, 0], idx[a, 1], scale, u)
                for d in range(3):
                    v[d] = ref[a, d]
                val = _angle_between(u, v)
            else:
                _vec(points, t, idx[a, 1], idx[a, 0], scale, u)
                _vec(points, t, idx[a, 1], idx[a, 2], scale, v)
                if k == PLANE:
                    _vec(points, t, idx[a, 3], idx[a, 4], scale, nrm)
                    if idx[a, 5] >= 0:
                        _vec(points, t, idx[a, 3], idx[a, 5], scale, w)
                        c0 = nrm[1] * w[2] - nrm[2] * w[1]
                        c1 = nrm[2] * w[0] - nrm[0] * w[2]
                        c2 = nrm[0] * w[1] - nrm[1] * w[0]
                        nrm[0] = c0
                        nrm[1] = c1
                        nrm[2] = c2
                    _project(u, nrm)
                    _project(v, nrm)
                val = _angle_between(u, v)
            out[t, a] = sign[a] * val + offset[a]
    return out


def angle_table_reference(points, kind, idx, ref, sign, offset, scale):
    """Pure-NumPy twin of `angle_table_kernel` (same inputs, same output)."""
    p = np.asarray(points, dtype=np.float64) * np.asarray(scale, dtype=np.float64)
    n_t = p.shape[0]
    out = np.empty((n_t, kind.shape[0]), dtype=np.float64)

    def angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        nu = np.linalg.norm(u, axis=1)
        nv = np.linalg.norm(v, axis=1)
        ok = (nu > 0) & (nv > 0)
        cross = np.linalg.norm(np.cross(u, v), axis=1)
        with np.errstate(invalid="ignore"):
            deg = np.degrees(np.arctan2(cross, np.einsum("ij,ij->i", u, v)))
        return np.where(ok, deg, np.nan)

    def project(u: np.ndarray, n: np.ndarray) -> np.ndarray:
        nn = np.einsum("ij,ij->i", n, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.einsum("ij,ij->i", u, n) / nn
        res = u - k[:, None] * n
        res[~(nn > 0)] = np.nan
        return res

    for a in range(kind.shape[0]):
        i0, i1, i2, p0, p1, p2 = idx[a]
        if kind[a] == SEGMENT:
            u = p[:, i1] - p[:, i0]
            val = angle(u, np.broadcast_to(ref[a], u.shape))
        else:
            u = p[:, i0] - p[:, i1]
            v = p[:, i2] - p[:, i1]
            if kind[a] == PLANE:
                n = p[:, p1] - p[:, p0]
                if p2 >= 0:
                    n = np.cross(n, p[:, p2] - p[:, p0])
                u, v = project(u, n), project(v, n)
            val = angle(u, v)
        out[:, a] = sign[a] * val + offset[a]
    return out


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True, slots=True)
class Angles:
    """Named angle time series: deg (T, n) float64 degrees, columns in `names` order."""

    names: tuple[str, ...]
    deg: np.ndarray
    space: str

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.deg[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no angle {name!r}; available: {', '.join(self.names)}") from None

    def range_deg(self, name: str, min_share: float = 0.0) -> tuple[float, float] | None:
        """Robust (2nd, 98th percentile) range of `name` over the frames where it is
        finite, or None when it is finite in none or in less than `min_share` of them."""
        values = self[name]
        values = values[np.isfinite(values)]
        if values.size == 0 or values.size < min_share * len(self.deg):
            return None
        lo, hi = np.percentile(values, [2, 98])
        return float(lo), float(hi)


def compute_angles(
    landmarks: np.ndarray,
    space: Space = "image",
    *,
    width: int | None = None,
    height: int | None = None,
    names: tuple[str, ...] | None = None,
    min_visibility: float = 0.0,
    visibility: np.ndarray | None = None,
) -> Angles:
    """The angle table of landmarks (T, 33, k) (k = 4 image, 3 world).

    Image space needs the frame `width` and `height` (aspect-correct pixels)
    and uses x, y only. Landmarks whose visibility (column 3 of image
    landmarks, or `visibility` (T, 33)) is below `min_visibility` count as missing.
    """
    lm = np.asarray(landmarks)
    if lm.ndim != 3 or lm.shape[1] != N_LANDMARKS or lm.shape[2] < 3:
        raise ValueError(f"landmarks: expected (T, 33, 3 or 4), got {lm.shape}")
    pts = np.array(lm[:, :, :3], dtype=np.float64)
    vis = visibility if visibility is not None else (lm[:, :, 3] if lm.shape[2] >= 4 else None)
    if min_visibility > 0 and vis is not None:
        pts[np.asarray(vis) < min_visibility] = np.nan
    if space == "image":
        if not width or not height:
            raise ValueError("image-space angles need the frame width and height")
        scale = np.array([width, height, 0.0])
    elif space == "world":
        scale = np.ones(3)
    else:
        raise ValueError(f"space: expected 'image' or 'world', got {space!r}")
    defs = angle_defs(space, names)
    deg = angle_table_kernel(with_midpoints(pts), *pack_defs(defs), scale)
    return Angles(tuple(d.name for d in defs), deg, space)


def warm_up() -> None:
    """Compile (or load from cache) the kernels before the first real frame."""
    compute_angles(np.zeros((2, N_LANDMARKS, 4), np.float32), "image", width=2, height=2)
