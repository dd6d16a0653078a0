"""The real model inside the real engine: a conversation that turns angry on turn 4 becomes a moment of
truth on turn 4, not before; a calm turn that is only a moment of truth after the turns before it is read in
their light."""

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


# the stakes are in the last turn only together with the ones before it: alone it reads as a calm goodbye
VEILED = [
    "Hi, can I move my direct debit to the 15th?",
    "OK, and can I pause the insurance for a month?",
    "It doesn't matter anyway. I just want everything in order before I go, so my son has no trouble later.",
]


def replay(scorer, contacts: dict[str, list[str]]) -> tuple[RoutingStore, dict[str, int | None]]:  # type: ignore[no-untyped-def]
    """Each contact's turns through a real worker, one event at a time; the turn each became a moment of
    truth on (None: never)."""
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

    flagged: dict[str, int | None] = {}
    for cid, turns in contacts.items():
        send({"type": "contact.started", "contact_id": cid, "channel": "chat", "customer": {"id": cid}})
        flagged[cid] = None
        for turn, text in enumerate(turns, start=1):
            send(
                {
                    "type": "contact.message",
                    "contact_id": cid,
                    "seq": turn,
                    "speaker": "customer",
                    "text": text,
                }
            )
            rec = store.load_contact(cid)
            assert rec is not None
            if rec.view.moment_of_truth and flagged[cid] is None:
                flagged[cid] = turn
    return store, flagged


def test_turns_angry_on_turn_four(scorer) -> None:  # type: ignore[no-untyped-def]
    store, flagged = replay(scorer, {"c1": TURNS})
    assert flagged["c1"] == 4, f"became a moment of truth on turn {flagged['c1']}"
    history = store.history("c1")
    assert history[0]["action"] == "self_service"
    assert history[-1]["action"] == "offer" and history[-1]["agent_id"] == "a1"
    reasons = history[-1]["reasons"]
    assert any(
        r["code"] in ("mot_model", "mot_peak", "mot_rising") and "turn 4" in r["text"] for r in reasons
    ), reasons


def test_a_calm_turn_is_read_after_the_turns_before_it(scorer) -> None:  # type: ignore[no-untyped-def]
    scorer.clear_caches()
    store, flagged = replay(scorer, {"veiled": VEILED, "alone": VEILED[-1:]})
    assert flagged == {"veiled": 3, "alone": None}
    rec, alone = store.load_contact("veiled"), store.load_contact("alone")
    assert rec is not None and alone is not None
    in_context, by_itself = rec.transcript[-1]["mot_prob"], alone.transcript[-1]["mot_prob"]
    assert in_context > by_itself + 0.1, (in_context, by_itself)
    reasons = store.history("veiled")[-1]["reasons"]
    assert any(r["code"] == "mot_model" and "turn 3" in r["text"] for r in reasons), reasons
