"""The project's small heads on top of sentence embeddings: load/save (safetensors + JSON) and apply.

File layout (``models/heads.safetensors`` + ``models/heads.json``):
- tensors ``<head>.weight`` (out x in) and ``<head>.bias`` (out); an MLP head also has
  ``<head>.hidden.weight`` / ``<head>.hidden.bias`` applied first, followed by ReLU;
- JSON ``heads.<head>``: ``{"activation": "softmax" | "sigmoid", "labels": [...]}`` plus free metadata;
- optionally the ``mot`` head's neighbours (router.scoring.neighbours): tensors ``mot_neighbours.bank`` (fp16)
  and ``mot_neighbours.labels``, optionally ``mot_neighbours.topics`` (int16, each row's index into
  ``topic_names``) and ``mot_neighbours.center`` (fp32, subtracted before the cosine; the bank is centred on
  it), JSON ``mot_neighbours``: ``{"k", "temperature", "weight", "topic_names"?}``;
- optionally the ordered reader of a turn's earlier turns that ``mot_context`` then reads
  (router.scoring.sequence.TurnReader): tensors ``mot_context_reader.<name>``, JSON ``mot_context_reader``:
  ``{"hidden"}``. Without it ``mot_context`` reads the mean of the earlier turns' embeddings.

Heads are applied in numpy: they are a few kB of matrix products next to a ~22M-parameter encoder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save_file

from router.scoring.neighbours import NeighbourVote
from router.scoring.sequence import TurnReader

FloatArray = npt.NDArray[np.float32]

HEADS_FORMAT_VERSION = 1
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class LinearHead:
    weight: FloatArray
    bias: FloatArray
    activation: str
    labels: tuple[str, ...]
    hidden_weight: FloatArray | None = None
    hidden_bias: FloatArray | None = None

    def logits(self, x: FloatArray) -> FloatArray:
        h = x
        if self.hidden_weight is not None and self.hidden_bias is not None:
            h = np.maximum(h @ self.hidden_weight.T + self.hidden_bias, 0.0)
        out: FloatArray = (h @ self.weight.T + self.bias).astype(np.float32)
        return out

    def __call__(self, x: FloatArray) -> FloatArray:
        z = self.logits(x)
        if self.activation == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            out: FloatArray = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            return out
        if self.activation == "sigmoid":
            sig: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))).astype(np.float32)
            return sig
        raise ValueError(f"unknown activation {self.activation!r}")


@dataclass(frozen=True)
class Heads:
    heads: Mapping[str, LinearHead]
    meta: Mapping[str, Any] = field(default_factory=dict)
    # what the ``mot`` head's nearest labelled corpus turns add to its logit (None: the head alone)
    neighbours: NeighbourVote | None = None
    # how ``mot_context`` reads the earlier turns (None: their mean embedding)
    reader: TurnReader | None = None

    @property
    def dim(self) -> int:
        first = self.heads["emotion"] if "emotion" in self.heads else next(iter(self.heads.values()))
        src = first.hidden_weight if first.hidden_weight is not None else first.weight
        return int(src.shape[1])

    def __getitem__(self, name: str) -> LinearHead:
        return self.heads[name]

    def __contains__(self, name: object) -> bool:
        return name in self.heads

    def apply(self, x: FloatArray) -> dict[str, FloatArray]:
        return {name: head(x) for name, head in self.heads.items()}

    def apply_except(self, x: FloatArray, skip: tuple[str, ...]) -> dict[str, FloatArray]:
        return {name: head(x) for name, head in self.heads.items() if name not in skip}


def heads_paths(models_dir: str | Path) -> tuple[Path, Path]:
    d = Path(models_dir)
    return d / "heads.safetensors", d / "heads.json"


def heads_digest(models_dir: str | Path | None = None) -> str:
    """sha256 of the heads' weights and metadata: what the ONNX quality stamp was measured with."""
    d = Path(models_dir or DEFAULT_MODELS_DIR)
    h = hashlib.sha256()
    for path in heads_paths(d):
        h.update(path.read_bytes())
    return h.hexdigest()


