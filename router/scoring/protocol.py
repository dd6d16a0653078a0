"""The scorer contract: batched ``score(texts)`` returning one ``EmotionScore`` per text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class EmotionScore:
    """What the model says about one customer turn.

    intensity: strength of negative emotion (anger, fear, sadness, distress) in [0, 1].
    emotions: label -> probability (sums to about 1 when the scorer has a distribution; may be empty).
    topic: the most likely moment-of-truth topic (e.g. "lost_card") or None when routine.
    topic_prob: probability that the turn is about a moment-of-truth topic at all, in [0, 1].
    wants_human: probability that the customer asks for a person, in [0, 1].
    source: which scorer produced it ("transformer", "lexicon", "pipeline", "scripted").
    """

    intensity: float
    emotions: Mapping[str, float] = field(default_factory=dict)
    topic: str | None = None
    topic_prob: float = 0.0
    wants_human: float = 0.0
    source: str = "unknown"


@runtime_checkable
class EmotionScorer(Protocol):
    name: str

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        """Score a batch in one call; returns exactly ``len(texts)`` results in order."""
        ...
