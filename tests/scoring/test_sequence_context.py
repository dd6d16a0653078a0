"""scripts/sequence_context.py: each reader sees only the earlier turns it is given, in order, whatever the
padding; the mean reader reads what the shipped context head reads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from sequence_context import DIM, READERS, build_reader, tensors

from router.scoring.heads import LinearHead
from router.scoring.protocol import MOT_CONTEXT_TURNS
from router.scoring.transformer import context_features


def _emb(texts: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {t: rng.normal(size=DIM).astype(np.float32) for t in texts}


HEAD = LinearHead(
    weight=np.random.default_rng(1).normal(size=(1, DIM)).astype(np.float32),
    bias=np.zeros(1, np.float32),
    activation="sigmoid",
    labels=("moment_of_truth",),
)


def test_earlier_turns_are_left_aligned_and_cut_to_the_last_few() -> None:
    texts = [f"t{i}" for i in range(7)]
    emb = _emb(texts)
    e, seq, lengths, base = tensors([("t6", tuple(texts[:6])), ("t1", ("t0",))], emb, HEAD)
    assert lengths.tolist() == [MOT_CONTEXT_TURNS, 1]
    kept = texts[6 - MOT_CONTEXT_TURNS : 6]
    for j, t in enumerate(kept):
        assert np.allclose(seq[0, j, :DIM].numpy(), emb[t])
        assert seq[0, j, DIM].item() == pytest.approx(float(HEAD.logits(emb[t][None])[0, 0]) / 5.0, rel=1e-5)
    assert not seq[1, 1:].any()  # padding after the one earlier turn
    assert np.allclose(e[0].numpy(), emb["t6"]) and base[0].item() == pytest.approx(
        float(HEAD.logits(emb["t6"][None])[0, 0]), rel=1e-5
    )


@pytest.mark.parametrize("kind", READERS)
def test_padding_never_changes_a_reading(kind: str) -> None:
    torch.manual_seed(0)
    net = build_reader(kind, 16).eval()
    emb = _emb(["a", "b", "c"])
    e, seq, lengths, _ = tensors([("c", ("a", "b"))], emb, HEAD)
    noisy = seq.clone()
    noisy[:, 2:] = torch.randn_like(noisy[:, 2:])
    with torch.no_grad():
        assert torch.allclose(net(e, seq, lengths), net(e, noisy, lengths), atol=1e-6)


def test_order_matters_to_the_gru_and_not_to_the_mean() -> None:
    torch.manual_seed(0)
    emb = _emb(["a", "b", "c"])
    forward = tensors([("c", ("a", "b"))], emb, HEAD)
    backward = tensors([("c", ("b", "a"))], emb, HEAD)
    with torch.no_grad():
        gru, mean = build_reader("gru", 16).eval(), build_reader("mean", 16).eval()
        assert not torch.allclose(gru(*forward[:3]), gru(*backward[:3]))
        assert torch.allclose(mean(*forward[:3]), mean(*backward[:3]), atol=1e-6)


def test_the_mean_reader_reads_the_shipped_context_features() -> None:
    torch.manual_seed(0)
    net = build_reader("mean", 16).eval()
    emb = _emb(["a", "b", "c"])
    e, seq, lengths, _ = tensors([("c", ("a", "b"))], emb, HEAD)
    shipped = context_features(emb["c"][None], np.mean([emb["a"], emb["b"]], axis=0)[None])
    with torch.no_grad():
        direct = net.mlp(torch.from_numpy(shipped))[:, 0]
        assert torch.allclose(net(e, seq, lengths), direct, atol=1e-5)
