"""An exercise's demonstration: a neutral skeleton doing the movement, drawn
from the exercise's own definition (no recording of anyone, nothing to license).

The skeleton is the 33 BlazePose landmarks of a 1.70 m body, its segment
lengths the anthropometric fractions of body height H of Drillis and Contini
as tabled by Winter (Biomechanics and Motor Control of Human Movement, 4th ed.,
2009, fig. 4.1): trunk (hip to shoulder) 0.288 H, thigh 0.245 H, shank
0.246 H, ankle height 0.039 H, upper arm 0.186 H, forearm 0.146 H, hand
0.108 H, shoulder width 0.259 H, foot 0.152 H; the hip landmarks (joint
centres, as BlazePose places them) 0.12 H apart, narrower than Winter's
0.191 H hip breadth.

An exercise's `demonstration:` block names the starting posture (standing,
sitting, supine, prone), the camera view (side or front) and the joint
rotations, each from its rest angle to its turning point in degrees;
`animate` rotates the segments about their joints (forward kinematics from
the pelvis), rest -> turning point -> rest at the exercise's tempo, a few
times. `fixed` landmarks (the feet of a squat) stay where they were at the
start: the whole body moves to keep them, so a squat lowers the pelvis and
a heel raise lifts the body.

Joint angles, all in the body's own frame (0 = standing at attention):
trunk_flexion (trunk forward about the hips), body_pitch (the whole body
forward about its left-right axis), hip_flexion and hip_abduction (the
thigh), knee_flexion, ankle_dorsiflexion (plantarflexion < 0),
shoulder_flexion, shoulder_abduction, elbow_flexion. `side` says which limb
turns: both, moving (the counted side of a one-sided exercise: the left,
nearest the camera in a side view) or other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from telerehab.pose.estimator import PoseSequence
from telerehab.pose.landmarks import INDEX, N_LANDMARKS

if TYPE_CHECKING:
    from .exercise import Exercise

H_M = 1.70  # body height, metres
POSTURES = ("standing", "sitting", "supine", "prone")
JOINTS = (
    "trunk_flexion", "body_pitch", "hip_flexion", "hip_abduction", "knee_flexion",
    "ankle_dorsiflexion", "shoulder_flexion", "shoulder_abduction", "elbow_flexion",
)  # fmt: skip
MOVING, OTHER = "left", "right"  # the side a one-sided demonstration moves
FPS = 30.0
REPS = 3
REST_S = 1.0  # at rest before, between and after the repetitions
SIZE_PX = 480  # the longer side of the demonstration's picture

# Segment lengths and offsets in metres (see the module docstring).
_TRUNK, _THIGH, _SHANK = 0.288 * H_M, 0.245 * H_M, 0.246 * H_M
_UPPER_ARM, _FOREARM, _HAND = 0.186 * H_M, 0.146 * H_M, 0.108 * H_M
_SHOULDER_X, _HIP_X = 0.259 * H_M / 2, 0.06 * H_M
# Postures' joint angles before the demonstration's own (both sides).
_POSTURE_ANGLES = {"sitting": {"hip_flexion": 90.0, "knee_flexion": 90.0}}
_POSTURE_PITCH = {"supine": -90.0, "prone": 90.0}  # lying on the back, face down


@dataclass(frozen=True, slots=True)
class JointMove:
    """One joint's rotation in a demonstration, degrees from the body at
    attention: `from_deg` at rest, `to_deg` at the turning point."""

    joint: str
    side: str  # both, moving, other
    from_deg: float
    to_deg: float


@dataclass(frozen=True, slots=True)
class Demonstration:
    """What the skeleton does (see the module docstring)."""

    posture: str
    view: str  # side or front
    joints: tuple[JointMove, ...]
    fixed: tuple[str, ...] = ()  # see `fixed_indices`


def _rx(deg: float) -> np.ndarray:
    """Rotation about the body's left axis: positive turns up towards forward."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(deg: float) -> np.ndarray:
    """Rotation about the forward axis: positive turns down towards the left."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose_at(posture: str, angles: dict[tuple[str, str], float]) -> np.ndarray:
    """(33, 3) landmarks in metres in the room (x left, y up, z forward of the
    body at attention; origin between the hips) for joint `angles` keyed by
    (joint, side), side left, right or "" for the trunk and the whole body."""

    def a(joint: str, side: str = "") -> float:
        return angles.get((joint, side), 0.0)

    out = np.zeros((N_LANDMARKS, 3))

    def put(name: str, point: np.ndarray) -> None:
        out[INDEX[name]] = point

    root = _rx(_POSTURE_PITCH.get(posture, 0.0) + a("body_pitch"))
    trunk = root @ _rx(a("trunk_flexion"))
    for name, (x, y, z) in _HEAD.items():
        put(name, trunk @ (x, y, z))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = trunk @ (sign * _SHOULDER_X, _TRUNK, 0.0)
        abduction = _rz(sign * a("shoulder_abduction", side))
        upper = trunk @ _rx(-a("shoulder_flexion", side)) @ abduction
        elbow = shoulder + upper @ (0.0, -_UPPER_ARM, 0.0)
        fore = upper @ _rx(-a("elbow_flexion", side))
        wrist = elbow + fore @ (0.0, -_FOREARM, 0.0)
        put(f"{side}_shoulder", shoulder)
        put(f"{side}_elbow", elbow)
        put(f"{side}_wrist", wrist)
        put(f"{side}_index", wrist + fore @ (0.0, -0.6 * _HAND, 0.0))
        put(f"{side}_pinky", wrist + fore @ (sign * 0.025, -0.5 * _HAND, 0.0))
        put(f"{side}_thumb", wrist + fore @ (-sign * 0.02, -0.3 * _HAND, 0.03))
        hip = root @ (sign * _HIP_X, 0.0, 0.0)
        thigh = root @ _rx(-a("hip_flexion", side)) @ _rz(sign * a("hip_abduction", side))
        knee = hip + thigh @ (0.0, -_THIGH, 0.0)
        shank = thigh @ _rx(a("knee_flexion", side))
        ankle = knee + shank @ (0.0, -_SHANK, 0.0)
        foot = shank @ _rx(-a("ankle_dorsiflexion", side))
        put(f"{side}_hip", hip)
        put(f"{side}_knee", knee)
        put(f"{side}_ankle", ankle)
        put(f"{side}_heel", ankle + foot @ (0.0, -0.055, -0.05))
        put(f"{side}_foot_index", ankle + foot @ (0.0, -0.02, 0.19))
    return out


# The face in the trunk's frame (metres from between the hips): heights from
# Winter's fractions (eyes 0.936 H, chin 0.870 H above the floor; hips 0.530 H).
_HEAD = {
    "nose": (0.0, 0.375 * H_M, 0.10),
    "left_eye_inner": (0.015, 0.406 * H_M, 0.085),
    "left_eye": (0.03, 0.406 * H_M, 0.08),
    "left_eye_outer": (0.045, 0.406 * H_M, 0.075),
    "right_eye_inner": (-0.015, 0.406 * H_M, 0.085),
    "right_eye": (-0.03, 0.406 * H_M, 0.08),
    "right_eye_outer": (-0.045, 0.406 * H_M, 0.075),
    "left_ear": (0.075, 0.395 * H_M, 0.0),
    "right_ear": (-0.075, 0.395 * H_M, 0.0),
    "mouth_left": (0.025, 0.355 * H_M, 0.09),
    "mouth_right": (-0.025, 0.355 * H_M, 0.09),
}


def _angles(demo: Demonstration, u: float) -> dict[tuple[str, str], float]:
    """The joint angles `u` of the way (0 rest .. 1 turning point)."""
    out: dict[tuple[str, str], float] = {}
    for joint, value in _POSTURE_ANGLES.get(demo.posture, {}).items():
        out[joint, "left"] = out[joint, "right"] = value
    for m in demo.joints:
        value = m.from_deg + u * (m.to_deg - m.from_deg)
        if joint_has_sides(m.joint):
            sides = {"both": ("left", "right"), "moving": (MOVING,), "other": (OTHER,)}[m.side]
        else:
            sides = ("",)
        for side in sides:
            out[m.joint, side] = value
    return out


def joint_has_sides(joint: str) -> bool:
    """False for the trunk and the whole body, True for the limbs."""
    return joint not in ("trunk_flexion", "body_pitch")


def fixed_indices(names: tuple[str, ...]) -> list[int]:
    """Landmark indices of `fixed` names: a part of both sides (`ankle`),
    of one (`moving_ankle`, `other_ankle`) or a landmark (`nose`); KeyError
    names an unknown one."""
    out: list[int] = []
    for name in names:
        if name in INDEX:
            out.append(INDEX[name])
        elif name.startswith("moving_"):
            out.append(INDEX[f"{MOVING}_{name[7:]}"])
        elif name.startswith("other_"):
            out.append(INDEX[f"{OTHER}_{name[6:]}"])
        else:
            out += [INDEX[f"left_{name}"], INDEX[f"right_{name}"]]
    return out


def progress(
    tempo_s: tuple[float, float, float], reps: int = REPS, fps: float = FPS
) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, u): frame times from 0 and how far along the movement each frame
    is (0 rest, 1 turning point), `reps` repetitions at `tempo_s` (up, hold,
    down) with `REST_S` at rest around each; the way up and down eases in
    and out (half a cosine), as a person moves."""
    up, hold, down = tempo_s
    keys = [(0.0, 0.0)]
    t = REST_S
    for _ in range(reps):
        keys += [(t, 0.0), (t + up, 1.0), (t + up + hold, 1.0), (t + up + hold + down, 0.0)]
        t += up + hold + down + REST_S
    keys.append((t, 0.0))
    times = np.arange(0.0, t + 1e-9, 1.0 / fps)
    kt, ku = np.array(keys).T
    linear = np.interp(times, kt, ku)
    # ease each ramp: u is linear within a ramp between 0 and 1, so the cosine
    # of it keeps 0 and 1 and slows the ends
    return times, (1 - np.cos(np.pi * linear)) / 2


