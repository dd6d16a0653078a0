"""Reservations: every Lua transition of RoutingStore, on fakeredis and on a real server.

Offers check and take capacity in one step; accept/decline/timeout/revoke/release move capacity exactly
once; a refused transition changes nothing; an event id applied twice decides once; every script keeps
to one cluster slot."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from router.domain.policy import PolicyConfig, queue_score
from router.events import Decision
from router.scoring.protocol import EmotionScore
from router.settings import Settings
from router.store import scripts
from router.store.store import Commit, Outcome, RoutingStore, body_with_prelude
from router.worker.decisions import make_decision
from router.worker.engine import Engine
from tests.contract.contract_helpers import (
    T0,
    FakeClock,
    add_agent,
    decisions,
    dump_domain,
    loads,
    message,
    offer_of,
    parse,
    set_contact,
    started,
)

NOW_MS = int(T0 * 1000)
TIMEOUT_MS = 15_000
MEMORY_MS = 180_000  # the decline memory


def a_decision(cid: str, action: str = "offer", eid: str = "e") -> tuple[str, str]:
    d = make_decision(event_id=eid, contact_id=cid, action=action, now_s=T0, reasons=())  # type: ignore[arg-type]
    return cid, d.model_dump_json()


def offer(
    store: RoutingStore,
    agent: str,
    cid: str,
    oid: str,
    *,
    channel: str = "chat",
    queue: str = "general",
    now_ms: int = NOW_MS,
    version: int | None = None,
    event_id: str = "",
    mot: bool = False,
    override_decline: bool = False,
) -> Outcome:
    return store.offer(
        Commit(event_id=event_id, decisions=(a_decision(cid),)),
        offer_id=oid,
        agent_id=agent,
        contact_id=cid,
        channel=channel,
        queue=queue,
        now_ms=now_ms,
        timeout_ms=TIMEOUT_MS,
        mot=mot,
        expected_version=version,
        fairness_window_ms=3_600_000,
        decline_memory_ms=MEMORY_MS,
        override_decline=override_decline,
    )


def resolve(
    store: RoutingStore,
    oid: str,
    mode: str,
    *,
    now_ms: int = NOW_MS + 1_000,
    score: float = 5.0,
    event_id: str = "",
) -> Outcome:
    return store.resolve_offer(
        Commit(event_id=event_id),
        offer_of(store, oid),
        mode,
        now_ms=now_ms,
        requeue_score=score,
        decline_memory_ms=MEMORY_MS,
    )


def contact_hash(store: RoutingStore, cid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in store.client.hgetall(store.keys.contact(cid)).items()}


def queue_members(store: RoutingStore, queue: str) -> dict[str, float]:
    return {m.decode(): s for m, s in store.client.zrange(store.keys.queue(queue), 0, -1, withscores=True)}


def assert_refused(
    admin: redis.Redis, domain: str, call: Callable[[], Outcome], status: str, reason: str | None = None
) -> Outcome:
    before = dump_domain(admin, domain)
    out = call()
    assert out.status == status, out
    if reason is not None:
        assert out.reason == reason, out
    assert dump_domain(admin, domain) == before, f"refused {status} {out.detail} changed the store"
    return out


# ---------------------------------------------------------------------------------------------- offer


def test_offer_takes_capacity_and_records_everything(store: RoutingStore, admin: redis.Redis) -> None:
    k = store.keys
    add_agent(store, "a1", capacity={"chat": 2})
    set_contact(store, "c1", queue="general", score=3.0)
    out = offer(store, "a1", "c1", "o1", version=1)
    assert out.ok, out
    assert loads(store, "a1") == {"chat": 1}
    o = offer_of(store, "o1")
    assert (o.status, o.agent_id, o.contact_id, o.channel, o.deadline_ms) == (
        "pending",
        "a1",
        "c1",
        "chat",
        NOW_MS + TIMEOUT_MS,
    )
    c = contact_hash(store, "c1")
    assert (c["status"], c["offer_id"], c["agent_id"], c["version"]) == ("offered", "o1", "a1", "2")
    assert queue_members(store, "general") == {}
    assert store.due_offers(NOW_MS + TIMEOUT_MS) == ["o1"]
    assert store.client.smembers(k.agent_offers("a1")) == {b"o1"}
    assert admin.pttl(k.offer("o1")) > 0  # bounded: the offer hash expires
    assert [d.contact_id for d in decisions(store)] == ["c1"]
    assert len(store.history("c1")) == 1


def test_offer_fills_capacity_per_channel_then_refuses(
    store: RoutingStore, domain: str, admin: redis.Redis
) -> None:
    add_agent(store, "a1", capacity={"chat": 2, "voice": 1})
    for i in range(4):
        set_contact(store, f"c{i}", channel="voice" if i == 3 else "chat")
    assert offer(store, "a1", "c0", "o0").ok
    assert offer(store, "a1", "c1", "o1").ok
    assert_refused(admin, domain, lambda: offer(store, "a1", "c2", "o2"), "err", "no_capacity")
    assert offer(store, "a1", "c3", "o3", channel="voice").ok  # another channel has its own capacity
    assert loads(store, "a1") == {"chat": 2, "voice": 1}


Setup = Callable[[RoutingStore], None]


def _away(store: RoutingStore) -> None:
    assert store.agent_status(Commit(), "a1", "away", now_ms=NOW_MS, requeue=[]).ok


def _offline(store: RoutingStore) -> None:
    assert store.agent_status(Commit(), "a1", "offline", now_ms=NOW_MS, requeue=[]).ok


def _full(store: RoutingStore) -> None:
    set_contact(store, "other")
    assert offer(store, "a1", "other", "o-other").ok


def _declined(store: RoutingStore) -> None:
    assert offer(store, "a1", "c1", "o-first").ok
    assert resolve(store, "o-first", "declined").ok


def _timed_out(store: RoutingStore) -> None:
    assert offer(store, "a1", "c1", "o-first").ok
    assert resolve(store, "o-first", "timeout", now_ms=NOW_MS + TIMEOUT_MS).ok


def _offered_elsewhere(store: RoutingStore) -> None:
    add_agent(store, "a2", capacity={"chat": 1})
    assert offer(store, "a2", "c1", "o-a2").ok


def _assigned_elsewhere(store: RoutingStore) -> None:
    _offered_elsewhere(store)
    assert resolve(store, "o-a2", "accepted").ok


def _ended(store: RoutingStore) -> None:
    store.client.hset(store.keys.contact("c1"), "status", "ended")
    store.client.zrem(store.keys.queue("general"), "c1")


def _gone(store: RoutingStore) -> None:
    store.client.delete(store.keys.contact("c1"))  # an admin's store: no router role deletes keys


REFUSALS: dict[str, tuple[Setup, dict[str, Any], str, str]] = {
    "agent_away": (_away, {}, "err", "agent_unavailable"),
    "agent_offline": (_offline, {}, "err", "agent_unavailable"),
    "agent_unknown": (lambda s: None, {"agent": "nobody"}, "err", "agent_unavailable"),
    "at_capacity": (_full, {}, "err", "no_capacity"),
    "channel_without_capacity": (lambda s: None, {"channel": "voice"}, "err", "no_capacity"),
    "declined_before": (_declined, {}, "err", "declined_before"),
    "timed_out_before": (_timed_out, {}, "err", "declined_before"),
    "contact_offered": (_offered_elsewhere, {}, "err", "contact_taken"),
    "contact_assigned": (_assigned_elsewhere, {}, "err", "contact_taken"),
    "contact_ended": (_ended, {}, "err", "contact_taken"),
    "contact_missing": (_gone, {}, "err", "no_contact"),
    "stale_version": (lambda s: None, {"version": 0}, "conflict", ""),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_offer_refused_changes_nothing(
    case: str, store: RoutingStore, domain: str, admin: redis.Redis
) -> None:
    setup, kw, status, reason = REFUSALS[case]
    add_agent(store, "a1", capacity={"chat": 1})
    set_contact(store, "c1")
    setup(RoutingStore(admin, domain))  # as an admin: a setup may do what no router role may
    kw = {"agent": "a1", **kw}
    agent = kw.pop("agent")
    n_before = len(decisions(store))
    assert_refused(
        admin,
        domain,
        lambda: offer(store, agent, "c1", "o-new", event_id="ev-x", **kw),
        status,
        reason or None,
    )
    assert len(decisions(store)) == n_before
    assert store.load_offer("o-new") is None
    assert not store.client.exists(store.keys.seen("ev-x"))  # refused: the event is not marked applied


# ---------------------------------------------------------------------------------------------- resolve


def test_accept_assigns_and_keeps_the_load(store: RoutingStore) -> None:
    add_agent(store, "a1")
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    assert resolve(store, "o1", "accepted").ok
    assert offer_of(store, "o1").status == "accepted"
    c = contact_hash(store, "c1")
    assert (c["status"], c["agent_id"], c["offer_id"]) == ("assigned", "a1", "o1")
    assert loads(store, "a1") == {"chat": 1}
    assert store.due_offers(NOW_MS + 10 * TIMEOUT_MS) == []
    assert store.client.scard(store.keys.agent_offers("a1")) == 0
    assert store.client.zcard(store.keys.served("general")) == 1  # feeds the wait estimate


@pytest.mark.parametrize("mode", ["declined", "timeout"])
def test_decline_or_timeout_frees_requeues_and_remembers(
    mode: str, store: RoutingStore, domain: str, admin: redis.Redis
) -> None:
    add_agent(store, "a1", capacity={"chat": 1})
    set_contact(store, "c1", queue="mot", score=1.0)
    assert offer(store, "a1", "c1", "o1", queue="mot").ok
    now = NOW_MS + TIMEOUT_MS  # due for a timeout; any time for a decline
    assert resolve(store, "o1", mode, now_ms=now, score=42.0).ok
    assert offer_of(store, "o1").status == mode
    assert loads(store, "a1") == {}
    c = contact_hash(store, "c1")
    assert (c["status"], c["agent_id"], c["offer_id"]) == ("queued", "", "")
    assert queue_members(store, "mot") == {"c1": 42.0}
    assert store.client.zrange(store.keys.declines("c1"), 0, -1, withscores=True) == [(b"a1", float(now))]
    assert 0 < admin.pttl(store.keys.declines("c1")) <= MEMORY_MS  # the memory expires
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.declined_ms == {"a1": now}
    assert store.due_offers(now + 10 * TIMEOUT_MS) == []
    # not the same agent again while remembered, even though it has capacity now
    assert_refused(
        admin,
        domain,
        lambda: offer(store, "a1", "c1", "o2", queue="mot", now_ms=now + MEMORY_MS - 1),
        "err",
        "declined_before",
    )
    add_agent(store, "a2")
    assert offer(store, "a2", "c1", "o3", queue="mot").ok


def test_decline_is_remembered_for_the_memory_only(store: RoutingStore) -> None:
    add_agent(store, "a1", capacity={"chat": 1})
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    declined_ms = NOW_MS + 1_000
    assert resolve(store, "o1", "declined", now_ms=declined_ms).ok
    assert offer(store, "a1", "c1", "o2", now_ms=declined_ms + MEMORY_MS - 1).reason == "declined_before"
    assert offer(store, "a1", "c1", "o3", now_ms=declined_ms + MEMORY_MS).ok  # forgotten, to the ms


def test_override_offers_to_a_decliner_and_a_new_decline_prunes_old_ones(store: RoutingStore) -> None:
    add_agent(store, "a1", capacity={"chat": 1})
    add_agent(store, "a2", capacity={"chat": 1})
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    assert resolve(store, "o1", "declined", now_ms=NOW_MS).ok
    # every agent who could take it declined: the worker offers it again, overriding the memory
    assert offer(store, "a1", "c1", "o2", now_ms=NOW_MS + 10, override_decline=True).ok
    assert resolve(store, "o2", "declined", now_ms=NOW_MS + 20).ok  # its time moves on
    assert store.load_contact("c1").view.declined_ms == {"a1": NOW_MS + 20}  # type: ignore[union-attr]
    assert offer(store, "a2", "c1", "o3", now_ms=NOW_MS + MEMORY_MS + 50).ok
    assert resolve(store, "o3", "timeout", now_ms=NOW_MS + MEMORY_MS + 50 + TIMEOUT_MS).ok
    # a1's decline is older than the memory by then: pruned in the same script
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.declined_ms == {"a2": NOW_MS + MEMORY_MS + 50 + TIMEOUT_MS}


def test_timeout_only_when_due(store: RoutingStore, domain: str, admin: redis.Redis) -> None:
    add_agent(store, "a1")
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    assert store.due_offers(NOW_MS + TIMEOUT_MS - 1) == []
    assert_refused(
        admin,
        domain,
        lambda: resolve(store, "o1", "timeout", now_ms=NOW_MS + TIMEOUT_MS - 1),
        "err",
        "not_due",
    )
    assert store.due_offers(NOW_MS + TIMEOUT_MS) == ["o1"]
    assert resolve(store, "o1", "timeout", now_ms=NOW_MS + TIMEOUT_MS).ok
    assert loads(store, "a1") == {}


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("accepted", "accepted"),
        ("accepted", "declined"),
        ("declined", "accepted"),
        ("declined", "timeout"),
        ("timeout", "declined"),
    ],
)
def test_resolved_offer_cannot_be_resolved_again(
    first: str, then: str, store: RoutingStore, domain: str, admin: redis.Redis
) -> None:
    add_agent(store, "a1")
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    assert resolve(store, "o1", first, now_ms=NOW_MS + TIMEOUT_MS).ok
    out = assert_refused(
        admin,
        domain,
        lambda: resolve(store, "o1", then, now_ms=NOW_MS + 2 * TIMEOUT_MS),
        "err",
        "offer_not_pending",
    )
    assert out.detail[1] == first


@pytest.mark.parametrize("status", ["away", "offline"])
def test_agent_leaving_revokes_offers_and_requeues(status: str, store: RoutingStore) -> None:
    add_agent(store, "a1", capacity={"chat": 2, "voice": 1})
    set_contact(store, "c1", queue="mot")
    set_contact(store, "c2", queue="general")
    set_contact(store, "c3", channel="voice")
    assert offer(store, "a1", "c1", "o1", queue="mot").ok
    assert offer(store, "a1", "c2", "o2").ok
    assert offer(store, "a1", "c3", "o3", channel="voice").ok
    assert resolve(store, "o3", "accepted").ok  # assigned work stays with the agent
    pend = store.agent_pending_offers("a1")
    assert sorted(o.offer_id for o in pend) == ["o1", "o2"]
    requeue = [(o, 7.0 if o.offer_id == "o1" else 8.0) for o in pend]
    assert store.agent_status(Commit(event_id="st1"), "a1", status, now_ms=NOW_MS + 1, requeue=requeue).ok
    assert loads(store, "a1") == {"voice": 1}
    assert {o: offer_of(store, o).status for o in ("o1", "o2", "o3")} == {
        "o1": "revoked",
        "o2": "revoked",
        "o3": "accepted",
    }
    assert queue_members(store, "mot") == {"c1": 7.0}
    assert queue_members(store, "general") == {"c2": 8.0}
    for cid in ("c1", "c2"):
        assert contact_hash(store, cid)["status"] == "queued"
        assert store.client.zcard(store.keys.declines(cid)) == 0  # revoked is not declined: may come back
    assert contact_hash(store, "c3")["status"] == "assigned"
    assert store.client.scard(store.keys.agent_offers("a1")) == 0
    assert store.due_offers(NOW_MS * 2) == []


def test_agent_status_refuses_a_stale_offer_list(
    store: RoutingStore, domain: str, admin: redis.Redis
) -> None:
    add_agent(store, "a1", capacity={"chat": 2})
    set_contact(store, "c1")
    set_contact(store, "c2")
    assert offer(store, "a1", "c1", "o1").ok
    stale = [(o, 1.0) for o in store.agent_pending_offers("a1")]
    assert offer(store, "a1", "c2", "o2").ok  # a new offer lands between the read and the write
    assert_refused(
        admin,
        domain,
        lambda: store.agent_status(Commit(), "a1", "offline", now_ms=NOW_MS, requeue=stale),
        "conflict",
    )
    assert_refused(
        admin,
        domain,
        lambda: store.agent_status(Commit(), "ghost", "offline", now_ms=NOW_MS, requeue=[]),
        "err",
        "no_agent",
    )


# ---------------------------------------------------------------------------------------------- release


def test_release_frees_exactly_once(
    store: RoutingStore,
    engine: Engine,
    clock: FakeClock,
    domain: str,
    admin: redis.Redis,
) -> None:
    """Two contacts assigned to one agent; work.completed then contact.ended (and their replays) on one of
    them must take the agent's load from 2 to 1, never to 0."""
    add_agent(store, "a1", eq=2, capacity={"chat": 2})
    for cid in ("c1", "c2"):
        engine.handle(parse(started(cid)), f"start-{cid}")
        engine.handle(parse({"type": "contact.human_requested", "contact_id": cid}), f"human-{cid}")
    offers = {d.contact_id: d.offer_id for d in decisions(store) if d.action == "offer"}
    assert set(offers) == {"c1", "c2"}
    for cid, oid in offers.items():
        engine.handle(parse({"type": "offer.accepted", "offer_id": oid}), f"acc-{cid}")
    assert loads(store, "a1") == {"chat": 2}
    rec = store.load_contact("c1")
    assert rec is not None
    engine.handle(parse({"type": "work.completed", "agent_id": "a1", "contact_id": "c1"}), "done-c1")
    assert loads(store, "a1") == {"chat": 1}
    for _ in range(2):
        engine.handle(parse({"type": "work.completed", "agent_id": "a1", "contact_id": "c1"}), "done-c1")
        engine.handle(parse({"type": "contact.ended", "contact_id": "c1"}), "end-c1")
        engine.handle(parse({"type": "contact.ended", "contact_id": "c1"}), "end-c1b")
    assert loads(store, "a1") == {"chat": 1}
    # the release script itself: an outdated record is refused, a fresh one of an ended contact frees nothing
    assert_refused(
        admin,
        domain,
        lambda: store.release(Commit(), rec, now_ms=clock.ms, fields={}, end_contact=True, affinity_ttl_s=60),
        "conflict",
    )
    fresh = store.load_contact("c1")
    assert fresh is not None and fresh.view.status == "ended"
    out = store.release(Commit(), fresh, now_ms=clock.ms, fields={}, end_contact=True, affinity_ttl_s=60)
    assert out.ok and out.detail == ("ended", "")
    assert loads(store, "a1") == {"chat": 1}
    released = [d for d in decisions(store) if d.action == "released" and d.contact_id == "c1"]
    assert len(released) == 1
    assert store.customer("cust-c1")["last_agent_id"] == "a1"  # affinity for the customer's next contact


