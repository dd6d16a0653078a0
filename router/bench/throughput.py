"""(b) and (c): worker processes drain a pre-loaded backlog; events per second and where the time went."""

from __future__ import annotations

import time
from typing import Any

import redis

from router.bench.cpu import StealMeter
from router.bench.responder import Responder, settled
from router.bench.server import commandstats, server_cpu_s
from router.bench.workers import WorkerPool, bench_settings, where_time_went
from router.bench.workload import BENCH_AGENTS, clear_domain, load_backlog, prepare_domain
from router.errors import RouterError
from router.settings import Settings

# commands the benchmark itself sends (progress polling, the responder reading decisions), not the engine
HARNESS_COMMANDS = frozenset({"info", "xinfo", "xinfo|groups", "xrevrange", "xread"})


def engine_throughput(
    url: str,
    base: Settings,
    scorer: str,
    workers: int,
    events: list[dict[str, Any]],
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Drain a pre-loaded backlog of ``events`` with ``workers`` processes; events/s from the go signal to
    the last acknowledgement, plus where the time went."""
    settings = bench_settings(base, scorer, workers)
    r = redis.Redis.from_url(url)
    store = prepare_domain(r, settings)
    last = load_backlog(r, store.keys.events, events)
    pool = WorkerPool(workers, url, settings)
    responder = Responder(url, store)
    stats0 = commandstats(r)
    server_cpu0 = server_cpu_s(r)
    steal = StealMeter()
    t0 = time.perf_counter()
    pool.go()
    responder.start()
    try:
        while not settled(r, store.keys.events, settings.group, last, responder):
            if responder.error is not None:
                raise RouterError(f"the bench responder failed: {responder.error}")
            if time.perf_counter() - t0 > timeout_s:
                raise RouterError(
                    f"{workers} {scorer} worker(s) did not drain {len(events)} events in {timeout_s:.0f} s"
                )
            if not pool.alive():
                raise RouterError("a bench worker died")
            # each poll is two Redis calls and some Python on the very cores the measured worker uses: every
            # 20 ms is a quarter of the load of every 5 ms, and the drain time is still known to 20 ms (0.1%
            # of a 20 s run)
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        steal_share = steal.share()
    finally:
        responder.close()
        results = pool.close()
    server_cpu = server_cpu_s(r) - server_cpu0
    stats1 = commandstats(r)
    n = len(events) + BENCH_AGENTS + responder.sent
    calls = {k: stats1.get(k, 0) - stats0.get(k, 0) for k in stats1}
    calls = {k: v for k, v in calls.items() if v > 0 and k not in HARNESS_COMMANDS}
    messages = sum(1 for e in events if e["type"] == "contact.message")
    counters = store.stats()
    clear_domain(r, settings.domain)
    r.close()
    return {
        "workers": workers,
        "scorer": results[0]["scorer"] if results else scorer,
        "events": n,
        "offers_accepted": responder.sent,
        "messages": messages,
        "seconds": round(elapsed, 2),
        "events_per_s": round(n / elapsed, 1),
        "messages_per_s": round(messages / elapsed, 1),
        "redis_calls_per_event": round(sum(calls.values()) / n, 2),
        "redis_calls_by_command_per_event": {
            k: round(v / n, 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:8]
        },
        "worker_cpu_ms_per_event": round(sum(float(x["cpu_s"]) for x in results) * 1000 / n, 3),
        "server_cpu_ms_per_event": round(server_cpu * 1000 / n, 3),
        "decisions": counters.get("decisions", 0),
        "dead_letters": counters.get("dead_letters", 0),
        "retried": sum(int(x["retried"]) for x in results),
        "reclaimed": sum(int(x["reclaimed"]) for x in results),
        "cpu_steal_share": steal_share,
        **where_time_went(results, n, elapsed),
    }
