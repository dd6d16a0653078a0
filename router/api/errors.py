"""One error shape for every failure (``ErrorBody``) and the OpenAPI ``responses`` that document it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.api.schemas import ErrorBody
from router.errors import ConflictError, ReplicationError, RouterError
from router.events import EVENT_TYPES
from router.store.store import STORE_OUTAGES

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid API key",
    403: "The key lacks the scope this route needs",
    404: "Not found",
    409: "Conflicts with the current state",
    412: "If-Match does not match the current version (stale write)",
    413: "Request body over the size cap",
    415: "The body is not JSON (Content-Type must be application/json)",
    422: "The request does not validate",
    428: "If-Match is required",
    429: "Rate limit exceeded (see Retry-After)",
    503: "The store is unreachable or failing over, or its replicas did not confirm an ingest in time "
    "(with the replication wait on); retry (with the same event_id)",
}
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    428: "precondition_required",
    429: "rate_limited",
    503: "store_unavailable",
}


class ApiError(RouterError):
    """An error answer: ``status`` (HTTP), ``error`` (the machine code of ErrorBody), ``detail`` (words)."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def responses(*codes: int, scoped: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error codes (scoped routes always document 401, 403, 429, 503)."""
    all_codes = set(codes)
    if scoped:
        all_codes |= {401, 403, 429, 503}
    out: dict[int | str, dict[str, Any]] = {}
    for c in sorted(all_codes):
        entry: dict[str, Any] = {"model": ErrorBody, "description": DESCRIPTIONS[c]}
        if c == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}}
        if c == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[c] = entry
    return out


def _body(status: int, error: str, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


def _loc(loc: Any) -> list[str]:
    """The location without pydantic's union-branch labels (``tagged-union[...]``, ``list[...]``)."""
    return [str(p) for p in loc if not (isinstance(p, str) and "[" in p)]


def _for_body_shape(errors: list[Any], body: Any) -> list[Any]:
    """A body that may be one event or an array of them (POST /v1/events) fails both branches of that
    union; keep the errors of the branch the body's own shape chose."""
    if isinstance(body, list):
        dropped = "model_attributes_type"  # the one-event branch, refusing any array
    elif isinstance(body, dict):
        dropped = "list_type"  # the batch branch, refusing any object
    else:
        return errors
    kept = [e for e in errors if not (_loc(e.get("loc", ())) == ["body"] and e.get("type") == dropped)]
    return kept or errors


def _describe(error: Any, body: Any) -> str:
    """The first error in words: the batch's size, or which event (index, type) and which field."""
    loc = _loc(error.get("loc", ()))
    msg = str(error.get("msg", ""))
    kind, ctx = error.get("type"), error.get("ctx") or {}
    if loc[:1] != ["body"]:
        return f"{'.'.join(loc)}: {msg}"
    if loc == ["body"] and kind == "too_long" and isinstance(body, list):
        return f"the batch holds {len(body)} events; at most {ctx.get('max_length', '?')} are allowed"
    if loc == ["body"] and kind == "too_short" and isinstance(body, list):
        return "the batch is empty: send at least one event"
    if loc == ["body"] and not isinstance(body, dict | list):
        return "the body must be a JSON object (an event) or a JSON array (a batch of events)"
    rest = loc[1:]
    event: list[str] = []  # "event 1 (contact.started)", or the type alone for a single event
    if rest and rest[0].isdigit() and isinstance(body, list):
        event.append(f"event {rest[0]}")
        rest = rest[1:]
    if rest and rest[0] in EVENT_TYPES:
        event.append(f"({rest[0]})" if event else rest[0])
        rest = rest[1:]
    where = [" ".join(event)] if event else []
    if rest:
        where.append(f"field {'.'.join(rest)}")
    return f"{', '.join(where) or 'body'}: {msg}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.status, exc.error, exc.detail), exc.status, headers=exc.headers)

    @app.exception_handler(ConflictError)
    async def _conflict(_request: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse(_body(409, "conflict", str(exc)), 409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = _for_body_shape(list(exc.errors()), exc.body)
        # location, message and type only: the input may hold message text, which we neither echo nor log
        errors = [
            {
                "loc": _loc(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in raw[:20]
        ]
        detail = _describe(raw[0], exc.body) if raw else "invalid request"
        return JSONResponse(_body(422, "invalid_request", detail, errors), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return JSONResponse(
            _body(exc.status_code, code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # the outages the worker backs off from: a failover, a replica reached, a cluster re-electing a master
    async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unreachable: %s", type(exc).__name__)
        return JSONResponse(_body(503, "store_unavailable", "the store is unreachable; retry later"), 503)

    for outage in STORE_OUTAGES:
        app.add_exception_handler(outage, _store_down)

    @app.exception_handler(ReplicationError)
    async def _unconfirmed(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("ingest not confirmed by replicas: %s", exc)
        detail = (
            f"written to the primary, but {exc}: a failover could lose it. Retry with the same event_id "
            "(or Idempotency-Key): a write that survived answers as a duplicate"
        )
        return JSONResponse(_body(503, "replication_unconfirmed", detail), 503, headers={"Retry-After": "1"})
