"""Decisions: recent ones (filterable) and a live feed (server-sent events).

The feed polls the decisions stream (XRANGE after the last id sent, every ``api_sse_poll_s``) instead of
blocking on XREAD BLOCK: it works the same on fakeredis, which does not block, and holds no Redis
connection or worker thread between polls. Each SSE event has the stream id as its ``id``, so a client
resumes with ``Last-Event-ID`` (or ``after``); a connection closes after ``api_sse_max_s`` and the client
reconnects, which keeps proxies and load balancers happy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio.to_thread
import redis
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from router.api.context import ApiContext, get_ctx
from router.api.errors import responses
from router.api.schemas import ID_PATTERN, STREAM_ID_PATTERN, DecisionsPage
from router.api.security import READ, requires
from router.events import Action
from router.store.admin import stream_id_ms

router = APIRouter(tags=["decisions"])

PING_EVERY_S = 15.0
# OpenAPI 3.0/3.1: the schema of a text/event-stream response describes one event
SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["decision", "error"]},
        "id": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
        "data": {"type": "string", "description": "JSON: a decision record plus its stream id, or an error"},
        "retry": {"type": "integer"},
    },
}


def _filter(
    action: Action | None, contact_id: str | None, agent_id: str | None, queue: str | None, mot: bool | None
) -> Callable[[dict[str, Any]], bool]:
    def keep(d: dict[str, Any]) -> bool:
        return (
            (action is None or d.get("action") == action)
            and (contact_id is None or d.get("contact_id") == contact_id)
            and (agent_id is None or d.get("agent_id") == agent_id)
            and (queue is None or d.get("queue") == queue)
            and (mot is None or bool(d.get("moment_of_truth")) == mot)
        )

    return keep


OptId = Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)]
OptQueue = Annotated[str | None, Query(pattern="^(mot|general)$")]


@router.get(
    "/v1/decisions",
    response_model=DecisionsPage,
    summary="Recent decisions, newest first, filterable; each with its reasons",
    description="Scans at most 5000 decisions per request; page with `before`.",
    openapi_extra=requires(*READ),
    responses=responses(422),
)
def list_decisions(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(pattern=STREAM_ID_PATTERN)] = None,
    action: Action | None = None,
    contact_id: OptId = None,
    agent_id: OptId = None,
    queue: OptQueue = None,
    mot: bool | None = None,
) -> DecisionsPage:
    rows = ctx.admin.decisions(
        limit=limit, before=before, keep=_filter(action, contact_id, agent_id, queue, mot)
    )
    items = [{"id": eid, **d} for eid, d in rows]
    return DecisionsPage(items=items, next_before=rows[-1][0] if len(rows) == limit else None)


@router.get(
    "/v1/decisions/stream",
    summary="Live feed of decisions (text/event-stream); resume with Last-Event-ID or `after`",
    openapi_extra=requires(*READ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `event: decision`, `id: <stream id>`, `data: <JSON>`",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
        **responses(422),
    },
)
async def stream_decisions(
    request: Request,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    after: Annotated[
        str | None, Query(pattern=STREAM_ID_PATTERN, description="Send decisions after this stream id")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=64, description="The last id received; others are ignored"),
    ] = None,
    action: Action | None = None,
    contact_id: OptId = None,
    agent_id: OptId = None,
    queue: OptQueue = None,
    mot: bool | None = None,
) -> StreamingResponse:
    keep = _filter(action, contact_id, agent_id, queue, mot)
    if last_event_id is not None and stream_id_ms(last_event_id) is None:
        last_event_id = None  # not an id this feed sent: start as if the client had none
    given = last_event_id or after
    start: str = given if given is not None else await anyio.to_thread.run_sync(ctx.admin.last_decision_id)
    poll = ctx.settings.api_sse_poll_s
    max_s = ctx.settings.api_sse_max_s

    async def events() -> AsyncIterator[str]:
        last = start
        t_end = time.monotonic() + max_s
        next_ping = time.monotonic() + PING_EVERY_S
        yield f"retry: {int(poll * 4000)}\n\n"
        while time.monotonic() < t_end:
            if await request.is_disconnected():
                return
            try:
                items, last = await anyio.to_thread.run_sync(ctx.admin.decisions_after, last, 200)
            except redis.RedisError as exc:
                err = {"error": "store_unavailable", "detail": type(exc).__name__}
                yield f"event: error\ndata: {json.dumps(err)}\n\n"
                return
            for eid, d in items:
                if keep(d):
                    yield f"id: {eid}\nevent: decision\ndata: {json.dumps({'id': eid, **d})}\n\n"
            if not items:
                if time.monotonic() >= next_ping:
                    next_ping = time.monotonic() + PING_EVERY_S
                    yield ": ping\n\n"
                await asyncio.sleep(poll)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
