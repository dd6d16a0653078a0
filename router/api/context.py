"""What every request handler reaches: settings, the store (with short timeouts), the admin store, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from fastapi import Request

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
    503 rather than a hung request (the worker's clients keep their patient defaults). A replication wait
    (Settings.replication_wait) may hold an ingest for its own time-out on top."""
    t = settings.api_redis_timeout_s
    wait_s = settings.replica_wait_timeout_ms / 1000 if settings.replication_wait != "off" else 0.0
    return handle.client(socket_timeout_s=t + wait_s, connect_timeout_s=t, fail_fast=True)


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
