"""How a waiting contact stands with the free agents: passed by (they do not shorten its wait), or stuck
(a supervisor should look at it). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from router.domain.model import AgentView, ContactView, Reason
from router.domain.policy import AgentChoice, PolicyConfig, choose_agent, queued_for_s


@dataclass(frozen=True, slots=True)
class WaitingState:
    """``passed_by``: agents have a free slot on the contact's channel, yet none may take it now, or only
    agents who declined it; they do not shorten its wait. ``stuck``: why a supervisor should look at it,
    or None."""

    passed_by: bool
    stuck: Reason | None


def waiting_state(
    contact: ContactView, queue: str, agents: Sequence[AgentView], now: float, cfg: PolicyConfig
) -> WaitingState:
    """How the waiting ``contact`` stands. Stuck means one of:

    * "all_declined": every agent with a free slot who could take it has declined or missed it within the
      decline memory. The worker offers such a contact again at once (to the earliest decliner), so seeing
      one waiting means no worker has swept since.
    * "stuck": it has waited ``stuck_after_s`` or more while agents had a free slot on its channel: agents
      are free, yet none takes it (a language or EQ nobody free has, a busy last agent, or no worker
      running).

    A contact that waits only because every agent on its channel is busy is neither: the wait estimate
    covers that.
    """
    free = [a for a in agents if a.status == "available" and a.free(contact.channel) > 0]
    if not free:
        return WaitingState(passed_by=False, stuck=None)
    choice = choose_agent(contact, queue, agents, now, cfg, mot_total_recent=0)
    passed_by = choice.agent_id is None or choice.all_declined
    return WaitingState(passed_by, _stuck(contact, choice, len(free), now, cfg))


def stuck_reason(
    contact: ContactView, queue: str, agents: Sequence[AgentView], now: float, cfg: PolicyConfig
) -> Reason | None:
    """Why the waiting ``contact`` is stuck (see ``waiting_state``), or None."""
    return waiting_state(contact, queue, agents, now, cfg).stuck


def _stuck(
    contact: ContactView, choice: AgentChoice, free: int, now: float, cfg: PolicyConfig
) -> Reason | None:
    if choice.all_declined:
        text = (
            "declined or missed by every agent with a free slot who could take it: the next sweep offers "
            f"it again to {choice.agent_id}, whose decline is the oldest"
        )
        return Reason("all_declined", text)
    waited_s = queued_for_s(contact, now)
    if waited_s < cfg.stuck_after_s:
        return None
    if choice.agent_id is not None:
        why = f"agent {choice.agent_id} could take it, but no offer was made: is a worker running?"
    else:
        why = choice.reasons[-1].text
    return Reason(
        "stuck", f"waited {waited_s:.0f} s while {free} agents had a free {contact.channel} slot: {why}"
    )
