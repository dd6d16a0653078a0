"""Scorer speed (``router bench scorer --json PATH``), all in one run on the same messages:

(a) naive: ``transformers.pipeline("feature-extraction")`` on the same encoder, one message per call
    (plus mean pooling), the way a first implementation would do it;
(b) scorer: ``TransformerScorer.score`` end to end on batches of 32 (tokenize, bucket, encode, pool, heads);
    every message is distinct, so the cache never answers;
(c) forward: only the encoder forward pass + pooling on the same batches, already tokenized and padded
    the way the scorer pads them.

(b) and (c) use the default scorer (``backend``: ONNX Runtime int8 when ``scripts/export_onnx.py`` has
written the encoder, else torch fp32) and are timed interleaved, batch by batch, so that the drifting load
of a shared machine hits both alike. When the ONNX file is present, both backends' scorers are then timed
on the same batches, alternating batch by batch (``torch_*`` / ``onnx_*`` keys, ``onnx_vs_torch``), and
their outputs are compared on the same messages (embedding cosine, intensity difference, topic agreement).

(d) minilm: when the English-only all-MiniLM-L6-v2 has an int8 export at ``.cache/onnx/minilm-int8.onnx``
(``scripts/export_onnx.py --model-dir MINILM --out .cache/onnx/minilm-int8.onnx``), the same scorer code
with that encoder swapped in (same heads, so the same work after the encoder) is timed interleaved with (b)
on the same batches: ``minilm_msgs_per_s`` and ``multilingual_vs_minilm``, the price of reading eleven
languages instead of one.

(e) acoustic: the voice features of one turn's audio (router.scoring.acoustic), timed interleaved with (b)
on the same batches, one clip per message: ``acoustic_ms_per_turn`` against ``scorer_ms_per_turn`` and
their ratio ``acoustic_share`` (what the acoustic step adds to a voice turn: the worker runs it before
the batch's text scoring, not beside it, so nothing is discounted for overlap; docs/voice.md), and the
step's CPU time ``acoustic_cpu_ms_per_turn``. The clips are the bench's messages read by espeak-ng at
8 kHz (calm, neutral and agitated in turn), or a synthetic voice without it.

(f) batch dependence: whether a message's scores move with the other messages in its batch. A graph
exported with ``--scales dynamic`` quantises activations with one scale per tensor per call, so they do;
the default export's scales depend on each text alone (``router.scoring.onnx_scales``), so they should
not. The first ``n_compare`` messages are scored alone and inside their batches of 32:
``batch_mot_prob_absdiff_mean`` / ``_p99`` / ``_max`` (float noise on torch and on fixed scales).

(g) context: with a ``mot_context`` head, the cost of reading each turn after its contact's earlier turns.
Two fresh scorers take the same batches, interleaved batch by batch, one alone and one with each message
given the message at its place in the batch before as its earlier turn (scored before, as the worker's
contact's earlier turn was): ``context_msgs_per_s``, ``alone_msgs_per_s`` and ``context_vs_alone``.
"""

from __future__ import annotations

import csv
import itertools
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


