#!/usr/bin/env python
"""Fit the moment-of-truth head and the conversation-level detector on the corpus's train and dev splits.

    .venv/bin/python scripts/train_detector.py [--out models] [--cache .cache/embeddings]

Run after scripts/train_heads.py (the other heads) and before scripts/export_onnx.py (the quality stamp).

1. Per-turn rows of the train and dev splits (router.scoring.corpus.training_rows) are embedded by the
   default int8 encoder. The moment-of-truth head (linear, L2 as scripts/train_heads.py chose on dev) is
   fitted five times, each time leaving one fold of scenarios out: every row gets an out-of-fold
   probability, what the head says of text it has not seen.
2. Train and dev conversations are replayed turn by turn through the routing policy (router.domain.mot.
   observe_turn) with those probabilities and the shipped heads' intensity, topic and wants-a-human; the
   trajectory features after turn k (router.domain.mot.FEATURES) are one row, labelled 1 from the labelled
   moment-of-truth turn on (a verdict is sticky); each single turn is a one-turn contact.
3. The conversation model (logistic regression, C chosen with it) is fitted on the train split's rows and
   its threshold swept on the dev split's, each candidate judged on the int8 and on the torch backend's
   scores and counted as good as the worse of the two. The issue's conversation targets are constraints:
   among the pairs that flag >= 95% of dev moment-of-truth conversations on the labelled turn or the next
   and <= 2% of dev routine conversations ever, the one with the best dev single-turn F1 is kept. Only when
   no pair meets both does the objective decide: dev single-turn F1 + the on-time share - 2 x the routine
   flagged share (a routine contact sent to an empathetic agent costs less than a missed moment of truth,
   but a detector that flags mildly annoyed conversations is useless: a flag is sticky for the rest of the
   contact, and most contacts are routine).
4. The head is fitted once more on all train + dev rows, embedded by both backends (int8 and torch fp32)
   with a penalty on answering the two differently, and written into models/heads.safetensors; the
   detector goes to models/detector.json. The test split is never read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from handwritten import junk_lines  # noqa: E402
from train_heads import MOT_L2, length_weights, pair_rows, relabel, train_head  # noqa: E402

from router.domain.mot import FEATURES, MotModel, MotThresholds  # noqa: E402
from router.scoring.corpus import Corpus, CorpusConversation, TrainingRow, load_corpus, training_rows  # noqa: E402
from router.scoring.detector import (  # noqa: E402
    ConversationOutcome,
    conversation_summary,
    prf,
    replay,
    save_mot_model,
)
from router.scoring.evaluate import evaluation_index  # noqa: E402
from router.scoring.heads import LinearHead, load_heads, save_heads  # noqa: E402
from router.scoring.measures import stable_fraction  # noqa: E402
from router.scoring.protocol import EmotionScore  # noqa: E402
from router.scoring.transformer import Encoder, TransformerScorer, embed_cached  # noqa: E402

FOLDS = 5
# the intensity and topic heads' weight (scripts/train_heads.py). On the all-int8 graph the head needed 1600
# to pass the export gate, which flattened it (dev AUROC 0.981 against 0.993, fitted on train); the export
# now keeps the two feed-forward outputs that carried the int8 error in fp32 (scripts/export_onnx.py), and
# at 100 the head's mean |int8 - torch| on the gate texts is 0.014 (gate: 0.02). On an encoder tuned four
# epochs one acceptance text kept a 0.15-0.17 gap at 100-400 (models/MODEL_CARD.md), which the tuning's own
# int8 term fixed; on the twelve-round encoder the same text was 0.102 apart at 100 and 0.092 at 200, under
# tests/scoring/test_onnx_backend.py's 0.1, hence 200 (dev figures of the two fits: the model card). With
# --balance-length "what are your opening hours" was 0.111 apart at 200, 0.094 at 400, 0.064 at 800
CONSISTENCY = 200.0
FALSE_FLAG_COST = 2.0
# the conversation-level targets, met on dev before single-turn F1 counts
ON_TIME_TARGET, ROUTINE_FLAGGED_TARGET = 0.95, 0.02
# finer near the top, where a balanced logistic model's verdicts on confident heads crowd (the nine-round
# release chose 0.94, next to the old grid's end at 0.95)
THRESHOLDS = [round(x, 3) for x in (*np.arange(0.20, 0.951, 0.01), *np.arange(0.955, 0.991, 0.005))]

Scores = dict[str, EmotionScore]


def fit_head(
    x: np.ndarray, x_torch: np.ndarray, y: np.ndarray, consistency: float, w: np.ndarray
) -> LinearHead:
    """The moment-of-truth head on the int8 and torch fp32 embeddings of the same rows, paying for answering
    the two differently: the probability must not depend on the backend (the export's gate checks it)."""
    n = len(y)
    return train_head(
        np.concatenate([x, x_torch]),
        np.concatenate([y, y]).astype(np.float32)[:, None],
        np.concatenate([w, w]).astype(np.float32),
        "sigmoid",
        l2=MOT_L2,
        steps=600,
        pairs=pair_rows([n], 2),
        consistency=consistency,
    )


def out_of_fold(
    rows: list[TrainingRow],
    x: np.ndarray,
    x_torch: np.ndarray,
    consistency: float,
    w: np.ndarray,
) -> list[dict[str, float]]:
    """Per backend (int8, torch): text -> the head's probability when the text's scenario was left out of
    its fit (each fit made exactly as the final one, so the detector learns the final head's scale)."""
    fold = np.array([int(stable_fraction(r.scenario) * FOLDS) for r in rows])
    y = np.array([r.mot for r in rows], np.float32)
    probs = [np.zeros(len(rows), np.float32), np.zeros(len(rows), np.float32)]
    for k in range(FOLDS):
        fit = fold != k
        head = fit_head(x[fit], x_torch[fit], y[fit], consistency, w[fit])
        probs[0][~fit], probs[1][~fit] = head(x[~fit])[:, 0], head(x_torch[~fit])[:, 0]
    out: list[dict[str, float]] = []
    for prob in probs:
        by_text: dict[str, list[float]] = {}
        for r, p in zip(rows, prob, strict=True):
            by_text.setdefault(r.text, []).append(float(p))
        out.append({t: float(np.mean(ps)) for t, ps in by_text.items()})
    return out


def score_texts(scorer: TransformerScorer, corpus: Corpus, cache: Path, oof: dict[str, float]) -> Scores:
    """The shipped heads' scores, with the moment-of-truth probability replaced by the out-of-fold one."""
    # each text in the language its contact gives, as the worker scores it (not one detected from the text)
    langs = corpus.text_languages()
    texts = sorted(langs)
    emb = embed_cached(scorer.encoder, texts, cache, "detector_scores")
    out: Scores = {}
    scored = scorer.score_embeddings(emb, texts, [langs[t] for t in texts])
    for text, s in zip(texts, scored, strict=True):
        # a text left out of the training rows (said word for word in a test conversation) keeps the head's
        out[text] = dataclasses.replace(s, mot_prob=oof.get(text, s.mot_prob))
    return out


def feature_rows(corpus: Corpus, scores: Scores) -> tuple[np.ndarray, np.ndarray]:
    plain = MotThresholds()  # the features do not depend on the model
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
    convs: tuple[CorpusConversation, ...], scores: Scores, model: MotModel
) -> list[ConversationOutcome]:
    th = MotThresholds(model=model)
    return [
        ConversationOutcome(c.mot_turn, replay([scores[t] for t in c.customer_texts], th)[1]) for c in convs
    ]


