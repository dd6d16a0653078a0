"""Building decision records: machine codes plus sentences, one JSON document per decision."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from router.domain.model import Reason
from router.domain.wait_forecast import WaitForecast
from router.events import Action, Decision
from router.events import Reason as WireReason


def make_decision(
    *,
    event_id: str,
    contact_id: str,
    action: Action,
    now_s: float,
    reasons: Iterable[Reason],
    agent_id: str | None = None,
    queue: str | None = None,
    offer_id: str | None = None,
    priority: float = 0.0,
    moment_of_truth: bool = False,
    intensity: float = 0.0,
    wait: WaitForecast | None = None,
    mot_prob: float | None = None,
) -> Decision:
    return Decision(
        decision_id=uuid.uuid4().hex,
        event_id=event_id,
        contact_id=contact_id,
        action=action,
        agent_id=agent_id,
        queue=queue,
        offer_id=offer_id,
        priority=round(priority, 3),
        moment_of_truth=moment_of_truth,
        intensity=round(min(1.0, max(0.0, intensity)), 4),
        estimated_wait_s=None if wait is None else round(wait.mean_s, 1),
        estimated_wait_sd_s=None if wait is None else round(wait.sd_s, 1),
        estimated_wait_low_s=None if wait is None else round(wait.low_s, 1),
        estimated_wait_high_s=None if wait is None else round(wait.high_s, 1),
        mot_prob=None if mot_prob is None else round(min(1.0, max(0.0, mot_prob)), 4),
        reasons=tuple(WireReason(code=r.code, text=r.text) for r in reasons),
        ts=now_s,
    )


def summary(reasons: Iterable[Reason]) -> str:
    """The sentence form: 'intensity 0.91 peak on turn 3; topic lost_card; ...'."""
    return "; ".join(r.text for r in reasons)
