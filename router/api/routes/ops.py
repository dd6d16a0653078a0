"""Health, readiness, metrics, the caller's identity and a one-call overview for the dashboard."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
import redis
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from router.api.context import ApiContext, get_ctx, get_principal
from router.api.errors import responses
from router.api.schemas import Health, Overview, Ready, ReadyCheck, WhoAmI
from router.api.security import ANY_KEY, READ, Principal, requires
from router.domain.model import QUEUES
from router.scoring.fallback import DegradedScorer
from router.settings import Settings

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers (no store access)")
def healthz() -> Health:
    return Health(status="ok")


def _model_check(ctx: ApiContext) -> ReadyCheck:
    scorer = ctx.scorer
    if scorer is None:
        return ReadyCheck(
            ok=True, detail=f"scorer {ctx.settings.scorer} runs in the worker processes (not checked here)"
        )
    if isinstance(scorer, DegradedScorer):
        return ReadyCheck(ok=False, detail=f"scorer degraded to {scorer.name}: {scorer.reason}")
    return ReadyCheck(ok=True, detail=f"scorer {scorer.name} loaded")


def _replication_check(settings: Settings, replicas: int) -> ReadyCheck:
    """With the replication wait on, too few replicas means every ingest answers 503: not ready."""
    if settings.replication_wait == "off":
        return ReadyCheck(ok=True, detail=f"replication wait off; {replicas} replicas online")
    wanted = settings.replica_wait_count
    ok = replicas >= wanted
    detail = f"{settings.replication_wait} for {wanted} replicas; {replicas} online"
    return ReadyCheck(ok=ok, detail=detail if ok else f"{detail}: ingests answer 503 until one is back")


def _ready(ctx: ApiContext) -> Ready:
    checks: dict[str, ReadyCheck] = {}
    try:
        ctx.client.ping()
        writable, where, replicas = ctx.store.primary_state()
        checks["redis"] = ReadyCheck(ok=writable, detail=f"reachable: {where}")
        checks["replication"] = _replication_check(ctx.settings, replicas)
        group = ctx.admin.group_info(ctx.settings.group)
        live = ctx.admin.live_workers(ctx.settings.worker_dead_after_s)
        checks["group"] = (
            ReadyCheck(
                ok=True,
                detail=f"group {ctx.settings.group}: {group['consumers']} consumers, {live} live workers",
            )
            if group is not None
            else ReadyCheck(ok=False, detail=f"consumer group {ctx.settings.group} does not exist yet")
        )
    except (redis.RedisError, redis.exceptions.RedisClusterUnreachableError) as exc:
        # a failover shows here: the old primary gone (ConnectionError), or the node reached is a replica
        checks["redis"] = ReadyCheck(ok=False, detail=f"no writable primary: {type(exc).__name__}")
        checks["group"] = ReadyCheck(ok=False, detail="not checked: store unreachable")
    checks["model"] = _model_check(ctx)
    ok = all(c.ok for c in checks.values())
    return Ready(status="ready" if ok else "not_ready", checks=checks)


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: a writable primary, enough replicas for the replication wait, the workers' consumer "
    "group, the scorer",
    responses={503: {"model": Ready, "description": "Not ready"}},
)
async def readyz(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> JSONResponse:
    ready = await anyio.to_thread.run_sync(_ready, ctx)
    return JSONResponse(ready.model_dump(), status_code=200 if ready.status == "ready" else 503)


def metrics_route(public: bool) -> APIRouter:
    r = APIRouter(tags=["operations"])

    @r.get(
        "/metrics",
        summary="Prometheus metrics: the store's counters and gauges, decisions, latency, API requests",
        response_class=Response,
        openapi_extra=None if public else requires(*READ),
        responses={
            200: {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "description": "Prometheus text",
            },
            **({} if public else responses()),
        },
    )
    def metrics(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
        return Response(ctx.metrics.render(ctx.admin), media_type="text/plain; version=0.0.4; charset=utf-8")

    return r


@router.get(
    "/v1/whoami",
    response_model=WhoAmI,
    summary="The calling key's id, name and scopes",
    openapi_extra=requires(ANY_KEY),
    responses=responses(),
)
def whoami(who: Annotated[Principal, Depends(get_principal)]) -> WhoAmI:
    return WhoAmI(key_id=who.key_id, name=who.name, scopes=sorted(who.scopes), redacted=who.redacted)


@router.get(
    "/v1/overview",
    response_model=Overview,
    summary="Counters for the dashboard: processed, decisions, dead letters, agents, queue depths",
    openapi_extra=requires(*READ),
    responses=responses(),
)
def overview(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Overview:
    stats = ctx.store.stats()
    counts = ctx.admin.floor_counts()
    agents = {"available": 0, "away": 0, "offline": 0}
    for a in ctx.store.load_agents(int(ctx.clock() * 1000), int(ctx.settings.fairness_window_s * 1000)):
        agents[a.view.status] = agents.get(a.view.status, 0) + 1
    group = ctx.admin.group_info(ctx.settings.group)
    depths = ctx.store.queue_depths()
    return Overview(
        domain=ctx.settings.domain,
        stats=stats,
        deadletter_backlog=counts["deadletter_backlog"],
        offers_pending=counts["offers_pending"],
        events_backlog=counts["events_backlog"],
        outcomes=counts["outcomes"],
        agents=agents,
        queues={q: depths.get(q, 0) for q in QUEUES},
        workers=ctx.admin.live_workers(ctx.settings.worker_dead_after_s) if group is not None else None,
    )
