"""``router score``: JSON lines ``{"text": ..., "language": optional}`` in, one JSON line out per input.

Output: ``intensity``, ``moment_of_truth`` (the contact-level detector's verdict for a one-turn contact),
``topic``, ``topic_prob``, ``wants_human``, ``emotions``, ``reasons`` (machine code + text), ``scorer``.
An invalid line gives ``{"line": n, "error": "..."}``; nothing crashes the stream. Lines are scored in
batches of ``batch_size`` (one model call per batch) and written in input order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from router.scoring.factory import build_scorer
from router.scoring.protocol import EmotionScore, EmotionScorer
from router.settings import Settings

MAX_TEXT_CHARS = 20_000


def _parse(line: str) -> tuple[str, str | None]:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with a 'text' field")
    text = obj.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"'text' longer than {MAX_TEXT_CHARS} characters")
    language = obj.get("language")
    if language is not None and not isinstance(language, str):
        raise ValueError("'language' must be a string when given")
    return text, language


def _verdict(score: EmotionScore, language: str | None, settings: Settings) -> dict[str, Any]:
    """The routing policy's verdict on a contact whose first customer turn is this one."""
    from router.domain.model import ContactView
    from router.domain.mot import MotThresholds, detect, model_probability, observe_turn
    from router.scoring.detector import mot_model_for

    th = MotThresholds.from_settings(settings, mot_model_for(settings))
    start = ContactView(contact_id="score-cli", channel="chat", language=language or "en")
    contact, _ = observe_turn(start, score.turn(1), th)
    verdict = detect(contact, th)
    reasons = [{"code": r.code, "text": r.text} for r in verdict.reasons]
    if contact.wants_human:
        reasons.append({"code": "wants_human", "text": f"asks for a person (p={score.wants_human:.2f})"})
    detector_p = None if th.model is None else round(model_probability(contact, th.model), 4)
    return {"moment_of_truth": verdict.is_mot, "reasons": reasons, "detector_prob": detector_p}


def _emit(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _flush(
    batch: list[tuple[int, str, str | None]],
    errors: dict[int, str],
    out: TextIO,
    scorer: EmotionScorer,
    settings: Settings,
    first: int,
    last: int,
) -> None:
    scores: list[EmotionScore] = []
    if batch:
        try:
            texts = [t for _, t, _ in batch]
            if getattr(scorer, "supports_languages", False):
                langs = [lang for _, _, lang in batch]
                scores = scorer.score(texts, languages=langs)  # type: ignore[call-arg]
            else:
                scores = scorer.score(texts)
        except Exception as exc:
            for n, _, _ in batch:
                errors[n] = f"scoring failed: {type(exc).__name__}: {exc}"
            batch, scores = [], []
    by_line = {n: (text, lang, s) for (n, text, lang), s in zip(batch, scores, strict=True)}
    for n in range(first, last + 1):
        if n in errors:
            _emit(out, {"line": n, "error": errors[n]})
        elif n in by_line:
            text, lang, s = by_line[n]
            try:
                verdict = _verdict(s, lang, settings)
            except Exception as exc:
                _emit(out, {"line": n, "error": f"detector failed: {type(exc).__name__}: {exc}"})
                continue
            _emit(
                out,
                {
                    "text": text,
                    "language": lang,
                    "intensity": round(s.intensity, 4),
                    "mot_prob": round(s.mot_prob, 4),
                    "moment_of_truth": verdict["moment_of_truth"],
                    "detector_prob": verdict["detector_prob"],
                    "topic": s.topic,
                    "topic_prob": round(s.topic_prob, 4),
                    "wants_human": round(s.wants_human, 4),
                    "emotions": dict(s.emotions),
                    "reasons": verdict["reasons"],
                    "scorer": s.source,
                },
            )
    out.flush()


def run_score(
    lines: Iterable[str],
    out: TextIO,
    settings: Settings,
    scorer: EmotionScorer | None = None,
    batch_size: int = 64,
) -> None:
    scorer = scorer or build_scorer(settings)
    batch: list[tuple[int, str, str | None]] = []
    errors: dict[int, str] = {}
    first = 1
    n = 0
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            errors[n] = "empty line"
        else:
            try:
                text, lang = _parse(line)
                batch.append((n, text, lang))
            except (ValueError, json.JSONDecodeError) as exc:
                errors[n] = f"invalid input: {exc}"
        if len(batch) >= batch_size:
            _flush(batch, errors, out, scorer, settings, first, n)
            batch, errors, first = [], {}, n + 1
    if n >= first:
        _flush(batch, errors, out, scorer, settings, first, n)
