"""Agents: create, list, get, delete, status (through the events stream), skills (If-Match), suggestions,
and the audit log of every profile change."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from router.api import agent_query, outcome_stats
from router.api.context import ApiContext, get_ctx, get_principal
from router.api.errors import ApiError, responses
from router.api.schemas import (
    ID_PATTERN,
    IF_MATCH_PATTERN,
    LANG_PATTERN,
    STREAM_ID_PATTERN,
    Accepted,
    AgentCreate,
    AgentOut,
    AgentsPage,
    AuditEntry,
    AuditPage,
    SkillsPatch,
    StatusChange,
    Suggestion,
    SuggestionEvidence,
    SuggestionGroup,
)
from router.api.security import AGENTS_WRITE, READ, ROUTING_READ, Principal, requires
from router.errors import ConflictError
from router.events import CHANNELS, AgentStatusChanged, event_digest
from router.store.admin import PostedEvent
from router.store.codec import AgentRecord, agent_profile_fields

router = APIRouter(tags=["agents"])

PathAgentId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="Agent id")]
ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": "Quoted profile version"}}


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str) -> list[int] | None:
    """Versions an If-Match header names; None for '*' (any current version)."""
    value = value.strip()
    if value == "*":
        return None
    out = []
    for part in value.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        out.append(int(tag))
    return out


def profile(rec: AgentRecord) -> dict[str, Any]:
    v = rec.view
    return {
        "name": v.name,
        "eq": v.eq,
        "languages": sorted(v.languages),
        "capacity": {ch: int(n) for ch, n in sorted(v.capacity.items())},
        "tags": sorted(v.tags),
    }


def agent_out(rec: AgentRecord) -> AgentOut:
    v = rec.view
    return AgentOut(
        agent_id=v.agent_id,
        name=v.name,
        eq=v.eq,
        languages=sorted(v.languages),
        capacity={ch: int(n) for ch, n in sorted(v.capacity.items())},
        load={ch: int(n) for ch, n in sorted(v.load.items())},
        tags=sorted(v.tags),
        status=v.status,
        version=rec.version,
        last_assigned_ts=v.last_assigned_ts or None,
        mot_recent=v.mot_recent,
    )


def _fields(p: dict[str, Any]) -> dict[str, str]:
    return agent_profile_fields(
        name=p["name"], eq=p["eq"], languages=p["languages"], capacity=p["capacity"], tags=p["tags"]
    )


def _dedupe(items: list[str]) -> list[str]:
    return sorted(dict.fromkeys(items))


def _audit(
    ctx: ApiContext, who: Principal, agent_id: str, action: str, before: Any, after: Any
) -> dict[str, Any]:
    return {
        "ts": round(ctx.clock(), 3),
        "who": who.key_id,
        "agent_id": agent_id,
        "action": action,
        "before": before,
        "after": after,
    }


def _load(ctx: ApiContext, agent_id: str) -> AgentRecord:
    rec = ctx.store.load_agent(agent_id)
    if rec is None:
        raise ApiError(404, "agent_not_found", f"no agent {agent_id}")
    return rec


def _with_recent(ctx: ApiContext, rec: AgentRecord) -> AgentRecord:
    """The record with its recent moments-of-truth count (the fairness input)."""
    floor = int((ctx.clock() - ctx.settings.fairness_window_s) * 1000)
    n = int(ctx.store.client.zcount(ctx.store.keys.agent_mot(rec.view.agent_id), floor, "+inf"))
    return dataclasses.replace(rec, view=dataclasses.replace(rec.view, mot_recent=n))


@router.get(
    "/v1/agents",
    response_model=AgentsPage,
    summary="Agents, filtered, sorted and paged, with the total that match",
    description=(
        "`q` finds a part of the id or the name (any case); `language` matches a spoken language or its "
        "primary subtag (`en` finds `en-GB`); `sort` is a column, descending with a leading `-`, ties by id."
    ),
    openapi_extra=requires(*READ),
    responses=responses(422),
)
def list_agents(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    q: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    status: Annotated[str | None, Query(pattern="^(available|away|offline)$")] = None,
    eq: Annotated[int | None, Query(ge=1, le=5)] = None,
    min_eq: Annotated[int | None, Query(ge=1, le=5)] = None,
    language: Annotated[str | None, Query(min_length=2, max_length=8, pattern=LANG_PATTERN)] = None,
    sort: Annotated[str, Query(pattern=agent_query.SORT_PATTERN)] = "agent_id",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AgentsPage:
    recs = ctx.store.load_agents(int(ctx.clock() * 1000), int(ctx.settings.fairness_window_s * 1000))
    by_id = {r.view.agent_id: r for r in recs}
    query = agent_query.AgentQuery(
        q=q, status=status, eq=eq, min_eq=min_eq, language=language, sort=sort, offset=offset, limit=limit
    )
    page, total = agent_query.select([r.view for r in recs], query)
    return AgentsPage(
        items=[agent_out(by_id[a.agent_id]) for a in page],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < total else None,
        languages=sorted({lang for r in recs for lang in r.view.languages}),
    )


@router.post(
    "/v1/agents",
    status_code=201,
    response_model=AgentOut,
    summary="Create an agent (offline until an agent.status event makes it available)",
    openapi_extra=requires(AGENTS_WRITE),
    responses={
        201: {"headers": {**ETAG_HEADER, "Location": {"schema": {"type": "string"}}}},
        **responses(409, 413, 422),
    },
)
def create_agent(
    body: AgentCreate,
    response: Response,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    who: Annotated[Principal, Depends(get_principal)],
) -> AgentOut:
    after = {
        "name": body.name,
        "eq": body.eq,
        "languages": _dedupe(body.languages),
        "capacity": body.capacity.as_dict(),
        "tags": _dedupe(body.tags),
    }
    out = ctx.store.upsert_agent(
        body.agent_id,
        _fields(after),
        expected_version=0,
        audit=_audit(ctx, who, body.agent_id, "create", None, after),
    )
    if out.status == "conflict":
        raise ApiError(409, "agent_exists", f"agent {body.agent_id} exists")
    if not out.ok:
        raise ApiError(409, "not_applied", f"create refused: {out.status} {out.reason}")
    rec = _load(ctx, body.agent_id)
    response.headers["ETag"] = etag(rec.version)
    response.headers["Location"] = f"/v1/agents/{body.agent_id}"
    return agent_out(rec)


@router.get(
    "/v1/agents/{agent_id}",
    response_model=AgentOut,
    summary="One agent, with its ETag",
    openapi_extra=requires(*READ),
    responses={200: {"headers": ETAG_HEADER}, **responses(404, 422)},
)
def get_agent(
    agent_id: PathAgentId, response: Response, ctx: Annotated[ApiContext, Depends(get_ctx)]
) -> AgentOut:
    rec = _with_recent(ctx, _load(ctx, agent_id))
    response.headers["ETag"] = etag(rec.version)
    return agent_out(rec)


@router.delete(
    "/v1/agents/{agent_id}",
    status_code=204,
    summary="Delete an agent that holds no work (no load, no pending offer)",
    openapi_extra=requires(AGENTS_WRITE),
    responses=responses(404, 409, 422),
)
def delete_agent(
    agent_id: PathAgentId,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    who: Annotated[Principal, Depends(get_principal)],
) -> Response:
    rec = _load(ctx, agent_id)
    status, detail = ctx.admin.delete_agent(
        agent_id, _audit(ctx, who, agent_id, "delete", profile(rec), None)
    )
    if status == "missing":
        raise ApiError(404, "agent_not_found", f"no agent {agent_id}")
    if status == "busy":
        raise ApiError(
            409, "agent_busy", f"agent {agent_id} still holds work ({detail}); set it offline first"
        )
    return Response(status_code=204)


@router.put(
    "/v1/agents/{agent_id}/status",
    status_code=202,
    response_model=Accepted,
    summary="Change an agent's status: written as an agent.status event, applied by the workers",
    description=(
        "Going away or offline revokes the agent's pending offers atomically in the worker, which is why "
        "the change travels through the events stream rather than being written here."
    ),
    openapi_extra=requires(AGENTS_WRITE),
    responses=responses(404, 413, 422),
)
def set_status(
    agent_id: PathAgentId,
    body: StatusChange,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
) -> Accepted:
    if not ctx.admin.agent_exists(agent_id):
        raise ApiError(404, "agent_not_found", f"no agent {agent_id}")
    event_id = f"api-status-{uuid.uuid4().hex}"
    event = AgentStatusChanged(type="agent.status", event_id=event_id, agent_id=agent_id, status=body.status)
    posted = PostedEvent(event_id, event.model_dump_json(exclude_defaults=True), event_digest(event))
    [(stream_id, _)] = ctx.admin.post_events([posted], ctx.settings.api_idempotency_ttl_s).results
    return Accepted(event_id=event_id, stream_id=stream_id)


@router.patch(
    "/v1/agents/{agent_id}/skills",
    response_model=AgentOut,
    summary="Edit EQ, languages, channel capacities, tags or name (If-Match required)",
    description="Applies to the next routing decision. Recorded in the audit log (who, when, before, after).",
    openapi_extra=requires(AGENTS_WRITE),
    responses={200: {"headers": ETAG_HEADER}, **responses(404, 412, 413, 422, 428)},
)
def patch_skills(
    agent_id: PathAgentId,
    body: SkillsPatch,
    response: Response,
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    who: Annotated[Principal, Depends(get_principal)],
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            pattern=IF_MATCH_PATTERN,
            description='The ETag from GET /v1/agents/{agent_id}, e.g. "3"; * for any version',
        ),
    ] = None,
) -> AgentOut:
    if if_match is None:
        raise ApiError(428, "precondition_required", "If-Match is required: send the ETag you read")
    wanted = parse_if_match(if_match)
    for _ in range(ctx.settings.conflict_retries):
        rec = _load(ctx, agent_id)
        if wanted is not None and rec.version not in wanted:
            raise ApiError(
                412,
                "precondition_failed",
                f"agent {agent_id} is at version {rec.version}; re-read it",
                {"ETag": etag(rec.version)},
            )
        before = profile(rec)
        after = dict(before)
        patch = body.model_dump(exclude_unset=True)
        if "name" in patch:
            after["name"] = body.name
        if "eq" in patch:
            after["eq"] = body.eq
        if body.languages is not None:
            after["languages"] = _dedupe(body.languages)
        if body.capacity is not None:
            after["capacity"] = body.capacity.as_dict()
        if body.tags is not None:
            after["tags"] = _dedupe(body.tags)
        fields = _fields(after)
        if after["capacity"] != before["capacity"]:
            # channels dropped from the profile get no slots
            fields.update({f"cap:{ch}": "0" for ch in CHANNELS if ch not in after["capacity"]})
        out = ctx.store.upsert_agent(
            agent_id,
            fields,
            expected_version=rec.version,
            audit=_audit(ctx, who, agent_id, "update", before, after),
        )
        if out.ok:
            new = _with_recent(ctx, _load(ctx, agent_id))
            response.headers["ETag"] = etag(new.version)
            return agent_out(new)
        if out.status != "conflict":
            raise ApiError(409, "not_applied", f"edit refused: {out.status} {out.reason}")
        if wanted is not None:
            current = _load(ctx, agent_id)
            raise ApiError(
                412,
                "precondition_failed",
                f"agent {agent_id} changed meanwhile (version {current.version}); re-read it",
                {"ETag": etag(current.version)},
            )
    raise ConflictError(f"agent {agent_id} kept changing; retry")


def _group(g: outcome_stats.GroupStats) -> SuggestionGroup:
    return SuggestionGroup(
        n=g.n,
        mean_csat=None if g.mean_csat is None else round(g.mean_csat, 4),
        sd_csat=None if g.sd_csat is None else round(g.sd_csat, 4),
        resolved_rate=None if g.resolved_rate is None else round(g.resolved_rate, 4),
        resolved_ci95=None if g.resolved_ci95 is None else [round(x, 4) for x in g.resolved_ci95],
    )


def _evidence(c: outcome_stats.Comparison) -> SuggestionEvidence:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    return SuggestionEvidence(
        agent=_group(c.agent),
        peers=_group(c.peers),
        difference=r(c.difference),
        ci95=None if c.ci95 is None else [round(x, 4) for x in c.ci95],
        welch_t=r(c.welch_t),
        df=r(c.df),
        p_value=r(c.p_value),
    )


@router.get(
    "/v1/agents/{agent_id}/suggested-skills",
    response_model=Suggestion,
    summary="An EQ change suggested from post-contact outcomes, with its evidence (never applied here)",
    description=outcome_stats.METHOD,
    openapi_extra=requires(*READ),
    responses=responses(404, 422),
)
def suggested_skills(agent_id: PathAgentId, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Suggestion:
    rec = _load(ctx, agent_id)
    mine, total = ctx.admin.outcome_aggregates(agent_id)
    ev = outcome_stats.evaluate(rec.view.eq, mine, total)
    return Suggestion(
        agent_id=agent_id,
        current_eq=rec.view.eq,
        suggested_eq=ev.suggested_eq,
        change=ev.suggested_eq - rec.view.eq,
        reason=ev.reason,
        method=outcome_stats.METHOD,
        moments_of_truth=_evidence(ev.moments_of_truth),
        routine=_evidence(ev.routine),
    )


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    summary="Profile changes, newest first: who, when, before, after",
    openapi_extra=requires(ROUTING_READ, AGENTS_WRITE),
    responses=responses(422),
)
def audit_log(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    agent_id: Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        str | None, Query(pattern=STREAM_ID_PATTERN, description="Page: entries before this id")
    ] = None,
) -> AuditPage:
    entries = ctx.admin.audit(limit=limit, before=before, agent_id=agent_id)
    items = []
    for e in entries:
        try:
            d = json.loads(e.fields.get("entry", "{}"))
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        items.append(
            AuditEntry(
                id=e.entry_id,
                ts=float(d["ts"]) if isinstance(d.get("ts"), int | float) else None,
                who=str(d.get("who", "")),
                agent_id=str(d.get("agent_id", "")),
                action=str(d.get("action", "")),
                before=d.get("before") if isinstance(d.get("before"), dict) else None,
                after=d.get("after") if isinstance(d.get("after"), dict) else None,
            )
        )
    return AuditPage(items=items, next_before=entries[-1].entry_id if len(entries) == limit else None)
