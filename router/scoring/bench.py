"""Scorer speed (``router bench scorer --json PATH``), all in one run on the same messages:

(a) naive: ``transformers.pipeline("feature-extraction")`` on the same encoder, one message per call
    (plus mean pooling), the way a first implementation would do it;
(b) scorer: ``TransformerScorer.score`` end to end on batches of 32 (tokenize, bucket, encode, pool, heads);
    every message is distinct, so the cache never answers;
(c) forward: only the encoder forward pass + pooling on the same batches, already tokenized and padded
    the way the scorer pads them.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
BATCH = 32

_FALLBACK = [
    "my card was stolen and someone emptied my account, I am panicking",
    "what are your opening hours",
    "my flight was cancelled an hour before boarding and nobody is helping",
    "can I get a copy of my last invoice please",
    "I have been charged twice for the same order and I want my money back now",
    "how do I change the address on my account",
    "my internet has been cut off for three days and I work from home",
    "I want to speak to a real person, this bot is useless",
]


def bench_messages(n: int, data_dir: Path | None = None, seed: int = 7) -> list[str]:
    """``n`` distinct realistic customer messages: airline tweets when the data is there, else templates."""
    rng = random.Random(seed)
    path = (data_dir or DEFAULT_DATA) / "airline_tweets" / "Tweets.csv"
    texts: list[str] = []
    if path.exists():
        from router.scoring.evaluate import clean_tweet

        with path.open(encoding="utf-8") as f:
            texts = sorted({clean_tweet(r["text"]) for r in csv.DictReader(f)})
        rng.shuffle(texts)
    i = 0
    while len(texts) < n:
        texts.append(f"{_FALLBACK[i % len(_FALLBACK)]} (ref {i})")
        i += 1
    return texts[:n]


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def run_bench_scorer(
    json_path: Path | None,
    n_messages: int = 1024,
    n_naive: int = 192,
    threads: int = 0,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from router.scoring.transformer import TransformerScorer, length_buckets

    scorer = TransformerScorer(threads=threads, cache_size=4 * n_messages)
    enc = scorer.encoder
    msgs = bench_messages(n_messages + n_naive + BATCH, data_dir)
    warm, naive_msgs, msgs = msgs[:BATCH], msgs[BATCH : BATCH + n_naive], msgs[BATCH + n_naive :]
    batches = [msgs[i : i + BATCH] for i in range(0, len(msgs), BATCH)]

    # (a) naive pipeline, one message per call
    from transformers import pipeline

    pipe: Any = pipeline("feature-extraction", model=enc.model_dir, tokenizer=enc.model_dir, device=-1)
    pipe(warm[0])
    t = time.perf_counter()
    for m in naive_msgs:
        tokens = np.asarray(pipe(m)[0], dtype=np.float32)
        v = tokens.mean(axis=0)
        v /= np.linalg.norm(v) + 1e-12
    naive = len(naive_msgs) / (time.perf_counter() - t)
    del pipe

    # (b) scorer end to end, batches of 32 (distinct messages: no cache hits)
    scorer.score(warm)
    lat: list[float] = []
    t = time.perf_counter()
    for b in batches:
        t1 = time.perf_counter()
        scorer.score(b)
        lat.append((time.perf_counter() - t1) * 1000)
    total = time.perf_counter() - t
    scorer_rate = len(msgs) / total
    hits = scorer.cache.hits

    # (c) raw forward + pooling on the same batches, padded the same way, tokenization excluded
    prepared = []
    for b in batches:
        ids = enc.tokenize(b)
        prepared += [enc.pad([ids[i] for i in bucket]) for bucket in length_buckets([len(x) for x in ids])]
    enc.forward(*prepared[0])
    t = time.perf_counter()
    for input_ids, mask in prepared:
        enc.forward(input_ids, mask)
    forward_rate = len(msgs) / (time.perf_counter() - t)

    import torch

    res: dict[str, Any] = {
        "naive_msgs_per_s": round(naive, 1),
        "scorer_msgs_per_s": round(scorer_rate, 1),
        "forward_msgs_per_s": round(forward_rate, 1),
        "ratio_vs_naive": round(scorer_rate / naive, 2),
        "ratio_vs_forward": round(scorer_rate / forward_rate, 3),
        "batch32_p50_ms": round(_pct(lat, 50), 1),
        "batch32_p99_ms": round(_pct(lat, 99), 1),
        "batch32_max_ms": round(max(lat), 1),
        "messages": len(msgs),
        "naive_messages": len(naive_msgs),
        "batches": len(batches),
        "cache_hits": hits,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "backend": "torch fp32 eager",
    }
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return res
