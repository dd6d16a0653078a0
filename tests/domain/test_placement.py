"""place(), priority(), queue_score(), min_eq() and PolicyConfig."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.model import ContactView, Reason, Trajectory
from router.domain.mot import MotThresholds, MotVerdict, detect
from router.domain.outcomes import OutcomeConfig
from router.domain.policy import MAX_PRIORITY, PolicyConfig, min_eq, place, priority, queue_score
from router.settings import Settings
from tests.domain.domain_strategies import PROPERTY, TIERS, contacts, unit_floats

CFG = PolicyConfig.defaults()
MOT = MotVerdict(True, (Reason("mot_peak", "intensity 0.91 peak on turn 3"),))
ROUTINE = MotVerdict(False, (Reason("routine", "routine: peak intensity 0.10 on turn 1"),))


def contact(**kw: Any) -> ContactView:
    return replace(ContactView("c1", "chat"), **kw)


def codes(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.code for r in reasons]


def test_defaults_are_the_settings_defaults_whatever_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_MOT_MIN_EQ", "2")
    assert PolicyConfig.from_settings(Settings()).mot_min_eq == 2
    assert (
        CFG
        == PolicyConfig.defaults()
        == replace(PolicyConfig.from_settings(Settings.model_construct()), outcome=None)
    )
    assert CFG.mot_min_eq == Settings.model_fields["mot_min_eq"].default == 4


LADDER_FIELDS = [f.name for f in fields(PolicyConfig) if f.name != "outcome"]


def test_outcome_matching_is_on_by_default() -> None:
    # with the prior and costs OutcomeConfig states
    assert PolicyConfig.from_settings(Settings.model_construct()).outcome == OutcomeConfig()
    assert PolicyConfig.from_settings(Settings.model_construct(outcome_matching=False)).outcome is None


def test_from_settings_copies_every_field() -> None:
    values: dict[str, Any] = {name: Settings.model_fields[name].default for name in LADDER_FIELDS}
    values.update(mot_min_eq=5, ladder_step1_s=7.0, queue_scan_limit=9, fairness_max_share=0.3)
    s = Settings.model_construct(**values, outcome_matching=False)
    assert PolicyConfig.from_settings(s) == PolicyConfig(**values)
    tuned = Settings(outcome_prior_n=3.0, mot_wait_cost_per_min=0.9, mot_reserve_max_hold_s=12.0)
    outcome = PolicyConfig.from_settings(tuned).outcome
    assert outcome is not None
    assert (outcome.n0, outcome.mot_wait_cost_per_min, outcome.reserve_max_hold_s) == (3.0, 0.9, 12.0)


def test_routine_goes_to_self_service() -> None:
    p = place(contact(status="new"), ROUTINE, CFG)
    assert (p.target, p.queue) == ("self_service", None)
    assert codes(p.reasons) == ["routine", "to_self_service"]


def test_mot_goes_to_mot_queue() -> None:
    p = place(contact(status="new"), MOT, CFG)
    assert (p.target, p.queue) == ("human", "mot")
    assert codes(p.reasons) == ["mot_peak", "to_mot_queue"]


def test_human_request_goes_to_general() -> None:
    p = place(contact(status="new", wants_human=True), ROUTINE, CFG)
    assert (p.target, p.queue) == ("human", "general")
    assert "human_requested" in codes(p.reasons)


def test_human_request_and_mot_goes_to_mot() -> None:
    p = place(contact(status="self_service", wants_human=True), MOT, CFG)
    assert (p.target, p.queue) == ("human", "mot")
    assert codes(p.reasons) == ["mot_peak", "human_requested", "escalated_from_self_service", "to_mot_queue"]


def test_spike_in_self_service_escalates() -> None:
    p = place(contact(status="self_service"), MOT, CFG)
    assert p.queue == "mot"
    assert "escalated_from_self_service" in codes(p.reasons)


def test_queued_routine_becoming_mot_is_rerouted() -> None:
    p = place(contact(status="queued", queue="general", wants_human=True), MOT, CFG)
    assert p.queue == "mot"
    assert "rerouted_to_mot" in codes(p.reasons)


def test_queued_contact_never_returns_to_self_service() -> None:
    p = place(contact(status="queued", queue="general", wants_human=False), ROUTINE, CFG)
    assert (p.target, p.queue) == ("human", "general")
    assert codes(p.reasons)[-1] == "stays_with_human"


def test_assigned_contact_is_not_transferred() -> None:
    c = contact(status="assigned", queue="general", agent_id="a3")
    p = place(c, MOT, CFG)
    assert (p.target, p.queue) == ("human", "general")
    assert p.reasons[-1].code == "stays_with_agent"
    assert "agent a3" in p.reasons[-1].text


def test_offered_contact_keeps_its_offer() -> None:
    p = place(contact(status="offered", queue="general", agent_id="a1"), MOT, CFG)
    assert p.queue == "general"
    assert "only if this offer fails" in p.reasons[-1].text


@PROPERTY
@given(contacts())
def test_placement_invariants(c: ContactView) -> None:
    verdict = detect(c, MotThresholds())
    p = place(c, verdict, CFG)
    if c.status in ("queued", "offered", "assigned") or verdict.is_mot or c.wants_human:
        assert p.target == "human" and p.queue in ("mot", "general")
    else:
        assert (p.target, p.queue) == ("self_service", None)
    if verdict.is_mot and c.status not in ("offered", "assigned"):
        assert p.queue == "mot"
    assert 0.0 <= p.priority <= MAX_PRIORITY
    assert p.reasons


def test_priority_orders_typical_cases() -> None:
    calm = contact(trajectory=Trajectory((0.1,), 0.1, 1, 1))
    upset = contact(trajectory=Trajectory((0.9,), 0.9, 1, 1))
    assert priority(calm, False, CFG) < priority(upset, False, CFG) < priority(upset, True, CFG)
    worst = contact(tier="platinum", trajectory=Trajectory((1.0,), 1.0, 1, 1))
    assert priority(worst, True, CFG) == MAX_PRIORITY
    assert priority(replace(calm, tier="unknown"), False, CFG) == priority(calm, False, CFG)


@PROPERTY
@given(contacts(), unit_floats, unit_floats, st.sampled_from(TIERS), st.booleans())
def test_priority_monotone_and_bounded(
    c: ContactView, peak_up: float, last_up: float, tier_up: str, mot: bool
) -> None:
    traj = c.trajectory
    raised_traj = replace(
        traj, peak=max(traj.peak, peak_up), intensities=(*traj.intensities[:-1], max(traj.last, last_up))
    )
    tier = max(c.tier, tier_up, key=TIERS.index)
    base = priority(c, mot, CFG)
    assert 0.0 <= base <= MAX_PRIORITY
    assert priority(replace(c, trajectory=raised_traj, tier=tier), mot, CFG) >= base
    assert priority(c, True, CFG) >= priority(c, False, CFG)


@PROPERTY
@given(st.floats(0, 1e9), st.floats(0, 1e9), st.floats(0, MAX_PRIORITY), st.floats(0, MAX_PRIORITY))
def test_queue_score_orders(t1: float, t2: float, p1: float, p2: float) -> None:
    # Non-strict for float absorption at epoch-sized timestamps; strict once the gap is meaningful.
    if p1 > p2:
        assert queue_score(t1, p1, CFG) <= queue_score(t1, p2, CFG)
    if p1 - p2 >= 1e-3:
        assert queue_score(t1, p1, CFG) < queue_score(t1, p2, CFG)
    if t1 < t2:
        assert queue_score(t1, p1, CFG) <= queue_score(t2, p1, CFG)
    if t2 - t1 >= 1e-3:
        assert queue_score(t1, p1, CFG) < queue_score(t2, p1, CFG)


def test_priority_is_a_bounded_head_start() -> None:
    # A routine contact that waited longer than the biggest head start is ahead of any newcomer.
    head_start_s = MAX_PRIORITY * CFG.seconds_per_priority_point
    assert queue_score(0.0, 0.0, CFG) < queue_score(head_start_s + 1.0, MAX_PRIORITY, CFG)


def test_ladder_steps() -> None:
    assert [min_eq("mot", w, CFG) for w in (0.0, 19.9, 20.0, 59.9, 60.0, 1e6)] == [4, 4, 3, 3, 1, 1]
    assert min_eq("general", 0.0, CFG) == 1


configs = st.builds(
    PolicyConfig,
    mot_min_eq=st.integers(1, 5),
    ladder_step1_s=st.floats(0, 100),
    ladder_step1_min_eq=st.integers(1, 5),
    ladder_step2_s=st.floats(0, 200),
)


@PROPERTY
@given(configs, st.sampled_from(("mot", "general")), st.floats(0, 300), st.floats(0, 300))
def test_ladder_never_rises(cfg: PolicyConfig, queue: str, w1: float, w2: float) -> None:
    early, late = sorted((w1, w2))
    assert 1 <= min_eq(queue, late, cfg) <= min_eq(queue, early, cfg) <= cfg.mot_min_eq


def test_assigned_mot_has_no_offer_to_fail() -> None:
    p = place(contact(status="assigned", queue="general", agent_id="a3"), MOT, CFG)
    assert "offer" not in p.reasons[-1].text


# ---------------------------------------------------------------------------------------- offering a person


def in_self_service(*mot_probs: float, **kw: Any) -> ContactView:
    traj = Trajectory(
        intensities=(0.1,) * len(mot_probs), turns=len(mot_probs), mot_probs=tuple(mot_probs), peak=0.1
    )
    return contact(status="self_service", trajectory=traj, **kw)


def test_self_service_offers_a_person_once_when_a_turn_reads_as_a_possible_moment_of_truth() -> None:
    p = place(in_self_service(0.1, 0.62), ROUTINE, CFG)
    assert p.target == "self_service" and p.offer_human
    assert codes(p.reasons) == ["routine", "human_offered", "to_self_service"]
    assert "turn 2 reads as a possible moment of truth (p=0.62, offer at 0.50)" in p.reasons[1].text
    # once per contact: the next high turn does not ask again
    again = place(in_self_service(0.1, 0.62, 0.9, human_offered=True), ROUTINE, CFG)
    assert not again.offer_human and "human_offered" not in codes(again.reasons)


@pytest.mark.parametrize(
    ("probs", "threshold"),
    [((0.49,), 0.5), ((0.9, 0.2), 0.5), ((0.99,), 1.0), ((), 0.5)],
    ids=["below", "only-the-latest-turn-counts", "turned-off", "no-turn-yet"],
)
def test_no_offer_below_the_threshold_or_when_turned_off(probs: tuple[float, ...], threshold: float) -> None:
    cfg = replace(CFG, human_offer_mot_prob=threshold)
    p = place(in_self_service(*probs), ROUTINE, cfg)
    assert p.target == "self_service" and not p.offer_human


def test_a_moment_of_truth_or_a_request_goes_to_a_person_without_an_offer() -> None:
    assert not place(in_self_service(0.95), MOT, CFG).offer_human
    assert not place(in_self_service(0.95, wants_human=True), ROUTINE, CFG).offer_human
