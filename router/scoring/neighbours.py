"""The moment-of-truth head's neighbours: a vote of the labelled corpus turns nearest to a text.

The ``mot`` head is linear on the sentence embedding, so one hyperplane must hold every category and every
length. A short, flat line with stakes ("There's a gas smell in my kitchen") sits close to the corpus's
calm questions on the same topic and reads 0.5-0.7 while the detector needs about 0.8 on a one-turn
contact. The nearest labelled turns know better: out of fold on the train and dev rows, adding half the
logit of their vote to the head's lifted recall at 98% precision from 0.85 to 0.87 on every row and from
0.81 to 0.85 on dev's single turns of 12 words or fewer (models/MODEL_CARD.md, The detector).

The bank is the train and dev rows the head was fitted on (never a test line: router.scoring.corpus.
training_rows refuses the test split), their int8 embeddings normalised and stored in fp16 beside the heads
(``models/heads.safetensors``, tensors ``mot_neighbours.bank`` and ``mot_neighbours.labels``; the settings
in ``heads.json`` under ``mot_neighbours``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# rows of the query scored against the whole bank at once: 2048 x 14k fp32 similarities is ~115 MB
_CHUNK_ROWS = 2048


def unit_rows(x: npt.NDArray[np.floating]) -> FloatArray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    x32 = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x32, axis=1, keepdims=True)
    out: FloatArray = (x32 / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def neighbour_vote(
    queries: FloatArray, bank: FloatArray, labels: FloatArray, k: int, temperature: float
) -> FloatArray:
    """Per query row (unit length, as the bank's): the labels of its ``k`` most similar bank rows, each
    weighted by exp((similarity - the best similarity) / temperature), plus one pseudo-vote of 0.5, so a
    vote is never 0 or 1 and a query with no close neighbour stays near the middle. The pseudo-vote keeps
    the logit bounded: with k = 5 it lies within +-2.4."""
    if not 0 < k <= len(bank):
        raise ValueError(f"k={k} needs 1 to {len(bank)} bank rows")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    out = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), _CHUNK_ROWS):
        sim = queries[start : start + _CHUNK_ROWS] @ bank.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        w = np.exp((top_sim - top_sim.max(axis=1, keepdims=True)) / temperature)
        out[start : start + _CHUNK_ROWS] = ((labels[top] * w).sum(axis=1) + 0.5) / (w.sum(axis=1) + 1.0)
    return out


@dataclass(frozen=True)
class NeighbourVote:
    """What the neighbours add to the ``mot`` head's logit: ``weight`` x logit(their vote)."""

    bank: FloatArray  # n x d, unit rows
    labels: FloatArray  # n, 0 or 1
    k: int
    temperature: float
    weight: float

    def __post_init__(self) -> None:
        if self.bank.ndim != 2 or self.labels.shape != (len(self.bank),):
            raise ValueError(f"a bank of shape {self.bank.shape} with {self.labels.shape} labels")

    @property
    def dim(self) -> int:
        return int(self.bank.shape[1])

    def vote(self, x: FloatArray) -> FloatArray:
        """The neighbours' vote for embeddings ``x`` (n x d, any length)."""
        if x.shape[1] != self.dim:
            raise ValueError(f"embeddings of width {x.shape[1]} against a bank of width {self.dim}")
        return neighbour_vote(unit_rows(x), self.bank, self.labels, self.k, self.temperature)

    def logits(self, x: FloatArray) -> FloatArray:
        p = self.vote(x).astype(np.float64)
        out: FloatArray = (self.weight * np.log(p / (1.0 - p))).astype(np.float32)
        return out
