"""Authentication, authorisation and rate limits: every route x every scope, keys stored hashed."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from router.api.security import ANY_KEY, SCOPE_FIELD, SCOPES, normalize_scopes
from router.store.admin import AdminStore, hash_token
from router.store.store import RoutingStore
from tests.api.api_helpers import ADMIN, ADMIN_KEY, bearer, seed_agent, started

pytestmark = pytest.mark.timeout(120)

READ = {"routing:read", "routing:read:redacted"}
DL_READ = {"deadletter:read"}
DL_WRITE = {"deadletter:write"}
EV = {"events:write"}
AG = {"agents:write"}
ANY = {"*any*"}

_n = itertools.count()


def _req(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"method": method, "path": path, "body": body, "headers": headers or {}}


# The policy, written out independently of the code: (method, path template) -> scopes that grant it
POLICY: dict[tuple[str, str], set[str]] = {
    ("GET", "/metrics"): READ,
    ("GET", "/v1/whoami"): ANY,
    ("GET", "/v1/overview"): READ,
    ("POST", "/v1/events"): EV,
    ("GET", "/v1/agents"): READ,
    ("POST", "/v1/agents"): AG,
    ("GET", "/v1/agents/{agent_id}"): READ,
    ("DELETE", "/v1/agents/{agent_id}"): AG,
    ("PUT", "/v1/agents/{agent_id}/status"): AG,
    ("PATCH", "/v1/agents/{agent_id}/skills"): AG,
    ("GET", "/v1/agents/{agent_id}/suggested-skills"): READ,
    ("GET", "/v1/audit"): {"routing:read", "agents:write"},
    ("GET", "/v1/queues"): READ,
    ("GET", "/v1/contacts/{contact_id}"): READ,
    ("GET", "/v1/decisions"): READ,
    ("GET", "/v1/decisions/stream"): READ,
    ("GET", "/v1/deadletters"): DL_READ,
    ("GET", "/v1/deadletters/{entry_id}"): DL_READ,
    ("POST", "/v1/deadletters/{entry_id}/replay"): DL_WRITE,
    ("POST", "/v1/deadletters/replay"): DL_WRITE,
    ("DELETE", "/v1/deadletters/{entry_id}"): DL_WRITE,
    ("POST", "/v1/outcomes"): EV,
    ("GET", "/v1/stats/series"): READ,
    ("GET", "/v1/stats/agents"): READ,
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}


def request_for(op: tuple[str, str], store: RoutingStore) -> dict[str, Any]:
    """A well-formed request for ``op`` (a fresh agent where the request would consume one)."""
    method, path = op
    aid = f"m{next(_n)}"
    seed_agent(store, aid)
    concrete = path.replace("{agent_id}", aid).replace("{contact_id}", "c-none").replace("{entry_id}", "1-0")
    body: Any = None
    headers: dict[str, str] = {}
    if op == ("POST", "/v1/events"):
        body = started(f"c{next(_n)}")
    elif op == ("POST", "/v1/agents"):
        body = {"agent_id": f"new{next(_n)}"}
    elif op[1].endswith("/status"):
        body = {"status": "away"}
    elif op[1].endswith("/skills"):
        body, headers = {"eq": 4}, {"If-Match": "*"}
    elif op == ("POST", "/v1/outcomes"):
        body = {"contact_id": "c-none", "agent_id": aid, "csat": 4, "resolved": True}
    return _req(method, concrete, body, headers)


def call(client: TestClient, req: dict[str, Any], auth: dict[str, str]) -> int:
    kw: dict[str, Any] = {"headers": {**req["headers"], **auth}}
    if req["body"] is not None:
        kw["json"] = req["body"]
    return client.request(req["method"], req["path"], **kw).status_code


def openapi_ops(app: FastAPI) -> dict[tuple[str, str], list[str] | None]:
    spec = app.openapi()
    out = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            out[(method.upper(), path)] = op.get(SCOPE_FIELD)
    return out


def test_policy_table_matches_every_route_and_declaration(app: FastAPI) -> None:
    ops = openapi_ops(app)
    assert set(ops) == set(POLICY) | PUBLIC, "a route was added or removed: extend POLICY"
    for op, declared in ops.items():
        if op in PUBLIC:
            assert declared is None
            continue
        expected = POLICY[op]
        assert set(declared or []) == ({ANY_KEY} if expected == ANY else expected), op
        assert app.openapi()["paths"][op[1]][op[0].lower()]["security"], op


@pytest.mark.parametrize("scope", [*SCOPES, "deadletter:*"])
def test_auth_matrix_every_route_every_scope(
    client: TestClient, store: RoutingStore, key_for: Callable[..., str], scope: str
) -> None:
    """A key with one scope reaches exactly the routes that scope grants; everything else is 403."""
    token = key_for(*normalize_scopes([scope]))
    granted = set(normalize_scopes([scope]))
    for op, needed in POLICY.items():
        status = call(client, request_for(op, store), bearer(token))
        allowed = needed == ANY or bool(granted & needed)
        if allowed:
            assert status not in (401, 403), (scope, op, status)
        else:
            assert status == 403, (scope, op, status)


def test_every_scoped_route_is_401_without_a_valid_key(client: TestClient, store: RoutingStore) -> None:
    bad = [{}, bearer("mr_0123456789ab_not-the-secret"), bearer("nonsense"), {"Authorization": "Basic eDp5"}]
    for op in POLICY:
        for auth in bad:
            status = call(client, request_for(op, store), auth)
            assert status == 401, (op, auth, status)


def test_public_routes_and_the_dashboard_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_admin_key_has_every_scope(client: TestClient, store: RoutingStore) -> None:
    for op in POLICY:
        assert call(client, request_for(op, store), ADMIN) not in (401, 403), op
    me = client.get("/v1/whoami", headers=ADMIN).json()
    assert set(me["scopes"]) == set(SCOPES) and me["key_id"] == "admin"


def test_x_api_key_header_is_accepted(client: TestClient, key_for: Callable[..., str]) -> None:
    token = key_for("routing:read")
    assert client.get("/v1/queues", headers={"X-API-Key": token}).status_code == 200


def test_401_says_bearer_and_never_echoes_the_key(client: TestClient) -> None:
    r = client.get("/v1/queues", headers=bearer("mr_0123456789ab_secret-value"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"
    assert "secret-value" not in r.text


def test_keys_are_stored_hashed_and_revocation_is_immediate(
    client: TestClient, admin_store: AdminStore, store: RoutingStore
) -> None:
    rec, token = admin_store.create_key("wall", ["routing:read:redacted"])
    raw = store.client.hgetall(store.keys.api_keys)
    dump = json.dumps({k.decode(): v.decode() for k, v in raw.items()})
    assert token not in dump and token.split("_", 2)[2] not in dump
    assert hash_token(token) in dump and rec.sha256 == hash_token(token)
    assert client.get("/v1/queues", headers=bearer(token)).status_code == 200
    # a token with the right id and a wrong secret is refused (constant-time comparison of the hashes)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get("/v1/queues", headers=bearer(forged)).status_code == 401
    assert admin_store.revoke_key(rec.key_id)
    assert client.get("/v1/queues", headers=bearer(token)).status_code == 401
    assert [k.key_id for k in admin_store.list_keys()] == []


def test_unknown_scopes_are_refused_and_aliases_expand() -> None:
    assert normalize_scopes(["deadletter:*"]) == ("deadletter:read", "deadletter:write")
    assert set(normalize_scopes(["*"])) == set(SCOPES)
    with pytest.raises(ValueError, match="unknown scope"):
        normalize_scopes(["routing:write"])


def test_admin_key_disabled_when_empty(make_app: Callable[..., FastAPI]) -> None:
    from pydantic import SecretStr

    with TestClient(make_app(admin_key=SecretStr(""))) as c:
        assert c.get("/v1/queues", headers=bearer("")).status_code == 401
        assert c.get("/v1/queues", headers=ADMIN).status_code == 401


def test_rate_limit_429_per_key_with_retry_after(
    make_app: Callable[..., FastAPI], key_for: Callable[..., str]
) -> None:
    a, b = key_for("routing:read"), key_for("routing:read")
    with TestClient(make_app(api_rate_per_s=0.05, api_rate_burst=3)) as c:
        codes = [c.get("/v1/queues", headers=bearer(a)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.get("/v1/queues", headers=bearer(a))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "rate_limited"
        # another key has its own bucket
        assert c.get("/v1/queues", headers=bearer(b)).status_code == 200


def test_failed_authentications_are_rate_limited(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(api_auth_fail_per_s=0.1)) as c:
        codes = [c.get("/v1/queues", headers=bearer(f"wrong{i}")).status_code for i in range(8)]
        assert 401 in codes and codes[-1] == 429


def test_scope_denied_before_the_body_is_read(client: TestClient, key_for: Callable[..., str]) -> None:
    """A key without events:write gets 403 even for a malformed or oversized body."""
    token = key_for("routing:read")
    r = client.post(
        "/v1/events", content=b"{not json", headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert r.status_code == 403
    r = client.post("/v1/events", content=b"x" * 3_000_000, headers=bearer(token))
    assert r.status_code == 403
    assert (
        client.post(
            "/v1/events", content=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 401
    )


def test_redacted_key_reads_routing_without_admin_rights(
    client: TestClient, key_for: Callable[..., str]
) -> None:
    token = key_for("routing:read:redacted")
    assert client.get("/v1/whoami", headers=bearer(token)).json()["redacted"] is True
    assert client.get("/v1/audit", headers=bearer(token)).status_code == 403
    assert client.get("/v1/deadletters", headers=bearer(token)).status_code == 403


def test_admin_key_compared_by_hash(client: TestClient) -> None:
    assert client.get("/v1/whoami", headers=bearer(ADMIN_KEY + "x")).status_code == 401
    assert client.get("/v1/whoami", headers=bearer(ADMIN_KEY[:-1])).status_code == 401


def test_405_lists_every_method_of_the_path(client: TestClient) -> None:
    r = client.request("OPTIONS", "/v1/agents", headers=ADMIN)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = client.put("/v1/agents/a1", headers=ADMIN)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
    # the literal path wins over /v1/deadletters/{entry_id}
    r = client.get("/v1/deadletters/replay", headers=ADMIN)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert client.request("OPTIONS", "/v1/nothing-here", headers=ADMIN).status_code == 404


def test_integral_json_numbers_are_integers(client: TestClient) -> None:
    """JSON Schema's integer includes 5.0; strings stay strings and are refused."""
    r = client.post(
        "/v1/agents", json={"agent_id": "f1", "eq": 5.0, "capacity": {"chat": 2.0}}, headers=ADMIN
    )
    assert r.status_code == 201 and r.json()["eq"] == 5 and r.json()["capacity"]["chat"] == 2
    assert client.post("/v1/agents", json={"agent_id": "f2", "eq": 4.5}, headers=ADMIN).status_code == 422
    assert client.post("/v1/agents", json={"agent_id": "f3", "eq": "5"}, headers=ADMIN).status_code == 422
    ev = {"type": "contact.message", "contact_id": "c1", "seq": 2.0, "speaker": "customer", "text": "a 1.5 b"}
    assert client.post("/v1/events", json=ev, headers=ADMIN).status_code == 202
    bad = client.post(
        "/v1/events", content=b'{"type": "\xff"}', headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert bad.status_code == 422
