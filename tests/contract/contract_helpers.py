"""Helpers shared by the contract suite (``from tests.contract.contract_helpers import ...``). Fixtures live
in conftest.py beside this file."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fakeredis
import pytest
import redis

from router.events import Decision, InboundEvent, parse_event
from router.scoring.protocol import EmotionScore
from router.store.codec import agent_profile_fields
from router.store.store import Commit, OfferInfo, RoutingStore
from router.worker.consumer import Entry

T0 = 1_700_000_000.0  # the fake clock's start (seconds)


class CountingIds:
    """Stands in for the engine's ``uuid`` module: offer ids in creation order, so a run replays exactly
    (the sweep times out equal deadlines in offer-id order, and hypothesis needs the same inputs to give the
    same run)."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=next(self._n) << 64)


class FakeClock:
    """An injectable clock (Engine(clock=...)) that only moves when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    @property
    def ms(self) -> int:
        return int(self.now * 1000)


# keyword -> (intensity, topic, topic_prob, wants_human); the first match wins, in this order
SCRIPT: tuple[tuple[str, tuple[float, str | None, float, float]], ...] = (
    ("stolen", (0.91, "lost_card", 0.95, 0.0)),
    ("cancelled", (0.88, "travel_disruption", 0.9, 0.0)),
    ("furious", (0.86, None, 0.0, 0.0)),
    ("unacceptable", (0.7, None, 0.0, 0.0)),
    ("human", (0.2, None, 0.0, 0.95)),
    ("person", (0.2, None, 0.0, 0.95)),
)
ROUTINE = (0.05, None, 0.0, 0.0)


class ScriptedScorer:
    """A deterministic ``EmotionScorer``: scores chosen by keywords, every call recorded."""

    name = "scripted"

    def __init__(self, extra: Mapping[str, tuple[float, str | None, float, float]] | None = None) -> None:
        self.script = (*tuple((extra or {}).items()), *SCRIPT)
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        self.calls.append(list(texts))
        return [self.one(t) for t in texts]

    def one(self, text: str) -> EmotionScore:
        low = text.lower()
        intensity, topic, topic_prob, human = next((v for k, v in self.script if k in low), ROUTINE)
        return EmotionScore(
            intensity=intensity, topic=topic, topic_prob=topic_prob, wants_human=human, source="scripted"
        )


# ---------------------------------------------------------------------------------------------- events


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def started(
    cid: str, channel: str = "chat", *, customer: str | None = None, lang: str = "en", tier: str = "standard"
) -> dict[str, Any]:
    return ev(
        "contact.started",
        contact_id=cid,
        channel=channel,
        customer={"id": customer or f"cust-{cid}", "language": lang, "tier": tier},
    )


def message(cid: str, seq: int, text: str, speaker: str = "customer") -> dict[str, Any]:
    return ev("contact.message", contact_id=cid, seq=seq, speaker=speaker, text=text)


def parse(event: Mapping[str, Any]) -> InboundEvent:
    return parse_event(json.dumps(dict(event)))


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def xadd(store: RoutingStore, event: Mapping[str, Any] | bytes, field: bytes = b"event") -> str:
    raw = event if isinstance(event, bytes) else json.dumps(dict(event)).encode()
    eid = store.client.xadd(store.keys.events, {field: raw})
    return eid.decode() if isinstance(eid, bytes) else str(eid)


def read_group(
    store: RoutingStore, group: str, consumer: str, start: str = ">", count: int = 1000
) -> list[Entry]:
    res = store.client.xreadgroup(group, consumer, {store.keys.events: start}, count=count)
    if not res:
        return []
    return [(_txt(i), f) for i, f in res[0][1]]


# ---------------------------------------------------------------------------------------------- agents


def add_agent(
    store: RoutingStore,
    agent_id: str,
    *,
    eq: int = 3,
    capacity: Mapping[str, int] | None = None,
    languages: Sequence[str] = ("en",),
    status: str = "available",
    now_ms: int = int(T0 * 1000),
) -> None:
    fields = agent_profile_fields(
        name=f"Agent {agent_id}", eq=eq, languages=list(languages), capacity=capacity or {"chat": 1}, tags=[]
    )
    assert store.upsert_agent(agent_id, fields).ok
    if status != "offline":
        assert store.agent_status(Commit(), agent_id, status, now_ms=now_ms, requeue=[]).ok


def set_contact(
    store: RoutingStore,
    cid: str,
    *,
    status: str = "queued",
    channel: str = "chat",
    queue: str = "general",
    score: float = 0.0,
) -> None:
    """A contact written straight into the store (for store-level tests that need no engine)."""
    k = store.keys
    store.client.hset(
        k.contact(cid),
        mapping={
            "contact_id": cid,
            "channel": channel,
            "language": "en",
            "status": status,
            "queue": queue,
            "version": 1,
            "customer_id": f"cust-{cid}",
        },
    )
    if status == "queued":
        store.client.zadd(k.queue(queue), {cid: score})


def loads(store: RoutingStore, agent_id: str) -> dict[str, int]:
    rec = store.load_agent(agent_id)
    assert rec is not None
    return {ch: n for ch, n in rec.view.load.items() if n}


def offer_of(store: RoutingStore, offer_id: str) -> OfferInfo:
    info = store.load_offer(offer_id)
    assert info is not None, offer_id
    return info


# ---------------------------------------------------------------------------------------------- reading back


def decisions(store: RoutingStore) -> list[Decision]:
    return [
        Decision.model_validate_json(f[b"decision"]) for _, f in store.client.xrange(store.keys.decisions)
    ]


def dead_letters(store: RoutingStore) -> list[dict[str, str]]:
    return [{_txt(k): _txt(v) for k, v in f.items()} for _, f in store.client.xrange(store.keys.deadletter)]


def pending_ids(store: RoutingStore, group: str) -> list[str]:
    rows = store.client.xpending_range(store.keys.events, group, min="-", max="+", count=100_000)
    return [_txt(r["message_id"]) for r in rows]


# a state machine's connections: (the router's client, an admin's client on the same store, for listing and
# clearing keys, which no router role may do)
Connect = Callable[[], tuple[redis.Redis, redis.Redis]]


def connector(backend: str, request: pytest.FixtureRequest) -> Connect:
    if backend == "fakeredis":

        def fake() -> tuple[redis.Redis, redis.Redis]:
            c = fakeredis.FakeRedis(server=fakeredis.FakeServer())
            return c, c

        return fake
    url = request.getfixturevalue("real_redis_url")
    admin_url = request.getfixturevalue("real_redis_admin_url")

    def real() -> tuple[redis.Redis, redis.Redis]:
        return redis.Redis.from_url(url), redis.Redis.from_url(admin_url)

    return real


def dump_domain(client: redis.Redis, domain: str) -> dict[str, Any]:
    """Every key of the domain with its type and value (streams: entries only; TTLs left out)."""
    out: dict[str, Any] = {}
    for raw in client.scan_iter(match=f"router:{{{domain}}}:*", count=1000):
        key = _txt(raw)
        kind = _txt(client.type(key))
        value: Any
        if kind == "hash":
            value = sorted((_txt(a), _txt(b)) for a, b in client.hgetall(key).items())
        elif kind == "set":
            value = sorted(_txt(x) for x in client.smembers(key))
        elif kind == "zset":
            value = [(_txt(m), s) for m, s in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            value = [_txt(x) for x in client.lrange(key, 0, -1)]
        elif kind == "string":
            value = _txt(client.get(key))
        elif kind == "stream":
            value = [
                (_txt(i), sorted((_txt(a), _txt(b)) for a, b in f.items())) for i, f in client.xrange(key)
            ]
        else:
            value = kind
        out[key] = (kind, value)
    return out


def _txt(v: Any) -> str:
    return v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes) else str(v)


class NoAck:
    """A client whose XACK is lost: the worker 'dies' after committing and before acknowledging."""

    def __init__(self, client: redis.Redis) -> None:
        self._c = client

    def xack(self, *args: Any) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)