# ~50 varied customer turns: routine and emotional, short and long, typos, several languages, emoji.
QUALITY_TEXTS = [
    "my card was stolen and someone emptied my account, I am panicking",
    "what are your opening hours",
    "my card was stolen and there are payments I didn't make",
    "I want to talk to a real person, not a bot",
    "I want to speak to a human right now",
    "yes",
    "agent please",
    "ok thanks",
    "Thank you so much for your help today!",
    "my flight was cancelled an hour before boarding and nobody is helping",
    "can I get a copy of my last invoice please",
    "I have been charged twice for the same order and I want my money back now",
    "how do I change the address on my account",
    "my internet has been cut off for three days and I work from home",
    "My father passed away last week and I need to close his account",
    "Lost luggage again. Third time this year. Unbelievable.",
    "The washing machine you sold me broke after two weeks and it flooded my kitchen",
    "hi, just checking the status of my refund request from Monday",
    "Is there a fee for international transfers?",
    "why is there a charge of 49.99 on my statement I never ordered anything",
    "I've been on hold for 2 hours!!! This is ridiculous",
    "can you reset my password",
    "Someone opened a loan in my name, I think my identity was stolen",
    "I missed my connecting flight because your first flight was late",
    "please cancel my subscription",
    "you people are useless, I'm switching banks tomorrow",
    "What's the exchange rate for euros today?",
    "my card got declined at the supermarket and I was so embarrassed",
    "I need to update my phone number",
    "The app keeps crashing when I try to pay a bill",
    "They cut off my electricity even though I paid on time, I have a newborn at home",
    "Could you tell me how to activate my new card?",
    "I was transferred five times and nobody can answer a simple question",
    "great service, the agent was very kind",
    "where is my parcel? it was supposed to arrive yesterday",
    "ATM swallowed my card",
    "I'm really worried, I can't access my savings and rent is due tomorrow",
    "how long does a bank transfer take",
    "the hotel booking you confirmed doesn't exist, we are stranded at midnight with two kids",
    "do you have a student discount",
    "Sono furioso, mi avete bloccato la carta e nessuno risponde!",
    "Buongiorno, a che ora aprite sabato?",
    "Mi-au furat cardul și nu pot bloca contul",
    "Kiitos nopeasta vastauksesta",
    "¿Dónde está mi reembolso? Llevo un mes esperando",
    "Ich möchte bitte meine Adresse ändern",
    "😡😡😡 worst airline ever",
    "lol ok 👍",
    "x " * 200,
    "",
    "The representative hung up on me twice. I am filing a formal complaint with the regulator.",
    "Hello, I would like to know whether my order number 1234567 has been shipped yet, and if so when "
    "it should arrive, because I need it before my daughter's birthday party on Saturday afternoon.",
]

# The texts of tests/scoring/test_transformer.py (issue 3's acceptance texts among them).
ACCEPTANCE_TEXTS = [
    "my card was stolen and someone emptied my account, I am panicking",
    "what are your opening hours",
    "",
    "x " * 500,
    "I want to speak to a human right now",
    "my card was stolen and there are payments I didn't make",
    "I want to talk to a real person, not a bot",
    "yes",
    "agent please",
    "Sono furioso, mi avete bloccato la carta e nessuno risponde!",
    "Buongiorno, a che ora aprite sabato?",
]
# "Equal quality" for the ONNX encoder, checked by scripts/export_onnx.py before the scorer may pick it
# by itself. What must be equal is what the router acts on: the detector's verdict (router.domain.mot, on
# each text as a contact's first turn) and its inputs. On the acceptance texts (the contract): the same
# verdict, intensity within 0.05 and moment-of-truth probability within 0.1 (the int8 graph moves the
# probability of the degenerate 500 x "x " by 0.08). On all quality + acceptance texts:
# intensity within 0.05 each, the moment-of-truth probability within 0.02 on average, the topic
# probability (one of the detector's inputs and the reason's wording) within 0.04 on average, and the same
# verdict on at least 95% of them (an acceptance text whose detector probability is within 0.02 of the
# threshold on both backends may cross it: GATE_NEAR_THRESHOLD). Not per-text identity everywhere: dynamic
# int8 quantisation scales activations per batch, so a text sitting on a threshold can cross it with its
# batch-mates, as a retrained head would move it; `router evaluate` on both backends is the dataset-level
# check (MODEL_CARD). The embedding cosine only catches a broken export (int8 moves "ok thanks" a few
# percent, no verdict).
GATE_MIN_COSINE = 0.95
GATE_MEAN_COSINE = 0.99
GATE_MAX_INTENSITY_DIFF = 0.05
GATE_MAX_MOT_PROB_DIFF = 0.1
GATE_MEAN_MOT_PROB_DIFF = 0.02
GATE_MEAN_TOPIC_PROB_DIFF = 0.04
GATE_MIN_VERDICT_AGREEMENT = 0.95
GATE_NEAR_THRESHOLD = 0.02


