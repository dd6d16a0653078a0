"""Decision latency: events written at a steady rate to one running worker, timed to their decisions."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from router.bench.responder import Responder, settled
from router.bench.workers import WorkerPool, bench_settings, where_time_went
from router.bench.workload import clear_domain, prepare_domain
from router.events import Decision
from router.settings import Settings


def paced_latency(
    url: str, base: Settings, scorer: str, rate: float, events: list[dict[str, Any]], duration_s: float
) -> dict[str, Any]:
    """Write ``events`` at ``rate`` per second to one running worker; decision latency = the decision's
    ts (taken as the engine makes it) minus the moment the event was written."""
    settings = bench_settings(base, scorer, 1)
    r = redis.Redis.from_url(url)
    store = prepare_domain(r, settings)
    pool = WorkerPool(1, url, settings)
    responder = Responder(url, store)
    pool.go()
    responder.start()
    sent_at: dict[str, float] = {}
    n = min(len(events), max(1, int(rate * duration_s)))
    t0 = time.perf_counter()
    i = 0
    last = "0-0"
    try:
        while i < n:
            target = min(n, int(rate * (time.perf_counter() - t0)) + 1)
            if target > i:
                batch = events[i:target]
                pipe = r.pipeline(transaction=False)
                for e in batch:
                    pipe.xadd(store.keys.events, {"event": json.dumps(e)})
                now = time.time()
                ids = pipe.execute()
                for e in batch:
                    sent_at[e["event_id"]] = now
                last = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
                i = target
            time.sleep(0.002)
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            if settled(r, store.keys.events, settings.group, last, responder):
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
    finally:
        responder.close()
        results = pool.close()
    lat: list[float] = []
    cursor = "0-0"
    while True:
        res: Any = r.xread({store.keys.decisions: cursor}, count=5_000)
        if not res:
            break
        for entry_id, fields in res[0][1]:
            cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            d = Decision.model_validate_json(fields[b"decision"])
            if d.event_id in sent_at:
                lat.append((d.ts - sent_at[d.event_id]) * 1000.0)
    clear_domain(r, settings.domain)
    r.close()
    lat.sort()

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 2) if lat else None

    return {
        "rate_events_per_s": round(rate, 1),
        "events": i,
        "offers_accepted": responder.sent,
        "achieved_events_per_s": round(i / elapsed, 1) if elapsed > 0 else None,
        "decisions_timed": len(lat),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(lat[-1], 2) if lat else None,
        **where_time_went(results, i, elapsed),
    }
