"""Hypothesis state machine over the engine and the store: random interleavings of contacts arriving,
offers (the engine's and raw ones), accept, decline, timeout, completion, contact end, agent status changes
and event replays, across several agents. After every step:

* no agent holds more than its capacity on any channel;
* an agent's load per channel equals its contacts in offered/assigned state on that channel;
* a contact has at most one pending offer, and an offered contact exactly the one it points to;
* an agent that declined (or let time out) an offer of a contact is remembered for the decline memory, and
  offered it again within that time only when every agent who could take it has declined ("all_declined");
* a queued contact is in exactly its queue, any other contact in none;
* replaying an applied event changes nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from router.domain.model import QUEUES
from router.events import Decision
from router.scoring.protocol import EmotionScore
from router.settings import Settings
from router.store.codec import ContactRecord
from router.store.store import Commit, OfferInfo, RoutingStore
from router.worker import matching as matching_module
from router.worker.decisions import make_decision
from router.worker.engine import Engine
from tests.contract.contract_helpers import (
    Connect,
    CountingIds,
    FakeClock,
    ScriptedScorer,
    add_agent,
    connector,
    dump_domain,
    message,
    parse,
    started,
)

CHANNELS = ("chat", "voice")
TEXTS = ("hello there", "I am furious", "can I talk to a person", "my card was stolen", "ok thanks")
FAIR_MS = 3_600_000
MAX_CONTACTS = 12

# No shrink phase: replaying a 40-step run takes ~0.2 s, so shrinking a failure would outlast the 300 s test
# timeout and hide the counterexample; the unshrunk failing run is printed step by step instead.
MACHINE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class Snapshot:
    agents: dict[str, Any]
    contacts: dict[str, ContactRecord]
    pending: dict[str, OfferInfo]  # offer id -> offer, pending ones only


# a hypothesis state machine built per store (fakeredis, redis): mccabe counts all its rules as one function
def make_machine(connect: Connect) -> type[RuleBasedStateMachine]:  # noqa: C901
    class Reservations(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.client, self.admin = connect()
            self.domain = f"sm{uuid.uuid4().hex[:10]}"
            self.store = RoutingStore(self.client, self.domain)
            self.clock = FakeClock()
            self.settings = Settings(domain=self.domain, redis_url="")
            self.engine = Engine(self.store, self.settings, clock=self.clock)
            self._real_uuid = matching_module.uuid
            matching_module.uuid = CountingIds()  # type: ignore[assignment]
            self.scorer = ScriptedScorer()
            self.contacts: list[str] = []
            # (contact, agent) -> when (ms) the agent last declined or missed the contact
            self.declined: dict[tuple[str, str], int] = {}
            self.memory_ms = int(self.settings.decline_memory_s * 1000)
            self.applied: list[tuple[dict[str, Any], str, EmotionScore | None]] = []
            self.decisions_seen = "0-0"
            self.snap = Snapshot({}, {}, {})

        # ---- helpers -------------------------------------------------------------------------------
        def send(self, event: dict[str, Any]) -> None:
            score = None
            if event["type"] == "contact.message" and event["speaker"] == "customer":
                score = self.scorer.one(event["text"])
            eid = uuid.uuid4().hex[:12]
            self.engine.handle(parse(event), eid, score)
            self.applied.append((event, eid, score))

        def read(self) -> Snapshot:
            agents = {a.view.agent_id: a.view for a in self.store.load_agents(self.clock.ms, FAIR_MS)}
            recs = self.store.load_contacts(self.contacts)
            contacts = {cid: rec for cid, rec in zip(self.contacts, recs, strict=True) if rec is not None}
            pending: dict[str, OfferInfo] = {}
            for raw in self.admin.scan_iter(match=f"router:{{{self.domain}}}:offer:*", count=1000):
                info = self.store.load_offer(raw.decode().rsplit(":", 1)[1])
                if info is not None and info.status == "pending":
                    pending[info.offer_id] = info
            return Snapshot(agents, contacts, pending)

        def remembered(self, at_ms: int) -> dict[tuple[str, str], int]:
            """The declines still remembered at ``at_ms``."""
            return {k: ms for k, ms in self.declined.items() if at_ms - ms < self.memory_ms}

        def pending_in_order(self) -> list[str]:
            """Pending offer ids in an order that replays identically (offer ids themselves are random)."""
            return sorted(
                self.snap.pending,
                key=lambda o: (self.snap.pending[o].contact_id, self.snap.pending[o].agent_id),
            )

        def new_decisions(self) -> list[Decision]:
            rows = self.client.xrange(self.store.keys.decisions, min=f"({self.decisions_seen}", max="+")
            if rows:
                self.decisions_seen = rows[-1][0].decode()
            return [Decision.model_validate_json(f[b"decision"]) for _, f in rows]

        # ---- set-up --------------------------------------------------------------------------------
        @initialize(
            agents=st.lists(
                st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2)), min_size=2, max_size=4
            )
        )
        def hire(self, agents: list[tuple[int, int, int]]) -> None:
            for i, (eq, chat, voice) in enumerate(agents):
                add_agent(
                    self.store, f"a{i}", eq=eq, capacity={"chat": chat, "voice": voice}, status="offline"
                )
                self.send({"type": "agent.status", "agent_id": f"a{i}", "status": "available"})

        # ---- contacts ------------------------------------------------------------------------------
        @precondition(lambda self: len(self.contacts) < MAX_CONTACTS)
        @rule(channel=st.sampled_from(CHANNELS), kind=st.sampled_from(["routine", "human", "mot"]))
        def contact_arrives(self, channel: str, kind: str) -> None:
            cid = f"c{len(self.contacts)}"
            self.contacts.append(cid)
            self.send(started(cid, channel))
            if kind == "human":
                self.send({"type": "contact.human_requested", "contact_id": cid})
            elif kind == "mot":
                self.send(message(cid, 0, "my card was stolen"))

        @precondition(lambda self: self.contacts)
        @rule(data=st.data(), text=st.sampled_from(TEXTS))
        def customer_writes(self, data: st.DataObject, text: str) -> None:
            cid = data.draw(st.sampled_from(self.contacts))
            self.send(message(cid, len(self.applied), text))

        @precondition(lambda self: any(r.view.status != "ended" for r in self.snap.contacts.values()))
        @rule(data=st.data(), how=st.sampled_from(["work.completed", "contact.ended"]))
        def finish(self, data: st.DataObject, how: str) -> None:
            """The agent completes the work (offered or assigned), or the contact ends (in any state)."""
            busy = sorted(
                c for c, r in self.snap.contacts.items() if r.view.status in ("offered", "assigned")
            )
            live = sorted(c for c, r in self.snap.contacts.items() if r.view.status != "ended")
            if how == "work.completed" and busy:
                cid = data.draw(st.sampled_from(busy))
                agent = self.snap.contacts[cid].view.agent_id or ""
                self.send({"type": how, "agent_id": agent, "contact_id": cid})
            else:
                self.send({"type": "contact.ended", "contact_id": data.draw(st.sampled_from(live))})

        # ---- offers --------------------------------------------------------------------------------
        @precondition(lambda self: self.snap.contacts)
        @rule(data=st.data())
        def raw_offer(self, data: st.DataObject) -> None:
            """Any agent, any contact, straight into the offer script: refused exactly when it must be."""
            agent_id = data.draw(st.sampled_from(sorted(self.snap.agents)))
            cid = data.draw(st.sampled_from(sorted(self.snap.contacts)))
            a, c = self.snap.agents[agent_id], self.snap.contacts[cid].view
            if a.status != "available":
                expect = "agent_unavailable"
            elif a.load.get(c.channel, 0) >= a.capacity.get(c.channel, 0):
                expect = "no_capacity"
            elif self.clock.ms - c.declined_ms.get(agent_id, -self.memory_ms) < self.memory_ms:
                expect = "declined_before"
            elif c.status in ("offered", "assigned", "ended"):
                expect = "contact_taken"
            else:
                expect = "ok"
            oid = uuid.uuid4().hex[:16]
            d = make_decision(
                event_id="raw",
                contact_id=cid,
                action="offer",
                now_s=self.clock(),
                reasons=(),
                agent_id=agent_id,
                offer_id=oid,
            )
            before = dump_domain(self.admin, self.domain) if expect != "ok" else None
            out = self.store.offer(
                Commit(decisions=((cid, d.model_dump_json()),)),
                offer_id=oid,
                agent_id=agent_id,
                contact_id=cid,
                channel=c.channel,
                queue=c.queue or "general",
                now_ms=self.clock.ms,
                timeout_ms=int(self.settings.offer_timeout_s * 1000),
                mot=c.moment_of_truth,
                expected_version=data.draw(st.sampled_from([None, self.snap.contacts[cid].version])),
                fairness_window_ms=FAIR_MS,
                decline_memory_ms=self.memory_ms,
            )
            assert (out.status if out.ok else out.reason) == expect, (out, expect)
            if before is not None:
                assert dump_domain(self.admin, self.domain) == before

        @precondition(lambda self: self.snap.pending)
        @rule(data=st.data(), accept=st.booleans())
        def answer(self, data: st.DataObject, accept: bool) -> None:
            oid = data.draw(st.sampled_from(self.pending_in_order()))
            if accept:
                self.send({"type": "offer.accepted", "offer_id": oid})
            else:
                o = self.snap.pending[oid]
                self.declined[(o.contact_id, o.agent_id)] = self.clock.ms
                self.send({"type": "offer.declined", "offer_id": oid})

        @rule(seconds=st.sampled_from([0.5, 3.0, 10.0, 16.0, 25.0, 70.0, 200.0]))
        def time_passes(self, seconds: float) -> None:
            self.clock.advance(seconds)
            for o in self.snap.pending.values():
                if o.deadline_ms <= self.clock.ms:
                    self.declined[(o.contact_id, o.agent_id)] = self.clock.ms  # the sweep times these out
            self.engine.sweep()
            assert self.store.due_offers(self.clock.ms) == []

        @rule(data=st.data(), leaving=st.sampled_from(["away", "offline"]))
        def agent_status(self, data: st.DataObject, leaving: str) -> None:
            """An available agent leaves (its offers are revoked), or one that left comes back (and pulls)."""
            agent_id = data.draw(st.sampled_from(sorted(self.snap.agents)))
            back = self.snap.agents[agent_id].status != "available"
            self.send(
                {"type": "agent.status", "agent_id": agent_id, "status": "available" if back else leaving}
            )

        @precondition(lambda self: self.applied)
        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            """At-least-once delivery: an event handled again (same event id) changes nothing at all."""
            event, eid, score = data.draw(st.sampled_from(self.applied))
            before = dump_domain(self.admin, self.domain)
            self.engine.handle(parse(event), eid, score)
            assert dump_domain(self.admin, self.domain) == before, event

        # ---- invariants ----------------------------------------------------------------------------
        @invariant()
        def consistent(self) -> None:
            snap = self.read()
            self.snap = snap
            k = self.store.keys
            held: Counter[tuple[str, str]] = Counter()
            for cid, rec in snap.contacts.items():
                c = rec.view
                if c.status in ("offered", "assigned"):
                    assert c.agent_id, cid
                    held[(c.agent_id, c.channel)] += 1
            for aid, a in snap.agents.items():
                for ch in CHANNELS:
                    load = a.load.get(ch, 0)
                    assert 0 <= load <= a.capacity.get(ch, 0), (aid, ch, load, a.capacity)
                    assert load == held[(aid, ch)], (aid, ch, load, held[(aid, ch)])
            # one pending offer per contact at most, and the contact agrees with it
            per_contact = Counter(o.contact_id for o in snap.pending.values())
            assert all(n == 1 for n in per_contact.values()), per_contact
            for oid, o in snap.pending.items():
                c = snap.contacts[o.contact_id].view
                assert (c.status, c.offer_id, c.agent_id) == ("offered", oid, o.agent_id), (oid, c)
                assert self.client.sismember(k.agent_offers(o.agent_id), oid)
            for cid, rec in snap.contacts.items():
                if rec.view.status == "offered":
                    assert per_contact[cid] == 1, cid
            assert {m.decode() for m in self.client.zrange(k.offers, 0, -1)} == set(snap.pending)
            # declined or timed out: remembered for the memory, and offered again within it only when all
            # who could take it declined
            stored = {
                (cid, a): ms for cid, rec in snap.contacts.items() for a, ms in rec.view.declined_ms.items()
            }
            now_ms = self.clock.ms
            assert {k: ms for k, ms in stored.items() if now_ms - ms < self.memory_ms} == self.remembered(
                now_ms
            )
            for d in self.new_decisions():
                if d.action == "offer" and (d.contact_id, d.agent_id) in self.remembered(int(d.ts * 1000)):
                    assert "all_declined" in {r.code for r in d.reasons}, d
            # queue membership
            for cid, rec in snap.contacts.items():
                c = rec.view
                inside = {q for q in QUEUES if self.client.zscore(k.queue(q), cid) is not None}
                assert inside == ({c.queue} if c.status == "queued" else set()), (
                    cid,
                    c.status,
                    c.queue,
                    inside,
                )

        def teardown(self) -> None:
            matching_module.uuid = self._real_uuid
            keys = list(self.admin.scan_iter(match=f"router:{{{self.domain}}}:*", count=1000))
            if keys:
                self.admin.delete(*keys)
            self.client.close()
            self.admin.close()

    return Reservations


@pytest.mark.slow
def test_random_interleavings_keep_the_invariants(backend: str, request: pytest.FixtureRequest) -> None:
    connect = connector(backend, request)
    run_state_machine_as_test(make_machine(connect), settings=MACHINE_SETTINGS)