def _verdicts(scores: Sequence[Any]) -> list[tuple[bool, float | None]]:
    """The routing policy's verdict on each score as a contact's first turn (the learned detector when
    models/ has one, else the hand rules), with how far the detector's probability is from its threshold
    (None for the hand rules)."""
    from router.domain.model import ContactView
    from router.domain.mot import MotThresholds, detect, model_probability, observe_turn
    from router.scoring.detector import load_mot_model

    model = load_mot_model()
    th = MotThresholds(model=model)
    out: list[tuple[bool, float | None]] = []
    for s in scores:
        view, _ = observe_turn(ContactView(contact_id="gate", channel="chat"), s.turn(1), th)
        margin = None if model is None else model_probability(view, model) - model.threshold
        out.append((detect(view, th).is_mot, margin))
    return out


def _same_verdict(a: tuple[bool, float | None], b: tuple[bool, float | None]) -> bool:
    """The same verdict, or both within GATE_NEAR_THRESHOLD of the detector's threshold: a text on the
    threshold crosses it with int8 noise as it would with a retrained head, and says nothing of the export."""
    if a[0] == b[0]:
        return True
    return a[1] is not None and b[1] is not None and max(abs(a[1]), abs(b[1])) <= GATE_NEAR_THRESHOLD


def onnx_quality(torch_scorer: Any, onnx_scorer: Any) -> dict[str, Any]:
    """Compare the ONNX scorer with torch on QUALITY_TEXTS and ACCEPTANCE_TEXTS; ``passed`` is the gate."""
    texts = QUALITY_TEXTS + ACCEPTANCE_TEXTS
    a = torch_scorer.encoder.embed(texts)
    b = onnx_scorer.encoder.embed(texts)
    cos = (a * b).sum(axis=1)
    st = torch_scorer.score_embeddings(a, texts)
    so = onnx_scorer.score_embeddings(b, texts)
    idiff = [abs(x.intensity - y.intensity) for x, y in zip(st, so, strict=True)]
    mdiff = [abs(x.mot_prob - y.mot_prob) for x, y in zip(st, so, strict=True)]
    pdiff = [abs(x.topic_prob - y.topic_prob) for x, y in zip(st, so, strict=True)]
    vt, vo = _verdicts(st), _verdicts(so)
    rows = list(zip(texts, st, so, vt, vo, strict=True))
    verdict_changed = [
        f"{text!r}: {x[0]} -> {y[0]} (p - threshold {x[1]} / {y[1]})"
        for text, _, _, x, y in rows
        if x[0] != y[0]
    ]
    contract_broken = [
        f"{text!r}: verdict {v} -> {w}, intensity {x.intensity:.3f} -> {y.intensity:.3f}, "
        f"mot_prob {x.mot_prob:.3f} -> {y.mot_prob:.3f}"
        for text, x, y, v, w in rows
        if text in ACCEPTANCE_TEXTS
        and (
            not _same_verdict(v, w)
            or abs(x.intensity - y.intensity) > GATE_MAX_INTENSITY_DIFF
            or abs(x.mot_prob - y.mot_prob) > GATE_MAX_MOT_PROB_DIFF
        )
    ]
    agreement = float(np.mean([v[0] == w[0] for v, w in zip(vt, vo, strict=True)]))
    worst = int(cos.argmin())
    return {
        "texts": len(texts),
        "cosine_min": round(float(cos.min()), 4),
        "cosine_mean": round(float(cos.mean()), 4),
        "cosine_worst_text": texts[worst][:80],
        "intensity_absdiff_max": round(float(max(idiff)), 4),
        "intensity_worst_text": texts[int(np.argmax(idiff))][:80],
        "mot_prob_absdiff_mean": round(float(np.mean(mdiff)), 4),
        "mot_prob_absdiff_max": round(float(max(mdiff)), 4),
        "topic_prob_absdiff_mean": round(float(np.mean(pdiff)), 4),
        "verdict_agreement": round(agreement, 4),
        "verdict_changed": verdict_changed,
        "acceptance_changed": contract_broken,
        "heads_sha256": torch_scorer.heads_sha256,
        "passed": bool(
            cos.min() >= GATE_MIN_COSINE
            and cos.mean() >= GATE_MEAN_COSINE
            and max(idiff) <= GATE_MAX_INTENSITY_DIFF
            and np.mean(mdiff) <= GATE_MEAN_MOT_PROB_DIFF
            and np.mean(pdiff) <= GATE_MEAN_TOPIC_PROB_DIFF
            and agreement >= GATE_MIN_VERDICT_AGREEMENT
            and not contract_broken
        ),
    }


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


