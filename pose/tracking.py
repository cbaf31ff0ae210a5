"""Keep following one patient when several people are in view.

Selection: at the start, the person whose box is largest and nearest the image
centre (score = box area x (1 - distance of its centre from the image centre)),
or the person nearest a point the user gives. Afterwards each frame takes the
candidate that overlaps the patient's last box best (IoU); a candidate that
does not overlap enough is never taken, so the skeleton cannot jump to a
passer-by. After a loss the patient is re-acquired near the last place seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

_MIN_VISIBILITY = 0.3  # landmarks less visible than this do not shape the box


def boxes(image_landmarks: np.ndarray) -> np.ndarray:
    """(P, 4) boxes x0, y0, x1, y1 (normalised) of (P, 33, 4) landmarks.

    Uses the landmarks seen with visibility >= 0.3, or all when too few are.
    """
    out = np.full((image_landmarks.shape[0], 4), np.nan, dtype=np.float64)
    for p, lm in enumerate(image_landmarks):
        pts = (
            lm[lm[:, 3] >= _MIN_VISIBILITY, :2]
            if (lm[:, 3] >= _MIN_VISIBILITY).sum() >= 4
            else lm[:, :2]
        )
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):
            out[p] = (*pts.min(axis=0), *pts.max(axis=0))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of box `a` (4,) against boxes `b` (P, 4)."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(slots=True)
class PatientTracker:
    """Chooses which detected person is the patient, frame after frame.

    target: optional (x, y) normalised point: start with the person nearest it.
    min_iou: the overlap with the patient's last box a candidate needs.
    """

    target: tuple[float, float] | None = None
    min_iou: float = 0.2
    _last_box: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the patient (a new video or session)."""
        self._last_box = None

    def select(self, image_landmarks: np.ndarray) -> int | None:
        """Index of the patient among (P, 33, 4) candidates, or None."""
        if image_landmarks.shape[0] == 0:
            return None
        bx = boxes(image_landmarks)
        valid = np.isfinite(bx).all(axis=1)
        if not valid.any():
            return None
        if self._last_box is None:
            choice = self._initial(bx, valid)
        else:
            overlap = np.where(valid, iou(self._last_box, np.nan_to_num(bx)), -1.0)
            choice = int(np.argmax(overlap))
            if overlap[choice] < self.min_iou:
                if image_landmarks.shape[0] == 1 and self._plausible_return(bx[0]):
                    choice = 0
                else:
                    return None
        self._last_box = bx[choice]
        return choice

    def _initial(self, bx: np.ndarray, valid: np.ndarray) -> int:
        centres = np.stack([(bx[:, 0] + bx[:, 2]) / 2, (bx[:, 1] + bx[:, 3]) / 2], axis=1)
        if self.target is not None:
            dist = np.linalg.norm(centres - np.asarray(self.target), axis=1)
            return int(np.argmin(np.where(valid, dist, np.inf)))
        area = (bx[:, 2] - bx[:, 0]) * (bx[:, 3] - bx[:, 1])
        off_centre = np.linalg.norm(centres - 0.5, axis=1) / np.sqrt(0.5)
        score = area * np.clip(1.0 - off_centre, 0.05, None)
        return int(np.argmax(np.where(valid, score, -np.inf)))

    def _plausible_return(self, box: np.ndarray) -> bool:
        """A lone person whose box centre is within one box-size of where the patient was."""
        last = self._last_box
        assert last is not None  # only called once a patient was selected
        size = max(last[2] - last[0], last[3] - last[1])
        d = np.hypot(
            (box[0] + box[2] - last[0] - last[2]) / 2, (box[1] + box[3] - last[1] - last[3]) / 2
        )
        return bool(d <= size)
