"""Queues, contacts, decisions and the live feed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import (
    ADMIN,
    MOT_TEXT,
    available,
    bearer,
    drain,
    message,
    post,
    seed_agent,
    sse_events,
    started,
)

pytestmark = pytest.mark.timeout(60)


def _floor(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    """One high-EQ agent with one chat slot; c1 a moment of truth (offered), c2 and c3 queue behind it."""
    seed_agent(store, "a1", eq=5, chat=1)
    seed_agent(store, "a2", eq=2, chat=1, languages=("de",))
    post(client, [available("a1"), available("a2")])
    for cid in ("c1", "c2", "c3"):
        post(client, [started(cid), message(cid, MOT_TEXT)])
    drain(worker)


def test_queues_depth_wait_ewt_and_agents(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    _floor(client, store, worker)
    body = client.get("/v1/queues", headers=ADMIN).json()
    q = {x["name"]: x for x in body["queues"]}
    assert set(q) == {"mot", "general"}
    mot = q["mot"]
    assert mot["depth"] == 2 and mot["longest_wait_s"] >= 0
    assert mot["min_eq_now"] == 4 and mot["eligible_agents"] == 1 and mot["free_agents"] == 0
    assert mot["ewt_s"] > 0 and mot["ewt_sd_s"] > 0
    assert q["general"]["eligible_agents"] == 2 and q["general"]["min_eq_now"] == 1
    assert isinstance(mot["callback_offered"], bool) and mot["callback_threshold_s"] == 60.0


def test_queues_show_a_contact_nobody_takes_as_stuck_and_never_a_zero_wait(
    app: FastAPI, client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    """Issue 14: a Spanish contact on a floor of free English speakers. /v1/queues said every agent was free,
    an expected wait of 0 s, and showed nothing wrong."""
    for aid in ("a1", "a2", "a3"):
        seed_agent(store, aid, eq=3, chat=1)
    post(client, [available("a1"), available("a2"), available("a3")])
    es = started("c1", customer={"id": "u-c1", "language": "es"})
    post(client, [es, {"type": "contact.human_requested", "contact_id": "c1"}])
    drain(worker)
    general = _queues(client)["general"]
    assert (general["depth"], general["free_agents"]) == (1, 3)
    assert general["ewt_s"] > 0 and general["ewt_sd_s"] > 0  # was 0: three free agents, one waiting
    assert (general["stuck"], general["stuck_contacts"]) == (0, [])  # not yet: 60 s
    real_clock = app.state.ctx.clock
    app.state.ctx.clock = lambda: real_clock() + 120
    general = _queues(client)["general"]
    assert general["stuck"] == 1 and general["ewt_s"] > 0
    (stuck,) = general["stuck_contacts"]
    assert stuck["contact_id"] == "c1" and stuck["code"] == "stuck" and stuck["waited_s"] >= 120
    assert "3 agents had a free chat slot" in stuck["reason"] and "3 without the language" in stuck["reason"]
    assert _queues(client)["mot"]["stuck"] == 0


def _queues(client: TestClient) -> dict[str, dict[str, Any]]:
    r = client.get("/v1/queues", headers=ADMIN)
    assert r.status_code == 200, r.text
    return {q["name"]: q for q in r.json()["queues"]}


def test_contact_state_trajectory_transcript_and_decisions(
    client: TestClient, store: RoutingStore, worker: Worker, key_for: Callable[..., str]
) -> None:
    _floor(client, store, worker)
    c = client.get("/v1/contacts/c1", headers=ADMIN).json()
    assert c["status"] == "offered" and c["agent_id"] == "a1" and c["moment_of_truth"] is True
    assert c["trajectory"]["turns"] == 1 and c["trajectory"]["peak"] > 0.5
    assert c["transcript"][0]["text"] == MOT_TEXT and c["transcript"][0]["speaker"] == "customer"
    assert c["redacted"] is False
    codes = {r["code"] for d in c["decisions"] for r in d["reasons"]}
    assert "to_mot_queue" in codes and c["decisions"][-1]["action"] == "offer"
    assert c["mot_reasons"]


def test_redacted_key_gets_no_message_text(
    client: TestClient, store: RoutingStore, worker: Worker, key_for: Callable[..., str]
) -> None:
    _floor(client, store, worker)
    r = client.get("/v1/contacts/c1", headers=bearer(key_for("routing:read:redacted")))
    c = r.json()
    assert c["redacted"] is True and c["transcript"][0]["text"] is None
    assert MOT_TEXT not in r.text


def test_unknown_contact_is_404_and_bad_id_422(client: TestClient) -> None:
    r = client.get("/v1/contacts/nobody", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"] == "contact_not_found"
    assert client.get("/v1/contacts/bad id", headers=ADMIN).status_code == 422


def test_contact_id_naming_another_key_is_404(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    _floor(client, store, worker)
    # router:{d}:contact:c1:history is a list, not a contact hash
    assert client.get("/v1/contacts/c1:history", headers=ADMIN).status_code == 404


def test_decisions_recent_filtered_and_paged(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    _floor(client, store, worker)
    allof = client.get("/v1/decisions?limit=500", headers=ADMIN).json()["items"]
    assert len(allof) >= 3 and all("reasons" in d and d["id"] for d in allof)
    ids = [d["id"] for d in allof]
    assert ids == sorted(ids, key=lambda s: tuple(int(x) for x in s.split("-")), reverse=True)
    offers = client.get("/v1/decisions?action=offer", headers=ADMIN).json()["items"]
    assert {d["contact_id"] for d in offers} == {"c1"}
    mot = client.get("/v1/decisions?mot=true&limit=500", headers=ADMIN).json()["items"]
    routine = client.get("/v1/decisions?mot=false&limit=500", headers=ADMIN).json()["items"]
    assert mot and all(d["moment_of_truth"] for d in mot) and not any(d["moment_of_truth"] for d in routine)
    assert len(mot) + len(routine) == len(allof)
    assert client.get("/v1/decisions?contact_id=c2", headers=ADMIN).json()["items"][0]["contact_id"] == "c2"
    assert client.get("/v1/decisions?agent_id=a1&queue=mot", headers=ADMIN).json()["items"]
    page = client.get("/v1/decisions?limit=1", headers=ADMIN).json()
    assert page["next_before"] == page["items"][0]["id"] == ids[0]
    nxt = client.get(f"/v1/decisions?limit=1&before={page['next_before']}", headers=ADMIN).json()
    assert nxt["items"][0]["id"] == ids[1]
    for bad in ("limit=0", "limit=501", "action=teleport", "before=abc", "queue=vip", "mot=maybe"):
        assert client.get(f"/v1/decisions?{bad}", headers=ADMIN).status_code == 422, bad


def test_live_feed_sends_new_decisions_and_resumes(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    seed_agent(store, "a1", eq=5)
    post(client, [available("a1"), started("c0"), message("c0", "what are your opening hours")])
    drain(worker)
    last = client.get("/v1/decisions?limit=1", headers=ADMIN).json()["items"][0]["id"]
    post(client, [started("c1"), message("c1", MOT_TEXT)])
    drain(worker)
    r = client.get(f"/v1/decisions/stream?after={last}", headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events and all(e["event"] == "decision" for e in events)
    assert {e["data"]["contact_id"] for e in events} == {"c1"}
    assert events[0]["id"] == events[0]["data"]["id"]
    # resume after the first one with Last-Event-ID; filters apply
    again = sse_events(client.get("/v1/decisions/stream", headers={**ADMIN, "Last-Event-ID": last}).text)
    assert [e["id"] for e in again] == [e["id"] for e in events]
    mot_only = sse_events(client.get("/v1/decisions/stream?after=0-0&mot=true", headers=ADMIN).text)
    assert mot_only and all(e["data"]["moment_of_truth"] for e in mot_only)
    # without a position it starts at the end: nothing old is replayed
    assert sse_events(client.get("/v1/decisions/stream", headers=ADMIN).text) == []


def test_live_feed_delivers_while_open(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    import threading

    seed_agent(store, "a1", eq=5)
    post(client, [available("a1")])
    drain(worker)

    def later() -> None:
        post(client, [started("c9"), message("c9", MOT_TEXT)])
        drain(worker)

    t = threading.Timer(0.1, later)
    t.start()
    r = client.get("/v1/decisions/stream", headers=ADMIN)
    t.join()
    assert "c9" in {e["data"]["contact_id"] for e in sse_events(r.text)}


def test_overview_counts(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    _floor(client, store, worker)
    o = client.get("/v1/overview", headers=ADMIN).json()
    assert o["domain"] == store.domain and o["stats"]["processed"] >= 8
    assert o["agents"] == {"available": 2, "away": 0, "offline": 0}
    assert o["queues"]["mot"] == 2 and o["workers"] == 1 and o["offers_pending"] == 1
