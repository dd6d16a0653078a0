"""Moment-of-truth detection over a contact's whole trajectory, not over one message.

The verdict comes from a small logistic model over the trajectory (``MotModel``: per-turn moment-of-truth
probabilities, also as log-odds, intensities, topic, a request for a person, the number of turns, the latest
turn's length), learned and calibrated by scripts/train_detector.py on the project's own labelled
conversations (models/corpus/). Without a model (a scorer that gives no probabilities, or no detector file)
the hand rules below decide, as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from router.domain.model import ContactView, Reason, TurnScore
from router.domain.trajectory import add_turn
from router.settings import Settings

# What the learned detector sees of a contact; ``trajectory_features`` computes them, in this order.
FEATURES: tuple[str, ...] = (
    "mot_last",  # P(moment of truth) of the latest customer turn
    "mot_peak",  # the highest per-turn probability so far
    "mot_prev_mean",  # mean probability of the earlier kept turns (0 on the first turn)
    "mot_trend",  # latest minus that mean (0 on the first turn)
    "mot_high_turns",  # kept turns with probability >= 0.5
    "log_turns",  # log(1 + customer turns)
    "intensity_peak",
    "intensity_last",
    "topic_prob",
    "wants_human",
    "log_words_last",  # log(1 + words of the latest turn)
    "first_log_words",  # the same on a contact's first turn, else 0
    "first_log_words_mot",  # that times mot_last
    "mot_last_logit",  # mot_last as log-odds: near 1 a linear term cannot tell 0.97 from 0.999
    "mot_peak_logit",  # mot_peak as log-odds
)
# the log-odds features clip the probability to [LOGIT_CLIP_P, 1 - LOGIT_CLIP_P] (about +-9.2)
LOGIT_CLIP_P = 1e-4
NEIGHBOURS_REASON_MOT_PROB = 0.5
_FEATURE_TEXT = {
    "mot_last": "latest turn p={:.2f}",
    "mot_peak": "peak p={:.2f} on turn {peak_turn}",
    "mot_prev_mean": "earlier turns p={:.2f}",
    "mot_trend": "rising {:+.2f}",
    "mot_high_turns": "{:.0f} turn(s) above 0.5",
    "log_turns": "{:.0f} turns",
    "intensity_peak": "peak intensity {:.2f}",
    "intensity_last": "intensity {:.2f}",
    "topic_prob": "topic {topic} p={:.2f}",
    "wants_human": "asked for a person",
    "log_words_last": "latest turn {:.0f} words",
    "first_log_words": "first turn {:.0f} words",
    "first_log_words_mot": "a first turn of {words} words at p={mot:.2f}",
}
# features whose value is log(1 + a count): a reason names the count
_LOG_COUNTS = frozenset({"log_turns", "log_words_last", "first_log_words"})
# a feature that reads another one again (as log-odds): a reason counts its push with that one's and names
# that one, so "latest turn p=0.65" is said once
_READS_AGAIN = {"mot_last_logit": "mot_last", "mot_peak_logit": "mot_peak"}


@dataclass(frozen=True)
class MotModel:
    """Logistic regression over ``FEATURES``: P(moment of truth so far) = sigmoid(bias + sum w_f x_f), a
    verdict when it reaches ``threshold`` (chosen on the corpus dev split). ``means`` are the training
    means, used to say which features drove a verdict. ``repeat_logit`` is added for a repeat contact: the
    corpus has no repeat flag to learn it from, so it is a stated prior (settings), not a learned weight."""

    weights: Mapping[str, float]
    bias: float
    threshold: float
    means: Mapping[str, float] = field(default_factory=dict)
    repeat_logit: float = 0.0

    def logit(self, x: Mapping[str, float], repeat_contact: bool = False) -> float:
        z = self.bias + sum(self.weights.get(f, 0.0) * x[f] for f in FEATURES)
        return z + (self.repeat_logit if repeat_contact else 0.0)

    def probability(self, x: Mapping[str, float], repeat_contact: bool = False) -> float:
        z = self.logit(x, repeat_contact)
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


@dataclass(frozen=True)
class MotThresholds:
    peak: float = 0.5
    last: float = 0.6
    trend: float = 0.25
    topic: float = 0.5
    topic_intensity_floor: float = 0.08
    human_request: float = 0.5
    model: MotModel | None = None  # the learned detector; None: the hand rules decide

    @classmethod
    def from_settings(cls, s: Settings, model: MotModel | None = None) -> MotThresholds:
        return cls(
            peak=s.mot_peak_threshold,
            last=s.mot_last_threshold,
            trend=s.mot_trend_threshold,
            topic=s.mot_topic_threshold,
            topic_intensity_floor=s.mot_topic_intensity_floor,
            human_request=s.human_request_threshold,
            model=model,
        )


@dataclass(frozen=True)
class MotVerdict:
    is_mot: bool
    reasons: tuple[Reason, ...]


def wants_human(turn: TurnScore, th: MotThresholds) -> bool:
    """Whether one scored turn counts as an explicit request for a human (sets ContactView.wants_human)."""
    return turn.wants_human >= th.human_request


def observe_turn(contact: ContactView, turn: TurnScore, th: MotThresholds) -> tuple[ContactView, bool]:
    """``contact`` after one more scored customer turn, and whether this turn is the first request for a
    person. The worker, the detector's training and the evaluation all replay turns through here."""
    view = replace(
        contact, trajectory=add_turn(contact.trajectory, turn.intensity, turn.mot_prob, words=turn.words)
    )
    if turn.topic and turn.topic_prob >= view.topic_prob:
        view = replace(view, topic=turn.topic, topic_prob=turn.topic_prob)
    first_request = wants_human(turn, th) and not view.wants_human
    if first_request:
        view = replace(view, wants_human=True)
    return view, first_request