def animate(demo: Demonstration, u: np.ndarray) -> np.ndarray:
    """(T, 33, 3) room positions (metres, x left, y up, z forward) for the
    progress `u` (T,), the fixed landmarks held where they start."""
    frames = np.stack([pose_at(demo.posture, _angles(demo, float(v))) for v in u])
    fixed = fixed_indices(demo.fixed)
    if fixed:
        at = frames[:, fixed].mean(axis=1, keepdims=True)
        frames = frames - (at - at[:1])
    return frames


# Room (x left, y up, z forward of the body at attention) to BlazePose world
# (x right in the picture, y down, z away from the camera), per view: seen
# from the front the body faces the camera; from the side it faces the
# picture's left and shows its left side (the side a one-sided exercise moves).
_VIEWS = {
    "front": np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], float),
    "side": np.array([[0, 0, -1], [0, -1, 0], [-1, 0, 0]], float),
}


def sequence(
    demo: Demonstration, tempo_s: tuple[float, float, float], reps: int = REPS
) -> PoseSequence:
    """The demonstration as a `PoseSequence` a camera would have given: world
    landmarks around the hips, image landmarks of an orthographic camera that
    keeps the whole movement in a picture of at most `SIZE_PX` pixels (6 % to
    spare on every side), every landmark seen."""
    t_s, u = progress(tempo_s, reps)
    room = animate(demo, u)
    world = room @ _VIEWS[demo.view].T  # metres, y down
    lo = world[..., :2].reshape(-1, 2).min(axis=0)
    hi = world[..., :2].reshape(-1, 2).max(axis=0)
    span = np.maximum(hi - lo, 0.2)
    aspect = float(np.clip(span[0] / span[1], 0.6, 1.8))
    width, height = (SIZE_PX, round(SIZE_PX / aspect)) if aspect >= 1 else (
        round(SIZE_PX * aspect), SIZE_PX)  # fmt: skip
    px_per_m = 0.88 * min(width / span[0], height / span[1])
    centre = (lo + hi) / 2
    image = np.ones((*world.shape[:2], 4), np.float32)
    image[..., 0] = 0.5 + (world[..., 0] - centre[0]) * px_per_m / width
    image[..., 1] = 0.5 + (world[..., 1] - centre[1]) * px_per_m / height
    image[..., 2] = world[..., 2] * px_per_m / width
    mid_hip = world[:, [INDEX["left_hip"], INDEX["right_hip"]]].mean(axis=1, keepdims=True)
    n = len(t_s)
    return PoseSequence(
        image=image,
        world=(world - mid_hip).astype(np.float32),
        t_s=t_s,
        index=np.arange(n, dtype=np.int64),
        n_people=np.ones(n, np.int16),
        width=width,
        height=height,
        source="demonstration",
        fps=FPS,
        backend="demonstration",
        variant="kinematic",
    )


