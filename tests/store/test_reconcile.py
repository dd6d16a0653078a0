"""`reconcile` rebuilds derived state from the contacts, on both backends."""

from __future__ import annotations

import time

import pytest
import redis

import router.store.reconcile as reconcile_module
from router.domain.model import ContactView
from router.domain.policy import PolicyConfig, queue_score
from router.store.codec import agent_profile_fields, contact_fields
from router.store.reconcile import reconcile
from router.store.store import Commit, RoutingStore


def _agent(store: RoutingStore, agent_id: str) -> None:
    fields = agent_profile_fields(name=agent_id, eq=5, languages=["en"], capacity={"chat": 3}, tags=[])
    store.upsert_agent(agent_id, {**fields, "status": "available"})


def _contact(store: RoutingStore, cid: str, **over: str) -> None:
    fields = {**contact_fields(ContactView(contact_id=cid, channel="chat")), **over}
    assert store.apply_contact(Commit(), cid, 0, fields).ok


def test_consistent_state_needs_no_fix(store: RoutingStore) -> None:
    _agent(store, "a1")
    _contact(store, "c1", status="self_service")
    report = reconcile(store)
    assert report.consistent, report.fixes
    assert report.contacts_scanned == 1


def test_rebuilds_load_and_queue_after_a_bad_restore(store: RoutingStore) -> None:
    _agent(store, "a1")
    _contact(store, "c1", status="assigned", agent_id="a1")
    _contact(store, "c2", status="offered", agent_id="a1", offer_id="o2")
    _contact(store, "c3", status="queued", queue="mot", enqueued_ms="1000")
    offer = {
        "status": "pending",
        "contact_id": "c2",
        "agent_id": "a1",
        "channel": "chat",
        "deadline_ms": "5000",
    }
    store.client.hset(store.keys.offer("o2"), mapping=offer)
    # the restore lost the derived state: load 0, no offer indexes, an empty queue, a stale queue member
    store.client.hset(store.keys.agent("a1"), "load:chat", "0")
    store.client.zadd(store.keys.queue("general"), {"ghost": 1.0})

    dry = reconcile(store, dry_run=True)
    assert len(dry.fixes) == 5, dry.fixes
    assert store.client.hget(store.keys.agent("a1"), "load:chat") == b"0"  # dry run changed nothing

    fixed = reconcile(store)
    assert sorted(fixed.fixes) == sorted(dry.fixes)
    agent = store.load_agent("a1")
    assert agent is not None and agent.view.load == {"chat": 2}
    assert store.client.smembers(store.keys.agent_offers("a1")) == {b"o2"}
    assert store.client.zscore(store.keys.offers, "o2") == 5000
    assert store.queue_head("mot", 10) == ["c3"]
    assert store.queue_head("general", 10) == []
    assert reconcile(store).consistent


def test_worker_repairs_at_start_up_only_when_alone(store: RoutingStore, domain: str) -> None:
    from router.scoring.lexicon import LexiconScorer
    from router.settings import Settings
    from router.worker.consumer import Worker

    _agent(store, "a1")
    _contact(store, "c1", status="assigned", agent_id="a1")
    store.client.hset(store.keys.agent("a1"), "load:chat", "3")  # a restore left a wrong load
    settings = Settings(domain=domain)
    peer = Worker(store, LexiconScorer(), settings, consumer="peer", supports_blocking=False)
    peer.ensure_group()
    store.client.xadd(store.keys.events, {"event": "{}"})
    # an active peer (Redis 7.0 registers a consumer only when a read returns entries)
    peer.r.xreadgroup(settings.group, "peer", {store.keys.events: ">"}, count=1)
    me = Worker(store, LexiconScorer(), settings, consumer="me", supports_blocking=False)
    assert me.startup_check() == ["agent a1: load:chat 3 -> 1"]
    assert store.client.hget(store.keys.agent("a1"), "load:chat") == b"3"  # not repaired under a live peer

    alone = Worker(
        store, LexiconScorer(), settings.model_copy(update={"claim_min_idle_ms": 1}), consumer="me"
    )

    time.sleep(0.01)
    assert alone.startup_check() == ["agent a1: load:chat 3 -> 1"]
    assert store.client.hget(store.keys.agent("a1"), "load:chat") == b"1"
    assert alone.startup_check() == []


