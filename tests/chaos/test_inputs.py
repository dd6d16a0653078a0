"""Input and dependency faults: poison events, a failing or stalling scorer, trimming with workers down."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

import pytest
import redis

from router.scoring.fallback import FallbackScorer
from router.scoring.lexicon import LexiconScorer
from router.scoring.protocol import EmotionScore
from router.settings import Settings
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.chaos.chaos_support import audit, event_mix, produce, seed_agents, wait_drained

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.redis]

POISON: list[bytes] = [
    b"{not json",
    b'{"type": "contact.message", "contact_id": "p1", "seq": "one", "speaker": "customer", "text": "hi"}',
    b'{"type": "contact.teleported", "contact_id": "p2"}',
    json.dumps(
        {
            "type": "contact.message",
            "contact_id": "p3",
            "seq": 0,
            "speaker": "customer",
            "text": "x" * 1_000_000,
        }
    ).encode(),
    b'{"type": "contact.message", "contact_id": "p4", "seq": 0, "speaker": "customer", '
    b'"text": "\xff\xfe bad"}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"type": "agent.status", "agent_id": "nobody", "status": "available"}',
    b'{"type": "offer.accepted", "offer_id": "no-such-offer"}',
]


def _setup(url: str, domain: str) -> tuple[redis.Redis, RoutingStore]:
    client = redis.Redis.from_url(url)
    store = RoutingStore(client, domain)
    seed_agents(store)
    client.xgroup_create(store.keys.events, "router", id="0", mkstream=True)
    return client, store


def _latencies_ms(store: RoutingStore) -> list[float]:
    """Decision time minus the event's stream-entry time, for decisions caused by a stream event."""
    entry_ms: dict[str, int] = {}
    for entry_id, fields in store.client.xrange(store.keys.events):
        try:
            entry_ms[json.loads(fields[b"event"])["event_id"]] = int(entry_id.split(b"-")[0])
        except (ValueError, KeyError, UnicodeDecodeError, RecursionError):
            continue
    out = []
    for _, f in store.client.xrange(store.keys.decisions):
        d = json.loads(f[b"decision"])
        if d["event_id"] in entry_ms:
            out.append(d["ts"] * 1000 - entry_ms[d["event_id"]])
    return sorted(out)


def _run_until_drained(worker: Worker, store: RoutingStore, sent: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.run_once()
        stats = store.stats()
        if stats.get("processed", 0) + stats.get("dead_letters", 0) >= sent:
            return
    raise AssertionError(f"not drained: {store.stats()}")


def _id(entry_id: bytes) -> tuple[int, int]:
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


def _p(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * (len(values) - 1)))] if values else 0.0


