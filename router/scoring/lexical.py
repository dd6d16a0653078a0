"""A lexical reading of negative emotion for the languages the multilingual intensity head serves.

The multilingual head reads a sentence embedding. Short emotional lines (XED's Finnish subtitles, tweets)
carry much of their emotion in words and word parts the embedding averages away; a logistic model over
hashed character n-grams reads them directly (on XED's Finnish dev slice it ranks at 0.84 where the
embedding head reads 0.815, and the two together read more than either: models/MODEL_CARD.md, Heads).
The English head has the same kind of lexical partner in VADER's polarity features. Word features also
learn the words of the text they are fitted on, so each language has its own share of the mix, chosen on
that language's dev files of both kinds of text (public sets and the corpus's customer messages), and a
language without that evidence reads the head alone (``scripts/train_lexical.py``).

Features are those of scikit-learn's ``TfidfVectorizer(analyzer="char_wb", lowercase=True,
sublinear_tf=True)``, hashed instead of kept in a vocabulary so that the model is two arrays: each
whitespace-separated word, padded with one space either side, gives its character n-grams; an n-gram's
bucket is the CRC-32 of its UTF-8 bytes modulo the bucket count; a bucket's weight is ``(1 + log count) *
idf``, L2-normalised over the text. Pure numpy and zlib: no scikit-learn at serving time, under a tenth
of a millisecond per turn.

File (``models/lexical_ml.safetensors``): tensors ``idf`` and ``coef`` (float32, one per bucket) and
``bias`` (1); metadata ``spec`` (JSON: ``ngram_min``, ``ngram_max``, ``buckets``, ``mixes`` and free training
notes). ``mixes`` maps a language (ISO 639-1) to the lexical reading's share of its combined logit
(``LexicalModel.combine``); a language not in it keeps the head's reading.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save_file

FloatArray = npt.NDArray[np.float32]

LEXICAL_FILE = "lexical_ml.safetensors"
SPEC_KEYS = ("ngram_min", "ngram_max", "buckets", "mixes")
LOGIT_CLIP = 12.0  # a probability of 1 - 6e-6: keeps a saturated head from swamping the other reading


def char_ngrams(text: str, ngram_min: int, ngram_max: int) -> Iterable[str]:
    """scikit-learn's ``char_wb`` analyzer on lower-cased text (its ``_char_wb_ngrams``)."""
    for word in text.lower().split():
        padded = f" {word} "
        length = len(padded)
        for n in range(ngram_min, ngram_max + 1):
            offset = 0
            yield padded[offset : offset + n]
            while offset + n < length:
                offset += 1
                yield padded[offset : offset + n]
            if offset == 0:  # a word shorter than n: its one padded n-gram was the whole of it
                break


def bucket_counts(text: str, ngram_min: int, ngram_max: int, buckets: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for gram in char_ngrams(text, ngram_min, ngram_max):
        b = zlib.crc32(gram.encode("utf-8")) % buckets
        counts[b] = counts.get(b, 0) + 1
    return counts


@dataclass(frozen=True)
class LexicalModel:
    """Hashed character n-grams, tf-idf weighted, and a logistic regression over them."""

    idf: FloatArray
    coef: FloatArray
    bias: float
    ngram_min: int
    ngram_max: int
    mixes: Mapping[str, float]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def buckets(self) -> int:
        return int(self.idf.shape[0])

    def rows(self, texts: Sequence[str]) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
        """Each text's non-zero buckets and their L2-normalised tf-idf weights."""
        out: list[tuple[npt.NDArray[np.int64], FloatArray]] = []
        for text in texts:
            counts = bucket_counts(text, self.ngram_min, self.ngram_max, self.buckets)
            idx = np.fromiter(counts, np.int64, len(counts))
            tf = np.log(np.fromiter(counts.values(), np.float32, len(counts))) + 1.0
            w = (tf * self.idf[idx]).astype(np.float32)
            norm = float(np.sqrt(w @ w))
            out.append((idx, w / norm if norm > 0 else w))
        return out

    def logits(self, texts: Sequence[str]) -> FloatArray:
        return np.array(
            [float(w @ self.coef[idx]) + self.bias for idx, w in self.rows(texts)], dtype=np.float32
        ).reshape(len(texts))

    def combine(self, head_prob: FloatArray, texts: Sequence[str], languages: Sequence[str]) -> FloatArray:
        """The head's probability and this model's, mixed on the logit scale: ``(1 - mix) * logit(head) +
        mix * logit(lexical)``, ``mix`` the text's language's share (0 for a language not in ``mixes``)."""
        mix = np.array([self.mixes.get(lang, 0.0) for lang in languages], np.float64)
        out: FloatArray = head_prob.astype(np.float32, copy=True)
        mixed = np.flatnonzero(mix > 0)
        if not len(mixed):
            return out
        p = np.clip(head_prob[mixed].astype(np.float64), 1e-9, 1 - 1e-9)
        head_z = np.clip(np.log(p / (1 - p)), -LOGIT_CLIP, LOGIT_CLIP)
        lex_z = np.clip(
            self.logits([texts[int(i)] for i in mixed]).astype(np.float64), -LOGIT_CLIP, LOGIT_CLIP
        )
        z = (1.0 - mix[mixed]) * head_z + mix[mixed] * lex_z
        out[mixed] = 1.0 / (1.0 + np.exp(-z))
        return out


def save_lexical(path: Path, model: LexicalModel) -> None:
    spec = {
        **dict(model.meta),
        "ngram_min": model.ngram_min,
        "ngram_max": model.ngram_max,
        "buckets": model.buckets,
        "mixes": dict(sorted(model.mixes.items())),
    }
    tensors = {
        "idf": np.ascontiguousarray(model.idf, dtype=np.float32),
        "coef": np.ascontiguousarray(model.coef, dtype=np.float32),
        "bias": np.array([model.bias], dtype=np.float32),
    }
    save_file(tensors, str(path), metadata={"spec": json.dumps(spec, sort_keys=True)})


def load_lexical(path: Path) -> LexicalModel | None:
    """The model at ``path``, or None when there is no file (the embedding head then reads alone)."""
    if not path.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        spec = json.loads((f.metadata() or {}).get("spec", "{}"))
    tensors = load_file(str(path))
    idf, coef = tensors["idf"].astype(np.float32), tensors["coef"].astype(np.float32)
    if idf.shape != coef.shape or idf.ndim != 1 or int(spec.get("buckets", -1)) != idf.shape[0]:
        raise ValueError(f"{path}: idf {idf.shape} and coef {coef.shape} do not match spec {spec}")
    mixes = {str(lang): float(m) for lang, m in dict(spec["mixes"]).items()}
    for lang, mix in mixes.items():
        if not 0.0 <= mix <= 1.0 or math.isnan(mix):
            raise ValueError(f"{path}: mix {mix} for {lang!r} outside [0, 1]")
    return LexicalModel(
        idf=idf,
        coef=coef,
        bias=float(tensors["bias"][0]),
        ngram_min=int(spec["ngram_min"]),
        ngram_max=int(spec["ngram_max"]),
        mixes=mixes,
        meta={k: v for k, v in spec.items() if k not in SPEC_KEYS},
    )
