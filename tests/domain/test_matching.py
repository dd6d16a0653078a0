"""Outcome-aware matching (router.domain.outcomes, router.domain.matching): the posterior, the choice, and
the guarantees the ladder keeps whatever the learned numbers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from router.domain.matching import choose_by_outcome, high_eq_reserve, reserved_channels
from router.domain.model import AgentView, ContactView, OutcomeTally
from router.domain.outcomes import OutcomeConfig, contact_class, expect, expect_from, prior
from router.domain.policy import PolicyConfig, choose_agent, choose_contact, ineligible_reason, queued_for_s
from router.domain.wait_forecast import Service, pool_wait
from tests.domain.domain_strategies import PROPERTY, agent_lists, contacts

OCFG = OutcomeConfig()
CFG = PolicyConfig.defaults(outcome=OCFG)
NOW = 1_000.0


def agent(agent_id: str, eq: int, **kw: Any) -> AgentView:
    base = AgentView(agent_id, eq, frozenset({"en"}), {"chat": 2}, {"chat": 0}, last_assigned_ts=NOW - 60)
    return replace(base, **kw)


def mot(waited_s: float = 5.0, **kw: Any) -> ContactView:
    c = ContactView("c1", "chat", queue="mot", moment_of_truth=True, enqueued_ts=NOW - waited_s)
    return replace(c, **kw)


def routine(waited_s: float = 5.0, **kw: Any) -> ContactView:
    return replace(ContactView("c1", "chat", queue="general", enqueued_ts=NOW - waited_s), **kw)


def record(n: int, mean: float, resolved_share: float = 0.8) -> OutcomeTally:
    return OutcomeTally(n, mean * n, round(resolved_share * n))


def codes(reasons: tuple[Any, ...]) -> list[str]:
    return [r.code for r in reasons]


# ------------------------------------------------------------------------------------------ the posterior


def test_no_outcomes_is_the_eq_prior() -> None:
    cls = contact_class(mot())
    for eq in range(1, 6):
        e = expect(agent("a", eq), cls, OCFG)
        assert (e.csat, e.resolved, e.n) == (*prior(eq, "mot", OCFG), 0)
    assert prior(5, "mot", OCFG)[0] > prior(1, "mot", OCFG)[0]
    assert prior(5, "routine", OCFG) == prior(1, "routine", OCFG)


def test_shrinkage_moves_from_the_tag_to_the_record_with_n() -> None:
    cls = contact_class(mot())
    csat0 = prior(3, "mot", OCFG)[0]
    half = expect_from(3, {"mot": record(int(OCFG.n0), 5.0)}, cls, OCFG)
    assert abs(half.csat - (csat0 + 5.0) / 2) < 1e-9  # n0 outcomes: halfway
    many = expect_from(3, {"mot": record(2_000, 5.0)}, cls, OCFG)
    assert 4.95 < many.csat <= 5.0


tallies = st.builds(
    lambda n, mean, res: OutcomeTally(n, mean * n, round(res * n)),
    st.integers(1, 60),
    st.floats(1.0, 5.0),
    st.floats(0.0, 1.0),
)


@PROPERTY
@given(eq=st.integers(1, 5), kind=tallies, fine=tallies, extra=st.integers(1, 5))
def test_a_better_outcome_never_lowers_the_estimate(
    eq: int, kind: OutcomeTally, fine: OutcomeTally, extra: int
) -> None:
    cls = contact_class(mot(language="de"))
    base = {"mot": kind, "mot|language=de": fine}
    e = expect_from(eq, base, cls, OCFG)
    assert 1.0 <= e.csat <= 5.0 and 0.0 <= e.resolved <= 1.0
    more = {"mot": replace(kind, n=kind.n + 1, csat_sum=kind.csat_sum + 5), "mot|language=de": fine}
    assert expect_from(eq, more, cls, OCFG).csat >= e.csat - 1e-9


def test_a_finer_class_counts_once_it_has_enough_outcomes() -> None:
    cls = contact_class(mot(language="de"))
    few = expect_from(4, {"mot": record(20, 4.0), "mot|language=de": record(2, 1.0)}, cls, OCFG)
    enough = expect_from(4, {"mot": record(20, 4.0), "mot|language=de": record(20, 1.0)}, cls, OCFG)
    assert few.finer == () and enough.finer == ("language=de",)
    assert enough.csat < few.csat


# ------------------------------------------------------------------------------------------ the choice


def test_the_record_beats_the_tag_and_the_reason_says_so() -> None:
    good = agent("a03", 3, outcomes={"mot": record(41, 4.9)})
    poor = agent("a05", 5, outcomes={"mot": record(41, 2.0)})
    choice = choose_by_outcome(mot(), "mot", [good, poor], NOW, CFG, 0)
    assert choice.agent_id == "a03"
    text = choice.reasons[-1].text
    assert "a03: expected CSAT" in text and "on moments of truth (n=41)" in text


def test_a_capable_agent_now_beats_a_long_wait_for_a_higher_tag() -> None:
    """The ladder would hold the moment of truth for eq>=4 for 20 s; the eq 3 agent now is worth more than
    waiting for the busy eq 5 one, expected to free a slot in expected_handle_s."""
    free3 = agent("a3", 3)
    busy5 = agent("a5", 5, load={"chat": 2})
    assert choose_agent(mot(), "mot", [free3, busy5], NOW, CFG, 0).agent_id is None
    choice = choose_by_outcome(mot(), "mot", [free3, busy5], NOW, CFG, 0)
    assert choice.agent_id == "a3"
    assert "the next better agent (a5, eq 5) is ~" in choice.reasons[-1].text


def test_waits_for_a_much_better_agent_who_is_close() -> None:
    free1 = agent("a1", 1, outcomes={"mot": record(40, 1.5, 0.2)})
    busy5 = agent("a5", 5, load={"chat": 2}, outcomes={"mot": record(40, 5.0, 1.0)})
    quick = replace(CFG, outcome=replace(OCFG, expected_handle_s=60.0))
    choice = choose_by_outcome(mot(), "mot", [free1, busy5], NOW, quick, 0)
    assert choice.agent_id is None and codes(choice.reasons)[-1] == "waiting_for_better"
    assert "~30 s away" in choice.reasons[-1].text
    assert choice.waiting_for == frozenset({"a5"})  # what the wait forecast counts until the ladder offers
    # ... but never past the ladder's last step, where the ladder offers anyone
    late = choose_by_outcome(mot(waited_s=61.0), "mot", [free1, busy5], NOW, quick, 0)
    assert late.agent_id == "a1"


def test_the_wait_for_a_better_agent_is_that_pool_forecast_from_measured_handle_times() -> None:
    """With the measured handle times, the better pool's wait is the wait forecast of its busy slots:
    slots near the end of their work are worth waiting for, slots just taken are not."""
    free1 = agent("a1", 3, outcomes={"mot": record(40, 4.0, 0.7)})
    service = Service(handle_s=300.0, handle_cv=0.4)
    busy = {"chat": ((NOW - 290.0, True), (NOW - 280.0, True))}
    ending = agent("a5", 5, load={"chat": 2}, busy=busy, outcomes={"mot": record(40, 5.0, 1.0)})
    fresh = replace(ending, busy={"chat": ((NOW - 5.0, True), (NOW - 2.0, True))})
    soon = choose_by_outcome(mot(), "mot", [free1, ending], NOW, CFG, 0, service=service)
    assert soon.agent_id is None and codes(soon.reasons)[-1] == "waiting_for_better"
    expected_s = pool_wait([ending], "chat", NOW, 0, service).mean_s
    assert f"~{expected_s:.0f} s away" in soon.reasons[-1].text
    later = choose_by_outcome(mot(), "mot", [free1, fresh], NOW, CFG, 0, service=service)
    assert later.agent_id == "a1"
    assert pool_wait([fresh], "chat", NOW, 0, service).mean_s > 2 * expected_s
    # contacts ahead wanting the same agents push the wait out
    assert pool_wait([ending], "chat", NOW, 3, service).mean_s > expected_s


def test_the_reserve_keeps_the_last_high_eq_slot_from_routine_work() -> None:
    high = agent("h", 5, capacity={"chat": 1}, load={"chat": 0})
    busy_high = agent("b", 4, capacity={"chat": 1}, load={"chat": 1})
    floor = [high, busy_high]
    # 30 moments of truth in the hour, one busy high-EQ slot freeing in ~420 s: ~3.5 expected
    res = high_eq_reserve(floor, "chat", 30, CFG)
    assert res.holds and res.keep >= 1
    held = choose_by_outcome(routine(), "general", floor, NOW, CFG, 30)
    assert held.agent_id is None and codes(held.reasons)[-1] == "mot_reserve"
    assert choose_agent(routine(), "general", floor, NOW, CFG, 30).agent_id == "h"  # the ladder would
    # the hold ends; a moment of truth is never held; without recent moments of truth there is no reserve
    assert choose_by_outcome(routine(waited_s=31.0), "general", floor, NOW, CFG, 30).agent_id == "h"
    assert choose_by_outcome(mot(), "mot", floor, NOW, CFG, 30).agent_id == "h"
    assert choose_by_outcome(routine(), "general", floor, NOW, CFG, 0).agent_id == "h"
    # an agent pull respects it too
    assert reserved_channels(floor, 30, CFG) == frozenset({"chat"})
    pulled, _ = choose_contact(high, [(routine(), "general")], NOW, CFG, 30, frozenset({"chat"}))
    assert pulled is None


def test_without_outcome_config_it_is_the_ladder() -> None:
    floor = [agent("a3", 3), agent("a5", 5, load={"chat": 2})]
    ladder = PolicyConfig.defaults()
    assert choose_by_outcome(mot(), "mot", floor, NOW, ladder, 0) == choose_agent(
        mot(), "mot", floor, NOW, ladder, 0
    )


# ------------------------------------------------------------------------------------------ guarantees


outcome_maps = st.dictionaries(st.sampled_from(("mot", "routine", "mot|channel=chat")), tallies, max_size=3)


@st.composite
def floors(draw: st.DrawFn) -> list[AgentView]:
    return [replace(a, outcomes=draw(outcome_maps)) for a in draw(agent_lists())]


@PROPERTY
@given(
    c=contacts(now=NOW), queue=st.sampled_from(("mot", "general")), floor=floors(), total=st.integers(0, 40)
)
def test_never_offers_to_an_agent_who_could_not_take_it(
    c: ContactView, queue: str, floor: list[AgentView], total: int
) -> None:
    c = replace(c, status="queued", last_agent_id=None)
    choice = choose_by_outcome(c, queue, floor, NOW, CFG, total)
    if choice.agent_id is None or choice.all_declined:
        return
    chosen = next(a for a in floor if a.agent_id == choice.agent_id)
    widest_s = max(queued_for_s(c, NOW), CFG.ladder_step2_s)
    assert ineligible_reason(chosen, c, queue, widest_s, CFG, now=NOW) is None


@PROPERTY
@given(c=contacts(now=NOW), floor=floors())
def test_a_moment_of_truth_is_offered_whenever_the_ladder_offers_it_and_never_worse(
    c: ContactView, floor: list[AgentView]
) -> None:
    c = replace(c, status="queued", last_agent_id=None, moment_of_truth=True)
    total = 0  # below the fairness sample: the cap, which both apply, does not bind
    ladder = choose_agent(c, "mot", floor, NOW, CFG, total)
    ours = choose_by_outcome(c, "mot", floor, NOW, CFG, total)
    if ladder.agent_id is None:
        return
    assert ours.agent_id is not None
    by_id = {a.agent_id: a for a in floor}
    cls = contact_class(c, "mot")
    u_ladder = expect(by_id[ladder.agent_id], cls, OCFG).utility
    assert expect(by_id[ours.agent_id], cls, OCFG).utility >= u_ladder - OCFG.tie_margin - 1e-9


@PROPERTY
@given(
    c=contacts(now=NOW), queue=st.sampled_from(("mot", "general")), floor=floors(), total=st.integers(0, 40)
)
def test_nothing_waits_past_the_last_step_while_someone_could_take_it(
    c: ContactView, queue: str, floor: list[AgentView], total: int
) -> None:
    c = replace(c, status="queued", last_agent_id=None, enqueued_ts=NOW - 61.0)
    takers = [a for a in floor if ineligible_reason(a, c, queue, 61.0, CFG, now=NOW) is None]
    if takers:
        assert choose_by_outcome(c, queue, floor, NOW, CFG, total).agent_id is not None


@PROPERTY
@given(c=contacts(now=NOW), floor=floors(), total=st.integers(0, 40))
def test_a_routine_contact_never_takes_the_reserve_before_its_hold_ends(
    c: ContactView, floor: list[AgentView], total: int
) -> None:
    c = replace(c, status="queued", last_agent_id=None, moment_of_truth=False)
    choice = choose_by_outcome(c, "general", floor, NOW, CFG, total)
    if choice.agent_id is None or choice.all_declined:
        return
    chosen = next(a for a in floor if a.agent_id == choice.agent_id)
    if chosen.eq >= CFG.mot_min_eq and queued_for_s(c, NOW) < OCFG.reserve_max_hold_s:
        assert not high_eq_reserve(floor, c.channel, total, CFG).holds
