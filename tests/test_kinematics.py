"""Angle kernels: known geometry, and the numba kernel against its NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from telerehab.pose.kinematics import (
    ANGLE_NAMES,
    angle_defs,
    angle_table_kernel,
    angle_table_reference,
    compute_angles,
    in_picture,
    pack_defs,
    with_midpoints,
)
from telerehab.pose.landmarks import INDEX


def _standing(t: int = 1) -> np.ndarray:
    """A front-facing upright figure in world metres (y down), arms at the sides."""
    p = np.zeros((t, 33, 3))
    for side, x in (("left", 0.2), ("right", -0.2)):
        p[:, INDEX[f"{side}_shoulder"]] = (x, -0.5, 0)
        p[:, INDEX[f"{side}_elbow"]] = (x, -0.2, 0)
        p[:, INDEX[f"{side}_wrist"]] = (x, 0.1, 0)
        p[:, INDEX[f"{side}_hip"]] = (x, 0.0, 0)
        p[:, INDEX[f"{side}_knee"]] = (x, 0.45, 0)
        p[:, INDEX[f"{side}_ankle"]] = (x, 0.9, 0)
        p[:, INDEX[f"{side}_foot_index"]] = (x, 0.9, -0.15)  # foot at 90 deg to the shank
    return p


def test_anatomical_neutral_reads_zero() -> None:
    a = compute_angles(_standing(), "world")
    for name in (
        "knee_flexion",
        "elbow_flexion",
        "hip_flexion",
        "shoulder_elevation",
        "ankle_dorsiflexion",
    ):
        for side in ("left", "right"):
            assert a[f"{side}_{name}"][0] == pytest.approx(0.0, abs=1e-6), name
    assert a["trunk_lean"][0] == pytest.approx(0.0, abs=1e-6)


def test_right_angle_knee_and_elbow() -> None:
    p = _standing()
    p[:, INDEX["left_ankle"]] = (0.2, 0.45, 0.45)  # shank horizontal, backward
    p[:, INDEX["right_wrist"]] = (-0.2, -0.2, -0.3)  # forearm forward
    a = compute_angles(p, "world")
    assert a["left_knee_flexion"][0] == pytest.approx(90.0)
    assert a["right_elbow_flexion"][0] == pytest.approx(90.0)
    assert a["right_knee_flexion"][0] == pytest.approx(0.0, abs=1e-6)


def test_shoulder_planes_separate_flexion_from_abduction() -> None:
    p = _standing(2)
    # frame 0: left arm straight out to the side (abduction 90); frame 1: forward (flexion 90)
    p[0, INDEX["left_elbow"]] = (0.5, -0.5, 0)
    p[1, INDEX["left_elbow"]] = (0.2, -0.5, -0.3)
    a = compute_angles(p, "world")
    assert a["left_shoulder_abduction"][0] == pytest.approx(90.0)
    assert a["left_shoulder_flexion"][1] == pytest.approx(90.0)
    assert a["left_shoulder_elevation"][0] == pytest.approx(90.0)
    assert a["left_shoulder_elevation"][1] == pytest.approx(90.0)


def test_image_angles_are_aspect_correct() -> None:
    """x and y are normalised by different sizes: 45 deg on screen is not 45 deg in 0..1."""
    p = np.zeros((1, 33, 4))
    p[..., 3] = 1.0
    hip, knee, ankle = INDEX["left_hip"], INDEX["left_knee"], INDEX["left_ankle"]
    p[0, hip, :2] = (0.5, 0.0)
    p[0, knee, :2] = (0.5, 0.5)
    p[0, ankle, :2] = (0.5 + 0.5 * 9 / 16, 1.0)  # 45 deg in pixels on a 16:9 frame
    a = compute_angles(p, "image", width=1600, height=900, names=("left_knee_flexion",))
    assert a["left_knee_flexion"][0] == pytest.approx(45.0)


def test_nan_and_missing_data() -> None:
    p = _standing(3)
    p[1, INDEX["left_knee"]] = np.nan
    p[2, INDEX["left_ankle"]] = p[2, INDEX["left_knee"]]  # zero-length shank
    a = compute_angles(p, "world")
    assert np.isfinite(a["left_knee_flexion"][0])
    assert np.isnan(a["left_knee_flexion"][1]) and np.isnan(a["left_knee_flexion"][2])
    assert np.isfinite(a["right_knee_flexion"]).all()


def test_visibility_gate() -> None:
    p = np.concatenate([_standing(2), np.ones((2, 33, 1))], axis=2)
    p[1, INDEX["left_knee"], 3] = 0.1
    a = compute_angles(p[..., :3], "world", visibility=p[..., 3], min_visibility=0.5)
    assert np.isfinite(a["left_knee_flexion"][0]) and np.isnan(a["left_knee_flexion"][1])


def test_in_picture_needs_a_whole_segment_of_the_angle() -> None:
    """A joint angle needs its vertex and one of its two segments' far ends
    inside the picture, a segment angle both ends; NaN is not inside."""
    xy = _standing()[0, :, :2] * 0.5 + 0.5  # the figure inside the picture (x, y in 0.25..0.95)
    assert in_picture("left_knee_flexion", xy)
    xy[INDEX["left_ankle"], 1] = 1.05  # feet cropped: the thigh is still seen
    assert in_picture("left_knee_flexion", xy)
    assert not in_picture("left_shank_inclination", xy)
    xy[INDEX["left_knee"], 1] = 1.02  # the knee below the edge too: nothing of it is seen
    assert not in_picture("left_knee_flexion", xy)
    assert in_picture("right_knee_flexion", xy)
    xy[INDEX["left_elbow"]] = np.nan
    assert not in_picture("left_elbow_flexion", xy)
    # trunk_lean is measured between the shoulders' and the hips' midpoints
    assert in_picture("trunk_lean", xy)
    xy[INDEX["left_hip"], 0] = xy[INDEX["right_hip"], 0] = -0.1
    assert not in_picture("trunk_lean", xy)


def test_table_names_and_errors() -> None:
    assert {"left_knee_flexion", "right_shoulder_abduction", "trunk_lean"} <= set(ANGLE_NAMES)
    with pytest.raises(ValueError, match="width and height"):
        compute_angles(np.zeros((1, 33, 4)), "image")
    with pytest.raises(KeyError, match="no angle 'elbow'"):
        compute_angles(np.zeros((1, 33, 3)), "world")["elbow"]
    with pytest.raises(ValueError, match=r"expected \(T, 33"):
        compute_angles(np.zeros((1, 17, 3)), "world")


# --------------------------------------------------------------------------- property tests

_coords = st.floats(-2.0, 2.0, allow_nan=False, width=32)


@st.composite
def landmark_arrays(draw):
    t = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    pts = draw(hnp.arrays(dtype, (t, 33, 3), elements=_coords))
    # NaN at the start, the middle and the end, and zero-length segments.
    for where in draw(st.lists(st.sampled_from(["start", "middle", "end"]), max_size=3)):
        row = {"start": 0, "middle": t // 2, "end": t - 1}[where]
        pts[row, draw(st.integers(0, 32))] = np.nan
    if draw(st.booleans()):
        row = draw(st.integers(0, t - 1))
        pts[row, INDEX["left_knee"]] = pts[row, INDEX["left_hip"]]
    if draw(st.booleans()):
        pts[:, INDEX["left_shoulder"]] = pts[:, INDEX["right_shoulder"]]  # degenerate plane
    return pts


@settings(max_examples=150, deadline=None)
@given(pts=landmark_arrays(), space=st.sampled_from(["image", "world"]))
def test_kernel_matches_reference(pts: np.ndarray, space: str) -> None:
    defs = angle_defs(space)  # type: ignore[arg-type]
    scale = np.array([640.0, 480.0, 0.0]) if space == "image" else np.ones(3)
    p = with_midpoints(pts)
    got = angle_table_kernel(p, *pack_defs(defs), scale)
    want = angle_table_reference(p, *pack_defs(defs), scale)
    assert got.shape == (pts.shape[0], len(defs))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True)
    finite = got[np.isfinite(got)]
    assert ((finite >= -90 - 1e-9) & (finite <= 180 + 1e-9)).all()
