"""choose_contact(): agent pull when capacity frees."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from router.domain.model import AgentView, ContactView, Reason
from router.domain.policy import PolicyConfig, choose_contact, ineligible_reason
from tests.domain.domain_strategies import PROPERTY, agents, contacts

CFG = PolicyConfig.defaults()
NOW = 1_000.0


def agent(**kw: Any) -> AgentView:
    return replace(AgentView("a1", 5, frozenset({"en"}), {"chat": 2, "voice": 1}), **kw)


def contact(contact_id: str, waited_s: float = 5.0, **kw: Any) -> ContactView:
    return replace(ContactView(contact_id, "chat", enqueued_ts=NOW - waited_s), **kw)


def codes(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.code for r in reasons]


def test_takes_first_eligible_in_queue_order() -> None:
    cands = [(contact("c1", language="de"), "mot"), (contact("c2"), "mot"), (contact("c3"), "general")]
    picked, reasons = choose_contact(agent(), cands, NOW, CFG, 0)
    assert picked is not None and picked.contact_id == "c2"
    assert codes(reasons) == ["pulled"]
    assert "took c2 from mot" in reasons[0].text


def test_ladder_applies_to_pull() -> None:
    low = agent(eq=3)
    cands = [(contact("c1", 5.0), "mot"), (contact("c2", 25.0), "mot"), (contact("c3"), "general")]
    picked, _ = choose_contact(low, cands, NOW, CFG, 0)
    assert picked is not None and picked.contact_id == "c2"


def test_nothing_eligible() -> None:
    picked, reasons = choose_contact(agent(), [(contact("c1", channel="email"), "general")], NOW, CFG, 0)
    assert picked is None
    assert codes(reasons) == ["no_eligible_contact"]


def test_contact_held_by_affinity_comes_first() -> None:
    cands = [(contact("c1"), "mot"), (contact("c2", last_agent_id="a1"), "general")]
    picked, reasons = choose_contact(agent(), cands, NOW, CFG, 0)
    assert picked is not None and picked.contact_id == "c2"
    assert codes(reasons) == ["affinity"]


def test_expired_affinity_is_plain_queue_order() -> None:
    cands = [(contact("c1"), "mot"), (contact("c2", 40.0, last_agent_id="a1"), "general")]
    picked, _ = choose_contact(agent(), cands, NOW, CFG, 0)
    assert picked is not None and picked.contact_id == "c1"


def test_over_cap_agent_takes_routine_first() -> None:
    cands = [(contact("c1"), "mot"), (contact("c2"), "general")]
    picked, reasons = choose_contact(agent(mot_recent=8), cands, NOW, CFG, mot_total_recent=10)
    assert picked is not None and picked.contact_id == "c2"
    assert codes(reasons) == ["fairness_skip", "pulled"]


def test_over_cap_agent_still_takes_mot_when_nothing_else_waits() -> None:
    cands = [(contact("c1"), "mot")]
    picked, reasons = choose_contact(agent(mot_recent=8), cands, NOW, CFG, mot_total_recent=10)
    assert picked is not None and picked.contact_id == "c1"
    assert codes(reasons) == ["fairness_kept", "pulled"]


def test_scan_limit() -> None:
    cfg = replace(CFG, queue_scan_limit=1)
    cands = [(contact("c1", language="de"), "general"), (contact("c2"), "general")]
    assert choose_contact(agent(), cands, NOW, cfg, 0)[0] is None


candidate_lists = st.lists(st.tuples(contacts(now=NOW), st.sampled_from(("mot", "general"))), max_size=8)


@PROPERTY
@given(agents(), candidate_lists, st.integers(0, 20))
def test_returns_only_eligible_candidates(
    a: AgentView, cands: list[tuple[ContactView, str]], total: int
) -> None:
    picked, reasons = choose_contact(a, cands, NOW, CFG, total)
    assert reasons

    def eligible(c: ContactView, q: str) -> bool:
        waited_s = max(0.0, NOW - c.enqueued_ts) if c.enqueued_ts is not None else 0.0
        return ineligible_reason(a, c, q, waited_s, CFG, now=NOW) is None

    if picked is None:
        assert not any(eligible(c, q) for c, q in cands)
    else:
        assert any(c is picked and eligible(c, q) for c, q in cands)
