"""The announced band, corrected by how the forecast's bands fared on the waits it announced before. Pure.

The forecast's band (router/domain/wait_forecast.py, its 10th-90th percentiles) holds eight waits in ten
only when its model holds. What the model leaves out spreads real waits wider: an agent who goes on a
break instead of taking the next contact, an offer declined or missed, a contact that overtakes on
priority, outcome-aware matching passing a free agent by. Three 2,000-contact bursts (seeds 7-9,
docs/simulation-history.md) put 67-70% of the waits inside it, with each end crossed about as often (15%
and 16%).

So each end is moved by the errors of the latest bands the model produced (``BandCheck``: the model's own
band, before this correction, and the wait lived), one-sided split conformal prediction on a log scale:
the low end moves down by the conformal quantile of ``log(low / actual)``, the high end up by that of
``log(actual / high)``, each at the level that leaves ``BAND[0]`` (10%) out. With waits that are
exchangeable with the checked ones, each end is crossed at most 10% of the time, so the band holds at
least 80% whatever the model got wrong. The log scale because waits are skewed: 20 s late is a large
error on a 30 s wait and a small one on ten minutes. A band that was too wide narrows the same way.
The same three bursts with it: 79%, 81% and 80% inside, with bands 1.35 times as wide (median, seed 7).

The mean, and so the callback that follows from it, is left as the model says: this corrects the spread
the band announces, not where it is centred.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from router.domain.wait_forecast import BAND, MAX_WAIT_S, WaitForecast

MIN_CHECKS = 30  # bands checked before any correction: fewer cannot place a 10% quantile
CHECKS_KEPT = 200  # the latest checks the store keeps: the floor as it is now, and a steady quantile
FLOOR_S = 1.0  # added to both sides before the log: 0 s has none, and a second means nothing in a wait


@dataclass(frozen=True, slots=True)
class BandCheck:
    """One announced wait that was then lived: the model's band (before any correction) and the wait."""

    low_s: float
    high_s: float
    actual_s: float


@dataclass(frozen=True, slots=True)
class BandCorrection:
    """Log factors that move the band's ends: the low end down by ``low_log``, the high end up by
    ``high_log`` (negative: towards the mean). ``checks``: how many waits they come from (0: none)."""

    low_log: float = 0.0
    high_log: float = 0.0
    checks: int = 0

    def apply(self, wait: WaitForecast) -> WaitForecast:
        """``wait`` with its band moved; the band still holds the mean, and an unbounded end stays so."""
        if self.checks == 0 or wait.high_s >= MAX_WAIT_S:
            return wait
        low = (wait.low_s + FLOOR_S) * math.exp(-self.low_log) - FLOOR_S
        high = (wait.high_s + FLOOR_S) * math.exp(self.high_log) - FLOOR_S
        return replace(
            wait,
            low_s=min(max(0.0, low), wait.mean_s),
            high_s=min(max(high, wait.mean_s), MAX_WAIT_S),
        )


def conformal_quantile(scores: Sequence[float], miss: float) -> float | None:
    """The split-conformal quantile: the ``ceil((n + 1)(1 - miss))``-th smallest score, so that a new
    exchangeable score exceeds it with probability at most ``miss``; None when n is too small for that."""
    n = len(scores)
    rank = math.ceil((n + 1) * (1.0 - miss))
    if n == 0 or rank > n:
        return None
    return sorted(scores)[rank - 1]


def _log_ratio(a_s: float, b_s: float) -> float:
    return math.log((max(0.0, a_s) + FLOOR_S) / (max(0.0, b_s) + FLOOR_S))


def band_correction(checks: Sequence[BandCheck]) -> BandCorrection:
    """The correction the latest ``checks`` call for (module docstring); none before ``MIN_CHECKS``."""
    usable = [
        c
        for c in checks
        if all(math.isfinite(x) and x >= 0 for x in (c.low_s, c.high_s, c.actual_s)) and c.high_s < MAX_WAIT_S
    ]
    if len(usable) < MIN_CHECKS:
        return BandCorrection()
    low = conformal_quantile([_log_ratio(c.low_s, c.actual_s) for c in usable], BAND[0])
    high = conformal_quantile([_log_ratio(c.actual_s, c.high_s) for c in usable], 1.0 - BAND[1])
    if low is None or high is None:
        return BandCorrection()
    return BandCorrection(low, high, len(usable))