def load_heads(models_dir: str | Path | None = None) -> Heads:
    """Load heads from ``models_dir`` (default: the repository's ``models/``); raises if missing/invalid."""
    tensors_path, meta_path = heads_paths(models_dir or DEFAULT_MODELS_DIR)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if int(meta.get("format_version", 0)) != HEADS_FORMAT_VERSION:
        raise ValueError(f"{meta_path}: unsupported heads format {meta.get('format_version')!r}")
    tensors = load_file(str(tensors_path))
    heads: dict[str, LinearHead] = {}
    for name, spec in meta["heads"].items():
        hw = tensors.get(f"{name}.hidden.weight")
        hb = tensors.get(f"{name}.hidden.bias")
        heads[name] = LinearHead(
            weight=tensors[f"{name}.weight"].astype(np.float32),
            bias=tensors[f"{name}.bias"].astype(np.float32),
            activation=str(spec["activation"]),
            labels=tuple(spec.get("labels", ())),
            hidden_weight=None if hw is None else hw.astype(np.float32),
            hidden_bias=None if hb is None else hb.astype(np.float32),
        )
        out_dim = heads[name].weight.shape[0]
        if heads[name].labels and len(heads[name].labels) != out_dim:
            raise ValueError(f"head {name}: {len(heads[name].labels)} labels for {out_dim} outputs")
    reader = TurnReader.from_tensors(tensors, READER) if READER in meta else None
    return Heads(heads=heads, meta=meta, neighbours=_load_neighbours(tensors, meta), reader=reader)


NEIGHBOURS = "mot_neighbours"
READER = "mot_context_reader"


def _load_neighbours(
    tensors: Mapping[str, npt.NDArray[Any]], meta: Mapping[str, Any]
) -> NeighbourVote | None:
    spec = meta.get(NEIGHBOURS)
    if spec is None:
        return None
    topics = tensors.get(f"{NEIGHBOURS}.topics")
    center = tensors.get(f"{NEIGHBOURS}.center")
    return NeighbourVote(
        bank=tensors[f"{NEIGHBOURS}.bank"].astype(np.float32),
        labels=tensors[f"{NEIGHBOURS}.labels"].astype(np.float32),
        k=int(spec["k"]),
        temperature=float(spec["temperature"]),
        weight=float(spec["weight"]),
        topics=None if topics is None else topics.astype(np.int64),
        topic_names=tuple(spec.get("topic_names", ())),
        center=None if center is None else center.astype(np.float32),
    )


def save_heads(
    models_dir: str | Path,
    heads: Mapping[str, LinearHead],
    meta: Mapping[str, Any],
    neighbours: NeighbourVote | None = None,
    reader: TurnReader | None = None,
) -> None:
    tensors_path, meta_path = heads_paths(models_dir)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, npt.NDArray[Any]] = {}
    spec: dict[str, Any] = {}
    meta = {k: v for k, v in meta.items() if k not in (NEIGHBOURS, READER)}
    if reader is not None:
        tensors.update(reader.tensors(READER))
        meta[READER] = {"hidden": reader.hidden}
    if neighbours is not None:
        tensors[f"{NEIGHBOURS}.bank"] = np.ascontiguousarray(neighbours.bank, dtype=np.float16)
        tensors[f"{NEIGHBOURS}.labels"] = np.ascontiguousarray(neighbours.labels, dtype=np.float32)
        meta[NEIGHBOURS] = {
            "k": neighbours.k,
            "temperature": neighbours.temperature,
            "weight": neighbours.weight,
        }
        if neighbours.center is not None:
            tensors[f"{NEIGHBOURS}.center"] = np.ascontiguousarray(neighbours.center, dtype=np.float32)
        if neighbours.topics is not None:
            tensors[f"{NEIGHBOURS}.topics"] = np.ascontiguousarray(neighbours.topics, dtype=np.int16)
            meta[NEIGHBOURS]["topic_names"] = list(neighbours.topic_names)
    for name, head in heads.items():
        tensors[f"{name}.weight"] = np.ascontiguousarray(head.weight, dtype=np.float32)
        tensors[f"{name}.bias"] = np.ascontiguousarray(head.bias, dtype=np.float32)
        if head.hidden_weight is not None and head.hidden_bias is not None:
            tensors[f"{name}.hidden.weight"] = np.ascontiguousarray(head.hidden_weight, dtype=np.float32)
            tensors[f"{name}.hidden.bias"] = np.ascontiguousarray(head.hidden_bias, dtype=np.float32)
        spec[name] = {"activation": head.activation, "labels": list(head.labels)}
    full = {"format_version": HEADS_FORMAT_VERSION, **meta, "heads": spec}
    save_file(tensors, str(tensors_path))
    meta_path.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def vader_features(texts: list[str], analyzer: object | None = None) -> FloatArray:
    """Four lexicon features appended to the embedding for the intensity head: VADER neg, pos,
    max(0, -compound), max(0, compound). VADER is English; for other languages they are mostly 0."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from router.scoring.vader import FastVader

    vader = analyzer if isinstance(analyzer, SentimentIntensityAnalyzer) else FastVader()
    out = np.zeros((len(texts), 4), dtype=np.float32)
    for i, t in enumerate(texts):
        p = vader.polarity_scores(t[:2_000])
        c = float(p["compound"])
        out[i] = (float(p["neg"]), float(p["pos"]), max(0.0, -c), max(0.0, c))
    return out
