"""End-to-end routing flows through Engine.handle / Worker.process with real events and a scripted scorer.

These pin the fixed ladder (``ROUTER_OUTCOME_MATCHING=false``), which outcome-aware matching keeps as its
worst case; test_outcome_matching.py pins what outcome-aware matching adds."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from router.domain.wait_band import MIN_CHECKS, BandCheck
from router.events import Decision
from router.scoring.protocol import EmotionScore
from router.settings import Settings
from router.store.store import RoutingStore, band_check
from router.worker.consumer import Worker
from router.worker.engine import Engine
from tests.contract.contract_helpers import (
    FakeClock,
    ScriptedScorer,
    add_agent,
    decisions,
    loads,
    message,
    new_id,
    parse,
    pending_ids,
    started,
    xadd,
)


@pytest.fixture
def settings(domain: str) -> Settings:
    return Settings(domain=domain, redis_url="", outcome_matching=False)


class Floor:
    """Sends events through the engine and returns the decisions each one produced."""

    def __init__(self, store: RoutingStore, engine: Engine, scorer: ScriptedScorer) -> None:
        self.store = store
        self.engine = engine
        self.scorer = scorer
        self.seen = 0

    def send(self, event: dict[str, Any], eid: str | None = None) -> list[Decision]:
        score = None
        if event["type"] == "contact.message" and event["speaker"] == "customer":
            score = self.scorer.one(event["text"])
        self.engine.handle(parse(event), eid or new_id(), score)
        return self.new()

    def new(self) -> list[Decision]:
        all_ = decisions(self.store)
        out, self.seen = all_[self.seen :], len(all_)
        for d in out:  # an explanation says each thing once
            assert len(set(d.reasons)) == len(d.reasons), [r.code for r in d.reasons]
        return out

    def start(self, cid: str, **kw: Any) -> list[Decision]:
        return self.send(started(cid, **kw))

    def say(self, cid: str, seq: int, text: str, speaker: str = "customer") -> list[Decision]:
        return self.send(message(cid, seq, text, speaker))

    def human(self, cid: str) -> list[Decision]:
        return self.send({"type": "contact.human_requested", "contact_id": cid})

    def accept(self, d: Decision) -> list[Decision]:
        return self.send({"type": "offer.accepted", "offer_id": d.offer_id})

    def decline(self, d: Decision) -> list[Decision]:
        return self.send({"type": "offer.declined", "offer_id": d.offer_id})

    def status(self, agent: str, status: str) -> list[Decision]:
        return self.send({"type": "agent.status", "agent_id": agent, "status": status})

    def end(self, cid: str) -> list[Decision]:
        return self.send({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})


@pytest.fixture
def floor(store: RoutingStore, engine: Engine, scorer: ScriptedScorer) -> Floor:
    return Floor(store, engine, scorer)


def team(store: RoutingStore, eqs: dict[str, int], cap: int = 1) -> None:
    for aid, eq in eqs.items():
        add_agent(store, aid, eq=eq, capacity={"chat": cap, "voice": 1})


def codes(d: Decision) -> list[str]:
    return [r.code for r in d.reasons]


def text(d: Decision) -> str:
    return "; ".join(r.text for r in d.reasons)


def only(ds: list[Decision], action: str | None = None) -> Decision:
    assert len(ds) == 1, [(d.action, d.agent_id, codes(d)) for d in ds]
    if action is not None:
        assert ds[0].action == action, (ds[0].action, codes(ds[0]))
    return ds[0]


ALL5 = {"a1": 1, "a2": 2, "a3": 3, "a4": 4, "a5": 5}


# ---------------------------------------------------------------------------------------------- placement


def test_routine_contact_goes_to_self_service(floor: Floor, store: RoutingStore) -> None:
    team(store, ALL5)
    d = only(floor.start("c1"), "self_service")
    assert d.contact_id == "c1" and not d.moment_of_truth and d.agent_id is None
    assert "to_self_service" in codes(d) and "routine" in codes(d)
    assert floor.say("c1", 0, "What are your opening hours?") == []  # still self-service: no new decision
    assert floor.say("c1", 1, "And can I get an invoice copy?") == []
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "self_service" and rec.view.trajectory.turns == 2
    assert all(not loads(store, a) for a in ALL5)


def test_moment_of_truth_is_offered_to_a_high_eq_agent_with_reasons(
    floor: Floor, store: RoutingStore
) -> None:
    team(store, ALL5)
    floor.start("c1")
    d = only(
        floor.say(
            "c1",
            0,
            "My card was stolen and someone is using it",
        ),
        "offer",
    )
    assert d.moment_of_truth and d.queue == "mot" and d.agent_id == "a5"
    assert d.intensity == pytest.approx(0.91)
    why = text(d)
    assert "intensity 0.91 peak on turn 1" in why
    assert "topic lost_card" in why
    assert "mot: eq>=4 en pool had 2 free of 2" in why
    assert "chose agent a5: eq 5" in why
    assert {
        "mot_peak",
        "mot_topic",
        "escalated_from_self_service",
        "to_mot_queue",
        "pool",
        "chose_longest_idle",
    } <= set(codes(d))
    # the next moment of truth takes the other eq>=4 agent; the third waits rather than go to eq<=3
    floor.start("c2")
    assert only(floor.say("c2", 0, "Our flight was cancelled, we are stranded"), "offer").agent_id == "a4"
    floor.start("c3")
    d3 = only(floor.say("c3", 0, "stolen wallet, cards and phone"))
    assert d3.action in ("queued", "callback_offer") and d3.agent_id is None
    assert "no_eligible_agent" in codes(d3) and "ewt" in codes(d3)
    assert loads(store, "a3") == {} and loads(store, "a1") == {}


def test_self_service_offers_a_person_once_on_a_turn_that_may_be_a_moment_of_truth(
    floor: Floor, store: RoutingStore
) -> None:
    """A turn the detector leaves routine but whose own moment-of-truth probability reaches
    ``human_offer_mot_prob``: self-service says so in one more decision, once; the customer still chooses."""
    team(store, ALL5)
    only(floor.start("c1"), "self_service")
    maybe = EmotionScore(intensity=0.2, mot_prob=0.64, source="test")
    floor.engine.handle(parse(message("c1", 0, "I just don't know what to do anymore")), new_id(), maybe)
    d = only(floor.new(), "self_service")
    assert codes(d) == ["routine", "human_offered", "to_self_service"] and not d.moment_of_truth
    assert "p=0.64, offer at 0.50" in text(d)
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.human_offered and rec.view.status == "self_service"
    floor.engine.handle(parse(message("c1", 1, "still stuck")), new_id(), maybe)
    assert floor.new() == []  # offered once
    assert only(floor.human("c1"), "offer").agent_id == "a1"  # taking it is the usual request


def test_a_turn_that_leans_to_a_moment_of_truth_says_what_its_neighbours_are(
    floor: Floor, store: RoutingStore
) -> None:
    """The decision that takes a moment of truth to a person quotes what the turn's nearest labelled corpus
    turns are (the transformer's ``mot_neighbours``), so a supervisor sees what it was compared with."""
    team(store, ALL5)
    only(floor.start("c1"), "self_service")
    said = "5 of its 5 nearest labelled corpus turns are moments of truth (bereavement 5); the nearest at 0.9"
    grief = EmotionScore(
        intensity=0.9, mot_prob=0.97, topic="bereavement", topic_prob=0.95, mot_neighbours=said
    )
    floor.engine.handle(parse(message("c1", 0, "My husband died on Sunday")), new_id(), grief)
    d = only(floor.new(), "offer")
    assert d.moment_of_truth and f"turn 1 p=0.97: {said}" in text(d)
    assert codes(d)[0] == "mot_turn"


@pytest.mark.parametrize(
    ("turn", "trigger"),
    [
        ("I am furious, this is the third time!", "mot_peak"),
        ("Can I talk to a person please", "human_requested_in_text"),
    ],
)
def test_self_service_contact_moves_to_a_human_with_its_transcript(
    turn: str, trigger: str, floor: Floor, store: RoutingStore
) -> None:
    team(store, ALL5)
    assert only(floor.start("c1")).action == "self_service"
    assert floor.say("c1", 0, "Where is my parcel?") == []
    assert floor.say("c1", 1, "Here is a tracking link", speaker="bot") == []
    assert floor.say("c1", 2, "It says delivered but nothing arrived") == []
    d = only(floor.say("c1", 3, turn), "offer")
    assert trigger in codes(d) and "escalated_from_self_service" in codes(d)
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "offered" and rec.view.agent_id == d.agent_id
    assert [(t["seq"], t["speaker"]) for t in rec.transcript] == [
        (0, "customer"),
        (1, "bot"),
        (2, "customer"),
        (3, "customer"),
    ]
    assert rec.transcript[0]["text"] == "Where is my parcel?" and rec.transcript[-1]["text"] == turn
    assert rec.transcript[-1]["intensity"] == pytest.approx(floor.scorer.one(turn).intensity)
    assert rec.view.trajectory.turns == 3  # customer turns only
    if trigger == "mot_peak":
        assert d.moment_of_truth and d.agent_id == "a5"
    else:
        assert not d.moment_of_truth and d.agent_id == "a1"  # routine request: the lowest eq free agent
    # a calmer turn afterwards does not undo it (no ping-pong back to self-service)
    assert floor.say("c1", 4, "ok thanks") == []
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "offered"


def test_routine_human_request_prefers_the_lowest_eq_free_agent(floor: Floor, store: RoutingStore) -> None:
    team(store, {"a2": 2, "a3": 3, "a5": 5})
    add_agent(store, "a1", eq=1, status="offline")
    chosen = []
    for cid in ("c1", "c2", "c3"):
        floor.start(cid)
        d = only(floor.human(cid), "offer")
        assert "human_requested" in codes(d) and d.queue == "general"
        chosen.append(d.agent_id)
    assert chosen == ["a2", "a3", "a5"]  # a5 only when nobody with lower eq is free
    assert "lowest eligible, keeps high-EQ agents free" in text(d)


def test_returning_customer_gets_the_last_agent(floor: Floor, store: RoutingStore) -> None:
    team(store, {"a3": 3})
    add_agent(store, "a1", eq=1, status="offline")
    floor.start("c1", customer="alice")
    first = only(floor.human("c1"), "offer")
    assert first.agent_id == "a3"
    floor.accept(first)
    floor.end("c1")
    floor.status("a1", "available")
    # a1 is free and would be the lowest-eq choice, but a3 knows alice's case
    floor.start("c2", customer="alice")
    d = only(floor.human("c2"), "offer")
    assert d.agent_id == "a3" and "affinity" in codes(d)
    floor.start("c3", customer="bob")
    assert only(floor.human("c3"), "offer").agent_id == "a1"


# ---------------------------------------------------------------------------------------------- waiting


def test_ladder_widens_the_pool_after_step1(
    floor: Floor, store: RoutingStore, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    team(store, {"a1": 1, "a3": 3})
    floor.start("c1")
    d = only(floor.say("c1", 0, "my card was stolen"))
    assert d.action == "queued" and d.moment_of_truth and "no_eligible_agent" in codes(d)
    clock.advance(settings.ladder_step1_s - 1)
    assert engine.sweep() == 0 and floor.new() == []
    clock.advance(2)
    assert engine.sweep() == 1
    d = only(floor.new(), "offer")
    assert d.agent_id == "a3" and "eq>=3" in text(d) and d.event_id == "sweep"
    assert floor.accept(d) == []
    # a second one, with a3 busy, reaches eq 1 only at step 2
    floor.start("c2")
    only(floor.say("c2", 0, "flight cancelled, I am stranded"), "queued")
    clock.advance(settings.ladder_step2_s - 1)
    engine.sweep()
    assert floor.new() == []
    clock.advance(2)
    engine.sweep()
    d = only(floor.new(), "offer")
    assert (d.contact_id, d.agent_id) == ("c2", "a1") and "eq>=1" in text(d)


def test_nobody_answers_the_contact_goes_round_the_agents_and_gets_a_callback(
    floor: Floor, store: RoutingStore, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    """Issue 14's reproduction: 10 agents, a human request, nobody answers. Every offer times out; after the
    10th, the contact is offered again (it sat in its queue for good before), and at the callback
    threshold it is offered a callback, though the floor shows every agent free."""
    agents = [f"a{i:02d}" for i in range(10)]
    team(store, dict.fromkeys(agents, 3))
    floor.start("c1")
    offers = [only(floor.human("c1"), "offer")]
    start = clock.now
    callbacks = []
    while clock.now - start < settings.callback_threshold_s:
        clock.advance(settings.offer_timeout_s)
        engine.sweep()
        out = floor.new()
        assert [d.action for d in out if d.action != "callback_offer"] == ["released", "offer"], out
        offers += [d for d in out if d.action == "offer"]
        callbacks += [(clock.now - start, d) for d in out if d.action == "callback_offer"]
    first_round = [d.agent_id for d in offers[:10]]
    assert sorted(first_round) == agents and not any("all_declined" in codes(d) for d in offers[:10])
    # the 11th offer, in the same sweep as the 10th time-out: the agent whose time-out is the oldest
    eleventh = offers[10]
    assert eleventh.agent_id == first_round[0] and "all_declined" in codes(eleventh)
    assert "oldest (135 s ago)" in text(eleventh)
    assert [d.agent_id for d in offers[10:20]] == first_round
    # the callback: at the time-out that reached the threshold, exactly once, with a wait that is not 0 s
    assert [at for at, _ in callbacks] == [settings.callback_threshold_s]
    cb = callbacks[0][1]
    assert cb.event_id == "sweep" and "callback_offered" in codes(cb) and "all_declined" in codes(cb)
    assert "waited 300 s, reaching the 300 s threshold" in text(cb)
    assert cb.estimated_wait_s is not None and cb.estimated_wait_s > 0


def test_a_contact_no_free_agent_can_take_gets_a_wait_and_a_callback_at_the_threshold(
    floor: Floor, store: RoutingStore, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    """A Spanish contact on an English-speaking floor, every agent free: it waits, and is told so."""
    team(store, {"a1": 3, "a2": 4})
    floor.start("c1", lang="es")
    queued = only(floor.human("c1"), "queued")
    assert "no_eligible_agent" in codes(queued)
    # issue 14: free agents who cannot take it were counted as serving it, and the wait said 0 s
    assert queued.estimated_wait_s is not None and queued.estimated_wait_s > 0
    clock.advance(settings.callback_threshold_s - 1)
    engine.sweep()
    assert floor.new() == []
    clock.advance(1)
    engine.sweep()
    cb = only(floor.new(), "callback_offer")
    assert cb.event_id == "sweep" and cb.contact_id == "c1" and "no_eligible_agent" in codes(cb)
    assert "waited 300 s, reaching the 300 s threshold" in text(cb)
    clock.advance(60)
    engine.sweep()
    assert floor.new() == []  # once
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "queued"  # a callback offer keeps the place in the queue


def test_a_moment_of_truth_nobody_can_take_gets_a_callback_at_its_shorter_threshold(
    floor: Floor, store: RoutingStore, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    """A moment of truth in Spanish on an English-speaking floor: its estimated wait (the cold-start
    prior, 120 s a departure) is over the moment-of-truth threshold (60 s) though under the routine one
    (300 s), so the upset customer is offered a callback at once rather than left on hold; once."""
    assert settings.mot_callback_threshold_s < settings.callback_threshold_s
    team(store, {"a1": 5, "a2": 4})
    floor.start("c1", lang="es")
    cb = only(floor.say("c1", 0, "My card was stolen and someone is using it"), "callback_offer")
    assert cb.moment_of_truth and cb.queue == "mot" and "no_eligible_agent" in codes(cb)
    assert cb.estimated_wait_s is not None
    assert settings.mot_callback_threshold_s < cb.estimated_wait_s < settings.callback_threshold_s
    assert "wait above the moment-of-truth 60 s threshold" in text(cb)
    clock.advance(settings.mot_callback_threshold_s)
    engine.sweep()
    assert floor.new() == []  # once
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "queued"  # the place in the queue is kept


def test_callback_offer_when_the_wait_is_over_the_threshold(
    floor: Floor, store: RoutingStore, settings: Settings
) -> None:
    add_agent(store, "a1", eq=2, status="away")
    actions = []
    for cid in ("c1", "c2", "c3", "c4"):
        floor.start(cid)
        d = only(floor.human(cid))
        actions.append((d.action, d.estimated_wait_s))
        assert d.estimated_wait_s is not None
        assert ("callback_offered" in codes(d)) == (d.estimated_wait_s > settings.callback_threshold_s)
    # nothing observed yet: one departure per 120 s assumed, so position 3 is over 300 s
    assert [a for a, _ in actions] == ["queued", "queued", "callback_offer", "callback_offer"]
    assert [w for _, w in actions] == sorted(w for _, w in actions)
    rec = store.load_contact("c3")
    assert rec is not None and rec.view.status == "queued"  # a callback offer keeps the place in the queue


# ---------------------------------------------------------------------------------------------- offers


def test_decline_reoffers_to_someone_else_then_round_the_decliners(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    team(store, {"a4": 4, "a5": 5})
    floor.start("c1")
    first = only(floor.say("c1", 0, "my card was stolen"), "offer")
    assert first.agent_id == "a5"
    clock.advance(5)
    released, second = floor.decline(first)
    assert released.action == "released" and released.agent_id == "a5" and "offer_declined" in codes(released)
    assert second.action == "offer" and second.agent_id == "a4" and "all_declined" not in codes(second)
    assert loads(store, "a5") == {} and loads(store, "a4") == {"chat": 1}
    # issue 14: a4 declines too. Every eligible agent has: offered again at once, to the earliest decliner
    clock.advance(7)
    released, third = floor.decline(second)
    assert (released.action, released.agent_id) == ("released", "a4")
    assert (third.action, third.agent_id) == ("offer", "a5") and "all_declined" in codes(third)
    assert "offered again to a5, whose decline is the oldest (7 s ago)" in text(third)
    rec = store.load_contact("c1")
    assert rec is not None and set(rec.view.declined_ms) == {"a4", "a5"}
    # and round again: a5's new decline makes a4's the oldest
    clock.advance(3)
    assert [(d.action, d.agent_id) for d in floor.decline(third)] == [("released", "a5"), ("offer", "a4")]


@pytest.mark.parametrize(("after_s", "all_declined"), [(10.0, True), (181.0, False)])
def test_a_decline_is_remembered_for_the_decline_memory(
    after_s: float,
    all_declined: bool,
    floor: Floor,
    store: RoutingStore,
    clock: FakeClock,
    settings: Settings,
) -> None:
    assert settings.decline_memory_s == 180.0
    team(store, {"a1": 1, "a2": 2})
    floor.start("c1")
    first = only(floor.human("c1"), "offer")
    assert first.agent_id == "a1"  # routine work: the lowest eq first
    _, second = floor.decline(first)
    assert second.agent_id == "a2"
    clock.advance(after_s)
    # a2 leaves (not a decline): a1 is the only one left. Within the memory it is offered c1 only because
    # everyone has declined; after it, it is an ordinary candidate again
    out = floor.status("a2", "away")
    d = only([d for d in out if d.action == "offer"])
    assert d.agent_id == "a1"
    assert ("all_declined" in codes(d)) is all_declined
    assert ("chose_longest_idle" in codes(d)) is not all_declined


def test_offer_timeout_reoffers_to_someone_else(
    floor: Floor, store: RoutingStore, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    team(store, {"a4": 4, "a5": 5})
    floor.start("c1")
    first = only(floor.say("c1", 0, "my card was stolen"), "offer")
    clock.advance(settings.offer_timeout_s - 0.5)
    assert engine.sweep() == 0
    clock.advance(1)
    engine.sweep()
    released, second = floor.new()
    assert (released.action, released.agent_id) == ("released", first.agent_id)
    assert "offer_timeout" in codes(released) and released.event_id == second.event_id == "sweep"
    assert (second.action, second.agent_id) == ("offer", "a4")
    # the agent's late accept of the timed-out offer changes nothing
    assert floor.accept(first) == []
    assert loads(store, "a5") == {}


@pytest.mark.parametrize("status", ["offline", "away"])
def test_agent_leaving_releases_offers_and_reroutes(status: str, floor: Floor, store: RoutingStore) -> None:
    team(store, {"a4": 4, "a5": 5}, cap=2)
    floor.start("c1")
    floor.start("c2")
    o1 = only(floor.say("c1", 0, "my card was stolen"), "offer")
    o2 = only(floor.say("c2", 0, "my flight was cancelled"), "offer")
    assert o1.agent_id == o2.agent_id == "a5"
    out = floor.status("a5", status)
    released = [d for d in out if d.action == "released"]
    offers = [d for d in out if d.action == "offer"]
    assert {d.contact_id for d in released} == {"c1", "c2"} and all(
        "agent_left" in codes(d) for d in released
    )
    assert {d.contact_id for d in offers} == {"c1", "c2"} and {d.agent_id for d in offers} == {"a4"}
    assert loads(store, "a5") == {} and loads(store, "a4") == {"chat": 2}
    rec = store.load_contact("c1")
    assert rec is not None and "a5" not in rec.view.declined_ms  # leaving is not declining
    # a5 comes back and a4 declines c1: a5 may take it again
    floor.status("a5", "available")
    o_c1 = next(d for d in offers if d.contact_id == "c1")
    out = floor.decline(o_c1)
    assert [(d.action, d.agent_id) for d in out] == [("released", "a4"), ("offer", "a5")]


def test_accepted_work_stays_when_the_agent_goes_away(floor: Floor, store: RoutingStore) -> None:
    team(store, {"a2": 2})
    floor.start("c1")
    floor.accept(only(floor.human("c1"), "offer"))
    assert floor.status("a2", "away") == []
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "assigned" and loads(store, "a2") == {"chat": 1}


@pytest.mark.parametrize("how", ["contact.ended", "work.completed"])
def test_ending_releases_the_agent_and_pulls_the_next_contact(
    how: str, floor: Floor, store: RoutingStore
) -> None:
    team(store, {"a5": 5})
    floor.start("c1")
    floor.accept(only(floor.human("c1"), "offer"))
    floor.start("c2")
    floor.start("c3")
    assert only(floor.human("c2")).action == "queued"
    floor.say("c3", 0, "I am furious about this")  # a moment of truth waits too, and is served first
    event = (
        {"type": "contact.ended", "contact_id": "c1"}
        if how == "contact.ended"
        else {"type": "work.completed", "agent_id": "a5", "contact_id": "c1"}
    )
    out = floor.send(event, "end-1")
    assert [(d.action, d.contact_id) for d in out] == [("released", "c1"), ("offer", "c3")]
    assert all(d.event_id == "end-1" for d in out)
    assert "agent_pull" in codes(out[1]) and out[1].agent_id == "a5"
    assert loads(store, "a5") == {"chat": 1}
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.status == "ended"


# ---------------------------------------------------------------------------------------------- worker


def test_worker_scores_a_batch_in_one_call_and_routes_it(
    store: RoutingStore, scorer: ScriptedScorer, make_worker: Callable[..., Worker]
) -> None:
    team(store, ALL5)
    worker = make_worker()
    events = [
        started("c1"),
        started("c2"),
        started("c3"),
        message("c1", 0, "what are your opening hours"),
        message("c2", 0, "my card was stolen!"),
        message("c2", 1, "I am sorry to hear that", speaker="agent"),
        message("c3", 0, "can I speak to a person"),
    ]
    for e in events:
        xadd(store, e)
    for _ in range(3):
        worker.run_once()
    assert pending_ids(store, worker.group) == []
    assert scorer.calls == [["what are your opening hours", "my card was stolen!", "can I speak to a person"]]
    by = {(d.contact_id, d.action): d for d in decisions(store)}
    assert set(by) == {
        ("c1", "self_service"),
        ("c2", "self_service"),
        ("c3", "self_service"),
        ("c2", "offer"),
        ("c3", "offer"),
    }
    assert by[("c2", "offer")].agent_id == "a5" and by[("c3", "offer")].agent_id == "a1"
    assert store.stats()["processed"] == len(events)


def test_spells_away_are_measured_and_a_contact_only_an_agent_away_can_take_waits_for_their_return(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    """Agents' breaks are measured as they end (the away spells list); a Spanish contact whose only
    speaker is on a break is told the rest of that break, not the prior for a contact nobody can serve."""
    team(store, {"a1": 3})
    add_agent(store, "es1", eq=3, capacity={"chat": 1}, languages=["en", "es"])
    for _ in range(5):
        floor.status("a1", "away")
        floor.status("a1", "away")  # a repeat does not restart the spell
        clock.advance(900)
        floor.status("a1", "available")
        clock.advance(60)
    assert store.service_times().away_spells_s == (900.0,) * 5
    floor.status("es1", "away")
    clock.advance(600)
    floor.start("c1", lang="es")
    queued = only(floor.human("c1"), "queued")
    assert queued.estimated_wait_s == pytest.approx(300.0, abs=1.0)  # no answer measured yet
    assert queued.estimated_wait_high_s == pytest.approx(300.0, abs=1.0)


def test_a_customer_with_a_regional_language_tag_reaches_an_agent_of_that_language(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    """The event contract allows "en-GB": its customer is offered to an agent tagged "en" (an exact match
    alone would leave them waiting for an "en-GB" agent no floor has), a "de-AT" one is not."""
    team(store, {"a1": 3})
    floor.start("c1", lang="en-GB")
    assert only(floor.human("c1"), "offer").agent_id == "a1"
    floor.start("c2", lang="de-AT")
    assert only(floor.human("c2")).action != "offer"


def test_contacts_that_waited_and_left_unserved_are_measured_per_queue(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    """Of the contacts told a wait, the share that ended before an agent accepted them (the forecast's
    contacts ahead who leave); one offered at once never waited and does not count."""
    team(store, {"a1": 3})
    floor.start("c1")
    floor.accept(only(floor.human("c1"), "offer"))  # served at once: not a waiting contact
    floor.start("c2")
    only(floor.human("c2"), "queued")
    floor.start("c3")
    assert only(floor.human("c3")).action in ("queued", "callback_offer")  # told a wait either way
    clock.advance(30)
    floor.send({"type": "contact.ended", "contact_id": "c2", "reason": "abandoned"})
    assert store.service_times().left == {"general": (pytest.approx(1.0), 1)}
    released, offer = floor.send({"type": "work.completed", "agent_id": "a1", "contact_id": "c1"})
    assert (released.action, offer.action, offer.contact_id) == ("released", "offer", "c3")
    floor.accept(offer)
    assert store.service_times().left == {"general": (pytest.approx(0.5), 2)}


def test_an_acceptance_measures_the_answer_the_wait_against_the_one_announced_and_the_handle_time(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    """The store measures what the wait forecast needs and what /metrics reports: the answer time, the
    handle time per channel, and each announced wait against the one lived (the waits log, ewt_* stats)."""
    team(store, {"a1": 3})
    floor.start("c1")
    first = only(floor.human("c1"), "offer")
    clock.advance(4)
    floor.accept(first)
    floor.start("c2")
    queued = only(floor.human("c2"), "queued")
    assert queued.estimated_wait_low_s is not None and queued.estimated_wait_high_s is not None
    assert queued.estimated_wait_low_s <= queued.estimated_wait_s <= queued.estimated_wait_high_s  # type: ignore[operator]
    clock.advance(100)
    released, offer = floor.send({"type": "work.completed", "agent_id": "a1", "contact_id": "c1"})
    assert (released.action, offer.action, offer.contact_id) == ("released", "offer", "c2")
    clock.advance(6)
    floor.accept(offer)
    times = store.service_times()
    assert times.answer_s == pytest.approx(5.0) and times.answer_sd_s > 0  # 4 s, then 6 s
    assert times.handle_s["chat"][0] == pytest.approx(100.0)
    stats = store.stats()
    assert stats["ewt_checked"] == 1 and stats["ewt_actual_ms"] == 106_000
    assert stats["ewt_abs_error_ms"] == round(abs(106.0 - queued.estimated_wait_s) * 1000)  # type: ignore[operator]
    inside = queued.estimated_wait_low_s <= 106.0 <= queued.estimated_wait_high_s
    assert stats.get("ewt_inside_band", 0) == int(inside)
    waits = [json.loads(x) for x in store.client.lrange(store.keys.waits, 0, -1)]
    assert [w["channel"] for w in waits] == ["chat", "chat"] and waits[0]["actual_s"] == pytest.approx(106.0)
    assert waits[0]["announced_s"] == queued.estimated_wait_s and "announced_s" not in waits[1]
    # the model's own band, which later bands are corrected by (none yet: it is the one announced)
    (line,) = store.client.lrange(store.keys.ewt_bands, 0, -1)
    assert band_check(line.decode() if isinstance(line, bytes) else line) == BandCheck(
        queued.estimated_wait_low_s,  # type: ignore[arg-type]
        queued.estimated_wait_high_s,  # type: ignore[arg-type]
        106.0,
    )


def test_a_band_that_waits_kept_crossing_is_announced_wider(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    """Waits lived at three times the model's high end, over more checks than the correction needs: the next
    band is announced that much higher (router/domain/wait_band.py), the mean is the model's, and what is
    kept for later checks is the model's band, not the announced one."""
    store.client.lpush(store.keys.ewt_bands, *["10.0|20.0|62.0"] * MIN_CHECKS)
    team(store, {"a1": 3})
    floor.start("c1")
    floor.accept(only(floor.human("c1"), "offer"))
    floor.start("c2")
    queued = only(floor.human("c2"), "queued")
    fields = store.client.hmget(store.keys.contact("c2"), ["ewt_model_low_s", "ewt_model_high_s", "ewt_s"])
    model_low, model_high, mean = (float(x) for x in fields)
    assert queued.estimated_wait_s == pytest.approx(mean, abs=0.05)
    assert queued.estimated_wait_high_s == pytest.approx((model_high + 1) * 3 - 1, abs=0.2)
    (why,) = [r.text for r in queued.reasons if r.code == "ewt"]
    assert f"the model's {model_low:.0f}-{model_high:.0f} s, corrected by {MIN_CHECKS} waits lived" in why
    # every wait was far above the model's low end too: it rises, as far as the mean
    assert queued.estimated_wait_low_s == pytest.approx(min(mean, (model_low + 1) * 63 / 11 - 1), abs=0.2)


def test_the_agent_record_says_how_long_each_busy_slot_has_been_busy(
    floor: Floor, store: RoutingStore, clock: FakeClock
) -> None:
    """The wait forecast reads each busy slot's age from the agent hash: set by the offer, restamped at
    the acceptance (the handle time starts then), cleared by the end of the work, which also measures the
    handle time per kind of contact."""
    team(store, {"a1": 3})

    def busy() -> dict[str, tuple[tuple[float, bool], ...]]:
        rec = store.load_agent("a1")
        assert rec is not None
        return dict(rec.view.busy)

    floor.start("c1")
    offer = only(floor.human("c1"), "offer")
    assert busy() == {"chat": ((pytest.approx(clock(), abs=0.001), False),)}
    clock.advance(4)
    floor.accept(offer)
    accepted_at = clock()
    clock.advance(50)
    assert busy() == {"chat": ((pytest.approx(accepted_at, abs=0.001), False),)}
    floor.send({"type": "work.completed", "agent_id": "a1", "contact_id": "c1"})
    assert busy() == {}
    assert store.service_times().handle_kind_s["chat:routine"][0] == pytest.approx(50.0)
