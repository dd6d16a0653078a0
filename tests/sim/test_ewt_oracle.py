"""scripts/ewt_oracle.py: the error floor of an announced wait under the simulator's handle times."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from ewt_oracle import Oracle


def test_the_floor_is_about_half_the_wait_with_nobody_ahead_and_falls_with_the_queue() -> None:
    oracle = Oracle(seed=1)
    alone, behind_four = (oracle.share(2, ahead, states=150, draws=300) for ahead in (0, 4))
    # the first of two remaining handle times spreads about as widely as it is long
    assert 0.40 < alone < 0.65
    # the fifth slot to free is a sum of many handle times: relatively steadier
    assert behind_four < 0.6 * alone


def test_a_busy_slot_frees_after_its_remaining_time_only() -> None:
    oracle = Oracle(seed=2)
    left = oracle.remaining(600.0, 2_000)
    assert (left > 0).all()
    # a slot busy for longer than the median has less left than a whole handle time
    assert float(left.mean()) < 420.0
