"""``router score``: JSON lines ``{"text": ..., "language": optional, "contact": optional}`` in, one JSON line
out per input.

Output: ``intensity``, ``mot_prob``, ``moment_of_truth`` (the contact-level detector's verdict), ``topic``,
``topic_prob``, ``wants_human``, ``emotions``, ``reasons`` (machine code + text), ``scorer``, and from the
transformer ``mot_neighbours`` (what the turn's nearest labelled corpus turns are). Without
``contact`` each line is a one-turn contact. Lines with the same ``contact`` are that contact's customer
turns in order, as the worker sees them: each is read after the turns before it (``mot_prob`` in context)
and the verdict is the detector's over the contact's turns so far.
An invalid line gives ``{"line": n, "error": "..."}``; nothing crashes the stream. Lines are scored in
batches of ``batch_size`` (one model call per batch) and written in input order.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from router.domain.model import ContactView
from router.scoring.factory import build_scorer
from router.scoring.protocol import MOT_CONTEXT_TURNS, EmotionScore, EmotionScorer
from router.settings import Settings

MAX_TEXT_CHARS = 20_000
MAX_CONTACT_CHARS = 200


@dataclass
class _Contacts:
    """What the run remembers of each named contact: its customer turns so far and its policy view."""

    texts: dict[str, list[str]] = field(default_factory=dict)
    views: dict[str, ContactView] = field(default_factory=dict)


def _parse(line: str) -> tuple[str, str | None, str | None]:
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
    contact = obj.get("contact")
    if contact is not None and (not isinstance(contact, str) or not 0 < len(contact) <= MAX_CONTACT_CHARS):
        raise ValueError(f"'contact' must be a string of 1 to {MAX_CONTACT_CHARS} characters when given")
    return text, language, contact


def _verdict(
    score: EmotionScore, language: str | None, settings: Settings, before: ContactView | None = None
) -> tuple[dict[str, Any], ContactView]:
    """The routing policy's verdict on a contact after this customer turn (its first unless ``before``, the
    contact as it was after its earlier turns), and the contact after it."""
    from router.domain.mot import MotThresholds, detect, model_probability, observe_turn
    from router.scoring.detector import mot_model_for

    th = MotThresholds.from_settings(settings, mot_model_for(settings))
    start = before or ContactView(contact_id="score-cli", channel="chat", language=language or "en")
    contact, _ = observe_turn(start, score.turn(start.trajectory.turns + 1), th)
    verdict = detect(contact, th)
    reasons = [{"code": r.code, "text": r.text} for r in verdict.reasons]
    if contact.wants_human:
        reasons.append({"code": "wants_human", "text": f"asks for a person (p={score.wants_human:.2f})"})
    detector_p = None if th.model is None else round(model_probability(contact, th.model), 4)
    contact = dataclasses.replace(contact, moment_of_truth=verdict.is_mot)
    return {"moment_of_truth": verdict.is_mot, "reasons": reasons, "detector_prob": detector_p}, contact


def _emit(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")


Line = tuple[int, str, str | None, str | None]  # line number, text, language, contact


def _score_batch(batch: list[Line], scorer: EmotionScorer, contacts: _Contacts) -> list[EmotionScore]:
    """One scorer call; a named contact's lines each after its earlier turns (this batch's included)."""
    texts = [t for _, t, _, _ in batch]
    langs = [lang for _, _, lang, _ in batch]
    contexts: list[list[str]] = []
    seen: dict[str, list[str]] = {}  # the batch's contacts: their turns before it, then this batch's
    for _, text, _, cid in batch:
        if cid is None:
            contexts.append([])
            continue
        earlier = seen.setdefault(cid, list(contacts.texts.get(cid, [])))
        contexts.append(earlier[-MOT_CONTEXT_TURNS:])
        earlier.append(text)
    if "contexts" in inspect.signature(scorer.score).parameters:
        return scorer.score(texts, languages=langs, contexts=contexts)  # type: ignore[call-arg]
    if getattr(scorer, "supports_languages", False):
        return scorer.score(texts, languages=langs)  # type: ignore[call-arg]
    return scorer.score(texts)


def _flush(
    batch: list[Line],
    errors: dict[int, str],
    out: TextIO,
    scorer: EmotionScorer,
    settings: Settings,
    first: int,
    last: int,
    contacts: _Contacts,
) -> None:
    scores: list[EmotionScore] = []
    if batch:
        try:
            scores = _score_batch(batch, scorer, contacts)
        except Exception as exc:
            for n, _, _, _ in batch:
                errors[n] = f"scoring failed: {type(exc).__name__}: {exc}"
            batch, scores = [], []
    by_line = {n: (text, lang, cid, s) for (n, text, lang, cid), s in zip(batch, scores, strict=True)}
    for n in range(first, last + 1):
        if n in errors:
            _emit(out, {"line": n, "error": errors[n]})
        elif n in by_line:
            text, lang, cid, s = by_line[n]
            try:
                verdict, view = _verdict(s, lang, settings, contacts.views.get(cid) if cid else None)
            except Exception as exc:
                _emit(out, {"line": n, "error": f"detector failed: {type(exc).__name__}: {exc}"})
                continue
            if cid is not None:
                contacts.views[cid] = view
                contacts.texts.setdefault(cid, []).append(text)
                contacts.texts[cid] = contacts.texts[cid][-MOT_CONTEXT_TURNS:]
            _emit(
                out,
                {
                    "text": text,
                    "language": lang,
                    **({"contact": cid, "turn": view.trajectory.turns} if cid is not None else {}),
                    "intensity": round(s.intensity, 4),
                    "mot_prob": round(s.mot_prob, 4),
                    **({"mot_neighbours": s.mot_neighbours} if s.mot_neighbours else {}),
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
    batch: list[Line] = []
    errors: dict[int, str] = {}
    contacts = _Contacts()
    first = 1
    n = 0
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            errors[n] = "empty line"
        else:
            try:
                text, lang, cid = _parse(line)
                batch.append((n, text, lang, cid))
            except (ValueError, json.JSONDecodeError) as exc:
                errors[n] = f"invalid input: {exc}"
        if len(batch) >= batch_size:
            _flush(batch, errors, out, scorer, settings, first, n, contacts)
            batch, errors, first = [], {}, n + 1
    if n >= first:
        _flush(batch, errors, out, scorer, settings, first, n, contacts)