def test_the_open_contacts_index_follows_the_contacts(store: RoutingStore) -> None:
    _contact(store, "c1", status="queued", queue="general", enqueued_ms="1000")
    _contact(store, "c2", status="self_service")
    assert store.client.smembers(store.keys.open_contacts) == {b"c1", b"c2"}
    rec = store.load_contact("c2")
    assert rec is not None
    assert store.release(Commit(), rec, now_ms=1, fields={}, end_contact=True, affinity_ttl_s=60).ok
    assert store.client.smembers(store.keys.open_contacts) == {b"c1"}
    rec = store.load_contact("c2")
    assert rec is not None  # a transcript line after the end leaves it ended, and out of the index
    assert store.apply_contact(Commit(), "c2", rec.version, {"transcript": "[]"}).ok
    assert store.client.smembers(store.keys.open_contacts) == {b"c1"}


def test_scan_finds_contacts_the_index_lacks(store: RoutingStore, admin: redis.Redis, domain: str) -> None:
    """Data written before the index existed: only a scan (an admin's) finds it, and rebuilds the index."""
    _agent(store, "a1")
    fields = contact_fields(ContactView(contact_id="old", channel="chat"))
    admin.hset(store.keys.contact("old"), mapping={**fields, "status": "assigned", "agent_id": "a1"})
    assert reconcile(store).consistent  # the index does not know it
    as_admin = RoutingStore(admin, domain)
    report = reconcile(as_admin, scan=True)
    assert sorted(report.fixes) == ["agent a1: load:chat 0 -> 1", "open contacts index: added old"]
    assert reconcile(store).consistent and store.client.smembers(store.keys.open_contacts) == {b"old"}


def _stranded(store: RoutingStore, admin: redis.Redis, clock_ms: int) -> None:
    """c1 then c2 waiting in general; c1 offered to a1 (its only seat), then its offer hash lost."""
    fields = agent_profile_fields(name="a1", eq=5, languages=["en"], capacity={"chat": 1}, tags=[])
    store.upsert_agent("a1", {**fields, "status": "available"})
    for i, cid in enumerate(("c1", "c2")):
        enq = str(clock_ms - 60_000 + i * 1000)
        score = queue_score((clock_ms - 60_000 + i * 1000) / 1000, 0.0, PolicyConfig.defaults())
        over = {"status": "queued", "queue": "general", "enqueued_ms": enq}
        fields = {**contact_fields(ContactView(contact_id=cid, channel="chat")), **over}
        assert store.apply_contact(Commit(), cid, 0, fields, join_queue="general", join_score=score).ok
    _offer_c1(store, clock_ms)
    assert store.queue_head("general", 10) == ["c2"]
    admin.delete(store.keys.offer("o1"))  # the rollback (or an eviction) kept the contact, not its offer


def test_an_offered_contact_whose_offer_is_gone_goes_back_to_its_place(
    store: RoutingStore, admin: redis.Redis, domain: str
) -> None:
    from router.settings import Settings
    from router.worker.engine import Engine
    from tests.contract.contract_helpers import FakeClock

    clock = FakeClock()
    _stranded(store, admin, clock.ms)
    engine = Engine(store, Settings(domain=domain, redis_url=""), clock=clock)
    clock.advance(30)  # past the lost offer's deadline: still no sweep can time it out
    assert engine.sweep() == 0
    before = store.client.hgetall(store.keys.contact("c1"))
    assert before[b"status"] == b"offered"

    dry = reconcile(store, dry_run=True)
    assert sorted(dry.fixes) == [
        "agent a1: busy-slot records of work it no longer holds ['busy:c1']",
        "agent a1: load:chat 1 -> 0",
        "agent a1: pending offers ['o1'] -> []",
        "contact c1: offer o1 of agent a1 is missing; re-queued in general",
        "offers index: removed o1",
    ]
    assert store.client.hgetall(store.keys.contact("c1")) == before  # the dry run changed nothing
    assert store.queue_head("general", 10) == ["c2"]
    assert store.client.hget(store.keys.agent("a1"), "load:chat") == b"1"

    fixed = reconcile(store)
    assert fixed.fixes == dry.fixes
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "queued" and rec.view.agent_id in (None, "")
    assert store.queue_head("general", 10) == ["c1", "c2"]  # its old place: ahead of c2
    agent = store.load_agent("a1")
    assert agent is not None and agent.view.load == {"chat": 0}
    assert store.client.smembers(store.keys.agent_offers("a1")) == set()
    assert store.client.hget(store.keys.agent("a1"), "busy:c1") is None  # the slot it held is free
    assert reconcile(store).consistent

    assert engine.sweep() == 1
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "offered" and rec.view.agent_id == "a1"
    assert store.queue_head("general", 10) == ["c2"]
    assert reconcile(store).consistent


