"""Fixtures shared by the simulator tests."""

from __future__ import annotations

import pytest

from router.scoring.corpus import Corpus, load_corpus


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    c = load_corpus()
    if not c.conversations:
        pytest.skip("models/corpus not present")
    return c
