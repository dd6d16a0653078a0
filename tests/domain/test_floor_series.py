"""The dashboard's series per interval (router/domain/floor_series.py): examples and properties."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.floor_series import (
    AcceptedWait,
    FloorSample,
    announced_pairs,
    depth_series,
    grid,
    mot_series,
    percentile,
    wait_series,
)
from tests.domain.domain_strategies import PROPERTY

NOW = 1_700_000_123.4


def test_grid_is_aligned_and_holds_now() -> None:
    g = grid(NOW, 3_600, 60)
    assert g.n == 61 and g.interval_s == 60  # now is inside its interval: one more to cover the hour
    assert g.start_s % 60 == 0 and NOW - 3_600 - 60 < g.start_s <= NOW - 3_600
    assert g.index(NOW) == g.n - 1 and g.index(g.start_s) == 0
    assert g.index(g.start_s - 0.001) is None and g.index(g.end_s) is None
    assert g.starts[1] - g.starts[0] == 60


@given(
    now=st.floats(1e9, 2e9),
    window=st.integers(60, 86_400),
    interval=st.integers(10, 3_600),
    t=st.floats(0, 1),
)
@PROPERTY
def test_grid_covers_the_window_and_every_time_in_it_has_one_interval(
    now: float, window: int, interval: int, t: float
) -> None:
    g = grid(now, window, interval)
    assert g.start_s <= now - window + 1e-6 and g.end_s > now
    assert math.ceil(window / interval) <= g.n <= math.ceil(window / interval) + 1
    assert g.start_s > now - window - interval
    when = g.start_s + t * (g.end_s - g.start_s) * 0.999999
    i = g.index(when)
    assert i is not None and g.starts[i] <= when < g.starts[i] + interval + 1e-6


def test_grid_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError):
        grid(NOW, 0, 60)


def test_percentile_interpolates_between_order_statistics() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0], 0.9) == pytest.approx(9.0)  # order does not matter


@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=50), st.floats(0, 1), st.floats(0, 1))
@PROPERTY
def test_percentile_is_monotone_and_within_the_data(xs: list[float], p: float, q: float) -> None:
    lo, hi = sorted((p, q))
    a, b = percentile(xs, lo), percentile(xs, hi)
    assert a is not None and b is not None
    assert min(xs) - 1e-9 <= a <= b + 1e-9 and b <= max(xs) + 1e-9


def test_wait_series_by_class_with_announced_against_actual() -> None:
    g = grid(NOW, 300, 60)
    t0 = g.start_s
    waits = [
        AcceptedWait(t0 + 5, mot=True, waited_s=4.0),
        AcceptedWait(t0 + 10, mot=True, waited_s=8.0, announced_s=10.0, low_s=5.0, high_s=20.0, actual_s=6.0),
        AcceptedWait(t0 + 20, mot=False, waited_s=30.0, announced_s=20.0, actual_s=35.0),
        AcceptedWait(t0 + 130, mot=True, waited_s=2.0),
        AcceptedWait(t0 - 1, mot=True, waited_s=999.0),  # before the window
    ]
    mot = wait_series(waits, g, mot=True)
    assert mot.answered == [2, 0, 1, 0, 0, 0]
    assert mot.p50_s[0] == 6.0 and mot.p90_s[0] == pytest.approx(7.6) and mot.p50_s[1] is None
    assert mot.announced == [1, 0, 0, 0, 0, 0] and mot.mae_s[0] == 4.0
    assert mot.announced_mean_s[0] == 10.0 and mot.actual_mean_s[0] == 6.0
    routine = wait_series(waits, g, mot=False)
    assert routine.answered == [1, 0, 0, 0, 0, 0] and routine.mae_s[0] == 15.0
    pairs = announced_pairs(waits, g, 10)
    assert [p.t_s for p in pairs] == [t0 + 20, t0 + 10]  # newest first, only those announced
    assert announced_pairs(waits, g, 1) == pairs[:1]


waits_st = st.lists(
    st.builds(
        AcceptedWait,
        t_s=st.floats(NOW - 4_000, NOW),
        mot=st.booleans(),
        waited_s=st.one_of(st.none(), st.floats(0, 600)),
        announced_s=st.one_of(st.none(), st.floats(0, 600)),
        actual_s=st.one_of(st.none(), st.floats(0, 600)),
    ),
    max_size=40,
)


@given(waits_st)
@PROPERTY
def test_wait_series_counts_every_answered_contact_in_the_window_once(waits: list[AcceptedWait]) -> None:
    g = grid(NOW, 3_600, 60)
    inside = [w for w in waits if g.index(w.t_s) is not None]
    mot, routine = wait_series(waits, g, mot=True), wait_series(waits, g, mot=False)
    assert sum(mot.answered) + sum(routine.answered) == len(inside)
    for s in (mot, routine):
        assert all(n >= k for n, k in zip(s.answered, s.announced, strict=True))
        for p50, p90, n in zip(s.p50_s, s.p90_s, s.answered, strict=True):
            assert (p50 is None) == (p90 is None)
            assert p50 is None or (n > 0 and p50 <= p90 + 1e-9)  # type: ignore[operator]
        assert all((m is None) == (k == 0) for m, k in zip(s.mae_s, s.announced, strict=True))


def _sample(t: float, mot: int, depth: int = 0, general: int = 0) -> FloorSample:
    return FloorSample(t, {"mot": depth, "general": general}, mot)


def test_depth_is_the_highest_sample_of_the_interval_and_a_gap_without_one() -> None:
    g = grid(NOW, 180, 60)
    t0 = g.start_s
    samples = [_sample(t0 + 1, 0, 3, 10), _sample(t0 + 30, 0, 5, 2), _sample(t0 + 150, 0, 1, 0)]
    assert depth_series(samples, g, "mot") == [5, None, 1, None]
    assert depth_series(samples, g, "general") == [10, None, 0, None]
    assert depth_series(samples, g, "other") == [None] * 4


def test_moments_of_truth_are_the_growth_of_the_running_count() -> None:
    g = grid(NOW, 180, 60)
    t0 = g.start_s
    samples = [
        _sample(t0 - 5, 10),  # the base, before the window
        _sample(t0 + 10, 12),
        _sample(t0 + 40, 15),
        _sample(t0 + 130, 15),
        _sample(t0 + 140, 2),  # the stats were reset: nothing, not a negative count
        _sample(t0 + 150, 4),
    ]
    assert mot_series(list(reversed(samples)), g) == [5, None, 2, None]


@given(st.lists(st.tuples(st.floats(NOW - 4_000, NOW), st.integers(0, 1_000)), max_size=40))
@PROPERTY
def test_moments_of_truth_add_up_to_the_growth_within_the_window(points: list[tuple[float, int]]) -> None:
    g = grid(NOW, 3_600, 60)
    samples = [_sample(t, n) for t, n in points]
    got = mot_series(samples, g)
    assert all(x is None or x >= 0 for x in got)
    ordered = sorted(samples, key=lambda s: s.t_s)
    expect = sum(
        max(0, b.mot_total - a.mot_total)
        for a, b in itertools.pairwise(ordered)
        if g.index(b.t_s) is not None
    )
    assert sum(x or 0 for x in got) == expect
