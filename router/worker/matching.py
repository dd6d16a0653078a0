"""Matching: offer a queued contact to the best agent, or tell it its wait; pull for an agent with a free
slot; give an offer back when the agent declines or misses it.

Each offer goes through the offer script, which re-checks everything the choice relied on (the contact's
version, the agent's status, capacity and declines); a refused offer drops the agent snapshot and the
contact's cached state, so the retry decides on fresh reads.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Literal

from router.domain.ewt import callback_reason
from router.domain.matching import choose_by_outcome, reserved_channels
from router.domain.model import QUEUES, ContactView, Reason
from router.domain.policy import AgentChoice, choose_contact, queue_score, queued_for_s
from router.domain.wait_band import BandCorrection, band_correction
from router.domain.wait_forecast import WaitForecast, competing_ahead, forecast, returns, stages
from router.store.codec import ContactRecord, contact_from_hash
from router.store.store import Commit, OfferInfo, Outcome
from router.worker.state import EngineCore

log = logging.getLogger(__name__)

# moments of truth matched over the whole floor when an agent frees a slot (outcome-aware matching only)
MOT_PULL_SCAN = 5


def _wait_text(w: WaitForecast, model: WaitForecast, correction: BandCorrection) -> str:
    text = f"estimated wait {w.mean_s:.0f} s (80% within {w.low_s:.0f}-{w.high_s:.0f} s"
    if (round(w.low_s), round(w.high_s)) != (round(model.low_s), round(model.high_s)):
        band = f"{model.low_s:.0f}-{model.high_s:.0f} s"
        text += f"; the model's {band}, corrected by {correction.checks} waits lived"
    return text + ")"


def _reasons_from_json(raw: str) -> tuple[Reason, ...]:
    if not raw:
        return ()
    return tuple(Reason(d["code"], d["text"]) for d in json.loads(raw))


class Matcher(EngineCore):
    """The engine's matching, on the batch state and agent snapshot of ``EngineCore``."""

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
            service = self._service(rec.view.channel) if self.cfg.outcome is not None else None
            choice = choose_by_outcome(
                rec.view, queue, agents, now, self.cfg, mot_total, self._ahead(queue, contact_id), service
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
        ahead, model, correction = self._forecast(rec.view, queue, choice, now)
        wait = correction.apply(model)
        waited_s = queued_for_s(rec.view, now)
        ewt_s = wait.mean_s
        callback = callback_reason(
            ewt_s, waited_s, self.cfg, queue=queue, offered_before=bool(rec.raw.get("callback_ms"))
        )
        wait_text = _wait_text(wait, model, correction)
        why = Reason("ewt", f"{ahead} ahead in {queue} for these agents; {wait_text}")
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
                # the model's own band, which the corrections learn from (router/domain/wait_band.py)
                "ewt_model_low_s": f"{model.low_s:.1f}",
                "ewt_model_high_s": f"{model.high_s:.1f}",
            }
        if callback:
            fields["callback_ms"] = str(int(now * 1000))
        commit = Commit(decisions=((rec.view.contact_id, d.model_dump_json()),))
        return self._apply(commit, rec, rec.view.contact_id, fields)

    def _forecast(
        self, contact: ContactView, queue: str, choice: AgentChoice, now: float
    ) -> tuple[int, WaitForecast, BandCorrection]:
        """The contact's wait from the agents who may serve it and the contacts ahead that compete for
        them (router/domain/wait_forecast.py), with the handle and answer times the store measured; and
        the correction its band takes from the bands checked before (router/domain/wait_band.py)."""
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
        rows, times, checks = self.store.wait_inputs(queue, contact.contact_id, before)
        ahead = competing_ahead(contact, rows, agents)
        pools = stages(
            contact,
            queue,
            agents,
            now,
            self.cfg,
            hold_s=hold_s,
            affinity_s=affinity_s,
            waiting_for=choice.waiting_for,
            back_in=returns(agents, now, times.away_spells_s),
        )
        service = times.for_channel(contact.channel, self.settings.expected_handle_s)
        return ahead, forecast(pools, ahead, service, times.left_share(queue)), band_correction(checks)

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

    def _give_back(
        self, offer: OfferInfo, mode: Literal["declined", "timeout"], event_id: str | None
    ) -> Outcome:
        """Declined or timed out: free the agent, requeue the contact at its old place, try someone else.
        ``event_id``: the decline event, whose commit marks it applied; None: the sweep timed the offer
        out, and the decisions it writes name the sweep as their cause."""
        now = self.clock()
        cause = event_id or "sweep"  # like the re-offer that follows: the sweep caused it, not an event
        rec = self.store.load_contact(offer.contact_id)
        enq = rec.view.enqueued_ts if rec and rec.view.enqueued_ts is not None else now
        prio = rec.view.priority if rec else 0.0
        decisions = []
        if rec is not None:
            what = "declined" if mode == "declined" else "did not answer in time"
            text = f"agent {offer.agent_id} {what}; re-queued"
            why = Reason(f"offer_{mode}", text)
            decisions.append(
                self._decision(cause, rec.view, "released", now, (why,), agent_id=offer.agent_id)
            )
        if event_id is None:
            commit = Commit(decisions=tuple((d.contact_id, d.model_dump_json()) for d in decisions))
        else:
            commit = self._commit(event_id, decisions)
        out = self.store.resolve_offer(
            commit,
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
            self.match_contact(offer.contact_id, announce=False, cause=cause)
            self.pull_for_agent(offer.agent_id, cause)
        return out

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
            if queue != "mot" or not agent.speaks(view.language) or agent.free(view.channel) <= 0:
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
        st = self._state
        known = st.queued if st.queued is not None else {}
        missing = [cid for cid, _ in ids if cid not in st.written and cid not in known]
        fresh = dict(zip(missing, self.store.load_contacts(missing), strict=True)) if missing else {}
        candidates: list[tuple[ContactView, str]] = []
        records: dict[str, ContactRecord] = {}
        for cid, q in ids:
            rec = contact_from_hash(*st.written[cid]) if cid in st.written else known.get(cid, fresh.get(cid))
            if rec is None:
                continue
            if st.queued is not None and cid not in st.written:
                st.queued[cid] = rec
            if rec.view.status == "queued":
                candidates.append((rec.view, q))
                records[cid] = rec
        return candidates, records

    def _callback_due(self, rec: ContactRecord, now: float) -> bool:
        """The contact has waited its queue's callback threshold and was offered no callback yet."""
        threshold_s = self.cfg.callback_threshold_for(rec.view.queue)
        return not rec.raw.get("callback_ms") and queued_for_s(rec.view, now) >= threshold_s
