"""Emotion scoring: the protocol, the transformer scorer, the pipeline scorer and the lexicon fallback."""

from router.scoring.protocol import EmotionScore, EmotionScorer

__all__ = ["EmotionScore", "EmotionScorer"]
