"""Applies one validated event to the domain: contact state, placement, reservations, decisions.

Every handler follows the same shape: read a snapshot, decide with the pure policy in ``router.domain``,
commit with one Lua script that re-checks what the decision relied on. A script that finds the state
moved answers 'conflict' and the handler starts over from a fresh read, so concurrent workers never
need locks, and a redelivered event finds its seen marker and changes nothing.

``Engine`` is built in layers, each a module: the batch state, the reads and commits through it and the
agent snapshot (router/worker/state.py), matching and offers (router/worker/matching.py), the periodic
sweep (router/worker/sweep.py), and here the event handlers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from router.domain.model import ContactView, Reason
from router.domain.mot import detect, neighbours_reason, observe_turn
from router.domain.policy import place, queue_score
from router.domain.turns import classify_turn
from router.domain.voice import VoiceFeatures
from router.errors import ConflictError, ContactBlocked, EventError, RetryLater, StoreError
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
from router.store.codec import ContactRecord, contact_fields
from router.store.store import CustomerTouch, OfferInfo, Outcome
from router.worker.state import Deferred
from router.worker.sweep import Sweeper
from router.worker.voice import VOICE_BASELINE, VOICE_PENDING, voice_on_audio, voice_on_message

TRANSCRIPT_TEXT_CHARS = 500  # characters of each turn's text kept in the contact's transcript tail


def _reasons_json(reasons: Sequence[Reason]) -> str:
    return json.dumps([{"code": r.code, "text": r.text} for r in reasons])


class Engine(Sweeper):
    """The router's engine: ``handle`` applies one event, ``begin_batch``/``settle``/``end_batch`` wrap a
    worker batch, ``sweep`` is the periodic safety net, ``match_contact``/``pull_for_agent`` match."""

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
            except ContactBlocked:
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
        raise ConflictError(f"{event.type} {event_id}: still conflicting after {self._retries} tries")

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
        touch = CustomerTouch(ev.customer.id, int(now * 1000), self._customer_ttl_s())
        # a restarted contact starts afresh: no transcript or voice, and a callback may be offered again.
        # The customer's previous contact start and the hand-offs go to the ended-contacts log (KPIs)
        fresh = {
            "transcript": "[]",
            "callback_ms": "",
            VOICE_BASELINE: "",
            VOICE_PENDING: "",
            "handoffs": "0",
            "prev_contact_ms": str(int(last_contact_ms)) if last_contact_ms > 0 else "",
        }
        return self._place(eid, view, rec, fresh, (), customer=touch)

    def _customer_ttl_s(self) -> int:
        """How long a customer's record is kept: long enough for the affinity and for the repeat-contact
        window of the first-contact-resolution KPI."""
        return int(max(self.settings.affinity_ttl_s, self.settings.fcr_window_s))

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
            trigger += neighbours_reason(view.trajectory.turns, turn.mot_prob, score.mot_neighbours)
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
            if placement.offer_human:
                fields["human_offered"] = "1"
            if view.status == "new" or placement.offer_human:
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
        if self._state.reads is not None:
            self._state.reads.customers.pop(v.customer_id, None)  # the release writes its last agent
        if self._state.queued is not None:
            self._state.queued.pop(v.contact_id, None)  # a queued contact that ends leaves its queue
        # nothing to pull when no agent is freed: the commit may then wait for the batch's pipeline
        defer = self._deferring(v.contact_id) if self._state.defer and not v.agent_id else None
        out = self.store.release(
            self._commit(eid, decisions),
            rec,
            now_ms=int(now * 1000),
            fields=fields,
            end_contact=True,
            affinity_ttl_s=self._customer_ttl_s(),
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
            out = self._give_back(offer, "declined", eid)
        if out.status == "err" and out.reason == "offer_not_pending":
            # the offer timed out or was revoked between our read and the script: read again, and the
            # answer is then a late one (marked applied) instead of an error left pending
            return Outcome("conflict", out.detail)
        return out
