"""Chaos harness (imported by the tests and their conftest): real redis-server and worker processes
on loopback, faults injected from outside, and an audit that reads every figure back from Redis: sent,
decided, dead-lettered, lost, duplicate decisions, over-capacity, load consistency."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import redis

from router.store.codec import agent_profile_fields
from router.store.reconcile import reconcile
from router.store.store import RoutingStore
from router.worker.consumer import is_group_lost

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "artifacts" / "chaos.jsonl"
REPORTED: list[str] = []  # this session's figure lines, printed in the terminal summary (the CI log)

TEXTS = [
    "what are your opening hours on saturday",
    "my card was stolen and someone is emptying my account, I am panicking",
    "can I get a copy of my last invoice please",
    "I want to speak to a real person",
    "our flight was cancelled and we are stranded with the kids, this is a nightmare",
    "thanks, that answers my question",
]


def _txt(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server child process we may SIGKILL and restart on the same port and data dir."""

    def __init__(
        self, workdir: Path, *, aof: bool, port: int | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("needs Debian's redis-server (scripts/test.sh installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.aof = aof
        self.extra = extra  # more server options (replicaof, cluster mode)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
        ]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else ["--appendonly", "no"]
        args += self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class WorkerPool:
    """`router worker` processes with short reclaim timers, their stderr kept for the failure message."""

    def __init__(self, url: str, domain: str, logdir: Path, **env: str) -> None:
        self.url, self.domain, self.logdir = url, domain, logdir
        self.env = {
            "ROUTER_REDIS_URL": url,
            "ROUTER_DOMAIN": domain,
            "ROUTER_CLAIM_MIN_IDLE_MS": "1000",
            "ROUTER_CLAIM_INTERVAL_S": "0.3",
            "ROUTER_BATCH_SIZE": "50",
            "ROUTER_OFFER_TIMEOUT_S": "3",
            "ROUTER_SCORER": "lexicon",  # these tests are about faults, not the model: fast start, no load
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "router", "worker", "--consumer", name],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.procs[name] = proc
        return proc

    def wait_ready(self, client: redis.Redis, stream: str, *names: str, timeout_s: float = 60) -> None:
        """Until each named worker has registered in the group (it has read at least once)."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = {_txt(c["name"]) for c in client.xinfo_consumers(stream, "router")}
            if set(names) <= seen:
                return
            assert time.monotonic() < deadline, (
                f"workers {set(names) - seen} never started: {self.log(names[0])}"
            )
            time.sleep(0.05)

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)
        self.procs[name].wait(60)

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every live worker; their exit codes (0 = finished its batch and acknowledged)."""
        codes = {}
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                codes[name] = proc.wait(60)
        for log in self._logs:
            log.close()
        return codes


def seed_agents(store: RoutingStore, n: int = 8) -> None:
    for a in range(n):
        fields = agent_profile_fields(
            name=f"A{a}", eq=1 + a % 5, languages=["en"], capacity={"chat": 2, "voice": 1}, tags=[]
        )
        store.upsert_agent(f"a{a}", {**fields, "status": "available"})


def event_mix(n_contacts: int, seed: int, prefix: str = "") -> list[dict[str, Any]]:
    """Contacts with 3 customer turns (routine, emotional, human requests) and an end, interleaved."""
    rng = random.Random(seed)
    per_contact: list[list[dict[str, Any]]] = []
    for i in range(n_contacts):
        cid = f"{prefix}c{i}"
        evs: list[dict[str, Any]] = [
            {
                "type": "contact.started",
                "contact_id": cid,
                "channel": rng.choice(["chat", "chat", "voice"]),
                "customer": {"id": f"u{i % 97}"},
            }
        ]
        for k in range(3):
            evs.append(
                {
                    "type": "contact.message",
                    "contact_id": cid,
                    "seq": k,
                    "speaker": "customer",
                    "text": rng.choice(TEXTS),
                }
            )
        evs.append({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})
        per_contact.append(evs)
    out: list[dict[str, Any]] = []
    # interleave contacts a few at a time, keeping each contact's own order
    while per_contact:
        batch = per_contact[:8]
        for evs in batch:
            out.append(evs.pop(0))
        per_contact = [evs for evs in per_contact if evs]
    return [{**e, "event_id": f"{prefix}e{n}"} for n, e in enumerate(out)]


def produce(client: redis.Redis, stream: str, events: list[dict[str, Any]], chunk: int = 500) -> None:
    for start in range(0, len(events), chunk):
        pipe = client.pipeline(transaction=False)
        for e in events[start : start + chunk]:
            pipe.xadd(stream, {"event": json.dumps(e)})
        pipe.execute()


@dataclass
class Figures:
    scenario: str
    sent: int = 0
    decided: int = 0
    dead_lettered: int = 0
    pending: int = 0
    lost: int = 0
    duplicate_decisions: int = 0
    over_capacity_max: int = 0
    load_inconsistencies: int = 0
    recovery_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def report(self) -> None:
        line = json.dumps(asdict(self))
        print(f"\nCHAOS {line}")
        REPORTED.append(line)
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        with FIGURES.open("a") as f:
            f.write(line + "\n")


def wait_drained(store: RoutingStore, group: str, sent: int, timeout_s: float) -> float:
    """Seconds until every sent event is applied or dead-lettered and nothing is pending."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        stats = store.stats()
        try:
            pending: Any = store.client.xpending(store.keys.events, group)
        except redis.ResponseError as exc:  # a failover lost the group: the workers create it again
            if not is_group_lost(exc):
                raise
            time.sleep(0.1)
            continue
        if stats.get("processed", 0) + stats.get("dead_letters", 0) >= sent and int(pending["pending"]) == 0:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"not drained after {timeout_s} s: {store.stats()}")


def audit(store: RoutingStore, scenario: str, sent: int, group: str = "router") -> Figures:
    stats = store.stats()
    pending: Any = store.client.xpending(store.keys.events, group)
    fig = Figures(
        scenario=scenario,
        sent=sent,
        decided=stats.get("processed", 0),
        dead_lettered=stats.get("dead_letters", 0),
        pending=int(pending["pending"]),
    )
    fig.lost = sent - fig.decided - fig.dead_lettered - fig.pending
    decisions = [json.loads(f[b"decision"]) for _, f in store.client.xrange(store.keys.decisions)]
    keys = Counter(
        (d["event_id"], d["contact_id"], d["action"]) for d in decisions if d["event_id"] not in ("", "sweep")
    )
    fig.duplicate_decisions = sum(c - 1 for c in keys.values() if c > 1)
    fig.over_capacity_max = _over_capacity(store, decisions)
    fig.load_inconsistencies = len(reconcile(store, dry_run=True).fixes)
    fig.notes["decisions"] = len(decisions)
    reasons = Counter(
        _txt(f.get(b"error", b"")).split(":")[0] for _, f in store.client.xrange(store.keys.deadletter)
    )
    fig.notes["dead_letter_reasons"] = dict(reasons)
    return fig


def _over_capacity(store: RoutingStore, decisions: list[dict[str, Any]]) -> int:
    """Replay offers (+1) and releases (-1) per agent and contact channel; worst excess over capacity, and
    the current loads against capacity."""
    agents = {a.view.agent_id: a.view for a in store.load_agents(0, 1)}
    channel: dict[str, str] = {}
    load: dict[tuple[str, str], int] = defaultdict(int)
    worst = 0
    for d in decisions:
        aid = d.get("agent_id")
        if not aid or aid not in agents:
            continue
        cid = d["contact_id"]
        if cid not in channel:
            rec = store.load_contact(cid)
            channel[cid] = rec.view.channel if rec else "chat"
        key = (aid, channel[cid])
        if d["action"] == "offer":
            load[key] += 1
            worst = max(worst, load[key] - agents[aid].capacity.get(channel[cid], 0))
        elif d["action"] == "released":
            load[key] -= 1
    for a in agents.values():
        for ch, n in a.load.items():
            worst = max(worst, n - a.capacity.get(ch, 0))
    return worst
