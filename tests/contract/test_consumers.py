"""Consumers of the events group: workers heartbeat, and the consumers of dead ones are deleted once nothing
is pending for them, so the dashboard and /readyz count the workers that are alive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from router.store.store import RoutingStore
from router.worker.consumer import Worker, is_group_lost
from tests.contract.contract_helpers import decisions, message, pending_ids, read_group, started, xadd

MakeWorker = Callable[..., Worker]
FAST = {
    "worker_dead_after_s": 0.05,
    "claim_min_idle_ms": 1,
    "claim_interval_s": 0.001,
    "trim_interval_s": 0.001,
}


def _consumers(store: RoutingStore, worker: Worker) -> list[str]:
    return sorted(name for name, _, _ in store.consumers(worker.group))


def test_consumers_of_dead_workers_are_deleted_once_nothing_is_pending(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """Issue 14: the dashboard said "Workers 3" after two of three workers died."""
    dead = make_worker("dead", real_clock=True, **FAST)
    xadd(store, started("c1"))
    for _ in range(3):
        dead.run_once()  # heartbeats, reads, applies, acknowledges: a consumer with nothing pending
    xadd(store, started("c2"))
    read_group(store, dead.group, "busy", count=1)  # dies holding an entry
    time.sleep(0.1)  # both are now silent for longer than worker_dead_after_s
    alive = make_worker("alive", real_clock=True, **FAST)
    assert alive.prune_consumers() == ["dead"]  # "busy" still holds an entry: not yet
    assert _consumers(store, alive) == ["busy"]
    alive.run_once()  # reclaims busy's entry, then deletes busy
    assert pending_ids(store, alive.group) == []
    assert _consumers(store, alive) == ["alive"]
    assert list(store.heartbeats()) == ["alive"]
    assert store.live_workers(int(time.time() * 1000) - 50) == 1


def test_a_worker_that_stops_cleanly_leaves_the_group(store: RoutingStore, make_worker: MakeWorker) -> None:
    worker = make_worker("leaver", real_clock=True, **FAST)
    xadd(store, started("c1"))
    worker.run(max_idle_s=0.05)
    assert _consumers(store, worker) == [] and store.heartbeats() == {}


def test_a_silent_worker_with_work_pending_keeps_its_consumer(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """The delete re-checks the pending list in the same step: an entry read meanwhile is never dropped."""
    worker = make_worker("w1", real_clock=True, **FAST)
    xadd(store, started("c1"))
    read_group(store, worker.group, "slow", count=1)
    time.sleep(0.1)
    assert not store.prune_consumer(worker.group, "slow", int(time.time() * 1000))
    assert _consumers(store, worker) == ["slow"] and len(pending_ids(store, worker.group)) == 1


def test_a_worker_whose_events_group_is_lost_creates_it_again_and_reads_on(
    store: RoutingStore, make_worker: MakeWorker, admin: redis.Redis
) -> None:
    """A failover to a replica that never received the stream (replication wait off), or an operator's DEL:
    the running worker's reads answer NOGROUP. It creates the group again and reads what was appended since,
    instead of dying (a chaos run once saw the group gone after a cluster failover)."""
    worker = make_worker("w1", real_clock=True, **FAST)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # the assertion below reports it
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        xadd(store, started("c1"))
        xadd(store, message("c1", 0, "what time do you open"))
        _wait_for(lambda: [d.contact_id for d in decisions(store)] == ["c1"])
        admin.delete(store.keys.events)  # the stream and its group, gone under the running worker
        time.sleep(0.2)  # its reads meet the missing group
        xadd(store, started("c2"))  # a stream with no group
        xadd(store, message("c2", 0, "what time do you open"))
        _wait_for(lambda: [d.contact_id for d in decisions(store)] == ["c1", "c2"] or bool(failed))
    finally:
        worker.stop()
        thread.join(10)
    assert not failed, failed
    assert [d.contact_id for d in decisions(store)] == ["c1", "c2"]
    assert pending_ids(store, worker.group) == []


def _wait_for(ok: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_answer_to_a_missing_stream_or_group_reads_as_the_group_lost(
    store: RoutingStore, make_worker: MakeWorker, admin: redis.Redis
) -> None:
    """The worker's loop meets the lost group in whichever command runs first: a CI run once crashed on the
    housekeeping's XINFO, which says "no such key" (not NOGROUP) in the moment between the stream's loss and
    the next XADD. Every command of the loop, on a stream that is gone and on one that has no group."""
    worker = make_worker("w1", real_clock=True, **FAST)
    events, group = store.keys.events, worker.group
    calls: list[Callable[[], object]] = [
        lambda: store.consumers(group),  # the housekeeping: dead consumers
        lambda: store.prune_consumer(group, "w1", int(time.time() * 1000)),  # a script; and leaving
        lambda: worker.r.xautoclaim(events, group, "w1", 1),  # reclaiming
        lambda: worker.r.xreadgroup(group, "w1", {events: ">"}, count=1),  # reading
    ]
    admin.delete(events)
    for stream in ("gone", "back without its group"):
        for call in calls:
            with pytest.raises(redis.ResponseError) as answer:
                call()
            assert is_group_lost(answer.value), (stream, str(answer.value))
        xadd(store, started("c1"))
    assert not is_group_lost(redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"))
