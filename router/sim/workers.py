"""Who runs the engine during a simulation, and on whose clock.

Accelerated time: the simulator owns a clock of simulated seconds and advances it from one scheduled
moment to the next; every engine (in this process or in N worker processes) reads that clock, so offer
time-outs, the escalation ladder, ageing and wait estimates all act in simulated seconds while the run
takes as long as the work does. Between two moments the simulator waits until the consumer group has
drained (nothing undelivered, nothing pending), which keeps a run repeatable and the engine's view of the
time exact.

- ``InProcessPump``: one ``Worker`` in this process, stepped by hand (works on fakeredis, which cannot
  block on XREADGROUP).
- ``ProcessPump``: N worker processes on a real server, each a plain ``Worker.run()`` whose engine reads the
  shared clock from shared memory.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import redis

from router.errors import RouterError
from router.scoring.factory import build_scorer
from router.scoring.protocol import EmotionScore, EmotionScorer
from router.settings import Settings
from router.store.codec import as_str
from router.store.store import RoutingStore
from router.worker.consumer import Worker

log = logging.getLogger(__name__)

# emotion: emotion scoring and outcome-aware matching; ladder: emotion scoring and the fixed EQ ladder, no
# outcome learning; skills_only: no emotion scoring, EQ unknown to the router
Mode = Literal["emotion", "ladder", "skills_only"]
DRAIN_TIMEOUT_S = 60.0


class ManualClock:
    """Simulated seconds since the epoch, set by the simulator; engines call it."""

    def __init__(self, t: float) -> None:
        self._t = t

    def set(self, t: float) -> None:
        self._t = t

    def __call__(self) -> float:
        return self._t


class SharedClock:
    """The same clock in shared memory, readable by worker processes (a double, no lock needed: one
    writer, and the writer only moves it while the workers are idle)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def set(self, t: float) -> None:
        self.value.value = t

    def __call__(self) -> float:
        return float(self.value.value)


class NoEmotionScorer:
    """Skills-only routing: no emotion model. Every turn scores zero intensity, no topic and no request
    for a person, so nothing is ever a moment of truth; a customer reaches a human with the explicit
    "talk to a person" button (``contact.human_requested``), as with a plain IVR or chatbot."""

    name = "none"

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        return [EmotionScore(intensity=0.0, source="none") for _ in texts]


def make_scorer(settings: Settings, mode: Mode) -> EmotionScorer:
    if mode == "skills_only":
        return NoEmotionScorer()
    return build_scorer(settings)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def group_state(r: redis.Redis, stream: str, group: str) -> tuple[int, str]:
    """(pending, last-delivered-id) of the consumer group."""
    for g in r.xinfo_groups(stream):
        if as_str(g["name"]) == group:
            return int(g["pending"]), as_str(g["last-delivered-id"])
    return 0, "0-0"


class Clock(Protocol):
    def set(self, t: float) -> None: ...

    def __call__(self) -> float: ...


class Pump(Protocol):
    @property
    def clock(self) -> Clock: ...

    def drain(self, last_id: str) -> float:
        """Block until every entry up to ``last_id`` is handled; returns the seconds it took."""
        ...

    def close(self) -> dict[str, Any]: ...


class _DrainMixin:
    r: redis.Redis
    stream: str
    group: str

    def _drained(self, last_id: str) -> bool:
        pending, delivered = group_state(self.r, self.stream, self.group)
        return pending == 0 and _id_key(delivered) >= _id_key(last_id)


class InProcessPump(_DrainMixin):
    def __init__(
        self, store: RoutingStore, scorer: EmotionScorer, settings: Settings, clock: ManualClock
    ) -> None:
        self.r = store.client
        self.stream = store.keys.events
        self.group = settings.group
        self.clock = clock
        self.worker = Worker(store, scorer, settings, consumer="sim-inproc", supports_blocking=False)
        self.worker.engine.clock = clock
        self.worker.ensure_group()

    def drain(self, last_id: str) -> float:
        t0 = time.perf_counter()
        deadline = t0 + DRAIN_TIMEOUT_S
        while True:
            while self.worker.run_once():
                pass
            if self._drained(last_id):
                return time.perf_counter() - t0
            if time.perf_counter() > deadline:
                raise RouterError(
                    f"the engine did not drain the stream up to {last_id} in {DRAIN_TIMEOUT_S} s"
                )
            time.sleep(0.01)  # an entry left pending for retry: the worker's reclaim timer takes it back

    def close(self) -> dict[str, Any]:
        s = self.worker.stats
        return {
            "processed": s.processed,
            "dead_lettered": s.dead_lettered,
            "retried": s.retried,
            "reclaimed": s.reclaimed,
        }