def trajectory_features(contact: ContactView) -> dict[str, float]:
    traj = contact.trajectory
    probs = traj.mot_probs or (0.0,)
    earlier = probs[:-1]
    prev_mean = sum(earlier) / len(earlier) if earlier else 0.0
    log_words = math.log1p(traj.last_words)
    first = log_words if traj.turns == 1 else 0.0
    peak = max(traj.mot_peak, max(probs))
    return {
        "mot_last": probs[-1],
        "mot_peak": peak,
        "mot_prev_mean": prev_mean,
        "mot_trend": probs[-1] - prev_mean if earlier else 0.0,
        "mot_high_turns": float(sum(1 for p in probs if p >= 0.5)),
        "log_turns": math.log1p(traj.turns),
        "intensity_peak": traj.peak,
        "intensity_last": traj.last,
        "topic_prob": contact.topic_prob,
        "wants_human": 1.0 if contact.wants_human else 0.0,
        "log_words_last": log_words,
        "first_log_words": first,
        "first_log_words_mot": first * probs[-1],
        "mot_last_logit": log_odds(probs[-1]),
        "mot_peak_logit": log_odds(peak),
    }


def log_odds(p: float) -> float:
    q = min(max(p, LOGIT_CLIP_P), 1.0 - LOGIT_CLIP_P)
    return math.log(q / (1.0 - q))


def model_probability(contact: ContactView, model: MotModel) -> float:
    return model.probability(trajectory_features(contact), contact.repeat_contact)


def detect(contact: ContactView, th: MotThresholds) -> MotVerdict:
    """Contact-level verdict: the learned model when there is one, else the hand rules (each monotone in
    the intensities). A positive verdict is sticky."""
    if th.model is not None and contact.trajectory.turns > 0:
        reasons: tuple[Reason, ...] = _model_rule(contact, th.model)
    else:
        reasons = (*_peak_rule(contact, th), *_rising_rule(contact, th), *_topic_rule(contact, th))
    if reasons:
        return MotVerdict(True, reasons)
    if contact.moment_of_truth:
        # Hysteresis: once escalated, a calmer turn must not send the customer back to self-service.
        return MotVerdict(True, (_sticky_reason(contact),))
    return MotVerdict(False, (_routine_reason(contact, th),))


def _model_rule(contact: ContactView, model: MotModel) -> tuple[Reason, ...]:
    x = trajectory_features(contact)
    p = model.probability(x, contact.repeat_contact)
    if p < model.threshold:
        return ()
    turn = contact.trajectory.turns
    shown, limit = _against(p, model.threshold)
    text = f"moment of truth p={shown} on turn {turn} (threshold {limit}): {_drivers(x, model, contact)}"
    return (Reason("mot_model", text),)


