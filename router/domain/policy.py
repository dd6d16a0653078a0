"""Routing policy: where a contact goes, which agent gets it, which contact an agent takes. Pure functions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Literal

from router.domain.model import QUEUES, AgentView, ContactView, QueueName, Reason
from router.domain.mot import MotVerdict
from router.domain.outcomes import OutcomeConfig
from router.domain.trajectory import clamp01
from router.settings import Settings

# Priority points. Bounded so a priority buys at most MAX_PRIORITY * seconds_per_priority_point of head start.
MAX_PRIORITY = 10.0
PEAK_POINTS = 3.0  # customers remember the worst moment ...
LAST_POINTS = 2.0  # ... and how it is going right now
MOT_BONUS = 3.0
TIER_POINTS: dict[str, float] = {
    "standard": 0.0,
    "gold": 1.0,
    "platinum": 2.0,
}  # unknown tiers count as standard

_WITH_AGENT = ("offered", "assigned")


@dataclass(frozen=True)
class PolicyConfig:
    """The routing knobs of one process. Their defaults and meanings live in ``Settings`` (one field of the
    same name each): ``from_settings`` for a process, ``defaults`` where no environment should count."""

    mot_min_eq: int
    ladder_step1_s: float
    ladder_step1_min_eq: int
    ladder_step2_s: float
    seconds_per_priority_point: float
    fairness_window_s: float
    fairness_max_share: float
    fairness_min_sample: int
    affinity_timeout_s: float
    callback_threshold_s: float
    mot_callback_threshold_s: float
    human_offer_mot_prob: float
    queue_scan_limit: int
    decline_memory_s: float
    stuck_after_s: float
    # outcome-aware matching (router.domain.matching); None: the plain ladder
    outcome: OutcomeConfig | None = None

    def callback_threshold_for(self, queue: str | None) -> float:
        """Seconds of wait (estimated or lived) at which a contact in ``queue`` is offered a callback."""
        return self.mot_callback_threshold_s if queue == "mot" else self.callback_threshold_s

    @classmethod
    def from_settings(cls, s: Settings) -> PolicyConfig:
        knobs = {f.name: getattr(s, f.name) for f in fields(cls) if f.name != "outcome"}
        return cls(**knobs, outcome=_outcome_config(s))

    @classmethod
    def defaults(cls, outcome: OutcomeConfig | None = None) -> PolicyConfig:
        """Settings' defaults, whatever the environment holds (the plain ladder unless given ``outcome``)."""
        knobs = {f.name: Settings.model_fields[f.name].default for f in fields(cls) if f.name != "outcome"}
        return cls(**knobs, outcome=outcome)


def _outcome_config(s: Settings) -> OutcomeConfig | None:
    if not s.outcome_matching:
        return None
    return OutcomeConfig(
        n0=s.outcome_prior_n,
        mot_csat_at_eq3=s.outcome_prior_mot_csat_eq3,
        mot_csat_per_eq=s.outcome_prior_mot_csat_per_eq,
        routine_csat=s.outcome_prior_routine_csat,
        mot_resolved_at_eq3=s.outcome_prior_mot_resolved_eq3,
        mot_resolved_per_eq=s.outcome_prior_mot_resolved_per_eq,
        routine_resolved=s.outcome_prior_routine_resolved,
        fine_min_n=s.outcome_fine_min_n,
        resolution_weight=s.outcome_resolution_weight,
        mot_wait_cost_per_min=s.mot_wait_cost_per_min,
        routine_wait_cost_per_min=s.routine_wait_cost_per_min,
        expected_handle_s=s.expected_handle_s,
        tie_margin=s.outcome_tie_margin,
        reserve_max_hold_s=s.mot_reserve_max_hold_s,
    )


@dataclass(frozen=True)
class Placement:
    target: Literal["self_service", "human"]
    queue: QueueName | None
    priority: float
    reasons: tuple[Reason, ...]
    # self-service should offer the customer a person now (``human_offer``): the bot says so
    offer_human: bool = False


@dataclass(frozen=True)
class AgentChoice:
    agent_id: str | None
    reasons: tuple[Reason, ...]
    pool_size: int
    free_count: int
    wait_for_affinity: bool = False
    # the chosen agent declined the contact within the decline memory, and so did every other agent who
    # could take it now: the offer overrides the memory ("all_declined")
    all_declined: bool = False
    # outcome-aware matching passed the free agents by to wait for these busy, better ones (their ids)
    waiting_for: frozenset[str] = frozenset()


