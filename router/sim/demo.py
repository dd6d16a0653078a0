"""`router demo`: a small simulated contact centre driven through the real engine on any store.

One thread runs a discrete schedule in real time: customers start contacts and write, agents answer
offers (sometimes declining or missing them) and complete work, and an in-process worker consumes the
stream. Every figure in the report is read back from the store and the decision stream, not from the
simulator's own bookkeeping, so the demo checks the engine rather than itself.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.events import Decision
from router.scoring.protocol import EmotionScorer
from router.settings import Settings
from router.sim.corpus_lines import load_lines
from router.sim.script import LineSource, Story
from router.store.codec import agent_profile_fields
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker

POISON = (
    b"{not json",
    json.dumps({"type": "contact.teleported", "contact_id": "x"}).encode(),
    json.dumps(
        {"type": "contact.message", "contact_id": "c", "seq": "one", "speaker": "customer", "text": "hi"}
    ).encode(),
)


@dataclass(frozen=True)
class SimAgent:
    agent_id: str
    eq: int
    languages: tuple[str, ...]
    capacity: dict[str, int]
    accept_delay_s: float
    decline_p: float
    miss_p: float


@dataclass
class Journey:
    contact_id: str
    customer_id: str
    kind: str  # routine | routine_human | mot | turning
    channel: str
    language: str
    tier: str
    turns: list[str]
    start_s: float
    with_human: bool = False
    ended: bool = False


@dataclass
class DemoReport:
    events: int
    decisions: int
    dead_letters: int
    lost: int
    moments_of_truth: int
    mot_to_high_eq_share: float
    routine_to_self_service_share: float
    over_capacity_max: int
    decision_latency_ms: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "decisions": self.decisions,
            "dead_letters": self.dead_letters,
            "lost": self.lost,
            "moments_of_truth": self.moments_of_truth,
            "mot_to_high_eq_share": round(self.mot_to_high_eq_share, 4),
            "routine_to_self_service_share": round(self.routine_to_self_service_share, 4),
            "over_capacity_max": self.over_capacity_max,
            "decision_latency_ms": {k: round(v, 2) for k, v in self.decision_latency_ms.items()},
            # the detector against the journeys' labels, as the table prints them
            "mot_recall": round(float(self.extra.get("mot_recall", 0.0)), 4),
            "mot_precision": round(float(self.extra.get("mot_precision", 0.0)), 4),
        }


def build_agents(rng: random.Random) -> list[SimAgent]:
    """A floor of 16: few high-EQ agents (the scarce resource), more general ones, two Spanish speakers."""
    eqs = [5, 5, 4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 1, 1]
    agents = []
    for i, eq in enumerate(eqs):
        langs = ("en", "es") if i in (3, 10) else ("en",)
        agents.append(
            SimAgent(
                agent_id=f"a{i + 1:02d}",
                eq=eq,
                languages=langs,
                capacity={"chat": 3, "voice": 1, "email": 4},
                accept_delay_s=rng.uniform(0.1, 0.5),
                decline_p=0.04,
                miss_p=0.02,
            )
        )
    return agents


DEMO_CHANNELS = ("chat", "voice", "email")  # what the demo floor's agents take
SECOND_LANGUAGE = "es"  # two of the demo's agents speak it
SECOND_LANGUAGE_P = 0.05


def build_journeys(n: int, rng: random.Random, lines: LineSource, arrival_span_s: float) -> list[Journey]:
    """``n`` customers, a third of them moments of truth, most in English, a few in Spanish. What they say,
    and whether it is a moment of truth, comes from ``lines``: the project's corpus, held out from training
    (``router.sim.corpus_lines.load_lines``), so that the report's recall and precision measure the real
    detector on text it never learned from."""
    out = []
    for i in range(n):
        story: Story = rng.choices(("routine", "routine_human", "moment"), weights=(58, 8, 34))[0]
        spoken = lines.languages(story)
        language = SECOND_LANGUAGE if rng.random() < SECOND_LANGUAGE_P and SECOND_LANGUAGE in spoken else "en"
        script = lines.script(story, rng, language)
        drawn = rng.choices(DEMO_CHANNELS, weights=(70, 20, 10))[0]
        out.append(
            Journey(
                contact_id=f"c{i:05d}",
                customer_id=f"cust{rng.randint(0, n // 2):05d}",
                kind=script.kind,
                channel=script.channel if script.channel in DEMO_CHANNELS else drawn,
                language=language,
                tier=rng.choices(["standard", "gold", "platinum"], weights=[80, 15, 5])[0],
                turns=list(script.turns),
                start_s=rng.uniform(0, arrival_span_s),
            )
        )
    return out


class DemoFloor:
    def __init__(
        self,
        store: RoutingStore,
        worker: Worker,
        agents: list[SimAgent],
        journeys: list[Journey],
        rng: random.Random,
        *,
        turn_gap_s: float = 0.4,
        handle_s: tuple[float, float] = (0.8, 2.5),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.worker = worker
        self.agents = {a.agent_id: a for a in agents}
        self.journeys = {j.contact_id: j for j in journeys}
        self.rng = rng
        self.turn_gap_s = turn_gap_s
        self.handle_s = handle_s
        self.clock = clock
        self._heap: list[tuple[float, int, dict[str, Any] | bytes]] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self.sent_at: dict[str, float] = {}
        self.sent = 0
        self.decisions: list[Decision] = []
        self._last_decision_id = "0-0"

    # ---- schedule -------------------------------------------------------------------------------
    def at(self, t: float, event: dict[str, Any] | bytes) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), event))

    def seed(self, t0: float) -> None:
        for a in self.agents.values():
            fields = agent_profile_fields(
                name=f"Agent {a.agent_id}", eq=a.eq, languages=list(a.languages), capacity=a.capacity, tags=[]
            )
            self.store.upsert_agent(a.agent_id, fields)
            self.at(t0, {"type": "agent.status", "agent_id": a.agent_id, "status": "available"})
        for raw in POISON:
            self.at(t0 + 0.5, raw)
        for j in self.journeys.values():
            self.schedule_journey(j, t0 + 0.2 + j.start_s)
        # one agent steps away mid-run and comes back: its pending offers must be re-routed
        away = self.agents["a05"]
        span = max(j.start_s for j in self.journeys.values()) if self.journeys else 1.0
        self.at(t0 + span * 0.4, {"type": "agent.status", "agent_id": away.agent_id, "status": "away"})
        self.at(
            t0 + span * 0.4 + 3.0, {"type": "agent.status", "agent_id": away.agent_id, "status": "available"}
        )

    def schedule_journey(self, j: Journey, start: float) -> None:
        """The customer's side of one journey: the start, each turn, and the containment check."""
        customer = {"id": j.customer_id, "language": j.language, "tier": j.tier}
        self.at(
            start,
            {
                "type": "contact.started",
                "contact_id": j.contact_id,
                "channel": j.channel,
                "customer": customer,
            },
        )
        for k, text in enumerate(j.turns):
            self.at(
                start + (k + 1) * self.turn_gap_s,
                {
                    "type": "contact.message",
                    "contact_id": j.contact_id,
                    "seq": k,
                    "speaker": "customer",
                    "text": text,
                },
            )
        # a contact still in self-service after its last turn was contained there
        self.at(start + (len(j.turns) + 1) * self.turn_gap_s, {"_check_contained": j.contact_id})

    def _send_due(self, now: float) -> None:
        pipe = self.store.client.pipeline(transaction=False)
        n = 0
        while self._heap and self._heap[0][0] <= now:
            _, _, ev = heapq.heappop(self._heap)
            if isinstance(ev, bytes):
                pipe.xadd(self.store.keys.events, {"event": ev})
            elif "_check_contained" in ev:
                j = self.journeys[ev["_check_contained"]]
                if not j.with_human and not j.ended:
                    j.ended = True
                    self._event(
                        pipe, {"type": "contact.ended", "contact_id": j.contact_id, "reason": "self_service"}
                    )
                continue
            else:
                self._event(pipe, ev)
            n += 1
        if n:
            pipe.execute()
            self.sent += n

    def _event(self, pipe: Any, ev: dict[str, Any]) -> None:
        eid = f"e{next(self._ids)}"
        ev = {**ev, "event_id": eid}
        self.sent_at[eid] = self.clock()
        pipe.xadd(self.store.keys.events, {"event": json.dumps(ev)})

    # ---- agents react to decisions --------------------------------------------------------------
    def _read_decisions(self, now: float) -> None:
        res: Any = self.store.client.xread({self.store.keys.decisions: self._last_decision_id}, count=1000)
        if not res:
            return
        for entry_id, fields in res[0][1]:
            self._last_decision_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            d = Decision.model_validate_json(fields[b"decision"])
            self.decisions.append(d)
            self._react(d, now)

    def _react(self, d: Decision, now: float) -> None:
        j = self.journeys.get(d.contact_id)
        if j is None:
            return
        if d.action in ("offer", "queued", "callback_offer"):
            j.with_human = True
        if d.action != "offer" or d.agent_id is None or d.offer_id is None:
            return
        agent = self.agents[d.agent_id]
        delay = agent.accept_delay_s
        roll = self.rng.random()
        if roll < agent.miss_p:
            return  # the offer times out
        if roll < agent.miss_p + agent.decline_p:
            self.at(now + delay, {"type": "offer.declined", "offer_id": d.offer_id})
            return
        self.at(now + delay, {"type": "offer.accepted", "offer_id": d.offer_id})
        done = now + delay + self.rng.uniform(*self.handle_s)
        self.at(done, {"type": "work.completed", "agent_id": d.agent_id, "contact_id": d.contact_id})
        csat = 5 if agent.eq >= 4 else 4 if not d.moment_of_truth else 3
        self.at(
            done + 0.01,
            {"type": "contact.ended", "contact_id": d.contact_id, "reason": "resolved", "csat": csat},
        )
        j.ended = True

    # ---- run ------------------------------------------------------------------------------------
    def step(self) -> None:
        now = self.clock()
        self._send_due(now)
        self.worker.run_once()
        self._read_decisions(self.clock())

    def done(self) -> bool:
        if self._heap or not all(j.ended for j in self.journeys.values()):
            return False
        pending = self.store.client.xpending(self.store.keys.events, self.worker.group)
        return not pending or int(pending.get("pending", 0)) == 0

    def drained(self) -> bool:
        stats = self.store.stats()
        return stats.get("processed", 0) + stats.get("dead_letters", 0) >= self.sent


