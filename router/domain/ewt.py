"""Estimated wait time per queue position, with its uncertainty, and the callback decision."""

from __future__ import annotations

import math
from dataclasses import replace

from router.domain.model import QueueStats, Reason
from router.domain.policy import PolicyConfig

# With no departure observed yet (cold start, or a queue nobody has been served from in the window) we
# assume one departure every PRIOR_S_PER_DEPARTURE seconds: a slow, typical handle time, so the first
# estimates err long (callbacks are offered early) rather than promising a wait nobody can keep.
PRIOR_S_PER_DEPARTURE = 120.0
# Cap so a near-zero observed rate gives a large finite number, never inf (JSON and Redis cannot hold inf).
MAX_WAIT_S = 86_400.0


def departure_rate_per_s(stats: QueueStats) -> float:
    """Observed departures per second, or the prior when nothing usable was observed."""
    rate = stats.completions_per_s
    if math.isfinite(rate) and rate > 0:
        return rate
    return 1.0 / PRIOR_S_PER_DEPARTURE


def estimate_wait(position: int, stats: QueueStats) -> tuple[float, float]:
    """(mean, sd) of the wait in seconds for the contact at 0-based ``position``.

    The first ``free_agents`` contacts are served now. Behind them a contact needs k departures; with
    departures a Poisson process of rate r the wait is Erlang(k, r): mean k/r, sd sqrt(k)/r.
    """
    free = max(stats.free_agents, 0)
    ahead = max(position, 0)
    if ahead < free:
        return 0.0, 0.0
    k = ahead - free + 1
    rate = departure_rate_per_s(stats)
    mean_s = min(k / rate, MAX_WAIT_S)
    sd_s = min(math.sqrt(k) / rate, MAX_WAIT_S)
    return mean_s, sd_s


def should_offer_callback(ewt_s: float, cfg: PolicyConfig, queue: str | None = None) -> bool:
    """Offer a callback when the expected wait exceeds ``queue``'s threshold (a NaN estimate offers none)."""
    return ewt_s > cfg.callback_threshold_for(queue)


def queue_wait(stats: QueueStats) -> tuple[float, float]:
    """(mean, sd) of the wait shown for a queue: that of a contact joining it now, behind ``stats.depth``.

    Free agents that pass the queue's waiting contacts by (``stats.passed_by``: another language, an EQ
    below the ladder, all declined) may pass a newcomer by too, so then the estimate is at least the wait
    for departures behind those contacts: ``passed_by + 1`` departures. A queue holding a contact nobody
    takes never shows 0 s.
    """
    mean_s, sd_s = estimate_wait(stats.depth, stats)
    if stats.passed_by <= 0:
        return mean_s, sd_s
    behind_them = estimate_wait(stats.passed_by, replace(stats, free_agents=0))
    return max((mean_s, sd_s), behind_them)


def callback_reason(
    ewt_s: float,
    waited_s: float,
    cfg: PolicyConfig,
    *,
    queue: str | None = None,
    offered_before: bool = False,
) -> Reason | None:
    """Why to offer a callback, or None: the estimated wait is above ``queue``'s threshold, or the contact
    has already waited that long, whatever kept it waiting (an estimate cannot foresee a contact that every
    agent declines, or that no agent logged in can take). Once per contact: ``offered_before`` says none.
    The moment-of-truth queue has its own, shorter threshold."""
    if offered_before:
        return None
    threshold_s = cfg.callback_threshold_for(queue)
    which = "the moment-of-truth " if queue == "mot" else "the "
    if waited_s >= threshold_s:
        text = f"waited {waited_s:.0f} s, reaching {which}{threshold_s:.0f} s threshold: offer a callback"
        return Reason("callback_offered", text)
    if should_offer_callback(ewt_s, cfg, queue):
        return Reason(
            "callback_offered", f"wait above {which}{threshold_s:.0f} s threshold: offer a callback"
        )
    return None
