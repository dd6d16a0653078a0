"""scripts/finetune_e5.py's lower-layer states: the batches the tuning learns from (the documented
reproduce step ran into an empty batch without --context-rows)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from router.scoring.transformer import find_onnx_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(find_onnx_model() is None, reason="no ONNX encoder: run scripts/export_onnx.py"),
]


@pytest.fixture(scope="module")
def lower():  # type: ignore[no-untyped-def]
    from finetune_e5 import Lower

    from router.scoring.e5 import ensure_e5

    return Lower(ensure_e5(), 4, find_onnx_model())


def test_no_texts_give_no_batches(lower) -> None:  # type: ignore[no-untyped-def]
    assert lower.states([]) == []
    assert lower.states([], offset=7, keep_end=True) == []


def test_batches_cover_every_text_once_from_the_offset(lower) -> None:  # type: ignore[no-untyped-def]
    texts = ["my card was stolen", "thanks!", "the flight to my sister's wedding is cancelled", "hola"]
    batches = lower.states(texts, batch=3, offset=10)
    indices = [i for b in batches for i in b[0]]
    assert sorted(indices) == [10, 11, 12, 13]
    assert [len(b[0]) for b in batches] == [3, 1]
    for idx, _hidden, mask, pooled, _q in batches:
        assert mask.shape[0] == len(idx) and pooled.shape == (len(idx), 384)
