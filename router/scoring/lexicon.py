"""Lexicon fallback scorer: VADER for negative intensity, keyword cues for topics and human requests.

Fast (about 10k msg/s on one core) and always available, so it backs the transformer when the model
cannot load or a batch fails, and it drives the embedded demo when no model is wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.domain.trajectory import word_count
from router.scoring.protocol import EmotionScore, heuristic_mot_prob
from router.scoring.topics import asks_for_human, cue_topic
from router.scoring.vader import FastVader

# VADER's `neg` is the share of negative-valence tokens; a sentence rarely exceeds ~0.6 even when furious,
# so it is stretched, and exclamations or capitals (which VADER already boosts in `compound`) add to it.
_NEG_GAIN = 1.8
_TOPIC_PROB = 0.8


class LexiconScorer:
    name = "lexicon"

    def __init__(self) -> None:
        self._vader = FastVader()

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        return [self._score_one(t) for t in texts]

    def _score_one(self, text: str) -> EmotionScore:
        polarity = self._vader.polarity_scores(text[:2_000])
        neg = float(polarity["neg"])
        compound = float(polarity["compound"])
        intensity = min(1.0, neg * _NEG_GAIN + max(0.0, -compound) * 0.35)
        topic = cue_topic(text)
        wants_human = 0.9 if asks_for_human(text) else 0.0
        emotions = {"negative": neg, "neutral": float(polarity["neu"]), "positive": float(polarity["pos"])}
        return EmotionScore(
            intensity=round(intensity, 4),
            emotions=emotions,
            topic=topic,
            topic_prob=_TOPIC_PROB if topic else 0.0,
            wants_human=wants_human,
            source=self.name,
            mot_prob=heuristic_mot_prob(intensity, _TOPIC_PROB if topic else 0.0),
            words=word_count(text),
        )
