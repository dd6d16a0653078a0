"""The logs behind the dashboard's series and KPIs, as the scripts write them, on fakeredis and a real server:
the ended-contacts log (class, status at the end, hand-offs, customer and previous contact), the running
count of moments of truth, and the floor samples one per step whichever worker sends them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from router.events import Decision
from router.settings import Settings
from router.store.floor_logs import FloorLogs
from router.store.store import RoutingStore
from router.worker.engine import Engine
from tests.contract.contract_helpers import (
    FakeClock,
    ScriptedScorer,
    add_agent,
    decisions,
    message,
    new_id,
    parse,
    started,
)


@pytest.fixture
def settings(domain: str) -> Settings:
    return Settings(domain=domain, redis_url="", outcome_matching=False, fcr_window_s=7 * 86_400)


class Sender:
    def __init__(self, engine: Engine, store: RoutingStore) -> None:
        self.engine, self.store, self.scorer, self.seen = engine, store, ScriptedScorer(), 0

    def send(self, event: dict[str, Any]) -> list[Decision]:
        score = self.scorer.one(event["text"]) if event["type"] == "contact.message" else None
        self.engine.handle(parse(event), new_id(), score)
        all_ = decisions(self.store)
        out, self.seen = all_[self.seen :], len(all_)
        return out

    def offer(self, ds: list[Decision]) -> Decision:
        (d,) = [d for d in ds if d.action == "offer"]
        return d


def ended_log(store: RoutingStore) -> list[dict[str, Any]]:
    return [json.loads(x) for x in store.client.lrange(store.keys.ended, 0, -1)]


def test_an_ended_contact_is_logged_with_its_class_status_hand_offs_and_customer(
    store: RoutingStore, engine: Engine, clock: FakeClock
) -> None:
    add_agent(store, "a1", eq=5)
    add_agent(store, "a2", eq=4)
    s = Sender(engine, store)
    t_start = clock.ms
    s.send(started("c1", customer="u1"))
    first = s.offer(s.send(message("c1", 0, "my card was stolen")))
    clock.advance(2)
    second = s.offer(s.send({"type": "offer.declined", "offer_id": first.offer_id}))
    assert second.agent_id != first.agent_id
    s.send({"type": "offer.accepted", "offer_id": second.offer_id})
    s.send(message("c1", 1, "my card was stolen, furious"))  # still one moment of truth
    clock.advance(30)
    s.send({"type": "work.completed", "agent_id": second.agent_id, "contact_id": "c1"})
    (entry,) = ended_log(store)
    assert entry == {
        "t_ms": clock.ms,
        "started_ms": t_start,
        "mot": True,
        "was": "assigned",
        "handoffs": 1,
        "customer": "u1",
    }
    assert store.stats()["mot_contacts"] == 1
    s.send({"type": "contact.ended", "contact_id": "c1", "reason": "resolved"})  # already ended: not again
    assert len(ended_log(store)) == 1

    # the customer comes back: the new contact knows its previous one; nobody is free, it ends in the queue
    clock.advance(60)
    add_agent(store, "a1", eq=5, status="away")
    add_agent(store, "a2", eq=4, status="away")
    s.send(started("c2", customer="u1"))
    assert [d.action for d in s.send({"type": "contact.human_requested", "contact_id": "c2"})] == ["queued"]
    s.send({"type": "contact.ended", "contact_id": "c2", "reason": "abandoned"})
    newest = ended_log(store)[0]
    assert newest["was"] == "queued" and newest["prev_ms"] == t_start and newest["mot"] is False
    rec = FloorLogs(store).ended(0)
    assert [c.abandoned for c in rec.items] == [True, False] and rec.complete
    assert rec.items[0].prev_contact_s == t_start / 1000


def test_an_agent_leaving_hands_its_offer_back_and_a_restart_starts_the_count_afresh(
    store: RoutingStore, engine: Engine, clock: FakeClock
) -> None:
    add_agent(store, "a1", eq=3)
    s = Sender(engine, store)
    s.send(started("c1", customer="u9"))
    s.offer(s.send({"type": "contact.human_requested", "contact_id": "c1"}))
    s.send({"type": "agent.status", "agent_id": "a1", "status": "away"})
    assert store.client.hget(store.keys.contact("c1"), "handoffs") == b"1"
    s.send({"type": "contact.ended", "contact_id": "c1", "reason": "abandoned"})
    assert ended_log(store)[0]["handoffs"] == 1 and ended_log(store)[0]["was"] == "queued"
    clock.advance(5)
    s.send(started("c1", customer="u9"))  # the same contact id starts again
    assert store.client.hget(store.keys.contact("c1"), "handoffs") == b"0"
    s.send({"type": "contact.ended", "contact_id": "c1"})
    again = ended_log(store)[0]
    assert again["was"] == "self_service" and again["handoffs"] == 0


def test_the_customer_is_kept_for_the_repeat_window(
    store: RoutingStore, engine: Engine, admin: redis.Redis, settings: Settings
) -> None:
    assert settings.fcr_window_s > settings.affinity_ttl_s
    Sender(engine, store).send(started("c1", customer="u1"))
    ttl = int(admin.ttl(store.keys.customer("u1")))
    assert settings.affinity_ttl_s < ttl <= settings.fcr_window_s


def test_a_floor_sample_is_taken_once_per_step_whichever_worker_sends_it(store: RoutingStore) -> None:
    add_agent(store, "a1")
    store.client.zadd(store.keys.queue("mot"), {"x1": 1.0, "x2": 2.0})
    store.client.hset(store.keys.stats, "mot_contacts", 7)
    t = 1_700_000_000_000
    assert store.sample_floor(t, 10_000)
    assert not store.sample_floor(t + 9_999, 10_000)  # a second worker within the step
    assert store.sample_floor(t + 10_000, 10_000)
    assert store.sample_floor(t - 3_600_000, 10_000)  # a clock set back an hour still samples
    samples = FloorLogs(store).samples(0).items
    assert [s.t_s for s in samples] == [(t - 3_600_000) / 1000, (t + 10_000) / 1000, t / 1000]
    assert samples[0].depth == {"mot": 2, "general": 0} and samples[0].mot_total == 7


def test_a_worker_samples_the_floor_as_it_runs(
    make_worker: Any, store: RoutingStore, clock: FakeClock
) -> None:
    w = make_worker(floor_sample_s=1.0)
    w.run_once()
    samples = FloorLogs(store).samples(0).items
    assert len(samples) == 1 and samples[0].t_s == clock.now
