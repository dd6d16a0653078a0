"""A seen marker can go (its TTL, eviction under a volatile-* maxmemory policy, a rollback that kept the
decision) while the decision it came with stays in the contact's history: the event is recognised as applied
and decides nothing twice. On fakeredis and a real server."""

from __future__ import annotations

import json

import redis

from router.domain.model import ContactView
from router.store.codec import contact_fields
from router.store.scripts import DECIDED_LOOKBACK
from router.store.store import Commit, RoutingStore
from tests.contract.contract_helpers import decisions


def _commit(event_id: str, contact_id: str, decision_id: str) -> Commit:
    decision = {
        "decision_id": decision_id,
        "event_id": event_id,
        "contact_id": contact_id,
        "action": "self_service",
        "priority": 0.0,
        "moment_of_truth": False,
        "intensity": 0.0,
        "reasons": [],
        "ts": 1.0,
    }
    # the worker's decisions are pydantic's compact JSON, in field order: the same shape here
    return Commit(
        event_id=event_id,
        decisions=((contact_id, json.dumps(decision, separators=(",", ":"))),),
        stream_event=True,
        digest="d1",
    )


def _apply(store: RoutingStore, commit: Commit, contact_id: str) -> str:
    rec = store.load_contact(contact_id)
    version = rec.version if rec is not None else 0
    fields = contact_fields(ContactView(contact_id=contact_id, channel="chat", status="self_service"))
    return store.apply_contact(commit, contact_id, version, fields).status


def test_an_event_whose_marker_was_lost_is_not_decided_again(store: RoutingStore, admin: redis.Redis) -> None:
    assert _apply(store, _commit("e1", "c1", "first"), "c1") == "ok"
    admin.delete(store.keys.seen("e1"))

    assert _apply(store, _commit("e1", "c1", "second"), "c1") == "dup"
    assert [d.decision_id for d in decisions(store)] == ["first"]
    assert store.client.get(store.keys.seen("e1")) == b"d1"  # the marker is back


def test_the_history_search_is_bounded_and_exact(store: RoutingStore, admin: redis.Redis) -> None:
    assert _apply(store, _commit("e1", "c1", "d-e1"), "c1") == "ok"
    # another event whose id starts with the same characters is not mistaken for it
    assert _apply(store, _commit("e10", "c1", "d-e10"), "c1") == "ok"
    for n in range(DECIDED_LOOKBACK):  # e1's decision leaves the searched tail
        assert _apply(store, _commit(f"x{n}", "c1", f"d-x{n}"), "c1") == "ok"
    admin.delete(store.keys.seen("e1"), store.keys.seen(f"x{DECIDED_LOOKBACK - 1}"))

    assert _apply(store, _commit(f"x{DECIDED_LOOKBACK - 1}", "c1", "again"), "c1") == "dup"
    # beyond the bound the event applies again: the bound is stated in docs/reliability.md
    assert _apply(store, _commit("e1", "c1", "d-e1-again"), "c1") == "ok"
