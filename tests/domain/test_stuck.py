"""waiting_state() and stuck_reason(): a waiting contact that free agents pass by, and when it is stuck."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from router.domain.model import AgentView, ContactView
from router.domain.policy import PolicyConfig, choose_agent
from router.domain.stuck import WaitingState, stuck_reason, waiting_state
from tests.domain.domain_strategies import PROPERTY, agent_lists, contacts

CFG = PolicyConfig.defaults()  # stuck after 60 s, decline memory 180 s
NOW = 10_000.0


def agent(agent_id: str, **kw: Any) -> AgentView:
    return replace(AgentView(agent_id, 3, frozenset({"en"}), {"voice": 1, "chat": 2}), **kw)


def contact(waited_s: float, **kw: Any) -> ContactView:
    return replace(
        ContactView("c1", "voice", status="queued", queue="general", enqueued_ts=NOW - waited_s), **kw
    )


def test_a_contact_nobody_free_speaks_for_is_stuck_after_the_threshold() -> None:
    # issue 14: a Spanish voice contact waited 406 s while every agent was free
    es = contact(406, language="es")
    floor = [agent(f"a{i}") for i in range(10)]
    why = stuck_reason(es, "general", floor, NOW, CFG)
    assert why is not None and why.code == "stuck"
    assert why.text.startswith("waited 406 s while 10 agents had a free voice slot: no eligible agent")
    assert "10 without the language" in why.text
    # passed by from the start (the queue's wait estimate counts it), stuck from stuck_after_s
    early = replace(es, enqueued_ts=NOW - 59)
    assert waiting_state(early, "general", floor, NOW, CFG) == WaitingState(passed_by=True, stuck=None)
    assert waiting_state(es, "general", floor, NOW, CFG).passed_by


def test_waiting_for_a_free_slot_is_not_stuck() -> None:
    busy = [agent("a1", load={"voice": 1}), agent("a2", status="away")]
    assert waiting_state(contact(900), "general", busy, NOW, CFG) == WaitingState(passed_by=False, stuck=None)


def test_declined_by_everyone_who_could_take_it_is_stuck_at_once() -> None:
    declined = contact(5, declined_ms={"a1": int((NOW - 30) * 1000), "a2": int((NOW - 10) * 1000)})
    state = waiting_state(declined, "general", [agent("a1"), agent("a2")], NOW, CFG)
    why = state.stuck
    assert state.passed_by and why is not None and why.code == "all_declined"
    assert "offers it again to a1" in why.text
    # one who has not declined may still take it: not stuck
    assert stuck_reason(declined, "general", [agent("a1"), agent("a2"), agent("a3")], NOW, CFG) is None


def test_an_eligible_free_agent_and_no_offer_points_at_the_workers() -> None:
    state = waiting_state(contact(120), "general", [agent("a1")], NOW, CFG)
    why = state.stuck
    assert (
        not state.passed_by and why is not None and why.code == "stuck" and "is a worker running?" in why.text
    )


@PROPERTY
@given(contacts(now=NOW), st.sampled_from(("mot", "general")), agent_lists())
def test_stuck_means_free_agents_and_a_long_wait_or_all_declined(
    c: ContactView, queue: str, agents: list[AgentView]
) -> None:
    why = stuck_reason(c, queue, agents, NOW, CFG)
    if why is None:
        return
    assert any(a.status == "available" and a.free(c.channel) > 0 for a in agents)
    if why.code == "all_declined":
        assert choose_agent(c, queue, agents, NOW, CFG, 0).all_declined
    else:
        assert why.code == "stuck" and c.enqueued_ts is not None and NOW - c.enqueued_ts >= CFG.stuck_after_s
