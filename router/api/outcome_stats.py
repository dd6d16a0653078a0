"""Evidence for an EQ suggestion from post-contact outcomes. Pure functions, no I/O.

Method (stated in every answer): an agent's mean CSAT on moments of truth is compared with that of all
other agents (the peers) by Welch's unequal-variance t-test, two-sided, with the 95 % confidence interval
of the difference of means from the Student t distribution (Welch-Satterthwaite degrees of freedom).
Resolution rates carry Wilson score intervals. The suggestion moves EQ one step only when both groups
have at least ``MIN_SAMPLE`` moments of truth, the interval excludes zero and the difference is at least
``MIN_EFFECT`` CSAT points; it is never applied by the API: a supervisor PATCHes it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from router.store.admin import Aggregate

MIN_SAMPLE = 5
MIN_EFFECT = 0.25
CONFIDENCE = 0.95
METHOD = (
    "Welch two-sample t-test of mean CSAT on moments of truth, agent vs all other agents (two-sided, "
    "95% CI of the difference, Welch-Satterthwaite df); Wilson 95% intervals for resolution rates. "
    f"EQ moves one step when both groups have n >= {MIN_SAMPLE}, the CI excludes 0 and "
    f"|difference| >= {MIN_EFFECT}."
)


@dataclass(frozen=True, slots=True)
class GroupStats:
    n: int
    mean_csat: float | None
    sd_csat: float | None
    resolved_rate: float | None
    resolved_ci95: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    agent: GroupStats
    peers: GroupStats
    difference: float | None  # agent mean - peers mean
    ci95: tuple[float, float] | None
    welch_t: float | None
    df: float | None
    p_value: float | None


def group_stats(a: Aggregate) -> GroupStats:
    if a.n <= 0:
        return GroupStats(0, None, None, None, None)
    mean = a.sum / a.n
    sd = math.sqrt(_variance(a)) if a.n >= 2 else None
    return GroupStats(a.n, mean, sd, a.resolved / a.n, wilson(a.resolved, a.n))


def _variance(a: Aggregate) -> float:
    """Unbiased sample variance from the running sums (clamped: rounding can make it a hair negative)."""
    if a.n < 2:
        return 0.0
    return max(0.0, (a.sumsq - a.sum * a.sum / a.n) / (a.n - 1))


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def compare(agent: Aggregate, peers: Aggregate) -> Comparison:
    ga, gp = group_stats(agent), group_stats(peers)
    if agent.n < 2 or peers.n < 2 or ga.mean_csat is None or gp.mean_csat is None:
        return Comparison(ga, gp, None, None, None, None, None)
    diff = ga.mean_csat - gp.mean_csat
    va, vp = _variance(agent) / agent.n, _variance(peers) / peers.n
    se = math.sqrt(va + vp)
    if se == 0.0:
        # both groups constant: the difference is exact
        return Comparison(ga, gp, diff, (diff, diff), None, None, 0.0 if diff != 0 else 1.0)
    df = (va + vp) ** 2 / (
        (va * va / (agent.n - 1) if va > 0 else 0.0) + (vp * vp / (peers.n - 1) if vp > 0 else 0.0)
    )
    t = diff / se
    q = t_quantile(1 - (1 - CONFIDENCE) / 2, df)
    return Comparison(ga, gp, diff, (diff - q * se, diff + q * se), t, df, t_two_sided_p(t, df))


def mean_ci95(a: Aggregate) -> tuple[float, float] | None:
    """95% Student t interval of a group's mean CSAT; None below two outcomes."""
    if a.n < 2:
        return None
    mean = a.sum / a.n
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, a.n - 1) * math.sqrt(_variance(a) / a.n)
    return (mean - half, mean + half)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An agent's outcomes against its peers' per kind, and the EQ they suggest."""

    moments_of_truth: Comparison
    routine: Comparison
    suggested_eq: int
    reason: str


def evaluate(current_eq: int, mine: Mapping[str, Aggregate], total: Mapping[str, Aggregate]) -> Evaluation:
    """``mine``, ``total``: the agent's and the domain's aggregates per kind ('mot', 'routine')."""
    mot = compare(mine["mot"], total["mot"].minus(mine["mot"]))
    routine = compare(mine["routine"], total["routine"].minus(mine["routine"]))
    new_eq, why = suggest(current_eq, mot)
    return Evaluation(mot, routine, new_eq, why)


def suggest(current_eq: int, cmp: Comparison) -> tuple[int, str]:
    """(suggested EQ, reason) from a comparison on moments of truth."""
    if cmp.agent.n < MIN_SAMPLE or cmp.peers.n < MIN_SAMPLE:
        return current_eq, (
            f"insufficient evidence: {cmp.agent.n} moments of truth for the agent and {cmp.peers.n} for "
            f"peers (need {MIN_SAMPLE} each)"
        )
    if cmp.difference is None or cmp.ci95 is None:
        return current_eq, "insufficient evidence: no variance estimate"
    lo, hi = cmp.ci95
    d = cmp.difference
    if lo > 0 and d >= MIN_EFFECT:
        new = min(5, current_eq + 1)
        why = f"mean CSAT on moments of truth {d:+.2f} vs peers (95% CI {lo:+.2f}..{hi:+.2f})"
        return new, why if new != current_eq else f"{why}; already at the top EQ"
    if hi < 0 and -d >= MIN_EFFECT:
        new = max(1, current_eq - 1)
        why = f"mean CSAT on moments of truth {d:+.2f} vs peers (95% CI {lo:+.2f}..{hi:+.2f})"
        return new, why if new != current_eq else f"{why}; already at the lowest EQ"
    return current_eq, f"no clear difference: {d:+.2f} vs peers (95% CI {lo:+.2f}..{hi:+.2f})"


# ---- Student t distribution ------------------------------------------------------------------------


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if not math.isfinite(t):
        return 0.0
    x = df / (df + t * t)
    return min(1.0, max(0.0, _betainc(df / 2, 0.5, x)))


def t_cdf(t: float, df: float) -> float:
    p = t_two_sided_p(t, df) / 2
    return 1 - p if t >= 0 else p


def t_pdf(t: float, df: float) -> float:
    ln = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(ln - (df + 1) / 2 * math.log1p(t * t / df))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (p in (0, 1)): Newton steps on the CDF from the normal quantile,
    kept inside a bracket that bisection narrows whenever a step would leave it. A few CDF evaluations
    where plain bisection takes forty (GET /v1/stats/agents computes hundreds)."""
    lo, hi = -1e3, 1e3
    x = statistics.NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12))
    for _ in range(200):
        err = t_cdf(x, df) - p
        if err < 0:
            lo = x
        else:
            hi = x
        density = t_pdf(x, df)
        step = err / density if density > 0 else math.inf
        nxt = x - step
        if not lo < nxt < hi:
            nxt = (lo + hi) / 2
        if abs(nxt - x) < 1e-12 or hi - lo < 1e-10:
            return nxt
        x = nxt
    return x


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 3e-14:
            break
    return h