def choose(train: Corpus, dev: Corpus, backends: list[Scores]) -> tuple[MotModel, dict[str, object]]:
    """The model is fitted on the int8 backend's features; each threshold is judged on both backends and
    counts as good as its worse one, so that the verdict does not hang on which backend runs."""
    from sklearn.linear_model import LogisticRegression

    x, y = feature_rows(train, backends[0])
    gold_dev = [t.mot for t in dev.turns]
    # key: (meets both conversation targets on both backends; then its F1 if it does, else the objective)
    best: tuple[tuple[bool, float], MotModel, dict[str, object]] | None = None
    for c in (0.1, 0.3, 1.0, 3.0, 10.0):
        lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y)
        weights = dict(zip(FEATURES, (float(w) for w in lr.coef_[0]), strict=True))
        means = dict(zip(FEATURES, (float(m) for m in x.mean(axis=0)), strict=True))
        for threshold in THRESHOLDS:
            model = MotModel(weights, float(lr.intercept_[0]), threshold, means)
            judged = [_judge(dev, scores, model, gold_dev) for scores in backends]
            meets = all(_meets_targets(conv) for _, conv, _ in judged)
            f1 = min(float(turn["f1"] or 0.0) for _, _, turn in judged)
            key = (meets, f1 if meets else min(j[0] for j in judged))
            if best is None or key > best[0]:
                _, conv, turn = judged[0]
                chosen = {"C": c, "dev_conversations": conv, "dev_turns": turn, "dev_meets_targets": meets}
                best = (key, model, chosen)
    assert best is not None
    return best[1], {**best[2], "train_rows": len(y), "train_positive_rows": int(y.sum())}


