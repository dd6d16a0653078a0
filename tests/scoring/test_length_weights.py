"""scripts/train_detector.py --balance-length's row weights (scripts/train_heads.py): within each word-count
band both classes weigh the same, so length stops being a cue."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from train_heads import LENGTH_BANDS_WORDS, LENGTH_WEIGHT_RANGE, length_weights


def _texts(words: int, n: int) -> list[str]:
    return [" ".join(["word"] * words)] * n


def test_each_band_weighs_its_two_classes_equally() -> None:
    # short lines mostly routine, long ones mostly moments of truth: the corpus's skew, exaggerated
    texts = _texts(4, 30) + _texts(4, 10) + _texts(40, 8) + _texts(40, 32)
    y = np.array([0.0] * 30 + [1.0] * 10 + [0.0] * 8 + [1.0] * 32)
    w = length_weights(texts, y)
    assert w.dtype == np.float32 and np.isclose(w.mean(), 1.0)
    short, long = np.arange(40), np.arange(40, 80)
    for band in (short, long):
        routine, moment = band[y[band] == 0], band[y[band] == 1]
        assert np.isclose(w[routine].sum(), w[moment].sum(), rtol=1e-5)
    # the rarer class of a band weighs more per row than the commoner one
    assert w[35] > w[0] and w[40] > w[79]


def test_balanced_bands_keep_equal_weights_and_extremes_are_clipped() -> None:
    texts = _texts(10, 20) + _texts(30, 20)
    y = np.array(([0.0] * 10 + [1.0] * 10) * 2)
    assert np.allclose(length_weights(texts, y), 1.0)
    # one routine line among 199 long moments of truth would weigh 100x: clipped to the range, renormalised
    texts = _texts(50, 200) + _texts(5, 200)
    y = np.array([0.0] + [1.0] * 199 + [0.0] * 100 + [1.0] * 100)
    w = length_weights(texts, y)
    lo, hi = LENGTH_WEIGHT_RANGE
    assert w.max() / w.min() <= hi / lo + 1e-6
    assert tuple(sorted(LENGTH_BANDS_WORDS)) == LENGTH_BANDS_WORDS
