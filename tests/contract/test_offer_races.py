"""An agent's answer racing a revoke or a timeout is a late answer, not an error left pending."""

from __future__ import annotations

from dataclasses import replace

import pytest

from router.store.store import RoutingStore
from router.worker.engine import Engine
from tests.contract.contract_helpers import (
    ScriptedScorer,
    add_agent,
    decisions,
    ev,
    message,
    new_id,
    parse,
    started,
)


@pytest.mark.parametrize("answer", ["offer.accepted", "offer.declined"])
def test_answer_to_an_offer_revoked_under_it_is_marked_applied(
    store: RoutingStore, engine: Engine, scorer: ScriptedScorer, answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_agent(store, "a1", eq=5, capacity={"chat": 2})
    engine.handle(parse(started("c1")), new_id())
    text = "my card was stolen and I am panicking"
    engine.handle(parse(message("c1", 0, text)), new_id(), scorer.one(text))
    offer_id = next(d.offer_id for d in decisions(store) if d.action == "offer")
    assert offer_id is not None
    stale = store.load_offer(offer_id)
    assert stale is not None and stale.status == "pending"
    engine.handle(parse(ev("agent.status", agent_id="a1", status="away")), new_id())  # revokes it
    assert store.load_offer(offer_id).status == "revoked"  # type: ignore[union-attr]

    # the answer's handler read the offer just before the revoke: first read stale, then the truth
    reads = iter([stale])
    real = store.load_offer
    monkeypatch.setattr(store, "load_offer", lambda oid: next(reads, None) or real(oid))
    event_id = new_id()
    engine.handle(parse(ev(answer, offer_id=offer_id)), event_id)  # no error: applied once as a late answer
    assert store.client.exists(store.keys.seen(event_id))
    loads = store.load_agent("a1")
    assert loads is not None and loads.view.load.get("chat", 0) == 0
    assert replace(stale, status="revoked") == store.load_offer(offer_id)
