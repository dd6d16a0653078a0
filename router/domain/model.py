"""Plain dataclasses the pure policy works on. No I/O here: the store builds these from Redis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ContactStatus = Literal["new", "self_service", "queued", "offered", "assigned", "ended"]
QueueName = Literal["mot", "general"]
QUEUES: tuple[QueueName, ...] = ("mot", "general")


def base_language(tag: str) -> str:
    """A language tag's base language (BCP 47's primary subtag, lower case): "en-GB" and "EN" are "en",
    "pt-BR" is "pt"."""
    return tag.split("-", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Reason:
    """A machine code plus a sentence a supervisor can read."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class TurnScore:
    seq: int
    intensity: float
    topic: str | None = None
    topic_prob: float = 0.0
    wants_human: float = 0.0
    mot_prob: float = 0.0
    words: int = 0  # the turn's length in words, as typed


@dataclass(frozen=True, slots=True)
class Trajectory:
    """Customer-turn intensities and moment-of-truth probabilities in arrival order (the most recent
    ``keep`` of them) plus running peaks."""

    intensities: tuple[float, ...] = ()
    peak: float = 0.0
    peak_turn: int = 0  # 1-based customer-turn number of the peak; 0 when no turn yet
    turns: int = 0  # customer turns seen in total (may exceed len(intensities))
    mot_probs: tuple[float, ...] = ()  # per-turn P(moment of truth), aligned with ``intensities``
    mot_peak: float = 0.0
    mot_peak_turn: int = 0
    last_words: int = 0  # the latest customer turn's length in words (0: not known, stored before)

    @property
    def last(self) -> float:
        return self.intensities[-1] if self.intensities else 0.0

    @property
    def trend(self) -> float:
        """Latest intensity minus the mean of the earlier kept turns (0 with fewer than two turns)."""
        if len(self.intensities) < 2:
            return 0.0
        earlier = self.intensities[:-1]
        return self.intensities[-1] - sum(earlier) / len(earlier)


@dataclass(frozen=True, slots=True)
class ContactView:
    contact_id: str
    channel: str
    language: str = "en"
    tier: str = "standard"
    customer_id: str = ""
    status: ContactStatus = "new"
    queue: str | None = None
    agent_id: str | None = None
    offer_id: str | None = None
    moment_of_truth: bool = False
    trajectory: Trajectory = field(default_factory=Trajectory)
    topic: str | None = None  # strongest moment-of-truth topic seen so far
    topic_prob: float = 0.0  # its probability
    wants_human: bool = False
    human_offered: bool = False  # self-service has offered a person (policy.human_offer): once per contact
    repeat_contact: bool = False  # same customer had a recent contact
    created_ts: float = 0.0
    enqueued_ts: float | None = None
    priority: float = 0.0
    last_agent_id: str | None = None  # affinity: who served this customer last
    # agent id -> when (epoch ms) it last declined or let an offer time out; remembered only for the decline
    # memory (policy.remembered_decline_ms). In ms, unlike the other times here, because the offer script
    # compares the same whole numbers: the policy and the script never disagree at the boundary.
    declined_ms: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutcomeTally:
    """Posted outcomes of one agent on one class of contact (router.domain.outcomes)."""

    n: int = 0
    csat_sum: float = 0.0
    resolved: int = 0


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    eq: int
    languages: frozenset[str]
    capacity: Mapping[str, int]  # channel -> max concurrent contacts
    load: Mapping[str, int] = field(default_factory=dict)  # channel -> contacts held (offered or assigned)
    status: Literal["available", "away", "offline"] = "available"
    last_assigned_ts: float = 0.0
    status_ts: float = 0.0  # when the status last changed (epoch s; 0: unknown)
    name: str = ""
    tags: frozenset[str] = frozenset()
    mot_recent: int = 0  # moments of truth offered to this agent in the fairness window
    # class key ("mot", "mot|language=de", ...) -> the agent's posted outcomes on that class
    outcomes: Mapping[str, OutcomeTally] = field(default_factory=dict)
    # channel -> (since when, epoch s; a moment of truth?) of each contact the agent holds there: how long
    # each busy slot has been busy, so the wait forecast knows which frees soon (wait_forecast.Stage)
    busy: Mapping[str, tuple[tuple[float, bool], ...]] = field(default_factory=dict)

    def free(self, channel: str) -> int:
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)

    def speaks(self, language: str) -> bool:
        """Whether the agent can serve a contact in ``language``: the same tag, or the same base language
        (an agent tagged "en" serves an "en-GB" customer, one tagged "pt-BR" a "pt" or "pt-PT" one)."""
        if language in self.languages:
            return True
        base = base_language(language)
        return any(base_language(spoken) == base for spoken in self.languages)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Observed service for one queue, for the wait estimate."""

    depth: int  # contacts waiting
    completions_per_s: float  # observed departures from the queue (offers accepted) per second, recent window
    free_agents: int = 0  # eligible agents with free capacity right now
    passed_by: int = 0  # waiting contacts the free agents may not take (stuck.waiting_state)
