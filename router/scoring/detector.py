"""The learned moment-of-truth detector: its file (``models/detector.json``) and the replay of scored
conversations through the routing policy, which its training and ``router evaluate`` share.

scripts/train_detector.py fits the model (router.domain.mot.MotModel) on the corpus's train conversations
and picks its threshold on the dev split; the worker loads it when the scorer is the transformer, whose
per-turn probabilities it was trained on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.domain.model import ContactView
from router.domain.mot import FEATURES, MotModel, MotThresholds, detect, observe_turn, trajectory_features
from router.scoring.corpus import MOT_CATEGORIES, ROUTINE_CATEGORIES, Corpus
from router.scoring.heads import DEFAULT_MODELS_DIR
from router.scoring.measures import auroc
from router.scoring.protocol import EmotionScore
from router.settings import Settings

DETECTOR_FILE = "detector.json"


def detector_path(models_dir: str | Path | None = None) -> Path:
    return Path(models_dir or DEFAULT_MODELS_DIR) / DETECTOR_FILE


def load_mot_model(models_dir: str | Path | None = None, repeat_logit: float = 0.0) -> MotModel | None:
    """The detector in ``models_dir`` (None when there is none)."""
    path = detector_path(models_dir)
    if not path.exists():
        return None
    return _parse(path, path.stat().st_mtime_ns, repeat_logit)


@functools.lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int, repeat_logit: float) -> MotModel:
    d = json.loads(path.read_text(encoding="utf-8"))
    # a file written before a feature existed weighs it at nothing; a feature the policy lacks is an error
    unknown = [f for f in d["features"] if f not in FEATURES]
    if unknown:
        raise ValueError(f"{path}: features {unknown} are not among the policy's {list(FEATURES)}")
    return MotModel(
        weights={f: float(w) for f, w in zip(d["features"], d["weights"], strict=True)},
        bias=float(d["bias"]),
        threshold=float(d["threshold"]),
        means={f: float(m) for f, m in zip(d["features"], d["means"], strict=True)},
        repeat_logit=repeat_logit,
    )


def mot_model_for(settings: Settings, scorer: object | None = None) -> MotModel | None:
    """The detector the policy uses: the learned one beside the heads when the scorer is the transformer
    (whose per-turn probabilities it was trained on); None (the hand rules) for any other scorer. With
    ``scorer`` given, it must be the transformer (possibly inside the fallback wrapper) itself."""
    if settings.scorer != "transformer":
        return None
    if scorer is not None and getattr(getattr(scorer, "primary", scorer), "name", "") != "transformer":
        return None
    from router.scoring.factory import heads_dir_of

    return load_mot_model(heads_dir_of(settings), settings.mot_repeat_logit)


def save_mot_model(model: MotModel, meta: dict[str, Any], models_dir: str | Path | None = None) -> Path:
    """Write the features the model weighs, in the policy's order."""
    path = detector_path(models_dir)
    features = [f for f in FEATURES if f in model.weights]
    body = {
        "features": features,
        "weights": [round(model.weights[f], 6) for f in features],
        "bias": round(model.bias, 6),
        "threshold": round(model.threshold, 4),
        "means": [round(model.means.get(f, 0.0), 6) for f in features],
        **meta,
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def replay(scores: Sequence[EmotionScore], th: MotThresholds) -> tuple[list[dict[str, float]], int | None]:
    """Feed a conversation's scored customer turns through the policy as the worker does: the features
    after each turn, and the 1-based turn at which the verdict first became a moment of truth (None)."""
    view = ContactView(contact_id="replay", channel="chat")
    features: list[dict[str, float]] = []
    first: int | None = None
    for k, score in enumerate(scores, 1):
        view, _ = observe_turn(view, score.turn(k), th)
        features.append(trajectory_features(view))
        if first is None and detect(view, th).is_mot:
            first = k
    return features, first


@dataclass(frozen=True)
class ConversationOutcome:
    """How a detector did on one labelled conversation."""

    mot_turn: int | None
    flagged_turn: int | None

    @property
    def kind(self) -> str:
        """on_time (the labelled turn or the next), early, late, missed; routine: clean or false_flag."""
        if self.mot_turn is None:
            return "clean" if self.flagged_turn is None else "false_flag"
        if self.flagged_turn is None:
            return "missed"
        if self.flagged_turn < self.mot_turn:
            return "early"
        return "on_time" if self.flagged_turn <= self.mot_turn + 1 else "late"


def conversation_summary(outcomes: Sequence[ConversationOutcome]) -> dict[str, Any]:
    mot = [o for o in outcomes if o.mot_turn is not None]
    routine = [o for o in outcomes if o.mot_turn is None]
    kinds = [o.kind for o in mot]
    return {
        "mot_conversations": len(mot),
        "on_time": kinds.count("on_time"),
        "early": kinds.count("early"),
        "late": kinds.count("late"),
        "missed": kinds.count("missed"),
        "on_time_share": round(kinds.count("on_time") / len(mot), 4) if mot else None,
        "routine_conversations": len(routine),
        "routine_flagged": sum(o.kind == "false_flag" for o in routine),
        "routine_flagged_share": (
            round(sum(o.kind == "false_flag" for o in routine) / len(routine), 4) if routine else None
        ),
    }


def prf(gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, float | None]:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    fp = sum(p and not g for g, p in zip(gold, pred, strict=True))
    fn = sum(g and not p for g, p in zip(gold, pred, strict=True))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "precision": None if precision is None else round(precision, 4),
        "recall": None if recall is None else round(recall, 4),
        "f1": round(f1, 4),
    }


