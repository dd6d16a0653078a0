"""POST /v1/events: one event or a batch, validated with the wire models, XADDed to the events stream."""

# no `from __future__ import annotations`: FastAPI must resolve the batch type built in build_router
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header
from pydantic import Field

from router.api.context import ApiContext, get_ctx
from router.api.errors import responses
from router.api.schemas import EventResult, EventsAccepted
from router.api.security import EVENTS_WRITE, requires
from router.events import InboundEvent
from router.settings import Settings

IDEMPOTENCY_PATTERN = r"^[A-Za-z0-9_.:@-]{1,100}$"
EXAMPLE_EVENT = {
    "type": "contact.message",
    "event_id": "e2",
    "contact_id": "c42",
    "seq": 0,
    "speaker": "customer",
    "text": "My card was stolen and someone is emptying my account",
}


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["events"])
    max_batch = settings.api_max_batch
    Batch = Annotated[list[InboundEvent], Field(min_length=1, max_length=max_batch)]

    @router.post(
        "/v1/events",
        status_code=202,
        response_model=EventsAccepted,
        summary="Post one event or a batch (a JSON array); the workers route them",
        description=(
            "Each event validates against the wire contract (schema_version 1) exactly as a worker would "
            "validate it; an invalid one rejects the whole request with 422 and nothing is written. "
            "`event_id` is the idempotency key: an event_id accepted before (within "
            f"{settings.api_idempotency_ttl_s} s) is not written again and answers its first stream id. "
            "`Idempotency-Key` supplies event_ids for events that have none: the key itself for a single "
            "event, `<key>.<index>` in a batch."
        ),
        openapi_extra=requires(EVENTS_WRITE),
        responses=responses(413, 422),
    )
    def post_events(
        ctx: Annotated[ApiContext, Depends(get_ctx)],
        body: Annotated[InboundEvent | Batch, Body(openapi_examples={"message": {"value": EXAMPLE_EVENT}})],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_PATTERN)
        ] = None,
    ) -> EventsAccepted:
        events = body if isinstance(body, list) else [body]
        items: list[tuple[str | None, str]] = []
        for i, ev in enumerate(events):
            data: dict[str, Any] = ev.model_dump(mode="json", exclude_unset=True)
            if ev.event_id is None and idempotency_key is not None:
                data["event_id"] = idempotency_key if not isinstance(body, list) else f"{idempotency_key}.{i}"
            # ensure_ascii: whatever the text holds, the stream gets plain ASCII JSON
            items.append((data.get("event_id"), json.dumps(data, ensure_ascii=True)))
        # an event_id twice in one batch: the second is a duplicate of the first, like a retry
        written = ctx.admin.post_events(items, ctx.settings.api_idempotency_ttl_s)
        results = [
            EventResult(index=i, event_id=eid, stream_id=sid, duplicate=dup)
            for i, ((eid, _), (sid, dup)) in enumerate(zip(items, written, strict=True))
        ]
        dups = sum(1 for r in results if r.duplicate)
        return EventsAccepted(accepted=len(results) - dups, duplicates=dups, results=results)

    return router
