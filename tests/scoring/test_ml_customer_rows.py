"""The multilingual intensity head's customer messages (scripts/train_heads.py ``customer_rows``): which
corpus turns it reads for negative emotion, from which split, and how the blocks line up with their targets
and their other backend's copies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from router.scoring.corpus import load_corpus

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from multilingual_data import CALM_STYLES, NOT_NEGATIVE_CATEGORIES, corpus_negativity  # noqa: E402
from train_heads import ML_CORPUS_REPEAT, PROBLEM_TARGET, customer_rows, pair_rows, with_blocks  # noqa: E402

CORPUS = load_corpus(ROOT / "models" / "corpus")


def test_the_corpus_is_read_for_how_the_customer_feels_outside_english_and_train_only() -> None:
    rows = corpus_negativity(CORPUS, "train")
    by_text = {t.text: t for t in CORPUS.split("train").turns}
    assert len(rows) > 2_000 and {lang for _, _, lang in rows} == set(CORPUS.languages()) - {"en"}
    test_texts = {t.text for t in CORPUS.split("test").turns}
    for text, negative, lang in rows:
        turn = by_text[text]
        assert turn.lang == lang != "en" and text not in test_texts
        if negative:
            assert turn.category == "mild_annoyance" or (turn.mot and not CALM_STYLES & set(turn.styles))
        else:
            assert turn.category in NOT_NEGATIVE_CATEGORIES
    # a calm moment of truth says what is at stake, not how the customer feels: it is left out
    calm = [t for t in CORPUS.split("train").turns if t.mot and "no_negative_words" in t.styles]
    assert calm and not {t.text for t in calm} & {text for text, _, _ in rows}
    shares = np.mean([neg for _, neg, _ in rows])
    assert 0.3 < shares < 0.7


def test_blocks_follow_the_multilingual_rows_with_their_targets_and_backend_copies() -> None:
    intents = [
        ("my card was declined", "banking77:declined_card_payment", "none"),
        ("hi", "clinc150:greeting", "none"),
    ]

    def keep_all(name: str, rows: list[Any], text: Any) -> list[Any]:
        return rows

    blocks = customer_rows(intents, CORPUS, keep_all)
    assert [label for label, _, _ in blocks] == ["intents_train", "ml_corpus_negativity"]
    assert list(blocks[0][2]) == [PROBLEM_TARGET, 0.0]
    assert len(blocks[1][1]) == ML_CORPUS_REPEAT * len(corpus_negativity(CORPUS, "train"))

    copies, n_ml, dim = 2, 3, 4
    x_ml = np.arange(n_ml * copies * dim, dtype=np.float32).reshape(n_ml * copies, dim)
    y_ml = np.ones((n_ml * copies, 1), np.float32)
    held = np.array([True, False, False] * copies)
    small = [("a", ["x", "y"], np.array([0.35, 0.0])), ("b", ["z"], np.array([1.0]))]

    def emb(label: str, texts: list[str]) -> np.ndarray:  # one run per backend, as train_heads' emb
        return np.concatenate([np.full((len(texts), dim), 100.0 * (c + 1)) for c in range(copies)])

    x, y, h, sizes = with_blocks(x_ml, y_ml, held, n_ml, small, emb, copies)
    assert sizes == [3, 2, 1] and len(x) == len(y) == len(h) == 12
    assert list(y[6:, 0]) == [0.35, 0.0, 0.35, 0.0, 1.0, 1.0]
    assert not h[6:].any() and h[:6].sum() == 2
    first, other = pair_rows(sizes, copies)
    assert np.all(x[first[3:], 0] == 100.0) and np.all(x[other[3:], 0] == 200.0)  # int8 paired with torch
    assert np.all(y[first] == y[other])
