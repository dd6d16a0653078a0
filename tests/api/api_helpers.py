"""Helpers of the API suite (``from tests.api.api_helpers import ...``). Fixtures live in conftest.py beside
this file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from fastapi.testclient import TestClient

from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore
from router.worker.consumer import Worker

ADMIN_KEY = "admin-key-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MOT_TEXT = "My card was stolen and someone is emptying my account"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def drain(worker: Worker, rounds: int = 50) -> int:
    """Run the worker until the events stream has nothing left for it."""
    total = 0
    idle = 0
    for _ in range(rounds):
        n = worker.run_once()
        total += n
        idle = idle + 1 if n == 0 else 0
        if idle >= 2:
            break
    return total


def seed_agent(
    store: RoutingStore, agent_id: str, *, eq: int = 3, languages: Iterable[str] = ("en",), chat: int = 2
) -> None:
    fields = agent_profile_fields(
        name=f"Agent {agent_id}", eq=eq, languages=list(languages), capacity={"chat": chat}, tags=[]
    )
    store.upsert_agent(agent_id, fields)


def post(client: TestClient, events: list[dict[str, Any]] | dict[str, Any], **headers: str) -> Any:
    r = client.post("/v1/events", json=events, headers={**ADMIN, **headers})
    assert r.status_code == 202, r.text
    return r.json()


def started(contact_id: str, channel: str = "chat", **extra: Any) -> dict[str, Any]:
    return {
        "type": "contact.started",
        "contact_id": contact_id,
        "channel": channel,
        "customer": {"id": f"u-{contact_id}", "language": "en"},
        **extra,
    }


def message(contact_id: str, text: str, seq: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "type": "contact.message",
        "contact_id": contact_id,
        "seq": seq,
        "speaker": "customer",
        "text": text,
        **extra,
    }


def available(agent_id: str) -> dict[str, Any]:
    return {"type": "agent.status", "agent_id": agent_id, "status": "available"}


def sse_events(raw: str) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into {'event', 'id', 'data'} dicts (data JSON-decoded)."""
    out = []
    for block in raw.split("\n\n"):
        ev: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            field, _, value = line.partition(":")
            ev[field] = value.lstrip(" ")
        if "data" in ev:
            ev["data"] = json.loads(ev["data"])
            out.append(ev)
    return out


def wait_until(pred: Any, timeout_s: float = 5.0, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return bool(pred())
