"""Issue 14, items 3 and 4, on real `router worker` processes and a real redis-server: a bulk dead-letter
replay while the workers dead-letter the replayed events again, workers killed while the dashboard counts
them, and events that arrive before their contact or repeat an id, a turn or a seq. The API runs in this
process over the same server."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.api import create_app
from router.settings import Settings
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from tests.chaos.chaos_support import audit, event_mix, produce, seed_agents, wait_drained

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.redis]

ADMIN_KEY = "chaos-admin-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _setup(url: str, domain: str) -> tuple[redis.Redis, RoutingStore]:
    client = redis.Redis.from_url(url)
    store = RoutingStore(client, domain)
    client.xgroup_create(store.keys.events, "router", id="0", mkstream=True)
    return client, store


@pytest.fixture
def api_for() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(url: str, domain: str, **settings: Any) -> TestClient:
        s = Settings(domain=domain, admin_key=SecretStr(ADMIN_KEY), **settings)
        c = TestClient(create_app(s, StoreHandle(url=url, supports_blocking=True)))
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``check`` holds."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_bulk_replay_while_the_workers_dead_letter_again(
    redis_server: Any, workers_for: Any, api_for: Any, domain: str
) -> None:
    """200 valid events the workers dead-letter (no such agents). The bulk replay runs while two workers
    dead-letter each replayed event again at once: each is replayed once, not again from its own output."""
    n = 200
    client, store = _setup(redis_server.url, domain)
    pool = workers_for(redis_server.url, domain)
    pool.start("w1")
    pool.start("w2")
    ghosts = [{"type": "agent.status", "agent_id": f"ghost{i}", "status": "away"} for i in range(n)]
    produce(client, store.keys.events, ghosts)
    _until(lambda: client.xlen(store.keys.deadletter) == n, 60, "the first dead letters")
    api = api_for(redis_server.url, domain)
    t0 = time.monotonic()
    report = api.post("/v1/deadletters/replay?limit=10000", headers=ADMIN).json()
    call_s = time.monotonic() - t0
    replays = store.stats().get("replayed", 0)  # replay operations, this call's and any after it
    wait_drained(store, "router", n + replays, timeout_s=60)
    assert all(code == 0 for code in pool.stop_all().values())
    # the workers trim acknowledged events: count from the dead letters, one per event once drained
    again = Counter(json.loads(f[b"payload"])["agent_id"] for _, f in client.xrange(store.keys.deadletter))
    fig = audit(
        store,
        "bulk dead-letter replay while the workers dead-letter the replayed events again",
        n + replays,
    )
    fig.notes.update(
        dead_letters_before=n,
        replayed_by_the_call=len(report["replayed"]),
        replays_per_event=round(replays / n, 2),
        call_s=round(call_s, 2),
        dead_letters_after=sum(again.values()),
    )
    fig.report()
    assert fig.lost == 0
    assert len(report["replayed"]) == n and replays == n  # each once
    assert set(again.values()) == {1} and len(again) == n  # dead-lettered again, waiting for the next call


def test_killed_workers_leave_the_count(
    redis_server: Any, workers_for: Any, api_for: Any, domain: str
) -> None:
    """Three workers, two SIGKILLed mid-traffic: the dashboard's Workers and /readyz say 1 once the two are
    silent for worker_dead_after_s, and their consumers leave the group once their entries are reclaimed."""
    dead_after_s = 5.0
    client, store = _setup(redis_server.url, domain)
    seed_agents(store)
    pool = workers_for(
        redis_server.url,
        domain,
        ROUTER_WORKER_DEAD_AFTER_S=str(dead_after_s),
        ROUTER_HEARTBEAT_INTERVAL_S="1",
        ROUTER_TRIM_INTERVAL_S="1",
    )
    names = ("w1", "w2", "w3")
    for name in names:
        pool.start(name)
    events = event_mix(300, seed=14)
    produce(client, store.keys.events, events[:100])
    pool.wait_ready(client, store.keys.events, *names)
    api = api_for(redis_server.url, domain, worker_dead_after_s=dead_after_s)
    assert api.get("/v1/overview", headers=ADMIN).json()["workers"] == 3
    produce(client, store.keys.events, events[100:])
    for name in ("w2", "w3"):
        pool.signal(name, signal.SIGKILL)
    t0 = time.monotonic()
    _until(lambda: api.get("/v1/overview", headers=ADMIN).json()["workers"] == 1, 60, "Workers 1")
    shown_s = time.monotonic() - t0
    _until(lambda: len(client.xinfo_consumers(store.keys.events, "router")) == 1, 60, "1 consumer")
    gone_s = time.monotonic() - t0
    ready = api.get("/readyz").json()["checks"]["group"]["detail"]
    wait_drained(store, "router", len(events), timeout_s=120)
    assert all(code == 0 for code in pool.stop_all().values())
    fig = audit(store, "SIGKILL two of three workers: the live count and the group's consumers", len(events))
    fig.notes.update(
        worker_dead_after_s=dead_after_s,
        dashboard_workers_1_after_s=round(shown_s, 1),
        consumers_1_after_s=round(gone_s, 1),
        readyz=ready,
    )
    fig.report()
    assert fig.lost == 0 and fig.duplicate_decisions == 0 and fig.over_capacity_max <= 0
    assert ready == "group router: 1 consumers, 1 live workers"


def test_orphans_and_repeats_say_what_they_are(
    redis_server: Any, workers_for: Any, api_for: Any, domain: str
) -> None:
    """Default reclaim timings (5 s idle, 5 deliveries). A message whose contact never starts, an event_id
    reused for other content, a resent turn, a reused seq: each is named, none is silent."""
    client, store = _setup(redis_server.url, domain)
    pool = workers_for(redis_server.url, domain, ROUTER_CLAIM_MIN_IDLE_MS="5000", ROUTER_CLAIM_INTERVAL_S="1")
    pool.start("w1")
    pool.start("w2")

    def msg(eid: str, cid: str, seq: int, text: str) -> dict[str, Any]:
        return {"type": "contact.message", "event_id": eid, "contact_id": cid, "seq": seq,
                "speaker": "customer", "text": text}  # fmt: skip

    start = {"type": "contact.started", "event_id": "s1", "contact_id": "c1", "channel": "chat",
             "customer": {"id": "u1"}}  # fmt: skip
    events = [
        msg("o1", "orphan", 0, "hello, anyone?"),  # its contact never starts
        start,
        msg("m1", "c1", 0, "where is my parcel"),
        msg("m1-resent", "c1", 0, "where is my parcel"),  # the same turn again, under another id
        msg("m1", "c1", 1, "cancel everything"),  # m1 again, other content
        msg("m2", "c1", 0, "something else"),  # seq 0 again, other text
    ]
    produce(client, store.keys.events, events)

    def reasons() -> dict[str, str]:
        return {
            json.loads(f[b"payload"])["event_id"]: f[b"error"].decode()
            for _, f in client.xrange(store.keys.deadletter)
        }

    orphan_s = _until(lambda: "o1" in reasons(), 90, "the orphan's dead letter")
    api = api_for(redis_server.url, domain)
    again = api.post("/v1/events", json=msg("m1", "c1", 2, "posted with a used id"), headers=ADMIN)
    wait_drained(store, "router", len(events), timeout_s=30)
    assert all(code == 0 for code in pool.stop_all().values())
    rec = store.load_contact("c1")
    assert rec is not None
    fig = audit(
        store, "a message before its start, a reused event_id, a resent turn, a reused seq", len(events)
    )
    fig.notes.update(
        orphan_dead_lettered_after_s=round(orphan_s, 1),
        reasons=reasons(),
        turns=[t["text"] for t in rec.transcript],
        api_reused_event_id=again.status_code,
    )
    fig.report()
    assert fig.lost == 0 and again.status_code == 409
    got = reasons()
    assert got["o1"] == "unknown_contact: orphan has no contact.started after 6 deliveries"
    assert got["m1"].startswith("conflicting_duplicate: event_id m1")
    assert got["m2"] == "conflicting_seq: c1 already has customer turn seq 0 with other text"
    assert [t["text"] for t in rec.transcript] == ["where is my parcel"]