def test_release_of_an_offered_contact_revokes_the_offer(store: RoutingStore) -> None:
    add_agent(store, "a1")
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    rec = store.load_contact("c1")
    assert rec is not None
    out = store.release(
        Commit(),
        rec,
        now_ms=NOW_MS + 5,
        fields={"end_reason": "abandoned"},
        end_contact=True,
        affinity_ttl_s=60,
    )
    assert out.ok and out.detail == ("offered", "a1")
    assert loads(store, "a1") == {}
    assert offer_of(store, "o1").status == "revoked"
    assert store.due_offers(NOW_MS * 2) == []
    assert store.client.scard(store.keys.agent_offers("a1")) == 0
    c = contact_hash(store, "c1")
    assert (c["status"], c["agent_id"], c["end_reason"]) == ("ended", "", "abandoned")
    # a late accept of the revoked offer changes nothing
    assert resolve(store, "o1", "accepted").reason == "offer_not_pending"


def test_release_of_a_queued_contact_leaves_the_queue(store: RoutingStore) -> None:
    set_contact(store, "c1", queue="mot")
    rec = store.load_contact("c1")
    assert rec is not None
    assert store.release(Commit(), rec, now_ms=NOW_MS, fields={}, end_contact=True, affinity_ttl_s=60).ok
    assert queue_members(store, "mot") == {}


