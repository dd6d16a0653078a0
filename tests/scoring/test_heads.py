"""The heads file format: a head with a hidden layer survives save and load and is applied as ReLU then
the output layer (the shipped multilingual intensity head is one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from router.scoring.heads import DEFAULT_MODELS_DIR, LinearHead, load_heads, save_heads


def _hidden_head(rng: np.random.Generator) -> LinearHead:
    return LinearHead(
        weight=rng.normal(size=(1, 8)).astype(np.float32),
        bias=np.array([0.1], np.float32),
        activation="sigmoid",
        labels=("negative_intensity",),
        hidden_weight=rng.normal(size=(8, 4)).astype(np.float32),
        hidden_bias=rng.normal(size=8).astype(np.float32),
    )


def test_a_hidden_layer_head_round_trips_and_applies_relu_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    head = _hidden_head(rng)
    linear = LinearHead(
        rng.normal(size=(2, 4)).astype(np.float32), np.zeros(2, np.float32), "softmax", ("a", "b")
    )
    save_heads(tmp_path, {"emotion": linear, "intensity_ml": head}, {"note": "test"})
    loaded = load_heads(tmp_path)
    assert loaded.dim == 4
    assert loaded["emotion"].hidden_weight is None
    x = rng.normal(size=(5, 4)).astype(np.float32)
    assert head.hidden_weight is not None and head.hidden_bias is not None
    by_hand = 1 / (
        1 + np.exp(-(np.maximum(x @ head.hidden_weight.T + head.hidden_bias, 0) @ head.weight.T + 0.1))
    )
    np.testing.assert_allclose(loaded["intensity_ml"](x), by_hand, rtol=1e-5)
    np.testing.assert_allclose(loaded["intensity_ml"](x), head(x), rtol=1e-6)


def test_a_negative_input_that_relu_cuts_does_not_move_the_output() -> None:
    """The hidden layer is really non-linear: units pushed below zero contribute nothing."""
    head = LinearHead(
        weight=np.array([[1.0, 1.0]], np.float32),
        bias=np.zeros(1, np.float32),
        activation="sigmoid",
        labels=("x",),
        hidden_weight=np.array([[1.0], [-1.0]], np.float32),
        hidden_bias=np.zeros(2, np.float32),
    )
    x = np.array([[2.0], [-2.0]], np.float32)
    # |x| through two ReLUs: the same answer for 2 and -2, which no linear head can give
    np.testing.assert_allclose(head(x)[0], head(x)[1])


def test_the_shipped_multilingual_intensity_head_has_its_hidden_layer() -> None:
    heads = load_heads(DEFAULT_MODELS_DIR)
    ml = heads["intensity_ml"]
    assert ml.hidden_weight is not None and ml.hidden_bias is not None
    assert ml.hidden_weight.shape == (1024, heads.dim)
    assert ml.weight.shape == (1, 1024)
