"""One error shape for every failure (``ErrorBody``) and the OpenAPI ``responses`` that document it."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.api.schemas import ErrorBody

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid API key",
    403: "The key lacks the scope this route needs",
    404: "Not found",
    409: "Conflicts with the current state",
    412: "If-Match does not match the current version (stale write)",
    413: "Request body over the size cap",
    422: "The request does not validate",
    428: "If-Match is required",
    429: "Rate limit exceeded (see Retry-After)",
    503: "The store is unreachable",
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
    422: "invalid_request",
    428: "precondition_required",
    429: "rate_limited",
    503: "store_unavailable",
}


class ApiError(Exception):
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


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.status, exc.error, exc.detail), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # location, message and type only: the input may hold message text, which we neither echo nor log
        errors = [
            {
                "loc": _loc(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()[:20]
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}"
        return JSONResponse(_body(422, "invalid_request", detail, errors), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return JSONResponse(
            _body(exc.status_code, code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unreachable: %s", type(exc).__name__)
        return JSONResponse(_body(503, "store_unavailable", "the store is unreachable; retry later"), 503)
