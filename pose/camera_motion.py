"""How far the camera moved: the background's shift from frame to frame.

Whether a patient stayed in place (feet planted in a squat, legs held on a
bench) is judged from where their landmarks go in the image. A hand-held
camera moves every landmark too, so the image alone cannot tell a panning
camera from a patient walking away. This module measures the camera's own
motion from the background, so the engine can judge landmarks against the
room instead of the frame.

Method: the frame is reduced to grey at about `WORK_WIDTH` pixels; corners
(Shi-Tomasi) are picked outside the patient's box (the landmarks' extent,
enlarged by `PERSON_MARGIN`), followed to the next frame with pyramidal
Lucas-Kanade (kept when tracking back lands within `MAX_FB_PX`), and the
median of the displacements that agree with it is the camera's shift. Corners
are picked again when fewer than `MIN_POINTS` survive. With too few agreeing
corners (a blank wall, a crowd) the shift is taken as zero for that frame: the
camera is assumed still, as the engine assumed before this existed.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

WORK_WIDTH = 192  # pixels: the background's shift needs no detail
MAX_POINTS = 80
MIN_POINTS = 12
PERSON_MARGIN = 0.15  # of the frame: room around the landmarks' box left out
MAX_FB_PX = 0.5  # forward-backward tracking error (working pixels) of a kept corner
AGREE_PX = 1.0  # a corner that moved this far from the median moved on its own


class CameraMotion:
    """Feed frames in order; `update` returns the camera's cumulative shift.

    The shift (x, y) is in image-normalised units (fractions of the width and
    height, like landmark x and y) since the first frame: the background moved
    by it, so a landmark's position in the room is its image position minus it.
    """

    def __init__(self) -> None:
        import cv2  # noqa: F401  (fails early with a clear error if OpenCV is missing)

        self._prev: np.ndarray | None = None
        self._points: np.ndarray | None = None
        self.shift = np.zeros(2, dtype=np.float64)
        self.blind_frames = 0  # frames judged still for want of background corners

    def update(self, rgb: np.ndarray, landmarks_xy: np.ndarray | None = None) -> np.ndarray:
        """The cumulative shift after `rgb` (H, W, 3) uint8; `landmarks_xy`
        (33, 2) normalised (NaN where unseen) marks the patient to leave out."""
        import cv2

        # Every k-th pixel of the green channel: a grey picture about WORK_WIDTH
        # wide for almost nothing (no colour conversion, no filtering pass).
        k = max(1, rgb.shape[1] // WORK_WIDTH)
        grey = np.ascontiguousarray(rgb[::k, ::k, 1])
        gh, gw = grey.shape
        mask = np.full((gh, gw), 255, dtype=np.uint8)
        if landmarks_xy is not None and np.isfinite(landmarks_xy).any():
            lo = np.nanmin(landmarks_xy, axis=0) - PERSON_MARGIN
            hi = np.nanmax(landmarks_xy, axis=0) + PERSON_MARGIN
            x0, y0 = (np.clip(lo, 0, 1) * (gw, gh)).astype(int)
            x1, y1 = (np.clip(hi, 0, 1) * (gw, gh)).astype(int)
            mask[y0:y1, x0:x1] = 0
        if self._prev is not None and self._points is not None and len(self._points):
            nxt, status, _err = cv2.calcOpticalFlowPyrLK(self._prev, grey, self._points, None)
            back, status_back, _err = cv2.calcOpticalFlowPyrLK(grey, self._prev, nxt, None)
            fb = np.linalg.norm((back - self._points).reshape(-1, 2), axis=1)
            ok = (status.ravel() == 1) & (status_back.ravel() == 1) & (fb < MAX_FB_PX)
            moves = (nxt[ok] - self._points[ok]).reshape(-1, 2)
            d = np.median(moves, axis=0) if len(moves) else np.zeros(2)
            agree = np.linalg.norm(moves - d, axis=1) < AGREE_PX if len(moves) else ok[:0]
            if agree.sum() >= MIN_POINTS:
                self.shift += np.median(moves[agree], axis=0) / (gw, gh)
            else:
                self.blind_frames += 1  # too little background agrees: taken as still
            self._points = nxt[ok][agree].reshape(-1, 1, 2) if len(moves) else None
        if self._points is None or len(self._points) < MIN_POINTS:
            self._points = cv2.goodFeaturesToTrack(
                grey, MAX_POINTS, qualityLevel=0.01, minDistance=6, mask=mask
            )
        self._prev = grey
        return self.shift.copy()
