"""The sweep: the periodic safety net under event-driven matching. It times out offers nobody answered,
offers the queue heads that the ladder has widened for, and offers the callbacks owed to long waits; a
worker that died between a commit and its match leaves nothing stranded past the next sweep.
"""

from __future__ import annotations

from router.domain.model import QUEUES
from router.worker.matching import Matcher
from router.worker.state import BatchState

# contacts per queue the sweep checks for a due callback. Not queue_scan_limit: a callback is owed to
# everyone who has waited long, also behind the heads that matching looks at.
CALLBACK_SCAN = 1_000


class Sweeper(Matcher):
    """The sweep, on the engine's matching; it runs between batches, never inside one."""

    def sweep(self) -> int:
        """Periodic safety net: time out overdue offers, and offer queue heads the ladder has widened for.
        Returns the number of transitions made."""
        self.refresh_agents()
        self._state = BatchState(queued={})  # the queue heads are read once for the whole sweep
        try:
            return self._sweep()
        finally:
            self._state = BatchState()

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
            out = self._give_back(offer, "timeout", None)
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
        """A 'callback_offer' for every contact that has waited its queue's callback threshold without one,
        whatever keeps it waiting: the estimate made when it was queued cannot foresee declines or a floor
        that has nobody for it. Matching decides it (an agent who has not declined it is offered it first)."""
        now = self.clock()
        done = 0
        for queue in QUEUES:
            threshold_s = self.cfg.callback_threshold_for(queue)
            for cid, enqueued_ms, callback_ms in self.store.waiting_since(
                (queue,), now - threshold_s, CALLBACK_SCAN
            ):
                if callback_ms is not None or now - enqueued_ms / 1000 < threshold_s:
                    continue
                if self.match_contact(cid, announce=False, cause="sweep") is not None:
                    done += 1
        return done
