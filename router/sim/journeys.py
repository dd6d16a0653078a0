"""Customer journeys: who arrives, on which channel, saying what, and when they need a human (ground truth).

Four kinds, each with its ground truth fixed at generation time, never read back from the router:

- ``routine``: two or three routine lines; self-service can serve them (no human needed).
- ``routine_human``: a routine line, then an explicit request for a person; needs a human from that turn,
  but it is not a moment of truth.
- ``mot``: a moment of truth from the first turn (a stolen card, a cancelled flight ...), sometimes with a
  calm opener first.
- ``turning``: starts routine and turns emotional mid-way: a moment of truth from the turning turn.

A customer who needs a human and is still in self-service a little after that turn presses the "talk to a
person" button (``contact.human_requested``): the same behaviour under every routing mode, so a router
that misses a moment of truth costs the customer that detour, never the whole contact.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Literal

from router.sim.arrivals import Arrival, Scenario, arrival_times
from router.sim.texts import TextPools

Kind = Literal["routine", "routine_human", "mot", "turning"]
KINDS: tuple[Kind, ...] = ("routine", "routine_human", "mot", "turning")
KIND_WEIGHTS: tuple[float, ...] = (62, 12, 16, 10)
CHANNELS: tuple[str, ...] = ("chat", "voice", "email", "social", "sms")
CHANNEL_WEIGHTS: tuple[float, ...] = (45, 35, 8, 6, 6)
LANGUAGES: tuple[str, ...] = ("en", "es", "fr")
LANGUAGE_WEIGHTS: tuple[float, ...] = (85, 10, 5)
TIERS: tuple[str, ...] = ("standard", "gold", "platinum")
TIER_WEIGHTS: tuple[float, ...] = (80, 15, 5)

# Seconds between two customer turns, uniform in (lo, hi), per channel.
TURN_GAP_S: dict[str, tuple[float, float]] = {
    "voice": (8.0, 20.0),
    "chat": (20.0, 60.0),
    "email": (90.0, 300.0),
    "social": (30.0, 120.0),
    "sms": (30.0, 120.0),
}
# Mean patience (seconds) of a customer who waits for a human: gamma with shape 2 (few give up in the first
# seconds, the hazard rises with the wait); moments of truth run out sooner.
PATIENCE_MEAN_S: dict[str, float] = {
    "voice": 180.0,
    "chat": 300.0,
    "email": 1800.0,
    "social": 600.0,
    "sms": 600.0,
}
PATIENCE_SHAPE = 2.0
MOT_PATIENCE_FACTOR = 0.7
MIN_PATIENCE_S = 15.0
BUTTON_DELAY_S = (15.0, 45.0)  # after the turn that needs a human, still in self-service: press the button
LINGER_S = (20.0, 60.0)  # after a routine customer's last turn, still in self-service: leave, served
RETURNING_SHARE = 0.12  # arrivals that are a customer seen earlier the same day
RETURN_AFTER_S = 1_200.0  # ... whose earlier contact started at least this long before
RETURNING_MOT_P = 0.6  # a customer whose earlier contact was a moment of truth comes back about it


@dataclass(frozen=True)
class SimJourney:
    contact_id: str
    customer_id: str
    kind: Kind
    channel: str
    language: str
    tier: str
    start_s: float  # seconds since opening
    turns: tuple[str, ...]
    turn_offsets_s: tuple[float, ...]  # seconds since start, strictly increasing
    need_turn: int | None  # index of the turn from which the customer needs a human; None: never
    button_delay_s: float
    linger_s: float
    patience_s: float
    burst: bool = False
    returning: bool = False
    seed: int = 0  # the contact's own random stream (offer answers, handle time, CSAT noise)

    @property
    def truth_mot(self) -> bool:
        return self.kind in ("mot", "turning")

    @property
    def needs_human(self) -> bool:
        return self.need_turn is not None

    @property
    def need_offset_s(self) -> float | None:
        return None if self.need_turn is None else self.turn_offsets_s[self.need_turn]

    @property
    def last_turn_offset_s(self) -> float:
        return self.turn_offsets_s[-1]


def _turns(kind: Kind, rng: random.Random, pools: TextPools, burst: bool) -> tuple[list[str], int | None]:
    mot_pool = pools.storm if burst else pools.mot
    routine = [rng.choice(pools.routine) for _ in range(3)]
    if kind == "routine":
        return routine[: rng.randint(2, 3)], None
    if kind == "routine_human":
        return [routine[0], rng.choice(pools.human), routine[1]][: rng.randint(2, 3)], 1
    if kind == "mot":
        follow = rng.random()
        if follow < 0.5:
            second = rng.choice(mot_pool)
        elif follow < 0.7:
            second = rng.choice(pools.human)
        else:
            second = routine[1]
        if rng.random() < 0.25:  # a calm opener first ("hi, I have a question about my booking")
            return [routine[0], rng.choice(mot_pool), second], 1
        return [rng.choice(mot_pool), second], 0
    turns = [routine[0], routine[1], rng.choice(pools.turning)]
    if rng.random() < 0.5:
        turns.append(rng.choice(pools.turning))
    return turns, 2


def _kind(rng: random.Random, arrival: Arrival, scenario: Scenario) -> Kind:
    if arrival.burst and scenario.burst is not None:
        return "mot" if rng.random() < scenario.burst.mot_share else "routine"
    return rng.choices(KINDS, weights=KIND_WEIGHTS)[0]


def build_journeys(n: int, rng: random.Random, pools: TextPools, scenario: Scenario) -> list[SimJourney]:
    """``n`` journeys in arrival order; everything drawn from ``rng`` (same seed, same journeys)."""
    out: list[SimJourney] = []
    starts: list[float] = []
    customers = 0
    for i, arrival in enumerate(arrival_times(n, rng, scenario)):
        kind = _kind(rng, arrival, scenario)
        earlier = bisect.bisect_right(starts, arrival.t_s - RETURN_AFTER_S)  # out is in arrival order
        returning = earlier > 0 and not arrival.burst and rng.random() < RETURNING_SHARE
        if returning:
            prev = out[rng.randrange(earlier)]
            customer_id, language, tier = prev.customer_id, prev.language, prev.tier
            if prev.truth_mot and rng.random() < RETURNING_MOT_P:
                kind = "mot"
        else:
            customer_id = f"cust{customers:05d}"
            customers += 1
            language = rng.choices(LANGUAGES, weights=LANGUAGE_WEIGHTS)[0]
            tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
        channel = rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0]
        texts, need = _turns(kind, rng, pools, arrival.burst)
        lo, hi = TURN_GAP_S[channel]
        offsets: list[float] = []
        t = rng.uniform(2.0, 6.0)  # the first line follows the start
        for _ in texts:
            offsets.append(round(t, 3))
            t += rng.uniform(lo, hi)
        mean_patience = PATIENCE_MEAN_S[channel] * (
            MOT_PATIENCE_FACTOR if kind in ("mot", "turning") else 1.0
        )
        out.append(
            SimJourney(
                contact_id=f"c{i:05d}",
                customer_id=customer_id,
                kind=kind,
                channel=channel,
                language=language,
                tier=tier,
                start_s=round(arrival.t_s, 3),
                turns=tuple(texts),
                turn_offsets_s=tuple(offsets),
                need_turn=need,
                button_delay_s=rng.uniform(*BUTTON_DELAY_S),
                linger_s=rng.uniform(*LINGER_S),
                patience_s=max(
                    MIN_PATIENCE_S, rng.gammavariate(PATIENCE_SHAPE, mean_patience / PATIENCE_SHAPE)
                ),
                burst=arrival.burst,
                returning=returning,
                seed=rng.getrandbits(32),
            )
        )
        starts.append(arrival.t_s)
    return out
