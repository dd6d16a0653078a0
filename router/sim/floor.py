"""The discrete-event floor: plays customers and agents against the real engine in simulated time.

The floor keeps a schedule of what customers and agents will do (start a contact, write a turn, press "talk
to a person", give up, answer an offer, finish the work, take a break). It pops everything due within one
``quantum`` of simulated time, sets the simulated clock, writes the resulting events to the stream in one
pipeline, waits until the engine has handled them (``Pump.drain``), then reads the engine's decisions and
lets customers and agents react to them, which schedules what they do next. A periodic sweep, also in
simulated time, times out offers and widens the escalation ladder.

Everything the floor does is the customer's or the agent's behaviour; every routing choice is the engine's,
read back from the decisions stream. What the router learns about agents comes only from the outcomes the
floor posts through the public API (``post_outcome``: ``POST /v1/outcomes``) when a served contact ends;
the agents' true empathy (``FloorAgent.skill``) stays here.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.events import Decision
from router.sim.agents import FloorAgent, handle_time_s
from router.sim.journeys import SimJourney
from router.sim.outcome import Outcome, expected_csat, resolved_probability, sample_csat
from router.sim.workers import Pump
from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore
from router.worker.engine import Engine

ACTIVE = ("waiting", "offered")
OPEN = ("pending", "self_service", "waiting", "offered")
# decisions that take an offer back from an agent before or after it was answered
OFFER_LOST = ("offer_declined", "offer_timeout", "agent_left")


@dataclass
class ContactTrack:
    """What happened to one contact, from the customer's side."""

    j: SimJourney
    rng: random.Random
    status: str = "pending"  # pending | self_service | waiting | offered | with_agent | ended
    start_ts: float = 0.0
    need_ts: float | None = None  # when the customer needed a human (ground truth), absolute sim seconds
    routed_ts: float | None = None  # the engine's first queued/offer decision
    accepted_ts: float | None = None
    agent_id: str | None = None
    live_offer: str | None = None
    live_agent: str | None = None
    ended_ts: float | None = None
    end_reason: str | None = None
    pressed_button: bool = False
    detected_mot: bool = False
    first_queue: str | None = None
    offers: int = 0
    lost_offers: int = 0
    callback_offered: bool = False
    callback_taken: bool = False  # took the callback: off hold, keeps its place, no longer gives up
    token: int = 0
    csat: int | None = None
    csat_expected: float | None = None
    resolved: bool | None = None
    # the first wait the engine announced: (when, estimate, its band's low and high ends), simulated seconds
    announced: tuple[float, float, float, float] | None = None

    @property
    def wait_from_s(self) -> float | None:
        return self.need_ts if self.need_ts is not None else self.routed_ts

    @property
    def wait_s(self) -> float | None:
        start = self.wait_from_s
        if start is None or self.accepted_ts is None:
            return None
        return max(0.0, self.accepted_ts - start)


@dataclass
class AgentTrack:
    a: FloorAgent
    away: bool = False
    load: int = 0
    busy_since: float | None = None
    busy_s: float = 0.0
    handled: int = 0
    handled_mot: int = 0

    def change(self, delta: int, now: float) -> None:
        before = self.load
        self.load = max(0, self.load + delta)
        if before == 0 and self.load > 0:
            self.busy_since = now
        elif before > 0 and self.load == 0 and self.busy_since is not None:
            self.busy_s += now - self.busy_since
            self.busy_since = None


@dataclass
class FloorLog:
    """Time series and counters the report and the plots read."""

    samples: list[dict[str, Any]] = field(default_factory=list)  # t, queue depths, ewt by queue
    latencies_ms: list[float] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    sent: int = 0
    ticks: int = 0
    sweeps: int = 0
    drain_s: float = 0.0
    sweep_s: float = 0.0


