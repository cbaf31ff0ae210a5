"""Implausible poses are missing frames; the camera's own motion is measured."""

from __future__ import annotations

import numpy as np
import pytest

from telerehab.pose.camera_motion import CameraMotion
from telerehab.pose.frame import PoseFrame
from telerehab.pose.landmarks import INDEX
from telerehab.pose.plausibility import (
    FLIP_HOLD_S,
    FLIP_MIN_HOLD_S,
    PlausibilityCheck,
    implausible_frames,
)


def _body(dx: float = 0.0, flipped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A standing figure (image (33, 4), world (33, 3)); `flipped` puts the
    shoulders below the hips."""
    image = np.full((33, 4), np.nan, dtype=np.float32)
    world = np.zeros((33, 3), dtype=np.float32)
    sh_y, hip_y = (0.7, 0.5) if flipped else (0.3, 0.5)
    for side, x in (("left", 0.45), ("right", 0.55)):
        for name, y, wy in (
            ("shoulder", sh_y, -0.5),
            ("hip", hip_y, 0.0),
            ("elbow", 0.4, -0.25),
            ("wrist", 0.5, 0.0),
            ("knee", 0.7, 0.45),
            ("ankle", 0.9, 0.9),
        ):
            image[INDEX[f"{side}_{name}"]] = (x + dx, y, 0, 1)
            world[INDEX[f"{side}_{name}"]] = (x - 0.5, wy, 0)
    return image, world


def _frames(states: list[tuple[float, bool]], fps: float = 30.0) -> list[PoseFrame]:
    out = []
    for i, (dx, flipped) in enumerate(states):
        image, world = _body(dx, flipped)
        out.append(PoseFrame(image, world, i / fps, i, 1, 640, 480))
    return out


def test_a_steady_body_is_plausible() -> None:
    check = PlausibilityCheck()
    assert not any(check.check(f) for f in _frames([(0.001 * i, False) for i in range(60)]))


def test_a_flip_is_missing_until_it_flips_back() -> None:
    states = [(0.0, False)] * 10 + [(0.0, True)] * 20 + [(0.0, False)] * 10
    check = PlausibilityCheck()
    reasons = [check.check(f) for f in _frames(states)]
    assert reasons[10:30] == ["flip"] * 20
    assert not any(reasons[:10]) and not any(reasons[30:])
    assert check.counts["flip"] == 20


def test_a_lasting_flip_is_accepted_after_the_hold() -> None:
    n_hold = int(FLIP_HOLD_S * 30) + 5
    states = [(0.0, False)] * 10 + [(0.0, True)] * (n_hold + 30)
    check = PlausibilityCheck()
    reasons = [check.check(f) for f in _frames(states)]
    assert reasons[10] == "flip" and not any(reasons[10 + n_hold :])


def test_a_track_that_starts_the_wrong_way_up_is_righted_soon() -> None:
    """A model that draws the first frames of a track upside down (3 frames)
    and then the right way up: the right frames are missing only until they
    have lasted longer than the wrong ones had, and at least FLIP_MIN_HOLD_S
    (they used to stay missing for FLIP_HOLD_S, 5 s of a floor-press clip);
    a flip back after that is a flip."""
    n_min = int(FLIP_MIN_HOLD_S * 30)
    states = [(0.0, True)] * 3 + [(0.0, False)] * (n_min + 30) + [(0.0, True)] * 5
    check = PlausibilityCheck()
    reasons = [check.check(f) for f in _frames(states)]
    assert reasons[3] == "flip" and all(reasons[3 : 3 + n_min])
    assert not any(reasons[3 + n_min + 1 : 3 + n_min + 30])
    assert reasons[-5:] == ["flip"] * 5


def test_a_jump_to_another_place_and_a_stretched_limb() -> None:
    check = PlausibilityCheck()
    frames = _frames([(0.0, False)] * 5 + [(0.35, False)])  # 0.35 of the width in 1/30 s
    assert [check.check(f) for f in frames][-1] == "jump"
    image, world = _body()
    world[INDEX["left_wrist"]] = (3.0, 0.0, 0.0)  # a forearm of 3 m
    assert PlausibilityCheck().check(PoseFrame(image, world, 0.0, 0, 1, 640, 480)) == "segment"


def test_the_frame_that_ends_a_flip_is_judged_for_a_jump() -> None:
    """A skeleton flips for 3 frames, then comes back the right way up, but
    0.35 of the width away (another person): a jump, as it would be without
    the flip between (accepted as the flip's end before stop 23, which let a
    lite-model "repetition" run on across two people); once it has stayed
    there long enough to be reachable, it is accepted."""
    states = [(0.0, False)] * 5 + [(0.0, True)] * 3 + [(0.35, False)] * 20
    check = PlausibilityCheck()
    reasons = [check.check(f) for f in _frames(states)]
    assert reasons[5:8] == ["flip"] * 3
    assert reasons[8] == "jump" and not any(reasons[-5:])


def test_a_flickering_track_is_missing() -> None:
    image, world = _body()
    frames = []
    for i in range(40):
        f = PoseFrame(image, world, i / 30, i, 1, 640, 480)
        frames.append(f if i % 3 == 0 else PoseFrame.empty(i / 30, i, 0, 640, 480))
    check = PlausibilityCheck()
    reasons = [check.check(f) for f in frames]
    assert "flicker" in reasons[15:]


def test_sequence_helper_matches_the_streaming_check() -> None:
    states = [(0.0, False)] * 10 + [(0.0, True)] * 5 + [(0.0, False)] * 10
    frames = _frames(states)
    image = np.stack([f.image_landmarks for f in frames])
    world = np.stack([f.world_landmarks for f in frames])
    t = np.array([f.t_s for f in frames])
    check = PlausibilityCheck()
    assert implausible_frames(image, world, t, 640, 480).tolist() == [
        bool(check.check(f)) for f in frames
    ]


def _textured(h: int = 240, w: int = 320, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))


@pytest.mark.parametrize("step_px", [0, 2, 4])
def test_camera_motion_follows_a_pan(step_px: int) -> None:
    """A textured scene shifted step_px pixels a frame: the shift is measured
    (in image fractions), and a still scene measures zero."""
    scene = _textured(240, 480)
    cam = CameraMotion()
    for i in range(20):
        frame = np.ascontiguousarray(scene[:, 80 + i * step_px : 400 + i * step_px])
        shift = cam.update(frame)
    expected = -19 * step_px / 320  # the background moves left as the view pans right
    assert shift[0] == pytest.approx(expected, abs=0.01) and abs(shift[1]) < 0.01


def test_camera_motion_ignores_the_patient_and_a_blank_wall() -> None:
    scene = _textured()
    cam = CameraMotion()
    box = np.array([[0.3, 0.2], [0.7, 0.9]])  # the patient's landmarks' extent
    for i in range(15):
        frame = scene.copy()
        frame[60:200, 110:210] = np.roll(scene[60:200, 110:210], 5 * i, axis=1)  # moves inside
        shift = cam.update(frame, box)
    assert np.abs(shift).max() < 0.01
    blank = CameraMotion()
    for _ in range(5):
        shift = blank.update(np.full((240, 320, 3), 128, dtype=np.uint8))
    assert np.abs(shift).max() == 0  # no background to follow: taken as still
