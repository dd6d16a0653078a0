"""Batch reads and their invalidation: a worker reads every contact of a batch in one round trip, keeps
the state its own commits wrote, and must still apply every event in order, once, on current state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from router.errors import ConflictError, StoreError
from router.store.store import Commit, CustomerTouch, RoutingStore
from router.worker.consumer import Worker
from router.worker.engine import Engine
from router.worker.state import BatchState
from tests.contract.contract_helpers import (
    NoAck,
    ScriptedScorer,
    add_agent,
    decisions,
    dump_domain,
    message,
    new_id,
    parse,
    pending_ids,
    read_group,
    started,
    xadd,
)

MakeWorker = Callable[..., Worker]


def transcript_seqs(store: RoutingStore, cid: str) -> list[int]:
    rec = store.load_contact(cid)
    assert rec is not None
    return [int(t["seq"]) for t in rec.transcript]


def test_one_batch_applies_every_event_of_a_contact_in_order(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    add_agent(store, "a1", eq=5)
    w = make_worker()
    xadd(store, started("c1"))
    for seq, text in enumerate(("hello", "what time do you open", "my card was stolen")):
        xadd(store, message("c1", seq, text))
    xadd(store, message("c1", 3, "thanks", speaker="agent"))
    entries = read_group(store, w.group, w.consumer)
    assert w.process(entries) == 5
    assert pending_ids(store, w.group) == []
    rec = store.load_contact("c1")
    assert rec is not None
    assert transcript_seqs(store, "c1") == [0, 1, 2, 3]
    assert rec.version == 6  # start, three customer turns, the offer, the agent turn: each on the last
    assert rec.view.status == "offered" and rec.view.agent_id == "a1"
    actions = [d.action for d in decisions(store)]
    assert actions == ["self_service", "offer"]
    assert w.engine.counters.conflicts == 0


def test_two_contacts_interleaved_in_one_batch(store: RoutingStore, make_worker: MakeWorker) -> None:
    w = make_worker()
    for cid in ("c1", "c2"):
        xadd(store, started(cid))
    for seq in range(3):
        for cid in ("c1", "c2"):
            xadd(store, message(cid, seq, f"turn {seq} of {cid}"))
    xadd(store, {"type": "contact.ended", "contact_id": "c1", "reason": "resolved"})
    w.process(read_group(store, w.group, w.consumer))
    assert pending_ids(store, w.group) == []
    assert transcript_seqs(store, "c1") == transcript_seqs(store, "c2") == [0, 1, 2]
    c1, c2 = store.load_contact("c1"), store.load_contact("c2")
    assert c1 is not None and c1.view.status == "ended"
    assert c2 is not None and c2.view.status == "self_service"


def test_crash_between_commit_and_ack_redelivers_the_batch_and_dedupes(
    client: redis.Redis, store: RoutingStore, make_worker: MakeWorker, admin: redis.Redis
) -> None:
    add_agent(store, "a1", eq=5)
    xadd(store, started("c1"))
    xadd(store, message("c1", 0, "my card was stolen"))
    xadd(store, message("c1", 1, "please hurry"))
    xadd(store, started("c2"))
    dying = make_worker("w-dead")
    dying.r = NoAck(client)  # type: ignore[assignment]
    entries = read_group(store, dying.group, "w-dead")
    dying.process(entries)
    # every effect committed, none acknowledged: all four stay pending
    assert sorted(pending_ids(store, dying.group)) == sorted(e for e, _ in entries)
    before = dump_domain(admin, store.domain)
    before.pop(store.keys.events, None)
    before.pop(store.keys.workers, None)  # heartbeats: not routing state
    before.pop(store.keys.floor, None)  # the dashboard's floor samples, taken on a timer
    again = make_worker("w-dead")  # the same consumer after a restart re-reads its own pending entries
    again.run_once()
    again.run_once()
    assert pending_ids(store, again.group) == []
    after = dump_domain(admin, store.domain)
    after.pop(store.keys.events, None)
    after.pop(store.keys.workers, None)
    after.pop(store.keys.floor, None)
    assert after == before  # nothing decided, reserved or written twice
    assert again.stats.processed == len(entries)


def test_a_contact_changed_after_the_batch_read_is_decided_on_fresh_state(
    store: RoutingStore, engine: Engine, scorer: ScriptedScorer
) -> None:
    """Another worker commits between our batch read and our event: the version check refuses the stale
    decision and the retry reads fresh, so neither write is lost."""
    engine.handle(parse(started("c1")), new_id())
    ev = parse(message("c1", 0, "hello"))
    engine.begin_batch([ev])
    other = Engine(store, engine.settings, clock=engine.clock)
    other.handle(parse(message("c1", 1, "from the other worker")), new_id(), scorer.one("x"))
    engine.handle(ev, new_id(), scorer.one("hello"))
    engine.end_batch()
    assert sorted(transcript_seqs(store, "c1")) == [0, 1]
    assert engine.counters.conflicts == 1


def test_an_event_that_loses_every_retry_raises_a_conflict_error(
    store: RoutingStore, engine: Engine, scorer: ScriptedScorer
) -> None:
    """With one try allowed, a decision on a batch read that another worker made stale has no retry left:
    ``ConflictError`` (a ``StoreError``), and the event changed nothing."""
    engine.handle(parse(started("c1")), new_id())
    once = Engine(store, engine.settings.model_copy(update={"conflict_retries": 1}), clock=engine.clock)
    ev = parse(message("c1", 0, "hello"))
    once.begin_batch([ev])
    Engine(store, engine.settings, clock=engine.clock).handle(parse(message("c1", 1, "other")), new_id())
    with pytest.raises(ConflictError, match="still conflicting after 1 tries"):
        once.handle(ev, new_id(), scorer.one("hello"))
    once.end_batch()
    assert transcript_seqs(store, "c1") == [1]
    assert isinstance(ConflictError("x"), StoreError)


def test_a_contact_started_after_the_batch_read_is_found(
    store: RoutingStore, engine: Engine, scorer: ScriptedScorer
) -> None:
    """The batch read found no contact, but its start was committed since: no needless retry-later."""
    ev = parse(message("c1", 0, "hello"))
    engine.begin_batch([ev])
    Engine(store, engine.settings, clock=engine.clock).handle(parse(started("c1")), new_id())
    engine.handle(ev, new_id(), scorer.one("hello"))
    engine.end_batch()
    assert transcript_seqs(store, "c1") == [0]


def test_a_mark_decided_on_cached_state_is_rechecked(store: RoutingStore, engine: Engine) -> None:
    """Marking checks no version: a human request that looks like it came after the end (cached) is
    re-read before being dropped, and a contact that restarted meanwhile gets its human."""
    add_agent(store, "a1", eq=3)
    engine.handle(parse(started("c1")), new_id())
    engine.handle(parse({"type": "contact.ended", "contact_id": "c1", "reason": "resolved"}), new_id())
    ev = parse({"type": "contact.human_requested", "contact_id": "c1"})
    engine.begin_batch([ev])
    Engine(store, engine.settings, clock=engine.clock).handle(parse(started("c1")), new_id())
    engine.handle(ev, new_id())
    engine.end_batch()
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "offered" and rec.view.agent_id == "a1"


def test_an_offer_made_by_a_pull_voids_the_cached_contact(store: RoutingStore, engine: Engine) -> None:
    """A release pulls a queued contact that a later event of the same batch names: that event must not
    decide on the contact's pre-offer state."""
    add_agent(store, "a1", eq=3)
    engine.handle(parse(started("c1")), new_id())
    engine.handle(parse({"type": "contact.human_requested", "contact_id": "c1"}), new_id())
    engine.handle(parse(started("c2")), new_id())
    engine.handle(parse({"type": "contact.human_requested", "contact_id": "c2"}), new_id())  # a1 full: queued
    end = parse({"type": "contact.ended", "contact_id": "c1", "reason": "resolved"})
    ask = parse({"type": "contact.human_requested", "contact_id": "c2"})
    engine.begin_batch([end, ask])
    engine.handle(end, new_id())  # a1 frees and pulls c2
    engine.handle(ask, new_id())
    engine.end_batch()
    rec = store.load_contact("c2")
    assert rec is not None and rec.view.status == "offered" and rec.view.agent_id == "a1"
    assert engine.counters.conflicts == 0
    assert [d.action for d in decisions(store) if d.contact_id == "c2"] == ["self_service", "queued", "offer"]