def run_demo(
    handle: StoreHandle,
    settings: Settings,
    scorer: EmotionScorer,
    *,
    contacts: int = 300,
    seed: int = 7,
    on_progress: Callable[[int, int], None] | None = None,
    max_runtime_s: float = 600.0,
    lines: LineSource | None = None,
) -> DemoReport:
    """``lines``: what customers say (default: the corpus's held-out splits, else the bundled lines)."""
    rng = random.Random(seed)
    lines = lines or load_lines()
    client = handle.client()
    store = RoutingStore(client, settings.domain, seen_ttl_s=settings.seen_ttl_s)
    worker = Worker(store, scorer, settings, consumer="demo-worker", supports_blocking=False)
    worker.ensure_group()
    agents = build_agents(rng)
    arrival_span_s = max(5.0, contacts / 12.0)
    journeys = build_journeys(contacts, rng, lines, arrival_span_s)
    floor = DemoFloor(store, worker, agents, journeys, rng)
    t0 = time.time()
    floor.seed(t0)
    deadline = t0 + max_runtime_s
    while time.time() < deadline:
        floor.step()
        if on_progress is not None:
            on_progress(sum(1 for j in journeys if j.ended), len(journeys))
        if floor.done() and floor.drained():
            break
        time.sleep(0.005)
    floor._read_decisions(time.time())
    report = build_report(store, worker, floor, agents)
    described = lines.describe()
    report.extra["lines"] = " ".join(str(described[k]) for k in ("source", "corpus_split") if k in described)
    return report