def test_other_refusals_change_nothing(store: RoutingStore, domain: str, admin: redis.Redis) -> None:
    add_agent(store, "a1")
    set_contact(store, "c1")
    assert_refused(
        admin,
        domain,
        lambda: store.apply_contact(
            Commit(event_id="x"), "c1", 0, {"status": "new"}, join_queue="mot", join_score=1.0
        ),
        "conflict",
    )
    assert_refused(
        admin, domain, lambda: store.upsert_agent("a1", {"eq": "5"}, expected_version=99), "conflict"
    )
    ghost = store.load_contact("c1")
    assert ghost is not None
    admin.delete(store.keys.contact("c1"))
    assert_refused(
        admin,
        domain,
        lambda: store.release(Commit(), ghost, now_ms=NOW_MS, fields={}, end_contact=True, affinity_ttl_s=60),
        "err",
        "no_contact",
    )


# ---------------------------------------------------------------------------------------------- idempotency


def test_same_event_id_twice_decides_once(store: RoutingStore, domain: str, admin: redis.Redis) -> None:
    k = store.keys
    add_agent(store, "a1", capacity={"chat": 2})
    set_contact(store, "c1")
    set_contact(store, "c2")
    calls: list[Callable[[], Outcome]] = [
        lambda: store.apply_contact(
            Commit("e0", (a_decision("c1", "queued", "e0"),), True), "c1", 1, {"priority": "1.0"}
        ),
        lambda: offer(store, "a1", "c1", "o1", event_id="e1"),
        lambda: store.resolve_offer(
            Commit("e2", (a_decision("c1", "released", "e2"),)),
            offer_of(store, "o1"),
            "declined",
            now_ms=NOW_MS,
            requeue_score=1.0,
            decline_memory_ms=MEMORY_MS,
        ),
        lambda: offer(store, "a1", "c2", "o2", event_id="e3"),
        lambda: store.agent_status(
            Commit("e4", (a_decision("c2", "released", "e4"),)),
            "a1",
            "away",
            now_ms=NOW_MS,
            requeue=[(offer_of(store, "o2"), 3.0)],
        ),
        lambda: store.mark(Commit("e5", (a_decision("c2", "queued", "e5"),), True)),
    ]
    for i, call in enumerate(calls):
        assert call().ok, i
        n = len(decisions(store))
        assert n == i + 1
        assert admin.ttl(k.seen(f"e{i}")) > 0  # the seen marker is bounded
        before = dump_domain(admin, domain)
        again = call()
        assert again.status == "dup", (i, again)
        assert dump_domain(admin, domain) == before
    assert loads(store, "a1") == {}
    assert store.stats()["processed"] == 2  # stream_event commits count once each
    assert store.stats()["decisions"] == len(calls)


