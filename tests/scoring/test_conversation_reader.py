"""scripts/conversation_reader.py learns from the corpus train split only and reads the dev conversations
turn by turn; its two readings differ only in the turns before the one read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from conversation_reader import dev_prefixes, train_rows

from router.scoring.corpus import CONTEXT_SEP, Corpus, held_out_lines, load_corpus
from router.scoring.overlap import norm_text


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus()


def test_train_rows_come_from_the_train_split_up_to_the_labelled_turn(corpus: Corpus) -> None:
    train = corpus.split("train")
    lines = {t.text for t in train.turns} | {x for c in train.conversations for x in c.customer_texts}
    test = held_out_lines(corpus)
    context, alone = train_rows(corpus, "context"), train_rows(corpus, "alone")
    every = len(train.turns) + sum(c.mot_turn or len(c.customer_texts) for c in train.conversations)
    assert every - 200 < len(context) <= len(alone) < every  # a line a test line repeats leaves its rows
    assert sum(y for _, y in context) > 0.95 * (
        sum(t.mot for t in train.turns) + sum(c.mot_turn is not None for c in train.conversations)
    )
    by_turn = dict(alone)
    for joined, _ in context:
        parts = joined.split(CONTEXT_SEP)
        assert all(p in lines for p in parts) and not any(norm_text(p) in test for p in parts)
        assert parts[-1] in by_turn


def test_dev_prefixes_read_every_dev_conversation_turn_by_turn(corpus: Corpus) -> None:
    dev = corpus.split("dev").conversations
    context, alone = dev_prefixes(corpus, "context"), dev_prefixes(corpus, "alone")
    assert len(context) == len(alone) == sum(len(c.customer_texts) for c in dev)
    for (joined, i, k), (turn, j, m) in zip(context, alone, strict=True):
        assert (i, k) == (j, m) and turn == dev[i].customer_texts[k - 1]
        assert joined == CONTEXT_SEP.join(dev[i].customer_texts[:k])
