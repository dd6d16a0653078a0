"""POST /v1/events: one event or a batch, validated with the wire models, XADDed to the events stream."""

# no `from __future__ import annotations`: FastAPI must resolve the batch type built in build_router
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header
from pydantic import Field

from router.api.context import ApiContext, get_ctx
from router.api.errors import ApiError, responses
from router.api.schemas import EventResult, EventsAccepted
from router.api.security import EVENTS_WRITE, requires
from router.events import CONFLICTING_DUPLICATE, InboundEvent, event_digest
from router.settings import Settings
from router.store.admin import PostedEvent

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
            f"{settings.api_idempotency_ttl_s} s) with the same content is not written again and answers "
            "its first stream id; with other content (or one the workers applied with other content) the "
            "request is refused with 409 `conflicting_duplicate` and nothing is written. "
            "`Idempotency-Key` supplies event_ids for events that have none: the key itself for a single "
            "event, `<key>.<index>` in a batch. With the replication wait on (`ROUTER_REPLICATION_WAIT`), "
            "202 means enough replicas hold the events; 503 `replication_unconfirmed` means the primary has "
            "them but a failover could lose them: retry with the same event_ids."
        ),
        openapi_extra=requires(EVENTS_WRITE),
        responses=responses(409, 413, 422),
    )
    def post_events(
        ctx: Annotated[ApiContext, Depends(get_ctx)],
        body: Annotated[InboundEvent | Batch, Body(openapi_examples={"message": {"value": EXAMPLE_EVENT}})],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_PATTERN)
        ] = None,
    ) -> EventsAccepted:
        events = body if isinstance(body, list) else [body]
        items = [
            _posted(ev, _event_id(ev, idempotency_key, i if isinstance(body, list) else None))
            for i, ev in enumerate(events)
        ]
        # an event_id twice in one batch: the second is a duplicate of the first, like a retry
        posted = ctx.admin.post_events(items, ctx.settings.api_idempotency_ttl_s)
        # with the replication wait on, 202 only once enough replicas hold the events (else 503: retry)
        s = ctx.settings
        ctx.store.confirm_replicated(s.replication_wait, s.replica_wait_count, s.replica_wait_timeout_ms)
        if posted.conflict is not None:
            index, eid = posted.conflict
            raise ApiError(
                409,
                CONFLICTING_DUPLICATE,
                f"event {index}: event_id {eid} was accepted or applied before with other content; "
                "nothing was written",
            )
        results = [
            EventResult(index=i, event_id=item.event_id, stream_id=sid, duplicate=dup)
            for i, (item, (sid, dup)) in enumerate(zip(items, posted.results, strict=True))
        ]
        dups = sum(1 for r in results if r.duplicate)
        return EventsAccepted(accepted=len(results) - dups, duplicates=dups, results=results)

    return router


def _event_id(ev: InboundEvent, idempotency_key: str | None, index: int | None) -> str | None:
    """The event's own id, else one from ``Idempotency-Key`` (``<key>.<index>`` in a batch)."""
    if ev.event_id is not None or idempotency_key is None:
        return ev.event_id
    return idempotency_key if index is None else f"{idempotency_key}.{index}"


def _posted(ev: InboundEvent, event_id: str | None) -> PostedEvent:
    data: dict[str, Any] = ev.model_dump(mode="json", exclude_unset=True)
    if event_id is not None:
        data["event_id"] = event_id
    # ensure_ascii: whatever the text holds, the stream gets plain ASCII JSON
    payload = json.dumps(data, ensure_ascii=True)
    return PostedEvent(event_id, payload, event_digest(ev.model_copy(update={"event_id": event_id})))