def test_decisions_are_valid_records_in_stream_and_history(store: RoutingStore) -> None:
    add_agent(store, "a1")
    set_contact(store, "c1")
    assert offer(store, "a1", "c1", "o1").ok
    (d,) = decisions(store)
    assert isinstance(d, Decision) and d.action == "offer"
    assert store.history("c1")[0]["decision_id"] == d.decision_id


# ---------------------------------------------------------------------------------------------- cluster slots


class ScriptSpy:
    """Records (script name, KEYS) of every transition script the store's client sends (EVALSHA)."""

    def __init__(self, store: RoutingStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        names = {
            hashlib.sha1(body_with_prelude(body).encode()).hexdigest(): name
            for name, body in scripts.ALL.items()
        }
        send = store.client.execute_command

        def execute_command(*args: Any, **options: Any) -> Any:
            if args[:1] == ("EVALSHA",) and args[1] in names:
                n = int(args[2])
                self.calls.append((names[args[1]], [str(k) for k in args[3 : 3 + n]]))
            return send(*args, **options)

        monkeypatch.setattr(store.client, "execute_command", execute_command)


def test_every_script_call_keeps_to_one_cluster_slot(
    store: RoutingStore, settings: Settings, clock: FakeClock, domain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ScriptSpy(store, monkeypatch)
    engine = Engine(store, settings, clock=clock)
    add_agent(store, "a1", eq=5, capacity={"chat": 2})
    add_agent(store, "a2", eq=4, capacity={"chat": 1})

    engine.handle(parse(started("c1")), "s1")
    engine.handle(
        parse(message("c1", 0, "my card was stolen")),
        "m1",
        EmotionScore(intensity=0.95, topic="lost_card", topic_prob=0.9),
    )
    (o1,) = [d for d in decisions(store) if d.action == "offer"]
    engine.handle(parse({"type": "offer.declined", "offer_id": o1.offer_id}), "dec1")
    (o2,) = [d for d in decisions(store) if d.action == "offer" and d.offer_id != o1.offer_id]
    engine.handle(parse({"type": "agent.status", "agent_id": o2.agent_id or "", "status": "away"}), "away1")
    engine.handle(
        parse({"type": "agent.status", "agent_id": o2.agent_id or "", "status": "available"}), "back1"
    )
    clock.advance(3_600)
    engine.sweep()  # times out the pending offer
    engine.handle(parse(started("c2")), "s2")
    engine.handle(parse({"type": "contact.human_requested", "contact_id": "c2"}), "h2")
    last = [d for d in decisions(store) if d.action == "offer"][-1]
    engine.handle(parse({"type": "offer.accepted", "offer_id": last.offer_id}), "acc2")
    engine.handle(parse({"type": "contact.ended", "contact_id": last.contact_id}), "end2")
    engine.handle(parse({"type": "contact.human_requested", "contact_id": last.contact_id}), "late")  # mark
    store.deadletter("router", "0-1", {"payload": "x", "error": "e"})

    used = {name for name, _ in spy.calls}
    assert used == set(scripts.ALL), f"not exercised: {set(scripts.ALL) - used}"
    slot = key_slot(f"router:{{{domain}}}:events".encode())
    for name, keys in spy.calls:
        assert keys, name
        assert {key_slot(key.encode()) for key in keys} == {slot}, (name, keys)
        assert all(f"{{{domain}}}" in key for key in keys), (name, keys)


_CALL = re.compile(r"redis\.call\('(\w+)',\s*([^,)]+)")
_LOCAL = re.compile(r"local\s+([\w\s,]+?)\s*=\s*(KEYS\[[^\n]+)")


@pytest.mark.parametrize("name", sorted(scripts.ALL))
def test_scripts_touch_keys_only_through_KEYS(name: str) -> None:
    """A key built inside Lua would be invisible to the cluster router: every key argument comes from KEYS."""
    body = scripts.PRELUDE + scripts.ALL[name]
    from_keys = {n.strip() for m in _LOCAL.finditer(body) for n in m.group(1).split(",")}
    from_keys.add("hk")  # PRELUDE: local hk = KEYS[#KEYS - nd + i]
    for cmd, arg in _CALL.findall(body):
        arg = arg.strip()
        assert arg.startswith("KEYS[") or arg in from_keys, f"{name}: {cmd} on {arg}"


def test_requeue_score_matches_policy_for_engine_timeouts(
    store: RoutingStore, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    """A timed-out contact goes back to its old place in the queue (enqueue time and priority kept)."""
    add_agent(store, "a1", eq=1, capacity={"chat": 1})
    engine.handle(parse(started("c1")), "s1")
    engine.handle(parse({"type": "contact.human_requested", "contact_id": "c1"}), "h1")
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "offered"
    # a1 went away unannounced (else, as the only agent, it would be offered c1 again at once: all declined)
    store.client.hset(store.keys.agent("a1"), "status", "away")
    clock.advance(settings.offer_timeout_s + 1)
    assert engine.sweep() >= 1
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "queued" and rec.view.enqueued_ts is not None
    expect = queue_score(rec.view.enqueued_ts, rec.view.priority, PolicyConfig.from_settings(settings))
    assert queue_members(store, "general")["c1"] == pytest.approx(expect, abs=1e-3)
    assert set(rec.view.declined_ms) == {"a1"}


def test_scripts_keep_the_history_length_they_are_handed(store: RoutingStore) -> None:
    """The caps live in Python and reach every script as an argument: a store handed a history of 3
    keeps the last 3 decisions of a contact."""
    store.limits = json.dumps({"decisions": 1_000, "history": 3, "audit": 1_000, "deadletter": 1_000})
    for i in range(5):
        assert store.mark(Commit(f"e{i}", decisions=(("c1", json.dumps({"n": i})),))).ok
    assert [d["n"] for d in store.history("c1")] == [2, 3, 4]
