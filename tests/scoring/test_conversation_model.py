"""The real model inside the real engine: a conversation that turns angry on turn 4 becomes a moment of
truth on turn 4, not before."""

from __future__ import annotations

import json

import fakeredis
import pytest

from router.settings import Settings
from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore
from router.worker.consumer import Worker

pytestmark = pytest.mark.model

TURNS = [
    "Hi, I would like to check on an order I placed last week.",
    "Can you tell me when it will be delivered?",
    "The tracking number is 48213, it says it left the depot.",
    "This is the third time I'm chasing this, I'm furious, I work from home and I've lost two days of pay!",
]


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    from router.scoring.transformer import TransformerScorer

    return TransformerScorer(cache_size=64)


def test_turns_angry_on_turn_four(scorer) -> None:  # type: ignore[no-untyped-def]
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    settings = Settings(domain="conv")
    store = RoutingStore(client, settings.domain)
    fields = agent_profile_fields(name="A", eq=5, languages=["en"], capacity={"chat": 2}, tags=[])
    store.upsert_agent("a1", {**fields, "status": "available"})
    worker = Worker(store, scorer, settings, consumer="w", supports_blocking=False)
    worker.ensure_group()

    def send(event: dict[str, object]) -> None:
        client.xadd(store.keys.events, {"event": json.dumps(event)})
        while worker.run_once():
            pass

    send({"type": "contact.started", "contact_id": "c1", "channel": "chat", "customer": {"id": "u1"}})
    flagged_on = None
    for turn, text in enumerate(TURNS, start=1):
        send(
            {"type": "contact.message", "contact_id": "c1", "seq": turn, "speaker": "customer", "text": text}
        )
        rec = store.load_contact("c1")
        assert rec is not None
        if rec.view.moment_of_truth and flagged_on is None:
            flagged_on = turn
    assert flagged_on == 4, f"became a moment of truth on turn {flagged_on}"
    history = store.history("c1")
    assert history[0]["action"] == "self_service"
    assert history[-1]["action"] == "offer" and history[-1]["agent_id"] == "a1"
    reasons = history[-1]["reasons"]
    assert any(
        r["code"] in ("mot_model", "mot_peak", "mot_rising") and "turn 4" in r["text"] for r in reasons
    ), reasons
