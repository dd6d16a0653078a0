"""Outcome-aware matching: the agent with the best expected result, with the ladder as the worst case. Pure.

``choose_by_outcome`` first asks the ladder (``policy.choose_agent``) what it would do. Affinity, a
wait for the last agent and the all-declined re-offer are the ladder's and stand. Otherwise every agent
who could take the contact now (available, the language, no remembered decline, a free slot: the
ladder fully widened) is scored by ``outcomes.expect``: the agent's posterior CSAT and resolution on the
contact's class. Then:

- **Best expected result.** The highest utility wins; utilities within ``tie_margin`` of it are equal,
  and the ladder's own preference decides among them (moments of truth: highest EQ; routine: lowest EQ;
  then longest idle).
- **Waiting for a better agent** is weighed only while the ladder itself would wait (its EQ floor has
  nobody free) and never past its last step. The wait is that better pool's expected wait: with the
  handle times the store measured (``service``), the wait forecast of their busy slots, whose known ages
  say which is near its end (``wait_forecast.pool_wait``), for the ``ahead + 1``-th slot to free; with no
  measures given, each frees a slot at ``load / expected_handle_s`` and the wait is ``(ahead + 1) /
  rate``. Waiting wins when their expected utility minus the cost of that wait beats the best free agent
  now.
- **The high-EQ reserve.** A routine contact does not take one of the last free eq >= ``mot_min_eq``
  slots on its channel while the reserve wants them: ``reserve = round(rate x horizon)``, the moments of
  truth expected before a busy high-EQ slot frees (rate: the domain's recent moments of truth over the
  fairness window; horizon: ``expected_handle_s`` / busy high-EQ slots). The hold lasts at most
  ``reserve_max_hold_s``.

What this guarantees, whatever the learned numbers (tests/domain/test_domain_matching.py): an offer goes
only to an agent who could take the contact now; when the ladder would offer a moment of truth, this
offers too, to an agent whose expected utility is within ``tie_margin`` of the ladder's choice or better
(the fairness cap aside); nothing waits past the ladder's last step; a routine contact never takes the
reserve before its hold ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from router.domain.model import AgentView, ContactView, Reason
from router.domain.outcomes import (
    ContactClass,
    Expectation,
    OutcomeConfig,
    contact_class,
    describe,
    expect,
    wait_cost,
)
from router.domain.policy import (
    AgentChoice,
    PolicyConfig,
    apply_fairness,
    choose_agent,
    ineligible_reason,
    preference,
    queued_for_s,
    reserve_blocks,
)
from router.domain.wait_forecast import Service, pool_wait


@dataclass(frozen=True, slots=True)
class Reserve:
    """High-EQ slots on one channel: free now, and how many to keep for moments of truth."""

    channel: str
    free_slots: int
    keep: int
    expected_mot: float  # moments of truth expected before a busy high-EQ slot frees

    @property
    def holds(self) -> bool:
        return self.keep > 0 and self.free_slots <= self.keep


@dataclass(frozen=True, slots=True)
class BetterLater:
    agent: AgentView
    expectation: Expectation
    wait_s: float
    value: float  # its expected utility minus the cost of the wait
    agent_ids: frozenset[str]  # every busy agent who would do better (the contact waits for any of them)


def high_eq_reserve(
    agents: Sequence[AgentView], channel: str, mot_total_recent: int, cfg: PolicyConfig
) -> Reserve:
    ocfg = cfg.outcome or OutcomeConfig()
    high = [a for a in agents if a.status == "available" and a.eq >= cfg.mot_min_eq]
    free = sum(max(0, a.free(channel)) for a in high)
    busy = sum(min(a.load.get(channel, 0), a.capacity.get(channel, 0)) for a in high)
    rate_per_s = max(0, mot_total_recent) / cfg.fairness_window_s
    expected = rate_per_s * ocfg.expected_handle_s / max(1, busy)
    return Reserve(channel, free, math.floor(expected + 0.5), expected)


def reserved_channels(
    agents: Sequence[AgentView], mot_total_recent: int, cfg: PolicyConfig
) -> frozenset[str]:
    """The channels whose free high-EQ slots the reserve keeps for moments of truth (for agent pulls)."""
    if cfg.outcome is None:
        return frozenset()
    channels = {ch for a in agents for ch in a.capacity}
    return frozenset(ch for ch in channels if high_eq_reserve(agents, ch, mot_total_recent, cfg).holds)


def choose_by_outcome(
    contact: ContactView,
    queue: str,
    agents: Sequence[AgentView],
    now: float,
    cfg: PolicyConfig,
    mot_total_recent: int,
    ahead: int = 0,
    service: Service | None = None,
) -> AgentChoice:
    """The agent to offer ``contact`` to, by expected outcome; the ladder's choice without ``cfg.outcome``.
    ``ahead``: contacts before this one in its queue (they want the better agents too); ``service``: the
    handle times measured on the contact's channel, for the wait for a better agent."""
    ladder = choose_agent(contact, queue, agents, now, cfg, mot_total_recent)
    ocfg = cfg.outcome
    if ocfg is None or ladder.wait_for_affinity or ladder.all_declined or _by_affinity(ladder):
        return ladder
    waited_s = queued_for_s(contact, now)
    cls = contact_class(contact, queue)
    widest_s = max(waited_s, cfg.ladder_step2_s)  # the ladder's last step: any EQ
    checked = [(a, ineligible_reason(a, contact, queue, widest_s, cfg, now=now)) for a in agents]
    free = [a for a, why in checked if why is None]
    busy = [a for a, why in checked if why is not None and why.code == "no_capacity"]
    pool = ladder.reasons[:1]  # the ladder's pool line
    free, fairness = apply_fairness(queue, free, mot_total_recent, cfg)
    free, held = _respect_reserve(free, contact, queue, agents, now, cfg, mot_total_recent)
    if not free:
        if held is not None:
            return AgentChoice(None, (*pool, *fairness, held), ladder.pool_size, 0)
        return ladder
    best, e = _best(free, cls, queue, ocfg)
    later = _better_later(e, busy, cls, ocfg, ahead, contact.channel, now, service)
    # the ladder is the worst case: wait only where it would wait too, and never past its last step
    may_wait = ladder.agent_id is None and waited_s < cfg.ladder_step2_s
    if later is not None and may_wait and later.value > e.utility:
        why = Reason("waiting_for_better", _wait_text(best, e, later, cls))
        return AgentChoice(
            None, (*pool, *fairness, why), ladder.pool_size, len(free), waiting_for=later.agent_ids
        )
    chose = Reason("chose_best_expected", _chose_text(best, e, later, cls, len(free)))
    extra = (held,) if held is not None else ()
    return AgentChoice(best.agent_id, (*pool, *fairness, *extra, chose), ladder.pool_size, len(free))