def neighbours_reason(turn: int, mot_prob: float, neighbours: str) -> tuple[Reason, ...]:
    """Why a turn that leans to a moment of truth (p >= 0.5) reads so: what its nearest labelled corpus
    turns are (router.scoring.neighbours), so a supervisor can see what the model compared it with. A calm
    turn gets none: "0 of 5" on every routine line would bury the reasons that matter."""
    if not neighbours or mot_prob < NEIGHBOURS_REASON_MOT_PROB:
        return ()
    return (Reason("mot_turn", f"turn {turn} p={mot_prob:.2f}: {neighbours}"),)


def _against(p: float, threshold: float) -> tuple[str, str]:
    """A probability and its threshold, both with the decimals the threshold needs (it is chosen on a 0.005
    grid near the top): "p=0.952 below 0.955" reads right where "p=0.95 below 0.95" would not."""
    places = 2 if round(threshold, 2) == round(threshold, 3) else 3
    return f"{p:.{places}f}", f"{threshold:.{places}f}"


def _drivers(x: Mapping[str, float], model: MotModel, contact: ContactView, top: int = 3) -> str:
    """The features that pushed the probability up most, relative to the training mean, named as a
    supervisor reads them: which topic, which turn."""
    push: dict[str, float] = {}
    for f in FEATURES:
        named_as = _READS_AGAIN.get(f, f)
        push[named_as] = push.get(named_as, 0.0) + model.weights.get(f, 0.0) * (
            x[f] - model.means.get(f, 0.0)
        )
    best = [f for f in sorted(push, key=push.__getitem__, reverse=True)[:top] if push[f] > 0]
    topic = (contact.topic or "none").replace("_", " ")
    traj = contact.trajectory
    named = {"topic": topic, "peak_turn": traj.mot_peak_turn, "mot": x["mot_last"], "words": traj.last_words}
    texts = [_FEATURE_TEXT[f].format(math.expm1(x[f]) if f in _LOG_COUNTS else x[f], **named) for f in best]
    return ", ".join(texts) or "all features together"


def _peak_rule(contact: ContactView, th: MotThresholds) -> tuple[Reason, ...]:
    traj = contact.trajectory
    if traj.peak < th.peak:
        return ()
    return (Reason("mot_peak", f"intensity {traj.peak:.2f} peak on turn {traj.peak_turn}"),)


def _rising_rule(contact: ContactView, th: MotThresholds) -> tuple[Reason, ...]:
    traj = contact.trajectory
    if len(traj.intensities) < 2 or traj.last < th.last or traj.trend < th.trend:
        return ()
    text = f"intensity rising to {traj.last:.2f} on turn {traj.turns} (+{traj.trend:.2f} over earlier turns)"
    return (Reason("mot_rising", text),)


def _topic_rule(contact: ContactView, th: MotThresholds) -> tuple[Reason, ...]:
    if contact.topic is None or contact.topic_prob < th.topic:
        return ()
    topic = f"topic {contact.topic} (p={contact.topic_prob:.2f})"
    peak = contact.trajectory.peak
    if peak >= th.topic_intensity_floor:
        return (Reason("mot_topic", f"{topic} with peak intensity {peak:.2f}"),)
    if contact.repeat_contact:
        # A customer coming back about a serious topic is upset even when the words are calm.
        return (Reason("mot_repeat_topic", f"{topic} on a repeat contact"),)
    return ()


def _sticky_reason(contact: ContactView) -> Reason:
    traj = contact.trajectory
    return Reason(
        "mot_sticky",
        f"moment of truth since earlier (peak {traj.peak:.2f} on turn {traj.peak_turn}); it stays one",
    )


def _routine_reason(contact: ContactView, th: MotThresholds) -> Reason:
    traj = contact.trajectory
    if traj.turns == 0:
        return Reason("routine", "routine: no customer turn scored yet")
    if th.model is not None:
        shown, limit = _against(model_probability(contact, th.model), th.model.threshold)
        return Reason(
            "routine",
            f"routine: moment-of-truth p={shown} below {limit} "
            f"(peak turn p={traj.mot_peak:.2f} on turn {traj.mot_peak_turn})",
        )
    return Reason(
        "routine",
        f"routine: peak intensity {traj.peak:.2f} on turn {traj.peak_turn} (threshold {th.peak:.2f})",
    )
