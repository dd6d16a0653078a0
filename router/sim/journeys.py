"""Customer journeys: who arrives, on which channel, in which language, saying what, and when they need a
human (ground truth).

Each arrival brings one story: a moment of truth (``mot_share``, 10% by default: docs/simulation.md says
why), ``routine_human`` (12%) or ``routine`` (the rest); in
the burst scenario's surge, a storm moment of truth (85%) or a routine one. A ``LineSource`` writes the
story's script (``router.sim.corpus_lines``: the project's corpus, held-out splits by default; the bundled
English lines without one), and the script fixes the journey's ground truth, never read back from the
router. Four kinds result (``router.sim.script.Kind``):

- ``routine``: self-service can serve it (no human needed).
- ``routine_human``: asks for a person at turn 2; needs a human from it, but it is not a moment of truth.
- ``mot``: a moment of truth from the first turn.
- ``turning``: becomes a moment of truth at a later turn (for the corpus, the conversation's ``mot_turn``).

A new customer's language is drawn with ``LANGUAGE_WEIGHTS`` among the languages the source has every
story in; a storm's among those it has storms in; a returning customer keeps theirs. A replayed
conversation keeps its channel; a composed script's channel is drawn with ``CHANNEL_WEIGHTS``.

A customer who needs a human and is still in self-service a little after that turn presses the "talk to a
person" button (``contact.human_requested``): the same behaviour under every routing mode, so a router
that misses a moment of truth costs the customer that detour, never the whole contact.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, replace

from router.sim.arrivals import Arrival, Scenario, arrival_times
from router.sim.script import Kind, LineSource, Story

DAY_STORIES: tuple[Story, ...] = ("routine", "routine_human", "moment")
DEFAULT_MOT_SHARE = 0.10
# Share of customers offered a callback who take it: they hang up (or leave the chat), keep their place in
# the queue and are reached when an agent takes the contact, so they no longer give up on hold. Half is an
# assumption with no measurement behind it; docs/simulation-history.md shows 0 and 1 beside it. One who
# declines keeps waiting and may still give up.
DEFAULT_CALLBACK_ACCEPT_SHARE = 0.5
_CALLBACK_SALT = 0x5CA11BAC
ROUTINE_HUMAN_SHARE = 0.12
CHANNELS: tuple[str, ...] = ("chat", "voice", "email", "social", "sms")
CHANNEL_WEIGHTS: tuple[float, ...] = (45, 35, 8, 6, 6)
# English the majority, every other language of the corpus 5 each (one in twenty contacts)
LANGUAGE_WEIGHTS: dict[str, float] = {
    "en": 50,
    **{lang: 5 for lang in ("it", "ro", "fi", "el", "de", "es", "fr", "pt", "pl", "nl")},
}
OTHER_LANGUAGE_WEIGHT = 5.0  # a language of the source that LANGUAGE_WEIGHTS does not name
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
# a customer who needs a human and is offered one by self-service takes it this long after the offer
OFFER_TAKE_S = (2.0, 5.0)
_OFFER_SALT = 0x0FFE12ED
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
    accepts_callback: bool = False  # would take a callback if one were offered

    def offer_take_s(self) -> float:
        """Seconds to take a person offered by self-service; its own draw, so offers move no other."""
        return random.Random(self.seed ^ _OFFER_SALT).uniform(*OFFER_TAKE_S)

    sources: tuple[str, ...] = ()  # corpus ids of the conversation or turns the lines come from

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


def story_weights(mot_share: float) -> tuple[float, float, float]:
    """Weights of DAY_STORIES for a day where ``mot_share`` of the stories are moments of truth."""
    if not 0.0 <= mot_share <= 1.0 - ROUTINE_HUMAN_SHARE:
        raise ValueError(f"mot_share {mot_share} outside 0..{1.0 - ROUTINE_HUMAN_SHARE:.2f}")
    return (1.0 - ROUTINE_HUMAN_SHARE - mot_share, ROUTINE_HUMAN_SHARE, mot_share)


def _story(rng: random.Random, arrival: Arrival, scenario: Scenario, weights: tuple[float, ...]) -> Story:
    if arrival.burst and scenario.burst is not None:
        return "storm" if rng.random() < scenario.burst.mot_share else "routine"
    return rng.choices(DAY_STORIES, weights=weights)[0]


def _language(rng: random.Random, languages: tuple[str, ...]) -> str:
    weights = [LANGUAGE_WEIGHTS.get(lang, OTHER_LANGUAGE_WEIGHT) for lang in languages]
    return rng.choices(languages, weights=weights)[0]


def day_languages(lines: LineSource) -> tuple[str, ...]:
    """Languages the source has every story of an ordinary day in: a new customer speaks one of them."""
    return tuple(
        lang for lang in lines.languages("moment") if all(lang in lines.languages(s) for s in DAY_STORIES)
    )


def _offsets(rng: random.Random, channel: str, n: int) -> tuple[float, ...]:
    lo, hi = TURN_GAP_S[channel]
    offsets: list[float] = []
    t = rng.uniform(2.0, 6.0)  # the first line follows the start
    for _ in range(n):
        offsets.append(round(t, 3))
        t += rng.uniform(lo, hi)
    return tuple(offsets)


def build_journeys(
    n: int,
    rng: random.Random,
    lines: LineSource,
    scenario: Scenario,
    mot_share: float = DEFAULT_MOT_SHARE,
    callback_accept_share: float = DEFAULT_CALLBACK_ACCEPT_SHARE,
) -> list[SimJourney]:
    """``n`` journeys in arrival order; everything drawn from ``rng`` (same seed, same journeys).
    ``mot_share``: the share of an ordinary day's stories that are moments of truth;
    ``callback_accept_share``: the share of customers who would take a callback."""
    weights = story_weights(mot_share)
    day = day_languages(lines)
    if not day:
        raise ValueError(f"the {lines.name} lines have no language with every story of a day")
    storm = tuple(lang for lang in day if lang in lines.languages("storm")) or day
    out: list[SimJourney] = []
    starts: list[float] = []
    customers = 0
    for i, arrival in enumerate(arrival_times(n, rng, scenario)):
        story = _story(rng, arrival, scenario, weights)
        earlier = bisect.bisect_right(starts, arrival.t_s - RETURN_AFTER_S)  # out is in arrival order
        returning = earlier > 0 and not arrival.burst and rng.random() < RETURNING_SHARE
        if returning:
            prev = out[rng.randrange(earlier)]
            customer_id, language, tier = prev.customer_id, prev.language, prev.tier
            if prev.truth_mot and rng.random() < RETURNING_MOT_P:
                story = "moment"
        else:
            customer_id = f"cust{customers:05d}"
            customers += 1
            language = _language(rng, storm if story == "storm" else day)
            tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
        script = lines.script(story, rng, language)
        channel = script.channel or rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0]
        mean_patience = PATIENCE_MEAN_S[channel] * (
            MOT_PATIENCE_FACTOR if script.kind in ("mot", "turning") else 1.0
        )
        journey = SimJourney(
            contact_id=f"c{i:05d}",
            customer_id=customer_id,
            kind=script.kind,
            channel=channel,
            language=language,
            tier=tier,
            start_s=round(arrival.t_s, 3),
            turns=script.turns,
            turn_offsets_s=_offsets(rng, channel, len(script.turns)),
            need_turn=script.need_turn,
            button_delay_s=rng.uniform(*BUTTON_DELAY_S),
            linger_s=rng.uniform(*LINGER_S),
            patience_s=max(MIN_PATIENCE_S, rng.gammavariate(PATIENCE_SHAPE, mean_patience / PATIENCE_SHAPE)),
            burst=arrival.burst,
            returning=returning,
            seed=rng.getrandbits(32),
            sources=script.sources,
        )
        accepts = random.Random(journey.seed ^ _CALLBACK_SALT).random() < callback_accept_share
        out.append(replace(journey, accepts_callback=accepts))  # its own draw: the share moves nothing else
        starts.append(arrival.t_s)
    return out
