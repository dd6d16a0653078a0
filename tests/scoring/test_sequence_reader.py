"""router.scoring.sequence.TurnReader reads earlier turns as torch.nn.GRU does, so a reader trained in torch
serves in numpy unchanged; padding is never read."""

from __future__ import annotations

import numpy as np
import torch

from router.scoring.sequence import LOGIT_SCALE, TurnReader, padded

DIM, HIDDEN = 12, 8


def _torch_reader() -> tuple[torch.nn.Linear, torch.nn.GRU, torch.nn.Linear]:
    torch.manual_seed(0)
    return (
        torch.nn.Linear(DIM + 1, HIDDEN),
        torch.nn.GRU(HIDDEN, HIDDEN, batch_first=True),
        torch.nn.Linear(DIM, HIDDEN),
    )


def _numpy_reader(proj: torch.nn.Linear, gru: torch.nn.GRU, query: torch.nn.Linear) -> TurnReader:
    def a(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)

    return TurnReader(
        a(proj.weight),
        a(proj.bias),
        a(gru.weight_ih_l0),
        a(gru.weight_hh_l0),
        a(gru.bias_ih_l0),
        a(gru.bias_hh_l0),
        a(query.weight),
        a(query.bias),
    )


def random_reader(rng: np.random.Generator, dim: int, hidden: int, scale: float) -> TurnReader:
    """A reader of random weights (normal, times ``scale``) for turns of width ``dim``."""

    def w(*shape: int) -> np.ndarray:
        return (rng.normal(size=shape) * scale).astype(np.float32)

    return TurnReader(
        w(hidden, dim + 1),
        w(hidden),
        w(3 * hidden, hidden),
        w(3 * hidden, hidden),
        w(3 * hidden),
        w(3 * hidden),
        w(hidden, dim),
        w(hidden),
    )


def test_the_numpy_gru_reads_as_torch_does() -> None:
    proj, gru, query = _torch_reader()
    reader = _numpy_reader(proj, gru, query)
    rng = np.random.default_rng(1)
    earlier = [[rng.normal(size=DIM).astype(np.float32) for _ in range(n)] for n in (1, 3, 4, 6)]
    logits = [[float(rng.normal() * 3) for _ in rows] for rows in earlier]
    x, z, lengths = padded(earlier, logits, 4)
    assert lengths.tolist() == [1, 3, 4, 4]
    ours = reader.summary(x, z, lengths)
    seq = torch.from_numpy(np.concatenate([x, z[:, :, None] / LOGIT_SCALE], axis=2))
    u = torch.relu(proj(seq))
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        u, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        theirs = gru(packed)[1][0].numpy()
    assert np.allclose(ours, theirs, atol=1e-5)
    e = rng.normal(size=(4, DIM)).astype(np.float32)
    with torch.no_grad():
        q = torch.tanh(query(torch.from_numpy(e))).numpy()
    assert np.allclose(reader.features(e, ours), np.concatenate([e, theirs, q * theirs], axis=1), atol=1e-5)


def test_padding_is_never_read_and_order_is() -> None:
    reader = _numpy_reader(*_torch_reader())
    rng = np.random.default_rng(2)
    rows = [rng.normal(size=DIM).astype(np.float32) for _ in range(2)]
    x, z, lengths = padded([rows], [[0.5, -1.0]], 4)
    noisy = x.copy()
    noisy[:, 2:] = rng.normal(size=noisy[:, 2:].shape)
    assert np.array_equal(reader.summary(x, z, lengths), reader.summary(noisy, z, lengths))
    flipped = padded([rows[::-1]], [[-1.0, 0.5]], 4)
    assert not np.allclose(reader.summary(x, z, lengths), reader.summary(*flipped))


def test_tensors_round_trip() -> None:
    reader = _numpy_reader(*_torch_reader())
    back = TurnReader.from_tensors(reader.tensors("mot_context_reader"), "mot_context_reader")
    for name in ("proj_weight", "weight_hh", "query_bias"):
        assert np.array_equal(getattr(back, name), getattr(reader, name))


def test_merged_readers_average_their_lifts() -> None:
    """scripts/train_detector.py --readers N serves N GRU readers as one: the merged head's logit on the
    merged reader's features is the mean of each head's on its own reader's."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from train_detector import merge_readings

    from router.scoring.heads import LinearHead

    rng = np.random.default_rng(3)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32) * 0.5

    readings = []
    for _ in range(3):
        reader = random_reader(rng, DIM, HIDDEN, 0.5)
        head = LinearHead(
            w(1, 6), w(1), "sigmoid", ("moment_of_truth_in_context",), w(6, DIM + 2 * HIDDEN), w(6)
        )
        readings.append((head, reader))
    merged_head, merged = merge_readings(readings)
    earlier = [[rng.normal(size=DIM).astype(np.float32) for _ in range(n)] for n in (1, 2, 4)]
    x, z, lengths = padded(earlier, [[float(rng.normal()) for _ in rows] for rows in earlier], 4)
    e = rng.normal(size=(3, DIM)).astype(np.float32)
    each = [h.logits(r.features(e, r.summary(x, z, lengths))) for h, r in readings]
    got = merged_head.logits(merged.features(e, merged.summary(x, z, lengths)))
    assert np.allclose(got, np.mean(each, axis=0), atol=1e-4)