def cache_hits(scorer: Any) -> int:
    """Answers a scorer took from its caches (scores, and embeddings of texts seen before)."""
    return int(scorer.cache.hits + scorer.embeddings.hits)


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def _backend_detail(scorer: Any) -> str:
    enc = scorer.encoder
    if enc.backend == "onnx":
        return f"onnxruntime int8 ({enc.onnx_path.name}), {enc.threads} intra-op threads"
    return f"torch fp32 eager, {enc.threads} threads"


def _padded_buckets(enc: Any, batch: Sequence[str]) -> list[tuple[Any, Any]]:
    """``batch`` tokenized and padded the way the scorer pads it (length buckets)."""
    from router.scoring.transformer import length_buckets

    ids = enc.tokenize(batch)
    return [enc.pad([ids[i] for i in bucket]) for bucket in length_buckets([len(x) for x in ids])]


def _compare_backend_speed(scorers: dict[str, Any], batches: list[list[str]]) -> dict[str, Any]:
    """Both backends' scorers on the same batches, alternating batch by batch so that a change in machine
    load hits both alike; a phase of its own, after (b) and (c), so that the other backend's threads
    (torch's OpenMP pool spins for a while after each call) cannot slow (b)."""
    lats: dict[str, list[float]] = {name: [] for name in scorers}
    for sc in scorers.values():
        sc.score(batches[0])  # a backend's first calls allocate: keep them out of the timing
        sc.clear_caches()  # (b) scored these very batches
    for b in batches:
        for name, sc in scorers.items():
            t1 = time.perf_counter()
            sc.score(b)
            lats[name].append((time.perf_counter() - t1) * 1000)
    n = sum(len(b) for b in batches)
    res: dict[str, Any] = {}
    for name, sc in scorers.items():
        res[f"{name}_scorer_msgs_per_s"] = round(n / (sum(lats[name]) / 1000), 1)
        res[f"{name}_batch32_p50_ms"] = round(_pct(lats[name], 50), 1)
        res[f"{name}_batch32_p99_ms"] = round(_pct(lats[name], 99), 1)
        res[f"{name}_cache_hits"] = cache_hits(sc)
    res["onnx_vs_torch"] = round(res["onnx_scorer_msgs_per_s"] / res["torch_scorer_msgs_per_s"], 2)
    return res


def compare_backends(torch_scorer: Any, onnx_scorer: Any, texts: Sequence[str]) -> dict[str, Any]:
    """Embedding cosine and head agreement of the two backends on the same texts."""
    a = torch_scorer.encoder.embed(texts)
    b = onnx_scorer.encoder.embed(texts)
    cos = (a * b).sum(axis=1)
    sa = torch_scorer.score_embeddings(a, texts)
    sb = onnx_scorer.score_embeddings(b, texts)
    diff = np.abs(np.asarray([x.intensity - y.intensity for x, y in zip(sa, sb, strict=True)]))
    return {
        "compare_messages": len(texts),
        "onnx_cosine_min": round(float(cos.min()), 4),
        "onnx_cosine_p1": round(_pct(cos.tolist(), 1), 4),
        "onnx_cosine_mean": round(float(cos.mean()), 4),
        "onnx_intensity_absdiff_mean": round(float(diff.mean()), 4),
        "onnx_intensity_absdiff_max": round(float(diff.max()), 4),
        "onnx_topic_agreement": round(
            sum(x.topic == y.topic for x, y in zip(sa, sb, strict=True)) / len(sa), 4
        ),
    }


