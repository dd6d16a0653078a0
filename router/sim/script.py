"""A journey's script: what the customer says, turn by turn, and the ground truth that goes with it.

The journey generator (``router.sim.journeys``) decides who arrives, when, and which story they bring; a
``LineSource`` writes the story's script. Two sources exist: ``router.sim.corpus_lines.CorpusLines`` (the
project's moment-of-truth corpus, held-out splits by default) and ``router.sim.pool_lines.PoolLines`` (the
bundled English lines, for a checkout without ``models/corpus``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Kind = Literal["routine", "routine_human", "mot", "turning"]
"""What a journey is, as ground truth: ``routine`` (self-service can serve it), ``routine_human`` (asks for
a person, not a moment of truth), ``mot`` (a moment of truth from the first turn), ``turning`` (becomes a
moment of truth at a later turn)."""

Story = Literal["routine", "routine_human", "moment", "storm"]
"""What the generator asks a source for: ``routine``, ``routine_human``, ``moment`` (a moment of truth:
the source says whether it is a ``mot`` or a ``turning`` journey) and ``storm`` (the burst scenario's
travel-disruption moments of truth)."""


@dataclass(frozen=True)
class Script:
    kind: Kind
    turns: tuple[str, ...]  # the customer's turns, in order
    need_turn: int | None  # 0-based index of the turn from which the customer needs a human; None: never
    language: str
    channel: str | None  # the channel the lines were written for; None: the journey draws one
    sources: tuple[str, ...] = ()  # ids of the corpus conversation or turns the lines come from


class LineSource(Protocol):
    """Writes scripts for stories, in the languages it has lines for."""

    @property
    def name(self) -> str:
        """``corpus`` or ``bundled``."""
        ...

    def languages(self, story: Story) -> tuple[str, ...]:
        """Languages with lines for ``story``."""
        ...

    def script(self, story: Story, rng: random.Random, language: str) -> Script:
        """A script for ``story`` in ``language`` (one of ``languages(story)``), every choice from ``rng``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where the lines come from and how many there are, for the report."""
        ...
