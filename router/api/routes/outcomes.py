"""POST /v1/outcomes: post-contact CSAT and resolution per agent, the data behind suggested EQ changes."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import APIRouter, Depends

from router.api.context import ApiContext, get_ctx, get_principal
from router.api.errors import ApiError, responses
from router.api.schemas import OutcomeIn, OutcomeOut
from router.api.security import EVENTS_WRITE, Principal, requires
from router.domain.outcomes import contact_class

router = APIRouter(tags=["outcomes"])


@router.post(
    "/v1/outcomes",
    status_code=201,
    response_model=OutcomeOut,
    summary="Record CSAT (1-5) and resolution for an agent's work on a contact",
    description=(
        "Whether the contact was a moment of truth is read from the contact, not taken from the caller. "
        "404 for an unknown contact; 409 when the contact was never offered to that agent, or when this "
        "(contact, agent) already has an outcome."
    ),
    openapi_extra=requires(EVENTS_WRITE),
    responses=responses(404, 409, 413, 422),
)
def post_outcome(
    body: OutcomeIn,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    who: Annotated[Principal, Depends(get_principal)],
) -> OutcomeOut:
    try:
        rec = ctx.store.load_contact(body.contact_id)
        history = ctx.store.history(body.contact_id) if rec is not None else []
    except redis.ResponseError as exc:
        if "WRONGTYPE" not in str(exc):
            raise
        rec, history = None, []
    if rec is None:
        raise ApiError(404, "contact_not_found", f"no contact {body.contact_id}")
    served = any(
        isinstance(d, dict) and d.get("action") == "offer" and d.get("agent_id") == body.agent_id
        for d in history
    )
    if not served:
        raise ApiError(
            409, "agent_not_on_contact", f"contact {body.contact_id} was never offered to {body.agent_id}"
        )
    mot = rec.view.moment_of_truth
    oid = ctx.admin.record_outcome(
        classes=contact_class(rec.view).fine_keys(),
        contact_id=body.contact_id,
        agent_id=body.agent_id,
        mot=mot,
        csat=body.csat,
        resolved=body.resolved,
        who=who.key_id,
    )
    if oid is None:
        raise ApiError(
            409, "duplicate_outcome", f"an outcome for {body.contact_id} by {body.agent_id} exists"
        )
    return OutcomeOut(
        outcome_id=oid,
        contact_id=body.contact_id,
        agent_id=body.agent_id,
        moment_of_truth=mot,
        csat=body.csat,
        resolved=body.resolved,
    )
