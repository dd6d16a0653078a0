"""Any Hugging Face text-classification model (hub id or local path) as an ``EmotionScorer``.

For users who have the hub (or a local copy): ``transformers.pipeline("text-classification")`` with all
label probabilities; intensity is the probability mass on negative labels weighted by ``label_map``
(label, lower-cased -> weight in [0, 1]). Topics and human requests come from the lexicon cues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.domain.trajectory import word_count
from router.scoring.protocol import EmotionScore, heuristic_mot_prob
from router.scoring.topics import asks_for_human, cue_topic

# Covers common sentiment (negative/neutral/positive, star ratings) and emotion (Ekman, GoEmotions) heads.
DEFAULT_LABEL_MAP: dict[str, float] = {
    "negative": 1.0,
    "neg": 1.0,
    "very negative": 1.0,
    "1 star": 1.0,
    "2 stars": 0.6,
    "anger": 1.0,
    "fear": 1.0,
    "sadness": 1.0,
    "grief": 1.0,
    "disgust": 0.8,
    "nervousness": 0.8,
    "annoyance": 0.6,
    "disappointment": 0.6,
    "disapproval": 0.5,
    "remorse": 0.5,
    "embarrassment": 0.4,
}


class PipelineScorer:
    name = "pipeline"

    def __init__(
        self,
        model: str,
        label_map: Mapping[str, float] | None = None,
        max_tokens: int = 128,
        batch_size: int = 32,
        device: int | str = -1,
    ) -> None:
        from transformers import pipeline

        self.model = model
        self.label_map = {k.lower(): float(v) for k, v in (label_map or DEFAULT_LABEL_MAP).items()}
        self.batch_size = batch_size
        self._pipe: Any = pipeline(
            "text-classification",
            model=model,
            tokenizer=model,
            top_k=None,
            device=device,
        )
        max_pos = getattr(self._pipe.model.config, "max_position_embeddings", None)
        self._max_tokens = min(max_tokens, int(max_pos)) if isinstance(max_pos, int) else max_tokens

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        if not texts:
            return []
        raw: Any = self._pipe(
            list(texts), batch_size=self.batch_size, truncation=True, max_length=self._max_tokens
        )
        out: list[EmotionScore] = []
        for text, labels in zip(texts, raw, strict=True):
            if isinstance(labels, dict):
                labels = [labels]
            emotions = {str(d["label"]): float(d["score"]) for d in labels}
            intensity = sum(p * self.label_map.get(lab.lower(), 0.0) for lab, p in emotions.items())
            topic = cue_topic(text)
            out.append(
                EmotionScore(
                    intensity=round(min(1.0, max(0.0, intensity)), 4),
                    emotions={k: round(v, 4) for k, v in emotions.items()},
                    topic=topic,
                    topic_prob=0.8 if topic else 0.0,
                    wants_human=0.9 if asks_for_human(text) else 0.0,
                    source=self.name,
                    mot_prob=heuristic_mot_prob(min(1.0, max(0.0, intensity)), 0.8 if topic else 0.0),
                    words=word_count(text),
                )
            )
        return out
