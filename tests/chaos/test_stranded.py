"""Contacts nobody takes (issue 14): real `router worker` processes on a real redis-server, agents who let
every offer time out or decline every one. The contact is offered again once every agent has missed it,
round the agents, and offered a callback at the threshold; the figures measure how soon."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore
from tests.chaos.chaos_support import audit, produce

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.redis]

# time-outs and the callback threshold scaled down from 15 s and 300 s, so the run takes half a minute
OFFER_TIMEOUT_S = 2.0
CALLBACK_THRESHOLD_S = 30.0


def _setup(url: str, domain: str, agents: dict[str, list[str]]) -> tuple[redis.Redis, RoutingStore]:
    client = redis.Redis.from_url(url)
    store = RoutingStore(client, domain)
    for aid, langs in agents.items():
        fields = agent_profile_fields(
            name=aid, eq=3, languages=langs, capacity={"chat": 1, "voice": 1}, tags=[]
        )
        store.upsert_agent(aid, {**fields, "status": "available"})
    client.xgroup_create(store.keys.events, "router", id="0", mkstream=True)
    return client, store


def _decisions(store: RoutingStore) -> list[dict[str, Any]]:
    return [json.loads(f[b"decision"]) for _, f in store.client.xrange(store.keys.decisions)]


def _wait_for(
    store: RoutingStore, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float
) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ds = _decisions(store)
        if done(ds):
            return ds
        time.sleep(0.05)
    raise AssertionError(f"timed out: {[(d['action'], d.get('agent_id')) for d in _decisions(store)]}")


def _codes(d: dict[str, Any]) -> set[str]:
    return {r["code"] for r in d["reasons"]}


def test_nobody_answers_ten_agents(redis_server: Any, workers_for: Any, domain: str) -> None:
    agents = {f"a{i:02d}": ["en"] for i in range(10)}
    client, store = _setup(redis_server.url, domain, agents)
    pool = workers_for(
        redis_server.url,
        domain,
        ROUTER_OFFER_TIMEOUT_S=str(OFFER_TIMEOUT_S),
        ROUTER_CALLBACK_THRESHOLD_S=str(CALLBACK_THRESHOLD_S),
    )
    pool.start("w1")
    pool.start("w2")
    events = [
        {
            "type": "contact.started",
            "event_id": "s",
            "contact_id": "c1",
            "channel": "chat",
            "customer": {"id": "u1"},
        },
        {"type": "contact.human_requested", "event_id": "h", "contact_id": "c1"},
    ]
    produce(client, store.keys.events, events)

    def settled(ds: list[dict[str, Any]]) -> bool:
        return sum(d["action"] == "offer" for d in ds) >= 12 and any(
            d["action"] == "callback_offer" for d in ds
        )

    ds = _wait_for(store, settled, timeout_s=CALLBACK_THRESHOLD_S + 30 * OFFER_TIMEOUT_S)
    assert all(code == 0 for code in pool.stop_all().values())
    offers = [d for d in ds if d["action"] == "offer"]
    missed = [d for d in ds if d["action"] == "released" and "offer_timeout" in _codes(d)]
    assert sorted(d["agent_id"] for d in offers[:10]) == sorted(agents)
    assert offers[10]["agent_id"] == offers[0]["agent_id"] and "all_declined" in _codes(offers[10])
    callback = next(d for d in ds if d["action"] == "callback_offer")
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.enqueued_ts is not None
    fig = audit(store, "nobody answers: 10 agents, every offer times out", len(events))
    fig.notes["offer_timeout_s"] = OFFER_TIMEOUT_S
    fig.notes["reoffer_after_10th_timeout_ms"] = round((offers[10]["ts"] - missed[9]["ts"]) * 1000, 1)
    fig.notes["callback_threshold_s"] = CALLBACK_THRESHOLD_S
    fig.notes["callback_after_threshold_s"] = round(
        callback["ts"] - rec.view.enqueued_ts - CALLBACK_THRESHOLD_S, 2
    )
    fig.notes["callback_estimated_wait_s"] = callback["estimated_wait_s"]
    fig.report()
    assert fig.lost == 0 and fig.duplicate_decisions == 0 and fig.over_capacity_max <= 0
    assert fig.load_inconsistencies == 0
    assert fig.notes["reoffer_after_10th_timeout_ms"] < 1_000  # the same sweep, not a decline memory later
    # ringing an agent when it reached the threshold, it is offered the callback when that offer times out,
    # before anyone rings again: one offer time-out at most, plus the sweep's half-second tick and slack
    assert 0 <= fig.notes["callback_after_threshold_s"] <= OFFER_TIMEOUT_S + 1.5
    assert callback["estimated_wait_s"] > 0


def test_both_speakers_decline(redis_server: Any, workers_for: Any, domain: str) -> None:
    """The `router demo --api` case: a Spanish voice contact, the floor's two Spanish speakers decline it
    every time. Each time both have, it is offered again; measured from the second decline's XADD."""
    agents = {"es1": ["es"], "es2": ["es", "en"], "en1": ["en"], "en2": ["en"], "en3": ["en"]}
    client, store = _setup(redis_server.url, domain, agents)
    pool = workers_for(redis_server.url, domain, ROUTER_OFFER_TIMEOUT_S="15")
    pool.start("w1")
    pool.start("w2")
    start = {
        "type": "contact.started",
        "contact_id": "c1",
        "channel": "voice",
        "customer": {"id": "u1", "language": "es"},
    }
    produce(client, store.keys.events, [start, {"type": "contact.human_requested", "contact_id": "c1"}])
    sent, declined_at, gaps_ms = 2, 0.0, []
    for round_ in range(7):
        ds = _wait_for(store, lambda ds, n=round_ + 1: sum(d["action"] == "offer" for d in ds) >= n, 30)
        offer = [d for d in ds if d["action"] == "offer"][round_]
        assert offer["agent_id"] in ("es1", "es2")
        # the first two go to each speaker in turn; from then on, each is a re-offer to the earlier decliner
        assert ("all_declined" in _codes(offer)) is (round_ >= 2)
        if round_ >= 2:
            gaps_ms.append(round((offer["ts"] - declined_at) * 1000, 1))
        if round_ < 6:
            declined_at = time.time()
            produce(client, store.keys.events, [{"type": "offer.declined", "offer_id": offer["offer_id"]}])
            sent += 1
    assert all(code == 0 for code in pool.stop_all().values())
    fig = audit(store, "both speakers of the language decline, again and again", sent)
    fig.notes["reoffer_after_decline_ms"] = gaps_ms
    fig.report()
    assert fig.lost == 0 and fig.duplicate_decisions == 0 and fig.over_capacity_max <= 0
    assert fig.load_inconsistencies == 0
    assert max(gaps_ms) < 2_000
