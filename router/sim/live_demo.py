"""`router demo --api`: the simulated floor, an in-process worker and the API, running until stopped.

The floor is ``router.sim.demo.DemoFloor`` in real time. Unlike the batch demo it never finishes: when a
wave of contacts is done another starts (fresh contact ids), and the worker keeps consuming, so events
posted through the API and agent status changes from the dashboard are routed while the page is open.
Simulated agents answer offers; agents created through the API do not (their offers time out). After each
accepted offer the floor records a post-contact outcome, so suggested EQ changes have data to work on.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from pydantic import SecretStr

from router.api.serve import ApiServer
from router.events import Decision
from router.scoring.protocol import EmotionScorer
from router.settings import Settings
from router.sim.corpus_lines import load_lines
from router.sim.demo import DemoFloor, Journey, build_agents, build_journeys
from router.store.admin import INGEST_WINDOW_MS, AdminStore
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker

log = logging.getLogger(__name__)


class LiveFloor(DemoFloor):
    """DemoFloor that tolerates agents and contacts it did not create and records outcomes."""

    admin: AdminStore | None = None

    def _react(self, d: Decision, now: float) -> None:
        if d.agent_id is not None and d.agent_id not in self.agents:
            return  # an agent created through the API: nobody plays it, its offer times out
        if d.contact_id not in self.journeys:
            return  # a contact posted through the API
        super()._react(d, now)
        if d.action == "offer" and d.agent_id and self.admin is not None:
            self._outcome(d)

    def _outcome(self, d: Decision) -> None:
        """CSAT from the agent's true empathy (the simulated skill, whatever the EQ tag says) plus noise."""
        agent = self.agents[d.agent_id or ""]
        base = 4.6 if agent.eq >= 4 else 4.2 if not d.moment_of_truth else 3.0
        csat = max(1, min(5, round(base + self.rng.gauss(0, 0.7))))
        resolved = self.rng.random() < (0.9 if agent.eq >= 4 or not d.moment_of_truth else 0.7)
        assert self.admin is not None
        self.admin.record_outcome(
            contact_id=d.contact_id,
            agent_id=agent.agent_id,
            mot=d.moment_of_truth,
            csat=csat,
            resolved=resolved,
            who="demo",
        )

    def _event(self, pipe: Any, ev: dict[str, Any]) -> None:
        """As DemoFloor, plus the ingest time the API's decision-latency metric reads (api:ingest)."""
        eid = f"e{next(self._ids)}"
        now = self.clock()
        self.sent_at[eid] = now
        pipe.xadd(self.store.keys.events, {"event": json.dumps({**ev, "event_id": eid})})
        pipe.zadd(self.store.keys.api_ingest, {eid: int(now * 1000)})
        if self.sent % 500 == 0:
            pipe.zremrangebyscore(self.store.keys.api_ingest, "-inf", int(now * 1000) - INGEST_WINDOW_MS)

    def schedule(self, t0: float, journeys: list[Journey]) -> None:
        """Add a wave of journeys starting at ``t0`` (DemoFloor.seed without re-creating agents)."""
        for j in journeys:
            self.journeys[j.contact_id] = j
            self.schedule_journey(j, t0 + j.start_s)

    def idle(self) -> bool:
        return not self._heap and all(j.ended for j in self.journeys.values())


def run_live_demo(
    settings: Settings,
    handle: StoreHandle,
    scorer: EmotionScorer,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    contacts: int = 300,
    seed: int = 7,
    on_ready: Callable[[str, str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``). ``on_ready(url, admin_key)`` is called once serving;
    the admin key is ROUTER_ADMIN_KEY, or a generated one."""
    key = settings.admin_key.get_secret_value() or secrets.token_urlsafe(24)
    settings = settings.model_copy(update={"admin_key": SecretStr(key)})
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def handler(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    store = RoutingStore(handle.client(), settings.domain, seen_ttl_s=settings.seen_ttl_s)
    worker = Worker(store, scorer, settings, consumer="demo-worker", supports_blocking=False)
    worker.ensure_group()
    rng = random.Random(seed)
    lines = load_lines()
    span = max(5.0, contacts / 12.0)
    floor = LiveFloor(store, worker, build_agents(rng), build_journeys(contacts, rng, lines, span), rng)
    floor.admin = AdminStore(store)
    server = ApiServer(settings, handle, host, port, scorer=scorer).start()
    try:
        floor.seed(time.time())
        if on_ready is not None:
            on_ready(server.url, key)
        wave = 1
        while not stop.is_set():
            floor.step()
            if floor.idle():
                wave += 1
                fresh = build_journeys(contacts, rng, lines, span)
                for j in fresh:
                    j.contact_id = f"w{wave}-{j.contact_id}"
                    j.customer_id = f"w{wave}-{j.customer_id}"
                floor.schedule(time.time() + 1.0, fresh)
            stop.wait(0.01)
    finally:
        server.stop()
