from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given

from router.domain.model import ContactView, Trajectory, TurnScore
from router.domain.mot import (
    FEATURES,
    LOGIT_CLIP_P,
    MotModel,
    MotThresholds,
    detect,
    log_odds,
    model_probability,
    neighbours_reason,
    observe_turn,
    trajectory_features,
    wants_human,
)
from router.domain.trajectory import add_turn
from router.settings import Settings
from tests.domain.domain_strategies import PROPERTY, contacts, unit_floats

# the rules are tested at fixed thresholds, independent of the shipped defaults (which follow the model)
TH = MotThresholds(peak=0.75, last=0.6, trend=0.25, topic=0.5, topic_intensity_floor=0.3, human_request=0.5)
POSITIVE_CODES = {"mot_peak", "mot_rising", "mot_topic", "mot_repeat_topic", "mot_sticky"}


def contact(values: list[float], **kw: Any) -> ContactView:
    traj = Trajectory()
    for value in values:
        traj = add_turn(traj, value)
    return replace(ContactView("c1", "chat", trajectory=traj), **kw)


def codes(c: ContactView) -> list[str]:
    return [r.code for r in detect(c, TH).reasons]


def test_from_settings_maps_every_threshold() -> None:
    s = Settings.model_construct(
        mot_peak_threshold=0.9,
        mot_last_threshold=0.8,
        mot_trend_threshold=0.3,
        mot_topic_threshold=0.6,
        mot_topic_intensity_floor=0.2,
        human_request_threshold=0.7,
    )
    assert MotThresholds.from_settings(s) == MotThresholds(0.9, 0.8, 0.3, 0.6, 0.2, 0.7)


def test_defaults_equal_settings_defaults() -> None:
    fields = Settings.model_fields
    from_defaults = MotThresholds(
        peak=fields["mot_peak_threshold"].default,
        last=fields["mot_last_threshold"].default,
        trend=fields["mot_trend_threshold"].default,
        topic=fields["mot_topic_threshold"].default,
        topic_intensity_floor=fields["mot_topic_intensity_floor"].default,
        human_request=fields["human_request_threshold"].default,
    )
    assert from_defaults == MotThresholds()


def test_peak_rule_explains_value_and_turn() -> None:
    verdict = detect(contact([0.1, 0.2, 0.91, 0.3]), TH)
    assert verdict.is_mot
    assert verdict.reasons[0].code == "mot_peak"
    assert verdict.reasons[0].text == "intensity 0.91 peak on turn 3"


def test_rising_trend_triggers_below_peak_threshold() -> None:
    assert codes(contact([0.1, 0.2, 0.65])) == ["mot_rising"]


def test_high_last_without_rise_is_routine() -> None:
    assert codes(contact([0.6, 0.65, 0.62])) == ["routine"]


def test_topic_needs_intensity_floor() -> None:
    calm = contact([0.1], topic="lost_card", topic_prob=0.8)
    upset = contact([0.4], topic="lost_card", topic_prob=0.8)
    assert codes(calm) == ["routine"]
    assert codes(upset) == ["mot_topic"]
    assert detect(upset, TH).reasons[0].text == "topic lost_card (p=0.80) with peak intensity 0.40"


def test_topic_on_repeat_contact_needs_no_intensity() -> None:
    repeat = contact([0.05], topic="fraud", topic_prob=0.7, repeat_contact=True)
    assert codes(repeat) == ["mot_repeat_topic"]
    assert detect(repeat, TH).reasons[0].text == "topic fraud (p=0.70) on a repeat contact"


def test_weak_topic_probability_is_ignored() -> None:
    assert codes(contact([0.5], topic="fraud", topic_prob=0.4, repeat_contact=True)) == ["routine"]


def test_sticky_once_detected() -> None:
    calm_now = contact([0.2, 0.1], moment_of_truth=True)
    assert detect(calm_now, TH).is_mot
    assert codes(calm_now) == ["mot_sticky"]


def test_routine_reason_states_the_peak() -> None:
    verdict = detect(contact([0.3, 0.2]), TH)
    assert not verdict.is_mot
    assert verdict.reasons[0].code == "routine"
    assert "peak intensity 0.30 on turn 1" in verdict.reasons[0].text


def test_no_turn_yet_is_routine() -> None:
    assert codes(contact([])) == ["routine"]


