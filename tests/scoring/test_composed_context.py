"""scripts/train_detector.py's composed context rows: a churn conversation's calm decision to leave after
another churn conversation's grievance, always inside one fold and one language, never from the test split."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from train_detector import composed_context_rows, fold_of

from router.scoring.corpus import Corpus, held_out_lines, load_corpus
from router.scoring.overlap import norm_text


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus()


@pytest.fixture(scope="module")
def train_dev(corpus: Corpus) -> Corpus:
    train, dev = corpus.split("train"), corpus.split("dev")
    return Corpus(train.turns + dev.turns, train.conversations + dev.conversations)


def test_each_leave_follows_another_conversations_grievance_in_its_fold_and_language(
    train_dev: Corpus,
) -> None:
    rows = composed_context_rows(train_dev, 8)
    churn = [c for c in train_dev.conversations if c.category == "churn_threat" and (c.mot_turn or 0) >= 2]
    leave_of = {c.customer_texts[c.mot_turn - 1]: c for c in churn}  # type: ignore[operator]
    prefix_of = {tuple(c.customer_texts[: c.mot_turn - 1]): c for c in churn}  # type: ignore[operator]
    assert len(rows) > 4 * len(churn)  # most groups hold enough other conversations
    for r in rows:
        leave, source = leave_of[r.text], prefix_of[r.earlier]
        assert r.mot == 1.0 and r.scenario == leave.scenario
        assert source.id != leave.id and source.lang == leave.lang
        assert fold_of(source.scenario) == fold_of(leave.scenario)
    per_leave = {r.text: sum(1 for x in rows if x.text == r.text) for r in rows}
    assert max(per_leave.values()) <= 8


def test_same_seed_same_rows_and_none_when_off(corpus: Corpus) -> None:
    assert composed_context_rows(corpus, 4, seed=3) == composed_context_rows(corpus, 4, seed=3)
    assert composed_context_rows(corpus, 4, seed=3) != composed_context_rows(corpus, 4, seed=4)
    assert composed_context_rows(corpus, 0) == []


def test_no_test_line_is_composed(corpus: Corpus) -> None:
    test = held_out_lines(corpus)
    rows = composed_context_rows(corpus, 8)
    assert not any(norm_text(t) in test for r in rows for t in (r.text, *r.earlier))