def test_the_customer_touch_commits_with_the_start(
    store: RoutingStore, engine: Engine, admin: redis.Redis
) -> None:
    """A second contact of the same customer in the same batch sees the first (repeat contact)."""
    first, second = parse(started("c1", customer="u1")), parse(started("c2", customer="u1"))
    engine.begin_batch([first, second])
    engine.handle(first, new_id())
    engine.handle(second, new_id())
    engine.end_batch()
    rec = store.load_contact("c2")
    assert rec is not None and rec.view.repeat_contact
    assert admin.ttl(store.keys.customer("u1")) > 0


def test_a_refused_start_touches_no_customer(store: RoutingStore, engine: Engine, admin: redis.Redis) -> None:
    engine.handle(parse(started("c1", customer="u1")), new_id())
    admin.delete(store.keys.customer("u1"))
    touch = CustomerTouch("u1", 1, 60)
    out = store.apply_contact(Commit(event_id=new_id()), "c1", 0, {"status": "new"}, customer=touch)  # stale
    assert out.status == "conflict"
    assert store.client.exists(store.keys.customer("u1")) == 0


# ------------------------------------------------------------------------------------ deferred commits


def test_final_commits_of_a_batch_share_round_trips(
    client: redis.Redis, store: RoutingStore, make_worker: MakeWorker
) -> None:
    """Commits that nothing in their event waits on (self-service turns, ends without an agent) are sent
    in one pipeline, not one script call each."""
    w = make_worker()
    xadd(store, started("c0"))  # a first batch loads the scripts into the server (SCRIPT LOAD on NOSCRIPT)
    xadd(store, {"type": "contact.ended", "contact_id": "c0", "reason": "resolved"})
    w.process(read_group(store, w.group, w.consumer))
    for cid in ("c1", "c2", "c3"):
        xadd(store, started(cid))
        xadd(store, message(cid, 0, "what time do you open"))
        xadd(store, {"type": "contact.ended", "contact_id": cid, "reason": "resolved"})
    calls: list[str] = []
    execute = client.execute_command

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]))
        return execute(*args, **kwargs)

    client.execute_command = counted  # type: ignore[method-assign]
    assert w.process(read_group(store, w.group, w.consumer)) == 9
    assert pending_ids(store, w.group) == []
    assert "EVALSHA" not in calls  # every commit went with a pipeline
    assert [d.action for d in decisions(store)] == ["self_service"] * 4
    for cid in ("c1", "c2", "c3"):
        rec = store.load_contact(cid)
        assert rec is not None and rec.view.status == "ended" and transcript_seqs(store, cid) == [0]


