"""(a) The raw limit: a pipelined XADD + XREADGROUP + XACK loop in Python, on the bench's server."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis

RAW_BATCH = 100


def raw_limit(r: redis.Redis, n: int = 100_000, batch: int = RAW_BATCH) -> float:
    """Messages per second through XADD (pipelined by ``batch``) + XREADGROUP + XACK, one client."""
    stream = f"bench:{{raw-{uuid.uuid4().hex[:8]}}}:events"
    group = "bench"
    r.xgroup_create(stream, group, id="0", mkstream=True)
    payload = json.dumps(
        {
            "type": "contact.message",
            "event_id": "e0000000",
            "contact_id": "c000000",
            "seq": 1,
            "speaker": "customer",
            "text": "my flight was cancelled an hour before boarding and nobody at the gate is helping us",
        }
    ).encode()
    done = 0
    t0 = time.perf_counter()
    try:
        while done < n:
            pipe = r.pipeline(transaction=False)
            for _ in range(batch):
                pipe.xadd(stream, {"event": payload})
            pipe.execute()
            res: Any = r.xreadgroup(group, "raw", {stream: ">"}, count=batch)
            ids = [eid for eid, _ in res[0][1]] if res else []
            if ids:
                r.xack(stream, group, *ids)
            done += len(ids)
        return done / (time.perf_counter() - t0)
    finally:
        r.delete(stream)