def batch_dependence(scorer: Any, batches: Sequence[Sequence[str]], n: int) -> dict[str, Any]:
    """(f): ``mot_prob`` of the first ``n`` messages scored one per call against inside their batches.
    The scorer's cache must be off or cold for these texts, or it answers the second call."""
    texts = [t for b in batches for t in b][:n]
    if not texts:
        return {}
    batched = {
        t: s.mot_prob for b in batches for t, s in zip(b, scorer.score(list(b)), strict=True) if t in texts
    }
    diff = [abs(scorer.score([t])[0].mot_prob - batched[t]) for t in texts]
    return {
        "batch_dependence_messages": len(texts),
        "batch_mot_prob_absdiff_mean": round(float(np.mean(diff)), 4),
        "batch_mot_prob_absdiff_p99": round(_pct(diff, 99), 4),
        "batch_mot_prob_absdiff_max": round(float(max(diff)), 4),
    }


def context_cost(threads: int, backend: str, batches: Sequence[Sequence[str]]) -> dict[str, Any]:
    """(g): turns read after an earlier turn against alone, same batches, interleaved."""
    from router.scoring.transformer import MOT_CONTEXT_HEAD, TransformerScorer

    alone = TransformerScorer(threads=threads, cache_size=4096, backend=backend)
    if MOT_CONTEXT_HEAD not in alone.heads or len(batches) < 2:
        return {}
    read = TransformerScorer(threads=threads, cache_size=4096, backend=backend)
    alone.score(list(batches[0]))
    read.score(list(batches[0]))
    spent = {"alone": 0.0, "read": 0.0}
    for k, (before, batch) in enumerate(itertools.pairwise(batches)):
        earlier = [[before[i % len(before)]] for i in range(len(batch))]
        # which goes first alternates: the second of two calls in a row runs on warmer caches
        for name in ("alone", "read") if k % 2 == 0 else ("read", "alone"):
            t0 = time.perf_counter()
            if name == "alone":
                alone.score(list(batch))
            else:
                read.score(list(batch), contexts=earlier)
            spent[name] += time.perf_counter() - t0
    alone_s, read_s = spent["alone"], spent["read"]
    n = sum(len(b) for b in batches[1:])
    return {
        "alone_msgs_per_s": round(n / alone_s, 1),
        "context_msgs_per_s": round(n / read_s, 1),
        "context_vs_alone": round(alone_s / read_s, 3),
    }


ACOUSTIC_CLIPS = 32


def _voice_clips(texts: Sequence[str]) -> tuple[list[str], str]:
    from router.scoring.voice_clips import espeak_wav, have_espeak, synthetic_wav

    if not have_espeak():
        clips = [synthetic_wav(2.5 + i % 4, 100.0 + 10 * i, seed=i) for i in range(ACOUSTIC_CLIPS)]
        return clips, "synthetic"
    manners = ("calm", "neutral", "agitated")
    voices = ("en-us", "en-gb", "en-us+f3", "en-us+m3")
    clips = [
        espeak_wav(" ".join(t.split()[:20]) or "hello", voices[i % 4], manners[i % 3])  # type: ignore[arg-type]
        for i, t in enumerate(texts[:ACOUSTIC_CLIPS])
    ]
    return clips, "espeak-ng"