# ---------------------------------------------------------------------------------------------- placement


def place(contact: ContactView, verdict: MotVerdict, cfg: PolicyConfig) -> Placement:
    """Decide self-service or human, and which queue.

    Offered or assigned contacts keep their queue: moving them would take them from an agent (a transfer,
    the thing moments of truth must avoid) or put them in a queue while an offer is live (a double offer).
    If that offer fails the worker places the contact again, and a moment of truth then lands in "mot".
    """
    prio = priority(contact, verdict.is_mot, cfg)
    if contact.status in _WITH_AGENT:
        return _stay_with_agent(contact, verdict, prio)
    if verdict.is_mot:
        return Placement("human", "mot", prio, (*verdict.reasons, *_mot_moves(contact, cfg)))
    if contact.status == "queued":
        queue = _as_queue(contact.queue) or "general"
        text = f"already queued for a human in {queue}: never back to self-service"
        return Placement("human", queue, prio, (*verdict.reasons, Reason("stays_with_human", text)))
    if contact.wants_human:
        reasons = (*verdict.reasons, _human_requested("general"), *_escalated(contact))
        return Placement("human", "general", prio, reasons)
    text = "routine request: self-service first; a human is one request away"
    stay = Reason("to_self_service", text)
    offer = human_offer(contact, cfg)
    if offer is not None:
        return Placement("self_service", None, prio, (*verdict.reasons, offer, stay), offer_human=True)
    return Placement("self_service", None, prio, (*verdict.reasons, stay))


def human_offer(contact: ContactView, cfg: PolicyConfig) -> Reason | None:
    """A reason for self-service to offer a person now, once per contact: the latest customer turn reads
    as a possible moment of truth (``human_offer_mot_prob``) though the contact's verdict is still routine.
    The verdict stays the learned detector's; this only shortens the way to a human for a customer it may
    have missed, who would otherwise have to find the button."""
    probs = contact.trajectory.mot_probs
    if contact.human_offered or not probs or cfg.human_offer_mot_prob >= 1.0:
        return None
    if probs[-1] < cfg.human_offer_mot_prob:
        return None
    text = (
        f"turn {contact.trajectory.turns} reads as a possible moment of truth (p={probs[-1]:.2f}, offer at "
        f"{cfg.human_offer_mot_prob:.2f}): self-service offers a person now"
    )
    return Reason("human_offered", text)


def _stay_with_agent(contact: ContactView, verdict: MotVerdict, prio: float) -> Placement:
    queue = _as_queue(contact.queue) or ("mot" if verdict.is_mot else "general")
    text = f"{contact.status} to agent {contact.agent_id}: stays with them (no transfer)"
    if verdict.is_mot and queue != "mot" and contact.status == "offered":
        text += "; moves to the mot queue only if this offer fails"
    return Placement("human", queue, prio, (*verdict.reasons, Reason("stays_with_agent", text)))


def _mot_moves(contact: ContactView, cfg: PolicyConfig) -> tuple[Reason, ...]:
    moves: list[Reason] = []
    if contact.wants_human:
        moves.append(_human_requested("mot"))
    moves.extend(_escalated(contact))
    if contact.status == "queued" and contact.queue not in (None, "mot"):
        moves.append(Reason("rerouted_to_mot", f"was waiting in {contact.queue}: moved to mot"))
    moves.append(Reason("to_mot_queue", f"moment of truth: queue mot, eq>={cfg.mot_min_eq} agents first"))
    return tuple(moves)


def _escalated(contact: ContactView) -> tuple[Reason, ...]:
    if contact.status != "self_service":
        return ()
    return (
        Reason("escalated_from_self_service", "left self-service for a human, with transcript and scores"),
    )


def _human_requested(queue: str) -> Reason:
    return Reason("human_requested", f"customer asked for a human: queue {queue}")


def _as_queue(name: str | None) -> QueueName | None:
    for queue in QUEUES:
        if queue == name:
            return queue
    return None


# ---------------------------------------------------------------------------------------------- ordering


