"""API keys, scopes and the per-key rate limit.

Keys are ``mr_<key id>_<secret>``; only the SHA-256 of the whole token is stored (``AdminStore``) and it is
compared with ``hmac.compare_digest``. ``ROUTER_ADMIN_KEY`` holds every scope. Which scopes a route needs
is declared on the route (``requires``) and enforced by ``ApiGuard`` (router/api/middleware.py) before
any body is read or validated, so nothing is reachable without the right scope.

Rate limit: a token bucket per key, in process memory (``api_rate_per_s`` refill, ``api_rate_burst`` size).
Each API process limits on its own: N replicas behind a load balancer allow up to N times the rate. That
keeps the hot path free of an extra Redis round trip and keeps limiting working while Redis is down.
Failed authentications are limited per client address the same way (``api_auth_fail_per_s``).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

EVENTS_WRITE = "events:write"
AGENTS_WRITE = "agents:write"
ROUTING_READ = "routing:read"
ROUTING_READ_REDACTED = "routing:read:redacted"
DEADLETTER_READ = "deadletter:read"
DEADLETTER_WRITE = "deadletter:write"
SCOPES: tuple[str, ...] = (
    EVENTS_WRITE,
    AGENTS_WRITE,
    ROUTING_READ,
    ROUTING_READ_REDACTED,
    DEADLETTER_READ,
    DEADLETTER_WRITE,
)
ALIASES: dict[str, tuple[str, ...]] = {
    "deadletter:*": (DEADLETTER_READ, DEADLETTER_WRITE),
    "*": SCOPES,
}
READ = (ROUTING_READ, ROUTING_READ_REDACTED)
ANY_KEY = "authenticated"  # pseudo scope: any valid key
SCOPE_FIELD = "x-required-scopes"
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`router keys create`) or ROUTER_ADMIN_KEY",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def normalize_scopes(raw: Iterable[str]) -> tuple[str, ...]:
    """Expand aliases (``deadletter:*``, ``*``) and reject unknown scopes (ValueError)."""
    out: set[str] = set()
    for s in raw:
        s = s.strip()
        if not s:
            continue
        if s in ALIASES:
            out.update(ALIASES[s])
        elif s in SCOPES:
            out.add(s)
        else:
            raise ValueError(f"unknown scope {s!r}; known: {', '.join((*SCOPES, *ALIASES))}")
    return tuple(sorted(out))


def requires(*scopes: str) -> dict[str, Any]:
    """``openapi_extra`` of a route: any one of ``scopes`` grants it (ANY_KEY: any valid key)."""
    return {SCOPE_FIELD: list(scopes), "security": SECURITY}


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    def allowed(self, needed: Iterable[str]) -> bool:
        needed = tuple(needed)
        return ANY_KEY in needed or any(s in self.scopes for s in needed)

    @property
    def redacted(self) -> bool:
        """True when this key may read routing state but not message text."""
        return ROUTING_READ not in self.scopes


ADMIN_ID = "admin"


def admin_matches(token: str, admin_key: str) -> bool:
    if not admin_key:
        return False
    a = hashlib.sha256(token.encode("utf-8")).digest()
    b = hashlib.sha256(admin_key.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def admin_principal() -> Principal:
    return Principal(ADMIN_ID, "ROUTER_ADMIN_KEY", frozenset(SCOPES))


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """Token buckets keyed by an id; thread-safe. ``take`` answers 0 when allowed, else seconds to wait."""

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= self.max_keys:
                    self._evict(now)
                b = self._buckets[key] = _Bucket(float(self.burst), now)
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate_per_s)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate_per_s

    def _evict(self, now: float) -> None:
        # buckets that have refilled completely carry no state worth keeping
        full_after = self.burst / self.rate_per_s
        for k in [k for k, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
