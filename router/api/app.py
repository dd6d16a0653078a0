"""The FastAPI application: ``create_app(settings, handle)``."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, Route

from router.api import errors
from router.api.context import ApiContext, api_client
from router.api.metrics import ApiMetrics
from router.api.middleware import ApiGuard
from router.api.routes import agents, contacts, deadletters, decisions, events, ops, outcomes, queues, stats
from router.api.security import SCOPE_FIELD, SECURITY_SCHEMES, RateLimiter
from router.domain.policy import PolicyConfig
from router.scoring.protocol import EmotionScorer
from router.settings import Settings
from router.store.admin import AdminStore
from router.store.connect import StoreHandle
from router.store.store import RoutingStore

DESCRIPTION = """Supervisor and platform API of the moments-of-truth router.

Authenticate with `Authorization: Bearer <key>` (or `X-API-Key`). Keys are created with
`router keys create --scopes ...`; `ROUTER_ADMIN_KEY` has every scope. Each operation names the scopes that
grant it in `x-required-scopes`. Errors always have the shape `{"error": code, "detail": text}`.
"""


def static_dir() -> str:
    return str(resources.files("router.api").joinpath("static"))


def create_app(
    settings: Settings,
    handle: StoreHandle,
    *,
    scorer: EmotionScorer | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The API over ``handle``'s store. ``scorer`` is the scorer of this process when it runs one
    (``router demo --api``), for /readyz and the fallback counter; workers elsewhere report nothing here."""
    client = api_client(handle, settings)
    store = RoutingStore(client, settings.domain, seen_ttl_s=settings.seen_ttl_s)
    metrics = ApiMetrics()
    ctx = ApiContext(
        settings=settings,
        handle=handle,
        client=client,
        store=store,
        admin=AdminStore(store, clock=clock),
        policy=PolicyConfig.from_settings(settings),
        limiter=RateLimiter(settings.api_rate_per_s, settings.api_rate_burst),
        auth_fail_limiter=RateLimiter(
            settings.api_auth_fail_per_s, max(5, int(settings.api_auth_fail_per_s * 4))
        ),
        metrics=metrics,
        scorer=scorer,
        clock=clock,
    )
    metrics.attach_store(ctx.admin, settings, scorer=scorer, clock=clock)
    app = FastAPI(
        title="mot-router API",
        version="1",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    routers = [
        ops.router,
        ops.metrics_route(settings.api_metrics_public),
        events.build_router(settings),
        agents.router,
        queues.router,
        contacts.router,
        decisions.router,
        deadletters.router,
        outcomes.router,
        stats.router,
    ]
    for r in routers:
        app.include_router(r)
    api_routes = [route for r in routers for route in r.routes if isinstance(route, APIRoute)]
    _check_scopes(api_routes, public_metrics=settings.api_metrics_public)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(f"{static_dir()}/index.html", headers=PAGE_HEADERS)

    @app.get("/dashboard", include_in_schema=False)
    def dashboard() -> RedirectResponse:
        return RedirectResponse("/")

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    # the guard matches against route objects it is given (FastAPI's included-router internals vary)
    own = [r for r in app.router.routes if isinstance(r, Route | Mount) and r not in api_routes]
    app.add_middleware(ApiGuard, ctx=ctx, routes=[*api_routes, *own])
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    # the dashboard loads only its own script and style and talks only to this origin
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _check_scopes(routes: list[APIRoute], *, public_metrics: bool) -> None:
    """Fail at start-up if a /v1 route (or /metrics) forgot to declare its scopes: default deny."""
    for route in routes:
        scoped = bool((route.openapi_extra or {}).get(SCOPE_FIELD))
        must = route.path.startswith("/v1/") or (route.path == "/metrics" and not public_metrics)
        if must and not scoped:
            raise RuntimeError(f"route {route.path} declares no scopes")


def _drop_null(param: dict[str, Any]) -> None:
    """An optional parameter is absent, never the string "null": ``anyOf [T, null]`` becomes ``T``."""
    schema = param.get("schema") or {}
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return
    kept = [o for o in options if o != {"type": "null"}]
    if len(kept) == 1 and len(kept) < len(options):
        extra = {k: v for k, v in schema.items() if k != "anyOf"}
        param["schema"] = {**kept[0], **extra}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = schema.setdefault("components", {})
    comps.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path in schema.get("paths", {}).values():
        for op in path.values():
            if not isinstance(op, dict):
                continue
            if "requestBody" in op:  # the guard refuses a body that is not JSON
                op.setdefault("responses", {})["415"] = {
                    "description": errors.DESCRIPTIONS[415],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
            for p in op.get("parameters", []):
                # If-Match is optional in the handler only to answer 428 instead of 422 when it is missing
                if p.get("in") == "header" and p.get("name") == "If-Match":
                    p["required"] = True
                _drop_null(p)
    app.openapi_schema = schema
    return schema