# Scores texts in the languages their contacts give, each after its contact's earlier customer turns when
# ``contexts`` is given: (texts, languages, contexts) -> one score per text
ScoreFn = Callable[[list[str], list[str], list[list[str]] | None], list[EmotionScore]]


def score_conversations(
    corpus: Corpus, score: ScoreFn
) -> tuple[dict[str, EmotionScore], dict[str, list[EmotionScore]]]:
    """Every single turn scored alone (text -> score), and every conversation's customer turns each scored
    after the turns before it (conversation id -> scores), as the worker scores a contact's turns."""
    langs = corpus.text_languages()
    texts = sorted(langs)
    alone = dict(zip(texts, score(texts, [langs[t] for t in texts], None), strict=True))
    flat: list[tuple[str, str, list[str]]] = [
        (c.id, x, list(c.customer_texts[:k]))
        for c in corpus.conversations
        for k, x in enumerate(c.customer_texts)
    ]
    scored = score([x for _, x, _ in flat], [langs[x] for _, x, _ in flat], [ctx for _, _, ctx in flat])
    convs: dict[str, list[EmotionScore]] = {c.id: [] for c in corpus.conversations}
    for (cid, _, _), s in zip(flat, scored, strict=True):
        convs[cid].append(s)
    return alone, convs


def evaluate_corpus(corpus: Corpus, score: ScoreFn, th: MotThresholds) -> dict[str, Any]:
    """Per language: turn-level AUROC of the per-turn probability, and the detector's verdict on each
    single turn (as a one-turn contact) and on each conversation replayed turn by turn, each turn scored
    after the turns before it. Every text is scored in its contact's language, as the worker scores it (the
    heads differ by language)."""
    return corpus_reports(corpus, score, th)[0]


def corpus_reports(
    corpus: Corpus, score: ScoreFn, th: MotThresholds
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``evaluate_corpus``'s report per language, and the same verdicts per category (``by_category``),
    from one scoring and one replay of every turn and conversation."""
    scores, in_conv = score_conversations(corpus, score)
    flagged = {t.text: replay([scores[t.text]], th)[1] is not None for t in corpus.turns}
    outcomes = {
        c.id: ConversationOutcome(c.mot_turn, replay(in_conv[c.id], th)[1]) for c in corpus.conversations
    }
    per_lang: dict[str, Any] = {}
    for lang in corpus.languages():
        turns = [t for t in corpus.turns if t.lang == lang]
        gold = [t.mot for t in turns]
        per_lang[lang] = {
            "turns": len(turns),
            "turn_auroc": round(auroc(gold, [scores[t.text].mot_prob for t in turns]), 4) if turns else None,
            **prf(gold, [flagged[t.text] for t in turns]),
            "conversations": conversation_summary(
                [outcomes[c.id] for c in corpus.conversations if c.lang == lang]
            ),
        }
    return per_lang, by_category(corpus, flagged, outcomes)


def by_category(
    corpus: Corpus, flagged: dict[str, bool], outcomes: dict[str, ConversationOutcome]
) -> dict[str, Any]:
    """Per category (moment-of-truth ones first, in the corpus's order): how many of its single turns the
    detector flags and how its conversations end. Where the errors sit says what to teach next: a language
    total hides that most misses share one boundary (a calm decision to leave after a grievance)."""
    order = {c: k for k, c in enumerate((*MOT_CATEGORIES, *ROUTINE_CATEGORIES))}
    names = {t.category for t in corpus.turns} | {c.category for c in corpus.conversations}
    out: dict[str, Any] = {}
    for cat in sorted(names, key=lambda c: (order.get(c, len(order)), c)):
        turns = [t for t in corpus.turns if t.category == cat]
        out[cat] = {
            "mot": cat in MOT_CATEGORIES,
            "turns": len(turns),
            "turns_flagged": sum(flagged[t.text] for t in turns),
            "conversations": conversation_summary(
                [outcomes[c.id] for c in corpus.conversations if c.category == cat]
            ),
        }
    return out


def probe_summary(probes: Corpus, score: ScoreFn, th: MotThresholds) -> dict[str, Any]:
    """Each probe as a one-turn contact in its language: how many moments of truth the detector flags, how
    many routine sentences it flags, and the sentences it gets wrong (they are few and worth reading)."""
    turns = list(probes.turns)
    scores = score([t.text for t in turns], [t.lang for t in turns], None)
    flagged = [replay([s], th)[1] is not None for s in scores]
    mot = [f for t, f in zip(turns, flagged, strict=True) if t.mot]
    routine = [f for t, f in zip(turns, flagged, strict=True) if not t.mot]
    return {
        "mot": len(mot),
        "mot_flagged": sum(mot),
        "mot_flagged_share": round(sum(mot) / len(mot), 4) if mot else None,
        "routine": len(routine),
        "routine_flagged": sum(routine),
        "wrong": [
            {"id": t.id, "mot": t.mot, "p": round(s.mot_prob, 3), "text": t.text}
            for t, s, f in zip(turns, scores, flagged, strict=True)
            if f != t.mot
        ],
    }