def test_decisions_keep_stream_order_across_deferred_and_immediate_commits(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    add_agent(store, "a1", eq=5)
    w = make_worker()
    xadd(store, started("c1"))  # self-service: deferred
    xadd(store, started("c2"))  # self-service: deferred
    xadd(store, message("c2", 0, "my card was stolen"))  # queued, then offered: immediate
    xadd(store, started("c3"))  # deferred again
    w.process(read_group(store, w.group, w.consumer))
    assert [(d.contact_id, d.action) for d in decisions(store)] == [
        ("c1", "self_service"),
        ("c2", "self_service"),
        ("c2", "offer"),
        ("c3", "self_service"),
    ]


def test_a_deferred_commit_that_conflicts_is_retried_before_later_events_of_its_contact(
    client: redis.Redis, store: RoutingStore, make_worker: MakeWorker, settings: Any, scorer: ScriptedScorer
) -> None:
    """Another worker commits between our batch read and our pipeline: the stale commit is refused, and
    it and every later event of that contact are applied again on fresh state, in stream order."""
    w = make_worker()
    w.engine.handle(parse(started("c1")), new_id())
    xadd(store, message("c1", 0, "first"))
    xadd(store, message("c1", 1, "second"))
    xadd(store, started("c2"))
    other = Engine(RoutingStore(client, store.domain), settings, clock=w.engine.clock)
    begin = w.engine.begin_batch

    def begin_then_race(events: Any, **kw: Any) -> None:
        begin(events, **kw)
        other.handle(parse(message("c1", 9, "from another worker")), new_id(), scorer.one("x"))

    w.engine.begin_batch = begin_then_race  # type: ignore[method-assign]
    assert w.process(read_group(store, w.group, w.consumer)) == 3
    assert pending_ids(store, w.group) == []
    assert transcript_seqs(store, "c1") == [9, 0, 1]
    c2 = store.load_contact("c2")
    assert c2 is not None and c2.view.status == "self_service"


def test_a_batch_that_fails_half_way_sends_none_of_its_deferred_commits_later(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """An exception out of a batch leaves its events pending; commits it deferred are dropped, not sent
    with some later batch."""
    w = make_worker()
    xadd(store, started("c1"))
    entries = read_group(store, w.group, w.consumer)
    w.engine.begin_batch([parse(started("c1"))], defer=True)
    assert w.engine.handle(parse(started("c1")), "e-1") is not None  # deferred
    w.engine.end_batch()  # as the worker's finally does when the batch raised
    store.flush()
    assert store.load_contact("c1") is None
    w.process(entries)  # the redelivery applies it
    assert pending_ids(store, w.group) == []
    assert store.load_contact("c1") is not None


# ------------------------------------------------------------------------------- queued contacts, pulls


def _count_loads(store: RoutingStore, monkeypatch: Any) -> tuple[list[str], list[str]]:
    """(ids read by load_contacts, ids read one by one by load_contact)."""
    many: list[str] = []
    one: list[str] = []
    real_many, real_one = store.load_contacts, store.load_contact

    def load_contacts(ids: Any) -> Any:
        many.extend(ids)
        return real_many(ids)

    def load_contact(cid: str) -> Any:
        one.append(cid)
        return real_one(cid)

    monkeypatch.setattr(store, "load_contacts", load_contacts)
    monkeypatch.setattr(store, "load_contact", load_contact)
    return many, one


def _queue_up(engine: Engine, *cids: str) -> None:
    for cid in cids:
        engine.handle(parse(started(cid)), new_id())
        engine.handle(parse({"type": "contact.human_requested", "contact_id": cid}), new_id())


def test_pulls_in_one_batch_read_each_queued_contact_once(
    store: RoutingStore, engine: Engine, monkeypatch: Any
) -> None:
    """Two releases in one batch pull twice: the waiting contacts are read for the first pull only (a long
    queue used to cost up to 100 contact reads per pull)."""
    add_agent(store, "a1", eq=3)
    add_agent(store, "a2", eq=3)
    _queue_up(engine, "c1", "c2", "w1", "w2", "w3", "w4")  # c1, c2 offered to a1, a2; w1-w4 wait
    assert {store.load_contact(c).view.status for c in ("w1", "w2", "w3", "w4")} == {"queued"}  # type: ignore[union-attr]
    many, one = _count_loads(store, monkeypatch)
    ends = [parse({"type": "contact.ended", "contact_id": cid, "reason": "resolved"}) for cid in ("c1", "c2")]
    engine.begin_batch(ends)
    for end in ends:
        engine.handle(end, new_id())
    engine.end_batch()
    waiting = [cid for cid in many if cid.startswith("w")]
    assert sorted(waiting) == ["w1", "w2", "w3", "w4"], many  # each read once, by the first pull
    assert one == []
    offered = {cid: store.load_contact(cid) for cid in ("w1", "w2")}
    assert {rec.view.agent_id for rec in offered.values() if rec is not None} == {"a1", "a2"}
    assert engine.counters.conflicts == 0


def test_a_stale_queued_contact_costs_a_refused_offer_then_a_fresh_read(
    store: RoutingStore, engine: Engine, monkeypatch: Any
) -> None:
    """Another worker changes a waiting contact after our first pull read it: the second pull's offer is
    refused on the version, and the retry decides on a fresh read."""
    add_agent(store, "a1", eq=3)
    add_agent(store, "a2", eq=3)
    _queue_up(engine, "c1", "c2", "w1", "w2")
    ends = [parse({"type": "contact.ended", "contact_id": cid, "reason": "resolved"}) for cid in ("c1", "c2")]
    engine.begin_batch(ends)
    engine.handle(ends[0], new_id())  # a1 pulls w1; w2 is now cached as queued
    other = Engine(store, engine.settings, clock=engine.clock)
    other.handle(parse(message("w2", 0, "hello again")), new_id())  # another worker: w2's version moves
    engine.handle(ends[1], new_id())  # a2 pulls w2 from the cache: refused once, then offered
    engine.end_batch()
    rec = store.load_contact("w2")
    assert rec is not None and rec.view.status == "offered" and rec.view.agent_id == "a2"
    assert engine.counters.conflicts == 1


def test_a_sweep_reads_the_queue_heads_once(store: RoutingStore, engine: Engine, monkeypatch: Any) -> None:
    add_agent(store, "a1", eq=3, capacity={"voice": 1})  # free, but for voice: no chat contact fits
    _queue_up(engine, "w1", "w2", "w3")
    many, one = _count_loads(store, monkeypatch)
    assert engine.sweep() == 0
    assert sorted(many) == ["w1", "w2", "w3"] and one == []
    assert engine.batch_state == BatchState()  # nothing cached past the sweep