def build_report(store: RoutingStore, worker: Worker, floor: DemoFloor, agents: list[SimAgent]) -> DemoReport:
    stats = store.stats()
    pending = store.client.xpending(store.keys.events, worker.group)
    still_pending = int(pending.get("pending", 0)) if pending else 0
    processed = stats.get("processed", 0)
    dead = stats.get("dead_letters", 0)
    lost = max(0, floor.sent - processed - dead - still_pending)
    eq = {a.agent_id: a.eq for a in agents}
    decisions = floor.decisions
    mot_contacts = {d.contact_id for d in decisions if d.moment_of_truth}
    mot_offers = [d for d in decisions if d.action == "offer" and d.moment_of_truth and d.agent_id]
    high = sum(1 for d in mot_offers if eq.get(d.agent_id or "", 0) >= 4)
    first: dict[str, Decision] = {}
    for d in decisions:
        first.setdefault(d.contact_id, d)
    routine = [j for j in floor.journeys.values() if j.kind in ("routine", "routine_human")]
    # served by self-service from start to end: never offered or queued for a person (a customer asking for
    # one still gets one, so this is below 1 by design)
    to_human = {d.contact_id for d in decisions if d.action in ("offer", "queued", "callback_offer")}
    to_ss = sum(
        1
        for j in routine
        if j.contact_id in first
        and first[j.contact_id].action == "self_service"
        and j.contact_id not in to_human
    )
    latencies = sorted(
        (d.ts - floor.sent_at[d.event_id]) * 1000 for d in decisions if d.event_id in floor.sent_at
    )
    truth_mot = {j.contact_id for j in floor.journeys.values() if j.kind in ("mot", "turning")}
    by_action = Counter(d.action for d in decisions)
    return DemoReport(
        events=floor.sent,
        decisions=stats.get("decisions", 0),
        dead_letters=dead,
        lost=lost,
        moments_of_truth=len(mot_contacts),
        mot_to_high_eq_share=high / len(mot_offers) if mot_offers else 0.0,
        routine_to_self_service_share=to_ss / len(routine) if routine else 0.0,
        over_capacity_max=over_capacity_max(decisions, floor, agents),
        decision_latency_ms={"p50": _pct(latencies, 50), "p99": _pct(latencies, 99)},
        extra={
            "by_action": dict(by_action),
            "mot_recall": len(mot_contacts & truth_mot) / len(truth_mot) if truth_mot else 0.0,
            "mot_precision": len(mot_contacts & truth_mot) / len(mot_contacts) if mot_contacts else 0.0,
            "still_pending": still_pending,
            "reclaimed": worker.stats.reclaimed,
            "final_agent_load": sum(sum(a.view.load.values()) for a in store.load_agents(0, 1)),
        },
    )


def over_capacity_max(decisions: list[Decision], floor: DemoFloor, agents: list[SimAgent]) -> int:
    """Replay offers (+1) and releases (-1) per agent and channel; the worst excess over capacity."""
    caps = {a.agent_id: a.capacity for a in agents}
    load: dict[tuple[str, str], int] = defaultdict(int)
    worst = 0
    for d in decisions:
        if d.agent_id is None:
            continue
        channel = floor.journeys[d.contact_id].channel if d.contact_id in floor.journeys else "chat"
        key = (d.agent_id, channel)
        if d.action == "offer":
            load[key] += 1
            worst = max(worst, load[key] - caps[d.agent_id].get(channel, 0))
        elif d.action == "released":
            load[key] -= 1
    return worst


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]
