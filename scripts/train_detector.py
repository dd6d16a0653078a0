#!/usr/bin/env python
"""Fit the conversation-level moment-of-truth detector on the corpus and choose its threshold on dev.

    .venv/bin/python scripts/train_detector.py [--out models] [--cache .cache/embeddings]

1. Every customer turn of the corpus is scored by the shipped scorer (the heads in models/, on the default
   int8 encoder), as the worker would score it.
2. Each train conversation is replayed turn by turn through the routing policy (router.domain.mot.
   observe_turn); the trajectory features after turn k (router.domain.mot.FEATURES) form one row, labelled 1
   from the labelled moment-of-truth turn on (a verdict is sticky). Each single turn is a one-turn contact.
3. A logistic regression per regularisation strength C; for each, the threshold is swept on the dev split:
   the pair kept maximises (dev conversations flagged on the labelled turn or the next) + (dev single-turn
   F1) among those that flag at most 2% of dev routine conversations.
The test split is never read. Writes models/detector.json (weights, threshold, dev figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.domain.mot import FEATURES, MotModel, MotThresholds  # noqa: E402
from router.scoring.corpus import Corpus, CorpusConversation, load_corpus  # noqa: E402
from router.scoring.detector import (  # noqa: E402
    ConversationOutcome,
    conversation_summary,
    prf,
    replay,
    save_mot_model,
)
from router.scoring.protocol import EmotionScore  # noqa: E402
from router.scoring.transformer import TransformerScorer, embed_cached  # noqa: E402

MAX_ROUTINE_FLAGGED = 0.02
THRESHOLDS = [round(x, 3) for x in np.arange(0.20, 0.951, 0.01)]


def score_corpus(
    scorer: TransformerScorer, corpus: Corpus, cache: Path, label: str
) -> dict[str, EmotionScore]:
    texts = sorted(
        {t.text for t in corpus.turns} | {x for c in corpus.conversations for x in c.customer_texts}
    )
    emb = embed_cached(scorer.encoder, texts, cache, label)
    return dict(zip(texts, scorer.score_embeddings(emb, texts), strict=True))


def rows(corpus: Corpus, scores: dict[str, EmotionScore]) -> tuple[np.ndarray, np.ndarray]:
    plain = MotThresholds()  # features do not depend on the model
    xs: list[list[float]] = []
    ys: list[float] = []
    for c in corpus.conversations:
        feats, _ = replay([scores[t] for t in c.customer_texts], plain)
        for k, f in enumerate(feats, 1):
            xs.append([f[n] for n in FEATURES])
            ys.append(float(c.mot_turn is not None and k >= c.mot_turn))
    for t in corpus.turns:
        feats, _ = replay([scores[t.text]], plain)
        xs.append([feats[0][n] for n in FEATURES])
        ys.append(float(t.mot))
    return np.array(xs), np.array(ys)


def outcomes(
    convs: tuple[CorpusConversation, ...], scores: dict[str, EmotionScore], model: MotModel
) -> list[ConversationOutcome]:
    th = MotThresholds(model=model)
    return [
        ConversationOutcome(c.mot_turn, replay([scores[t] for t in c.customer_texts], th)[1]) for c in convs
    ]


def turn_verdicts(corpus: Corpus, scores: dict[str, EmotionScore], model: MotModel) -> list[bool]:
    th = MotThresholds(model=model)
    return [replay([scores[t.text]], th)[1] is not None for t in corpus.turns]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "embeddings")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    corpus = load_corpus()
    train, dev = corpus.split("train"), corpus.split("dev")
    scorer = TransformerScorer(heads_dir=str(args.out), cache_size=0)
    scores = score_corpus(scorer, train, args.cache, "detector_train")
    scores |= score_corpus(scorer, dev, args.cache, "detector_dev")
    x, y = rows(train, scores)
    gold_dev = [t.mot for t in dev.turns]

    best: tuple[float, MotModel, dict[str, object]] | None = None
    for c in (0.1, 0.3, 1.0, 3.0, 10.0):
        lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y)
        weights = dict(zip(FEATURES, (float(w) for w in lr.coef_[0]), strict=True))
        means = dict(zip(FEATURES, (float(m) for m in x.mean(axis=0)), strict=True))
        for threshold in THRESHOLDS:
            model = MotModel(weights, float(lr.intercept_[0]), threshold, means)
            conv = conversation_summary(outcomes(dev.conversations, scores, model))
            turn = prf(gold_dev, turn_verdicts(dev, scores, model))
            if (conv["routine_flagged_share"] or 0.0) > MAX_ROUTINE_FLAGGED:
                continue
            objective = float(conv["on_time_share"] or 0.0) + float(turn["f1"] or 0.0)
            if best is None or objective > best[0]:
                best = (objective, model, {"C": c, "dev_conversations": conv, "dev_turns": turn})
    if best is None:
        print("no threshold keeps dev routine conversations under the cap", file=sys.stderr)
        return 1
    _, model, chosen = best
    meta = {
        "trained_on": "models/corpus train split: conversation prefixes and single turns "
        f"({len(y)} rows, {int(y.sum())} positive); threshold chosen on the dev split",
        "scorer": f"{scorer.encoder.encoder_id}, {scorer.backend} backend, heads {scorer.heads_sha256[:16]}",
        "selection": f"max dev on-time share + dev turn F1 with dev routine flagged <= {MAX_ROUTINE_FLAGGED}",
        **chosen,
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    path = save_mot_model(model, meta, args.out)
    print(json.dumps({"threshold": model.threshold, **chosen}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
