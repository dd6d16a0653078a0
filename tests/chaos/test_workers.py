"""Worker faults: SIGKILL at random points, rolling SIGTERM, a crash between reservation and XACK."""

from __future__ import annotations

import json
import random
import signal
import time
from typing import Any

import pytest
import redis

from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.chaos.chaos_support import audit, event_mix, produce, seed_agents, wait_drained

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.redis]


def _setup(url: str, domain: str) -> tuple[redis.Redis, RoutingStore]:
    client = redis.Redis.from_url(url)
    store = RoutingStore(client, domain)
    seed_agents(store)
    client.xgroup_create(store.keys.events, "router", id="0", mkstream=True)
    return client, store


# score-ahead (a second batch read and scored while one applies) is off for the lexicon scorer by default;
# forced on, a killed or stopped worker also holds a read-ahead batch
SCORE_AHEAD = pytest.mark.parametrize("score_ahead", ["auto", "on"])


@SCORE_AHEAD
def test_sigkill_one_of_three_workers_repeatedly(
    redis_server: Any, workers_for: Any, domain: str, score_ahead: str
) -> None:
    client, store = _setup(redis_server.url, domain)
    rng = random.Random(1)
    events = event_mix(1100, seed=1)  # 5,500 events
    pool = workers_for(redis_server.url, domain, ROUTER_SCORE_AHEAD=score_ahead)
    for name in ("w1", "w2", "w3"):
        pool.start(name)
    kills = 0
    half = len(events) // 2
    produce(client, store.keys.events, events[:half])
    for round_ in range(4):
        time.sleep(rng.uniform(0.2, 1.2))  # a random point in the flow
        victim = rng.choice(sorted(pool.procs))
        pool.signal(victim, signal.SIGKILL)
        kills += 1
        pool.start(f"{victim}-r{round_}")
        if round_ == 1:
            produce(client, store.keys.events, events[half:])
    recovery = wait_drained(store, "router", len(events), timeout_s=240)  # from the last kill
    assert all(code == 0 for code in pool.stop_all().values())  # audit a still state
    fig = audit(store, f"sigkill one of three workers x4, score-ahead {score_ahead}", len(events))
    fig.recovery_s = round(recovery, 2)
    fig.notes["kills"] = kills
    fig.report()
    assert fig.lost == 0 and fig.pending == 0
    assert fig.duplicate_decisions == 0
    assert fig.over_capacity_max <= 0
    assert fig.load_inconsistencies == 0
    assert fig.decided == len(events)


@SCORE_AHEAD
def test_rolling_sigterm_redelivers_only_in_flight_work(
    redis_server: Any, workers_for: Any, domain: str, score_ahead: str
) -> None:
    client, store = _setup(redis_server.url, domain)
    events = event_mix(1000, seed=2)
    pool = workers_for(redis_server.url, domain, ROUTER_SCORE_AHEAD=score_ahead)
    for name in ("w1", "w2", "w3"):
        pool.start(name)
    produce(client, store.keys.events, events)
    pool.wait_ready(client, store.keys.events, "w1", "w2", "w3")
    left_pending = 0
    for name in ("w1", "w2", "w3"):
        time.sleep(0.3)
        pool.signal(name, signal.SIGTERM)  # finishes its batch, acks, exits
        assert pool.procs[name].returncode == 0, pool.log(name)
        left: Any = client.xpending_range(store.keys.events, "router", "-", "+", 1000, consumername=name)
        # what a stopped worker leaves pending must be work it had not applied (e.g. a message whose
        # contact.started another worker had not committed yet): redelivering it repeats nothing
        for row in left:
            entry = client.xrange(store.keys.events, row["message_id"], row["message_id"])
            event_id = json.loads(entry[0][1][b"event"])["event_id"]
            assert not client.exists(store.keys.seen(event_id)), (
                f"{name} left applied work {event_id} unacked"
            )
        left_pending += len(left)
        pool.start(f"{name}-new")
    wait_drained(store, "router", len(events), timeout_s=240)
    assert all(code == 0 for code in pool.stop_all().values())
    fig = audit(store, f"rolling SIGTERM of every worker, score-ahead {score_ahead}", len(events))
    fig.notes["unapplied_left_pending_after_sigterm"] = left_pending
    fig.report()
    assert fig.lost == 0 and fig.duplicate_decisions == 0 and fig.over_capacity_max <= 0
    assert fig.load_inconsistencies == 0


def test_crash_between_reservation_and_ack_makes_no_second_reservation(
    redis_server: Any, domain: str
) -> None:
    client, store = _setup(redis_server.url, domain)
    # no score-ahead: a batch read ahead is pending but not applied when the victim dies, so the survivor
    # would rightly apply it (the SIGKILL scenarios cover that); this test is about applied entries only
    settings = Settings(domain=domain, claim_min_idle_ms=1, batch_size=100, score_ahead="off")
    events = event_mix(60, seed=3)
    produce(client, store.keys.events, events)
    victim = Worker(store, LexiconScorer(), settings, consumer="victim")
    real_xack = victim.r.xack
    # the crash: every effect is committed, then the process dies before XACK
    victim.r.xack = lambda *a, **k: (_ for _ in ()).throw(SystemExit("crash before XACK"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        for _ in range(5):  # the first step only looks at the (empty) own pending list
            victim.run_once()
    victim.r.xack = real_xack  # type: ignore[method-assign]
    loads_before = {a.view.agent_id: dict(a.view.load) for a in store.load_agents(0, 1)}
    decisions_before = store.stats().get("decisions", 0)
    applied = store.stats().get("processed", 0)
    assert applied > 0
    time.sleep(0.01)
    survivor = Worker(store, LexiconScorer(), settings, consumer="survivor")
    survivor.run_once()  # reclaims the victim's entries: all of them already applied
    loads_after = {a.view.agent_id: dict(a.view.load) for a in store.load_agents(0, 1)}
    assert loads_after == loads_before, "a redelivered entry reserved an agent a second time"
    assert store.stats().get("decisions", 0) == decisions_before
    while survivor.run_once():
        pass
    wait_drained(store, "router", len(events), timeout_s=60)
    fig = audit(store, "crash between reservation and XACK", len(events))
    fig.notes["applied_before_crash"] = applied
    fig.report()
    assert fig.lost == 0 and fig.duplicate_decisions == 0 and fig.over_capacity_max <= 0
