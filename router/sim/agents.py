"""The simulated floor: agents with EQ 1-5, languages, channel capacities, how they answer offers, how
long they take, and when they step away.

The floor is staffed for the *usual* day: its size comes from the offered load of the non-burst
contacts at the busiest hour, so a storm's surge finds the floor as a real one would, under-staffed.
Each profile (voice, digital) gets the agents Erlang C asks for to answer 80% of its contacts within
20 s, and at least four times the high-EQ agents its moments of truth need for the same target, since
a quarter of any floor is eq >= 4 (``size_floor``).

Everyone speaks English; each other language of the day is dealt, within each profile (voice, digital),
to ``SPEAKER_SHARE`` of the agents (at least ``MIN_SPEAKERS``), first to a high-EQ agent (up to a fair
share of languages each), then to those who speak the fewest languages so far: every language can be
served on every channel, and on a small floor agents speak several.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from router.sim.arrivals import Scenario
from router.sim.journeys import SimJourney

# Share of the floor at each EQ tag (5 = best at empathy): about a quarter at eq >= 4. High-EQ agents
# are the scarce resource (docs/simulation.md, "Agents").
EQ_MIX: tuple[tuple[int, float], ...] = ((5, 0.10), (4, 0.15), (3, 0.35), (2, 0.25), (1, 0.15))
# An agent's EQ tag is a supervisor's judgment; the agent's true empathy (``FloorAgent.skill``, which
# only the outcome model reads) differs from it by a normal error of this sd, in EQ points. The router
# never sees the skill: it sees the tag, and the outcomes the simulator posts through the API.
TAG_ERROR_SD = 0.75
VOICE_CAPACITY: dict[str, int] = {"voice": 1}
DIGITAL_CAPACITY: dict[str, int] = {"chat": 3, "email": 3, "social": 2, "sms": 2}
BASE_LANGUAGE = "en"  # every agent speaks it
# Speakers of each other language, per profile: three times a language's 5% of contacts, since a small
# pool of speakers absorbs less of its peaks than the whole floor would
SPEAKER_SHARE = 0.15
MIN_SPEAKERS = 2
HIGH_EQ = 4  # each language gets one speaker of at least this EQ per profile first, where there is one

# Handle time: lognormal around a median per channel, scaled by what the contact is and, for moments of
# truth, by the agent's EQ (an empathic agent calms the customer sooner and resolves on the first go).
HANDLE_MEDIAN_S: dict[str, float] = {
    "voice": 300.0,
    "chat": 420.0,
    "email": 480.0,
    "social": 360.0,
    "sms": 360.0,
}
HANDLE_SIGMA = 0.4
KIND_HANDLE_FACTOR: dict[str, float] = {"routine": 0.6, "routine_human": 0.8, "mot": 1.5, "turning": 1.3}
# Contacts one agent effectively works at once per channel, for sizing (capacity is the hard limit).
EFFECTIVE_CONCURRENCY: dict[str, float] = {"voice": 1.0, "chat": 2.0, "email": 2.5, "social": 2.0, "sms": 2.0}
# The service level the floor is sized for (Erlang C): this share of contacts answered within this
# wait. 20 s is also the escalation ladder's first step, so it is what a moment of truth may wait for
# an eq >= 4 agent before the ladder widens.
SERVICE_SHARE = 0.8
SERVICE_WITHIN_S = 20.0
HIGH_EQ_SHARE = sum(share for eq, share in EQ_MIX if eq >= 4)  # a quarter
BREAK_SHARE = 1 / 8  # breaks take about one agent in eight off the floor at any time
MIN_AGENTS = 8
MIN_PER_PROFILE = 2

ACCEPT_DELAY_S = (2.0, 8.0)
DECLINE_P = 0.03
MISS_P = 0.02  # the offer times out


@dataclass(frozen=True)
class FloorAgent:
    agent_id: str
    eq: int
    languages: tuple[str, ...]
    capacity: dict[str, int]
    accept_delay_s: tuple[float, float]
    decline_p: float
    miss_p: float
    breaks: tuple[tuple[float, float], ...]  # (start, duration) in seconds since opening
    skill: float = 0.0  # true empathy, 1-5: the outcome model's, never registered with the router

    @property
    def profile(self) -> str:
        return "voice" if "voice" in self.capacity else "digital"


def eq_for(n: int) -> list[int]:
    """EQ values of an ``n``-agent floor in EQ_MIX proportions (largest remainders), at least one eq 5 and
    one eq 4."""
    counts = {eq: math.floor(share * n) for eq, share in EQ_MIX}
    by_remainder = sorted(EQ_MIX, key=lambda es: (-(es[1] * n - math.floor(es[1] * n)), -es[0]))
    for eq, _ in by_remainder[: n - sum(counts.values())]:
        counts[eq] += 1
    counts[5] = max(counts[5], 1)
    counts[4] = max(counts[4], 1)
    while sum(counts.values()) > n:
        eq = max((e for e in (3, 2, 1) if counts[e] > 0), key=lambda e: counts[e])
        counts[eq] -= 1
    return [eq for eq, _ in EQ_MIX for _ in range(counts[eq])]


def handle_time_s(journey: SimJourney, agent_skill: float, rng: random.Random) -> float:
    factor = KIND_HANDLE_FACTOR[journey.kind]
    if journey.truth_mot:
        factor *= 1.2 - 0.08 * agent_skill  # skill 1: 1.12, 3: 0.96, 5: 0.80
    median = HANDLE_MEDIAN_S[journey.channel] * factor
    return max(30.0, median * math.exp(rng.gauss(0.0, HANDLE_SIGMA)))


def _work_s(j: SimJourney) -> float:
    """Agent-seconds one contact is expected to take (mean handle time over effective concurrency)."""
    work = HANDLE_MEDIAN_S[j.channel] * KIND_HANDLE_FACTOR[j.kind] * math.exp(HANDLE_SIGMA**2 / 2)
    return work / EFFECTIVE_CONCURRENCY[j.channel]


@dataclass(frozen=True)
class Load:
    """Offered load of one profile at the busiest hour: agent-erlangs and the mean agent-seconds each."""

    erlangs: float
    work_s: float


def peak_loads(
    journeys: Sequence[SimJourney], scenario: Scenario, *, mot_only: bool = False
) -> dict[str, Load]:
    """Per profile, the load of the non-burst contacts that need a human at the busiest hour of all of
    them (``mot_only``: of the moments of truth among them, at that same hour)."""
    hours = max(1, scenario.close_h - scenario.open_h)
    work: dict[str, list[list[float]]] = {
        "voice": [[] for _ in range(hours)],
        "digital": [[] for _ in range(hours)],
    }
    mot: dict[str, list[list[float]]] = {
        "voice": [[] for _ in range(hours)],
        "digital": [[] for _ in range(hours)],
    }
    for j in journeys:
        if j.burst or not j.needs_human:
            continue
        h = min(hours - 1, int(j.start_s // 3600))
        profile = "voice" if j.channel == "voice" else "digital"
        work[profile][h].append(_work_s(j))
        if j.truth_mot:
            mot[profile][h].append(_work_s(j))
    peak = max(range(hours), key=lambda h: sum(work["voice"][h]) + sum(work["digital"][h]))
    chosen = mot if mot_only else work
    out = {}
    for profile, by_hour in chosen.items():
        xs = by_hour[peak]
        out[profile] = Load(sum(xs) / 3600.0, sum(xs) / len(xs) if xs else 0.0)
    return out


def offered_erlangs(journeys: Sequence[SimJourney], scenario: Scenario) -> dict[str, float]:
    """Agent-seconds of work per second at the busiest hour, split voice / digital, burst excluded."""
    return {profile: load.erlangs for profile, load in peak_loads(journeys, scenario).items()}


def erlang_c(agents: int, erlangs: float) -> float:
    """P(a contact waits at all) with ``agents`` servers and ``erlangs`` offered (1 when overloaded)."""
    if erlangs <= 0:
        return 0.0
    if agents <= erlangs:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k!, summed for k < agents
    for k in range(1, agents):
        term *= erlangs / k
        total += term
    last = term * erlangs / agents * agents / (agents - erlangs)
    return last / (total + last)


def agents_for(load: Load, share: float = SERVICE_SHARE, within_s: float = SERVICE_WITHIN_S) -> int:
    """The fewest agents that answer ``share`` of the contacts within ``within_s`` (Erlang C)."""
    if load.erlangs <= 0 or load.work_s <= 0:
        return 0
    n = max(1, math.ceil(load.erlangs))
    while True:
        answered = 1.0 - erlang_c(n, load.erlangs) * math.exp(-(n - load.erlangs) * within_s / load.work_s)
        if answered >= share:
            return n
        n += 1


def size_floor(journeys: Sequence[SimJourney], scenario: Scenario) -> tuple[int, int]:
    """(voice agents, digital agents) for the usual day's busiest hour: per profile the more of Erlang C
    for all its contacts and four times (``1 / HIGH_EQ_SHARE``) Erlang C for its moments of truth alone,
    plus breaks; at least ``MIN_PER_PROFILE`` each and ``MIN_AGENTS`` in all."""
    load = peak_loads(journeys, scenario)
    mot = peak_loads(journeys, scenario, mot_only=True)
    sized = {}
    for profile in ("voice", "digital"):
        need = max(agents_for(load[profile]), math.ceil(agents_for(mot[profile]) / HIGH_EQ_SHARE))
        sized[profile] = max(MIN_PER_PROFILE, math.ceil(need / (1 - BREAK_SHARE)))
    voice, digital = sized["voice"], sized["digital"]
    if voice + digital < MIN_AGENTS:
        digital += MIN_AGENTS - voice - digital
    return voice, digital


def _breaks(i: int, n: int, rng: random.Random, scenario: Scenario) -> tuple[tuple[float, float], ...]:
    """Two 15-minute breaks and a 30-minute lunch, staggered across the floor, inside opening hours."""
    span = scenario.span_s
    stagger = (i / max(1, n)) * 5_400.0  # spread over 90 minutes
    plan = [
        (min(span * 0.2, 7_200.0) + stagger * 0.5 + rng.uniform(-600, 600), 900.0),
        (span * 0.40 + stagger + rng.uniform(-300, 300), 1_800.0),
        (span * 0.70 + stagger * 0.5 + rng.uniform(-600, 600), 900.0),
    ]
    return tuple((round(max(60.0, s), 1), d) for s, d in plan if s + d < span - 60)


def deal_languages(
    agents: Sequence[tuple[int, str]], languages: Collection[str], rng: random.Random
) -> list[tuple[str, ...]]:
    """The languages of each (eq, profile) agent: English, plus each other language of ``languages`` for
    ``SPEAKER_SHARE`` of the profile's agents (at least ``MIN_SPEAKERS``): first a high-EQ agent who does
    not speak more than the profile's fair share yet, then those with the fewest languages (ties broken by
    ``rng``)."""
    extra: list[list[str]] = [[] for _ in agents]
    others = sorted(set(languages) - {BASE_LANGUAGE})
    for profile in ("voice", "digital"):
        members = [i for i, (_, p) in enumerate(agents) if p == profile]
        speakers = min(len(members), max(MIN_SPEAKERS, round(SPEAKER_SHARE * len(members))))
        fair = math.ceil(speakers * len(others) / max(1, len(members)))  # extra languages per agent
        for lang in others:
            tie = {i: rng.random() for i in members}
            by_load = sorted(members, key=lambda i: (len(extra[i]), tie[i]))
            high = [i for i in by_load if agents[i][0] >= HIGH_EQ and len(extra[i]) < fair][:1]
            for i in (high + [i for i in by_load if i not in high])[:speakers]:
                extra[i].append(lang)
    return [(BASE_LANGUAGE, *langs) for langs in extra]


def _high_eq_in_each_profile(pairs: list[tuple[int, str]]) -> None:
    """Give each profile an agent of eq >= HIGH_EQ where the other profile has two or more to spare."""
    for profile in ("voice", "digital"):
        own = [i for i, (_, p) in enumerate(pairs) if p == profile]
        donors = [i for i, (eq, p) in enumerate(pairs) if p != profile and eq >= HIGH_EQ]
        if not own or any(pairs[i][0] >= HIGH_EQ for i in own) or len(donors) < 2:
            continue
        top = max(own, key=lambda i: pairs[i][0])
        give = donors[-1]
        pairs[top], pairs[give] = (pairs[give][0], profile), (pairs[top][0], pairs[give][1])


def build_floor(
    n_voice: int,
    n_digital: int,
    rng: random.Random,
    scenario: Scenario,
    languages: Collection[str] = (BASE_LANGUAGE,),
) -> list[FloorAgent]:
    """``n_voice`` + ``n_digital`` agents who between them speak every one of ``languages``."""
    n = n_voice + n_digital
    # every profile gets its share of each EQ: deal the EQs from high to low, voice evenly interleaved
    eqs = sorted(eq_for(n), reverse=True)
    pairs = [
        (eq, "voice" if (i + 1) * n_voice // n > i * n_voice // n else "digital") for i, eq in enumerate(eqs)
    ]
    _high_eq_in_each_profile(pairs)
    rng.shuffle(pairs)  # agent ids say nothing about EQ
    spoken = deal_languages(pairs, languages, rng)
    agents: list[FloorAgent] = []
    skills = [min(5.0, max(1.0, eq + rng.gauss(0.0, TAG_ERROR_SD))) for eq, _ in pairs]
    for i, (eq, profile) in enumerate(pairs):
        agents.append(
            FloorAgent(
                agent_id=f"a{i + 1:03d}",
                eq=eq,
                languages=spoken[i],
                capacity=dict(VOICE_CAPACITY if profile == "voice" else DIGITAL_CAPACITY),
                accept_delay_s=ACCEPT_DELAY_S,
                decline_p=DECLINE_P,
                miss_p=MISS_P,
                breaks=_breaks(i, n, rng, scenario),
                skill=round(skills[i], 2),
            )
        )
    return agents
