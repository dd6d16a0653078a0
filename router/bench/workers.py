"""The engine worker processes a benchmark measures: started together, instrumented from inside (round
trips, sweeps, floor reads, batch and scoring time), and what their figures add up to."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import time
import uuid
from typing import Any

import redis

from router.errors import RouterError
from router.settings import Settings
from router.sim.workers import stop_on
from router.store.store import RoutingStore


def bench_worker(
    settings_json: str, url: str, index: int, ready: Any, go: Any, stop: Any, results: Any
) -> None:
    logging.basicConfig(
        level=logging.WARNING, format=f"bench-worker-{index} %(levelname)s %(name)s: %(message)s"
    )
    from router.scoring.factory import build_scorer
    from router.worker.consumer import Worker

    settings = Settings.model_validate_json(settings_json)
    client = redis.Redis.from_url(url, socket_timeout=60.0)
    store = RoutingStore(client, settings.domain, seen_ttl_s=settings.seen_ttl_s)
    scorer = build_scorer(settings)
    scorer.score(["warm-up: is my flight on time?", "my card was stolen"])
    w = Worker(store, scorer, settings, consumer=f"bench-{index}-{os.getpid()}")
    w.ensure_group()
    trips = _count_round_trips(client)
    sweep = _time_calls(w.engine, "sweep")
    agents = _time_calls(store, "agent_snapshot")  # reads of the whole floor, not the cached answers
    batches = _time_calls(w, "apply")  # every batch applies here; with score-ahead, scoring is elsewhere
    scoring = _time_calls(scorer, "score")
    stop_on(stop, w)
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    w.run()
    s = w.stats
    results.put(
        {
            "index": index,
            "processed": s.processed,
            "retried": s.retried,
            "reclaimed": s.reclaimed,
            "batches": s.batches,
            "cpu_s": time.process_time() - cpu0,
            "scorer": scorer.name,
            "round_trips": trips[0],
            "sweeps": sweep[0],
            "sweep_s": sweep[1],
            "sweep_max_s": sweep[2],
            "agent_snapshots": agents[0],
            "agent_snapshot_s": agents[1],
            "conflicts": w.engine.counters.conflicts,
            "batch_s": batches[1],
            "score_s": scoring[1],
            "batch_max_s": batches[2],
        }
    )


def _count_round_trips(client: redis.Redis) -> list[int]:
    """Count this client's round trips (a command, or a whole pipeline) from the worker's side; a
    measuring instrument of the bench worker process only."""
    count = [0]
    execute_command: Any = client.execute_command

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return execute_command(*args, **kwargs)

    client.execute_command = counted  # type: ignore[method-assign]
    pipeline: Any = client.pipeline

    def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        def run(*a: Any, **k: Any) -> Any:
            count[0] += 1
            return execute(*a, **k)

        pipe.execute = run
        return pipe

    client.pipeline = counted_pipeline  # type: ignore[method-assign]
    return count


def _time_calls(obj: Any, name: str) -> list[float]:
    """[calls, seconds, longest] of ``obj.name``, wrapped in place (instrument of the bench worker)."""
    acc = [0.0, 0.0, 0.0]
    fn = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            dt = time.perf_counter() - t
            acc[0] += 1
            acc[1] += dt
            acc[2] = max(acc[2], dt)

    setattr(obj, name, timed)
    return acc


class WorkerPool:
    """N engine worker processes that load their scorer first and start consuming together on ``go``."""

    def __init__(self, n: int, url: str, settings: Settings, ready_timeout_s: float = 300.0) -> None:
        ctx = mp.get_context("spawn")
        self._go = ctx.Event()
        self._stop = ctx.Event()
        self._results: Any = ctx.Queue()
        self.procs: list[Any] = []
        readies = []
        for i in range(n):
            ready = ctx.Event()
            p = ctx.Process(
                target=bench_worker,
                args=(settings.model_dump_json(), url, i, ready, self._go, self._stop, self._results),
                daemon=True,
                name=f"bench-worker-{i}",
            )
            p.start()
            self.procs.append(p)
            readies.append(ready)
        deadline = time.monotonic() + ready_timeout_s
        for p, ready in zip(self.procs, readies, strict=True):
            while not ready.wait(0.2):
                if not p.is_alive() or time.monotonic() > deadline:
                    self.close()
                    raise RouterError(f"bench worker {p.name} did not start (exit code {p.exitcode})")

    def go(self) -> None:
        self._go.set()

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    def close(self) -> list[dict[str, Any]]:
        self._go.set()
        self._stop.set()
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join(5)
        out: list[dict[str, Any]] = []
        with contextlib.suppress(Exception):
            while len(out) < len(self.procs):
                out.append(self._results.get(timeout=1.0))
        return out


def bench_settings(base: Settings, scorer: str, workers: int) -> Settings:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Settings.model_validate(
        {
            **base.model_dump(),
            "domain": f"bench-{scorer}-{workers}-{uuid.uuid4().hex[:6]}",
            "scorer": scorer,
            "torch_threads": base.torch_threads or max(1, cores // workers),
        }
    )


def where_time_went(results: list[dict[str, Any]], n: int, elapsed: float) -> dict[str, Any]:
    """Where the workers' time went, summed over workers."""
    if not results:
        return {}
    busy = elapsed * len(results)
    return {
        "round_trips_per_event": round(sum(int(x["round_trips"]) for x in results) / n, 2),
        "agent_snapshots_per_event": round(sum(float(x["agent_snapshots"]) for x in results) / n, 2),
        "agent_snapshot_share_of_worker_time": round(
            sum(float(x["agent_snapshot_s"]) for x in results) / busy, 3
        ),
        "sweeps": int(sum(float(x["sweeps"]) for x in results)),
        "sweep_share_of_worker_time": round(sum(float(x["sweep_s"]) for x in results) / busy, 3),
        "sweep_max_ms": round(max(float(x["sweep_max_s"]) for x in results) * 1000, 1),
        "conflicts": sum(int(x["conflicts"]) for x in results),
        "batch_max_ms": round(max(float(x["batch_max_s"]) for x in results) * 1000, 1),
        # time applying batches (state, routing, Redis), and time in the scorer: with score-ahead the two
        # overlap (the scorer runs on the helper thread), so they may add up to more than 1
        "busy_share": round(sum(float(x["batch_s"]) for x in results) / busy, 3),
        "scoring_share_of_time": round(sum(float(x["score_s"]) for x in results) / busy, 3),
    }