def priority(contact: ContactView, is_mot: bool, cfg: PolicyConfig) -> float:
    """Priority points in [0, MAX_PRIORITY]; monotone in peak, last intensity, tier and the MoT flag."""
    traj = contact.trajectory
    points = (
        PEAK_POINTS * clamp01(traj.peak)
        + LAST_POINTS * clamp01(traj.last)
        + TIER_POINTS.get(contact.tier.lower(), 0.0)
        + (MOT_BONUS if is_mot else 0.0)
    )
    return min(max(points, 0.0), MAX_PRIORITY)


def queue_score(enqueued_ts: float, priority: float, cfg: PolicyConfig) -> float:
    """Sorted-set score, lower served first. Priority is a bounded head start in seconds, and every contact
    ages at the same rate, so a low-priority contact is served once it has waited out that head start."""
    return enqueued_ts - priority * cfg.seconds_per_priority_point


def min_eq(queue: str, waited_s: float, cfg: PolicyConfig) -> int:
    """Escalation ladder: the minimum agent EQ for ``queue`` after waiting ``waited_s``; never rises."""
    if queue != "mot" or waited_s >= cfg.ladder_step2_s:
        return 1
    if waited_s >= cfg.ladder_step1_s:
        # min(): a misconfigured step1 above mot_min_eq must never raise the bar while waiting.
        return min(cfg.ladder_step1_min_eq, cfg.mot_min_eq)
    return cfg.mot_min_eq


# ---------------------------------------------------------------------------------------------- eligibility


def _ms(seconds: float) -> int:
    """Whole ms, truncated as the worker truncates the clock it hands the offer script."""
    return int(seconds * 1000)


def remembered_decline_ms(agent_id: str, contact: ContactView, now: float, cfg: PolicyConfig) -> int | None:
    """How long ago (ms) ``agent_id`` declined or missed an offer of ``contact``, while that is remembered;
    None if it never did or the decline memory has passed. Compared in whole ms, as the offer script does."""
    at_ms = contact.declined_ms.get(agent_id)
    if at_ms is None:
        return None
    ago_ms = _ms(now) - at_ms
    return ago_ms if ago_ms < _ms(cfg.decline_memory_s) else None


def ineligible_reason(
    agent: AgentView, contact: ContactView, queue: str, waited_s: float, cfg: PolicyConfig, *, now: float
) -> Reason | None:
    """None if ``agent`` may be offered ``contact`` at ``now``, else the first failed check.

    Capacity is checked last on purpose: "no_capacity" then means "would be eligible if it had a free
    slot", which is what last-agent affinity waits for. A decline is checked before the ladder and the
    capacity, so "declined_before" with ``ladder_or_capacity_reason`` None means "would be eligible but for
    the decline", which is what the all-declined re-offer looks for.
    """
    who = f"agent {agent.agent_id}"
    if agent.status != "available":
        return Reason("agent_unavailable", f"{who} is {agent.status}")
    if not agent.speaks(contact.language):
        langs = ", ".join(sorted(agent.languages)) or "no language"
        return Reason("language_mismatch", f"{who} speaks {langs}; contact needs {contact.language}")
    ago_ms = remembered_decline_ms(agent.agent_id, contact, now, cfg)
    if ago_ms is not None:
        text = (
            f"{who} declined or missed an offer of this contact {ago_ms / 1000:.0f} s ago "
            f"(remembered for {cfg.decline_memory_s:.0f} s)"
        )
        return Reason("declined_before", text)
    return ladder_or_capacity_reason(agent, contact, queue, waited_s, cfg)


def ladder_or_capacity_reason(
    agent: AgentView, contact: ContactView, queue: str, waited_s: float, cfg: PolicyConfig
) -> Reason | None:
    """The checks of ``ineligible_reason`` after status, language and declines: whether the agent takes
    the contact's channel at all, the EQ ladder, then a free slot on that channel. The channel comes
    before the ladder so that "below the eq ladder" only ever counts agents who could take the contact
    once the ladder widens: a supervisor reading "2 below the eq ladder" may lower it, which would not
    help if those two only take calls."""
    who = f"agent {agent.agent_id}"
    cap = agent.capacity.get(contact.channel, 0)
    if cap <= 0:
        return Reason("channel_not_served", f"{who} does not take {contact.channel} contacts")
    floor = min_eq(queue, waited_s, cfg)
    if agent.eq < floor:
        return Reason(
            "eq_below_ladder", f"{who} eq {agent.eq} below eq>={floor} ({queue}, waited {waited_s:.0f} s)"
        )
    free = agent.free(contact.channel)
    if free <= 0:
        return Reason("no_capacity", f"{who} has no free {contact.channel} slot ({cap - free}/{cap})")
    return None


