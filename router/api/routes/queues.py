"""GET /v1/queues: depth, longest wait, expected wait with its uncertainty, eligible and free agents, and
the contacts stuck in each queue."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends

from router.api.context import ApiContext, get_ctx
from router.api.errors import responses
from router.api.schemas import QueueOut, QueuesOut, StuckContactOut
from router.api.security import READ, requires
from router.domain.ewt import queue_wait, should_offer_callback
from router.domain.model import QUEUES, AgentView
from router.domain.policy import min_eq, queued_for_s
from router.domain.stuck import waiting_state

router = APIRouter(tags=["queues"])

# Longest wait is read from the contacts at the head of the queue (priority order, so not strictly the
# oldest); scanning this many keeps the answer cheap and exact for any realistic queue.
HEAD_SCAN = 1_000
# Stuck contacts are looked for among the head's whole records (the declines too): fewer, as each costs
# more to read. Those waiting longest are at the head, the ones a supervisor must see first.
STUCK_SCAN = 200
STUCK_LISTED = 20


@router.get(
    "/v1/queues",
    response_model=QueuesOut,
    summary="Queues: depth, longest wait, EWT with its standard deviation, eligible and free agents, stuck "
    "contacts",
    openapi_extra=requires(*READ),
    responses=responses(),
)
def list_queues(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> QueuesOut:
    now = ctx.clock()
    agents = [
        a.view for a in ctx.store.load_agents(int(now * 1000), int(ctx.settings.fairness_window_s * 1000))
    ]
    return QueuesOut(ts=round(now, 3), queues=[_queue(ctx, q, agents, now) for q in QUEUES])


def _queue(ctx: ApiContext, q: str, agents: list[AgentView], now: float) -> QueueOut:
    enq = ctx.admin.enqueued_ms(q, HEAD_SCAN)
    longest = max(0.0, now - min(enq) / 1000) if enq else 0.0
    floor = min_eq(q, longest, ctx.policy)
    eligible = [a for a in agents if a.status == "available" and a.eq >= floor]
    free = [a for a in eligible if any(a.free(ch) > 0 for ch in a.capacity)]
    passed_by, stuck = _waiting(ctx, q, agents, now)
    stats = replace(ctx.store.queue_stats(q, int(now * 1000), len(free)), passed_by=passed_by)
    mean, sd = queue_wait(stats)
    return QueueOut(
        name=q,
        depth=stats.depth,
        longest_wait_s=round(longest, 3),
        min_eq_now=floor,
        ewt_s=round(mean, 1),
        ewt_sd_s=round(sd, 1),
        eligible_agents=len(eligible),
        free_agents=len(free),
        served_per_min=round(stats.completions_per_s * 60, 3),
        callback_threshold_s=ctx.policy.callback_threshold_for(q),
        callback_offered=should_offer_callback(mean, ctx.policy, q),
        stuck=len(stuck),
        stuck_contacts=stuck[:STUCK_LISTED],
    )


def _waiting(
    ctx: ApiContext, q: str, agents: list[AgentView], now: float
) -> tuple[int, list[StuckContactOut]]:
    """Among the first STUCK_SCAN of the queue: how many the free agents pass by, and the stuck ones,
    longest waiting first."""
    passed_by = 0
    stuck = []
    for rec in ctx.store.load_contacts(ctx.store.queue_head(q, STUCK_SCAN)):
        if rec is None or rec.view.status != "queued":
            continue
        state = waiting_state(rec.view, q, agents, now, ctx.policy)
        passed_by += state.passed_by
        if state.stuck is not None:
            waited_s = round(queued_for_s(rec.view, now), 3)
            why = state.stuck
            stuck.append(
                StuckContactOut(
                    contact_id=rec.view.contact_id, waited_s=waited_s, code=why.code, reason=why.text
                )
            )
    return passed_by, sorted(stuck, key=lambda s: -s.waited_s)
