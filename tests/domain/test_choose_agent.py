"""ineligible_reason() and choose_agent(): eligibility, ladder, EQ preference, affinity, fairness, the decline
memory and the all-declined re-offer."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from router.domain.model import AgentView, ContactView
from router.domain.policy import (
    AgentChoice,
    PolicyConfig,
    choose_agent,
    ineligible_reason,
    ladder_or_capacity_reason,
    min_eq,
    remembered_decline_ms,
)
from tests.domain.domain_strategies import PROPERTY, agent_lists, contacts

CFG = PolicyConfig.defaults()
NOW = 1_000.0


def ms_ago(seconds: float) -> int:
    """The epoch ms ``seconds`` before NOW (declines are kept in ms)."""
    return int((NOW - seconds) * 1000)


def agent(agent_id: str, eq: int, **kw: Any) -> AgentView:
    base = AgentView(agent_id, eq, frozenset({"en"}), {"chat": 2}, {"chat": 0}, last_assigned_ts=NOW - 60)
    return replace(base, **kw)


def contact(waited_s: float = 5.0, **kw: Any) -> ContactView:
    return replace(ContactView("c1", "chat", enqueued_ts=NOW - waited_s), **kw)


def codes(choice: AgentChoice) -> list[str]:
    return [r.code for r in choice.reasons]


# ------------------------------------------------------------------------------------- ineligible_reason


def test_each_check_has_its_reason() -> None:
    c = contact(declined_ms={"d": ms_ago(10)})
    cases = {
        "agent_unavailable": agent("u", 5, status="away"),
        "language_mismatch": agent("l", 5, languages=frozenset({"de"})),
        "declined_before": agent("d", 5),
        "eq_below_ladder": agent("e", 3),
        "no_capacity": agent("n", 5, load={"chat": 2}),
    }
    for code, a in cases.items():
        why = ineligible_reason(a, c, "mot", 5.0, CFG, now=NOW)
        assert why is not None and why.code == code, code
        assert a.agent_id in why.text
    assert ineligible_reason(agent("ok", 4), c, "mot", 5.0, CFG, now=NOW) is None


def test_a_regional_language_tag_is_served_by_its_language() -> None:
    """The event contract allows "en-GB" and "pt-BR": an agent tagged "en" serves an "en-GB" customer (who
    would otherwise wait for an agent tagged "en-GB" that no floor has), and one tagged "pt-BR" a "pt-PT"
    one; another language is still a mismatch."""
    en, br = agent("en", 5), agent("br", 5, languages=frozenset({"pt-BR"}))
    for a, language in ((en, "en-GB"), (en, "EN-us"), (br, "pt"), (br, "pt-PT"), (br, "pt-BR")):
        assert a.speaks(language), (a.agent_id, language)
        assert ineligible_reason(a, contact(language=language), "mot", 5.0, CFG, now=NOW) is None
    why = ineligible_reason(br, contact(language="es-MX"), "mot", 5.0, CFG, now=NOW)
    assert why is not None and why.code == "language_mismatch"
    assert choose_agent(contact(language="en-GB"), "mot", [br, en], NOW, CFG, 0).agent_id == "en"


def test_an_agent_who_does_not_take_the_channel_is_told_apart_from_the_ladder() -> None:
    """A voice contact and a chat-only agent of eq 1: not "below the eq ladder" (a wider ladder would not
    help) nor "at capacity" (no slot will ever free), but not taking the channel."""
    for eq in (1, 5):
        why = ineligible_reason(agent("a", eq), contact(channel="voice"), "mot", 0.0, CFG, now=NOW)
        assert why is not None and why.code == "channel_not_served"
        assert "does not take voice" in why.text
    choice = choose_agent(
        contact(channel="voice"), "mot", [agent("a", 1), agent("b", 5, load={"chat": 2})], NOW, CFG, 0
    )
    assert choice.agent_id is None
    assert "2 not taking this channel" in choice.reasons[-1].text


def test_a_decline_is_remembered_for_the_memory_only() -> None:
    memory_s = CFG.decline_memory_s
    assert (
        remembered_decline_ms("a", contact(declined_ms={"a": ms_ago(memory_s - 0.001)}), NOW, CFG)
        == int(memory_s * 1000) - 1
    )
    assert remembered_decline_ms("a", contact(declined_ms={"a": ms_ago(memory_s)}), NOW, CFG) is None
    assert remembered_decline_ms("b", contact(declined_ms={"a": ms_ago(1)}), NOW, CFG) is None
    why = ineligible_reason(
        agent("a", 5), contact(declined_ms={"a": ms_ago(42)}), "general", 0.0, CFG, now=NOW
    )
    assert why is not None and why.code == "declined_before"
    assert "42 s ago (remembered for 180 s)" in why.text
    forgotten = contact(declined_ms={"a": ms_ago(memory_s + 1)})
    assert ineligible_reason(agent("a", 5), forgotten, "general", 0.0, CFG, now=NOW) is None
    assert choose_agent(forgotten, "general", [agent("a", 5)], NOW, CFG, 0).agent_id == "a"


# ------------------------------------------------------------------------------------- choose_agent


def test_mot_prefers_highest_eq_then_longest_idle() -> None:
    agents = [
        agent("a1", 4, last_assigned_ts=NOW - 500),
        agent("a7", 5, last_assigned_ts=NOW - 143),
        agent("a8", 5, last_assigned_ts=NOW - 20),
        agent("a2", 5, load={"chat": 2}),
        agent("a3", 2),
    ]
    choice = choose_agent(contact(), "mot", agents, NOW, CFG, mot_total_recent=0)
    assert choice.agent_id == "a7"
    assert (choice.pool_size, choice.free_count) == (4, 3)
    assert codes(choice) == ["pool", "chose_longest_idle"]
    assert "eq>=4 en pool had 3 free of 4" in choice.reasons[0].text
    assert choice.reasons[1].text.startswith("chose agent a7: eq 5")
    assert "longest idle 143 s" in choice.reasons[1].text


def test_routine_prefers_lowest_eq() -> None:
    agents = [agent("a1", 5, last_assigned_ts=0.0), agent("a2", 2), agent("a3", 3)]
    choice = choose_agent(contact(), "general", agents, NOW, CFG, mot_total_recent=0)
    assert choice.agent_id == "a2"
    assert "keeps high-EQ agents free" in choice.reasons[-1].text


def test_ladder_widens_with_wait() -> None:
    agents = [agent("a3", 3), agent("a1", 1)]
    assert choose_agent(contact(5), "mot", agents, NOW, CFG, 0).agent_id is None
    assert choose_agent(contact(25), "mot", agents, NOW, CFG, 0).agent_id == "a3"
    assert choose_agent(contact(65), "mot", [agent("a1", 1)], NOW, CFG, 0).agent_id == "a1"


def test_tie_break_by_agent_id() -> None:
    agents = [agent("b", 5), agent("a", 5), agent("c", 5)]
    assert choose_agent(contact(), "mot", agents, NOW, CFG, 0).agent_id == "a"


def test_no_eligible_agent_says_why() -> None:
    agents = [agent("a1", 5, load={"chat": 2}), agent("a2", 5, status="offline"), agent("a3", 2)]
    choice = choose_agent(contact(), "mot", agents, NOW, CFG, 0)
    assert choice.agent_id is None and not choice.wait_for_affinity
    assert codes(choice) == ["pool", "no_eligible_agent"]
    text = choice.reasons[-1].text
    assert "1 at capacity" in text and "1 not available" in text and "1 below the eq ladder" in text


def test_no_agents_at_all() -> None:
    choice = choose_agent(contact(), "general", [], NOW, CFG, 0)
    assert (choice.agent_id, choice.pool_size, choice.free_count) == (None, 0, 0)
    assert "no agents logged in" in choice.reasons[-1].text


def test_affinity_chooses_last_agent_over_better_eq() -> None:
    agents = [agent("a1", 5), agent("a9", 4, mot_recent=9)]
    choice = choose_agent(contact(last_agent_id="a9"), "mot", agents, NOW, CFG, mot_total_recent=10)
    assert choice.agent_id == "a9"
    assert codes(choice) == ["pool", "affinity"]


def test_affinity_waits_for_busy_last_agent_then_falls_back() -> None:
    agents = [agent("a1", 5), agent("a9", 5, load={"chat": 2})]
    waiting = choose_agent(contact(10, last_agent_id="a9"), "mot", agents, NOW, CFG, 0)
    assert (waiting.agent_id, waiting.wait_for_affinity) == (None, True)
    assert codes(waiting) == ["pool", "waiting_for_affinity"]
    timed_out = choose_agent(contact(31, last_agent_id="a9"), "mot", agents, NOW, CFG, 0)
    assert (timed_out.agent_id, timed_out.wait_for_affinity) == ("a1", False)
    assert codes(timed_out) == ["pool", "affinity_fallback", "chose_longest_idle"]


def test_affinity_does_not_wait_for_a_last_agent_without_the_channel() -> None:
    # served on voice before, now on chat: the voice agent never frees a chat slot, so no 30-s wait
    agents = [agent("a1", 5), agent("a9", 5, capacity={"voice": 1}, load={"voice": 1})]
    choice = choose_agent(contact(1, last_agent_id="a9"), "mot", agents, NOW, CFG, 0)
    assert (choice.agent_id, choice.wait_for_affinity) == ("a1", False)
    assert codes(choice) == ["pool", "affinity_fallback", "chose_longest_idle"]
    assert "does not take chat" in choice.reasons[1].text
    idle_elsewhere = [agent("a9", 5, capacity={"voice": 1})]
    alone = choose_agent(contact(1, last_agent_id="a9"), "mot", idle_elsewhere, NOW, CFG, 0)
    assert (alone.agent_id, alone.wait_for_affinity) == (None, False)


def test_affinity_does_not_wait_for_an_away_agent() -> None:
    agents = [agent("a1", 5), agent("a9", 5, status="away")]
    choice = choose_agent(contact(1, last_agent_id="a9"), "mot", agents, NOW, CFG, 0)
    assert choice.agent_id == "a1"
    assert "affinity_fallback" in codes(choice)


def test_fairness_skips_overloaded_agent() -> None:
    agents = [agent("a1", 5, mot_recent=6), agent("a2", 4, mot_recent=1)]
    choice = choose_agent(contact(), "mot", agents, NOW, CFG, mot_total_recent=10)
    assert choice.agent_id == "a2"
    assert codes(choice) == ["pool", "fairness_skip", "chose_longest_idle"]
    assert "6 of 10" in choice.reasons[1].text


def test_fairness_needs_a_sample() -> None:
    agents = [agent("a1", 5, mot_recent=3), agent("a2", 4)]
    assert choose_agent(contact(), "mot", agents, NOW, CFG, mot_total_recent=3).agent_id == "a1"


def test_fairness_never_starves_the_customer() -> None:
    agents = [agent("a1", 5, mot_recent=8)]
    choice = choose_agent(contact(), "mot", agents, NOW, CFG, mot_total_recent=10)
    assert choice.agent_id == "a1"
    assert "fairness_kept" in codes(choice)


def test_fairness_does_not_apply_to_routine() -> None:
    agents = [agent("a1", 2, mot_recent=9), agent("a2", 5)]
    assert choose_agent(contact(), "general", agents, NOW, CFG, mot_total_recent=10).agent_id == "a1"


# ------------------------------------------------------------------------------------- all declined


def test_all_declined_offers_again_to_the_earliest_decliner() -> None:
    # issue 14: every eligible agent declined or missed it; the contact must not sit in the queue for good
    agents = [agent("a1", 5), agent("a2", 4), agent("a3", 5)]
    c = contact(declined_ms={"a1": ms_ago(20), "a2": ms_ago(95), "a3": ms_ago(50)})
    choice = choose_agent(c, "general", agents, NOW, CFG, 0)
    assert (choice.agent_id, choice.all_declined, choice.free_count) == ("a2", True, 0)
    assert codes(choice) == ["pool", "all_declined"]
    text = choice.reasons[-1].text
    assert "all 3 agents who could take it declined or missed it" in text
    assert "offered again to a2, whose decline is the oldest (95 s ago)" in text


def test_all_declined_ties_go_by_agent_id() -> None:
    c = contact(declined_ms={"b": ms_ago(30), "a": ms_ago(30)})
    assert choose_agent(c, "general", [agent("b", 3), agent("a", 3)], NOW, CFG, 0).agent_id == "a"


def test_someone_who_has_not_declined_comes_first() -> None:
    c = contact(declined_ms={"a1": ms_ago(100)})
    choice = choose_agent(c, "general", [agent("a1", 2), agent("a2", 5)], NOW, CFG, 0)
    assert (choice.agent_id, choice.all_declined) == ("a2", False)


def test_all_declined_only_among_agents_who_could_take_it_now() -> None:
    c = contact(declined_ms={"busy": ms_ago(100), "away": ms_ago(150), "de": ms_ago(170), "low": ms_ago(160)})
    agents = [
        agent("busy", 5, load={"chat": 2}),
        agent("away", 5, status="away"),
        agent("de", 5, languages=frozenset({"de"})),
        agent("low", 3),  # below the moment-of-truth ladder after 5 s
    ]
    choice = choose_agent(c, "mot", agents, NOW, CFG, 0)
    assert choice.agent_id is None and not choice.all_declined
    assert codes(choice) == ["pool", "no_eligible_agent"]
    ok = choose_agent(c, "mot", [*agents, agent("ok", 4)], NOW, CFG, 0)
    assert (ok.agent_id, ok.all_declined) == ("ok", False)


def test_a_busy_agent_who_has_not_declined_does_not_hold_the_reoffer_back() -> None:
    # the customer comes first: a free decliner now, rather than a wait of unknown length for a busy agent
    c = contact(declined_ms={"a1": ms_ago(10)})
    choice = choose_agent(c, "general", [agent("a1", 3), agent("a2", 3, load={"chat": 2})], NOW, CFG, 0)
    assert (choice.agent_id, choice.all_declined) == ("a1", True)


# ------------------------------------------------------------------------------------- properties


queues = st.sampled_from(("mot", "general"))
totals = st.integers(0, 20)


@PROPERTY
@given(contacts(now=NOW), queues, agent_lists(), totals)
def test_chosen_agent_is_always_eligible(
    c: ContactView, queue: str, agents: list[AgentView], total: int
) -> None:
    choice = choose_agent(c, queue, agents, NOW, CFG, total)
    waited_s = max(0.0, NOW - c.enqueued_ts) if c.enqueued_ts is not None else 0.0
    eligible = [a for a in agents if ineligible_reason(a, c, queue, waited_s, CFG, now=NOW) is None]
    assert choice.free_count == len(eligible) <= choice.pool_size
    declined = [a for a in agents if _declined_only(a, c, queue, waited_s)]
    if choice.agent_id is None:
        # Nobody is skipped for nothing: nobody could take it, or we wait (boundedly) for the last agent.
        assert (not eligible and not declined) or choice.wait_for_affinity
        return
    chosen = next(a for a in agents if a.agent_id == choice.agent_id)
    assert chosen.status == "available"
    assert c.language in chosen.languages
    assert chosen.free(c.channel) > 0
    assert chosen.eq >= min_eq(queue, waited_s, CFG)
    assert not choice.wait_for_affinity
    if remembered_decline_ms(chosen.agent_id, c, NOW, CFG) is None:
        assert not choice.all_declined
        return
    # a decliner only when everyone who could take it declined, and then the earliest decliner
    assert choice.all_declined and not eligible
    assert "all_declined" in codes(choice)
    earliest = min(declined, key=lambda a: (c.declined_ms[a.agent_id], a.agent_id))
    assert chosen.agent_id == earliest.agent_id


def _declined_only(a: AgentView, c: ContactView, queue: str, waited_s: float) -> bool:
    """The agent could take the contact now but for its remembered decline."""
    why = ineligible_reason(a, c, queue, waited_s, CFG, now=NOW)
    return (
        why is not None
        and why.code == "declined_before"
        and ladder_or_capacity_reason(a, c, queue, waited_s, CFG) is None
    )


@PROPERTY
@given(contacts(now=NOW), agent_lists(), totals)
def test_mot_never_below_min_eq_early(c: ContactView, agents: list[AgentView], total: int) -> None:
    early = replace(c, enqueued_ts=NOW - 5.0)
    choice = choose_agent(early, "mot", agents, NOW, CFG, total)
    if choice.agent_id is not None:
        assert next(a for a in agents if a.agent_id == choice.agent_id).eq >= CFG.mot_min_eq


@PROPERTY
@given(contacts(now=NOW), queues, agent_lists())
def test_eq_preference_without_affinity_or_fairness(
    c: ContactView, queue: str, agents: list[AgentView]
) -> None:
    c = replace(c, last_agent_id=None)
    choice = choose_agent(c, queue, agents, NOW, CFG, mot_total_recent=0)
    waited_s = max(0.0, NOW - c.enqueued_ts) if c.enqueued_ts is not None else 0.0
    eligible = [a for a in agents if ineligible_reason(a, c, queue, waited_s, CFG, now=NOW) is None]
    if not eligible:
        assert choice.agent_id is None or choice.all_declined
        return
    chosen = next(a for a in eligible if a.agent_id == choice.agent_id)
    best_eq = max(a.eq for a in eligible) if queue == "mot" else min(a.eq for a in eligible)
    assert chosen.eq == best_eq
    assert chosen.last_assigned_ts == min(a.last_assigned_ts for a in eligible if a.eq == best_eq)


@PROPERTY
@given(contacts(now=NOW), agent_lists(), st.integers(4, 20))
def test_fairness_cap_respected_when_possible(c: ContactView, agents: list[AgentView], total: int) -> None:
    c = replace(c, last_agent_id=None)
    choice = choose_agent(c, "mot", agents, NOW, CFG, total)
    waited_s = max(0.0, NOW - c.enqueued_ts) if c.enqueued_ts is not None else 0.0
    eligible = [a for a in agents if ineligible_reason(a, c, "mot", waited_s, CFG, now=NOW) is None]
    under = [a for a in eligible if a.mot_recent / total <= CFG.fairness_max_share]
    if under:
        assert choice.agent_id in {a.agent_id for a in under}


@PROPERTY
@given(contacts(now=NOW), queues, agent_lists(), totals, st.randoms(use_true_random=False))
def test_order_of_agents_does_not_matter(
    c: ContactView, queue: str, agents: list[AgentView], total: int, rnd: random.Random
) -> None:
    shuffled = list(agents)
    rnd.shuffle(shuffled)
    assert choose_agent(c, queue, agents, NOW, CFG, total) == choose_agent(
        c, queue, shuffled, NOW, CFG, total
    )
