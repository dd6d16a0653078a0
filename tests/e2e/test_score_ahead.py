"""Score-ahead (``Settings.score_ahead``): the worker reads and scores the next batch on a helper thread while
the current one applies. On a real server only (it needs blocking reads)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import redis

from router.scoring.lexicon import LexiconScorer
from router.scoring.protocol import EmotionScore
from router.settings import Settings
from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore
from router.worker.consumer import Worker


class LanguageRecorder:
    """The lexicon scorer, noting the language each text was scored with."""

    name = "lexicon"

    def __init__(self) -> None:
        self.inner = LexiconScorer()
        self.seen: dict[str, str | None] = {}

    def score(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[EmotionScore]:
        for i, text in enumerate(texts):
            self.seen[text] = languages[i] if languages is not None else None
        return self.inner.score(texts)


def _events(n_contacts: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n_contacts):
        cid = f"c{i}"
        out.append(
            {
                "type": "contact.started",
                "contact_id": cid,
                "channel": "chat",
                "customer": {"id": f"u{i}", "language": "it" if i % 2 else "en"},
            }
        )
        out += [
            {
                "type": "contact.message",
                "contact_id": cid,
                "seq": k,
                "speaker": "customer",
                "text": f"{cid} t{k}",
            }
            for k in range(2)
        ]
        out.append({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})
    return [{**e, "event_id": f"e{n}"} for n, e in enumerate(out)]


def _setup(url: str, domain: str, events: list[dict[str, Any]]) -> RoutingStore:
    store = RoutingStore(redis.Redis.from_url(url), domain)
    for a in range(3):
        fields = agent_profile_fields(
            name=f"A{a}", eq=3, languages=["en", "it"], capacity={"chat": 2}, tags=[]
        )
        store.upsert_agent(f"a{a}", {**fields, "status": "available"})
    pipe = store.client.pipeline(transaction=False)
    for e in events:
        pipe.xadd(store.keys.events, {"event": json.dumps(e)})
    pipe.execute()
    return store


def _pending(store: RoutingStore, group: str) -> int:
    info: Any = store.client.xpending(store.keys.events, group)
    return int(info["pending"])


def test_read_ahead_batch_stays_pending_until_applied(real_redis_url: str, domain: str) -> None:
    events = _events(10)
    store = _setup(real_redis_url, domain, events)
    settings = Settings(domain=domain, batch_size=8, block_ms=50, score_ahead="on")
    worker = Worker(store, LexiconScorer(), settings, consumer="ahead")
    worker.ensure_group()
    worker.run_once()  # the own-pending pass (empty)
    assert worker.run_once() == 8
    assert worker.read_ahead is not None
    worker.read_ahead.result()  # read and scored, not applied: pending for this consumer, not acknowledged
    assert store.stats().get("processed", 0) == 8
    assert _pending(store, settings.group) == 8
    worker.stop()
    worker.run()  # stops at once, applying the batch read ahead first
    assert worker.read_ahead is None
    assert not [t for t in threading.enumerate() if t.name.startswith("score-ahead")]  # the pool is shut
    assert store.stats().get("processed", 0) == 16
    assert _pending(store, settings.group) == 0


def test_backlog_drains_with_languages_from_starts_read_ahead(real_redis_url: str, domain: str) -> None:
    events = _events(40)
    store = _setup(real_redis_url, domain, events)
    scorer = LanguageRecorder()
    # batches of 3 split contacts: a turn is often read ahead before its contact.started has applied
    settings = Settings(domain=domain, batch_size=3, block_ms=50, score_ahead="on")
    worker = Worker(store, scorer, settings, consumer="ahead")
    worker.run(max_idle_s=0.5)
    assert store.stats().get("processed", 0) == len(events)
    assert _pending(store, settings.group) == 0
    assert store.stats().get("dead_letters", 0) == 0
    texts = [e["text"] for e in events if e["type"] == "contact.message"]
    assert set(scorer.seen) == set(texts)
    for text in texts:
        i = int(text.split()[0][1:])
        assert scorer.seen[text] == ("it" if i % 2 else "en"), text


def test_off_reads_one_batch_at_a_time(real_redis_url: str, domain: str) -> None:
    store = _setup(real_redis_url, domain, _events(4))
    worker = Worker(store, LexiconScorer(), Settings(domain=domain, batch_size=4, score_ahead="off"))
    worker.ensure_group()
    worker.run_once()
    assert worker.run_once() == 4
    assert worker.read_ahead is None
    assert _pending(store, "router") == 0


def test_auto_is_off_for_the_lexicon(real_redis_url: str, domain: str) -> None:
    store = RoutingStore(redis.Redis.from_url(real_redis_url), domain)
    settings = Settings(domain=domain)
    assert settings.score_ahead == "auto"
    assert not Worker(store, LexiconScorer(), settings).score_ahead
    assert Worker(store, LexiconScorer(), Settings(domain=domain, score_ahead="on")).score_ahead
    # without blocking reads (fakeredis, the in-process demo worker) it is always off
    assert not Worker(
        store, LexiconScorer(), settings.model_copy(update={"score_ahead": "on"}), supports_blocking=False
    ).score_ahead


@pytest.mark.model
def test_auto_is_on_for_the_transformer(real_redis_url: str, domain: str) -> None:
    from router.scoring.factory import build_scorer

    settings = Settings(domain=domain, scorer="transformer")
    scorer = build_scorer(settings)
    assert scorer.name == "transformer"
    worker = Worker(RoutingStore(redis.Redis.from_url(real_redis_url), domain), scorer, settings)
    assert worker.score_ahead