def queued_for_s(contact: ContactView, now: float) -> float:
    """How long the contact has waited in its queue: 0 before it is enqueued, and never negative (the
    clocks of workers may disagree a little)."""
    if contact.enqueued_ts is None:
        return 0.0
    return max(0.0, now - contact.enqueued_ts)


def _mot_share_over_cap(agent: AgentView, mot_total_recent: int, cfg: PolicyConfig) -> bool:
    if mot_total_recent < cfg.fairness_min_sample or mot_total_recent <= 0:
        return False
    return agent.mot_recent / mot_total_recent > cfg.fairness_max_share


def _fairness_text(agent: AgentView, mot_total_recent: int, cfg: PolicyConfig) -> str:
    share = agent.mot_recent / mot_total_recent
    return (
        f"agent {agent.agent_id} had {agent.mot_recent} of {mot_total_recent} recent moments of truth "
        f"({share:.0%} > cap {cfg.fairness_max_share:.0%})"
    )


# ---------------------------------------------------------------------------------------------- choose agent


def choose_agent(
    contact: ContactView,
    queue: str,
    agents: Sequence[AgentView],
    now: float,
    cfg: PolicyConfig,
    mot_total_recent: int,
) -> AgentChoice:
    """Pick the agent to offer ``contact`` to: affinity, then the fairness cap, then EQ and idle time."""
    waited_s = queued_for_s(contact, now)
    floor = min_eq(queue, waited_s, cfg)
    checked = [
        (a, ineligible_reason(a, contact, queue, waited_s, cfg, now=now))
        for a in sorted(agents, key=_agent_key)
    ]
    eligible = [a for a, why in checked if why is None]
    pool_size = sum(1 for a, _ in checked if _in_pool(a, contact, floor))
    pool = Reason(
        "pool",
        f"{queue}: eq>={floor} {contact.language} pool had {len(eligible)} free of {pool_size} "
        f"(waited {waited_s:.0f} s)",
    )

    def choice(
        agent_id: str | None, *reasons: Reason, wait: bool = False, all_declined: bool = False
    ) -> AgentChoice:
        return AgentChoice(agent_id, (pool, *reasons), pool_size, len(eligible), wait, all_declined)

    affinity = _affinity(contact, checked, waited_s, cfg)
    if affinity is not None and affinity[0] == "choose":
        return choice(contact.last_agent_id, affinity[1])
    if affinity is not None and affinity[0] == "wait":
        return choice(None, affinity[1], wait=True)
    fallback = (affinity[1],) if affinity is not None else ()
    if not eligible:
        again = _earliest_decliner(contact, queue, checked, waited_s, now, cfg)
        if again is not None:
            return choice(again[0], *fallback, again[1], all_declined=True)
        return choice(None, *fallback, _no_eligible(checked, queue))
    candidates, fairness = apply_fairness(queue, eligible, mot_total_recent, cfg)
    best = min(candidates, key=preference(queue))
    return choice(best.agent_id, *fallback, *fairness, _chose(best, queue, now))


def _agent_key(agent: AgentView) -> str:
    return agent.agent_id


def _earliest_decliner(
    contact: ContactView,
    queue: str,
    checked: Sequence[tuple[AgentView, Reason | None]],
    waited_s: float,
    now: float,
    cfg: PolicyConfig,
) -> tuple[str, Reason] | None:
    """Every agent who could take the contact now (available, the language, the ladder, a free slot) has
    declined or missed it: rather than leave the customer waiting out the decline memory, offer it again,
    to the agent whose decline is the oldest (then by id), so repeated declines go round the agents.
    None when some agent is eligible anyway, or nobody declined."""
    decliners = [
        a
        for a, why in checked
        if why is not None
        and why.code == "declined_before"
        and ladder_or_capacity_reason(a, contact, queue, waited_s, cfg) is None
    ]
    if not decliners:
        return None
    first = min(decliners, key=lambda a: (contact.declined_ms[a.agent_id], a.agent_id))
    ago_s = (_ms(now) - contact.declined_ms[first.agent_id]) / 1000
    text = (
        f"all {len(decliners)} agents who could take it declined or missed it: offered again to "
        f"{first.agent_id}, whose decline is the oldest ({ago_s:.0f} s ago)"
    )
    return first.agent_id, Reason("all_declined", text)


