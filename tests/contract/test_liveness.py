"""Liveness: nobody is stranded. A hypothesis state machine over the engine and the store (the same run on
fakeredis and on a real server): contacts arrive in two languages on two channels, agents speak one or
both, accept, decline, ignore offers (they time out), finish work, leave and come back, and time passes
with the periodic sweep. After every sweep:

* the issue 14 promise: no contact keeps waiting while an agent who could take it (available, its
  language and channel, the EQ ladder) has been free for longer than the decline memory plus a sweep,
  counted from when the contact started waiting;
* stronger, and what the engine does: no contact is left waiting that a free agent could take now, even
  one every such agent has declined (it is offered again, to the earliest decliner), except a routine
  contact the high-EQ reserve holds back from the last free eq>=4 slots, for at most its hold
  (outcome-aware matching, docs/routing.md);
* every contact that has waited its queue's callback threshold has been offered a callback, whatever kept it.
"""

from __future__ import annotations

import uuid
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

from router.domain.matching import high_eq_reserve
from router.domain.model import AgentView
from router.domain.policy import PolicyConfig, min_eq, reserve_blocks
from router.settings import Settings
from router.store.codec import ContactRecord
from router.store.store import RoutingStore
from router.worker import matching as matching_module
from router.worker.engine import Engine
from tests.contract.contract_helpers import (
    Connect,
    CountingIds,
    FakeClock,
    ScriptedScorer,
    add_agent,
    connector,
    message,
    parse,
    started,
)

CHANNELS = ("chat", "voice")
FAIR_MS = 3_600_000
MAX_CONTACTS = 10

# As in test_state_machine.py: no shrinking (it would outlast the test timeout); a failure prints its run.
MACHINE_SETTINGS = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

languages = st.sampled_from([("en",), ("es",), ("en", "es")])


def could_take(a: AgentView, c: ContactRecord, now: float, cfg: PolicyConfig) -> bool:
    """The agent could take the waiting contact now, declines aside: available, the language, a free slot
    on the channel, the EQ ladder."""
    v = c.view
    waited_s = now - (v.enqueued_ts or now)
    return (
        a.status == "available"
        and v.language in a.languages
        and a.free(v.channel) > 0
        and a.eq >= min_eq(v.queue or "general", waited_s, cfg)
    )


def eligible_since(a: AgentView, c: ContactRecord, free_since: float, cfg: PolicyConfig) -> float:
    """Since when the agent has been free and eligible for the contact: not before the contact waited, and
    not before the EQ ladder reached the agent's EQ."""
    enqueued = c.view.enqueued_ts or 0.0
    ladder = 0.0
    if c.view.queue == "mot" and a.eq < cfg.mot_min_eq:
        ladder = cfg.ladder_step1_s if a.eq >= cfg.ladder_step1_min_eq else cfg.ladder_step2_s
    return max(free_since, enqueued + ladder)