def test_wants_human_threshold() -> None:
    assert wants_human(TurnScore(seq=1, intensity=0.1, wants_human=0.5), TH)
    assert not wants_human(TurnScore(seq=1, intensity=0.1, wants_human=0.49), TH)


@PROPERTY
@given(contacts(), unit_floats)
def test_monotone_in_peak(c: ContactView, bump: float) -> None:
    higher = replace(c, trajectory=replace(c.trajectory, peak=max(c.trajectory.peak, bump)))
    if detect(c, TH).is_mot:
        assert detect(higher, TH).is_mot


@PROPERTY
@given(contacts(), unit_floats)
def test_monotone_in_topic_probability(c: ContactView, bump: float) -> None:
    higher = replace(c, topic=c.topic or "fraud", topic_prob=max(c.topic_prob, bump))
    if detect(c, TH).is_mot:
        assert detect(higher, TH).is_mot


@PROPERTY
@given(contacts())
def test_sticky_and_explained(c: ContactView) -> None:
    verdict = detect(c, TH)
    if c.moment_of_truth:
        assert verdict.is_mot
    assert verdict.reasons and all(r.text for r in verdict.reasons)
    if verdict.is_mot:
        assert {r.code for r in verdict.reasons} <= POSITIVE_CODES
    else:
        assert [r.code for r in verdict.reasons] == ["routine"]


# ---- the learned detector (MotModel): pure, so it is tested on hand-made weights

MODEL = MotModel(
    weights={f: (6.0 if f == "mot_last" else 2.0 if f == "mot_peak" else 0.0) for f in FEATURES},
    bias=-4.0,
    threshold=0.6,
    means={f: 0.2 for f in FEATURES},
    repeat_logit=1.0,
)


def _replay(probs: list[float], repeat: bool = False) -> ContactView:
    view = ContactView(contact_id="c", channel="chat", repeat_contact=repeat)
    th = MotThresholds(model=MODEL)
    for k, p in enumerate(probs, 1):
        view, _ = observe_turn(view, TurnScore(seq=k, intensity=0.1, mot_prob=p), th)
    return view


def test_model_verdict_and_readable_reason() -> None:
    th = MotThresholds(model=MODEL)
    calm, upset = _replay([0.1, 0.2]), _replay([0.1, 0.9])
    assert not detect(calm, th).is_mot
    assert detect(calm, th).reasons[0].text.startswith("routine: moment-of-truth p=")
    verdict = detect(upset, th)
    assert verdict.is_mot and verdict.reasons[0].code == "mot_model"
    assert "latest turn p=0.90" in verdict.reasons[0].text


def test_reason_names_the_topic_and_the_peak_turn() -> None:
    """A bare "topic p=1.00" leaves a supervisor asking which topic: the reason names it, and the peak's
    turn."""
    model = replace(MODEL, weights={**MODEL.weights, "topic_prob": 3.0})
    th = MotThresholds(model=model)
    view = _replay([0.95, 0.3])
    view = replace(view, topic="travel_disruption", topic_prob=0.97)
    text = detect(view, th).reasons[0].text
    assert "topic travel disruption p=0.97" in text
    assert "peak p=0.95 on turn 1" in text


def test_a_turn_leaning_to_a_moment_of_truth_says_what_its_neighbours_are() -> None:
    said = "4 of its 5 nearest labelled corpus turns are moments of truth (bereavement 4)"
    (reason,) = neighbours_reason(2, 0.87, said)
    assert reason.code == "mot_turn" and reason.text == f"turn 2 p=0.87: {said}"
    assert neighbours_reason(2, 0.49, said) == ()  # a calm turn: no reason to bury the others
    assert neighbours_reason(2, 0.99, "") == ()  # a scorer without neighbours


def test_reason_shows_the_decimals_a_fine_threshold_needs() -> None:
    """A threshold on the 0.005 grid is printed with three decimals, and the probability with it, so that a
    routine verdict never reads "p=0.95 below 0.95"."""
    view = _replay([0.1, 0.9])
    p = model_probability(view, MODEL)
    for threshold, flagged in ((round(p, 3) + 0.005, False), (round(p, 3) - 0.005, True)):
        th = MotThresholds(model=replace(MODEL, threshold=threshold))
        verdict = detect(view, th)
        assert verdict.is_mot is flagged
        shown = f"{threshold:.3f}"
        assert (f"threshold {shown})" if flagged else f"below {shown} ") in verdict.reasons[0].text
        assert f"p={p:.3f}" in verdict.reasons[0].text
    two = detect(view, MotThresholds(model=replace(MODEL, threshold=0.5))).reasons[0].text
    assert f"p={p:.2f} on turn 2 (threshold 0.50)" in two