def _in_pool(agent: AgentView, contact: ContactView, floor: int) -> bool:
    return agent.status == "available" and agent.speaks(contact.language) and agent.eq >= floor


def _affinity(
    contact: ContactView,
    checked: Sequence[tuple[AgentView, Reason | None]],
    waited_s: float,
    cfg: PolicyConfig,
) -> tuple[Literal["choose", "wait", "fallback"], Reason] | None:
    """Last-agent affinity for a returning customer; None when there is no last agent logged in.

    Affinity beats the fairness cap and the EQ preference: an agent who knows the case spares the customer
    from repeating it. It never beats eligibility, and the wait for a busy last agent is bounded. Only a
    last agent who takes the contact's channel is waited for: one who served the customer on another
    channel (a chat agent, the customer now calling) never frees a slot for it, and the wait would only
    end in the fallback ``affinity_timeout_s`` later.
    """
    last = contact.last_agent_id
    found = [why for agent, why in checked if agent.agent_id == last]
    if last is None or not found:
        return None
    why = found[0]
    if why is None:
        return "choose", Reason("affinity", f"returning customer: chose last agent {last} (affinity)")
    if why.code == "channel_not_served":
        text = f"last agent {last} does not take {contact.channel} contacts: routing to others"
        return "fallback", Reason("affinity_fallback", text)
    if why.code == "no_capacity" and waited_s < cfg.affinity_timeout_s:
        text = f"last agent {last} is busy: waiting for them up to {cfg.affinity_timeout_s:.0f} s"
        return "wait", Reason("waiting_for_affinity", f"{text} (waited {waited_s:.0f} s)")
    if why.code == "no_capacity":
        text = f"last agent {last} still busy after {waited_s:.0f} s: routing to others"
    else:
        text = f"last agent {last} not eligible ({why.text}): routing to others"
    return "fallback", Reason("affinity_fallback", text)


def apply_fairness(
    queue: str, eligible: list[AgentView], mot_total_recent: int, cfg: PolicyConfig
) -> tuple[list[AgentView], tuple[Reason, ...]]:
    """Drop agents over their share of moments of truth, unless nobody else is eligible (never starve)."""
    if queue != "mot":
        return eligible, ()
    over = [a for a in eligible if _mot_share_over_cap(a, mot_total_recent, cfg)]
    rest = [a for a in eligible if not _mot_share_over_cap(a, mot_total_recent, cfg)]
    if not over:
        return eligible, ()
    if not rest:
        kept = Reason(
            "fairness_kept",
            "every eligible agent is over the fairness cap: kept them, the customer comes first",
        )
        return eligible, (kept,)
    return rest, tuple(
        Reason("fairness_skip", f"skipped: {_fairness_text(a, mot_total_recent, cfg)}") for a in over
    )


def preference(queue: str) -> Callable[[AgentView], tuple[int, float, str]]:
    """Sort key, smallest first. Moments of truth want the highest EQ; routine work the lowest, which keeps
    the few high-EQ agents free for the moments that need them. Then longest idle, then agent id."""
    sign = -1 if queue == "mot" else 1
    return lambda a: (sign * a.eq, a.last_assigned_ts, a.agent_id)


def _chose(agent: AgentView, queue: str, now: float) -> Reason:
    rank = "highest eligible" if queue == "mot" else "lowest eligible, keeps high-EQ agents free"
    idle = (
        f"longest idle {now - agent.last_assigned_ts:.0f} s"
        if agent.last_assigned_ts > 0
        else "never assigned yet"
    )
    return Reason("chose_longest_idle", f"chose agent {agent.agent_id}: eq {agent.eq} ({rank}), {idle}")