def _by_affinity(choice: AgentChoice) -> bool:
    return choice.agent_id is not None and any(r.code == "affinity" for r in choice.reasons)


def _respect_reserve(
    free: list[AgentView],
    contact: ContactView,
    queue: str,
    agents: Sequence[AgentView],
    now: float,
    cfg: PolicyConfig,
    mot_total_recent: int,
) -> tuple[list[AgentView], Reason | None]:
    blocked = [a for a in free if reserve_blocks(a, contact, queue, now, cfg)]
    if not blocked:
        return free, None
    res = high_eq_reserve(agents, contact.channel, mot_total_recent, cfg)
    if not res.holds:
        return free, None
    text = (
        f"kept {res.free_slots} free eq>={cfg.mot_min_eq} {contact.channel} slot(s) for moments of truth "
        f"(~{res.expected_mot:.1f} expected before a busy one frees; reserve {res.keep})"
    )
    return [a for a in free if a not in blocked], Reason("mot_reserve", text)


def _best(
    free: Sequence[AgentView], cls: ContactClass, queue: str, ocfg: OutcomeConfig
) -> tuple[AgentView, Expectation]:
    scored = [(a, expect(a, cls, ocfg)) for a in free]
    top = max(e.utility for _, e in scored)
    near = [(a, e) for a, e in scored if e.utility >= top - ocfg.tie_margin]
    key = preference(queue)
    return min(near, key=lambda ae: key(ae[0]))


def _better_later(
    now_best: Expectation,
    busy: Sequence[AgentView],
    cls: ContactClass,
    ocfg: OutcomeConfig,
    ahead: int,
    channel: str,
    now: float,
    service: Service | None,
) -> BetterLater | None:
    """The busy agents who would do better than ``now_best``: the best of them, and when one of them
    is expected to have a slot for this contact (module docstring)."""
    bar = now_best.utility + ocfg.tie_margin
    better = [(a, e) for a in busy if (e := expect(a, cls, ocfg)).utility > bar]
    if not better:
        return None
    if service is not None:
        wait_s = pool_wait([a for a, _ in better], channel, now, max(0, ahead), service).mean_s
    else:
        rate_per_s = sum(max(1, a.load.get(channel, 0)) for a, _ in better) / ocfg.expected_handle_s
        wait_s = (max(0, ahead) + 1) / rate_per_s
    mean_utility = sum(e.utility for _, e in better) / len(better)
    agent, e = max(better, key=lambda ae: (ae[1].utility, -ae[0].eq, ae[0].agent_id))
    value = mean_utility - wait_cost(wait_s, cls.kind, ocfg)
    return BetterLater(agent, e, wait_s, value, frozenset(a.agent_id for a, _ in better))


def _wait_text(best: AgentView, e: Expectation, later: BetterLater, cls: ContactClass) -> str:
    return (
        f"waiting for a better agent: {describe(later.agent.agent_id, later.expectation, cls.kind)}; "
        f"one of the eq {later.agent.eq} pool is ~{later.wait_s:.0f} s away, worth more than "
        f"{best.agent_id} now (expected CSAT {e.csat:.1f})"
    )


def _chose_text(
    best: AgentView, e: Expectation, later: BetterLater | None, cls: ContactClass, n_free: int
) -> str:
    text = f"chose {describe(best.agent_id, e, cls.kind)}; eq {best.eq}, best expected of {n_free} free"
    if later is not None:
        text += (
            f"; the next better agent ({later.agent.agent_id}, eq {later.agent.eq}) is "
            f"~{later.wait_s:.0f} s away"
        )
    return text
