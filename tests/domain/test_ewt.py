from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.ewt import (
    MAX_WAIT_S,
    PRIOR_S_PER_DEPARTURE,
    callback_reason,
    estimate_wait,
    queue_wait,
    should_offer_callback,
)
from router.domain.model import QueueStats
from router.domain.policy import PolicyConfig
from tests.domain.domain_strategies import PROPERTY


def test_free_agents_serve_the_head_now() -> None:
    stats = QueueStats(depth=3, completions_per_s=0.1, free_agents=2)
    assert estimate_wait(0, stats) == (0.0, 0.0)
    assert estimate_wait(1, stats) == (0.0, 0.0)
    assert estimate_wait(2, stats) == pytest.approx((10.0, 10.0))


def test_erlang_mean_and_sd() -> None:
    mean_s, sd_s = estimate_wait(3, QueueStats(depth=4, completions_per_s=0.5))
    assert mean_s == pytest.approx(8.0)  # 4 departures at 0.5/s
    assert sd_s == pytest.approx(4.0)  # sqrt(4) / 0.5


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, math.inf])
def test_unusable_rate_falls_back_to_prior(rate: float) -> None:
    mean_s, sd_s = estimate_wait(0, QueueStats(depth=1, completions_per_s=rate))
    assert (mean_s, sd_s) == (PRIOR_S_PER_DEPARTURE, PRIOR_S_PER_DEPARTURE)


def test_tiny_rate_is_capped_not_infinite() -> None:
    assert estimate_wait(10, QueueStats(depth=11, completions_per_s=1e-300)) == (MAX_WAIT_S, MAX_WAIT_S)


def test_callback_threshold() -> None:
    cfg = replace(PolicyConfig.defaults(), callback_threshold_s=300.0)
    assert should_offer_callback(301.0, cfg)
    assert not should_offer_callback(300.0, cfg)
    assert not should_offer_callback(math.nan, cfg)


def test_callback_once_the_wait_reaches_the_threshold_whatever_the_estimate() -> None:
    # issue 14: a contact nobody takes had an estimate of 0 s and was never offered a callback
    cfg = replace(PolicyConfig.defaults(), callback_threshold_s=300.0)
    assert callback_reason(0.0, 299.9, cfg) is None
    why = callback_reason(0.0, 300.0, cfg)
    assert why is not None and why.code == "callback_offered"
    assert why.text == "waited 300 s, reaching the 300 s threshold: offer a callback"
    by_estimate = callback_reason(301.0, 0.0, cfg)
    assert by_estimate is not None and by_estimate.text == "wait above the 300 s threshold: offer a callback"
    assert callback_reason(301.0, 400.0, cfg, offered_before=True) is None  # once per contact


def test_a_moment_of_truth_is_offered_a_callback_sooner() -> None:
    cfg = replace(PolicyConfig.defaults(), callback_threshold_s=300.0, mot_callback_threshold_s=60.0)
    assert cfg.callback_threshold_for("mot") == 60.0
    assert cfg.callback_threshold_for("general") == cfg.callback_threshold_for(None) == 300.0
    assert should_offer_callback(61.0, cfg, "mot") and not should_offer_callback(61.0, cfg, "general")
    assert callback_reason(61.0, 0.0, cfg) is None
    by_estimate = callback_reason(61.0, 0.0, cfg, queue="mot")
    assert by_estimate is not None
    assert by_estimate.text == "wait above the moment-of-truth 60 s threshold: offer a callback"
    waited = callback_reason(0.0, 60.0, cfg, queue="mot")
    assert waited is not None and "reaching the moment-of-truth 60 s threshold" in waited.text


def test_a_contact_nobody_takes_means_the_queue_never_shows_zero() -> None:
    # issue 14: 10 of 10 agents free, one contact nobody takes, and the queue said "0 s"
    free = QueueStats(depth=1, completions_per_s=0.0, free_agents=10)
    assert queue_wait(free) == (0.0, 0.0)
    assert queue_wait(QueueStats(depth=1, completions_per_s=0.0, free_agents=10, passed_by=1)) == (
        2 * PRIOR_S_PER_DEPARTURE,
        math.sqrt(2) * PRIOR_S_PER_DEPARTURE,
    )
    # a queue whose own estimate is longer keeps it
    long = QueueStats(depth=30, completions_per_s=0.1, free_agents=0, passed_by=1)
    assert queue_wait(long) == estimate_wait(30, long)


stats = st.builds(
    QueueStats,
    depth=st.integers(0, 1000),
    completions_per_s=st.floats(allow_nan=True, allow_infinity=True),
    free_agents=st.integers(-2, 20),
)


@PROPERTY
@given(stats, st.integers(-5, 1000), st.integers(-5, 1000))
def test_wait_is_finite_non_negative_and_monotone(s: QueueStats, p1: int, p2: int) -> None:
    near, far = sorted((p1, p2))
    near_mean, near_sd = estimate_wait(near, s)
    far_mean, far_sd = estimate_wait(far, s)
    for value in (near_mean, near_sd, far_mean, far_sd):
        assert math.isfinite(value) and 0.0 <= value <= MAX_WAIT_S
    assert near_mean <= far_mean
    assert near_sd <= far_sd


@PROPERTY
@given(stats, st.integers(1, 50))
def test_queue_wait_with_a_contact_nobody_takes_is_positive(s: QueueStats, passed_by: int) -> None:
    mean_s, sd_s = queue_wait(QueueStats(s.depth, s.completions_per_s, s.free_agents, passed_by))
    assert 0.0 < mean_s <= MAX_WAIT_S and 0.0 < sd_s <= MAX_WAIT_S
    assert (mean_s, sd_s) >= estimate_wait(s.depth, s)