class SimFloor:
    def __init__(
        self,
        store: RoutingStore,
        pump: Pump,
        sweeper: Engine,
        journeys: list[SimJourney],
        agents: list[FloorAgent],
        *,
        t0: float,
        span_s: float,
        seed: int,
        register_eq: Callable[[FloorAgent], int] = lambda a: a.eq,
        quantum_s: float = 1.0,
        sweep_every_s: float = 30.0,
        sweep_after_route_s: tuple[float, ...] = (20.0, 60.0, 30.0),
        offer_timeout_s: float = 15.0,
        sample_every_s: float = 60.0,
        poison: tuple[bytes, ...] = (),
        post_outcome: Callable[[str, str, int, bool], bool] | None = None,
    ) -> None:
        self.store = store
        self.r = store.client
        self.keys = store.keys
        self.pump = pump
        self.clock = pump.clock
        self.sweeper = sweeper
        self.t0 = t0
        self.span_s = span_s
        self.seed = seed
        self.quantum_s = quantum_s
        self.sweep_every_s = sweep_every_s
        self.sweep_after_route_s = sweep_after_route_s
        self.offer_timeout_s = offer_timeout_s
        self.sample_every_s = sample_every_s
        self.register_eq = register_eq
        self.poison = poison
        self.post_outcome = post_outcome
        self._posts: list[tuple[str, str, int, bool]] = []  # served contacts ended this tick
        self.outcomes_posted = 0
        self.outcomes_refused = 0
        self.contacts = {j.contact_id: ContactTrack(j, random.Random(j.seed)) for j in journeys}
        self.agents = {a.agent_id: AgentTrack(a) for a in agents}
        self.log = FloorLog()
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self._out: list[tuple[str, bytes]] = []  # (event_id, payload) of the current tick
        self._sent_at: dict[str, float] = {}
        self._last_sent = "0-0"
        self._last_decision = "0-0"
        self._sweep_due: float | None = None  # the periodic safety-net sweep
        self._sweeps_at: set[float] = set()  # sweeps scheduled for a known deadline
        self._ewt: dict[str, list[float]] = defaultdict(list)
        self._open = len(self.contacts)
        self._active: set[str] = set()  # contacts waiting for an agent or holding an unanswered offer

    # ---- schedule -------------------------------------------------------------------------------
    def at(self, t: float, action: str, arg: Any = None) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), action, arg))

    def setup(self) -> None:
        for agent in self.agents.values():
            a = agent.a
            fields = agent_profile_fields(
                name=f"Agent {a.agent_id}",
                eq=self.register_eq(a),
                languages=list(a.languages),
                capacity=a.capacity,
                tags=[],
            )
            self.store.upsert_agent(a.agent_id, fields)
            self.at(self.t0 - 60.0, "agent", (a.agent_id, "available"))
            for start, dur in a.breaks:
                self.at(self.t0 + start, "agent", (a.agent_id, "away"))
                self.at(self.t0 + start + dur, "agent", (a.agent_id, "available"))
        if self.poison:
            self.at(self.t0 + 1.0, "poison", None)
        for tr in self.contacts.values():
            j = tr.j
            start = self.t0 + j.start_s
            tr.start_ts = start
            self.at(start, "start", j.contact_id)
            for k, off in enumerate(j.turn_offsets_s):
                self.at(start + off, "turn", (j.contact_id, k))
            need = j.need_offset_s
            if need is not None:
                tr.need_ts = start + need
                self.at(tr.need_ts + j.button_delay_s, "button", j.contact_id)
                self.at(tr.need_ts + j.patience_s, "abandon", j.contact_id)
            else:
                self.at(start + j.last_turn_offset_s + j.linger_s, "contain", j.contact_id)
        self.at(self.t0, "sample", None)

    # ---- run ------------------------------------------------------------------------------------
    def run(self, on_progress: Callable[[int, int], None] | None = None, max_wall_s: float = 3_600.0) -> None:
        deadline = time.monotonic() + max_wall_s
        total = len(self.contacts)
        while self._heap and (self._open > 0 or self._sweep_due is not None):
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulation still running after {max_wall_s:.0f} s of wall time")
            self._tick()
            if on_progress is not None:
                on_progress(total - self._open, total)
        self._flush()
        self._read_decisions()

    def _tick(self) -> None:
        first = self._heap[0][0]
        limit = first + self.quantum_s
        now = first
        sweep = False
        while self._heap and self._heap[0][0] <= limit:
            t, _, action, arg = heapq.heappop(self._heap)
            now = max(now, t)
            self.clock.set(now)
            if action == "sweep":
                sweep = True
                if arg == "periodic":
                    self._sweep_due = None
                else:
                    self._sweeps_at.discard(arg)
                continue
            self._do(action, arg, now)
        self.clock.set(now)
        self._flush()
        self._post_outcomes()
        self.log.ticks += 1
        self._read_decisions()
        if sweep and self._active:
            t = time.perf_counter()
            self.sweeper.sweep()
            self.log.sweep_s += time.perf_counter() - t
            self.log.sweeps += 1
            self._read_decisions()
        self._want_sweep(now)

    def _want_sweep(self, now: float) -> None:
        """The engine's sweep times out offers and widens the ladder. In real time a worker runs it every
        half second; here it runs at exactly the simulated moments it can change something (an offer's
        deadline, a waiting contact's ladder steps and affinity time-out), plus a periodic safety net
        while anyone waits for an agent."""
        if self._sweep_due is not None:
            return
        if self._active:
            self._sweep_due = now + self.sweep_every_s
            self.at(self._sweep_due, "sweep", "periodic")

    def _sweep_at(self, t: float) -> None:
        t = round(t + 0.05, 2)  # just past the deadline, which the engine compares with <=
        if t not in self._sweeps_at:
            self._sweeps_at.add(t)
            self.at(t, "sweep", t)

    def _flush(self) -> None:
        if not self._out:
            return
        pipe = self.r.pipeline(transaction=False)
        for _, payload in self._out:
            pipe.xadd(self.keys.events, {"event": payload})
        sent_at = time.time()
        ids = pipe.execute()
        for eid, _ in self._out:
            if eid:
                self._sent_at[eid] = sent_at
        self._last_sent = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
        self.log.sent += len(self._out)
        self._out = []
        self.log.drain_s += self.pump.drain(self._last_sent)

    def _post_outcomes(self) -> None:
        """Survey answers of the contacts that ended this tick, posted once their events are applied."""
        posts, self._posts = self._posts, []
        if self.post_outcome is None:
            return
        for cid, agent_id, csat, resolved in posts:
            if self.post_outcome(cid, agent_id, csat, resolved):
                self.outcomes_posted += 1
            else:
                self.outcomes_refused += 1

    def _emit(self, event: dict[str, Any]) -> None:
        eid = f"e{next(self._ids)}"
        self._out.append((eid, json.dumps({**event, "event_id": eid}).encode()))

    def _status(self, tr: ContactTrack, status: str) -> None:
        tr.status = status
        if status in ACTIVE:
            self._active.add(tr.j.contact_id)
        else:
            self._active.discard(tr.j.contact_id)

    # ---- customers and agents act ---------------------------------------------------------------
    # a dispatch on the scheduled action: one short branch per action
    def _do(self, action: str, arg: Any, now: float) -> None:  # noqa: C901
        if action == "agent":
            agent_id, status = arg
            self.agents[agent_id].away = status != "available"
            self._emit({"type": "agent.status", "agent_id": agent_id, "status": status})
        elif action == "poison":
            self._out.extend(("", raw) for raw in self.poison)
        elif action == "sample":
            self._sample(now)
        elif action == "start":
            j = self.contacts[arg].j
            self._emit(
                {
                    "type": "contact.started",
                    "contact_id": j.contact_id,
                    "channel": j.channel,
                    "customer": {"id": j.customer_id, "language": j.language, "tier": j.tier},
                }
            )
        elif action == "turn":
            cid, k = arg
            tr = self.contacts[cid]
            if tr.status != "ended":
                self._emit(
                    {
                        "type": "contact.message",
                        "contact_id": cid,
                        "seq": k,
                        "speaker": "customer",
                        "text": tr.j.turns[k],
                    }
                )
        elif action == "button":
            tr = self.contacts[arg]
            if tr.status in ("pending", "self_service"):
                tr.pressed_button = True
                self._emit({"type": "contact.human_requested", "contact_id": arg})
        elif action == "contain":
            tr = self.contacts[arg]
            if tr.status in ("pending", "self_service"):
                self._end(tr, now, "self_service", Outcome(tr.j.truth_mot, contained=True))
        elif action == "abandon":
            tr = self.contacts[arg]
            if tr.status in OPEN and not tr.callback_taken:
                self._end(tr, now, "abandoned", Outcome(tr.j.truth_mot, abandoned=True))
        elif action == "answer":
            self._answer(now, *arg)
        elif action == "complete":
            self._complete(now, *arg)
        else:  # pragma: no cover - a typo in a schedule entry
            raise ValueError(action)

    def _end(self, tr: ContactTrack, now: float, reason: str, outcome: Outcome) -> None:
        tr.csat_expected = expected_csat(outcome)
        tr.csat = sample_csat(tr.csat_expected, tr.rng)
        tr.resolved = tr.rng.random() < resolved_probability(outcome)
        if tr.agent_id is not None and reason == "resolved":
            self._posts.append((tr.j.contact_id, tr.agent_id, tr.csat, tr.resolved))
        self._status(tr, "ended")
        tr.ended_ts = now
        tr.end_reason = reason
        self._open -= 1
        self._emit(
            {"type": "contact.ended", "contact_id": tr.j.contact_id, "reason": reason, "csat": tr.csat}
        )

    def _answer(self, now: float, cid: str, offer_id: str, agent_id: str, accept: bool) -> None:
        tr = self.contacts[cid]
        agent = self.agents[agent_id]
        if tr.status != "offered" or tr.live_offer != offer_id or agent.away:
            return  # the offer was taken back, or the customer left, before the agent answered
        if not accept:
            self._emit({"type": "offer.declined", "offer_id": offer_id})
            return
        self._emit({"type": "offer.accepted", "offer_id": offer_id})
        self._status(tr, "with_agent")
        tr.accepted_ts = now
        tr.agent_id = agent_id
        tr.token += 1
        agent.change(+1, now)
        self.at(now + handle_time_s(tr.j, agent.a.skill, tr.rng), "complete", (cid, agent_id, tr.token))

    def _complete(self, now: float, cid: str, agent_id: str, token: int) -> None:
        tr = self.contacts[cid]
        if tr.status != "with_agent" or tr.token != token:
            return
        agent = self.agents[agent_id]
        agent.change(-1, now)
        agent.handled += 1
        agent.handled_mot += int(tr.j.truth_mot)
        self._emit({"type": "work.completed", "agent_id": agent_id, "contact_id": cid})
        outcome = Outcome(
            tr.j.truth_mot, handled_skill=agent.a.skill, wait_s=tr.wait_s, detoured=tr.pressed_button
        )
        self._end(tr, now, "resolved", outcome)

    # ---- the engine's decisions -----------------------------------------------------------------
    def _read_decisions(self) -> None:
        while True:
            res: Any = self.r.xread({self.keys.decisions: self._last_decision}, count=5_000)
            if not res:
                return
            entries = res[0][1]
            for entry_id, fields in entries:
                self._last_decision = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                d = Decision.model_validate_json(fields[b"decision"])
                self.log.decisions.append(d)
                sent = self._sent_at.get(d.event_id)
                if sent is not None:
                    # the decision's stream id carries the server's millisecond clock (+0.5: its mean floor)
                    ms = int(self._last_decision.partition("-")[0]) + 0.5
                    self.log.latencies_ms.append(max(0.0, ms - sent * 1000.0))
                self._react(d)
            if len(entries) < 5_000:
                return

    def _offered_a_person(self, tr: ContactTrack, d: Decision, now: float) -> None:
        """Self-service offers a person (reason ``human_offered``): a customer who needs one by now takes
        it after a few seconds instead of finding the button; one who does not, declines."""
        if not any(r.code == "human_offered" for r in d.reasons):
            return
        if tr.status in ("pending", "self_service") and tr.need_ts is not None and now >= tr.need_ts:
            self.at(now + tr.j.offer_take_s(), "button", tr.j.contact_id)

    # a dispatch on the decision's action (self-service, routed to a human, released): one branch each
    def _react(self, d: Decision) -> None:  # noqa: C901
        tr = self.contacts.get(d.contact_id)
        if tr is None:
            return
        now = self.clock()
        if d.moment_of_truth:
            tr.detected_mot = True
        if d.action == "self_service":
            if tr.status == "pending":
                self._status(tr, "self_service")
            self._offered_a_person(tr, d, now)
            return
        if d.action in ("queued", "callback_offer", "offer") and tr.status in OPEN:
            if tr.routed_ts is None:
                tr.routed_ts = d.ts
                tr.first_queue = d.queue
                for after in self.sweep_after_route_s:
                    self._sweep_at(d.ts + after)
                if tr.need_ts is None:  # routed to a human without needing one: patience starts now
                    self.at(now + tr.j.patience_s, "abandon", tr.j.contact_id)
            if d.action == "callback_offer":
                tr.callback_offered = True
                tr.callback_taken = tr.j.accepts_callback
            if d.estimated_wait_s is not None and d.queue:
                self._ewt[d.queue].append(d.estimated_wait_s)
                # the first wait the customer was told and held for (one who took a callback is off hold)
                holding = d.action == "queued" or (d.action == "callback_offer" and not tr.callback_taken)
                if tr.announced is None and holding:
                    low = d.estimated_wait_low_s if d.estimated_wait_low_s is not None else d.estimated_wait_s
                    high = (
                        d.estimated_wait_high_s if d.estimated_wait_high_s is not None else d.estimated_wait_s
                    )
                    tr.announced = (d.ts, d.estimated_wait_s, low, high)
            if d.action == "offer" and d.agent_id and d.offer_id:
                self._status(tr, "offered")
                tr.live_offer, tr.live_agent = d.offer_id, d.agent_id
                tr.offers += 1
                self._sweep_at(d.ts + self.offer_timeout_s)
                self._agent_reacts(tr, d.offer_id, d.agent_id, now)
            elif tr.status in ("pending", "self_service"):
                self._status(tr, "waiting")
            self._want_sweep(now)
            return
        if d.action == "released" and d.agent_id is not None:
            codes = {r.code for r in d.reasons}
            if not codes & set(OFFER_LOST):
                return
            if tr.status == "offered" and tr.live_agent == d.agent_id:
                self._status(tr, "waiting")
                tr.live_offer = tr.live_agent = None
                tr.lost_offers += 1
                self._want_sweep(now)
            elif tr.status == "with_agent" and tr.agent_id == d.agent_id:
                # our acceptance lost a race with a time-out or a break: the contact waits again
                self.agents[d.agent_id].change(-1, now)
                self._status(tr, "waiting")
                tr.agent_id = None
                tr.accepted_ts = None
                tr.token += 1
                tr.lost_offers += 1
                self._want_sweep(now)

    def _agent_reacts(self, tr: ContactTrack, offer_id: str, agent_id: str, now: float) -> None:
        agent = self.agents[agent_id].a
        roll = tr.rng.random()
        delay = tr.rng.uniform(*agent.accept_delay_s)
        if roll < agent.miss_p:
            return  # never answered: the engine's offer time-out takes it back
        accept = roll >= agent.miss_p + agent.decline_p
        self.at(now + delay, "answer", (tr.j.contact_id, offer_id, agent_id, accept))

    # ---- sampling -------------------------------------------------------------------------------
    def _sample(self, now: float) -> None:
        depths = self.store.queue_depths()
        ewt = {q: (sum(v) / len(v) if v else None) for q, v in self._ewt.items()}
        self._ewt = defaultdict(list)
        busy = sum(1 for a in self.agents.values() if a.load > 0)
        present = sum(1 for a in self.agents.values() if not a.away)
        self.log.samples.append(
            {
                "t_s": round(now - self.t0, 1),
                "queue_depth": depths,
                "ewt_s": ewt,
                "agents_busy": busy,
                "agents_present": present,
                "open_contacts": self._open,
            }
        )
        if self._open > 0:
            self.at(now + self.sample_every_s, "sample")

    def finish_agents(self, now: float) -> None:
        for a in self.agents.values():
            if a.busy_since is not None:
                a.busy_s += now - a.busy_since
                a.busy_since = now
