"""The announced band's correction: the conformal quantile, the coverage it gives on waits the model gets
wrong, and what it never does to a forecast."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.wait_band import (
    MIN_CHECKS,
    BandCheck,
    BandCorrection,
    band_correction,
    conformal_quantile,
)
from router.domain.wait_forecast import MAX_WAIT_S, WaitForecast
from tests.domain.domain_strategies import PROPERTY


def test_the_conformal_quantile_is_the_rank_that_leaves_at_most_the_miss_above() -> None:
    scores = [float(x) for x in range(1, 20)]  # 19 scores: rank ceil(20 x 0.9) = 18
    assert conformal_quantile(scores, 0.10) == 18.0
    assert conformal_quantile(scores[:9], 0.10) == 9.0  # rank ceil(10 x 0.9) = 9: the largest
    assert conformal_quantile(scores[:8], 0.10) is None  # rank 9 of 8: too few to promise 10%
    assert conformal_quantile([], 0.10) is None


def test_too_few_checks_leave_the_band_as_the_model_gives_it() -> None:
    checks = [BandCheck(10.0, 20.0, 500.0)] * (MIN_CHECKS - 1)
    correction = band_correction(checks)
    wait = WaitForecast(15.0, 4.0, 10.0, 20.0)
    assert correction == BandCorrection() and correction.apply(wait) == wait


def _lived(rng: random.Random, mean_s: float) -> float:
    """A wait whose spread the model under-states: lognormal with sigma 0.8 around the model's mean."""
    return mean_s * math.exp(rng.gauss(0.0, 0.8) - 0.32)


def _model(mean_s: float) -> WaitForecast:
    """The model's forecast: a band as if the wait's log-sd were 0.4 where it is 0.8 (too narrow)."""
    return WaitForecast(
        mean_s, 0.4 * mean_s, mean_s * math.exp(-0.08 - 0.51), mean_s * math.exp(-0.08 + 0.51)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bands_corrected_by_earlier_waits_hold_eight_in_ten_where_the_models_held_fewer(seed: int) -> None:
    """Waits spread twice as wide as the model says, over forecasts from 5 s to 10 minutes: the model's own
    band holds about half of them; corrected by 200 earlier checks, about 80%, each end crossed about 10%."""
    rng = random.Random(seed)
    means = [rng.uniform(5.0, 600.0) for _ in range(4_200)]
    checks = [BandCheck(_model(m).low_s, _model(m).high_s, _lived(rng, m)) for m in means[:200]]
    correction = band_correction(checks)
    below = above = inside_model = 0
    fresh = means[200:]
    for m in fresh:
        wait, lived = correction.apply(_model(m)), _lived(rng, m)
        below += lived < wait.low_s
        above += lived > wait.high_s
        inside_model += _model(m).low_s <= lived <= _model(m).high_s
    assert inside_model / len(fresh) < 0.55
    assert 0.04 < below / len(fresh) < 0.16 and 0.04 < above / len(fresh) < 0.16
    assert 0.72 < 1 - (below + above) / len(fresh) < 0.90


def test_a_band_too_wide_narrows() -> None:
    """Thirty waits of 30-59 s, each told a band of 1-1,000 s: both ends close in to where the conformal
    rank (28th of 30) puts them, the 3rd-shortest and the 3rd-longest wait."""
    assert math.ceil((MIN_CHECKS + 1) * 0.9) == 28
    checks = [BandCheck(1.0, 1_000.0, 30.0 + i) for i in range(MIN_CHECKS)]
    wait = band_correction(checks).apply(WaitForecast(40.0, 200.0, 1.0, 1_000.0))
    assert wait.low_s == pytest.approx(32.0) and wait.high_s == pytest.approx(57.0)


def test_a_wait_nobody_can_serve_stays_unbounded_and_bad_checks_are_ignored() -> None:
    checks = [BandCheck(10.0, 20.0, 60.0)] * MIN_CHECKS
    unbounded = WaitForecast(MAX_WAIT_S, MAX_WAIT_S, 100.0, MAX_WAIT_S)
    assert band_correction(checks).apply(unbounded) == unbounded
    bad = [BandCheck(math.nan, 20.0, 60.0), BandCheck(10.0, MAX_WAIT_S, 60.0), BandCheck(-1.0, 2.0, 3.0)]
    assert band_correction(bad * MIN_CHECKS) == BandCorrection()


checks_st = st.lists(
    st.builds(
        BandCheck,
        st.floats(0.0, 5_000.0),
        st.floats(0.0, 5_000.0),
        st.floats(0.0, 20_000.0),
    ),
    max_size=3 * MIN_CHECKS,
)


@PROPERTY
@given(checks_st, st.floats(0.0, 5_000.0), st.floats(0.0, 3.0), st.floats(0.0, 3.0))
def test_a_corrected_band_is_a_band_around_the_models_mean(
    checks: list[BandCheck], mean_s: float, low_share: float, high_share: float
) -> None:
    wait = WaitForecast(mean_s, mean_s / 2, mean_s / (1 + low_share), mean_s * (1 + high_share))
    out = band_correction(checks).apply(wait)
    assert out.mean_s == wait.mean_s and out.sd_s == wait.sd_s
    assert 0.0 <= out.low_s <= out.mean_s <= out.high_s <= MAX_WAIT_S
