"""scripts/train_heads.py's hidden-layer head (the multilingual intensity head): the backend-consistency term
pays for the two backends answering differently, not for dropout answering differently on two copies."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from train_heads import _paired_dropout_mask, pair_rows, train_mlp_head


def _separable(n: int = 2000, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, width)).astype(np.float32)
    y = (x @ rng.normal(size=width) > 0).astype(np.float32)
    return x, y


def test_a_strong_consistency_term_does_not_flatten_a_paired_head() -> None:
    # two identical "backends": the consistency term has nothing to pay for, so the head must fit as well
    # as without it. With a dropout mask drawn per copy the same fit stayed at about 0.57 accuracy.
    x, y = _separable()
    n = len(y)
    two = np.concatenate([x, x])
    paired = train_mlp_head(
        two, np.concatenate([y, y])[:, None], 64, 30, pairs=pair_rows([n], 2), consistency=200.0
    )
    alone = train_mlp_head(x, y[:, None], 64, 30)
    acc_paired = float(((paired(x)[:, 0] > 0.5) == y).mean())
    acc_alone = float(((alone(x)[:, 0] > 0.5) == y).mean())
    assert acc_alone > 0.9
    assert acc_paired > acc_alone - 0.03, (acc_paired, acc_alone)


def test_both_copies_of_a_text_share_one_dropout_mask() -> None:
    torch.manual_seed(0)
    mask = _paired_dropout_mask(8, 16, 0.3, paired=True)
    assert mask.shape == (16, 16)
    assert torch.equal(mask[:8], mask[8:])
    kept = mask[mask > 0]
    assert torch.allclose(kept, torch.full_like(kept, 1.0 / 0.7))
    alone = _paired_dropout_mask(8, 16, 0.3, paired=False)
    assert alone.shape == (8, 16)
    assert torch.equal(_paired_dropout_mask(4, 4, 0.0, paired=False), torch.ones(4, 4))
