"""`router keys create | list | revoke` (on an in-process store) and the keys they make."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from router import keys_cli
from router.store.admin import AdminStore
from tests.api.api_helpers import bearer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, admin_store: AdminStore) -> CliRunner:
    monkeypatch.setenv("ROUTER_REDIS_URL", "redis://unused.invalid:6379/0")
    monkeypatch.setattr(keys_cli, "_admin", lambda _s: admin_store)
    return CliRunner()


def test_create_list_revoke(cli: CliRunner, client: TestClient, admin_store: AdminStore) -> None:
    res = cli.invoke(keys_cli.keys_app, ["create", "--scopes", "routing:read,deadletter:*", "--name", "ops"])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[-1]
    assert token.startswith("mr_")
    me = client.get("/v1/whoami", headers=bearer(token)).json()
    assert me["scopes"] == ["deadletter:read", "deadletter:write", "routing:read"] and me["name"] == "ops"
    listed = cli.invoke(keys_cli.keys_app, ["list"])
    assert me["key_id"] in listed.stdout and token not in listed.stdout
    assert cli.invoke(keys_cli.keys_app, ["revoke", me["key_id"]]).exit_code == 0
    assert client.get("/v1/whoami", headers=bearer(token)).status_code == 401
    assert cli.invoke(keys_cli.keys_app, ["revoke", me["key_id"]]).exit_code == 1


def test_unknown_scope_and_missing_store(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    res = cli.invoke(keys_cli.keys_app, ["create", "--scopes", "routing:write"])
    assert res.exit_code == 2
    monkeypatch.setenv("ROUTER_REDIS_URL", "")
    assert cli.invoke(keys_cli.keys_app, ["create", "--scopes", "routing:read"]).exit_code == 2


def test_create_warns_about_a_domain_with_no_stream_and_no_agents(
    cli: CliRunner, admin_store: AdminStore
) -> None:
    """Issue 14: a key made for a misspelt domain was made without a word (it works only there)."""
    res = cli.invoke(keys_cli.keys_app, ["create", "--scopes", "routing:read"])
    assert res.exit_code == 0 and "has no events stream and no agents" in res.output, res.output
    admin_store.store.upsert_agent("a1", {"name": "A"})
    res = cli.invoke(keys_cli.keys_app, ["create", "--scopes", "routing:read"])
    assert res.exit_code == 0 and "no events stream" not in res.output, res.output
