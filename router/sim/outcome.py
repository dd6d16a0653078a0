"""The outcome model: the simulated customer's satisfaction (CSAT, 1-5) at the end of a contact.

Stated in docs/simulation.md with its assumptions; the constants below are those assumptions. Pure
functions of what happened to the contact, plus one seeded noise draw: same seed, same scores.

- A moment of truth handled by an agent: its expected CSAT rises with the agent's true empathy (its
  hidden ``skill``, not its EQ tag; linearly, 2.45 at 1 to 5.0 at 5), minus a wait penalty for every
  minute past the first 30 seconds from the moment the customer needed a human, minus a detour penalty
  when the customer had to press "talk to a person" because the router left them in self-service.
- A routine contact contained by self-service scores well; a routine contact served by a human scores a
  little better, barely depends on EQ, and is more tolerant of waiting.
- An abandoned contact scores badly, worst for a moment of truth (peak-end: the customer remembers it).
- The survey answer is the expectation plus Gaussian noise, rounded and clipped to 1-5.
- Resolution at the first contact: a moment of truth is resolved with probability 0.45 + 0.1 x skill
  (0.75 at 3, near the often-quoted industry first-contact resolution of about 70%), 0.1 less after a
  detour; a routine contact served by a human 0.9; an abandoned one never.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MOT_BASE = 1.8
MOT_PER_EQ = 0.65
MOT_GRACE_S = 30.0
MOT_WAIT_PER_MIN = 0.6
MOT_WAIT_MAX = 2.5
DETOUR_PENALTY = 0.4

ROUTINE_HUMAN_BASE = 4.3
ROUTINE_PER_EQ = 0.05  # around eq 3
ROUTINE_GRACE_S = 120.0
ROUTINE_WAIT_PER_MIN = 0.4
ROUTINE_WAIT_MAX = 2.0

MOT_RESOLVED_BASE = 0.45
MOT_RESOLVED_PER_SKILL = 0.1
DETOUR_RESOLVED_PENALTY = 0.1
ROUTINE_RESOLVED = 0.9

CONTAINED = 4.2
ABANDONED_MOT = 1.2
ABANDONED_ROUTINE = 2.0
NOISE_SD = 0.7


@dataclass(frozen=True)
class Outcome:
    """What happened to one contact, in the terms the model needs."""

    truth_mot: bool
    handled_skill: float | None = None  # true empathy of the agent who served it; None when no agent did
    wait_s: float | None = None  # from needing a human to an agent taking it
    detoured: bool = False  # had to ask for a person after the router left them in self-service
    abandoned: bool = False
    contained: bool = False  # ended in self-service without needing a human


def _penalty(wait_s: float | None, grace_s: float, per_min: float, cap: float) -> float:
    if wait_s is None or wait_s <= grace_s:
        return 0.0
    return min(cap, (wait_s - grace_s) / 60.0 * per_min)


def expected_csat(o: Outcome) -> float:
    if o.abandoned:
        return ABANDONED_MOT if o.truth_mot else ABANDONED_ROUTINE
    if o.handled_skill is None:
        return CONTAINED if o.contained else ABANDONED_ROUTINE
    if o.truth_mot:
        mu = MOT_BASE + MOT_PER_EQ * o.handled_skill
        mu -= _penalty(o.wait_s, MOT_GRACE_S, MOT_WAIT_PER_MIN, MOT_WAIT_MAX)
    else:
        mu = ROUTINE_HUMAN_BASE + ROUTINE_PER_EQ * (o.handled_skill - 3)
        mu -= _penalty(o.wait_s, ROUTINE_GRACE_S, ROUTINE_WAIT_PER_MIN, ROUTINE_WAIT_MAX)
    if o.detoured:
        mu -= DETOUR_PENALTY
    return min(5.0, max(1.0, mu))


def sample_csat(expected: float, rng: random.Random) -> int:
    return int(min(5, max(1, round(expected + rng.gauss(0.0, NOISE_SD)))))


def resolved_probability(o: Outcome) -> float:
    if o.abandoned or o.handled_skill is None:
        return 0.0
    if not o.truth_mot:
        return ROUTINE_RESOLVED
    p = MOT_RESOLVED_BASE + MOT_RESOLVED_PER_SKILL * o.handled_skill
    if o.detoured:
        p -= DETOUR_RESOLVED_PENALTY
    return min(1.0, max(0.0, p))
