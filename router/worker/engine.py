"""Applies one validated event to the domain: contact state, placement, reservations, decisions.

Every handler follows the same shape: read a snapshot, decide with the pure policy in ``router.domain``,
commit with one Lua script that re-checks what the decision relied on. A script that finds the state
moved answers 'conflict' and the handler starts over from a fresh read, so concurrent workers never
need locks, and a redelivered event finds its seen marker and changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from router.domain.ewt import callback_reason
from router.domain.matching import choose_by_outcome, reserved_channels
from router.domain.model import QUEUES, AgentView, ContactView, Reason
from router.domain.mot import MotModel, MotThresholds, detect, model_probability, observe_turn
from router.domain.policy import (
    AgentChoice,
    PolicyConfig,
    choose_contact,
    place,
    queue_score,
    queued_for_s,
)
from router.domain.turns import classify_turn
from router.domain.voice import VoiceFeatures
from router.domain.wait_forecast import WaitForecast, competing_ahead, forecast, stages
from router.errors import EventError, StoreError
from router.events import (
    CONFLICTING_DUPLICATE,
    AgentStatusChanged,
    ContactAudio,
    ContactEnded,
    ContactMessage,
    ContactStarted,
    Decision,
    HumanRequested,
    InboundEvent,
    OfferAccepted,
    OfferDeclined,
    WorkCompleted,
    event_digest,
)
from router.scoring.protocol import EmotionScore
from router.scoring.topics import MOT_TOPICS
from router.settings import Settings
from router.store.codec import ContactRecord, contact_fields, contact_from_hash
from router.store.store import BatchReads, Commit, CustomerTouch, OfferInfo, Outcome, RoutingStore
from router.worker.decisions import make_decision
from router.worker.voice import VOICE_BASELINE, VOICE_PENDING, voice_on_audio, voice_on_message

log = logging.getLogger(__name__)


TRANSCRIPT_TEXT_CHARS = 500  # characters of each turn's text kept in the contact's transcript tail
# events that name a contact: their contacts are read for the whole batch in one round trip
CONTACT_EVENTS = (ContactStarted, ContactMessage, ContactAudio, HumanRequested, ContactEnded, WorkCompleted)
# contacts per queue the sweep checks for a due callback. Not queue_scan_limit: a callback is owed to
# everyone who has waited long, also behind the heads that matching looks at.
CALLBACK_SCAN = 1_000
# moments of truth matched over the whole floor when an agent frees a slot (outcome-aware matching only)
MOT_PULL_SCAN = 5


class RetryLater(Exception):
    """The event cannot be applied yet (e.g. a message before its contact.started): leave it pending so it
    is redelivered; after ``max_deliveries`` it is dead-lettered with this reason."""


@dataclass
class Deferred:
    """An event whose commit waits for the batch's next pipeline: its outcome once sent. 'blocked': not
    tried, because an earlier deferred commit of the same contact did not apply; the worker applies it
    after that one (stream order)."""

    outcome: Outcome | None = None


class _Blocked(Exception):
    pass


@dataclass
class EngineCounters:
    decisions: int = 0
    conflicts: int = 0
    offers: int = 0
    timeouts: int = 0


def _wait_text(w: WaitForecast) -> str:
    return f"estimated wait {w.mean_s:.0f} s (80% within {w.low_s:.0f}-{w.high_s:.0f} s)"


def _reasons_from_json(raw: str) -> tuple[Reason, ...]:
    if not raw:
        return ()
    return tuple(Reason(d["code"], d["text"]) for d in json.loads(raw))


def _agent_key(a: AgentView) -> str:
    return a.agent_id


def _reasons_json(reasons: Sequence[Reason]) -> str:
    return json.dumps([{"code": r.code, "text": r.text} for r in reasons])


class Engine:
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
        self._digest = ""  # the content digest of the event being handled (its commits carry it)
        self._snapshot: tuple[list[AgentView], int] | None = None
        self._fair_ms = int(settings.fairness_window_s * 1000)
        self._decline_memory_ms = int(settings.decline_memory_s * 1000)
        self._batch: BatchReads | None = None
        # contacts as our own commits left them in this batch (hash, declines), decoded only when read
        self._written: dict[str, tuple[dict[str, str], Mapping[str, int]]] = {}
        self._used_cache = False  # the current attempt decided on a batch-cached contact
        # deferred commits: only inside a worker batch, and only for commits nothing in the event waits on
        self._defer = False
        self._inflight: set[str] = set()  # contacts with a deferred commit not yet sent
        self._blocked: set[str] = set()  # contacts whose deferred commit did not apply
        self._pending: Deferred | None = None
        # queued contacts read for agent pulls, reused for the rest of the batch or sweep (None: outside
        # one, every read is fresh). A long queue made each pull read 100 contacts; a stale one here only
        # costs a refused offer, after which it is read again.
        self._queued: dict[str, ContactRecord] | None = None

    # ---- batch reads ----------------------------------------------------------------------------
    def begin_batch(self, events: Sequence[InboundEvent], *, defer: bool = False) -> None:
        """Read every contact and customer the batch's events name in one round trip, and take a new
        agent snapshot on first use (supervisors' edits and other workers' offers apply from the next
        batch). A cached read may be stale (another worker committed since): every transition re-checks
        the contact version it relied on, and the retry after a 'conflict' reads fresh."""
        self.refresh_agents()
        cids = [ev.contact_id for ev in events if isinstance(ev, CONTACT_EVENTS)]
        uids = [ev.customer.id for ev in events if isinstance(ev, ContactStarted)]
        self._batch = self.store.load_batch(cids, uids)
        self._queued = {}
        self._defer = defer

    def settle(self) -> None:
        """Send what is still deferred; what follows (the worker's retries) runs undeferred."""
        self.store.flush()
        self._defer = False
        self._blocked.clear()

    def end_batch(self) -> None:
        self._batch = None
        self._queued = None
        self._written.clear()
        self._defer = False
        self._inflight.clear()
        self._blocked.clear()
        self.store.discard_deferred()  # only left by a batch that raised: its events were not acked

    def _deferring(self, contact_id: str) -> Callable[[Outcome], None]:
        """The deferred commit's outcome handler; the event's Deferred is handed to handle()."""
        d = self._pending = Deferred()
        self._inflight.add(contact_id)

        def settled(out: Outcome) -> None:
            d.outcome = out
            self._inflight.discard(contact_id)
            if not out.ok:
                self._written.pop(contact_id, None)
                if out.status != "dup":  # later events of the contact wait for this one's retry
                    self._blocked.add(contact_id)

        return settled

    def _contact(self, contact_id: str, *, own: bool = False) -> ContactRecord | None:
        """The contact from the batch cache (taken out: a second read goes to Redis unless our own commit
        put the new state back), else a fresh read. ``own``: the event's own contact, which waits while
        an earlier deferred commit of it did not apply."""
        if contact_id in self._inflight:
            self.store.flush()
        if own and contact_id in self._blocked:
            raise _Blocked(contact_id)
        if contact_id in self._written:
            self._used_cache = True
            return contact_from_hash(*self._written.pop(contact_id))
        if self._batch is not None and contact_id in self._batch.contacts:
            self._used_cache = True
            return self._batch.contacts.pop(contact_id)
        if self._queued is not None and contact_id in self._queued:
            self._used_cache = True
            return self._queued.pop(contact_id)
        return self.store.load_contact(contact_id)

    def _forget(self, contact_id: str) -> None:
        """A transition other than apply_contact changed the contact: its cached state is void."""
        self._written.pop(contact_id, None)
        if self._batch is not None:
            self._batch.contacts.pop(contact_id, None)
        if self._queued is not None:
            self._queued.pop(contact_id, None)

    def _customer(self, customer_id: str) -> dict[str, str]:
        if self._batch is not None and customer_id in self._batch.customers:
            return self._batch.customers.pop(customer_id)
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
        if self._queued is not None:
            self._queued.pop(contact_id, None)  # from here on, _written (or a fresh read) says it
        version = rec.version if rec is not None else 0
        raw = {**(rec.raw if rec is not None else {}), **fields, "version": str(version + 1)}
        written: tuple[dict[str, str], Mapping[str, int]] = (raw, rec.view.declined_ms if rec else {})
        if final and self._defer:
            self._written[contact_id] = written  # read only after the flush said 'ok' (see _contact)
            done = self._deferring(contact_id)
            return self.store.apply_contact(commit, contact_id, version, fields, defer=done, **kw)
        out = self.store.apply_contact(commit, contact_id, version, fields, **kw)
        if out.ok and self._batch is not None:
            self._written[contact_id] = written
        return out

    def _mark(self, eid: str) -> Outcome:
        """An event that changes nothing is still applied once. A mark re-checks no version, so a decision
        to mark that rests on a batch-cached read is confirmed on a fresh read first ('stale': retry)."""
        if self._used_cache:
            return Outcome("stale")
        return self.store.mark(self._commit(eid))

    # ---- entry point ----------------------------------------------------------------------------
    def handle(
        self,
        event: InboundEvent,
        event_id: str,
        score: EmotionScore | None = None,
        voice: VoiceFeatures | None = None,
    ) -> Deferred | None:
        """Apply one event exactly once (a redelivery finds its seen marker and is a no-op). ``score``: a
        customer message's text score; ``voice``: a contact.audio's features. Inside a worker batch the
        commit may be deferred: the Deferred then says, after ``settle``, whether it applied. An event id
        applied before with other content raises ``EventError`` ('conflicting_duplicate'): the worker
        dead-letters it."""
        self._digest = event_digest(event)
        for _ in range(self._retries):
            self._used_cache = False
            self._pending = None
            try:
                outcome = self._dispatch(event, event_id, score, voice)
            except _Blocked:
                return Deferred(Outcome("blocked"))
            if outcome is not None and outcome.status == "deferred":
                return self._pending
            if outcome is None or outcome.status in ("ok", "dup"):
                return None
            if outcome.status == "stale":
                continue
            if outcome.status == "conflict":
                self.counters.conflicts += 1
                continue
            if outcome.reason == CONFLICTING_DUPLICATE:
                raise EventError(
                    f"{CONFLICTING_DUPLICATE}: event_id {event_id} was applied before with other content "
                    f"(digest {outcome.detail[1] if len(outcome.detail) > 1 else '?'})"
                )
            raise StoreError(f"{event.type} {event_id}: {outcome.status} {outcome.detail}")
        raise StoreError(f"{event.type} {event_id}: still conflicting after {self._retries} tries")

    def _dispatch(
        self, ev: InboundEvent, eid: str, score: EmotionScore | None, voice: VoiceFeatures | None
    ) -> Outcome | None:
        if isinstance(ev, ContactStarted):
            return self._started(ev, eid)
        if isinstance(ev, ContactMessage):
            return self._message(ev, eid, score)
        if isinstance(ev, ContactAudio):
            return self._audio(ev, eid, voice)
        if isinstance(ev, HumanRequested):
            return self._human_requested(ev, eid)
        if isinstance(ev, ContactEnded):
            return self._ended(ev, eid)
        if isinstance(ev, AgentStatusChanged):
            return self._agent_status(ev, eid)
        if isinstance(ev, OfferAccepted | OfferDeclined):
            return self._offer_response(ev, eid)
        return self._completed(ev, eid)

    def _commit(self, eid: str, decisions: Sequence[Decision] = ()) -> Commit:
        return Commit(
            event_id=eid,
            decisions=tuple((d.contact_id, d.model_dump_json()) for d in decisions),
            stream_event=True,
            digest=self._digest,
        )

    def _need_contact(self, contact_id: str) -> ContactRecord:
        rec = self._contact(contact_id, own=True)
        if rec is None and self._used_cache:  # the start may have been committed since the batch read
            rec = self.store.load_contact(contact_id)
        if rec is None:
            raise RetryLater(f"unknown_contact: {contact_id} has no contact.started yet")
        return rec

    # ---- contact events -------------------------------------------------------------------------
    def _started(self, ev: ContactStarted, eid: str) -> Outcome | None:
        now = self.clock()
        rec = self._contact(ev.contact_id, own=True)
        if rec is not None and rec.view.status != "ended":
            return self._mark(eid)  # a second start of a live contact changes nothing
        customer = self._customer(ev.customer.id)
        last_agent_ms = float(customer.get("last_agent_ms") or 0)
        last_contact_ms = float(customer.get("last_contact_ms") or 0)
        recent_s = self.settings.affinity_ttl_s
        topic = ev.topic if ev.topic in MOT_TOPICS else None
        view = ContactView(
            contact_id=ev.contact_id,
            channel=ev.channel,
            language=ev.customer.language,
            tier=ev.customer.tier,
            customer_id=ev.customer.id,
            status="new",
            topic=topic,
            topic_prob=1.0 if topic else 0.0,
            repeat_contact=last_contact_ms > 0 and now - last_contact_ms / 1000 < recent_s,
            created_ts=now,
            last_agent_id=(customer.get("last_agent_id") or None)
            if last_agent_ms and now - last_agent_ms / 1000 < recent_s
            else None,
        )
        touch = CustomerTouch(ev.customer.id, int(now * 1000), int(self.settings.affinity_ttl_s))
        # a restarted contact starts afresh: no transcript or voice, and a callback may be offered again
        fresh = {"transcript": "[]", "callback_ms": "", VOICE_BASELINE: "", VOICE_PENDING: ""}
        return self._place(eid, view, rec, fresh, (), customer=touch)

    def _message(self, ev: ContactMessage, eid: str, score: EmotionScore | None) -> Outcome | None:
        rec = self._need_contact(ev.contact_id)
        repeat = classify_turn(rec.transcript, ev.seq, ev.speaker, ev.text, TRANSCRIPT_TEXT_CHARS)
        if repeat == "duplicate":
            return self._mark(eid)  # applied once already: no second turn, no second score
        if repeat == "conflict":
            raise EventError(
                f"conflicting_seq: {ev.contact_id} already has {ev.speaker} turn seq {ev.seq} with other text"
            )
        view = rec.view
        text = ev.text[:TRANSCRIPT_TEXT_CHARS]
        entry: dict[str, object] = {"seq": ev.seq, "speaker": ev.speaker, "text": text}
        trigger: tuple[Reason, ...] = ()
        extra: dict[str, str] = {}
        if ev.speaker == "customer" and score is not None and view.status != "ended":
            turn = score.turn(ev.seq)
            voice = voice_on_message(ev, rec, turn, self.settings.acoustic_gain)
            if voice is not None:
                turn, trigger = voice.turn, voice.reasons
                extra.update(voice.fields)
                entry.update(voice.entry)
            view, asked = observe_turn(view, turn, self.th)
            if asked:
                n = view.trajectory.turns
                trigger += (Reason("human_requested_in_text", f"customer asked for a person on turn {n}"),)
            entry["intensity"] = round(turn.intensity, 3)
            entry["mot_prob"] = round(turn.mot_prob, 3)
        tail = [*rec.transcript, entry][-self.settings.transcript_tail :]
        extra["transcript"] = json.dumps(tail)
        if ev.speaker != "customer" or view.status == "ended":
            return self._apply(self._commit(eid), rec, ev.contact_id, extra, final=True)
        return self._place(eid, view, rec, extra, trigger)

    def _audio(self, ev: ContactAudio, eid: str, voice: VoiceFeatures | None) -> Outcome | None:
        """A voice turn's audio features (extracted by the worker): kept until its transcript comes, or
        applied to the transcript's turn (router/worker/voice.py)."""
        rec = self._need_contact(ev.contact_id)
        step = None
        if voice is not None and rec.view.status != "ended":
            step = voice_on_audio(ev.seq, rec, voice, self.settings.acoustic_gain)
        if step is None:
            return self._mark(eid)
        if step.view is None:
            return self._apply(self._commit(eid), rec, ev.contact_id, step.fields, final=True)
        return self._place(eid, step.view, rec, step.fields, step.reasons)

    def _human_requested(self, ev: HumanRequested, eid: str) -> Outcome | None:
        rec = self._need_contact(ev.contact_id)
        if rec.view.status == "ended":
            return self._mark(eid)
        view = replace(rec.view, wants_human=True)
        reason = Reason("human_requested", "customer asked for a person")
        return self._place(eid, view, rec, {}, (reason,))

    def _place(
        self,
        eid: str,
        view: ContactView,
        rec: ContactRecord | None,
        extra: dict[str, str],
        trigger: tuple[Reason, ...],
        customer: CustomerTouch | None = None,
    ) -> Outcome:
        """Re-evaluate where the contact belongs and commit that together with the event's seen marker
        (at ``rec``'s version; None: a new contact)."""
        now = self.clock()
        verdict = detect(view, self.th)
        view = replace(view, moment_of_truth=verdict.is_mot)
        placement = place(view, verdict, self.cfg)
        reasons = (*trigger, *placement.reasons)  # place() already leads with the verdict's reasons
        fields = {**contact_fields(view), **extra}
        if verdict.is_mot:
            fields["mot_reasons"] = _reasons_json(verdict.reasons)
        if placement.target == "self_service" or view.status in ("offered", "assigned"):
            decisions: list[Decision] = []
            if view.status == "new":
                fields["status"] = "self_service"
                decisions.append(self._decision(eid, view, "self_service", now, placement.reasons))
            commit = self._commit(eid, decisions)
            return self._apply(commit, rec, view.contact_id, fields, final=True, customer=customer)
        queue = placement.queue or "general"
        same_queue = view.status == "queued" and view.queue == queue
        enq_ts = view.enqueued_ts if view.status == "queued" and view.enqueued_ts is not None else now
        fields.update(
            status="queued",
            queue=queue,
            priority=f"{placement.priority:.4f}",
            enqueued_ms=str(int(enq_ts * 1000)),
            route_reasons=_reasons_json(reasons),
        )
        score = queue_score(enq_ts, placement.priority, self.cfg)
        out = self._apply(
            self._commit(eid),
            rec,
            view.contact_id,
            fields,
            leave_queue=view.queue if view.status == "queued" and view.queue else None,
            join_queue=queue,
            join_score=score,
            customer=customer,
        )
        if out.ok:
            # the first offer (or a "queued" decision with the wait estimate) follows; if this process dies
            # here, the periodic sweep makes the offer instead
            self.match_contact(view.contact_id, announce=not same_queue, cause=eid)
        return out

    def _ended(self, ev: ContactEnded, eid: str) -> Outcome | None:
        # another worker may still be applying the contact's start: retry, dead-letter after max_deliveries
        rec = self._need_contact(ev.contact_id)
        if rec.view.status == "ended":
            return self._mark(eid)
        fields = {"end_reason": ev.reason}
        if ev.csat is not None:
            fields["csat"] = str(ev.csat)
        return self._release(eid, rec, fields, f"contact ended ({ev.reason})")

    def _completed(self, ev: WorkCompleted, eid: str) -> Outcome | None:
        rec = self._need_contact(ev.contact_id)
        if rec.view.agent_id != ev.agent_id or rec.view.status not in ("offered", "assigned"):
            return self._mark(eid)  # stale completion: the contact moved on already
        return self._release(eid, rec, {}, f"agent {ev.agent_id} completed the work")

    def _release(self, eid: str, rec: ContactRecord, fields: dict[str, str], why: str) -> Outcome:
        now = self.clock()
        v = rec.view
        decisions = []
        if v.status in ("queued", "offered", "assigned"):
            decisions.append(
                self._decision(eid, v, "released", now, (Reason("released", why),), agent_id=v.agent_id)
            )
        if self._batch is not None:
            self._batch.customers.pop(v.customer_id, None)  # the release writes its last agent
        if self._queued is not None:
            self._queued.pop(v.contact_id, None)  # a queued contact that ends leaves its queue
        # nothing to pull when no agent is freed: the commit may then wait for the batch's pipeline
        defer = self._deferring(v.contact_id) if self._defer and not v.agent_id else None
        out = self.store.release(
            self._commit(eid, decisions),
            rec,
            now_ms=int(now * 1000),
            fields=fields,
            end_contact=True,
            affinity_ttl_s=int(self.settings.affinity_ttl_s),
            defer=defer,
        )
        if out.ok and v.agent_id:
            self._freed(v.agent_id, v.channel)
            self.pull_for_agent(v.agent_id, eid)
        return out

    # ---- agent and offer events -----------------------------------------------------------------
    def _agent_status(self, ev: AgentStatusChanged, eid: str) -> Outcome | None:
        if self.store.load_agent(ev.agent_id) is None:
            raise EventError(f"unknown_agent: {ev.agent_id} is not registered")
        now = self.clock()
        pending = self.store.agent_pending_offers(ev.agent_id)
        live = [o for o in pending if o.status == "pending"]
        contacts = self.store.load_contacts([o.contact_id for o in live])  # fresh: requeue places
        requeue: list[tuple[OfferInfo, float]] = []
        decisions = []
        for offer, rec in zip(live, contacts, strict=True):
            enq = rec.view.enqueued_ts if rec and rec.view.enqueued_ts is not None else now
            prio = rec.view.priority if rec else 0.0
            requeue.append((offer, queue_score(enq, prio, self.cfg)))
            if ev.status != "available" and rec is not None:
                why = Reason(
                    "agent_left", f"agent {ev.agent_id} went {ev.status}; offer revoked, contact re-queued"
                )
                decisions.append(self._decision(eid, rec.view, "released", now, (why,), agent_id=ev.agent_id))
        stale = [(o, 0.0) for o in pending if o.status != "pending"]
        out = self.store.agent_status(
            self._commit(eid, decisions),
            ev.agent_id,
            ev.status,
            now_ms=int(now * 1000),
            requeue=requeue + stale,
        )
        if out.ok:
            for offer, _ in requeue:
                self._forget(offer.contact_id)
            self._refresh_agent(ev.agent_id)
            if ev.status == "available":
                self.pull_for_agent(ev.agent_id, eid)
            else:
                for offer, _ in requeue:
                    self.match_contact(offer.contact_id, announce=False, cause=eid)
        return out

    def _offer_response(self, ev: OfferAccepted | OfferDeclined, eid: str) -> Outcome | None:
        offer = self.store.load_offer(ev.offer_id)
        if offer is None:
            raise EventError(f"unknown_offer: {ev.offer_id}")
        if offer.status != "pending":
            return self.store.mark(self._commit(eid))  # late answer to an offer that timed out or was revoked
        if isinstance(ev, OfferAccepted):
            out = self.store.resolve_offer(
                self._commit(eid),
                offer,
                "accepted",
                now_ms=self._now_ms(),
                requeue_score=0,
                decline_memory_ms=self._decline_memory_ms,
            )
        else:
            out = self._give_back(self._commit, eid, offer, "declined")
        if out.status == "err" and out.reason == "offer_not_pending":
            # the offer timed out or was revoked between our read and the script: read again, and the
            # answer is then a late one (marked applied) instead of an error left pending
            return Outcome("conflict", out.detail)
        return out

    def _give_back(self, commit: Callable[..., Commit], eid: str, offer: OfferInfo, mode: str) -> Outcome:
        """Declined or timed out: free the agent, requeue the contact at its old place, try someone else."""
        now = self.clock()
        rec = self.store.load_contact(offer.contact_id)
        enq = rec.view.enqueued_ts if rec and rec.view.enqueued_ts is not None else now
        prio = rec.view.priority if rec else 0.0
        decisions = []
        if rec is not None:
            what = "declined" if mode == "declined" else "did not answer in time"
            text = f"agent {offer.agent_id} {what}; re-queued"
            decisions.append(
                self._decision(
                    eid or "sweep",  # like the re-offer that follows: the sweep caused it, not an event
                    rec.view,
                    "released",
                    now,
                    (Reason(f"offer_{mode}", text),),
                    agent_id=offer.agent_id,
                )
            )
        out = self.store.resolve_offer(
            commit(eid, decisions),
            offer,
            mode,
            now_ms=int(now * 1000),
            requeue_score=queue_score(enq, prio, self.cfg),
            decline_memory_ms=self._decline_memory_ms,
        )
        if out.ok:
            self._forget(offer.contact_id)
            self._refresh_agent(offer.agent_id)
            # a contact every agent keeps declining is in its queue only between offers: matching it here
            # offers the callback it is owed before the next ring (the sweep may never see it queued)
            self.match_contact(offer.contact_id, announce=False, cause=eid or "sweep")
            self.pull_for_agent(offer.agent_id, eid or "sweep")
        return out

    # ---- matching -------------------------------------------------------------------------------
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

    def match_contact(self, contact_id: str, *, announce: bool, cause: str = "") -> str | None:
        """Offer a queued contact to the best eligible agent. With ``announce``, a contact left waiting gets
        a 'queued' (or 'callback_offer') decision with its wait estimate. ``cause`` is the id of the event
        that led here (the decision's event_id). Returns the action taken."""
        for _ in range(self._retries):
            rec = self._contact(contact_id)
            if rec is None or rec.view.status != "queued":
                return None
            now = self.clock()
            agents, mot_total = self._agents(now)
            queue = rec.view.queue or "general"
            choice = choose_by_outcome(
                rec.view, queue, agents, now, self.cfg, mot_total, self._ahead(queue, contact_id)
            )
            route = _reasons_from_json(rec.raw.get("route_reasons", ""))
            if self._callback_due(rec, now) and (choice.agent_id is None or choice.all_declined):
                # the callback is owed before anyone rings again: were the re-offer first, every worker's
                # sweep could re-offer it between the rings and the callback would wait as long as they last
                out = self._announce_wait(rec, queue, choice, route, now, cause)
                if out.ok and choice.agent_id is None:
                    return "callback_offer"
                continue  # read it afresh: conflicted, or the callback is recorded and the re-offer follows
            if choice.agent_id is not None:
                reasons = (*route, *choice.reasons)
                if self._offer(rec, queue, choice.agent_id, reasons, now, cause, choice.all_declined):
                    return "offer"
                continue
            if not announce:
                return None
            out = self._announce_wait(rec, queue, choice, route, now, cause)
            if out.status != "conflict":
                return "queued"
        return None

    def _ahead(self, queue: str, contact_id: str) -> int:
        """Contacts before this one in its moment-of-truth queue, who want the better agents too (only
        outcome-aware matching weighs it; one round trip)."""
        if self.cfg.outcome is None or queue != "mot":
            return 0
        return self.store.queue_position(queue, contact_id) or 0

    def _announce_wait(
        self,
        rec: ContactRecord,
        queue: str,
        choice: AgentChoice,
        route: tuple[Reason, ...],
        now: float,
        cause: str,
    ) -> Outcome:
        """A 'queued' decision with the wait estimate, or a 'callback_offer' when the estimate or the wait
        so far reaches the callback threshold (remembered in ``callback_ms``: one callback offer each)."""
        ahead, wait = self._forecast(rec.view, queue, choice, now)
        waited_s = queued_for_s(rec.view, now)
        ewt_s = wait.mean_s
        callback = callback_reason(ewt_s, waited_s, self.cfg, offered_before=bool(rec.raw.get("callback_ms")))
        why = Reason("ewt", f"{ahead} ahead in {queue} for these agents; {_wait_text(wait)}")
        reasons = (*route, *choice.reasons, why, *((callback,) if callback else ()))
        action = "callback_offer" if callback else "queued"
        d = self._decision(cause, rec.view, action, now, reasons, queue=queue, wait=wait)
        fields: dict[str, str] = {}
        if not rec.raw.get("announced_ms"):  # the first announcement is the one checked at acceptance
            fields = {
                "announced_ms": str(int(now * 1000)),
                "ewt_s": f"{ewt_s:.1f}",
                "ewt_low_s": f"{wait.low_s:.1f}",
                "ewt_high_s": f"{wait.high_s:.1f}",
            }
        if callback:
            fields["callback_ms"] = str(int(now * 1000))
        commit = Commit(decisions=((rec.view.contact_id, d.model_dump_json()),))
        return self._apply(commit, rec, rec.view.contact_id, fields)

    def _forecast(
        self, contact: ContactView, queue: str, choice: AgentChoice, now: float
    ) -> tuple[int, WaitForecast]:
        """The contact's wait from the agents who may serve it and the contacts ahead that compete for
        them (router/domain/wait_forecast.py), with the handle and answer times the store measured."""
        agents, _ = self._agents(now)
        waited_s = queued_for_s(contact, now)
        codes = {r.code for r in choice.reasons}
        hold_s = (
            self.cfg.outcome.reserve_max_hold_s - waited_s
            if self.cfg.outcome and "mot_reserve" in codes
            else 0.0
        )
        affinity_s = self.cfg.affinity_timeout_s - waited_s if choice.wait_for_affinity else 0.0
        before = ("mot",) if queue != "mot" else ()
        rows, times = self.store.wait_inputs(queue, contact.contact_id, before)
        ahead = competing_ahead(contact, rows, agents)
        pools = stages(contact, queue, agents, now, self.cfg, hold_s=hold_s, affinity_s=affinity_s)
        service = times.for_channel(contact.channel, self.settings.expected_handle_s)
        return ahead, forecast(pools, ahead, service)

    def _offer(
        self,
        rec: ContactRecord,
        queue: str,
        agent_id: str,
        reasons: tuple[Reason, ...],
        now: float,
        cause: str,
        override_decline: bool = False,
    ) -> bool:
        """Reserve ``agent_id`` for the contact (the offer script re-checks everything the choice relied
        on). ``override_decline``: the agent declined it, as did every other who could take it."""
        offer_id = uuid.uuid4().hex[:16]
        v = rec.view
        d = self._decision(cause, v, "offer", now, reasons, agent_id=agent_id, queue=queue, offer_id=offer_id)
        out = self.store.offer(
            Commit(decisions=((v.contact_id, d.model_dump_json()),)),
            offer_id=offer_id,
            agent_id=agent_id,
            contact_id=v.contact_id,
            channel=v.channel,
            queue=queue,
            now_ms=int(now * 1000),
            timeout_ms=int(self.settings.offer_timeout_s * 1000),
            mot=v.moment_of_truth,
            expected_version=rec.version,
            fairness_window_ms=self._fair_ms,
            decline_memory_ms=self._decline_memory_ms,
            override_decline=override_decline,
        )
        if out.ok:
            self.counters.offers += 1
            self._forget(v.contact_id)
            self._took(agent_id, v.channel, now, v.moment_of_truth)
            return True
        self.refresh_agents()
        self._forget(v.contact_id)  # the retry reads it afresh
        self.counters.conflicts += 1
        log.debug("offer of %s to %s refused: %s %s", v.contact_id, agent_id, out.status, out.detail)
        return False

    def pull_for_agent(self, agent_id: str, cause: str = "") -> int:
        """Capacity freed: offer the agent the best waiting contacts it can take. Returns offers made."""
        made = self._match_mot_for(agent_id, cause) if self.cfg.outcome is not None else 0
        for _ in range(self._retries):
            now = self.clock()
            agents, mot_total = self._agents(now)
            agent = next((a for a in agents if a.agent_id == agent_id), None)
            if (
                agent is None
                or agent.status != "available"
                or not any(agent.free(ch) > 0 for ch in agent.capacity)
            ):
                return made
            candidates, records = self._queued_candidates()
            reserved = reserved_channels(agents, mot_total, self.cfg)
            contact, reasons = choose_contact(agent, candidates, now, self.cfg, mot_total, reserved)
            if contact is None:
                return made
            rec = records[contact.contact_id]
            pull = Reason("agent_pull", f"agent {agent_id} had free capacity")
            route = _reasons_from_json(rec.raw.get("route_reasons", ""))
            if self._offer(rec, rec.view.queue or "general", agent_id, (*route, pull, *reasons), now, cause):
                made += 1
        return made

    def _match_mot_for(self, agent_id: str, cause: str) -> int:
        """Outcome-aware matching: a freed slot may be the best expected result for a waiting moment of
        truth that the ladder holds back from this agent (its EQ is below the ladder's step), so the first
        ``MOT_PULL_SCAN`` moments of truth this agent could take are matched over the whole floor first."""
        made = tried = 0
        candidates, _ = self._queued_candidates()
        for view, queue in candidates:
            agent = next((a for a in self._agents(self.clock())[0] if a.agent_id == agent_id), None)
            if agent is None or agent.status != "available" or tried >= MOT_PULL_SCAN:
                break
            if queue != "mot" or view.language not in agent.languages or agent.free(view.channel) <= 0:
                continue
            tried += 1
            if self.match_contact(view.contact_id, announce=False, cause=cause) == "offer":
                made += 1
        return made

    def _queued_candidates(self) -> tuple[list[tuple[ContactView, str]], dict[str, ContactRecord]]:
        """The heads of every queue, "mot" first: the ids fresh (one round trip), the contacts as our own
        commits left them, else as read earlier in this batch or sweep, else read now (one round trip)."""
        heads = self.store.queue_heads(QUEUES, self.cfg.queue_scan_limit)  # sends deferred commits first
        ids = [(cid, q) for q in QUEUES for cid in heads[q]]
        known = self._queued if self._queued is not None else {}
        missing = [cid for cid, _ in ids if cid not in self._written and cid not in known]
        fresh = dict(zip(missing, self.store.load_contacts(missing), strict=True)) if missing else {}
        candidates: list[tuple[ContactView, str]] = []
        records: dict[str, ContactRecord] = {}
        for cid, q in ids:
            rec = (
                contact_from_hash(*self._written[cid])
                if cid in self._written
                else known.get(cid, fresh.get(cid))
            )
            if rec is None:
                continue
            if self._queued is not None and cid not in self._written:
                self._queued[cid] = rec
            if rec.view.status == "queued":
                candidates.append((rec.view, q))
                records[cid] = rec
        return candidates, records

    def sweep(self) -> int:
        """Periodic safety net: time out overdue offers, and offer queue heads the ladder has widened for.
        Returns the number of transitions made."""
        self.refresh_agents()
        self._queued = {}  # the queue heads are read once for the whole sweep
        try:
            return self._sweep()
        finally:
            self._queued = None

    def _sweep(self) -> int:
        return self._time_out_offers() + self._match_waiting() + self._offer_due_callbacks()

    def _time_out_offers(self) -> int:
        """Offers past their deadline: the agent missed them (remembered like a decline), re-offer."""
        done = 0
        now_ms = self._now_ms()
        for offer_id in self.store.due_offers(now_ms):
            offer = self.store.load_offer(offer_id)
            if offer is None or offer.status != "pending":
                continue
            out = self._give_back(
                lambda _e, d: Commit(decisions=tuple((x.contact_id, x.model_dump_json()) for x in d)),
                "",
                offer,
                "timeout",
            )
            if out.ok:
                self.counters.timeouts += 1
                done += 1
        return done

    def _match_waiting(self) -> int:
        """Offer the queue heads anyone may take now: the ladder widened, a decline memory ran out, or every
        agent who could take one declined it (offered again to the earliest decliner)."""
        agents, _ = self._agents(self.clock())
        if not any(a.status == "available" and any(a.free(ch) > 0 for ch in a.capacity) for a in agents):
            return 0
        done = 0
        candidates, _ = self._queued_candidates()
        for view, _q in candidates:
            if self.match_contact(view.contact_id, announce=False, cause="sweep") == "offer":
                done += 1
        return done

    def _offer_due_callbacks(self) -> int:
        """A 'callback_offer' for every contact that has waited ``callback_threshold_s`` without one, whatever
        keeps it waiting: the estimate made when it was queued cannot foresee declines or a floor that has
        nobody for it. Matching decides it (an agent who has not declined it is offered it first)."""
        now = self.clock()
        threshold_s = self.cfg.callback_threshold_s
        waiting = self.store.waiting_since(QUEUES, now - threshold_s, CALLBACK_SCAN)
        done = 0
        for cid, enqueued_ms, callback_ms in waiting:
            if callback_ms is not None or now - enqueued_ms / 1000 < threshold_s:
                continue
            if self.match_contact(cid, announce=False, cause="sweep") is not None:
                done += 1
        return done

    def _callback_due(self, rec: ContactRecord, now: float) -> bool:
        """The contact has waited the callback threshold and was offered no callback yet."""
        return not rec.raw.get("callback_ms") and queued_for_s(rec.view, now) >= self.cfg.callback_threshold_s

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
