"""The moment-of-truth head's neighbours: a vote of the labelled corpus turns nearest to a text.

The ``mot`` head is linear on the sentence embedding, so one hyperplane must hold every category and every
length. A short, flat line with stakes ("There's a gas smell in my kitchen") sits close to the corpus's
calm questions on the same topic and reads 0.5-0.7 while the detector needs about 0.8 on a one-turn
contact. The nearest labelled turns know better: out of fold on the train and dev rows, adding half the
logit of their vote to the head's lifted recall at 98% precision from 0.85 to 0.87 on every row and from
0.81 to 0.85 on dev's single turns of 12 words or fewer (models/HISTORY.md, The detector).

The bank is the train and dev rows the head was fitted on (never a test line: router.scoring.corpus.
training_rows refuses the test split), their int8 embeddings normalised and stored in fp16 beside the heads
(``models/heads.safetensors``, tensors ``mot_neighbours.bank`` and ``mot_neighbours.labels``; the settings
in ``heads.json`` under ``mot_neighbours``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# rows of the query scored against the whole bank at once: 2048 x 14k fp32 similarities is ~115 MB
_CHUNK_ROWS = 2048


def unit_rows(x: npt.NDArray[np.floating]) -> FloatArray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    x32 = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x32, axis=1, keepdims=True)
    out: FloatArray = (x32 / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def nearest_rows(queries: FloatArray, bank: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """Per query row (unit length, as the bank's): the indices of its ``k`` most similar bank rows, the most
    similar first, and their cosine similarities."""
    if not 0 < k <= len(bank):
        raise ValueError(f"k={k} needs 1 to {len(bank)} bank rows")
    index = np.empty((len(queries), k), np.int64)
    similarity = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), _CHUNK_ROWS):
        sim = queries[start : start + _CHUNK_ROWS] @ bank.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        order = np.argsort(-top_sim, axis=1, kind="stable")
        index[start : start + _CHUNK_ROWS] = np.take_along_axis(top, order, axis=1)
        similarity[start : start + _CHUNK_ROWS] = np.take_along_axis(top_sim, order, axis=1)
    return index, similarity


def vote_of(labels: FloatArray, similarity: FloatArray, temperature: float) -> FloatArray:
    """The vote of neighbours with these ``labels`` and ``similarity`` (n x k, most similar first): each
    weighted by exp((similarity - the best) / temperature), plus one pseudo-vote of 0.5, so a vote is never
    0 or 1 and a query with no close neighbour stays near the middle. The pseudo-vote keeps the logit
    bounded: with k = 5 it lies within +-2.4."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    w = np.exp((similarity - similarity[:, :1]) / temperature)
    out: FloatArray = (((labels * w).sum(axis=1) + 0.5) / (w.sum(axis=1) + 1.0)).astype(np.float32)
    return out


def neighbour_vote(
    queries: FloatArray, bank: FloatArray, labels: FloatArray, k: int, temperature: float
) -> FloatArray:
    """Per query row (unit length, as the bank's): the vote (``vote_of``) of its ``k`` most similar bank
    rows."""
    index, similarity = nearest_rows(queries, bank, k)
    return vote_of(labels[index], similarity, temperature)


@dataclass(frozen=True)
class NeighbourReading:
    """What the neighbours said of n texts: their vote's logit (weighted as it is added to the head's),
    and which bank rows voted, for the reason a supervisor reads."""

    logits: FloatArray  # n
    index: IntArray  # n x k, the most similar first
    similarity: FloatArray  # n x k


@dataclass(frozen=True)
class NeighbourVote:
    """What the neighbours add to the ``mot`` head's logit: ``weight`` x logit(their vote). ``topics``
    (optional: heads written before it have none) is each bank row's index into ``topic_names``: the topic
    of a moment of truth, "none" for a routine row."""

    bank: FloatArray  # n x d, unit rows (after ``center`` was subtracted, when there is one)
    labels: FloatArray  # n, 0 or 1
    k: int
    temperature: float
    weight: float
    topics: IntArray | None = None
    topic_names: tuple[str, ...] = ()
    # subtracted from every embedding before its cosine (the bank's rows were centred on it): e5's sentence
    # embeddings share one direction (raw cosines 0.93-0.97), which the form of a sentence then dominates
    center: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.bank.ndim != 2 or self.labels.shape != (len(self.bank),):
            raise ValueError(f"a bank of shape {self.bank.shape} with {self.labels.shape} labels")
        t = self.topics
        if t is not None and (
            t.shape != self.labels.shape or (len(t) and not 0 <= t.min() <= t.max() < len(self.topic_names))
        ):
            names = len(self.topic_names)
            raise ValueError(f"{t.shape} topics (of {names} names) for a bank of {len(self.labels)} rows")
        if self.center is not None and self.center.shape != (self.bank.shape[1],):
            raise ValueError(f"a centre of shape {self.center.shape} for a bank {self.bank.shape[1]} wide")

    @property
    def dim(self) -> int:
        return int(self.bank.shape[1])

    def _nearest(self, x: FloatArray) -> tuple[IntArray, FloatArray]:
        if x.shape[1] != self.dim:
            raise ValueError(f"embeddings of width {x.shape[1]} against a bank of width {self.dim}")
        return nearest_rows(unit_rows(x if self.center is None else x - self.center), self.bank, self.k)

    def read(self, x: FloatArray) -> NeighbourReading:
        """The neighbours of embeddings ``x`` (n x d, any length) and their weighted logit."""
        index, similarity = self._nearest(x)
        p = vote_of(self.labels[index], similarity, self.temperature).astype(np.float64)
        logits: FloatArray = (self.weight * np.log(p / (1.0 - p))).astype(np.float32)
        return NeighbourReading(logits, index, similarity)

    def logits(self, x: FloatArray) -> FloatArray:
        return self.read(x).logits

    def describe(self, reading: NeighbourReading, row: int) -> str:
        """One text's neighbours as a reason reads them: "4 of its 5 nearest labelled corpus turns are
        moments of truth (bereavement 3, fraud 1); the nearest at cosine 0.93"."""
        index = reading.index[row]
        mot = [int(i) for i in index if self.labels[i] >= 0.5]
        text = f"{len(mot)} of its {len(index)} nearest labelled corpus turns are moments of truth"
        if mot and self.topics is not None:
            counts = Counter(self.topic_names[self.topics[i]].replace("_", " ") for i in mot)
            text += " (" + ", ".join(f"{t} {n}" for t, n in counts.most_common()) + ")"
        kind = "cosine" if self.center is None else "centred cosine"
        return f"{text}; the nearest at {kind} {float(reading.similarity[row, 0]):.2f}"
