"""POST /v1/events and the agents routes: validation, idempotency, size cap, If-Match, audit, status."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import ADMIN, MOT_TEXT, available, drain, message, post, seed_agent, started

pytestmark = pytest.mark.timeout(60)


def _events(store: RoutingStore) -> list[dict[str, object]]:
    return [json.loads(f[b"event"]) for _, f in store.client.xrange(store.keys.events)]


# ---- events ---------------------------------------------------------------------------------------------


def test_post_one_event_and_a_batch(client: TestClient, store: RoutingStore) -> None:
    one = post(client, started("c1"))
    assert one["accepted"] == 1 and one["results"][0]["event_id"] is None
    batch = post(client, [message("c1", "hello", seq=0), message("c1", "there", seq=1, event_id="m2")])
    assert [r["index"] for r in batch["results"]] == [0, 1]
    assert batch["results"][1]["event_id"] == "m2"
    evs = _events(store)
    assert [e["type"] for e in evs] == ["contact.started", "contact.message", "contact.message"]
    assert evs[2]["text"] == "there" and evs[2]["event_id"] == "m2"


def test_event_id_is_the_idempotency_key(client: TestClient, store: RoutingStore) -> None:
    first = post(client, started("c1", event_id="e-1"))
    again = post(client, [started("c1", event_id="e-1"), started("c2", event_id="e-2")])
    assert again["duplicates"] == 1 and again["accepted"] == 1
    assert again["results"][0]["stream_id"] == first["results"][0]["stream_id"]
    assert again["results"][0]["duplicate"] is True
    # twice in one batch: the second is the duplicate
    twice = post(client, [started("c3", event_id="e-3"), started("c3", event_id="e-3")])
    assert [r["duplicate"] for r in twice["results"]] == [False, True]
    assert len(_events(store)) == 3


def test_an_event_id_reused_with_other_content_is_refused(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    """Issue 14: the API answered 202 "duplicate": false and the workers dropped the event silently."""
    post(client, [started("c1", event_id="s1"), message("c1", "hello", event_id="m1")])
    same = post(client, {"event_id": "m1", **message("c1", "hello"), "schema_version": 1})
    assert same["results"][0]["duplicate"] is True
    r = client.post("/v1/events", json=[started("c2"), message("c1", "other", event_id="m1")], headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "conflicting_duplicate", r.text
    assert "event 1: event_id m1" in r.json()["detail"]
    twice = [message("c1", "a", seq=1, event_id="m2"), message("c1", "b", seq=1, event_id="m2")]
    assert client.post("/v1/events", json=twice, headers=ADMIN).status_code == 409
    assert len(_events(store)) == 2  # nothing of the refused batches was written
    # an event_id the workers applied from the stream (not posted here) is checked too
    store.client.xadd(store.keys.events, {"event": json.dumps(message("c1", "direct", seq=2, event_id="m3"))})
    drain(worker)
    r = client.post("/v1/events", json=message("c1", "posted", seq=2, event_id="m3"), headers=ADMIN)
    assert r.status_code == 409


def test_idempotency_key_header_names_events_without_id(client: TestClient, store: RoutingStore) -> None:
    a = post(client, started("c1"), **{"Idempotency-Key": "req-7"})
    b = post(client, started("c1"), **{"Idempotency-Key": "req-7"})
    assert a["results"][0]["event_id"] == "req-7" and b["results"][0]["duplicate"] is True
    batch = post(client, [started("c2"), started("c3", event_id="own")], **{"Idempotency-Key": "req-8"})
    assert [r["event_id"] for r in batch["results"]] == ["req-8.0", "own"]
    assert len(_events(store)) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"type": "contact.teleported", "contact_id": "c1"},
        {"type": "contact.started", "contact_id": "c1", "channel": "fax", "customer": {"id": "u"}},
        {"type": "contact.message", "contact_id": "c1", "seq": "one", "speaker": "customer", "text": "x"},
        {"type": "contact.ended", "contact_id": "c1", "csat": 9},
        {"type": "agent.status", "agent_id": "a1", "status": "available", "extra": 1},
        [],
        [started("ok"), {"type": "nope"}],
        "just a string",
    ],
)
def test_invalid_events_are_422_and_nothing_is_written(
    client: TestClient, store: RoutingStore, body: object
) -> None:
    r = client.post("/v1/events", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and r.json()["errors"]
    assert store.client.xlen(store.keys.events) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "contact.message", "contact_id": "c1", "seq": 1' + b"0" * 38 + b', "speaker": "customer", '
        b'"text": "x"}',
        b'{"type": "contact.ended", "contact_id": "c1", "ts": Infinity}',
        b'{"type": "contact.ended", "contact_id": "c1", "ts": 1e400}',
        b'{"type": "contact.ended", "contact_id": "c1", "ts": NaN}',
    ],
)
def test_unbounded_seq_and_ts_are_422(client: TestClient, store: RoutingStore, raw: bytes) -> None:
    """Issue 14: seq 10^38 and ts Infinity or 1e400 were accepted."""
    r = client.post("/v1/events", content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert store.client.xlen(store.keys.events) == 0


def test_batch_errors_name_the_cause(make_app: Callable[..., FastAPI], store: RoutingStore) -> None:
    """Issue 14: every batch error said "body: Input should be a valid dictionary ..." (the one-event branch
    of the body's union), whatever the cause."""
    bad_channel = {"type": "contact.started", "contact_id": "c2", "channel": "fax", "customer": {"id": "u"}}
    cases = [
        ([started(f"c{i}") for i in range(4)], "the batch holds 4 events; at most 3 are allowed"),
        ([], "the batch is empty: send at least one event"),
        ([started("c1"), bad_channel], "event 1 (contact.started), field channel: Input should be 'voice'"),
        ([started("c1"), {"type": "nope"}], "event 1: Input tag 'nope'"),
        (
            message("c1", "x", seq=-1),
            "contact.message, field seq: Input should be greater than or equal to 0",
        ),
        ("just a string", "the body must be a JSON object (an event) or a JSON array (a batch of events)"),
    ]
    with TestClient(make_app(api_max_batch=3)) as c:
        for body, detail in cases:
            r = c.post("/v1/events", json=body, headers=ADMIN)
            assert r.status_code == 422 and r.json()["detail"].startswith(detail), (body, r.json())
            if isinstance(body, list):
                assert all("valid dictionary" not in e["msg"] for e in r.json()["errors"])
    assert store.client.xlen(store.keys.events) == 0


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(client: TestClient, store: RoutingStore, ctype: str | None) -> None:
    """Issue 14: a text/plain body got 422."""
    headers = {**ADMIN, **({"Content-Type": ctype} if ctype else {})}
    r = client.post("/v1/events", content=json.dumps(started("c1")).encode(), headers=headers)
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type", r.text
    r = client.post("/v1/agents", content=b'{"agent_id": "a9"}', headers=headers)
    assert r.status_code == 415
    assert store.client.xlen(store.keys.events) == 0
    assert client.post("/v1/deadletters/replay", headers=headers).status_code == 200  # takes no body
    assert "415" in client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]["responses"]


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/events", content=b"{nope", headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_batch_over_the_limit_is_422(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(api_max_batch=3)) as c:
        r = c.post("/v1/events", json=[started(f"c{i}") for i in range(4)], headers=ADMIN)
        assert r.status_code == 422


def test_body_over_the_cap_is_413(make_app: Callable[..., FastAPI], store: RoutingStore) -> None:
    with TestClient(make_app(api_max_body_bytes=2_048)) as c:
        big = message("c1", "x" * 4_000)
        r = c.post("/v1/events", json=big, headers=ADMIN)
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"

        def chunks():  # no Content-Length: the cap applies while streaming
            for _ in range(10):
                yield b" " * 1_000

        r = c.post("/v1/events", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.post("/v1/events", json=started("c1"), headers=ADMIN).status_code == 202
    assert store.client.xlen(store.keys.events) == 1


def test_posted_events_are_routed_by_the_workers(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    seed_agent(store, "a1", eq=5)
    post(client, [available("a1"), started("c1"), message("c1", MOT_TEXT)])
    drain(worker)
    c = client.get("/v1/contacts/c1", headers=ADMIN).json()
    assert c["moment_of_truth"] is True and c["agent_id"] == "a1" and c["status"] == "offered"


def test_no_message_text_in_logs_at_info(
    client: TestClient, worker: Worker, store: RoutingStore, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "zebra-quartz-sentinel stolen card"
    caplog.set_level(logging.INFO)
    post(client, [started("c1"), message("c1", secret)])
    client.post("/v1/events", json=message("c1", secret, seq="x"), headers=ADMIN)  # type: ignore[arg-type]
    drain(worker)
    client.get("/v1/contacts/c1", headers=ADMIN)
    client.get("/v1/decisions?contact_id=c1", headers=ADMIN)
    assert any(r.name == "router.api.access" for r in caplog.records)
    for rec in caplog.records:
        if rec.levelno >= logging.INFO:
            assert "zebra-quartz" not in rec.getMessage(), rec.getMessage()


# ---- agents ---------------------------------------------------------------------------------------------


def _create(client: TestClient, agent_id: str = "a1", **extra: object) -> dict[str, object]:
    r = client.post("/v1/agents", json={"agent_id": agent_id, **extra}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_list_agent(client: TestClient) -> None:
    r = client.post(
        "/v1/agents",
        json={
            "agent_id": "a1",
            "name": "Dana",
            "eq": 5,
            "languages": ["en", "es", "en"],
            "capacity": {"chat": 3},
        },
        headers=ADMIN,
    )
    assert r.status_code == 201
    assert r.headers["etag"] == '"1"' and r.headers["location"] == "/v1/agents/a1"
    a = r.json()
    assert a["eq"] == 5 and a["languages"] == ["en", "es"] and a["capacity"]["chat"] == 3
    assert a["status"] == "offline"
    g = client.get("/v1/agents/a1", headers=ADMIN)
    assert g.status_code == 200 and g.headers["etag"] == '"1"' and g.json()["name"] == "Dana"
    _create(client, "a2")
    assert [x["agent_id"] for x in client.get("/v1/agents", headers=ADMIN).json()["items"]] == ["a1", "a2"]
    assert client.get("/v1/agents?status=available", headers=ADMIN).json()["items"] == []


def test_create_existing_agent_is_409(client: TestClient) -> None:
    _create(client)
    r = client.post("/v1/agents", json={"agent_id": "a1", "eq": 1}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "agent_exists"
    assert client.get("/v1/agents/a1", headers=ADMIN).json()["eq"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"agent_id": "a1", "eq": 6},
        {"agent_id": "a1", "eq": "5"},
        {"agent_id": "a:1"},
        {"agent_id": "a1", "languages": []},
        {"agent_id": "a1", "languages": ["English"]},
        {"agent_id": "a1", "capacity": {"fax": 1}},
        {"agent_id": "a1", "capacity": {"chat": None}},
        {"agent_id": "a1", "tags": ["a,b"]},
        {"agent_id": "a1", "unknown": 1},
    ],
)
def test_create_agent_validation_is_422(client: TestClient, body: dict[str, object]) -> None:
    assert client.post("/v1/agents", json=body, headers=ADMIN).status_code == 422


def test_get_unknown_agent_is_404(client: TestClient) -> None:
    r = client.get("/v1/agents/nobody", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"] == "agent_not_found"


def test_skills_patch_with_if_match(client: TestClient) -> None:
    _create(client, eq=2, capacity={"chat": 2, "voice": 1})
    r = client.patch(
        "/v1/agents/a1/skills", json={"eq": 5, "tags": ["fraud", "vip"]}, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    assert r.json()["eq"] == 5 and r.json()["tags"] == ["fraud", "vip"] and r.json()["capacity"]["voice"] == 1
    r = client.patch(
        "/v1/agents/a1/skills", json={"capacity": {"chat": 4}}, headers={**ADMIN, "If-Match": 'W/"2"'}
    )
    assert r.status_code == 200 and r.json()["capacity"] == {
        "chat": 4,
        "email": 0,
        "sms": 0,
        "social": 0,
        "voice": 0,
    }
    r = client.patch("/v1/agents/a1/skills", json={"languages": ["de"]}, headers={**ADMIN, "If-Match": "*"})
    assert r.status_code == 200 and r.json()["languages"] == ["de"] and r.json()["version"] == 4


def test_stale_if_match_is_412_and_changes_nothing(client: TestClient) -> None:
    _create(client)
    client.patch("/v1/agents/a1/skills", json={"eq": 4}, headers={**ADMIN, "If-Match": '"1"'})
    r = client.patch("/v1/agents/a1/skills", json={"eq": 1}, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 412 and r.json()["error"] == "precondition_failed" and r.headers["etag"] == '"2"'
    assert client.get("/v1/agents/a1", headers=ADMIN).json()["eq"] == 4


def test_missing_if_match_is_428(client: TestClient) -> None:
    _create(client)
    r = client.patch("/v1/agents/a1/skills", json={"eq": 4}, headers=ADMIN)
    assert r.status_code == 428 and r.json()["error"] == "precondition_required"


@pytest.mark.parametrize("body", [{}, {"eq": None}, {"eq": 0}, {"eq": 5.5}, {"colour": "red"}])
def test_bad_skills_patch_is_422(client: TestClient, body: dict[str, object]) -> None:
    _create(client)
    r = client.patch("/v1/agents/a1/skills", json=body, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 422


def test_malformed_if_match_is_422_and_unknown_agent_404(client: TestClient) -> None:
    _create(client)
    assert (
        client.patch("/v1/agents/a1/skills", json={"eq": 2}, headers={**ADMIN, "If-Match": "v1"}).status_code
        == 422
    )
    r = client.patch("/v1/agents/zz/skills", json={"eq": 2}, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 404


def test_every_profile_change_is_audited(client: TestClient, key_for: Callable[..., str]) -> None:
    sup = key_for("agents:write", "routing:read", name="supervisor")
    auth = {"Authorization": f"Bearer {sup}"}
    client.post("/v1/agents", json={"agent_id": "a1", "eq": 2}, headers=auth)
    client.patch("/v1/agents/a1/skills", json={"eq": 5}, headers={**auth, "If-Match": '"1"'})
    client.delete("/v1/agents/a1", headers=auth)
    page = client.get("/v1/audit?agent_id=a1", headers=auth).json()
    actions = [
        (e["action"], e["before"] and e["before"]["eq"], e["after"] and e["after"]["eq"])
        for e in page["items"]
    ]
    assert actions == [("delete", 5, None), ("update", 2, 5), ("create", None, 2)]
    me = client.get("/v1/whoami", headers=auth).json()["key_id"]
    assert {e["who"] for e in page["items"]} == {me}
    assert all(e["ts"] for e in page["items"])
    one = client.get("/v1/audit?limit=1", headers=auth).json()
    assert len(one["items"]) == 1 and one["next_before"] == one["items"][0]["id"]
    rest = client.get(f"/v1/audit?limit=10&before={one['next_before']}", headers=auth).json()
    assert [e["action"] for e in rest["items"]] == ["update", "create"]
    assert client.get("/v1/audit?agent_id=other", headers=auth).json()["items"] == []


def test_eq_edit_applies_to_the_next_decision(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    """A moment of truth goes to eq>=4 agents; raising a2 to 5 (and sending a1 offline) makes it a2's."""
    for aid, eq in (("a1", 4), ("a2", 2)):
        _create(client, aid, eq=eq, capacity={"chat": 2})
    post(client, [available("a1"), available("a2")])
    drain(worker)
    etag = client.get("/v1/agents/a2", headers=ADMIN).headers["etag"]
    assert (
        client.patch("/v1/agents/a2/skills", json={"eq": 5}, headers={**ADMIN, "If-Match": etag}).status_code
        == 200
    )
    assert client.put("/v1/agents/a1/status", json={"status": "offline"}, headers=ADMIN).status_code == 202
    post(client, [started("c1"), message("c1", MOT_TEXT)])
    drain(worker)
    offers = client.get("/v1/decisions?action=offer", headers=ADMIN).json()["items"]
    assert offers and offers[0]["agent_id"] == "a2" and offers[0]["moment_of_truth"] is True


def test_status_goes_through_the_events_stream(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    _create(client)
    r = client.put("/v1/agents/a1/status", json={"status": "available"}, headers=ADMIN)
    assert r.status_code == 202
    ev = _events(store)[-1]
    assert ev == {
        "type": "agent.status",
        "event_id": r.json()["event_id"],
        "agent_id": "a1",
        "status": "available",
    }
    drain(worker)
    assert client.get("/v1/agents/a1", headers=ADMIN).json()["status"] == "available"
    assert client.put("/v1/agents/zz/status", json={"status": "away"}, headers=ADMIN).status_code == 404
    assert client.put("/v1/agents/a1/status", json={"status": "asleep"}, headers=ADMIN).status_code == 422


def test_delete_agent(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    _create(client)
    assert client.delete("/v1/agents/a1", headers=ADMIN).status_code == 204
    assert client.get("/v1/agents/a1", headers=ADMIN).status_code == 404
    assert client.delete("/v1/agents/a1", headers=ADMIN).status_code == 404
    assert "a1" not in store.agent_ids()


def test_delete_agent_holding_work_is_409(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    _create(client, eq=5)
    post(client, [available("a1"), started("c1"), message("c1", MOT_TEXT)])
    drain(worker)
    r = client.delete("/v1/agents/a1", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "agent_busy"
    assert client.get("/v1/agents/a1", headers=ADMIN).status_code == 200
