"""At least once, effectively once: redelivered stream entries decide and reserve nothing twice; bad input is
dead-lettered (recorded, acknowledged) without stopping the worker; trimming never drops unacked work."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from router.settings import Settings
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.contract.contract_helpers import (
    NoAck,
    add_agent,
    dead_letters,
    decisions,
    dump_domain,
    message,
    pending_ids,
    read_group,
    started,
    xadd,
)

MakeWorker = Callable[..., Worker]


def state(admin: redis.Redis, store: RoutingStore) -> dict[str, Any]:
    """Everything routing owns: the events stream itself is left out (trimming may shorten it), and so are
    the workers' heartbeats and floor samples (the dashboard's, taken on a timer)."""
    dump = dump_domain(admin, store.domain)
    dump.pop(store.keys.events, None)
    dump.pop(store.keys.workers, None)
    dump.pop(store.keys.floor, None)
    return dump


def run(worker: Worker, times: int = 4) -> None:
    for _ in range(times):
        worker.run_once()


def phase_a(store: RoutingStore) -> None:
    for aid in ("a1", "a5"):
        xadd(store, {"type": "agent.status", "agent_id": aid, "status": "available", "event_id": f"st-{aid}"})
    for cid in ("c1", "c2", "c3", "c4", "c5"):
        xadd(store, started(cid))
    xadd(store, message("c1", 0, "my card was stolen"))  # -> a5 (moment of truth)
    xadd(store, message("c2", 0, "what time do you open"))  # stays in self-service
    xadd(store, message("c3", 0, "can I talk to a person"))  # -> a1 (routine, lowest eq)
    xadd(store, {"type": "contact.human_requested", "contact_id": "c4"})  # a1 is full: -> a5
    xadd(store, {"type": "contact.human_requested", "contact_id": "c5"})  # everybody full: queued


def phase_b(store: RoutingStore) -> None:
    offers = {d.contact_id: d for d in decisions(store) if d.action == "offer"}
    xadd(store, {"type": "offer.accepted", "offer_id": offers["c1"].offer_id})
    xadd(store, {"type": "offer.declined", "offer_id": offers["c3"].offer_id})  # a1 frees: c5 is pulled
    xadd(store, {"type": "contact.ended", "contact_id": "c2"})
    xadd(store, {"type": "work.completed", "agent_id": "a5", "contact_id": "c1"})
    xadd(store, {"type": "agent.status", "agent_id": "a5", "status": "offline"})


def agent_loads(store: RoutingStore) -> dict[str, dict[str, int]]:
    return {a.view.agent_id: dict(a.view.load) for a in store.load_agents(0, 1)}


@pytest.mark.parametrize("replay", ["process_again", "group_rewound", "crash_before_ack"])
def test_redelivered_events_give_one_decision_and_one_reservation(
    replay: str, store: RoutingStore, client: redis.Redis, make_worker: MakeWorker, admin: redis.Redis
) -> None:
    add_agent(store, "a1", eq=1, capacity={"chat": 1}, status="offline")
    add_agent(store, "a5", eq=5, capacity={"chat": 2}, status="offline")
    worker = make_worker("w1")
    total = 0
    for phase in (phase_a, phase_b):
        phase(store)
        if replay == "crash_before_ack":
            dying = make_worker("w-dead")
            dying.r = NoAck(client)  # type: ignore[assignment]
            entries = read_group(store, dying.group, "w-dead")
            dying.process(entries)
            assert sorted(pending_ids(store, dying.group)) == sorted(e for e, _ in entries)
        else:
            entries = read_group(store, worker.group, worker.consumer)
            worker.process(entries)
            assert pending_ids(store, worker.group) == []
        total += len(entries)
        before = state(admin, store)
        first_decisions = decisions(store)
        loads_before = agent_loads(store)
        if replay == "process_again":
            worker.process(entries)
        elif replay == "group_rewound":
            admin.xgroup_setid(store.keys.events, worker.group, "0")
            again = make_worker("w2")
            replayed = read_group(store, again.group, "w2")
            assert len(replayed) == total  # every entry of the stream is delivered a second time
            again.process(replayed)
        else:
            time.sleep(0.01)
            rescuer = make_worker("w-rescue", claim_min_idle_ms=1)
            run(rescuer, 3)
            assert rescuer.stats.reclaimed == len(entries)
        assert pending_ids(store, worker.group) == []
        assert state(admin, store) == before, f"replay ({replay}) changed routing state"
        assert decisions(store) == first_decisions
        assert agent_loads(store) == loads_before
    ds = decisions(store)
    assert store.stats()["processed"] == total  # every event applied exactly once
    assert store.stats()["decisions"] == len(ds)
    assert agent_loads(store) == {"a1": {"chat": 1}, "a5": {"chat": 0}}
    assert len({d.decision_id for d in ds}) == len(ds)


# ---------------------------------------------------------------------------------------------- dead letters

NESTED = b"[" * 100_000 + b"]" * 100_000
BIG = json.dumps(message("c1", 0, "x" * 1_000_000)).encode()
POISON: dict[str, tuple[dict[bytes, bytes], str]] = {
    "malformed_json": ({b"event": b"{not json"}, "invalid_json"),
    "not_an_object": ({b"event": b"[1, 2, 3]"}, "invalid_event"),
    "json_null": ({b"event": b"null"}, "invalid_event"),
    "wrong_types": (
        {
            b"event": json.dumps(
                {
                    "type": "contact.message",
                    "contact_id": "c",
                    "seq": "one",
                    "speaker": "customer",
                    "text": "hi",
                }
            ).encode()
        },
        "invalid_event: contact.message.seq",
    ),
    "unknown_type": ({b"event": b'{"type": "contact.teleported", "contact_id": "x"}'}, "invalid_event"),
    # issue 14: unbounded numbers were accepted (Python's JSON reads Infinity and 1e400 as inf)
    "seq_1e38": (
        {
            b"event": b'{"type": "contact.message", "contact_id": "x", "seq": 1'
            + b"0" * 38
            + b', "speaker": '
            b'"customer", "text": "hi"}'
        },
        "invalid_event: contact.message.seq",
    ),
    "ts_infinity": (
        {b"event": b'{"type": "contact.ended", "contact_id": "x", "ts": Infinity}'},
        "invalid_event: contact.ended.ts",
    ),
    "ts_1e400": ({b"event": b'{"type": "contact.ended", "contact_id": "x", "ts": 1e400}'}, "invalid_event"),
    "ts_nan": ({b"event": b'{"type": "contact.ended", "contact_id": "x", "ts": NaN}'}, "invalid_event"),
    "ts_in_ms": (
        {b"event": b'{"type": "contact.ended", "contact_id": "x", "ts": 1795691523100}'},
        "invalid_event: contact.ended.ts",
    ),
    "no_type": ({b"event": b'{"contact_id": "x"}'}, "invalid_event"),
    "unknown_field": (
        {b"event": b'{"type": "contact.ended", "contact_id": "x", "bogus": 1}'},
        "invalid_event",
    ),
    "missing_event_field": ({b"payload": b'{"type": "contact.ended", "contact_id": "x"}'}, "missing_field"),
    "invalid_utf8": ({b"event": b'{"type": "contact.started", "contact_id": "\xff\xfe"}'}, "invalid_utf8"),
    "deeply_nested": ({b"event": NESTED}, "invalid_"),
    "deeply_nested_in_event": (
        {
            b"event": b'{"type": "contact.started", "contact_id": "x", "customer": '
            + b'{"a": ' * 5_000
            + b"1"
            + b"}" * 5_000
            + b"}"
        },
        "invalid_",
    ),
    "text_of_1mb": ({b"event": BIG}, "invalid_event: contact.message.text"),
    "unknown_agent": (
        {b"event": b'{"type": "agent.status", "agent_id": "ghost", "status": "away"}'},
        "unknown_agent",
    ),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_bad_input_is_dead_lettered_acked_and_the_worker_goes_on(
    case: str, store: RoutingStore, make_worker: MakeWorker
) -> None:
    fields, error = POISON[case]
    worker = make_worker()
    xadd(store, started("before"))
    bad_id = store.client.xadd(store.keys.events, fields).decode()
    xadd(store, started("after"))
    run(worker)
    assert pending_ids(store, worker.group) == []
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == bad_id
    assert dl["error"].startswith(error), dl["error"][:300]
    assert dl["deliveries"] == "1"
    assert dl["consumer"] == worker.consumer
    raw = fields.get(b"event")
    if raw is not None:
        assert dl["payload"] == raw.decode("utf-8", errors="backslashreplace")  # the whole original, 1 MB too
    else:
        assert json.loads(dl["payload"]) == {k.decode(): v.decode() for k, v in fields.items()}
    assert len(dl["error"]) < 3_000
    assert store.stats()["dead_letters"] == 1 and worker.stats.dead_lettered == 1
    assert {d.contact_id for d in decisions(store)} == {"before", "after"}  # the batch around it went on


def test_an_event_id_reused_with_other_content_is_dead_lettered(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """Issue 14: an event_id reused with other content was acknowledged as a duplicate, silently. The seen
    marker keeps a digest of the content: the same content (whatever the key order or omitted defaults) is
    a duplicate, other content a dead letter."""
    worker = make_worker()
    xadd(store, started("c1"))
    xadd(store, {**message("c1", 0, "hello"), "event_id": "m1"})
    run(worker)
    xadd(store, {"schema_version": 1, "event_id": "m1", **message("c1", 0, "hello")})  # the same event
    other = xadd(store, {**message("c1", 1, "cancel my order"), "event_id": "m1"})
    run(worker)
    assert pending_ids(store, worker.group) == []
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == other
    assert dl["error"].startswith("conflicting_duplicate: event_id m1 was applied before with other content")
    rec = store.load_contact("c1")
    assert rec is not None and [t["text"] for t in rec.transcript] == ["hello"]
    assert store.stats()["processed"] == 2


def test_a_repeated_turn_is_a_duplicate_and_a_reused_seq_a_dead_letter(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """Issue 14: a message resent with its seq (under a new event_id) was appended as a second turn."""
    worker = make_worker()
    xadd(store, started("c1"))
    xadd(store, message("c1", 0, "my card was stolen"))
    xadd(store, message("c1", 0, "my card was stolen"))  # resent: another stream entry, the same turn
    xadd(store, message("c1", 0, "hi, how can I help", speaker="agent"))  # another speaker's seq 0
    other = xadd(store, message("c1", 0, "never mind"))
    run(worker)
    rec = store.load_contact("c1")
    assert rec is not None
    assert [(t["speaker"], t["text"]) for t in rec.transcript] == [
        ("customer", "my card was stolen"),
        ("agent", "hi, how can I help"),
    ]
    assert rec.view.trajectory.turns == 1  # scored once
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == other
    assert dl["error"] == "conflicting_seq: c1 already has customer turn seq 0 with other text"
    assert pending_ids(store, worker.group) == []


def test_too_many_deliveries_is_dead_lettered(store: RoutingStore, make_worker: MakeWorker) -> None:
    """A message for a contact that never starts stays pending (retry later) until max_deliveries, then it
    is dead-lettered with its delivery count, saying why: the contact it names never started (issue 14:
    the reason was a bare too_many_deliveries)."""
    worker = make_worker(max_deliveries=2, claim_min_idle_ms=1, claim_interval_s=0.001)
    orphan = xadd(store, message("ghost", 0, "hello?"))
    for _ in range(200):
        run(worker, 1)
        if dead_letters(store):
            break
        time.sleep(0.003)
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == orphan and dl["deliveries"] == "3"
    assert dl["error"] == "unknown_contact: ghost has no contact.started after 3 deliveries"
    assert json.loads(dl["payload"])["contact_id"] == "ghost"
    assert worker.stats.retried == 2
    assert pending_ids(store, worker.group) == []
    assert decisions(store) == []


def test_an_entry_that_kept_failing_for_another_reason_is_too_many_deliveries(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """Over the limit an entry is not run again (it may be what crashed its workers): a contact that exists
    says nothing about why it failed."""
    worker = make_worker("w", max_deliveries=1, claim_min_idle_ms=60_000)
    xadd(store, started("c1"))
    run(worker)
    entry = xadd(store, message("c1", 0, "hello"))
    for _ in range(2):
        read_group(store, worker.group, "w", start="0" if _ else ">")
    run(make_worker("w", max_deliveries=1, claim_min_idle_ms=60_000), 2)
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == entry and dl["error"] == "too_many_deliveries" and dl["deliveries"] == "3"


def test_events_before_their_contact_start_are_retried_until_it_starts(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    """With several workers a contact's later events can be read before its start is applied: they stay
    pending (retry later) rather than being dead-lettered, and apply in order once the contact exists."""
    worker = make_worker(max_deliveries=5, claim_min_idle_ms=1, claim_interval_s=0.001)
    xadd(store, message("c1", 0, "where is my parcel"))
    xadd(store, {"type": "work.completed", "agent_id": "a1", "contact_id": "c1"})
    xadd(store, {"type": "contact.ended", "contact_id": "c1", "reason": "abandoned"})
    run(worker, 3)
    assert worker.stats.retried >= 3 and len(pending_ids(store, worker.group)) == 3
    xadd(store, started("c1"))
    for _ in range(100):
        run(worker, 1)
        if not pending_ids(store, worker.group):
            break
        time.sleep(0.003)
    assert pending_ids(store, worker.group) == [] and dead_letters(store) == []
    rec = store.load_contact("c1")
    assert rec is not None and [t["text"] for t in rec.transcript] == ["where is my parcel"]
    assert rec.view.status == "ended" and rec.raw["end_reason"] == "abandoned"
    assert store.stats()["processed"] == 4


def test_restart_reads_own_pending_once_then_moves_on(store: RoutingStore, make_worker: MakeWorker) -> None:
    """After a restart a worker first re-reads its own pending entries from 0, once: an entry that still
    cannot be applied waits for the reclaim timer instead of being re-read in a tight loop until it is
    dead-lettered, and new entries are not held up behind it."""
    first = make_worker("w", max_deliveries=3, claim_min_idle_ms=60_000)
    early = xadd(store, message("c9", 0, "hello"))
    run(first, 2)
    assert pending_ids(store, first.group) == [early]
    restarted = make_worker("w", max_deliveries=3, claim_min_idle_ms=60_000)
    xadd(store, started("c1"))
    run(restarted, 10)
    assert dead_letters(store) == []
    assert pending_ids(store, first.group) == [early]
    assert [d.contact_id for d in decisions(store)] == ["c1"]
    rows = store.client.xpending_range(store.keys.events, first.group, min="-", max="+", count=10)
    assert rows[0]["times_delivered"] <= 2


def test_delivery_counts_are_read_for_the_workers_own_entries(
    store: RoutingStore, client: redis.Redis, make_worker: MakeWorker
) -> None:
    """Entries of other consumers between ours in the pending list must not hide our delivery counts."""
    worker = make_worker("w", max_deliveries=2, claim_min_idle_ms=60_000)
    group = worker.group
    ours = [xadd(store, message("ghost", 0, "one"))]
    read_group(store, group, "w")
    for i in range(12):
        xadd(store, started(f"busy{i}"))
    read_group(store, group, "other")  # someone else's pending work, alive and well
    ours.append(xadd(store, message("ghost", 1, "two")))
    read_group(store, group, "w")
    for _ in range(3):
        read_group(store, group, "w", start="0")  # delivered again and again, never applied
    restarted = make_worker("w", max_deliveries=2, claim_min_idle_ms=60_000)
    run(restarted, 2)
    dls = {d["stream_id"]: d for d in dead_letters(store)}
    assert set(dls) == set(ours)
    assert all(d["error"].startswith("unknown_contact: ghost has no contact.started") for d in dls.values())
    assert len(pending_ids(store, group)) == 12  # the other consumer's entries are untouched


def test_delivery_counts_of_reclaimed_entries_skip_our_own_fresh_ones(
    store: RoutingStore, make_worker: MakeWorker, admin: redis.Redis
) -> None:
    worker = make_worker("w", max_deliveries=3, claim_min_idle_ms=50, claim_interval_s=0.001)
    group = worker.group
    run(worker, 1)  # its start-up pass over its own (empty) pending list is over
    e1 = xadd(store, message("ghost", 0, "one"))
    read_group(store, group, "dead")
    e2 = xadd(store, message("ghost", 1, "two"))
    read_group(store, group, "w")  # our own, fresh: between the dead consumer's two entries
    e3 = xadd(store, message("ghost", 2, "three"))
    read_group(store, group, "dead")
    for _ in range(2):
        read_group(store, group, "dead", start="0")  # e1 and e3: three deliveries each
    time.sleep(0.08)
    admin.xclaim(store.keys.events, group, "w", min_idle_time=0, message_ids=[e2])  # busy again: not idle
    run(worker, 1)  # XAUTOCLAIM takes e1 and e3 (a fourth delivery each)
    assert {d["stream_id"] for d in dead_letters(store)} == {e1, e3}
    assert pending_ids(store, group) == [e2]


def test_an_entry_deleted_while_pending_is_dead_lettered(
    store: RoutingStore, make_worker: MakeWorker, admin: redis.Redis
) -> None:
    first = make_worker("w")
    gone = xadd(store, message("ghost", 0, "hi"))
    read_group(store, first.group, "w")
    admin.xdel(store.keys.events, gone)  # an operator's manual delete
    restarted = make_worker("w")
    xadd(store, started("c1"))
    run(restarted)
    assert pending_ids(store, first.group) == []
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == gone and dl["error"].startswith("deleted_before_processing")
    assert [d.contact_id for d in decisions(store)] == ["c1"]


# ---------------------------------------------------------------------------------------------- trimming


def stream_ids(store: RoutingStore) -> list[str]:
    return [i.decode() for i, _ in store.client.xrange(store.keys.events)]


def test_trim_never_drops_unacknowledged_entries(
    store: RoutingStore, client: redis.Redis, make_worker: MakeWorker, settings: Settings
) -> None:
    worker = make_worker()
    group = worker.group
    ids = [xadd(store, {"type": "contact.ended", "contact_id": f"c{i}"}) for i in range(10)]
    assert worker.trim() == 0  # nothing delivered yet
    assert stream_ids(store) == ids
    read_group(store, group, "x", count=6)  # 0..5 delivered, 6..9 never delivered
    client.xack(store.keys.events, group, ids[0], ids[1], ids[3])
    worker.trim()
    assert stream_ids(store) == ids[2:]  # 2 is the oldest pending: nothing from it on goes
    client.xack(store.keys.events, group, ids[2], ids[4], ids[5])
    worker.trim()
    assert stream_ids(store) == ids[6:]  # acknowledged all; undelivered entries stay
    # a second group that has read nothing holds everything back
    client.xgroup_create(store.keys.events, "audit", id="0")
    more = xadd(store, {"type": "contact.ended", "contact_id": "c10"})
    assert worker.trim() == 0
    assert stream_ids(store) == [*ids[6:], more]
    read_group(store, group, "x")
    client.xack(store.keys.events, group, *ids[6:], more)
    read_group(store, "audit", "y", count=2)  # audit: 6 and 7 pending
    worker.trim()
    assert stream_ids(store) == [*ids[6:], more]
    client.xack(store.keys.events, "audit", ids[6])
    worker.trim()
    assert stream_ids(store) == [*ids[7:], more]
    assert set(pending_ids(store, "audit")) == {ids[7]}