def _worker_main(
    settings_json: str,
    url: str,
    mode: Mode,
    index: int,
    clock_value: Any,
    stop: Any,
    ready: Any,
    results: Any,
) -> None:
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s sim-worker-{index} %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.model_validate_json(settings_json)
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=30.0)
    store = RoutingStore(client, settings.domain, seen_ttl_s=settings.seen_ttl_s)
    scorer = make_scorer(settings, mode)
    scorer.score(["warm-up: is my flight on time?"])
    w = Worker(store, scorer, settings, consumer=f"sim-{index}-{os.getpid()}", supports_blocking=True)
    w.engine.clock = SharedClock(clock_value)
    w.ensure_group()
    stop_on(stop, w)
    ready.set()
    w.run()
    s = w.stats
    results.put(
        {
            "index": index,
            "processed": s.processed,
            "dead_lettered": s.dead_lettered,
            "retried": s.retried,
            "reclaimed": s.reclaimed,
            "batches": s.batches,
            "scorer": scorer.name,
        }
    )


def stop_on(event: Any, worker: Worker) -> None:
    """Stop ``worker`` (after its current batch) when the parent sets ``event``."""

    def watch() -> None:
        event.wait()
        worker.stop()

    threading.Thread(target=watch, daemon=True).start()


class ProcessPump(_DrainMixin):
    """N worker processes (spawned: a clean interpreter each, as `router worker` would be)."""

    def __init__(
        self,
        n: int,
        url: str,
        store: RoutingStore,
        settings: Settings,
        mode: Mode,
        t0: float,
        *,
        ready_timeout_s: float = 180.0,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.r = store.client
        self.stream = store.keys.events
        self.group = settings.group
        value = ctx.Value("d", t0, lock=False)
        self.clock = SharedClock(value)
        self._stop = ctx.Event()
        self._results: Any = ctx.Queue()
        self._procs: list[Any] = []
        readies = []
        for i in range(n):
            ready = ctx.Event()
            p = ctx.Process(
                target=_worker_main,
                args=(settings.model_dump_json(), url, mode, i, value, self._stop, ready, self._results),
                name=f"sim-worker-{i}",
                daemon=True,
            )
            p.start()
            self._procs.append(p)
            readies.append(ready)
        deadline = time.monotonic() + ready_timeout_s
        for p, ready in zip(self._procs, readies, strict=True):
            while not ready.wait(0.2):
                if not p.is_alive() or time.monotonic() > deadline:
                    self.close()
                    raise RouterError(f"simulation worker {p.name} did not start (exit code {p.exitcode})")

    def drain(self, last_id: str) -> float:
        t0 = time.perf_counter()
        deadline = t0 + DRAIN_TIMEOUT_S
        pause = 0.0002
        while not self._drained(last_id):
            if time.perf_counter() > deadline:
                raise RouterError(
                    f"the workers did not drain the stream up to {last_id} in {DRAIN_TIMEOUT_S} s"
                )
            if not all(p.is_alive() for p in self._procs):
                raise RouterError("a simulation worker process died")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)
        return time.perf_counter() - t0

    def close(self) -> dict[str, Any]:
        self._stop.set()
        stats: list[dict[str, Any]] = []
        for p in self._procs:
            p.join(15)
            if p.is_alive():
                p.terminate()
                p.join(5)
        with contextlib.suppress(Exception):
            while len(stats) < len(self._procs):
                stats.append(self._results.get(timeout=0.5))
        return {
            "workers": len(self._procs),
            "scorer": str(stats[0]["scorer"]) if stats else "",
            "processed": sum(int(s["processed"]) for s in stats),
            "dead_lettered": sum(int(s["dead_lettered"]) for s in stats),
            "retried": sum(int(s["retried"]) for s in stats),
            "reclaimed": sum(int(s["reclaimed"]) for s in stats),
            "per_worker_processed": [
                int(s["processed"]) for s in sorted(stats, key=lambda s: int(s["index"]))
            ],
        }


def worker_settings(settings: Settings, workers: int) -> Settings:
    """Settings for the engines of a simulation: the simulator sweeps in simulated time itself, so the
    workers' own real-time sweep is off; torch threads are shared out between processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = settings.torch_threads or max(1, cores // max(1, workers))
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "sweep_interval_s": 1e9,
            "claim_min_idle_ms": 1_000,
            "claim_interval_s": 0.5,
            "torch_threads": threads,
        }
    )
