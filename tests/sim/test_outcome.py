"""The outcome model: what the simulated customer says about the contact. Pure and seeded."""

from __future__ import annotations

import random

import pytest

from router.sim.outcome import (
    ABANDONED_MOT,
    ABANDONED_ROUTINE,
    CONTAINED,
    DETOUR_PENALTY,
    Outcome,
    expected_csat,
    sample_csat,
)
from router.sim.report import deltas, pct


def test_moment_of_truth_csat_rises_with_eq() -> None:
    values = [expected_csat(Outcome(True, handled_skill=eq, wait_s=10.0)) for eq in range(1, 6)]
    assert values == sorted(values) and len(set(values)) == 5
    assert values[0] == pytest.approx(2.45)
    assert values[-1] == 5.0  # clipped


def test_waiting_costs_moments_of_truth_more_than_routine_contacts() -> None:
    mot = [expected_csat(Outcome(True, handled_skill=4, wait_s=w)) for w in (0, 30, 90, 150, 600)]
    assert mot[0] == mot[1] > mot[2] > mot[3] > mot[4]
    assert mot[1] - mot[4] == pytest.approx(2.5)  # the penalty is capped
    routine = [expected_csat(Outcome(False, handled_skill=4, wait_s=w)) for w in (0, 120, 180)]
    assert routine[0] == routine[1] > routine[2]
    assert mot[2] - mot[3] > routine[1] - routine[2] - 1e-9


def test_detour_abandon_and_containment() -> None:
    served = Outcome(True, handled_skill=3, wait_s=20.0)
    detour = Outcome(True, handled_skill=3, wait_s=20.0, detoured=True)
    assert expected_csat(served) - expected_csat(detour) == pytest.approx(DETOUR_PENALTY)
    assert expected_csat(Outcome(True, abandoned=True)) == ABANDONED_MOT
    assert expected_csat(Outcome(False, abandoned=True)) == ABANDONED_ROUTINE
    assert expected_csat(Outcome(False, contained=True)) == CONTAINED
    assert ABANDONED_MOT < ABANDONED_ROUTINE < CONTAINED


def test_sampled_csat_is_seeded_integer_and_unbiased() -> None:
    a = [sample_csat(3.4, random.Random(s)) for s in range(50)]
    assert a == [sample_csat(3.4, random.Random(s)) for s in range(50)]
    rng = random.Random(11)
    xs = [sample_csat(3.4, rng) for _ in range(5_000)]
    assert set(xs) <= {1, 2, 3, 4, 5}
    assert sum(xs) / len(xs) == pytest.approx(3.4, abs=0.06)
    assert all(sample_csat(5.0, random.Random(s)) <= 5 for s in range(100))
    assert all(sample_csat(1.0, random.Random(s)) >= 1 for s in range(100))


def test_percentiles_and_deltas() -> None:
    assert pct([], 50) is None
    assert pct([3.0, 1.0, 2.0], 50) == 2.0
    assert pct([0.0, 10.0], 90) == pytest.approx(9.0)
    emo = {"mot_high_eq_share": 0.8, "wait_s": {"mot": {"p50": 10.0, "p90": 30.0}}, "mot_precision": 0.9}
    sk = {"mot_high_eq_share": 0.3, "wait_s": {"mot": {"p50": 40.0, "p90": None}}, "mot_precision": None}
    d = deltas(emo, sk)
    assert d["mot_high_eq_share"]["delta"] == pytest.approx(0.5)
    assert d["wait_s.mot.p50"] == {
        "emotion_routing": 10.0,
        "skills_only": 40.0,
        "delta": -30.0,
        "better": "lower",
    }
    assert d["wait_s.mot.p90"]["delta"] is None
    assert d["mot_precision"]["delta"] is None
