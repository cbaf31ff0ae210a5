"""Smoothing landmark and angle time series.

- One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), causal and driven by the
  real timestamps: for live feedback. `OneEuroFilter` filters one sample at a
  time; `one_euro` runs the same filter over a whole array (numba kernel, with
  `one_euro_reference` beside it).
- Zero-phase Butterworth low-pass (`butterworth`, 4th order designed, run
  forward and backward with `scipy.signal.sosfiltfilt`, 6 Hz by default): for
  offline analysis.

Gap policy: gaps (NaN runs) spanning at most `max_gap_s` between the samples
around them are filled by linear interpolation in time (`fill_gaps`); longer
gaps and NaN at either end stay NaN. The One-Euro filter outputs NaN for a NaN
sample, and restarts from the next finite sample when the gap was longer than
`reset_after_s`.
"""

from __future__ import annotations

import itertools
import math

import numba
import numpy as np

DEFAULT_MAX_GAP_S = 0.25


def _alpha(cutoff_hz: float, dt_s: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """Causal One-Euro filter over samples of any fixed shape.

    min_cutoff_hz: cutoff at rest (lower = smoother, more lag).
    beta: how fast the cutoff rises with speed (higher = less lag when moving).
    d_cutoff_hz: cutoff of the derivative estimate.
    Each element is filtered independently; a NaN element passes through as NaN.
    """

    def __init__(
        self,
        min_cutoff_hz: float = 1.0,
        beta: float = 0.05,
        d_cutoff_hz: float = 1.0,
        reset_after_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        if min_cutoff_hz <= 0 or d_cutoff_hz <= 0 or beta < 0:
            raise ValueError("One-Euro parameters: cutoffs must be > 0 and beta >= 0")
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.d_cutoff_hz = d_cutoff_hz
        self.reset_after_s = reset_after_s
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: np.ndarray | None = None  # last time each element was finite

    def reset(self) -> None:
        """Forget the past."""
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """Filtered copy of sample `x` taken at `t_s` seconds (increasing)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x = np.full(x.shape, np.nan)
            self._dx = np.zeros(x.shape)
            self._t = np.full(x.shape, -np.inf)
        out = np.full(x.shape, np.nan)
        flat = [a.reshape(-1) for a in (x, self._x, self._dx, self._t, out)]
        _one_euro_step(
            *flat, t_s, self.min_cutoff_hz, self.beta, self.d_cutoff_hz, self.reset_after_s
        )
        return out


def _one_euro_step(x, xs, dxs, ts, out, t, min_cut, beta, d_cut, reset_s):
    """One sample of the filter, element by element (shared by class and reference)."""
    for c in range(x.shape[0]):
        v = x[c]
        if not math.isfinite(v):
            continue
        dt = t - ts[c]
        if not math.isfinite(xs[c]) or dt > reset_s or dt <= 0.0:
            xs[c] = v
            dxs[c] = 0.0
        else:
            dx = (v - xs[c]) / dt
            dxs[c] = dxs[c] + _alpha(d_cut, dt) * (dx - dxs[c])
            cutoff = min_cut + beta * abs(dxs[c])
            xs[c] = xs[c] + _alpha(cutoff, dt) * (v - xs[c])
        ts[c] = t
        out[c] = xs[c]


def one_euro_reference(
    x: np.ndarray, t_s: np.ndarray, min_cutoff_hz: float = 1.0, beta: float = 0.05,
    d_cutoff_hz: float = 1.0, reset_after_s: float = DEFAULT_MAX_GAP_S,
) -> np.ndarray:  # fmt: skip
    """One-Euro over (T, C) samples in plain Python/NumPy (the kernel's reference)."""
    x2 = np.asarray(x, dtype=np.float64).reshape(len(t_s), -1)
    out = np.full(x2.shape, np.nan)
    xs = np.full(x2.shape[1], np.nan)
    dxs = np.zeros(x2.shape[1])
    ts = np.full(x2.shape[1], -np.inf)
    for i in range(x2.shape[0]):
        _one_euro_step(
            x2[i], xs, dxs, ts, out[i], float(t_s[i]), min_cutoff_hz, beta, d_cutoff_hz,
            reset_after_s,
        )  # fmt: skip
    return out.reshape(np.shape(x))


@numba.njit(cache=True, nogil=True)
def _one_euro_kernel(x, t, min_cut, beta, d_cut, reset_s):
    n_t, n_c = x.shape
    out = np.full((n_t, n_c), np.nan)
    for c in range(n_c):
        xs = np.nan
        dxs = 0.0
        last = -np.inf
        for i in range(n_t):
            v = x[i, c]
            if not np.isfinite(v):
                continue
            dt = t[i] - last
            if not np.isfinite(xs) or dt > reset_s or dt <= 0.0:
                xs = v
                dxs = 0.0
            else:
                dx = (v - xs) / dt
                a_d = 1.0 / (1.0 + (1.0 / (2.0 * np.pi * d_cut)) / dt)
                dxs = dxs + a_d * (dx - dxs)
                cutoff = min_cut + beta * abs(dxs)
                a = 1.0 / (1.0 + (1.0 / (2.0 * np.pi * cutoff)) / dt)
                xs = xs + a * (v - xs)
            last = t[i]
            out[i, c] = xs
    return out


def one_euro(
    x: np.ndarray, t_s: np.ndarray, min_cutoff_hz: float = 1.0, beta: float = 0.05,
    d_cutoff_hz: float = 1.0, reset_after_s: float = DEFAULT_MAX_GAP_S,
) -> np.ndarray:  # fmt: skip
    """One-Euro over a whole series x (T, ...) with timestamps t_s (T,); float64 out."""
    x2 = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(len(t_s), -1))
    out = _one_euro_kernel(
        x2, np.asarray(t_s, dtype=np.float64), min_cutoff_hz, beta, d_cutoff_hz, reset_after_s
    )
    return out.reshape(np.shape(x))


@numba.njit(cache=True, nogil=True)
def _fill_gaps_kernel(x, t, max_gap_s):
    n_t, n_c = x.shape
    out = x.copy()
    for c in range(n_c):
        prev = -1
        for i in range(n_t):
            if np.isfinite(x[i, c]):
                if prev >= 0 and i - prev > 1 and t[i] - t[prev] <= max_gap_s:
                    span = t[i] - t[prev]
                    for j in range(prev + 1, i):
                        w = (t[j] - t[prev]) / span if span > 0 else 0.0
                        out[j, c] = x[prev, c] + w * (x[i, c] - x[prev, c])
                prev = i
    return out


def fill_gaps_reference(
    x: np.ndarray, t_s: np.ndarray, max_gap_s: float = DEFAULT_MAX_GAP_S
) -> np.ndarray:
    """NumPy twin of `fill_gaps`."""
    x2 = np.asarray(x, dtype=np.float64).reshape(len(t_s), -1)
    t = np.asarray(t_s, dtype=np.float64)
    out = x2.copy()
    for c in range(x2.shape[1]):
        good = np.flatnonzero(np.isfinite(x2[:, c]))
        for a, b in itertools.pairwise(good):
            if b - a > 1 and t[b] - t[a] <= max_gap_s:
                out[a + 1 : b, c] = np.interp(t[a + 1 : b], [t[a], t[b]], [x2[a, c], x2[b, c]])
    return out.reshape(np.shape(x))


def fill_gaps(x: np.ndarray, t_s: np.ndarray, max_gap_s: float = DEFAULT_MAX_GAP_S) -> np.ndarray:
    """Linearly interpolate NaN runs no longer than `max_gap_s`; float64 out."""
    x2 = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(len(t_s), -1))
    return _fill_gaps_kernel(x2, np.asarray(t_s, dtype=np.float64), max_gap_s).reshape(np.shape(x))


def butterworth(
    x: np.ndarray,
    t_s: np.ndarray,
    cutoff_hz: float = 6.0,
    order: int = 4,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> np.ndarray:
    """Zero-phase low-pass of x (T, ...) sampled at t_s (T,).

    Short gaps are filled first (`fill_gaps`); each remaining finite run is
    filtered on its own, and runs too short for the filter's padding are left
    as they are. The sampling rate is the median of the frame intervals, which
    suits constant and mildly variable frame rates. A cutoff at or above the
    Nyquist frequency returns the gap-filled input unchanged.
    """
    from scipy.signal import butter, sosfiltfilt

    t = np.asarray(t_s, dtype=np.float64)
    filled = fill_gaps(x, t, max_gap_s)
    x2 = filled.reshape(len(t), -1)
    if len(t) < 2:
        return filled
    fs = 1.0 / float(np.median(np.diff(t)))
    if cutoff_hz >= fs / 2:
        return filled
    sos = butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    out = x2.copy()
    for c in range(x2.shape[1]):
        finite = np.isfinite(x2[:, c])
        edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start > padlen:
                out[start:stop, c] = sosfiltfilt(sos, x2[start:stop, c])
    return out.reshape(np.shape(x))
