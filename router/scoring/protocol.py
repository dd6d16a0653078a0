"""The scorer contract: batched ``score(texts)`` returning one ``EmotionScore`` per text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from router.domain.model import TurnScore


@dataclass(frozen=True, slots=True)
class EmotionScore:
    """What the model says about one customer turn.

    intensity: strength of negative emotion (anger, fear, sadness, distress) in [0, 1].
    emotions: label -> probability (sums to about 1 when the scorer has a distribution; may be empty).
    topic: the most likely moment-of-truth topic (e.g. "lost_card") or None when routine.
    topic_prob: probability that the turn is about a moment-of-truth topic at all, in [0, 1].
    wants_human: probability that the customer asks for a person, in [0, 1].
    mot_prob: probability that this turn is a moment of truth, in [0, 1]: the transformer's learned head;
        scorers without one give ``heuristic_mot_prob`` of their intensity and topic.
    source: which scorer produced it ("transformer", "lexicon", "pipeline", "scripted").
    mot_neighbours: what the nearest labelled corpus turns say of it, for reasons ("4 of its 5 nearest
        labelled corpus turns are moments of truth (bereavement 4); the nearest at cosine 0.93"); "" from
        scorers without them.
    words: the turn's length in words as typed (``word_count``); the detector reads the latest turn's.
    """

    intensity: float
    emotions: Mapping[str, float] = field(default_factory=dict)
    topic: str | None = None
    topic_prob: float = 0.0
    wants_human: float = 0.0
    source: str = "unknown"
    mot_prob: float = 0.0
    mot_neighbours: str = ""
    words: int = 0

    def turn(self, seq: int) -> TurnScore:
        """What the routing policy keeps of this score for customer turn ``seq``."""
        return TurnScore(
            seq, self.intensity, self.topic, self.topic_prob, self.wants_human, self.mot_prob, self.words
        )


def heuristic_mot_prob(intensity: float, topic_prob: float) -> float:
    """A stand-in moment-of-truth probability for scorers without a learned head: noisy-OR of negative
    intensity and moment-of-truth topic."""
    return round(1.0 - (1.0 - intensity) * (1.0 - 0.8 * topic_prob), 4)


# A scorer may take, per text, its contact's earlier customer turns (``score(..., contexts=...)``, the
# transformer's): the worker passes at most this many, the most recent
MOT_CONTEXT_TURNS = 4


@runtime_checkable
class EmotionScorer(Protocol):
    name: str

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        """Score a batch in one call; returns exactly ``len(texts)`` results in order."""
        ...
