"""GET /v1/contacts/{id}: state, score trajectory, transcript (unless redacted), decisions with reasons."""

from __future__ import annotations

from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Path

from router.api.context import ApiContext, get_ctx, get_principal
from router.api.errors import ApiError, responses
from router.api.schemas import ID_PATTERN, ContactOut, TrajectoryOut, TranscriptTurn
from router.api.security import READ, Principal, requires
from router.store.codec import ContactRecord

router = APIRouter(tags=["contacts"])

PathContactId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="Contact id")
]


def _number(t: dict[str, Any], key: str) -> float | None:
    value = t.get(key)
    return float(value) if isinstance(value, int | float) else None


def _turn(t: dict[str, Any], redacted: bool) -> TranscriptTurn:
    seq = t.get("seq")
    voice = t.get("voice")
    return TranscriptTurn(
        seq=seq if isinstance(seq, int) else None,
        speaker=str(t.get("speaker", "")),
        text=None if redacted else str(t.get("text", "")),
        intensity=_number(t, "intensity"),
        arousal=_number(t, "arousal"),
        voice=str(voice) if voice is not None else None,
        text_intensity=_number(t, "text_intensity"),
    )


def contact_out(rec: ContactRecord, decisions: list[dict[str, Any]], redacted: bool) -> ContactOut:
    v = rec.view
    t = v.trajectory
    return ContactOut(
        contact_id=v.contact_id,
        status=v.status,
        channel=v.channel,
        language=v.language,
        tier=v.tier,
        queue=v.queue,
        agent_id=v.agent_id,
        offer_id=v.offer_id,
        moment_of_truth=v.moment_of_truth,
        topic=v.topic,
        topic_prob=round(v.topic_prob, 4),
        wants_human=v.wants_human,
        human_offered=v.human_offered,
        repeat_contact=v.repeat_contact,
        priority=v.priority,
        created_ts=v.created_ts,
        enqueued_ts=v.enqueued_ts,
        trajectory=TrajectoryOut(
            intensities=[round(x, 4) for x in t.intensities],
            peak=round(t.peak, 4),
            peak_turn=t.peak_turn,
            turns=t.turns,
            last=round(t.last, 4),
            trend=round(t.trend, 4),
        ),
        mot_reasons=[{str(k): str(x) for k, x in r.items()} for r in rec.mot_reasons if isinstance(r, dict)],
        transcript=[_turn(x, redacted) for x in rec.transcript if isinstance(x, dict)],
        redacted=redacted,
        decisions=decisions,
    )


@router.get(
    "/v1/contacts/{contact_id}",
    response_model=ContactOut,
    summary="A contact: state, score trajectory, transcript and every decision with its reasons",
    description="Keys with routing:read:redacted get the transcript without message text.",
    openapi_extra=requires(*READ),
    responses=responses(404, 422),
)
def get_contact(
    contact_id: PathContactId,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    who: Annotated[Principal, Depends(get_principal)],
) -> ContactOut:
    try:
        rec = ctx.store.load_contact(contact_id)
        history = ctx.store.history(contact_id) if rec is not None else []
    except redis.ResponseError as exc:
        if "WRONGTYPE" in str(exc):  # an id that names another kind of key is no contact
            rec = None
        else:
            raise
    if rec is None:
        raise ApiError(404, "contact_not_found", f"no contact {contact_id}")
    return contact_out(rec, [d for d in history if isinstance(d, dict)], who.redacted)