_SHORT = {
    "agent_unavailable": "not available",
    "language_mismatch": "without the language",
    "declined_before": "declined before",
    "eq_below_ladder": "below the eq ladder",
    "no_capacity": "at capacity",
    "channel_not_served": "not taking this channel",
}


def _no_eligible(checked: Sequence[tuple[AgentView, Reason | None]], queue: str) -> Reason:
    counts = Counter(why.code for _, why in checked if why is not None)
    parts = ", ".join(f"{n} {_SHORT.get(code, code)}" for code, n in sorted(counts.items()))
    detail = f"of {len(checked)} agents: {parts}" if checked else "no agents logged in"
    return Reason("no_eligible_agent", f"no eligible agent ({detail}); waits in queue {queue}")


# ------------------------------------------------------------------------------------------- choose contact


def choose_contact(
    agent: AgentView,
    candidates: Sequence[tuple[ContactView, str]],
    now: float,
    cfg: PolicyConfig,
    mot_total_recent: int,
    reserved: frozenset[str] = frozenset(),
) -> tuple[ContactView | None, tuple[Reason, ...]]:
    """Agent pull when capacity frees. ``candidates`` are (contact, queue) best first, "mot" queue first.

    Only the first ``queue_scan_limit`` candidates are looked at. In order: (1) a contact held for this agent
    by affinity (it waits for nobody else, so skipping it would leave it stuck until the timeout); (2) if
    the agent is over its fairness share, the first eligible non-"mot" contact; (3) the first eligible one,
    so an over-cap agent still takes a moment of truth rather than leave it waiting. A contact the agent
    declined is not pulled: whether everyone else has declined it too needs the whole floor, so the
    all-declined re-offer is ``choose_agent``'s (the periodic sweep runs it). ``reserved``: the channels
    whose free high-EQ slots the reserve keeps for moments of truth (``matching.reserved_channels``); a
    high-EQ agent takes no routine contact of them before its hold ends.
    """
    scanned = candidates[: cfg.queue_scan_limit]
    eligible = [
        (c, q)
        for c, q in scanned
        if _may_take(agent, c, q, now, cfg)
        and not (c.channel in reserved and reserve_blocks(agent, c, q, now, cfg))
    ]
    if not eligible:
        text = f"agent {agent.agent_id} is eligible for none of {len(scanned)} waiting contacts"
        return None, (Reason("no_eligible_contact", text),)
    for contact, _ in eligible:
        if contact.last_agent_id == agent.agent_id and queued_for_s(contact, now) < cfg.affinity_timeout_s:
            return contact, (Reason("affinity", f"took returning contact {contact.contact_id} (affinity)"),)
    fairness: tuple[Reason, ...] = ()
    if _mot_share_over_cap(agent, mot_total_recent, cfg):
        routine = next(((c, q) for c, q in eligible if q != "mot"), None)
        if routine is not None:
            skip = Reason(
                "fairness_skip", f"{_fairness_text(agent, mot_total_recent, cfg)}: routine work first"
            )
            return routine[0], (skip, _pulled(agent, routine, now))
        fairness = (Reason("fairness_kept", "over the fairness cap, but only moments of truth are waiting"),)
    return eligible[0][0], (*fairness, _pulled(agent, eligible[0], now))


def reserve_blocks(agent: AgentView, contact: ContactView, queue: str, now: float, cfg: PolicyConfig) -> bool:
    """Whether the high-EQ reserve keeps ``agent`` from a routine ``contact`` (its hold not over yet); the
    caller has decided that the reserve holds on the contact's channel (``matching.high_eq_reserve``)."""
    if cfg.outcome is None or queue == "mot" or contact.moment_of_truth or agent.eq < cfg.mot_min_eq:
        return False
    return queued_for_s(contact, now) < cfg.outcome.reserve_max_hold_s


def _may_take(agent: AgentView, contact: ContactView, queue: str, now: float, cfg: PolicyConfig) -> bool:
    return ineligible_reason(agent, contact, queue, queued_for_s(contact, now), cfg, now=now) is None


def _pulled(agent: AgentView, pick: tuple[ContactView, str], now: float) -> Reason:
    contact, queue = pick
    waited_s = queued_for_s(contact, now)
    text = f"agent {agent.agent_id} took {contact.contact_id} from {queue} (waited {waited_s:.0f} s)"
    return Reason("pulled", text)
