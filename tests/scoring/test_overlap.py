"""Evaluation text never trains: the normalised-text check the training scripts run, on the real data."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from router.scoring.evaluate import evaluation_index
from router.scoring.overlap import EvalIndex, NearIndex, norm_text, word_set

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def test_normalisation_meets_case_accents_and_punctuation() -> None:
    assert norm_text("Can't believe it!! @united https://t.co/x") == norm_text("cant   believe IT")
    assert norm_text("Mi-au furat cardul și") == norm_text("mi au furat cardul si")
    index = EvalIndex(["My flight was cancelled, again!", "ok"])
    assert "my FLIGHT was cancelled again" in index
    assert "ok" not in index  # too short to count as leakage
    rows = [("my flight was cancelled again", 1), ("a different sentence entirely", 0)]
    assert index.drop(rows, lambda r: r[0]) == [rows[1]]


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the project")
def test_training_sets_lose_every_evaluation_line() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from multilingual_data import load_multilingual

    from router.scoring.corpus import load_corpus, training_rows

    index = evaluation_index(DATA)
    rows = load_multilingual(DATA)
    kept = index.drop(rows, lambda r: r[0])
    # the audit's finding: XED Finnish projections held 287 lines of the Finnish evaluation slice
    finnish_dropped = sum(1 for r in rows if r[2] == "xed_fi" and r[0] in index)
    assert finnish_dropped >= 200
    assert not [r for r in kept if r[0] in index]
    # the corpus is the project's own text: only stock phrases ("Great, thank you.") meet an evaluation
    # set, and scripts/train_heads.py and train_detector.py drop them through the same index
    corpus = load_corpus()
    for split in ("train", "dev"):
        rows = training_rows(corpus, split)
        assert len(rows) - len(index.drop(rows, lambda r: r.text)) <= 5


def test_near_index_finds_an_anonymised_copy() -> None:
    test_tweet = "Ion Popescu condamnat pentru fraudă în Italia, adus în țară. Rușine!"
    index = NearIndex([test_tweet, "Alt text care nu are legătură cu nimic aici"])
    copy = "<|PERSON|> condamnat pentru frauda in Italia, adus in tara. Rusine!"
    assert copy not in EvalIndex([test_tweet])  # the exact check misses it
    assert index.nearest(copy) >= index.min_jaccard  # 7 of its 9 words
    assert index.nearest("Vremea de mâine: ploi slabe în Moldova") < 0.2
    rows = [(copy, True), ("Vremea de mâine: ploi slabe în Moldova", False)]
    assert index.drop(rows, lambda r: r[0]) == [rows[1]]
    assert word_set("<|URL|> Țară, ȚARĂ!") == frozenset({"tara"})


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the project")
def test_more_romanian_rows_hold_no_copy_of_the_romanian_evaluation_set() -> None:
    """RED v2 re-annotates RED v1's tweets with names replaced: its copies of RED v1 test tweets (the
    `router evaluate` Romanian set) must not train the multilingual head."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from multilingual_data import load_multilingual

    red_test = DATA / "red_romanian" / "REDv1" / "test.csv"
    with red_test.open(encoding="utf-8") as f:
        near = NearIndex(r["Tweet"] for r in csv.DictReader(f))
    extra = [r for r in load_multilingual(DATA) if r[2] == "red_more"]
    assert len(extra) >= 1000
    assert max(near.nearest(t) for t, _, _ in extra) < near.min_jaccard
    assert not [r for r in load_multilingual(DATA, more_romanian=False) if r[2] == "red_more"]