def _meets_targets(conv: dict[str, Any]) -> bool:
    return (
        float(conv["on_time_share"] or 0.0) >= ON_TIME_TARGET
        and float(conv["routine_flagged_share"] or 0.0) <= ROUTINE_FLAGGED_TARGET
    )


def _judge(
    dev: Corpus, scores: Scores, model: MotModel, gold: list[bool]
) -> tuple[float, dict[str, Any], dict[str, float | None]]:
    conv = conversation_summary(outcomes(dev.conversations, scores, model))
    th = MotThresholds(model=model)
    turn = prf(gold, [replay([scores[t.text]], th)[1] is not None for t in dev.turns])
    objective = (
        float(turn["f1"] or 0.0)
        + float(conv["on_time_share"] or 0.0)
        - FALSE_FLAG_COST * float(conv["routine_flagged_share"] or 0.0)
    )
    return objective, conv, turn


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "embeddings")
    ap.add_argument(
        "--consistency",
        type=float,
        default=CONSISTENCY,
        help="weight of the int8-vs-torch difference in the moment-of-truth head's loss",
    )
    ap.add_argument(
        "--balance-length",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="weigh the moment-of-truth head's classes equally within each word-count band (tried, not "
        "shipped: models/MODEL_CARD.md)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    corpus = load_corpus()
    train, dev = corpus.split("train"), corpus.split("dev")
    scorer = TransformerScorer(heads_dir=str(args.out), cache_size=0, backend="onnx")
    # a corpus line that an evaluation set also holds ("Great, thank you.") trains nothing
    held_out = evaluation_index(args.data)
    rows = held_out.drop(training_rows(corpus, "train") + training_rows(corpus, "dev"), lambda r: r.text)
    rows += [TrainingRow(t, 0.0, "none", 0.0, f"junk-{k}") for k, t in enumerate(junk_lines())]
    x = embed_cached(scorer.encoder, [r.text for r in rows], args.cache, "detector_rows")
    x_torch = embed_cached(Encoder(backend="torch"), [r.text for r in rows], args.cache, "detector_rows")
    y_oof = np.array([r.mot for r in rows])
    w = (
        length_weights([r.text for r in rows], y_oof)
        if args.balance_length
        else np.ones(len(rows), np.float32)
    )
    oof = out_of_fold(rows, x, x_torch, args.consistency, w)
    oof_auroc = _auroc(y_oof, np.array([oof[0][r.text] for r in rows]))
    both = Corpus(train.turns + dev.turns, train.conversations + dev.conversations)
    torch_scorer = TransformerScorer(heads_dir=str(args.out), cache_size=0, backend="torch")
    backends = [
        score_texts(scorer, both, args.cache, oof[0]),
        score_texts(torch_scorer, both, args.cache, oof[1]),
    ]
    model, chosen = choose(train, dev, backends)

    heads = load_heads(args.out)
    final = fit_head(x, x_torch, y_oof, args.consistency, w)
    meta = dict(heads.meta)
    meta.setdefault("trained_on", {})["mot"] = (
        f"models/corpus train + dev splits ({len(rows)} turns: single turns, conversation turns up to the "
        "labelled one), scripts/train_detector.py"
    )
    meta.setdefault("dev_metrics", {})["mot_out_of_fold_auroc"] = round(oof_auroc, 4)
    save_heads(args.out, {**heads.heads, "mot": relabel(final, ("moment_of_truth",))}, meta)

    detector_meta = {
        "trained_on": "models/corpus: conversation prefixes and single turns of the train split, with "
        f"{FOLDS}-fold out-of-fold moment-of-truth probabilities; threshold chosen on the dev split",
        "scorer": f"{scorer.encoder.encoder_id}, {scorer.backend} backend",
        "selection": f"over C and threshold, each judged on both backends (int8, torch) as the worse: the "
        f"best dev turn F1 among pairs with dev on-time share >= {ON_TIME_TARGET} and dev routine flagged "
        f"share <= {ROUTINE_FLAGGED_TARGET}; when none meets both, the best dev turn F1 + on-time share - "
        f"{FALSE_FLAG_COST} x routine flagged share",
        "mot_head_out_of_fold_auroc": round(oof_auroc, 4),
        **chosen,
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    path = save_mot_model(model, detector_meta, args.out)
    print(json.dumps({"threshold": model.threshold, **detector_meta}, indent=2))
    print(f"wrote {path} and the mot head in {args.out}/heads.safetensors")
    return 0


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from router.scoring.measures import auroc

    return auroc(y, s)


if __name__ == "__main__":
    raise SystemExit(main())