def test_an_offer_that_is_no_longer_pending_strands_its_contact_too(
    store: RoutingStore, admin: redis.Redis
) -> None:
    _stranded(store, admin, 1_700_000_000_000)
    store.client.hset(store.keys.offer("o1"), mapping={"status": "accepted", "contact_id": "c1"})
    report = reconcile(store)
    assert "contact c1: offer o1 of agent a1 is accepted; re-queued in general" in report.fixes
    assert store.queue_head("general", 10) == ["c1", "c2"]


def test_an_assigned_contact_without_its_offer_hash_stays_assigned(store: RoutingStore) -> None:
    """The offer hash of accepted work expires by design; the contact is not stranded."""
    _agent(store, "a1")
    _contact(store, "c1", status="assigned", agent_id="a1", offer_id="gone")
    store.client.hset(store.keys.agent("a1"), "load:chat", "1")
    assert reconcile(store).consistent
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "assigned"


def test_busy_slot_records_of_work_no_longer_held_are_dropped(store: RoutingStore) -> None:
    """The wait forecast reads each busy slot's age from 'busy:<contact>' in the agent hash; a contact that
    reconcile requeues (or any work the agent no longer holds) must not leave its record behind."""
    _agent(store, "a1")
    _contact(store, "c1", status="assigned", agent_id="a1")
    akey = store.keys.agent("a1")
    store.client.hset(akey, mapping={"load:chat": "1", "busy:c1": "chat|1000|0", "busy:gone": "chat|900|1"})

    dry = reconcile(store, dry_run=True)
    assert any("busy:gone" in fix for fix in dry.fixes), dry.fixes
    assert store.client.hget(akey, "busy:gone") is not None  # dry run changed nothing

    reconcile(store)
    assert store.client.hget(akey, "busy:gone") is None
    assert store.client.hget(akey, "busy:c1") == b"chat|1000|0"  # the work it holds keeps its record
    agent = store.load_agent("a1")
    assert agent is not None and agent.view.busy == {"chat": ((1.0, False),)}
    assert reconcile(store).consistent


def _offer_c1(store: RoutingStore, now_ms: int) -> None:
    out = store.offer(
        Commit(),
        offer_id="o1",
        agent_id="a1",
        contact_id="c1",
        channel="chat",
        queue="general",
        now_ms=now_ms,
        timeout_ms=20_000,
        mot=False,
        expected_version=None,
        fairness_window_ms=60_000,
        decline_memory_ms=60_000,
    )
    assert out.ok, out


def _end_c1(store: RoutingStore, now_ms: int) -> None:
    rec = store.load_contact("c1")
    assert rec is not None
    assert store.release(Commit(), rec, now_ms=now_ms, fields={}, end_contact=True, affinity_ttl_s=60).ok


@pytest.mark.parametrize("between", ["released", "offered"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_work_another_worker_commits_after_the_scan_is_counted_not_undone(
    store: RoutingStore, monkeypatch: pytest.MonkeyPatch, between: str, dry_run: bool
) -> None:
    """A repair computed from the scan alone would undo what a peer committed between the scan and the
    repair (after a failover every consumer looks idle, so the start-up check repairs while the other
    worker resumes): an end there left the agent's load one too high, an offer one too low and its offer
    unindexed. The counts come from the contacts read again under WATCH."""
    now_ms = 1_700_000_000_000
    _agent(store, "a1")
    _contact(store, "c1", status="queued", queue="general", enqueued_ms=str(now_ms - 1000))
    assert store.apply_contact(Commit(), "c1", 1, {}, join_queue="general", join_score=1.0).ok
    if between == "released":
        _offer_c1(store, now_ms)
    scanned = reconcile_module._open_work

    def scan_then_peer_commits(s: RoutingStore, ids: list[str]) -> reconcile_module.OpenWork:
        work = scanned(s, ids)
        (_end_c1 if between == "released" else _offer_c1)(store, now_ms + 1000)
        return work

    monkeypatch.setattr(reconcile_module, "_open_work", scan_then_peer_commits)
    report = reconcile(store, dry_run=dry_run)
    assert report.consistent, report.fixes
    agent = store.load_agent("a1")
    assert agent is not None and agent.view.load == {"chat": 0 if between == "released" else 1}
    monkeypatch.undo()
    assert reconcile(store).consistent
