"""Moment-of-truth detection over a contact's whole trajectory, not over one message."""

from __future__ import annotations

from dataclasses import dataclass

from router.domain.model import ContactView, Reason, TurnScore
from router.settings import Settings


@dataclass(frozen=True)
class MotThresholds:
    peak: float = 0.5
    last: float = 0.6
    trend: float = 0.25
    topic: float = 0.5
    topic_intensity_floor: float = 0.08
    human_request: float = 0.5

    @classmethod
    def from_settings(cls, s: Settings) -> MotThresholds:
        return cls(
            peak=s.mot_peak_threshold,
            last=s.mot_last_threshold,
            trend=s.mot_trend_threshold,
            topic=s.mot_topic_threshold,
            topic_intensity_floor=s.mot_topic_intensity_floor,
            human_request=s.human_request_threshold,
        )


@dataclass(frozen=True)
class MotVerdict:
    is_mot: bool
    reasons: tuple[Reason, ...]


def wants_human(turn: TurnScore, th: MotThresholds) -> bool:
    """Whether one scored turn counts as an explicit request for a human (sets ContactView.wants_human)."""
    return turn.wants_human >= th.human_request


def detect(contact: ContactView, th: MotThresholds) -> MotVerdict:
    """Contact-level verdict. Every rule is monotone in the intensities, and a positive verdict is sticky."""
    reasons = (*_peak_rule(contact, th), *_rising_rule(contact, th), *_topic_rule(contact, th))
    if reasons:
        return MotVerdict(True, reasons)
    if contact.moment_of_truth:
        # Hysteresis: once escalated, a calmer turn must not send the customer back to self-service.
        return MotVerdict(True, (_sticky_reason(contact),))
    return MotVerdict(False, (_routine_reason(contact, th),))


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
    return Reason(
        "routine",
        f"routine: peak intensity {traj.peak:.2f} on turn {traj.peak_turn} (threshold {th.peak:.2f})",
    )