# a hypothesis state machine built per store (fakeredis, redis): mccabe counts all its rules as one function
def make_machine(connect: Connect) -> type[RuleBasedStateMachine]:  # noqa: C901
    class Liveness(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.client, self.admin = connect()
            self.domain = f"lv{uuid.uuid4().hex[:10]}"
            self.store = RoutingStore(self.client, self.domain)
            self.clock = FakeClock()
            self.settings = Settings(domain=self.domain, redis_url="")
            self.cfg = PolicyConfig.from_settings(self.settings)
            self.engine = Engine(self.store, self.settings, clock=self.clock)
            self._real_uuid = matching_module.uuid
            matching_module.uuid = CountingIds()  # type: ignore[assignment]
            self.scorer = ScriptedScorer()
            self.contacts: list[str] = []
            self.agents: dict[str, AgentView] = {}
            self.records: dict[str, ContactRecord] = {}
            # (agent, channel) -> since when (s) it has been seen available with a free slot on the channel
            self.free_since: dict[tuple[str, str], float] = {}

        # ---- helpers -------------------------------------------------------------------------------
        def send(self, event: dict[str, Any]) -> None:
            score = None
            if event["type"] == "contact.message" and event["speaker"] == "customer":
                score = self.scorer.one(event["text"])
            self.engine.handle(parse(event), uuid.uuid4().hex[:12], score)

        def observe(self) -> None:
            self.agents = {a.view.agent_id: a.view for a in self.store.load_agents(self.clock.ms, FAIR_MS)}
            recs = self.store.load_contacts(self.contacts)
            self.records = {cid: r for cid, r in zip(self.contacts, recs, strict=True) if r is not None}
            now = self.clock()
            for aid, a in self.agents.items():
                for ch in CHANNELS:
                    if a.status == "available" and a.free(ch) > 0:
                        self.free_since.setdefault((aid, ch), now)
                    else:
                        self.free_since.pop((aid, ch), None)

        def waiting(self) -> list[ContactRecord]:
            return [r for r in self.records.values() if r.view.status == "queued"]

        def offered(self) -> list[ContactRecord]:
            return sorted(
                (r for r in self.records.values() if r.view.status == "offered"),
                key=lambda r: r.view.contact_id,
            )

        # ---- set-up --------------------------------------------------------------------------------
        @initialize(
            agents=st.lists(
                st.tuples(st.integers(1, 5), st.integers(0, 2), st.integers(0, 1), languages),
                min_size=1,
                max_size=4,
            )
        )
        def hire(self, agents: list[tuple[int, int, int, tuple[str, ...]]]) -> None:
            for i, (eq, chat, voice, langs) in enumerate(agents):
                capacity = {"chat": chat, "voice": voice}
                add_agent(self.store, f"a{i}", eq=eq, capacity=capacity, languages=langs, status="offline")
                self.send({"type": "agent.status", "agent_id": f"a{i}", "status": "available"})

        # ---- contacts ------------------------------------------------------------------------------
        @precondition(lambda self: len(self.contacts) < MAX_CONTACTS)
        @rule(channel=st.sampled_from(CHANNELS), mot=st.booleans(), lang=st.sampled_from(["en", "en", "es"]))
        def contact_asks_for_a_human(self, channel: str, mot: bool, lang: str) -> None:
            cid = f"c{len(self.contacts)}"
            self.contacts.append(cid)
            self.send(started(cid, channel, lang=lang))
            if mot:
                self.send(message(cid, 0, "my card was stolen"))
            else:
                self.send({"type": "contact.human_requested", "contact_id": cid})

        @precondition(lambda self: self.offered())
        @rule(data=st.data(), accept=st.booleans())
        def agent_answers(self, data: st.DataObject, accept: bool) -> None:
            rec = data.draw(st.sampled_from(self.offered()))
            answer = "offer.accepted" if accept else "offer.declined"
            self.send({"type": answer, "offer_id": rec.view.offer_id})

        @precondition(lambda self: any(r.view.status != "ended" for r in self.records.values()))
        @rule(data=st.data())
        def work_ends(self, data: st.DataObject) -> None:
            """An assigned contact's work is completed, or any live contact ends (the customer hangs up)."""
            live = sorted(c for c, r in self.records.items() if r.view.status != "ended")
            cid = data.draw(st.sampled_from(live))
            rec = self.records[cid]
            if rec.view.status == "assigned" and data.draw(st.booleans()):
                self.send({"type": "work.completed", "agent_id": rec.view.agent_id, "contact_id": cid})
            else:
                self.send({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})

        @rule(data=st.data(), leaving=st.sampled_from(["away", "offline"]))
        def agent_comes_or_goes(self, data: st.DataObject, leaving: str) -> None:
            agent_id = data.draw(st.sampled_from(sorted(self.agents)))
            back = self.agents[agent_id].status != "available"
            self.send(
                {"type": "agent.status", "agent_id": agent_id, "status": "available" if back else leaving}
            )

        @rule(seconds=st.sampled_from([0.5, 5.0, 16.0, 60.0, 200.0]))
        def time_passes(self, seconds: float) -> None:
            """Offers nobody answered time out (a miss, remembered like a decline), and the sweep runs."""
            self.clock.advance(seconds)
            self.engine.sweep()
            self.observe()
            self.nobody_waits_out_the_memory()
            self.the_sweep_leaves_nobody_a_free_agent_could_take()
            self.long_waits_were_offered_a_callback()

        # ---- the properties --------------------------------------------------------------------------
        def free_agents_for(self, rec: ContactRecord) -> list[AgentView]:
            return [a for a in self.agents.values() if could_take(a, rec, self.clock(), self.cfg)]

        def nobody_waits_out_the_memory(self) -> None:
            now = self.clock()
            window_s = self.settings.decline_memory_s + self.settings.sweep_interval_s
            for rec in self.waiting():
                for a in self.free_agents_for(rec):
                    free_since = self.free_since.get((a.agent_id, rec.view.channel), now)
                    waited_for_a_s = now - eligible_since(a, rec, free_since, self.cfg)
                    assert waited_for_a_s <= window_s, (rec.view.contact_id, a.agent_id, waited_for_a_s)

        def reserved(self, a: AgentView, rec: ContactRecord) -> bool:
            """The high-EQ reserve keeps this free agent from this routine contact (for a bounded hold)."""
            now = self.clock()
            if not reserve_blocks(a, rec.view, rec.view.queue or "general", now, self.cfg):
                return False
            mot_total = self.store.mot_total_recent(self.clock.ms, FAIR_MS)
            return high_eq_reserve(list(self.agents.values()), rec.view.channel, mot_total, self.cfg).holds

        def declined(self, a: AgentView, rec: ContactRecord) -> bool:
            """The agent declined or missed the contact within the decline memory."""
            at_ms = rec.view.declined_ms.get(a.agent_id)
            return at_ms is not None and self.clock.ms - at_ms < self.settings.decline_memory_s * 1000

        def the_sweep_leaves_nobody_a_free_agent_could_take(self) -> None:
            for rec in self.waiting():
                eligible = self.free_agents_for(rec)
                free = [a for a in eligible if not self.reserved(a, rec)]
                if any(self.reserved(a, rec) and not self.declined(a, rec) for a in eligible):
                    # an agent the reserve holds back (a bounded hold) has not declined it: the ladder
                    # waits for that agent rather than ring again one who declined or missed it
                    free = [a for a in free if not self.declined(a, rec)]
                free = [a.agent_id for a in free]
                assert not free, (
                    rec.view.contact_id,
                    rec.view.declined_ms,
                    "waits, and these are free:",
                    free,
                )

        def long_waits_were_offered_a_callback(self) -> None:
            now = self.clock()
            policy = PolicyConfig.from_settings(self.settings)
            for rec in self.waiting():
                if now - (rec.view.enqueued_ts or now) >= policy.callback_threshold_for(rec.view.queue):
                    assert rec.raw.get("callback_ms"), (rec.view.contact_id, "no callback offered")

        @invariant()
        def track(self) -> None:
            self.observe()

        def teardown(self) -> None:
            matching_module.uuid = self._real_uuid
            keys = list(self.admin.scan_iter(match=f"router:{{{self.domain}}}:*", count=1000))
            if keys:
                self.admin.delete(*keys)
            self.client.close()
            self.admin.close()

    return Liveness


@pytest.mark.slow
def test_nobody_is_stranded(backend: str, request: pytest.FixtureRequest) -> None:
    connect = connector(backend, request)
    run_state_machine_as_test(make_machine(connect), settings=MACHINE_SETTINGS)
