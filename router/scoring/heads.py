"""The project's small heads on top of sentence embeddings: load/save (safetensors + JSON) and apply.

File layout (``models/heads.safetensors`` + ``models/heads.json``):
- tensors ``<head>.weight`` (out x in) and ``<head>.bias`` (out); an MLP head also has
  ``<head>.hidden.weight`` / ``<head>.hidden.bias`` applied first, followed by ReLU;
- JSON ``heads.<head>``: ``{"activation": "softmax" | "sigmoid", "labels": [...]}`` plus free metadata.

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


# the encoder's fine-tuned last layer (scripts/finetune_top.py), applied over the packaged MiniLM
TOP_LAYER_FILE = "encoder_top.safetensors"


def heads_digest(models_dir: str | Path | None = None) -> str:
    """sha256 of the heads' weights and metadata, and of the fine-tuned encoder layer when there is one:
    what the ONNX quality stamp was measured with (the exported graph carries that layer)."""
    d = Path(models_dir or DEFAULT_MODELS_DIR)
    h = hashlib.sha256()
    for path in heads_paths(d):
        h.update(path.read_bytes())
    if (d / TOP_LAYER_FILE).exists():
        h.update((d / TOP_LAYER_FILE).read_bytes())
    return h.hexdigest()


def top_layer_path(models_dir: str | Path | None = None) -> Path | None:
    path = Path(models_dir or DEFAULT_MODELS_DIR) / TOP_LAYER_FILE
    return path if path.exists() else None


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
    return Heads(heads=heads, meta=meta)


def save_heads(models_dir: str | Path, heads: Mapping[str, LinearHead], meta: Mapping[str, Any]) -> None:
    tensors_path, meta_path = heads_paths(models_dir)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, FloatArray] = {}
    spec: dict[str, Any] = {}
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


# ---------------------------------------------------------------- multilingual (non-English) head
# MiniLM-L6's vocabulary and training are English, so non-English turns get a second opinion from a
# language-agnostic character n-gram model (hashed features, logistic regression) trained on the
# multilingual emotion sets whose licences allow shipped weights (XED, BRIGHTER, RED).
import re as _re  # noqa: E402
import unicodedata as _ud  # noqa: E402
import zlib as _zlib  # noqa: E402

NGRAM_BITS = 18
_WORD = _re.compile(r"\w+", _re.UNICODE)

# Small stop-word lists: enough to tell these languages apart on a sentence; "en" when nothing matches.
_STOP_WORDS: dict[str, str] = {
    "en": "the and is are was you my i to of it that this not have for with what be me your",
    "it": "il la che di non è un una per sono mi ho con ma gli le del della questo anche ti",
    "ro": "și si nu de la că ca în in este sunt pe un o cu mai am ce să sa care din pentru",
    "fi": "ja on ei se että en ole mitä minä sinä hän oli kun niin mutta tämä ovat olen sitä",
    "de": "und ist nicht der die das ich du ein eine zu mit es sie wir auf für sich auch",
    "es": "el la que de no es en y un una por los las con para me mi lo pero está muy",
    "fr": "le la les et est je ne pas un une de des que qui pour dans ce il elle avec",
    "pt": "o a que de não é um uma para com os as do da em eu meu minha mas muito",
}
_STOP: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in _STOP_WORDS.items()}


# word -> the languages it is a stop word of, so that one pass over the words counts every language's votes
_STOP_LANGS: dict[str, tuple[str, ...]] = {
    w: tuple(lang for lang, stop in _STOP.items() if w in stop) for stop in _STOP.values() for w in stop
}


def detect_language(text: str) -> str:
    """Best-effort language of a short text: Greek by script, else stop-word votes; "en" by default."""
    if not text.isascii() and sum(1 for ch in text if "\u0370" <= ch <= "\u03ff") >= 3:
        return "el"
    votes: dict[str, int] = {}
    for w in _WORD.findall(text):
        for lang in _STOP_LANGS.get(w.lower(), ()):
            votes[lang] = votes.get(lang, 0) + 1
    best, best_n = "en", 0
    for lang in _STOP:  # ties go to the earlier language, as before
        n = votes.get(lang, 0)
        if n > best_n:
            best, best_n = lang, n
    return best


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in _ud.normalize("NFD", text) if _ud.category(ch) != "Mn")


def ngram_features(text: str, bits: int = NGRAM_BITS) -> dict[int, float]:
    """Hashed word unigrams and word-boundary char 2-4-grams (lower-cased, accents stripped), L2-normed."""
    t = _strip_accents(text.lower())
    t = _re.sub(r"@\w+|https?://\S+", " ", t)
    mask = (1 << bits) - 1
    counts: dict[int, float] = {}
    for w in _WORD.findall(t):
        key = _zlib.crc32(b"w:" + w.encode()) & mask
        counts[key] = counts.get(key, 0.0) + 1.0
        padded = f" {w} "
        for n in (2, 3, 4):
            for i in range(len(padded) - n + 1):
                key = _zlib.crc32(padded[i : i + n].encode()) & mask
                counts[key] = counts.get(key, 0.0) + 1.0
    if not counts:
        return {}
    feats = {k: 1.0 + float(np.log(v)) for k, v in counts.items()}
    norm = float(np.sqrt(sum(v * v for v in feats.values())))
    return {k: v / norm for k, v in feats.items()}


@dataclass(frozen=True)
class NgramHead:
    """Logistic regression on hashed n-gram features: P(negative emotion) for non-English text."""

    weight: FloatArray  # (2**bits,)
    bias: float
    bits: int = NGRAM_BITS

    def __call__(self, texts: list[str]) -> FloatArray:
        out = np.empty(len(texts), dtype=np.float32)
        w = self.weight
        for i, text in enumerate(texts):
            z = self.bias + sum(w[k] * v for k, v in ngram_features(text, self.bits).items())
            out[i] = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
        return out


def load_ngram_head(models_dir: str | Path | None = None) -> NgramHead | None:
    d = Path(models_dir or DEFAULT_MODELS_DIR)
    path = d / "multilingual.safetensors"
    if not path.exists():
        return None
    t = load_file(str(path))
    bits = int(t["bits"][0])
    return NgramHead(weight=t["weight"].astype(np.float32), bias=float(t["bias"][0]), bits=bits)


def save_ngram_head(models_dir: str | Path, head: NgramHead) -> None:
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "weight": head.weight.astype(np.float16),
            "bias": np.array([head.bias], dtype=np.float32),
            "bits": np.array([head.bits], dtype=np.int32),
        },
        str(Path(models_dir) / "multilingual.safetensors"),
    )


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
