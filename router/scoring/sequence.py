"""A GRU over a contact's earlier customer turns, in numpy: an ordered reading of them for the ``mot_context``
head, where a mean of their embeddings has no order (models/HISTORY.md, The detector: "an ordered reading
of the earlier turns").

Each earlier turn enters as its embedding and its ``mot`` logit (divided by ``LOGIT_SCALE``), projected with a
ReLU; the GRU's last state ``s`` over the turns, oldest first, is what the reader makes of them, and the head
reads ``[e, s, tanh(query(e)) * s]`` for the turn ``e`` (the product lets a calm turn depend on what came
before, as the mean reading's ``e * c`` does). The equations and the gate order (reset, update, new) are
torch.nn.GRU's, so weights trained there load here unchanged (tests/scoring/test_sequence_reader.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

LOGIT_SCALE = 5.0


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))).astype(np.float32)
    return out


@dataclass(frozen=True)
class TurnReader:
    proj_weight: FloatArray  # (h, d + 1)
    proj_bias: FloatArray  # (h,)
    weight_ih: FloatArray  # (3h, h): reset, update, new
    weight_hh: FloatArray  # (3h, h)
    bias_ih: FloatArray  # (3h,)
    bias_hh: FloatArray  # (3h,)
    query_weight: FloatArray  # (h, d)
    query_bias: FloatArray  # (h,)

    @property
    def hidden(self) -> int:
        return int(self.proj_bias.shape[0])

    def summary(self, earlier: FloatArray, logits: FloatArray, lengths: IntArray) -> FloatArray:
        """The GRU's state after each row's earlier turns: ``earlier`` (n, T, d) and ``logits`` (n, T) hold
        them oldest first from position 0, ``lengths`` (n,) how many are real (>= 1); the rest is padding,
        never read."""
        h = self.hidden
        x = np.concatenate([earlier, logits[:, :, None] / LOGIT_SCALE], axis=2)
        u = np.maximum(x @ self.proj_weight.T + self.proj_bias, 0.0)
        state = np.zeros((len(earlier), h), np.float32)
        for t in range(earlier.shape[1]):
            gi = u[:, t] @ self.weight_ih.T + self.bias_ih
            gh = state @ self.weight_hh.T + self.bias_hh
            reset = _sigmoid(gi[:, :h] + gh[:, :h])
            update = _sigmoid(gi[:, h : 2 * h] + gh[:, h : 2 * h])
            new = np.tanh(gi[:, 2 * h :] + reset * gh[:, 2 * h :])
            step = (1.0 - update) * new + update * state
            state = np.where((t < lengths)[:, None], step, state).astype(np.float32)
        return state

    def features(self, e: FloatArray, summary: FloatArray) -> FloatArray:
        """What the ``mot_context`` head reads for turns ``e`` (n, d) after earlier turns read as ``summary``
        (``summary``'s output)."""
        q = np.tanh(e @ self.query_weight.T + self.query_bias)
        out: FloatArray = np.concatenate([e, summary, q * summary], axis=1).astype(np.float32)
        return out

    def tensors(self, prefix: str) -> dict[str, FloatArray]:
        return {
            f"{prefix}.{name}": np.ascontiguousarray(getattr(self, name), dtype=np.float32)
            for name in TENSORS
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, FloatArray], prefix: str) -> TurnReader:
        return cls(**{name: tensors[f"{prefix}.{name}"].astype(np.float32) for name in TENSORS})


TENSORS = (
    "proj_weight",
    "proj_bias",
    "weight_ih",
    "weight_hh",
    "bias_ih",
    "bias_hh",
    "query_weight",
    "query_bias",
)


def padded(
    earlier: list[list[FloatArray]], logits: list[list[float]], turns: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Rows of earlier turns (each list oldest first, at least one) as the reader's arrays, keeping the last
    ``turns`` of each."""
    dim = len(earlier[0][0])
    x = np.zeros((len(earlier), turns, dim), np.float32)
    z = np.zeros((len(earlier), turns), np.float32)
    lengths = np.zeros(len(earlier), np.int64)
    for i, (embs, zs) in enumerate(zip(earlier, logits, strict=True)):
        kept = list(zip(embs, zs, strict=True))[-turns:]
        lengths[i] = len(kept)
        for j, (row, logit) in enumerate(kept):
            x[i, j], z[i, j] = row, logit
    return x, z, lengths
