from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.model import Trajectory
from router.domain.trajectory import add_turn
from tests.domain.domain_strategies import PROPERTY


def build(values: list[float], keep: int = 20) -> Trajectory:
    traj = Trajectory()
    for value in values:
        traj = add_turn(traj, value, keep=keep)
    return traj


def test_first_turn_sets_peak_even_at_zero() -> None:
    traj = add_turn(Trajectory(), 0.0)
    assert (traj.intensities, traj.peak, traj.peak_turn, traj.turns) == ((0.0,), 0.0, 1, 1)


def test_peak_keeps_its_earliest_turn() -> None:
    traj = build([0.2, 0.9, 0.4, 0.9])
    assert (traj.peak, traj.peak_turn, traj.turns) == (0.9, 2, 4)


def test_clamps_out_of_range_and_nan() -> None:
    traj = build([1.7, -0.3, math.nan])
    assert traj.intensities == (1.0, 0.0, 0.0)
    assert traj.peak == 1.0


def test_window_keeps_last_turns_but_peak_survives() -> None:
    traj = build([0.95, 0.1, 0.2, 0.3], keep=2)
    assert traj.intensities == (0.2, 0.3)
    assert (traj.peak, traj.peak_turn, traj.turns) == (0.95, 1, 4)


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep"):
        add_turn(Trajectory(), 0.5, keep=0)


@PROPERTY
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True)), st.integers(1, 10))
def test_running_summary_matches_history(values: list[float], keep: int) -> None:
    traj = build(values, keep=keep)
    clamped = [0.0 if math.isnan(v) else min(max(v, 0.0), 1.0) for v in values]
    assert traj.turns == len(values)
    assert traj.intensities == tuple(clamped[-keep:])
    assert traj.peak == (max(clamped) if clamped else 0.0)
    if clamped:
        assert clamped[traj.peak_turn - 1] == traj.peak
        assert traj.peak_turn == clamped.index(traj.peak) + 1
    else:
        assert traj.peak_turn == 0
