"""Scripts composed from line pools (``router.sim.texts.TextPools``): the fallback line source when the
project's corpus (``models/corpus``) is missing, with the bundled English lines.

The pools hold single lines with no conversation around them, so a script strings lines together and its
ground truth follows from which pool each line came from:

- ``routine``: two or three routine lines.
- ``routine_human``: a routine line, a request for a person (needs a human from it), maybe a routine line.
- ``moment``: ``mot`` (16 in 26): a moment-of-truth line, after a calm opener a quarter of the time, then
  another one, a request for a person or a routine line; ``turning`` (10 in 26): two routine lines, then
  one or two lines of a contact turning emotional.
- ``storm``: a ``mot`` script from the storm pool.

Every line is English, so every script's language is ``en``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from router.sim.script import Script, Story
from router.sim.texts import TextPools

LANGUAGE = "en"
MOT_SHARE_OF_MOMENTS = 16 / 26  # the rest are turning journeys
CALM_OPENER_P = 0.25


@dataclass(frozen=True)
class PoolLines:
    pools: TextPools

    @property
    def name(self) -> str:
        return self.pools.source

    def languages(self, story: Story) -> tuple[str, ...]:
        return (LANGUAGE,)

    def script(self, story: Story, rng: random.Random, language: str) -> Script:
        if story == "routine":
            return Script("routine", self._routine(rng), None, LANGUAGE, None)
        if story == "routine_human":
            return Script("routine_human", self._routine_human(rng), 1, LANGUAGE, None)
        if story == "storm" or rng.random() < MOT_SHARE_OF_MOMENTS:
            turns, need = self._mot(rng, self.pools.storm if story == "storm" else self.pools.mot)
            return Script("mot", turns, need, LANGUAGE, None)
        return Script("turning", self._turning(rng), 2, LANGUAGE, None)

    def describe(self) -> dict[str, Any]:
        return {"source": self.pools.source, "pool_sizes": self.pools.sizes(), "datasets": self.pools.sources}

    def _routine(self, rng: random.Random) -> tuple[str, ...]:
        return tuple(rng.choice(self.pools.routine) for _ in range(rng.randint(2, 3)))

    def _routine_human(self, rng: random.Random) -> tuple[str, ...]:
        routine = self.pools.routine
        turns = (rng.choice(routine), rng.choice(self.pools.human), rng.choice(routine))
        return turns[: rng.randint(2, 3)]

    def _mot(self, rng: random.Random, pool: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
        follow = rng.random()
        if follow < 0.5:
            second = rng.choice(pool)
        elif follow < 0.7:
            second = rng.choice(self.pools.human)
        else:
            second = rng.choice(self.pools.routine)
        if rng.random() < CALM_OPENER_P:  # "hi, I have a question about my booking" first
            return (rng.choice(self.pools.routine), rng.choice(pool), second), 1
        return (rng.choice(pool), second), 0

    def _turning(self, rng: random.Random) -> tuple[str, ...]:
        turns = [
            rng.choice(self.pools.routine),
            rng.choice(self.pools.routine),
            rng.choice(self.pools.turning),
        ]
        if rng.random() < 0.5:
            turns.append(rng.choice(self.pools.turning))
        return tuple(turns)
