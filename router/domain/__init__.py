"""Pure routing policy: moment-of-truth detection, placement, agent choice, wait estimates. No I/O."""

from router.domain.ewt import callback_reason, estimate_wait, queue_wait, should_offer_callback
from router.domain.model import (
    QUEUES,
    AgentView,
    ContactStatus,
    ContactView,
    QueueName,
    QueueStats,
    Reason,
    Trajectory,
    TurnScore,
)
from router.domain.mot import MotThresholds, MotVerdict, detect, wants_human
from router.domain.policy import (
    AgentChoice,
    Placement,
    PolicyConfig,
    choose_agent,
    choose_contact,
    ineligible_reason,
    min_eq,
    place,
    priority,
    queue_score,
    queued_for_s,
    remembered_decline_ms,
)
from router.domain.stuck import WaitingState, stuck_reason, waiting_state
from router.domain.trajectory import add_turn

__all__ = [
    "QUEUES",
    "AgentChoice",
    "AgentView",
    "ContactStatus",
    "ContactView",
    "MotThresholds",
    "MotVerdict",
    "Placement",
    "PolicyConfig",
    "QueueName",
    "QueueStats",
    "Reason",
    "Trajectory",
    "TurnScore",
    "WaitingState",
    "add_turn",
    "callback_reason",
    "choose_agent",
    "choose_contact",
    "detect",
    "estimate_wait",
    "ineligible_reason",
    "min_eq",
    "place",
    "priority",
    "queue_score",
    "queue_wait",
    "queued_for_s",
    "remembered_decline_ms",
    "should_offer_callback",
    "stuck_reason",
    "waiting_state",
    "wants_human",
]