def test_model_verdict_is_sticky_and_repeat_contacts_count() -> None:
    th = MotThresholds(model=MODEL)
    flagged = replace(_replay([0.9, 0.05]), moment_of_truth=True)
    assert detect(flagged, th).reasons[0].code == "mot_sticky"
    view = _replay([0.45])
    assert model_probability(replace(view, repeat_contact=True), MODEL) > model_probability(view, MODEL)


def test_model_is_monotone_in_the_latest_probability() -> None:
    lows = [model_probability(_replay([0.3, p]), MODEL) for p in (0.1, 0.4, 0.7, 0.95)]
    assert lows == sorted(lows)


def test_trajectories_stored_before_probabilities_still_replay() -> None:
    old = Trajectory(intensities=(0.2, 0.3), peak=0.3, peak_turn=2, turns=2)  # no mot_probs
    view, _ = observe_turn(
        ContactView(contact_id="c", channel="chat", trajectory=old),
        TurnScore(seq=3, intensity=0.4, mot_prob=0.8),
        MotThresholds(),
    )
    assert view.trajectory.mot_probs == (0.0, 0.0, 0.8)


def test_the_detector_reads_the_latest_turns_length() -> None:
    """The latest turn's length in words is a feature (the corpus's ``mot`` head leans on length, and the
    detector may weigh it back); a first turn's length and its product with the turn's probability are
    features of their own, zero after the first turn."""
    th = MotThresholds(model=MODEL)
    view, _ = observe_turn(
        ContactView(contact_id="c", channel="chat"),
        TurnScore(seq=1, intensity=0.1, mot_prob=0.8, words=7),
        th,
    )
    first = trajectory_features(view)
    assert view.trajectory.last_words == 7
    assert first["log_words_last"] == first["first_log_words"] == pytest.approx(math.log1p(7))
    assert first["first_log_words_mot"] == pytest.approx(0.8 * math.log1p(7))
    view, _ = observe_turn(view, TurnScore(seq=2, intensity=0.1, mot_prob=0.3, words=20), th)
    second = trajectory_features(view)
    assert second["log_words_last"] == pytest.approx(math.log1p(20))
    assert second["first_log_words"] == second["first_log_words_mot"] == 0.0


def test_a_reason_names_the_turns_length_in_words() -> None:
    model = replace(MODEL, weights={**MODEL.weights, "first_log_words": -3.0, "log_words_last": 3.0})
    view, _ = observe_turn(
        ContactView(contact_id="c", channel="chat"),
        TurnScore(seq=1, intensity=0.1, mot_prob=0.9, words=41),
        MotThresholds(model=model),
    )
    text = detect(view, MotThresholds(model=model)).reasons[0].text
    assert "latest turn 41 words" in text


def test_the_detector_reads_the_probabilities_as_log_odds_too() -> None:
    """Near 1 a linear term hardly tells 0.97 from 0.999, and the detector's verdicts sit there: the latest
    and the peak probability are features as log-odds too, clipped so that 0 and 1 stay finite. A reason
    counts a log-odds feature's push with its probability's and names the probability once."""
    th = MotThresholds(model=MODEL)
    view, _ = observe_turn(
        ContactView(contact_id="c", channel="chat"), TurnScore(seq=1, intensity=0.1, mot_prob=0.999), th
    )
    view, _ = observe_turn(view, TurnScore(seq=2, intensity=0.1, mot_prob=0.25), th)
    x = trajectory_features(view)
    assert x["mot_last_logit"] == pytest.approx(math.log(0.25 / 0.75))
    assert x["mot_peak_logit"] == pytest.approx(math.log(0.999 / 0.001))
    bound = math.log((1 - LOGIT_CLIP_P) / LOGIT_CLIP_P)
    assert -log_odds(0.0) == pytest.approx(bound) and log_odds(1.0) == pytest.approx(bound)
    weights = {
        **MODEL.weights,
        "mot_last": 0.0,
        "mot_peak": 0.0,
        "mot_last_logit": 1.0,
        "mot_peak_logit": 2.0,
    }
    text = detect(view, MotThresholds(model=replace(MODEL, weights=weights, threshold=0.5))).reasons[0].text
    assert "peak p=1.00 on turn 1" in text and text.count("peak p=") == 1, text
