"""Redis faults: SIGKILL of the server under AOF everysec, CLIENT KILL storms, CLIENT PAUSE."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
import redis

from router.api.serve import ApiServer
from router.settings import Settings
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from tests.chaos.chaos_support import audit, event_mix, produce, seed_agents, wait_drained

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.redis]

# appendfsync everysec: Redis fsyncs the AOF once a second, so a SIGKILL may lose the writes of about the
# last second (two in the worst case, when an fsync is slow). Acknowledged events older than that survive.
FSYNC_BOUND_S = 2.0


def test_sigkill_redis_under_aof_everysec(aof_server: Any, workers_for: Any, domain: str) -> None:
    client = redis.Redis.from_url(aof_server.url)
    store = RoutingStore(client, domain)
    seed_agents(store)
    client.xgroup_create(store.keys.events, "router", id="0", mkstream=True)
    events = event_mix(700, seed=4)
    pool = workers_for(aof_server.url, domain)
    pool.start("w1")
    pool.start("w2")
    pool.wait_ready(client, store.keys.events, "w1", "w2")

    acked: list[tuple[float, dict[str, Any]]] = []  # (time the producer got the id back, event)
    half = len(events) // 2
    for e in events[:half]:
        client.xadd(store.keys.events, {"event": json.dumps(e)})
        acked.append((time.monotonic(), e))
        if len(acked) % 50 == 0:
            time.sleep(0.02)  # a steady flow rather than one burst
    api = ApiServer(
        Settings(domain=domain, redis_url=aof_server.url, admin_key="chaos-admin"),
        StoreHandle(url=aof_server.url, supports_blocking=True),
    ).start()
    headers = {"Authorization": "Bearer chaos-admin"}
    killed_at = time.monotonic()
    aof_server.kill9()
    # while Redis is down the API must answer at once with 503, not hang
    outage = [_timed_get(api.url + "/v1/queues", headers) for _ in range(5)]
    aof_server.start()  # same port and directory: replays the AOF
    restarted_at = time.monotonic()
    back = _timed_get(api.url + "/v1/queues", headers)
    api.stop()
    assert all(status == 503 for status, _ in outage), outage
    assert max(took for _, took in outage) < 2.0, outage
    assert back[0] == 200, back

    client = redis.Redis.from_url(aof_server.url)
    store = RoutingStore(client, domain)
    old = [e for t, e in acked if t < killed_at - FSYNC_BOUND_S]
    recent = [e for t, e in acked if t >= killed_at - FSYNC_BOUND_S]
    present_ids = _present_event_ids(store)
    lost_old = [e["event_id"] for e in old if e["event_id"] not in present_ids]
    lost_recent = [e for e in recent if e["event_id"] not in present_ids]
    assert lost_old == [], f"acknowledged events older than {FSYNC_BOUND_S} s were lost: {lost_old[:5]}"

    # the producer re-sends what the crash lost (at-least-once on the producer side) and carries on
    produce(client, store.keys.events, lost_recent + events[half:])
    recovery = wait_drained(store, "router", len(events), timeout_s=240)
    codes = pool.stop_all()
    assert all(code == 0 for code in codes.values()), {n: pool.log(n) for n in codes}
    fig = audit(store, "SIGKILL redis-server under AOF everysec", len(events))
    fig.recovery_s = round(time.monotonic() - restarted_at, 2)
    fig.notes.update(
        acked_before_kill=len(acked),
        lost_within_fsync_bound=len(lost_recent),
        lost_older_than_bound=len(lost_old),
        fsync_bound_s=FSYNC_BOUND_S,
        drain_s=round(recovery, 2),
        api_during_outage={
            "statuses": sorted({st for st, _ in outage}),
            "max_s": round(max(t for _, t in outage), 3),
        },
    )
    # the crash lost what it lost from the stream too, so count by seen markers: every event applied once
    fig.lost = len(events) - _applied(store, events)
    fig.report()
    assert fig.lost == 0
    assert fig.duplicate_decisions == 0
    assert fig.over_capacity_max <= 0
    assert fig.load_inconsistencies == 0


def _timed_get(url: str, headers: dict[str, str]) -> tuple[int, float]:
    t0 = time.monotonic()
    status = httpx.get(url, headers=headers, timeout=10).status_code
    return status, time.monotonic() - t0


def _present_event_ids(store: RoutingStore) -> set[str]:
    ids = set()
    for _, fields in store.client.xrange(store.keys.events):
        try:
            ids.add(json.loads(fields[b"event"])["event_id"])
        except (KeyError, ValueError):
            continue
    for key in store.client.scan_iter(match=store.keys.seen("*"), count=1000):
        ids.add(key.decode().rsplit(":", 1)[1])
    return ids


def _applied(store: RoutingStore, events: list[dict[str, Any]]) -> int:
    pipe = store.client.pipeline(transaction=False)
    for e in events:
        pipe.exists(store.keys.seen(e["event_id"]))
    return sum(pipe.execute())


def test_client_kill_storm_and_pause(redis_server: Any, workers_for: Any, domain: str) -> None:
    client = redis.Redis.from_url(redis_server.url)
    store = RoutingStore(client, domain)
    seed_agents(store)
    client.xgroup_create(store.keys.events, "router", id="0", mkstream=True)
    events = event_mix(600, seed=5)
    pool = workers_for(redis_server.url, domain)
    pool.start("w1")
    pool.start("w2")
    pool.wait_ready(client, store.keys.events, "w1", "w2")
    admin = redis.Redis.from_url(redis_server.url)
    stop = threading.Event()
    kills = 0

    def storm() -> None:
        nonlocal kills
        while not stop.is_set():
            try:
                admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                kills += 1
            except redis.RedisError:
                pass
            time.sleep(0.15)

    api = ApiServer(
        Settings(domain=domain, redis_url=redis_server.url, admin_key="chaos-admin"),
        StoreHandle(url=redis_server.url, supports_blocking=True),
    ).start()
    headers = {"Authorization": "Bearer chaos-admin"}
    t = threading.Thread(target=storm, daemon=True)
    t.start()
    probes: list[tuple[int, float]] = []
    for start in range(0, len(events), 200):
        _retrying(lambda s=start: produce(client, store.keys.events, events[s : s + 200]))  # type: ignore[misc]
        probes += [_timed_get(api.url + "/v1/queues", headers) for _ in range(3)]
        time.sleep(0.3)
    admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
    probes.append(_timed_get(api.url + "/v1/queues", headers))  # during the pause
    time.sleep(1.6)
    stop.set()
    t.join()
    resumed = time.monotonic()
    after = _timed_get(api.url + "/v1/queues", headers)
    api.stop()
    assert {status for status, _ in probes} <= {200, 503}, probes
    assert max(took for _, took in probes) < 2.5, probes  # never hangs on a dead connection
    assert after[0] == 200, after
    wait_drained(store, "router", len(events), timeout_s=240)
    codes = pool.stop_all()
    assert all(code == 0 for code in codes.values()), {n: pool.log(n) for n in codes}
    fig = audit(store, "CLIENT KILL storm + CLIENT PAUSE 1.5 s", len(events))
    fig.recovery_s = round(time.monotonic() - resumed, 2)
    fig.notes["client_kills"] = kills
    fig.notes["api_probes"] = {
        "200": sum(1 for st, _ in probes if st == 200),
        "503": sum(1 for st, _ in probes if st == 503),
        "max_s": round(max(t for _, t in probes), 3),
    }
    fig.report()
    assert kills > 5
    assert fig.lost == 0 and fig.duplicate_decisions == 0 and fig.over_capacity_max <= 0
    assert fig.load_inconsistencies == 0


def _retrying(fn: Any, tries: int = 20) -> None:
    """The producer's own at-least-once: a pipeline cut by CLIENT KILL is sent again (duplicates are
    harmless: events carry event_id, the idempotency key)."""
    for _ in range(tries):
        try:
            fn()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("producer could not write for 20 tries")
