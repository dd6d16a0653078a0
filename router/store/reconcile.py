"""Rebuild derived state from open work: agent load, queue membership, pending-offer indexes, and
offered contacts whose offer is gone.

After a restore from an older snapshot, or a bug, the derived counters can disagree with the contacts
they summarise. The contacts (status, agent, offer) are the source of truth; every fix is reported.
Each agent is repaired from its contacts read again under WATCH of the agent and of those contacts, so
another worker's offer or release, made since the scan or during the repair, is counted or makes the
repair start over: it is never overwritten with what the scan saw.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis

from router.domain.model import QUEUES
from router.domain.policy import PolicyConfig, queue_score
from router.store.codec import as_str
from router.store.store import RoutingStore


@dataclass
class ReconcileReport:
    contacts_scanned: int = 0
    fixes: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.fixes


def _contact_ids(store: RoutingStore, scan: bool) -> list[str]:
    """The open contacts' ids from their index; with ``scan``, every contact key's id (SCAN: only an
    admin may list keys, router/store/acl.py)."""
    if not scan:
        return sorted(as_str(m) for m in store.client.sscan_iter(store.keys.open_contacts, count=1000))
    prefix = store.keys.contact("")
    return sorted(as_str(k)[len(prefix) :] for k in store.client.scan_iter(match=f"{prefix}*", count=1000))


@dataclass
class OpenWork:
    """What the contacts say: which are open (not ended), per queue the queued contacts, per agent the
    contacts it holds (its load and offers are counted again under WATCH: _fix_agent), and each pending
    offer's contact."""

    live: set[str] = field(default_factory=set)
    queued: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    held: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # agent -> contacts it holds
    offered: dict[str, str] = field(default_factory=dict)  # offer id -> contact id
    waiting: dict[str, dict[str, str]] = field(default_factory=dict)  # offered contact id -> its hash

    def requeued(self, contact_id: str) -> None:
        """The picture once an offered contact went back to its queue: what it held is free."""
        h = self.waiting.pop(contact_id)
        agent, offer_id = h.get("agent_id", ""), h.get("offer_id", "")
        if agent:
            self.held[agent].discard(contact_id)
        if self.offered.get(offer_id) == contact_id:
            del self.offered[offer_id]
        self.queued[h.get("queue") or "general"].add(contact_id)


def _hash(raw: Any) -> dict[str, str]:
    return {as_str(k): as_str(v) for k, v in raw.items()}


def _open_work(store: RoutingStore, contact_ids: list[str]) -> OpenWork:
    work = OpenWork()
    for cid in contact_ids:
        h = _hash(store.client.hgetall(store.keys.contact(cid)))
        status, agent = h.get("status", ""), h.get("agent_id", "")
        if h and status != "ended":
            work.live.add(cid)
        if status in ("offered", "assigned") and agent:
            work.held[agent].add(cid)
            if status == "offered" and h.get("offer_id"):
                work.offered[h["offer_id"]] = cid
        elif status == "queued":
            work.queued[h.get("queue") or "general"].add(cid)
        if status == "offered":
            work.waiting[cid] = h
    return work


def reconcile(
    store: RoutingStore, *, dry_run: bool = False, cfg: PolicyConfig | None = None, scan: bool = False
) -> ReconcileReport:
    """Repair derived state from the contacts. ``scan`` finds the contacts by listing keys (an admin's
    connection) instead of the open-contacts index, and repairs that index too: for data written before
    the index existed, or an index that lost entries."""
    cfg = cfg or PolicyConfig.defaults()
    report = ReconcileReport()
    ids = _contact_ids(store, scan)
    work = _open_work(store, ids)
    report.contacts_scanned = len(ids)
    if scan:
        report.fixes += _fix_index(store, work.live, dry_run)
    # first, so that the agents, queues and deadline index below are compared with the requeued contacts
    requeued: set[str] = set()
    for cid in sorted(work.waiting):
        fix = _requeue_stranded(store, cid, dry_run, cfg)
        if fix:
            report.fixes.append(fix)
            work.requeued(cid)
            requeued.add(cid)
    # a real run requeued them: read again, they are queued; a dry run did not, so they are left out
    skip = requeued if dry_run else set()
    for agent_id in store.agent_ids():
        _fix_agent(store, agent_id, work.held.get(agent_id, set()), skip, report, dry_run)
    for q in QUEUES:
        members = {as_str(m) for m in store.client.zrange(store.keys.queue(q), 0, -1)}
        for cid in sorted(members ^ work.queued.get(q, set())):
            fix = _fix_queue_member(store, q, cid, dry_run, cfg)
            if fix:
                report.fixes.append(fix)
    indexed = {as_str(m) for m in store.client.zrange(store.keys.offers, 0, -1)}
    for offer_id in sorted(indexed ^ set(work.offered)):
        fix = _fix_offer_deadline(store, offer_id, work.offered.get(offer_id), dry_run)
        if fix:
            report.fixes.append(fix)
    return report