# The joints a program compares between exercises (`rehab_programs.program_run`):
# large, seen from any camera, and never incidental to an exercise (the arms'
# swing is: a squat's arms forward for balance, a back extension's hanging).
BODY_JOINTS = ("knee_flexion", "hip_flexion", "elbow_flexion")
HELD_SHARE = 0.25  # a joint turning less than this share of the largest turn is held


@lru_cache(maxsize=64)
def joint_turns(demo: Demonstration) -> dict[str, float]:
    """How far each of `BODY_JOINTS` turns, rest to turning point, in degrees
    per side (`left_knee_flexion`, ...), as `pose.kinematics` measures it in
    world space on the skeleton (a trunk bent forward turns the hips)."""
    from telerehab.pose.kinematics import compute_angles

    world = animate(demo, np.array([0.0, 1.0])) @ _VIEWS[demo.view].T
    names = tuple(f"{s}_{j}" for j in BODY_JOINTS for s in (MOVING, OTHER))
    table = compute_angles(world, "world", names=names)
    return {n: float(table[n][1] - table[n][0]) for n in names}


def _largest_turn(demo: Demonstration) -> float:
    return max((abs(m.to_deg - m.from_deg) for m in demo.joints), default=0.0)


def held_joints(exercise: Exercise) -> frozenset[str]:
    """`BODY_JOINTS` the exercise's own demonstration holds still on both sides
    (each turning under `HELD_SHARE` of its largest joint's turn): a wall
    push-up holds the knees and hips. Empty when the exercise states no
    demonstration (a learned one's is made from its signal alone, and says
    nothing of the rest of the body)."""
    demo = exercise.demonstration
    if demo is None or _largest_turn(demo) <= 0:
        return frozenset()
    turns, limit = joint_turns(demo), HELD_SHARE * _largest_turn(demo)
    return frozenset(
        j for j in BODY_JOINTS if all(abs(turns[f"{s}_{j}"]) < limit for s in (MOVING, OTHER))
    )


