"""The replication wait on a real primary and replica (fast: marker redis, not chaos): a batch is
acknowledged, and an ingest answered 202, only once the replica holds it; with the replica gone the worker
leaves its batch pending and the API answers 503, and both carry on when it is back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from router.api.serve import ApiServer
from router.errors import ReplicationError
from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.chaos.chaos_support import RedisServer, event_mix, seed_agents

pytestmark = [pytest.mark.redis]
# long enough that a healthy replica on a loaded CI machine acknowledges in time (200 ms once did not);
# a stopped replica then costs each refused write this long
REPLICA_WAIT_MS = 2_000


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    primary = RedisServer(tmp_path / "p", aof=False, extra=("--repl-diskless-sync-delay", "0"))
    replica = RedisServer(tmp_path / "r", aof=False, extra=("--replicaof", "127.0.0.1", str(primary.port)))
    _wait_online(primary)
    yield primary, replica
    replica.stop()
    primary.stop()


def _wait_online(primary: RedisServer) -> None:
    client = redis.Redis(port=primary.port)
    for _ in range(200):
        if RoutingStore(client, "x").primary_state()[2] == 1:
            return
        client.wait(1, 50)  # type: ignore[no-untyped-call]
    raise AssertionError("the replica never came online")


def test_worker_acknowledges_only_what_the_replica_holds(
    pair: tuple[RedisServer, RedisServer], domain: str
) -> None:
    primary, replica = pair
    store = RoutingStore(redis.Redis.from_url(primary.url), domain)
    seed_agents(store, 2)
    settings = Settings(
        domain=domain, replication_wait="wait", replica_wait_timeout_ms=REPLICA_WAIT_MS, scorer="lexicon"
    )
    worker = Worker(store, LexiconScorer(), settings, consumer="w1")
    worker.ensure_group()
    for e in event_mix(4, seed=1):
        store.client.xadd(store.keys.events, {"event": json.dumps(e)})
    for _ in range(3):  # its own pending first (none), then the new entries
        worker.run_once()
    assert int(store.client.xpending(store.keys.events, "router")["pending"]) == 0
    assert RoutingStore(redis.Redis(port=replica.port), domain).stats()["processed"] > 0

    replica.stop()
    store.client.xadd(store.keys.events, {"event": json.dumps(event_mix(1, seed=2, prefix="late")[0])})
    with pytest.raises(ReplicationError, match="0 of 1 replicas") as unconfirmed:
        worker.run_once()
    assert int(store.client.xpending(store.keys.events, "router")["pending"]) == 1  # applied, not acked
    worker._during_outage(unconfirmed.value, 0.0)  # what run() does with it

    replica.start()
    _wait_online(primary)
    worker._confirm_replicated()
    worker.run_once()  # reads its own pending entry again
    assert worker.stats.processed == 21  # the late event was a duplicate this time: nothing applied twice
    assert int(store.client.xpending(store.keys.events, "router")["pending"]) == 0


def test_api_answers_503_until_the_replica_confirms(
    pair: tuple[RedisServer, RedisServer], domain: str
) -> None:
    primary, replica = pair
    settings = Settings(
        domain=domain,
        redis_url=primary.url,
        admin_key="k",
        replication_wait="wait",
        replica_wait_timeout_ms=REPLICA_WAIT_MS,
    )
    api = ApiServer(settings, StoreHandle(url=primary.url, supports_blocking=True)).start()
    headers = {"Authorization": "Bearer k"}
    event = {
        "type": "contact.started",
        "event_id": "e1",
        "contact_id": "c1",
        "channel": "chat",
        "customer": {"id": "u"},
    }
    try:
        ok = httpx.post(api.url + "/v1/events", json=event, headers=headers)
        assert ok.status_code == 202, ok.text
        assert httpx.get(api.url + "/readyz").json()["checks"]["replication"]["ok"]

        replica.stop()
        refused = httpx.post(api.url + "/v1/events", json={**event, "event_id": "e2"}, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "replication_unconfirmed"
        assert refused.headers["Retry-After"] == "1"
        ready = httpx.get(api.url + "/readyz")
        assert ready.status_code == 503
        assert "0 online" in ready.json()["checks"]["replication"]["detail"]

        replica.start()
        _wait_online(primary)
        retried = httpx.post(api.url + "/v1/events", json={**event, "event_id": "e2"}, headers=headers)
        assert retried.status_code == 202
        assert retried.json()["duplicates"] == 1  # the first try had reached the primary: not written twice
    finally:
        api.stop()


def test_a_replica_is_not_a_writable_primary(pair: tuple[RedisServer, RedisServer], domain: str) -> None:
    _, replica = pair
    writable, detail, _ = RoutingStore(redis.Redis(port=replica.port), domain).primary_state()
    assert not writable and "slave" in detail
