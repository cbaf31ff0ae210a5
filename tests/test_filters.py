"""Filters: kernels against references, the streaming class, frequency behaviour, gaps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from telerehab.pose.filters import (
    OneEuroFilter,
    butterworth,
    fill_gaps,
    fill_gaps_reference,
    one_euro,
    one_euro_reference,
)


@st.composite
def series(draw):
    t_len = draw(st.integers(1, 40))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = draw(hnp.arrays(dtype, (t_len, 3), elements=st.floats(-5, 5, width=32)))
    for where in draw(st.lists(st.sampled_from(["start", "middle", "end", "run"]), max_size=4)):
        if where == "run":
            a = draw(st.integers(0, t_len - 1))
            x[a : a + draw(st.integers(1, 12)), draw(st.integers(0, 2))] = np.nan
        else:
            x[{"start": 0, "middle": t_len // 2, "end": t_len - 1}[where]] = np.nan
    steps = draw(hnp.arrays(np.float64, t_len, elements=st.floats(0.005, 0.2)))
    return x, np.cumsum(steps)  # variable frame intervals


@settings(max_examples=150, deadline=None)
@given(data=series(), beta=st.floats(0, 1), min_cut=st.floats(0.1, 5))
def test_one_euro_kernel_matches_reference_and_streaming(data, beta, min_cut) -> None:
    x, t = data
    got = one_euro(x, t, min_cut, beta)
    want = one_euro_reference(x, t, min_cut, beta)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    live = OneEuroFilter(min_cut, beta)
    streamed = np.stack([live(x[i], t[i]) for i in range(len(t))])
    np.testing.assert_allclose(streamed, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(x))  # NaN in, NaN out; never invented


@settings(max_examples=150, deadline=None)
@given(data=series(), max_gap=st.floats(0.0, 1.0))
def test_fill_gaps_kernel_matches_reference(data, max_gap) -> None:
    x, t = data
    got = fill_gaps(x, t, max_gap)
    np.testing.assert_allclose(got, fill_gaps_reference(x, t, max_gap), atol=1e-9, equal_nan=True)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(got[finite], x[finite].astype(np.float64))


def test_gap_policy() -> None:
    t = np.arange(30) / 30.0
    x = t.copy()
    x[5:8] = np.nan  # 0.13 s gap: filled
    x[12:25] = np.nan  # 0.47 s gap: stays
    x[0] = np.nan  # leading: stays
    out = fill_gaps(x, t, max_gap_s=0.25)
    np.testing.assert_allclose(out[5:8], t[5:8])
    assert np.isnan(out[12:25]).all() and np.isnan(out[0])


def test_one_euro_restarts_after_long_gap_and_smooths_jitter() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    x = 1.0 + 0.02 * rng.standard_normal(300)
    out = one_euro(x, t, min_cutoff_hz=1.0, beta=0.0)
    assert np.std(out[30:]) < 0.5 * np.std(x[30:])
    y = np.concatenate([np.zeros(30), np.full(30, np.nan), np.full(30, 5.0)])
    out = one_euro(y, np.arange(90) / 30.0)
    assert out[60] == 5.0  # restarted after the 1 s gap, no drag from the old value


def test_butterworth_passes_movement_and_removes_jitter() -> None:
    fs = 30.0
    t = np.arange(600) / fs
    slow = np.sin(2 * np.pi * 0.5 * t)  # a 2 s repetition
    fast = 0.3 * np.sin(2 * np.pi * 12 * t)  # 12 Hz jitter
    out = butterworth(slow + fast, t, cutoff_hz=6.0)
    core = slice(60, -60)
    assert np.max(np.abs(out[core] - slow[core])) < 0.02  # zero phase: no lag


def test_butterworth_keeps_long_gaps_nan() -> None:
    t = np.arange(200) / 30.0
    x = np.sin(t)
    x[80:120] = np.nan
    out = butterworth(x, t)
    assert np.isnan(out[80:120]).all() and np.isfinite(out[:80]).all()