def _requeue_score(contact: dict[str, str], cfg: PolicyConfig) -> float:
    """The score the engine requeues a contact with (matching's _give_back): its enqueue time, now when
    unknown, and its priority."""
    enq_ms = contact.get("enqueued_ms", "")
    enq_s = float(enq_ms) / 1000 if enq_ms else time.time()
    return queue_score(enq_s, float(contact.get("priority", "0") or 0), cfg)


def _offer_problem(offer: dict[str, str], contact_id: str) -> str | None:
    """Why an offered contact's offer cannot settle it (None: it can)."""
    if not offer:
        return "is missing"
    if offer.get("status") != "pending":
        return f"is {offer.get('status') or 'without status'}"
    if offer.get("contact_id") != contact_id:
        return f"is for contact {offer.get('contact_id')}"
    return None


def _requeue_stranded(store: RoutingStore, contact_id: str, dry_run: bool, cfg: PolicyConfig) -> str | None:
    """An offered contact whose offer hash is gone (a rollback or restore that kept the contact, or an
    eviction: the offer hash is the only one of the pair with a TTL) or is not pending for it waits for
    good: no answer can resolve that offer and no sweep times it out. It goes back to its queue at the
    place the engine's requeue gives it, like a timed-out offer, under WATCH of the contact and the offer.
    The agent's load and pending offers, and the deadline index, follow from the contacts in the later
    steps of reconcile. Only ``offered``: an assigned contact holds no pending offer (its offer hash
    expires a day after its deadline by design, store.offer), and its release frees the agent without one."""
    k = store.keys
    ckey = k.contact(contact_id)
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(ckey)
                contact = _hash(pipe.hgetall(ckey))
                offer_id = contact.get("offer_id", "")
                pipe.watch(k.offer(offer_id))
                problem = _offer_problem(_hash(pipe.hgetall(k.offer(offer_id))), contact_id)
                if contact.get("status") != "offered" or problem is None:
                    pipe.unwatch()
                    return None
                queue = contact.get("queue") or "general"
                if dry_run:
                    pipe.unwatch()
                else:
                    pipe.multi()
                    version = int(contact.get("version", "0") or 0) + 1
                    pipe.hset(
                        ckey, mapping={"status": "queued", "offer_id": "", "agent_id": "", "version": version}
                    )
                    pipe.zadd(k.queue(queue), {contact_id: _requeue_score(contact, cfg)})
                    pipe.execute()
                return (
                    f"contact {contact_id}: offer {offer_id or '(none)'} of agent "
                    f"{contact.get('agent_id') or '(none)'} {problem}; re-queued in {queue}"
                )
            except redis.WatchError:
                continue


def _fix_offer_deadline(
    store: RoutingStore, offer_id: str, contact_id: str | None, dry_run: bool
) -> str | None:
    """Make the offers-by-deadline index hold exactly the pending offers their contacts wait on: one
    missing there never times out (the contact waits for good on an agent who may never answer); one
    that no contact waits on is dropped. Re-checked under WATCH of the offer and its contact."""
    k = store.keys
    okey = k.offer(offer_id)
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(okey, *([k.contact(contact_id)] if contact_id else []))
                offer = {as_str(a): as_str(b) for a, b in pipe.hgetall(okey).items()}
                cid = contact_id or offer.get("contact_id", "")
                contact = (
                    {as_str(a): as_str(b) for a, b in pipe.hgetall(k.contact(cid)).items()} if cid else {}
                )
                should = (
                    offer.get("status") == "pending"
                    and contact.get("status") == "offered"
                    and contact.get("offer_id") == offer_id
                )
                indexed = pipe.zscore(k.offers, offer_id) is not None
                if should == indexed:
                    pipe.unwatch()
                    return None
                if should and not dry_run:
                    pipe.multi()
                    pipe.zadd(k.offers, {offer_id: int(float(offer.get("deadline_ms", "0") or 0))})
                    pipe.execute()
                elif not dry_run:
                    pipe.multi()
                    pipe.zrem(k.offers, offer_id)
                    pipe.execute()
                else:
                    pipe.unwatch()
                return f"offers index: {'re-added' if should else 'removed'} {offer_id}"
            except redis.WatchError:
                continue


def _fix_index(store: RoutingStore, live: set[str], dry_run: bool) -> list[str]:
    """Make the open-contacts index hold exactly the open contacts a scan found."""
    key = store.keys.open_contacts
    indexed = {as_str(m) for m in store.client.smembers(key)}
    missing, extra = sorted(live - indexed), sorted(indexed - live)
    if not dry_run:
        if missing:
            store.client.sadd(key, *missing)
        if extra:
            store.client.srem(key, *extra)
    return [f"open contacts index: added {c}" for c in missing] + [
        f"open contacts index: removed {c}" for c in extra
    ]