def _acoustic_step(scorer: Any, batches: list[list[str]]) -> dict[str, Any]:
    """(e): per voice turn, the acoustic step (decode + features) and the rest of what the audio event
    costs a worker (its parse and content digest), beside the scorer, batch by batch (the scorer's cache
    emptied first: (b) scored these very batches)."""
    from router.events import ContactAudio, event_digest, parse_event
    from router.scoring.acoustic import features_from_wav

    clips, source = _voice_clips([t for b in batches for t in b])
    raws = [json.dumps({"type": "contact.audio", "contact_id": "c", "seq": 1, "audio": c}) for c in clips]
    scorer.clear_caches()
    text_s = acoustic_s = acoustic_cpu_s = event_s = 0.0
    n = 0
    for b in batches:
        t0 = time.perf_counter()
        scorer.score(b)
        t1 = time.perf_counter()
        text_s += t1 - t0
        for i in range(len(b)):
            t2 = time.perf_counter()
            ev = parse_event(raws[(n + i) % len(raws)])
            event_digest(ev)
            event_s += time.perf_counter() - t2
            assert isinstance(ev, ContactAudio)
            c3 = time.thread_time()
            t3 = time.perf_counter()
            features_from_wav(ev.audio, 60.0)
            acoustic_s += time.perf_counter() - t3
            acoustic_cpu_s += time.thread_time() - c3
        n += len(b)
    seconds = sum(_clip_seconds(c) for c in clips) / len(clips)
    return {
        "acoustic_ms_per_turn": round(1000 * acoustic_s / n, 3),
        # the step's own CPU time (one thread): near its wall time on a quiet machine, and much less
        # inflated than the wall time when other jobs take turns on the cores
        "acoustic_cpu_ms_per_turn": round(1000 * acoustic_cpu_s / n, 3),
        "audio_event_ms_per_turn": round(1000 * event_s / n, 3),
        "scorer_ms_per_turn": round(1000 * text_s / n, 3),
        "acoustic_share": round(acoustic_s / text_s, 3),
        "acoustic_and_event_share": round((acoustic_s + event_s) / text_s, 3),
        "acoustic_audio_s_per_turn": round(seconds, 2),
        "acoustic_clips": f"{len(clips)} from {source}, 8 kHz",
    }


def _clip_seconds(b64: str) -> float:
    from router.audio import decode_wav

    return decode_wav(b64).duration_s


MINILM_ONNX = "minilm-int8.onnx"


def _compare_minilm(scorer: Any, batches: list[list[str]]) -> dict[str, Any]:
    import copy

    from router.scoring.cache import LRUCache
    from router.scoring.transformer import ONNX_CACHE_PATH, Encoder, minilm_dir

    path = ONNX_CACHE_PATH.with_name(MINILM_ONNX)
    if not path.exists():
        return {"minilm": f"skipped: no {path} (see router.scoring.bench)"}
    minilm = copy.copy(scorer)
    minilm.encoder = Encoder(
        model_dir=minilm_dir(), backend="onnx", onnx_path=path, threads=scorer.encoder.threads
    )
    # no caches, and none shared: a shallow copy would answer MiniLM's texts with e5's embeddings
    for sc in (minilm, scorer):
        sc.cache, sc.embeddings, sc.mot_logit_cache = LRUCache(0), LRUCache(0), LRUCache(0)
    minilm.score(batches[0])
    spent = {"e5": 0.0, "minilm": 0.0}
    for b in batches:
        for name, sc in (("e5", scorer), ("minilm", minilm)):
            t = time.perf_counter()
            sc.score(b)
            spent[name] += time.perf_counter() - t
    n = sum(len(b) for b in batches)
    return {
        "multilingual_msgs_per_s": round(n / spent["e5"], 1),
        "minilm_msgs_per_s": round(n / spent["minilm"], 1),
        "multilingual_vs_minilm": round(spent["minilm"] / spent["e5"], 3),
    }


