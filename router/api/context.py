"""What every request handler reaches: settings, the store (with short timeouts), the admin store, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from fastapi import Request
from redis.backoff import NoBackoff
from redis.retry import Retry

from router.api.metrics import ApiMetrics
from router.domain.policy import PolicyConfig
from router.scoring.protocol import EmotionScorer
from router.settings import Settings
from router.store.admin import AdminStore
from router.store.connect import StoreHandle
from router.store.store import RoutingStore

if TYPE_CHECKING:
    from router.api.security import Principal, RateLimiter


def api_client(handle: StoreHandle, settings: Settings) -> redis.Redis:
    """A client that fails fast: short socket timeouts and no retries, so an unreachable store is a quick
    503 rather than a hung request (the worker's clients keep their patient defaults)."""
    if handle.url is None:
        return handle.client()
    t = settings.api_redis_timeout_s
    return redis.Redis.from_url(
        handle.url,
        socket_connect_timeout=t,
        socket_timeout=t,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=10,
    )


@dataclass
class ApiContext:
    settings: Settings
    handle: StoreHandle
    client: redis.Redis
    store: RoutingStore
    admin: AdminStore
    policy: PolicyConfig
    limiter: RateLimiter
    auth_fail_limiter: RateLimiter
    metrics: ApiMetrics
    scorer: EmotionScorer | None
    clock: Callable[[], float] = time.time


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def get_principal(request: Request) -> Principal:
    """The authenticated key; ApiGuard sets it before any scoped handler runs."""
    principal: Principal = request.state.principal
    return principal