def test_poison_events_are_dead_lettered_and_do_not_slow_healthy_ones(
    real_redis_url: str, domain: str
) -> None:
    settings = Settings(domain=domain, trim_interval_s=3600)
    # baseline: healthy events alone
    client, store = _setup(real_redis_url, domain + "b")
    healthy = event_mix(100, seed=6)
    produce(client, store.keys.events, healthy)
    base = Worker(store, LexiconScorer(), settings.model_copy(update={"domain": domain + "b"}), consumer="w")
    _run_until_drained(base, store, len(healthy))
    base_lat = _latencies_ms(store)

    client, store = _setup(real_redis_url, domain)
    mixed: list[bytes] = []
    for i, e in enumerate(event_mix(100, seed=6)):
        mixed.append(json.dumps(e).encode())
        if i % 60 == 0:
            mixed.append(POISON[(i // 60) % len(POISON)])
    mixed += POISON
    pipe = client.pipeline(transaction=False)
    for raw in mixed:
        pipe.xadd(store.keys.events, {"event": raw})
    pipe.xadd(store.keys.events, {"not_event": b"a field the contract does not know"})
    pipe.execute()
    sent = len(mixed) + 1
    worker = Worker(store, LexiconScorer(), settings, consumer="w")
    _run_until_drained(worker, store, sent)
    poison_sent = sent - len(healthy)
    fig = audit(store, "poison events mixed into healthy traffic", sent)
    lat = _latencies_ms(store)
    fig.notes.update(
        poison_sent=poison_sent,
        healthy_p50_ms={
            "alone": round(statistics.median(base_lat), 2),
            "with_poison": round(statistics.median(lat), 2),
        },
        healthy_p99_ms={"alone": round(_p(base_lat, 0.99), 2), "with_poison": round(_p(lat, 0.99), 2)},
    )
    fig.report()
    assert fig.lost == 0 and fig.pending == 0
    assert fig.dead_lettered == poison_sent
    assert fig.decided == len(healthy)
    for _, entry in client.xrange(store.keys.deadletter):
        assert entry[b"error"] and entry[b"deliveries"] and b"stream_id" in entry
        assert b"payload" in entry
    reasons = fig.notes["dead_letter_reasons"]
    assert {"invalid_json", "invalid_event", "unknown_agent", "unknown_offer", "missing_field"} <= set(
        reasons
    )
    # poison costs a validation each: the healthy median must stay in the same range (noisy shared machine)
    assert statistics.median(lat) <= 3 * statistics.median(base_lat) + 20


class _FaultyScorer:
    """Raises on every third batch and stalls 2 s on every fifth."""

    name = "faulty"

    def __init__(self) -> None:
        self.calls = 0
        self.inner = LexiconScorer()

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("model exploded")
        if self.calls % 5 == 0:
            time.sleep(2.0)
        return self.inner.score(texts)


def test_scorer_faults_fall_back_and_lose_nothing(real_redis_url: str, domain: str) -> None:
    client, store = _setup(real_redis_url, domain)
    events = event_mix(150, seed=7)
    produce(client, store.keys.events, events)
    scorer = FallbackScorer(_FaultyScorer(), LexiconScorer(), stall_timeout_s=0.5)
    worker = Worker(store, scorer, Settings(domain=domain, batch_size=25), consumer="w")
    _run_until_drained(worker, store, len(events))
    fig = audit(store, "scorer exceptions and 2 s stalls", len(events))
    fig.notes.update(scorer_fallbacks=scorer.fallbacks, scorer_stalls=scorer.stalls)
    fig.report()
    assert scorer.fallbacks > 0 and scorer.stalls > 0
    assert fig.lost == 0 and fig.dead_lettered == 0 and fig.decided == len(events)
    assert store.stats().get("scorer_fallbacks", 0) == scorer.fallbacks


def test_trimming_while_workers_are_down_keeps_unprocessed_entries(redis_server: Any, domain: str) -> None:
    client, store = _setup(redis_server.url, domain)
    settings = Settings(domain=domain, batch_size=50)
    first = event_mix(100, seed=8, prefix="a")
    produce(client, store.keys.events, first)
    worker = Worker(store, LexiconScorer(), settings, consumer="w1")
    for _ in range(4):  # part of the stream processed, part read and left pending, the rest never read
        worker.run_once()
    worker.r.xreadgroup("router", "w1", {store.keys.events: ">"}, count=30)  # read, then the worker "dies"
    later = event_mix(100, seed=9, prefix="b")  # producers keep writing while no worker runs
    produce(client, store.keys.events, later)
    before = {eid for eid, _ in client.xrange(store.keys.events)}
    pending = {r["message_id"] for r in client.xpending_range(store.keys.events, "router", "-", "+", 10_000)}
    undelivered = {eid for eid in before if _id(eid) > max(_id(p) for p in pending)}
    trimmer = Worker(store, LexiconScorer(), settings, consumer="w2")
    trimmed = sum(trimmer.trim() for _ in range(3))
    after = {eid for eid, _ in client.xrange(store.keys.events)}
    assert pending <= after, "a pending entry was trimmed"
    assert undelivered <= after, "an entry never delivered was trimmed"
    sent = len(first) + len(later)
    fresh = Worker(
        store, LexiconScorer(), settings.model_copy(update={"claim_min_idle_ms": 1}), consumer="w3"
    )
    _run_until_drained(fresh, store, sent)
    wait_drained(store, "router", sent, timeout_s=60)
    fig = audit(store, "trimming while workers are down", sent)
    fig.notes.update(trimmed_entries=trimmed, pending_kept=len(pending), undelivered_kept=len(undelivered))
    fig.report()
    assert trimmed > 0
    assert fig.lost == 0 and fig.decided == sent