def run_bench_scorer(
    json_path: Path | None,
    n_messages: int = 1024,
    n_naive: int = 192,
    threads: int = 0,
    data_dir: Path | None = None,
    n_compare: int = 256,
    compare_onnx: bool = True,
    backend: str = "auto",
    acoustic_only: bool = False,
) -> dict[str, Any]:
    """Figures of the module docstring, on the ``backend`` encoder (Settings.encoder_backend);
    ``compare_onnx=False`` skips timing the second backend; ``acoustic_only`` measures (e) alone (a
    minute where the whole bench takes several)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from router.bench.cpu import StealMeter
    from router.scoring.transformer import TransformerScorer, find_onnx_model

    steal = StealMeter()

    scorer = TransformerScorer(threads=threads, cache_size=4 * n_messages, backend=backend)
    enc = scorer.encoder
    msgs = bench_messages(n_messages + n_naive + BATCH, data_dir)
    warm, naive_msgs, msgs = msgs[:BATCH], msgs[BATCH : BATCH + n_naive], msgs[BATCH + n_naive :]
    batches = [msgs[i : i + BATCH] for i in range(0, len(msgs), BATCH)]
    if acoustic_only:
        scorer.score(warm)
        res_e: dict[str, Any] = {"backend": scorer.backend, "threads": enc.threads}
        res_e.update(_acoustic_step(scorer, batches))
        res_e["cpu_steal_share"] = steal.share()
        _write_json(json_path, res_e)
        return res_e

    # (a) naive pipeline, one message per call
    from transformers import pipeline

    pipe: Any = pipeline("feature-extraction", model=enc.model_dir, tokenizer=enc.model_dir, device=-1)
    pipe(warm[0])
    t = time.perf_counter()
    for m in naive_msgs:
        tokens = np.asarray(pipe(enc.prefix + m)[0], dtype=np.float32)
        v = tokens.mean(axis=0)
        v /= np.linalg.norm(v) + 1e-12
    naive = len(naive_msgs) / (time.perf_counter() - t)
    del pipe

    # (b) scorer end to end and (c) its forward pass alone, interleaved batch by batch: on a shared
    # machine whose speed drifts by a third within a minute, two phases one after the other measured the
    # drift as much as the scorer (b/c came out anywhere from 0.71 to 1.2 on the same code)
    scorer.score(warm)
    prepared = [_padded_buckets(enc, b) for b in batches]
    lat: list[float] = []
    forward_s = 0.0
    for b, buckets in zip(batches, prepared, strict=True):
        t1 = time.perf_counter()
        scorer.score(b)
        t2 = time.perf_counter()
        for input_ids, mask in buckets:
            enc.forward(input_ids, mask)
        forward_s += time.perf_counter() - t2
        lat.append((t2 - t1) * 1000)
    scorer_rate = len(msgs) / (sum(lat) / 1000)
    forward_rate = len(msgs) / forward_s
    hits = cache_hits(scorer)
    steal_share = steal.share()
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
        "threads": enc.threads,
        "cpu": platform.processor() or platform.machine(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "backend": scorer.backend,
        "backend_detail": _backend_detail(scorer),
        # CPU time the hypervisor gave to other guests during (a)-(c): figures taken with more than a few
        # percent stolen say more about the neighbours than about the code
        "cpu_steal_share": steal_share,
    }
    res.update(_acoustic_step(scorer, batches))
    res.update(_compare_minilm(scorer, batches))
    fresh = TransformerScorer(threads=threads, cache_size=0, backend=scorer.backend)
    res.update(batch_dependence(fresh, batches[: -(-n_compare // BATCH)], n_compare))
    res.update(context_cost(threads, scorer.backend, batches))
    if compare_onnx and find_onnx_model() is not None:
        other = "torch" if scorer.backend == "onnx" else "onnx"
        pair = {
            scorer.backend: scorer,
            other: TransformerScorer(threads=threads, cache_size=4 * n_messages, backend=other),
        }
        res.update(_compare_backend_speed(pair, batches))
        res.update(compare_backends(pair["torch"], pair["onnx"], msgs[:n_compare]))
    _write_json(json_path, res)
    return res


def _write_json(json_path: Path | None, res: dict[str, Any]) -> None:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
