"""The engine's state and its reads and commits through it.

One worker batch (or one sweep) reads the contacts, customers and agents it needs once and keeps what its own
commits wrote (``BatchState``); every transition still re-checks the version it relied on, so a stale cached
read only costs a 'conflict' and a fresh read. ``EngineCore`` holds that state for the matching
(router/worker/matching.py), the sweep (router/worker/sweep.py) and the event handlers
(router/worker/engine.py) built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from router.domain.model import AgentView, ContactView, Reason
from router.domain.mot import MotModel, MotThresholds, model_probability
from router.domain.policy import PolicyConfig
from router.domain.wait_forecast import Service, ServiceTimes, WaitForecast
from router.errors import ContactBlocked
from router.events import (
    ContactAudio,
    ContactEnded,
    ContactMessage,
    ContactStarted,
    Decision,
    HumanRequested,
    InboundEvent,
    WorkCompleted,
)
from router.settings import Settings
from router.store.codec import ContactRecord, contact_from_hash
from router.store.store import BatchReads, Commit, Outcome, RoutingStore
from router.worker.decisions import make_decision

# events that name a contact: their contacts are read for the whole batch in one round trip
CONTACT_EVENTS = (ContactStarted, ContactMessage, ContactAudio, HumanRequested, ContactEnded, WorkCompleted)

# a contact as our own commit left it: its hash, and its declines (decoded only when read)
Written = tuple[dict[str, str], Mapping[str, int]]


@dataclass
class Deferred:
    """An event whose commit waits for the batch's next pipeline: its outcome once sent. 'blocked': not
    tried, because an earlier deferred commit of the same contact did not apply; the worker applies it
    after that one (stream order)."""

    outcome: Outcome | None = None


@dataclass
class EngineCounters:
    decisions: int = 0
    conflicts: int = 0
    offers: int = 0
    timeouts: int = 0


@dataclass
class BatchState:
    """What one worker batch or one sweep keeps between its events; ``BatchState()`` between them (nothing
    cached: every read is fresh, every commit is sent at once)."""

    # the contacts and customers the batch's events name, read in one round trip; each is taken out on use
    reads: BatchReads | None = None
    # queued contacts read for agent pulls, reused for the rest of the batch or sweep (None: outside one).
    # A long queue made each pull read 100 contacts; a stale one here only costs a refused offer, after
    # which it is read again.
    queued: dict[str, ContactRecord] | None = None
    # contacts as our own commits left them in this batch
    written: dict[str, Written] = field(default_factory=dict)
    # deferred commits: only inside a worker batch, and only for commits nothing in the event waits on
    defer: bool = False
    inflight: set[str] = field(default_factory=set)  # contacts with a deferred commit not yet sent
    blocked: set[str] = field(default_factory=set)  # contacts whose deferred commit did not apply


def _agent_key(a: AgentView) -> str:
    return a.agent_id


class EngineCore:
    def __init__(
        self,
        store: RoutingStore,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        mot_model: MotModel | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.cfg = PolicyConfig.from_settings(settings)
        # the learned detector only where the worker's scorer is the transformer it was trained on
        self.th = MotThresholds.from_settings(settings, mot_model)
        self.clock = clock
        self.counters = EngineCounters()
        self._retries = settings.conflict_retries
        self._fair_ms = int(settings.fairness_window_s * 1000)
        self._decline_memory_ms = int(settings.decline_memory_s * 1000)
        self._state = BatchState()
        # the agents as last read (see _agents): kept past a batch, dropped at the next one or a sweep
        self._snapshot: tuple[list[AgentView], int] | None = None
        self._times: ServiceTimes | None = None  # the measured service times, dropped with the snapshot
        # the event being handled: its content digest (its commits carry it), whether the current attempt
        # decided on a batch-cached contact, and its deferred commit
        self._digest = ""
        self._used_cache = False
        self._pending: Deferred | None = None

    @property
    def batch_state(self) -> BatchState:
        """The state of the batch or sweep in hand, to read (tests); ``BatchState()`` between them."""
        return self._state

    # ---- batch reads ----------------------------------------------------------------------------
    def begin_batch(self, events: Sequence[InboundEvent], *, defer: bool = False) -> None:
        """Read every contact and customer the batch's events name in one round trip, and take a new
        agent snapshot on first use (supervisors' edits and other workers' offers apply from the next
        batch). A cached read may be stale (another worker committed since): every transition re-checks
        the contact version it relied on, and the retry after a 'conflict' reads fresh."""
        self.refresh_agents()
        cids = [ev.contact_id for ev in events if isinstance(ev, CONTACT_EVENTS)]
        uids = [ev.customer.id for ev in events if isinstance(ev, ContactStarted)]
        self._state = BatchState(reads=self.store.load_batch(cids, uids), queued={}, defer=defer)

    def settle(self) -> None:
        """Send what is still deferred; what follows (the worker's retries) runs undeferred."""
        self.store.flush()
        self._state.defer = False
        self._state.blocked.clear()

    def end_batch(self) -> None:
        self._state = BatchState()
        self.store.discard_deferred()  # only left by a batch that raised: its events were not acked

    def _deferring(self, contact_id: str) -> Callable[[Outcome], None]:
        """The deferred commit's outcome handler; the event's Deferred is handed to handle()."""
        d = self._pending = Deferred()
        self._state.inflight.add(contact_id)

        def settled(out: Outcome) -> None:
            d.outcome = out
            self._state.inflight.discard(contact_id)
            if not out.ok:
                self._state.written.pop(contact_id, None)
                if out.status != "dup":  # later events of the contact wait for this one's retry
                    self._state.blocked.add(contact_id)

        return settled

    def _contact(self, contact_id: str, *, own: bool = False) -> ContactRecord | None:
        """The contact from the batch cache (taken out: a second read goes to Redis unless our own commit
        put the new state back), else a fresh read. ``own``: the event's own contact, which waits while
        an earlier deferred commit of it did not apply."""
        st = self._state
        if contact_id in st.inflight:
            self.store.flush()
        if own and contact_id in st.blocked:
            raise ContactBlocked(contact_id)
        if contact_id in st.written:
            self._used_cache = True
            return contact_from_hash(*st.written.pop(contact_id))
        if st.reads is not None and contact_id in st.reads.contacts:
            self._used_cache = True
            return st.reads.contacts.pop(contact_id)
        if st.queued is not None and contact_id in st.queued:
            self._used_cache = True
            return st.queued.pop(contact_id)
        return self.store.load_contact(contact_id)

    def _forget(self, contact_id: str) -> None:
        """A transition other than apply_contact changed the contact: its cached state is void."""
        st = self._state
        st.written.pop(contact_id, None)
        if st.reads is not None:
            st.reads.contacts.pop(contact_id, None)
        if st.queued is not None:
            st.queued.pop(contact_id, None)

    def _customer(self, customer_id: str) -> dict[str, str]:
        if self._state.reads is not None and customer_id in self._state.reads.customers:
            return self._state.reads.customers.pop(customer_id)
        return self.store.customer(customer_id)

    def _apply(
        self,
        commit: Commit,
        rec: ContactRecord | None,
        contact_id: str,
        fields: dict[str, str],
        *,
        final: bool = False,
        **kw: Any,
    ) -> Outcome:
        """apply_contact at ``rec``'s version; on success the batch cache holds the state just written
        (the old hash with ``fields`` over it: exactly what the script wrote), so the match that follows
        and later events of the batch need no read. ``final``: nothing in the event depends on the
        outcome, so in a worker batch the commit may wait for the next pipeline ('deferred')."""
        if self._state.queued is not None:
            self._state.queued.pop(contact_id, None)  # from here on, written (or a fresh read) says it
        version = rec.version if rec is not None else 0
        raw = {**(rec.raw if rec is not None else {}), **fields, "version": str(version + 1)}
        written: Written = (raw, rec.view.declined_ms if rec else {})
        if final and self._state.defer:
            self._state.written[contact_id] = written  # read only after the flush said 'ok' (see _contact)
            done = self._deferring(contact_id)
            return self.store.apply_contact(commit, contact_id, version, fields, defer=done, **kw)
        out = self.store.apply_contact(commit, contact_id, version, fields, **kw)
        if out.ok and self._state.reads is not None:
            self._state.written[contact_id] = written
        return out

    def _mark(self, eid: str) -> Outcome:
        """An event that changes nothing is still applied once. A mark re-checks no version, so a decision
        to mark that rests on a batch-cached read is confirmed on a fresh read first ('stale': retry)."""
        if self._used_cache:
            return Outcome("stale")
        return self.store.mark(self._commit(eid))

    def _commit(self, eid: str, decisions: Sequence[Decision] = ()) -> Commit:
        return Commit(
            event_id=eid,
            decisions=tuple((d.contact_id, d.model_dump_json()) for d in decisions),
            stream_event=True,
            digest=self._digest,
        )

    # ---- agent snapshot -------------------------------------------------------------------------
    def _agents(self, now: float) -> tuple[list[AgentView], int]:
        """The agents as last read, and the domain's recent moments of truth. Reading every agent costs a
        hash per agent, so one snapshot serves a whole batch (or sweep) and is patched after our own
        offers. A stale snapshot is safe: the offer script re-checks status, capacity and declines, and a
        refused offer drops the snapshot, so the retry decides on fresh state."""
        if self._snapshot is None:
            self._snapshot = self.store.agent_snapshot(
                int(now * 1000), self._fair_ms, outcomes=self.cfg.outcome is not None
            )
        return self._snapshot

    def refresh_agents(self) -> None:
        """Forget the agent snapshot (a new batch, a sweep, or our own commit that freed capacity)."""
        self._snapshot = None
        self._times = None

    def _service(self, channel: str) -> Service:
        """How slots free on ``channel``, as the store measured it: read once per agent snapshot (a hash
        and a list), since outcome-aware matching asks for it for every contact it weighs."""
        if self._times is None:
            self._times = self.store.service_times()
        return self._times.for_channel(channel, self.settings.expected_handle_s)

    def _refresh_agent(self, agent_id: str) -> None:
        """Re-read one agent after our own commit changed it (freed capacity, new status): a hash, not the
        whole floor. The domain's moment-of-truth count only grows with offers, which _took counts."""
        if self._snapshot is None:
            return
        agents, mot_total = self._snapshot
        fresh = self.store.agent_view(
            agent_id, self._now_ms(), self._fair_ms, outcomes=self.cfg.outcome is not None
        )
        rest = [a for a in agents if a.agent_id != agent_id]
        if fresh is not None:  # the snapshot stays in agent id order, as read
            rest = sorted([*rest, fresh], key=_agent_key)
        self._snapshot = (rest, mot_total)

    def _freed(self, agent_id: str, channel: str) -> None:
        """Patch the snapshot after our release took one unit of the agent's load on ``channel`` (as the
        release script does); cheaper than a read, and a wrong guess only costs a refused offer."""
        if self._snapshot is None:
            return
        agents, mot_total = self._snapshot
        patched = [
            replace(a, load={**a.load, channel: max(0, a.load.get(channel, 0) - 1)})
            if a.agent_id == agent_id
            else a
            for a in agents
        ]
        self._snapshot = (patched, mot_total)

    def _took(self, agent_id: str, channel: str, now: float, mot: bool) -> None:
        """Patch the snapshot after our own offer, as the offer script changed the agent."""
        if self._snapshot is None:
            return
        agents, mot_total = self._snapshot
        patched = [
            replace(
                a,
                load={**a.load, channel: a.load.get(channel, 0) + 1},
                last_assigned_ts=now,
                mot_recent=a.mot_recent + int(mot),
            )
            if a.agent_id == agent_id
            else a
            for a in agents
        ]
        self._snapshot = (patched, mot_total + int(mot))

    # ---- helpers --------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _decision(
        self,
        eid: str,
        v: ContactView,
        action: str,
        now: float,
        reasons: Sequence[Reason],
        *,
        agent_id: str | None = None,
        queue: str | None = None,
        offer_id: str | None = None,
        wait: WaitForecast | None = None,
    ) -> Decision:
        self.counters.decisions += 1
        return make_decision(
            event_id=eid,
            contact_id=v.contact_id,
            action=action,  # type: ignore[arg-type]
            now_s=now,
            reasons=reasons,
            agent_id=agent_id,
            queue=queue if queue is not None else v.queue,
            offer_id=offer_id,
            priority=v.priority,
            moment_of_truth=v.moment_of_truth,
            intensity=v.trajectory.peak,
            wait=wait,
            mot_prob=self._mot_prob(v),
        )

    def _mot_prob(self, v: ContactView) -> float | None:
        if v.trajectory.turns == 0:
            return None
        if self.th.model is None:
            return v.trajectory.mot_peak
        return model_probability(v, self.th.model)
