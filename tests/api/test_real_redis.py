"""The API's own store code (Lua scripts, exclusive stream ranges) on a real server, not only fakeredis, as
the least-privilege API user: every route works with the API role's rights."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.api import create_app
from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.store.acl import setuser_command
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import (
    ADMIN,
    ADMIN_KEY,
    MOT_TEXT,
    available,
    drain,
    message,
    post,
    seed_agent,
    started,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]


@pytest.fixture
def real(real_redis_url: str, real_redis_admin_url: str) -> Iterator[tuple[TestClient, RoutingStore, Worker]]:
    """The API as a fresh least-privilege API user of its domain (router/store/acl.py); the worker as the
    suite's worker user."""
    settings = Settings(
        domain=f"apireal{uuid.uuid4().hex[:8]}", admin_key=SecretStr(ADMIN_KEY), api_sse_max_s=0.3
    )
    admin = redis.Redis.from_url(real_redis_admin_url)
    name, password = f"router-api-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin.execute_command(*setuser_command("api", name, password, settings.domain))
    parts = urlsplit(real_redis_admin_url)
    api_url = urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}"))
    store = RoutingStore(StoreHandle(url=real_redis_url, supports_blocking=True).client(), settings.domain)
    worker = Worker(store, LexiconScorer(), settings, consumer="real", supports_blocking=False)
    worker.ensure_group()
    with TestClient(create_app(settings, StoreHandle(url=api_url, supports_blocking=True))) as c:
        yield c, store, worker
    for key in admin.scan_iter(match=f"router:{{{settings.domain}}}:*", count=1000):
        admin.delete(key)
    admin.execute_command("ACL", "DELUSER", name)
    admin.close()


def test_flows_on_a_real_server(real: tuple[TestClient, RoutingStore, Worker]) -> None:
    client, store, worker = real
    seed_agent(store, "a1", eq=5)
    assert client.post("/v1/agents", json={"agent_id": "a2", "eq": 2}, headers=ADMIN).status_code == 201
    assert client.post("/v1/agents", json={"agent_id": "a2"}, headers=ADMIN).status_code == 409
    r = client.patch("/v1/agents/a2/skills", json={"eq": 3}, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    assert (
        client.patch("/v1/agents/a2/skills", json={"eq": 4}, headers={**ADMIN, "If-Match": '"1"'}).status_code
        == 412
    )
    dup = post(client, [available("a1"), started("c1", event_id="s1"), started("c1", event_id="s1")])
    assert [x["duplicate"] for x in dup["results"]] == [False, False, True]
    post(client, [message("c1", MOT_TEXT)])
    store.client.xadd(store.keys.events, {"event": b"{bad"})
    drain(worker)
    assert client.get("/v1/contacts/c1", headers=ADMIN).json()["agent_id"] == "a1"
    assert client.delete("/v1/agents/a1", headers=ADMIN).status_code == 409
    assert client.delete("/v1/agents/a2", headers=ADMIN).status_code == 204
    # exclusive stream bounds, including the ones real Redis refuses ("(0-0" as an upper bound)
    for path in ("/v1/decisions?before=0-0", "/v1/audit?before=0-0", "/v1/deadletters?before=0-0"):
        r = client.get(path, headers=ADMIN)
        assert r.status_code == 200 and r.json()["items"] == [], path
    items = client.get("/v1/decisions?limit=1", headers=ADMIN).json()
    assert client.get(f"/v1/decisions?before={items['next_before']}", headers=ADMIN).status_code == 200
    assert client.get("/v1/decisions/stream?after=0-0", headers=ADMIN).text.count("event: decision") >= 2
    dl = client.get("/v1/deadletters", headers=ADMIN).json()
    assert dl["count"] == 1
    assert client.post(f"/v1/deadletters/{dl['items'][0]['id']}/replay", headers=ADMIN).status_code == 409
    assert (
        client.post(
            "/v1/outcomes",
            json={"contact_id": "c1", "agent_id": "a1", "csat": 5, "resolved": True},
            headers=ADMIN,
        ).status_code
        == 201
    )
    assert client.get("/v1/agents/a2/suggested-skills", headers=ADMIN).status_code == 404
    assert "router_store_up 1.0" in client.get("/metrics", headers=ADMIN).text
    assert client.get("/readyz").status_code == 200
    for path in ("/v1/agents", "/v1/agents/a1", "/v1/audit", "/v1/queues", "/v1/overview", "/v1/whoami"):
        assert client.get(path, headers=ADMIN).status_code == 200, path
    # the dashboard's pictures read the capped logs the scripts keep (LRANGE, XREVRANGE) as the API user
    assert store.sample_floor(1, 1)
    series = client.get("/v1/stats/series", headers=ADMIN)
    assert series.status_code == 200 and series.json()["kpis"]["mot"]["contacts"] == 0
    assert client.get("/v1/stats/agents", headers=ADMIN).json()["total"] == 1
    assert client.get("/v1/agents?q=a&sort=-eq&language=en", headers=ADMIN).json()["total"] == 1
    assert client.put("/v1/agents/a1/status", json={"status": "away"}, headers=ADMIN).status_code == 202
    assert client.get("/v1/agents/a1/suggested-skills", headers=ADMIN).status_code == 200
    store.client.xadd(store.keys.events, {"event": b"{bad"})
    drain(worker)
    dl = client.get("/v1/deadletters", headers=ADMIN).json()
    assert client.get(f"/v1/deadletters/{dl['items'][0]['id']}", headers=ADMIN).status_code == 200
    assert client.delete(f"/v1/deadletters/{dl['items'][0]['id']}", headers=ADMIN).status_code == 204
    assert client.post("/v1/deadletters/replay", headers=ADMIN).status_code == 200