@dataclass
class AgentWork:
    """One agent's open work as its contacts say: per channel the contacts it holds, its pending offers."""

    load: dict[str, int] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)


def _agent_work(pipe: Any, store: RoutingStore, agent_id: str, ids: set[str], skip: set[str]) -> AgentWork:
    """Read the contacts ``ids`` (under the caller's WATCH) and keep those the agent holds now; ``skip``:
    offered contacts a dry run would have requeued."""
    work = AgentWork()
    for cid in sorted(ids - skip):
        status, agent, channel, offer_id = (
            as_str(v) if v is not None else ""
            for v in pipe.hmget(store.keys.contact(cid), "status", "agent_id", "channel", "offer_id")
        )
        if status not in ("offered", "assigned") or agent != agent_id:
            continue
        ch = channel or "chat"
        work.load[ch] = work.load.get(ch, 0) + 1
        work.held.add(cid)
        if status == "offered" and offer_id:
            work.offers.add(offer_id)
    return work


def _fix_agent(
    store: RoutingStore, agent_id: str, held: set[str], skip: set[str], report: ReconcileReport, dry_run: bool
) -> None:
    """Make the agent's load, pending offers and busy-slot records match the contacts it holds. The scan
    that found ``held`` ran earlier, and another worker may have offered or released since (a peer the
    start-up check took for idle, as after a failover, when every consumer looks idle): so the counts come
    from the contacts read again under WATCH of the agent, its offers and those contacts. Those are the
    contacts the scan found and every one the agent hash keeps a busy-slot record of (an offer made since
    the scan wrote one); an offer or release after the WATCH writes the agent hash and makes this start
    over instead of overwriting it."""
    akey, okey = store.keys.agent(agent_id), store.keys.agent_offers(agent_id)
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(akey, okey)
                h = {as_str(k): as_str(v) for k, v in pipe.hgetall(akey).items()}
                have_offers = {as_str(x) for x in pipe.smembers(okey)}
                ids = held | {k[len("busy:") :] for k in h if k.startswith("busy:")}
                if ids:
                    pipe.watch(*(store.keys.contact(c) for c in sorted(ids)))
                work = _agent_work(pipe, store, agent_id, ids, skip)
                changes: dict[str, str] = {}
                found: list[str] = []
                channels = {k.split(":", 1)[1] for k in h if k.startswith("load:")} | set(work.load)
                for ch in sorted(channels):
                    want, have = work.load.get(ch, 0), int(h.get(f"load:{ch}", "0") or 0)
                    if want != have:
                        changes[f"load:{ch}"] = str(want)
                        found.append(f"agent {agent_id}: load:{ch} {have} -> {want}")
                if have_offers != work.offers:
                    found.append(
                        f"agent {agent_id}: pending offers {sorted(have_offers)} -> {sorted(work.offers)}"
                    )
                # a busy-slot record (the wait forecast's slot age) of work the agent no longer holds: the
                # release scripts delete their own, but a contact requeued here leaves its record behind
                stale = sorted(k for k in h if k.startswith("busy:") and k[len("busy:") :] not in work.held)
                if stale:
                    found.append(f"agent {agent_id}: busy-slot records of work it no longer holds {stale}")
                if dry_run or not found:
                    pipe.unwatch()
                    report.fixes += found
                    return
                pipe.multi()
                if changes:
                    pipe.hset(akey, mapping={k: v for k, v in changes.items()})
                if stale:
                    pipe.hdel(akey, *stale)
                # SREM and SADD, not DEL: the worker role has no right to delete keys
                if have_offers - work.offers:
                    pipe.srem(okey, *sorted(have_offers - work.offers))
                if work.offers - have_offers:
                    pipe.sadd(okey, *sorted(work.offers - have_offers))
                pipe.execute()
                report.fixes += found
                return
            except redis.WatchError:
                continue


def _fix_queue_member(
    store: RoutingStore, queue: str, contact_id: str, dry_run: bool, cfg: PolicyConfig
) -> str | None:
    """Make queue membership match the contact's status, re-checked under WATCH of the contact."""
    ckey, qkey = store.keys.contact(contact_id), store.keys.queue(queue)
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(ckey, qkey)
                h = _hash(pipe.hgetall(ckey))
                should = h.get("status") == "queued" and (h.get("queue") or "general") == queue
                score: Any = pipe.zscore(qkey, contact_id)
                if should == (score is not None):
                    pipe.unwatch()
                    return None
                if dry_run:
                    pipe.unwatch()
                elif should:
                    pipe.multi()
                    pipe.zadd(qkey, {contact_id: _requeue_score(h, cfg)})
                    pipe.execute()
                else:
                    pipe.multi()
                    pipe.zrem(qkey, contact_id)
                    pipe.execute()
                return f"queue {queue}: {'re-added' if should else 'removed'} {contact_id}"
            except redis.WatchError:
                continue