def moved_joints(exercise: Exercise) -> frozenset[str]:
    """`BODY_JOINTS` the exercise's own demonstration turns, on either side, by
    `HELD_SHARE` of its largest joint's turn or more: a squat moves the knees
    and hips. Empty when it states no demonstration."""
    demo = exercise.demonstration
    if demo is None or _largest_turn(demo) <= 0:
        return frozenset()
    turns, limit = joint_turns(demo), HELD_SHARE * _largest_turn(demo)
    return frozenset(
        j for j in BODY_JOINTS if any(abs(turns[f"{s}_{j}"]) >= limit for s in (MOVING, OTHER))
    )


# A learned exercise (taught by a therapist, `learn`) keeps no recording of its
# demonstration, only its definition: its signal's joint turns from the rest
# to the turning point the therapist demonstrated. (joint, posture) per signal;
# None where a single joint does not show the angle.
_FROM_SIGNAL = {
    "knee_flexion": ("knee_flexion", "standing"),
    "hip_flexion": ("hip_flexion", "standing"),
    "ankle_dorsiflexion": ("ankle_dorsiflexion", "standing"),
    "elbow_flexion": ("elbow_flexion", "standing"),
    "shoulder_elevation": ("shoulder_flexion", "standing"),
    "shoulder_flexion": ("shoulder_flexion", "standing"),
    "shoulder_abduction": ("shoulder_abduction", "standing"),
    "upper_arm_inclination": ("shoulder_flexion", "standing"),
    "thigh_inclination": ("hip_flexion", "standing"),
    "trunk_lean": ("trunk_flexion", "standing"),
}
_FIXED = {  # what stays on the floor when the exercise names no anchors
    "ankle_dorsiflexion": ("foot_index",),
    "knee_flexion": ("hip",),  # seated, or a standing knee bend held at the hips
    "hip_flexion": ("other_heel", "other_foot_index"),
}


def _fixed_of_anchors(anchors: tuple[str, ...], unilateral: bool) -> tuple[str, ...]:
    """The exercise's anchors (`side_X`, `other_X`, names) as `fixed` names."""
    out = []
    for name in anchors:
        if name.startswith("side_"):
            out.append(f"moving_{name[5:]}" if unilateral else name[5:])
        else:
            out.append(name)
    return tuple(out)


def of_exercise(exercise: Exercise) -> Demonstration | None:
    """The exercise's own demonstration, or one made from its definition (a
    learned exercise): None when its signal is no single joint's turn."""
    if exercise.demonstration is not None:
        return exercise.demonstration
    found = _FROM_SIGNAL.get(exercise.signal_angle)
    if found is None:
        return None
    joint, posture = found
    view = next((v for v in exercise.views if v in _VIEWS), "side")
    if view == "front" and joint == "shoulder_flexion":
        joint = "shoulder_abduction"  # seen from the front, an arm rises sideways
    if view == "front" and exercise.signal_angle == "thigh_inclination":
        joint = "hip_abduction"
    p = exercise.phases
    if joint == "knee_flexion" and p.direction < 0:
        posture = "sitting"  # a knee that straightens from bent: seated
    side = "moving" if exercise.laterality == "unilateral" else "both"
    if not joint_has_sides(joint):
        side = "both"
    fixed = _fixed_of_anchors(exercise.anchors, side == "moving") or _FIXED.get(
        joint, ("heel", "foot_index")
    )
    if exercise.signal_angle == "hip_flexion" and side == "both":
        joint = "trunk_flexion"  # both hips bend: the trunk leans forward
    return Demonstration(posture, view, (JointMove(joint, side, p.rest_deg, p.peak_deg),), fixed)


@lru_cache(maxsize=64)
def _sequence_cached(demo: Demonstration, tempo_s: tuple[float, float, float]) -> PoseSequence:
    return sequence(demo, tempo_s)


def of_exercise_sequence(exercise: Exercise) -> PoseSequence | None:
    """The exercise's demonstration at its tempo (cached: the same for every
    patient), or None (`of_exercise`)."""
    demo = of_exercise(exercise)
    return None if demo is None else _sequence_cached(demo, exercise.tempo_s)
