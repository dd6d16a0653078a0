"""Real worker processes on a real redis-server: SIGKILL mid-batch, another worker claims the work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import pytest
import redis

from router.store.codec import agent_profile_fields
from router.store.keys import Keys
from router.store.store import RoutingStore

TEXTS = [
    "what are your opening hours",
    "my card was stolen and someone is emptying my account, I am panicking",
    "can I get a copy of my invoice",
    "I want to speak to a real person",
]


def _events(n_contacts: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n_contacts):
        cid = f"c{i}"
        out.append(
            {"type": "contact.started", "contact_id": cid, "channel": "chat", "customer": {"id": f"u{i}"}}
        )
        for k in range(3):
            out.append(
                {
                    "type": "contact.message",
                    "contact_id": cid,
                    "seq": k,
                    "speaker": "customer",
                    "text": TEXTS[(i + k) % len(TEXTS)],
                }
            )
        out.append({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})
    return [{**e, "event_id": f"e{n}"} for n, e in enumerate(out)]


def _worker(url: str, domain: str, name: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ROUTER_REDIS_URL": url,
        "ROUTER_DOMAIN": domain,
        "ROUTER_CLAIM_MIN_IDLE_MS": "1000",
        "ROUTER_CLAIM_INTERVAL_S": "0.3",
        "ROUTER_BATCH_SIZE": "50",
        "ROUTER_SCORER": "lexicon",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "router", "worker", "--consumer", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


@pytest.mark.slow
@pytest.mark.redis
def test_sigkill_mid_batch_loses_nothing(real_redis_url: str, domain: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(real_redis_url)
    store = RoutingStore(client, domain)
    keys = Keys(domain)
    for a in range(6):
        fields = agent_profile_fields(
            name=f"A{a}", eq=1 + a % 5, languages=["en"], capacity={"chat": 2}, tags=[]
        )
        store.upsert_agent(f"a{a}", {**fields, "status": "available"})
    client.xgroup_create(keys.events, "router", id="0", mkstream=True)
    events = _events(600)
    pipe = client.pipeline(transaction=False)
    for e in events:
        pipe.xadd(keys.events, {"event": json.dumps(e)})
    pipe.execute()

    victim_log = (tmp_path / "victim.log").open("wb")
    survivor_log = (tmp_path / "survivor.log").open("wb")
    first = _worker(real_redis_url, domain, "victim", victim_log)
    killed_with_pending = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = client.xpending_range(keys.events, "router", "-", "+", 1000, consumername="victim")
        if len(rows) > 0 and store.stats().get("processed", 0) > 200:
            killed_with_pending = len(rows)
            first.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    first.wait(10)
    assert killed_with_pending > 0, "the victim never held a batch"

    second = _worker(real_redis_url, domain, "survivor", survivor_log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stats = store.stats()
            done = stats.get("processed", 0) + stats.get("dead_letters", 0)
            pending: Any = client.xpending(keys.events, "router")
            if done >= len(events) and int(pending["pending"]) == 0:
                break
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, (tmp_path / "survivor.log").read_text()[-2000:]
        victim_log.close()
        survivor_log.close()

    stats = store.stats()
    assert stats.get("processed", 0) == len(events)  # each event applied exactly once: none lost, none twice
    assert stats.get("dead_letters", 0) == 0
    decisions = [json.loads(f[b"decision"]) for _, f in client.xrange(keys.decisions)]
    by_event = Counter((d["event_id"], d["contact_id"], d["action"]) for d in decisions if d["event_id"])
    assert max(by_event.values()) == 1, "a redelivered event produced a second decision"
    for rec in store.load_agents(0, 1):
        for channel, load in rec.view.load.items():
            assert 0 <= load <= rec.view.capacity.get(channel, 0)
    print(
        f"\nsigkill: {len(events)} events, victim held {killed_with_pending} unacked; "
        f"processed {stats['processed']}, decisions {len(decisions)}, duplicates 0"
    )
    client.close()
