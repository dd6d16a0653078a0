"""ApiGuard: one ASGI middleware in front of every route, in this order:

1. match the route (its path template labels metrics and logs; its declared scopes decide access);
2. authenticate (401), authorise (403), rate-limit per key (429) - before any body is read;
3. refuse a body that is not JSON on a route that takes one (415), and cap the request body (413), from
   Content-Length and while streaming;
4. count and time the request, and log one line at INFO: method, path template, status, duration and
   key id. Never the query string, headers or body, so message text never reaches the logs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from fastapi import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.api.context import ApiContext
from router.api.security import SCOPE_FIELD, Principal, admin_matches, admin_principal
from router.store.store import STORE_OUTAGES

log = logging.getLogger("router.api.access")


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI re-raises HTTPExceptions met while reading a body, so this
    reaches the app's handler as a 413 (any other exception would become a 400 there)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"request body over {cap} bytes")


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            try:
                return str(v.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
                return None
    return None


def bearer_token(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = _header(scope, b"x-api-key")
    return key.strip() if key and key.strip() else None


class ApiGuard:
    def __init__(self, app: ASGIApp, ctx: ApiContext, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.ctx = ctx
        # the app's own route objects (not FastAPI's router internals, which change between versions)
        self.routes = list(routes)
        # (method, path template) of the routes that take a JSON body
        self.json_bodies = {
            (m, str(getattr(r, "path", "")))
            for r in self.routes
            if getattr(r, "body_field", None) is not None
            for m in getattr(r, "methods", None) or ()
        }

    def _match(self, scope: Scope) -> tuple[str, list[str] | None, list[str] | None]:
        """(path template, required scopes or None for a public route, allowed methods when the path
        exists but not with this method).

        The most literal template wins whatever the method: ``GET /v1/deadletters/replay`` is a 405 on
        ``/v1/deadletters/replay`` (POST only), not a GET of a dead letter with the id "replay"."""
        candidates: list[tuple[BaseRoute, bool]] = []
        for route in self.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                candidates.append((route, match == Match.FULL))
        if not candidates:
            return "unmatched", None, None
        fewest = min(_params(r) for r, _ in candidates)
        template = str(getattr(next(r for r, _ in candidates if _params(r) == fewest), "path", scope["path"]))
        for route, full in candidates:
            if full and getattr(route, "path", None) == template:
                extra = getattr(route, "openapi_extra", None) or {}
                needed = extra.get(SCOPE_FIELD)
                return template, (list(needed) if needed else None), None
        methods: set[str] = set()
        for r in self.routes:
            if getattr(r, "path", None) == template:
                methods |= set(getattr(r, "methods", None) or ())
        return template, None, sorted(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.ctx
        started = time.perf_counter()
        template, needed, allow = self._match(scope)
        method = scope.get("method", "GET")
        status_box = {"status": 500}
        key_id = "-"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = int(message["status"])
            await send(message)

        try:
            if allow is not None:
                detail = f"{method} is not supported here; allowed: {', '.join(allow)}"
                await send_json(
                    send_wrapper,
                    405,
                    {"error": "method_not_allowed", "detail": detail},
                    {"Allow": ", ".join(allow)},
                )
                return
            if needed is not None:
                principal_or_status = await self._authenticate(scope, needed)
                if not isinstance(principal_or_status, Principal):
                    status, body, headers = principal_or_status
                    await send_json(send_wrapper, status, body, headers)
                    return
                key_id = principal_or_status.key_id
                scope.setdefault("state", {})["principal"] = principal_or_status
            if (method, template) in self.json_bodies and _has_body(scope) and not _is_json(scope):
                # FastAPI would validate the bytes as the JSON body (a 422): the body is of another kind
                ctype = _content_type(scope)
                detail = f"the body must be application/json, not {ctype or 'one without a Content-Type'}"
                await send_json(send_wrapper, 415, {"error": "unsupported_media_type", "detail": detail})
                return
            await self._with_body_cap(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            ctx.metrics.observe_request(method, template, status_box["status"], elapsed)
            log.info("%s %s %s %.1fms key=%s", method, template, status_box["status"], elapsed * 1000, key_id)

    async def _authenticate(
        self, scope: Scope, needed: list[str]
    ) -> Principal | tuple[int, dict[str, Any], dict[str, str]]:
        ctx = self.ctx
        token = bearer_token(scope)
        principal: Principal | None = None
        if token is not None:
            if admin_matches(token, ctx.settings.admin_key.get_secret_value()):
                principal = admin_principal()
            else:
                try:
                    rec = await anyio.to_thread.run_sync(ctx.admin.verify_key, token)
                except STORE_OUTAGES:
                    return 503, {"error": "store_unavailable", "detail": "the store is unreachable"}, {}
                if rec is not None:
                    principal = Principal(rec.key_id, rec.name, frozenset(rec.scopes))
        if principal is None:
            client = scope.get("client") or ("-", 0)
            wait = ctx.auth_fail_limiter.take(f"auth-fail:{client[0]}")
            if wait > 0:
                return _too_many(wait)
            detail = "missing API key" if token is None else "invalid API key"
            return 401, {"error": "unauthorized", "detail": detail}, {"WWW-Authenticate": "Bearer"}
        if not principal.allowed(needed):
            return (
                403,
                {"error": "forbidden", "detail": f"this key lacks the scope: {' or '.join(needed)}"},
                {},
            )
        wait = ctx.limiter.take(principal.key_id)
        if wait > 0:
            return _too_many(wait)
        return principal

    async def _with_body_cap(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.ctx.settings.api_max_body_bytes
        if _declared_length(scope) > cap:
            await send_json(send, 413, _too_large(cap))
        elif scope.get("method") in ("POST", "PUT", "PATCH") and _is_json(scope):
            await self._json_body(scope, receive, send, cap)
        else:
            await self.app(scope, _capped(receive, cap), send)

    async def _json_body(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        """Read the (capped) body here, so that JSON numbers can be normalised before validation."""
        body = await _read_capped(receive, send, cap)
        if body is None:
            return
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            await send_json(send, 422, {"error": "invalid_request", "detail": "the body is not UTF-8 JSON"})
            return
        await self.app(scope, _replay(normalise_json(body), receive), send)


def _declared_length(scope: Scope) -> int:
    """The Content-Length header as a number; -1 when absent or not a number."""
    length = _header(scope, b"content-length")
    try:
        return int(length) if length is not None else -1
    except ValueError:
        return -1


async def _read_capped(receive: Receive, send: Send, cap: int) -> bytes | None:
    """The whole body; None when the client left, or when the body ran past ``cap`` (answered 413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            await send_json(send, 413, _too_large(cap))
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then whatever the client sends next."""
    sent = False

    async def replay_receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay_receive


def _capped(receive: Receive, cap: int) -> Receive:
    """A receive that raises BodyTooLarge once the body streamed to the app passes ``cap``."""
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise BodyTooLarge(cap)
        return message

    return limited_receive


def _params(route: BaseRoute) -> int:
    return len(getattr(route, "param_convertors", {}) or {})


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (length is not None and length.strip() != "0")


def _content_type(scope: Scope) -> str:
    return (_header(scope, b"content-type") or "").split(";")[0].strip().lower()


def _is_json(scope: Scope) -> bool:
    ctype = _content_type(scope)
    return ctype == "application/json" or ctype.endswith("+json")


def _integral(value: Any, changed: list[bool]) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        changed[0] = True
        return int(value)
    if isinstance(value, list):
        return [_integral(v, changed) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v, changed) for k, v in value.items()}
    return value


def normalise_json(raw: bytes) -> bytes:
    """JSON numbers with an integral value become integers (``3.0`` -> ``3``), as JSON Schema's
    ``integer`` has it; the strict models then accept exactly what the OpenAPI schema allows. A body that
    is not JSON passes through unchanged (and gets its 422)."""
    if b"." not in raw and b"e" not in raw and b"E" not in raw:
        return raw
    changed = [False]
    try:
        fixed = _integral(json.loads(raw), changed)
        return json.dumps(fixed).encode() if changed[0] else raw
    except (ValueError, RecursionError):
        return raw


def _too_many(wait_s: float) -> tuple[int, dict[str, Any], dict[str, str]]:
    retry = max(1, int(wait_s + 0.999))
    return (
        429,
        {"error": "rate_limited", "detail": f"too many requests; retry in {retry} s"},
        {"Retry-After": str(retry)},
    )


def _too_large(cap: int) -> dict[str, Any]:
    return {"error": "body_too_large", "detail": f"request body over {cap} bytes"}
