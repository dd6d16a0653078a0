"""The multilingual intensity head's lexical partner (router/scoring/lexical.py, scripts/train_lexical.py)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from router.scoring.lexical import (
    LEXICAL_FILE,
    LexicalModel,
    bucket_counts,
    char_ngrams,
    load_lexical,
    save_lexical,
)
from router.scoring.overlap import EvalIndex, norm_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "scripts"))

TEXTS = [
    "Hyvä on, mä lähden!  Ääh",
    "a bb ccc dddd eeeee ffffff",
    "Μυρίζει γκάζι\tστην κουζίνα 😡",
    "x",
    "",
    "Me robaron la tarjeta y alguien está vaciando mi cuenta",
]


def _model(buckets: int = 64, mixes: dict[str, float] | None = None) -> LexicalModel:
    rng = np.random.default_rng(0)
    return LexicalModel(
        idf=rng.uniform(1, 3, buckets).astype(np.float32),
        coef=rng.normal(0, 2, buckets).astype(np.float32),
        bias=-0.3,
        ngram_min=2,
        ngram_max=5,
        mixes={"fi": 0.5} if mixes is None else mixes,
        meta={"note": "test"},
    )


def test_ngrams_are_scikit_learns_char_wb() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    for text in TEXTS:
        assert Counter(char_ngrams(text, 2, 5)) == Counter(analyzer(text)), text


def test_one_text_at_a_time_reads_as_the_training_matrix() -> None:
    from train_lexical import counts_matrix, tfidf

    model = _model(buckets=1 << 10)
    x = tfidf(counts_matrix(TEXTS, model.buckets), model.idf).toarray()
    for row, (idx, w) in zip(x, model.rows(TEXTS), strict=True):
        dense = np.zeros(model.buckets, np.float32)
        dense[idx] = w
        np.testing.assert_allclose(row, dense, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.logits(TEXTS), x @ model.coef + model.bias, rtol=1e-4, atol=1e-5)
    assert model.logits([""])[0] == pytest.approx(model.bias)  # no n-gram: the bias alone
    # " a", "ab", "b ", " ab", "ab ", " ab ": a word shorter than n gives its padded self once, then stops
    assert sum(bucket_counts("ab", 2, 5, 1 << 16).values()) == 6


def test_the_mix_is_on_the_logit_scale_and_per_language() -> None:
    head = np.array([0.2, 0.9, 0.7], np.float32)
    texts = ["Estou tão triste", "Olen niin vihainen", "Μυρίζει γκάζι"]
    langs = ["pt", "fi", "el"]
    np.testing.assert_allclose(_model(mixes={}).combine(head, texts, langs), head, atol=1e-6)
    model = _model(mixes={"pt": 0.4, "fi": 1.0})
    got = model.combine(head, texts, langs)
    z = np.array([0.6 * np.log(0.25), 0.0]) + np.array([0.4, 1.0]) * model.logits(texts[:2])
    np.testing.assert_allclose(got[:2], 1 / (1 + np.exp(-z)), atol=1e-5)
    assert got[2] == head[2]  # a language with no mix keeps the head's reading


def test_round_trip_and_refusals(tmp_path: Path) -> None:
    assert load_lexical(tmp_path / LEXICAL_FILE) is None
    model = _model(mixes={"ro": 0.3, "fi": 0.5})
    save_lexical(tmp_path / LEXICAL_FILE, model)
    back = load_lexical(tmp_path / LEXICAL_FILE)
    assert back is not None
    assert back.mixes == pytest.approx({"fi": 0.5, "ro": 0.3})
    assert back.meta == {"note": "test"} and back.bias == pytest.approx(-0.3)
    np.testing.assert_allclose(back.logits(TEXTS), model.logits(TEXTS), rtol=1e-6)
    save_lexical(tmp_path / "bad.safetensors", _model(mixes={"de": 1.5}))
    with pytest.raises(ValueError, match="outside"):
        load_lexical(tmp_path / "bad.safetensors")


@pytest.mark.skipif(not (DATA / "xed").exists(), reason="../shared/data is not beside the project")
def test_no_evaluation_or_dev_line_trains_it() -> None:
    from train_lexical import dev_files, training_rows

    from router.scoring.corpus import load_corpus
    from router.scoring.evaluate import load_languages

    corpus = load_corpus(ROOT / "models" / "corpus")
    dev = dev_files(DATA, corpus)
    rows, n_own = training_rows(DATA, corpus, dev)
    kept = {norm_text(t) for t, _, _ in rows}
    assert len(rows) > 50_000 and n_own > 2_000 and len(dev["xed_fi_dev_slice"][0]) > 1_000
    assert not kept & {norm_text(t.text) for t in corpus.split("test").turns}
    assert not kept & {norm_text(t) for texts, _ in dev.values() for t in texts}
    # the project's overlap rule (router.scoring.overlap.EvalIndex: a normalised text of a few characters,
    # "Hitto!", is too common to say a line was copied)
    for code, task in load_languages(DATA).items():
        index = EvalIndex(task.texts)
        assert not [t for t, _, _ in rows if t in index], code


def test_each_language_takes_its_mix_from_its_own_two_dev_files() -> None:
    from train_lexical import choose_mixes

    def files(fi_public: float, fi_own: float, el_own: float) -> dict[str, float]:
        return {"xed_fi_dev_slice": fi_public, "corpus_dev_fi": fi_own, "corpus_dev_el": el_own}

    # Finnish: its public file gains more than its corpus file loses at 0.5, not at 1.0; Greek has no
    # public file, so however its corpus file reads it gets no mix
    by_mix = {0.0: files(0.80, 0.70, 0.70), 0.5: files(0.86, 0.68, 0.90), 1.0: files(0.88, 0.50, 0.95)}
    mixes, score = choose_mixes(by_mix)
    assert mixes == {"fi": 0.5}
    assert score == pytest.approx((0.86 + 0.68) / 2)
    assert choose_mixes({0.0: files(0.8, 0.7, 0.7), 0.5: files(0.8, 0.7, 0.9)})[0] == {"fi": 0.0}
