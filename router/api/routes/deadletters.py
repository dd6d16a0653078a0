"""Dead letters: list, inspect, replay one or all (replay validates again), discard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from router.api.context import ApiContext, get_ctx
from router.api.errors import ApiError, responses
from router.api.schemas import (
    STREAM_ID_PATTERN,
    DeadLetter,
    DeadLetterPage,
    DeadLetterSummary,
    Replayed,
    ReplayReport,
    StillInvalid,
)
from router.api.security import DEADLETTER_READ, DEADLETTER_WRITE, requires
from router.errors import EventError
from router.events import parse_event
from router.store.admin import StreamEntry

router = APIRouter(tags=["dead letters"])

EntryId = Annotated[str, Path(pattern=STREAM_ID_PATTERN, description="Dead-letter stream entry id")]


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _int(raw: str | None, default: int = 0) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _summary(e: StreamEntry) -> DeadLetterSummary:
    f = e.fields
    return DeadLetterSummary(
        id=e.entry_id,
        stream_id=f.get("stream_id"),
        error=f.get("error", ""),
        deliveries=_int(f.get("deliveries"), 1),
        consumer=f.get("consumer"),
        ts=_float(f.get("ts")),
        payload_bytes=len(f.get("payload", "").encode("utf-8", errors="replace")),
    )


def _validate(payload: str) -> str | None:
    """None when the payload passes the wire contract again, else the reason."""
    try:
        parse_event(payload)
    except EventError as exc:
        return exc.reason
    return None


@router.get(
    "/v1/deadletters",
    response_model=DeadLetterPage,
    summary="Dead letters, newest first (without payloads)",
    openapi_extra=requires(DEADLETTER_READ),
    responses=responses(422),
)
def list_deadletters(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(pattern=STREAM_ID_PATTERN)] = None,
) -> DeadLetterPage:
    entries = ctx.admin.deadletters(limit=limit, before=before)
    return DeadLetterPage(
        count=ctx.admin.deadletter_count(),
        items=[_summary(e) for e in entries],
        next_before=entries[-1].entry_id if len(entries) == limit else None,
    )


@router.get(
    "/v1/deadletters/{entry_id}",
    response_model=DeadLetter,
    summary="One dead letter with its original payload, error and delivery count",
    openapi_extra=requires(DEADLETTER_READ),
    responses=responses(404, 422),
)
def get_deadletter(entry_id: EntryId, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> DeadLetter:
    e = ctx.admin.deadletter(entry_id)
    if e is None:
        raise ApiError(404, "deadletter_not_found", f"no dead letter {entry_id}")
    return DeadLetter(**_summary(e).model_dump(), payload=e.fields.get("payload", ""))


@router.post(
    "/v1/deadletters/{entry_id}/replay",
    status_code=202,
    response_model=Replayed,
    summary="Replay one dead letter: validated again, then back onto the events stream",
    description="409 when the payload still fails validation; it then stays in the dead-letter stream.",
    openapi_extra=requires(DEADLETTER_WRITE),
    responses=responses(404, 409, 422),
)
def replay_one(entry_id: EntryId, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Replayed:
    e = ctx.admin.deadletter(entry_id)
    if e is None:
        raise ApiError(404, "deadletter_not_found", f"no dead letter {entry_id}")
    payload = e.fields.get("payload", "")
    why = _validate(payload)
    if why is not None:
        raise ApiError(409, "still_invalid", why)
    sid = ctx.admin.replay(entry_id, payload)
    if sid is None:
        raise ApiError(404, "deadletter_not_found", f"dead letter {entry_id} went away meanwhile")
    return Replayed(id=entry_id, stream_id=sid)


@router.post(
    "/v1/deadletters/replay",
    response_model=ReplayReport,
    summary="Replay dead letters oldest first (up to `limit`); those still invalid stay",
    description=(
        "Replays the dead letters there were when the call started, each once: one that a worker "
        "dead-letters again while the call runs is newer, and waits for the next call."
    ),
    openapi_extra=requires(DEADLETTER_WRITE),
    responses=responses(422),
)
def replay_all(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> ReplayReport:
    replayed: list[Replayed] = []
    invalid: list[StillInvalid] = []
    after = "-"
    done = 0
    # the upper bound is fixed now: the workers dead-letter replayed events again while we run, after it
    until = ctx.admin.last_deadletter_id()
    while until is not None and done < limit:
        batch = ctx.admin.deadletters_oldest(min(200, limit - done), after, until)
        if not batch:
            break
        for e in batch:
            payload = e.fields.get("payload", "")
            why = _validate(payload)
            if why is not None:
                invalid.append(StillInvalid(id=e.entry_id, error=why))
                continue
            sid = ctx.admin.replay(e.entry_id, payload)
            if sid is not None:
                replayed.append(Replayed(id=e.entry_id, stream_id=sid))
        done += len(batch)
        after = batch[-1].entry_id
    return ReplayReport(replayed=replayed, still_invalid=invalid, remaining=ctx.admin.deadletter_count())


@router.delete(
    "/v1/deadletters/{entry_id}",
    status_code=204,
    summary="Discard one dead letter",
    openapi_extra=requires(DEADLETTER_WRITE),
    responses=responses(404, 422),
)
def delete_deadletter(entry_id: EntryId, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    if not ctx.admin.delete_deadletter(entry_id):
        raise ApiError(404, "deadletter_not_found", f"no dead letter {entry_id}")
    return Response(status_code=204)
