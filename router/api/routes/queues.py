"""GET /v1/queues: depth, longest wait, expected wait with its uncertainty, eligible and free agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from router.api.context import ApiContext, get_ctx
from router.api.errors import responses
from router.api.schemas import QueueOut, QueuesOut
from router.api.security import READ, requires
from router.domain.ewt import estimate_wait, should_offer_callback
from router.domain.model import QUEUES
from router.domain.policy import min_eq

router = APIRouter(tags=["queues"])

# Longest wait is read from the contacts at the head of the queue (priority order, so not strictly the
# oldest); scanning this many keeps the answer cheap and exact for any realistic queue.
HEAD_SCAN = 1_000


@router.get(
    "/v1/queues",
    response_model=QueuesOut,
    summary="Queues: depth, longest wait, EWT with its standard deviation, eligible and free agents",
    openapi_extra=requires(*READ),
    responses=responses(),
)
def list_queues(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> QueuesOut:
    now = ctx.clock()
    now_ms = int(now * 1000)
    agents = [a.view for a in ctx.store.load_agents(now_ms, int(ctx.settings.fairness_window_s * 1000))]
    out = []
    for q in QUEUES:
        enq = ctx.admin.enqueued_ms(q, HEAD_SCAN)
        longest = max(0.0, now - min(enq) / 1000) if enq else 0.0
        floor = min_eq(q, longest, ctx.policy)
        eligible = [a for a in agents if a.status == "available" and a.eq >= floor]
        free = [a for a in eligible if any(a.free(ch) > 0 for ch in a.capacity)]
        stats = ctx.store.queue_stats(q, now_ms, len(free))
        mean, sd = estimate_wait(stats.depth, stats)
        out.append(
            QueueOut(
                name=q,
                depth=stats.depth,
                longest_wait_s=round(longest, 3),
                min_eq_now=floor,
                ewt_s=round(mean, 1),
                ewt_sd_s=round(sd, 1),
                eligible_agents=len(eligible),
                free_agents=len(free),
                served_per_min=round(stats.completions_per_s * 60, 3),
                callback_threshold_s=ctx.policy.callback_threshold_s,
                callback_offered=should_offer_callback(mean, ctx.policy),
            )
        )
    return QueuesOut(ts=round(now, 3), queues=out)
