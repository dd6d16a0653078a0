"""The documented least-privilege ACL users are enough to run the router, and no more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.sim.demo import run_demo
from router.store.acl import setuser_command
from router.store.connect import open_store

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def acl_user(real_redis_admin_url: str) -> Iterator[tuple[str, str]]:
    """(worker URL, api URL) for two fresh ACL users."""
    admin = redis.Redis.from_url(real_redis_admin_url)
    names = []
    urls = []
    for role in ("worker", "api"):
        name, password = f"router-{role}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        admin.execute_command(*setuser_command(role, name, password))
        names.append(name)
        parts = urlsplit(real_redis_admin_url)
        urls.append(urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}")))
    yield urls[0], urls[1]
    for name in names:
        admin.execute_command("ACL", "DELUSER", name)
    admin.close()


def test_demo_runs_as_the_worker_user(acl_user: tuple[str, str], domain: str) -> None:
    worker_url, _ = acl_user
    settings = Settings(domain=domain, offer_timeout_s=3.0, claim_min_idle_ms=2_000, sweep_interval_s=0.2)
    with open_store(worker_url) as handle:
        report = run_demo(handle, settings, LexiconScorer(), contacts=40, seed=2, max_runtime_s=120)
    out = report.as_json()
    assert out["lost"] == 0 and out["over_capacity_max"] == 0, out


def test_users_are_refused_outside_their_rights(acl_user: tuple[str, str], domain: str) -> None:
    worker_url, api_url = acl_user
    worker = redis.Redis.from_url(worker_url)
    api = redis.Redis.from_url(api_url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.set("not-a-router-key", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.config_get("*")
    stream = f"router:{{{domain}}}:events"
    api.xadd(stream, {"event": "{}"})  # the API writes events ...
    with pytest.raises(redis.exceptions.NoPermissionError):
        api.xgroup_create(stream, "router", id="0")  # ... but does not consume them
    worker.close()
    api.close()
