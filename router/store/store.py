"""The Redis store of one routing domain: reads, and the atomic transitions (Lua) that change routing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis

from router.domain.model import QUEUES, AgentView, QueueStats
from router.domain.wait_band import CHECKS_KEPT, BandCheck
from router.domain.wait_forecast import ServiceTimes
from router.errors import ConfigError, ReplicationError, StoreError
from router.store import scripts
from router.store.codec import (
    AgentRecord,
    ContactRecord,
    agent_from_hash,
    as_str,
    contact_from_hash,
    outcome_tallies,
)
from router.store.keys import Keys

# Length caps the scripts apply (streams approximately, MAXLEN ~), handed to every script (ARGV[5])
DECISIONS_MAXLEN = 200_000
HISTORY_LEN = 100  # decisions kept per contact: its explanation (GET /v1/contacts/{id})
AUDIT_MAXLEN = 100_000
DEADLETTER_MAXLEN = 100_000
WAITS_LEN = 5_000  # accepted offers kept in the waits log: the dashboard's last hour on a busy floor
# spells away kept for the wait forecast: a floor's breaks and lunches of the last day or so
AWAY_SPELLS_LEN = 200
ENDED_LEN = 20_000  # ended contacts kept for the dashboard's KPIs (about 150 bytes each)
FLOOR_LEN = 8_640  # floor samples kept: a day at the default step of 10 s (about 80 bytes each)
ANY_CONTENT = "*"  # a stream event whose content digest is unknown: any repeat of its id is a duplicate
SERVED_WINDOW_MS = 15 * 60 * 1000
# what a failover or a restart looks like to a client: the primary is gone, or the node it reaches is a
# replica now, or the cluster is re-electing; a worker backs off and retries, the API answers 503
STORE_OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterError,
    # no node of a cluster answered (all the client knows are down, mid-failover): not a RedisError
    redis.exceptions.RedisClusterUnreachableError,
)
WAIT_SCAN = 500  # contacts read per queue for a wait forecast (the ones ahead compete for the same slots)


# What a transition came to. A script answers one of the first four (router/store/scripts.py); the store
# and the engine add the other three.
OutcomeStatus = Literal[
    "ok",  # applied
    "dup",  # this event id was applied before: nothing written
    "conflict",  # the state moved since it was read: re-read and retry
    "err",  # refused, nothing written; the reason code is detail[0]
    "deferred",  # queued for the next flush; the outcome goes to the defer callback (RoutingStore._run)
    "stale",  # the engine decided on a batch-cached read: confirm it on a fresh read first
    "blocked",  # not tried: an earlier deferred commit of the same contact did not apply (stream order)
]
SCRIPT_STATUSES = frozenset({"ok", "dup", "conflict", "err"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transition came to: ``status`` (see OutcomeStatus) and the script's details."""

    status: OutcomeStatus
    detail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def reason(self) -> str:
        return self.detail[0] if self.detail else ""


@dataclass(frozen=True, slots=True)
class Commit:
    """The idempotency and audit half of every transition: which event, which decisions."""

    event_id: str = ""
    decisions: tuple[tuple[str, str], ...] = ()  # (contact_id, decision JSON)
    stream_event: bool = False
    # the stream event's content digest (router.events.event_digest; '' unknown): a repeat of its event id
    # with other content is refused as 'conflicting_duplicate'
    digest: str = ""


@dataclass(frozen=True, slots=True)
class CustomerTouch:
    """The customer's last-contact time, written with a contact's start (repeat-contact detection)."""

    customer_id: str
    last_contact_ms: int
    ttl_s: int


@dataclass(frozen=True, slots=True)
class BatchReads:
    """What one pipeline read for a worker batch: contacts (None: no such contact) and customers."""

    contacts: dict[str, ContactRecord | None]
    customers: dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class OfferInfo:
    offer_id: str
    agent_id: str
    contact_id: str
    channel: str
    status: str
    deadline_ms: int
    queue: str
    mot: bool


class RoutingStore:
    """All Redis access of a routing domain. Thread-safe as far as redis-py's client is.

    ``client`` is the plain Redis client, for what lies outside the transitions (the worker's stream
    commands, the API's and the simulator's reads). Using it sends no deferred transition: the engine
    sends them before the worker acknowledges a batch (``flush``), and every method of the store sends
    them first."""

    def __init__(self, client: redis.Redis, domain: str, *, seen_ttl_s: int = 86_400) -> None:
        self.client = client
        # redis-py's cluster pipeline refuses EVALSHA: on a cluster a deferred transition runs at once
        self._can_defer = not isinstance(client, redis.RedisCluster)
        # transitions sent later in one pipeline (see defer): (script, keys, args, who gets the outcome)
        self._deferred: list[tuple[str, list[Any], list[Any], Callable[[Outcome], None]]] = []
        self.keys = Keys(domain)
        self.domain = domain
        self.seen_ttl_s = seen_ttl_s
        self.limits = json.dumps(
            {
                "decisions": DECISIONS_MAXLEN,
                "history": HISTORY_LEN,
                "audit": AUDIT_MAXLEN,
                "deadletter": DEADLETTER_MAXLEN,
                "waits": WAITS_LEN,
                "ewt_bands": CHECKS_KEPT,
                "away_spells": AWAY_SPELLS_LEN,
                "ended": ENDED_LEN,
            }
        )
        self._scripts = {
            name: client.register_script(body_with_prelude(body)) for name, body in scripts.ALL.items()
        }
        self._prune_consumer = client.register_script(scripts.PRUNE_CONSUMER)
        self._sample_floor = client.register_script(scripts.SAMPLE_FLOOR)

    def _flushed(self) -> redis.Redis:
        """The client, after sending the deferred transitions: whatever the store runs next sees their
        effects, and Redis applies everything in the order the worker issued it."""
        if self._deferred:
            self.flush()
        return self.client

    # ---- transitions -------------------------------------------------------------------------
    def discard_deferred(self) -> None:
        """Forget unsent transitions (a batch that failed half-way): their events were not acknowledged,
        so they are redelivered and applied then."""
        self._deferred = []

    def flush(self) -> None:
        """Send the deferred transitions in one pipeline, in order, and report each one's outcome."""
        if not self._deferred:
            return
        batch, self._deferred = self._deferred, []
        pipe = self.client.pipeline(transaction=False)
        for name, keys, args, _ in batch:
            # EVALSHA, not the Script object: a pipeline holding Script objects checks them with an extra
            # SCRIPT EXISTS round trip on every execute
            pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        results = pipe.execute(raise_on_error=False)
        for res in results:
            if isinstance(res, redis.exceptions.ReadOnlyError):  # a demoted primary: reconnect, retry
                raise res
        for (name, keys, args, done), res in zip(batch, results, strict=True):
            if isinstance(res, redis.exceptions.NoScriptError):  # the server lost its scripts (restart)
                res = self._call(name, keys, args)
            done(_outcome(name, res))

    def _call(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return self._scripts[name](keys=keys, args=args)
        except redis.exceptions.ReadOnlyError:
            raise  # not the script's fault: the node is a replica now (a failover); the caller reconnects
        except redis.ResponseError as exc:
            return exc

    def _run(
        self,
        name: str,
        commit: Commit,
        keys: Sequence[str],
        args: Sequence[Any],
        defer: Callable[[Outcome], None] | None = None,
    ) -> Outcome:
        """Run a transition now, or with ``defer`` queue it for ``flush`` (answered 'deferred'; ``defer``
        gets the outcome). Anything else the store does flushes first, so order is never changed."""
        k = self.keys
        seen = k.seen(commit.event_id) if commit.event_id else k.none
        # a script declares every key read-write: one without decisions is not handed the decisions stream,
        # so a role that writes none (the API's profile edits) needs no right to it (router/store/acl.py)
        decisions = k.decisions if commit.decisions else k.none
        all_keys = [seen, decisions, k.stats, *keys, *(k.history(cid) for cid, _ in commit.decisions)]
        all_args = [
            commit.event_id,
            json.dumps([d for _, d in commit.decisions]),
            self.seen_ttl_s,
            (commit.digest or ANY_CONTENT) if commit.stream_event else "",
            self.limits,
            *args,
        ]
        if defer is not None and self._can_defer:
            self._deferred.append((name, all_keys, all_args, defer))
            return Outcome("deferred")
        self.flush()
        res = self._call(name, all_keys, all_args)
        if defer is not None:
            defer(_outcome(name, res))
            return Outcome("deferred")
        if isinstance(res, redis.ResponseError):
            raise StoreError(f"script {name} failed: {res}") from res
        return _outcome(name, res)

    def apply_contact(
        self,
        commit: Commit,
        contact_id: str,
        expected_version: int,
        fields: Mapping[str, str],
        *,
        leave_queue: str | None = None,
        join_queue: str | None = None,
        join_score: float | None = None,
        customer: CustomerTouch | None = None,
        defer: Callable[[Outcome], None] | None = None,
    ) -> Outcome:
        """Write ``fields`` if the contact is still at ``expected_version``; 'ok' answers the new version.
        ``customer`` records the customer's last contact in the same step (repeat-contact detection).
        With ``defer``, sent with the next flush (see _run)."""
        k = self.keys
        keys = [
            k.contact(contact_id),
            k.queue(leave_queue or "none"),
            k.queue(join_queue or "none"),
            k.customer(customer.customer_id) if customer else k.none,
            k.open_contacts,
        ]
        args = [
            str(expected_version),
            json.dumps(dict(fields)),
            "1" if leave_queue else "0",
            repr(join_score) if join_queue and join_score is not None else "",
            contact_id,
            str(customer.last_contact_ms) if customer else "",
            max(1, customer.ttl_s) if customer else 1,
        ]
        return self._run("apply_contact", commit, keys, args, defer)

    def offer(
        self,
        commit: Commit,
        *,
        offer_id: str,
        agent_id: str,
        contact_id: str,
        channel: str,
        queue: str,
        now_ms: int,
        timeout_ms: int,
        mot: bool,
        expected_version: int | None,
        fairness_window_ms: int,
        decline_memory_ms: int,
        override_decline: bool = False,
    ) -> Outcome:
        """Reserve ``agent_id`` for the contact. Refused ('declined_before') when the agent declined or missed
        it less than ``decline_memory_ms`` ago, unless ``override_decline`` (every agent who could take it
        has declined: see the offer script)."""
        k = self.keys
        keys = [
            k.agent(agent_id),
            k.contact(contact_id),
            k.offer(offer_id),
            k.offers,
            k.queue(queue),
            k.declines(contact_id),
            k.agent_offers(agent_id),
            k.agent_mot(agent_id),
            k.mot_offers,
        ]
        args = [
            offer_id,
            agent_id,
            contact_id,
            channel,
            now_ms,
            now_ms + timeout_ms,
            "1" if mot else "0",
            "" if expected_version is None else str(expected_version),
            queue,
            fairness_window_ms,
            timeout_ms + 24 * 3600 * 1000,
            decline_memory_ms,
            "1" if override_decline else "0",
        ]
        return self._run("offer", commit, keys, args)

    def resolve_offer(
        self,
        commit: Commit,
        offer: OfferInfo,
        mode: str,
        *,
        now_ms: int,
        requeue_score: float,
        decline_memory_ms: int,
    ) -> Outcome:
        """Accepted, declined, timeout or revoked. A decline or a time-out is remembered for
        ``decline_memory_ms``."""
        k = self.keys
        keys = [
            k.offer(offer.offer_id),
            k.offers,
            k.contact(offer.contact_id),
            k.agent(offer.agent_id),
            k.declines(offer.contact_id),
            k.queue(offer.queue or "general"),
            k.agent_offers(offer.agent_id),
            k.served(offer.queue or "general"),
            k.service,
            k.waits,
            k.ewt_bands,
        ]
        args = [
            offer.offer_id,
            mode,
            now_ms,
            repr(requeue_score),
            SERVED_WINDOW_MS,
            offer.contact_id,
            offer.agent_id,
            decline_memory_ms,
        ]
        return self._run("resolve_offer", commit, keys, args)

    def release(
        self,
        commit: Commit,
        contact: ContactRecord,
        *,
        now_ms: int,
        fields: Mapping[str, str],
        end_contact: bool,
        affinity_ttl_s: int,
        defer: Callable[[Outcome], None] | None = None,
    ) -> Outcome:
        """Free what the contact holds; ``end_contact`` ends it (and logs it in the ended-contacts log).
        ``affinity_ttl_s``: how long the customer's record (last agent, last contact) is kept."""
        k = self.keys
        c = contact.view
        keys = [
            k.contact(c.contact_id),
            k.agent(c.agent_id) if c.agent_id else k.none,
            k.customer(c.customer_id or "-"),
            k.queue(c.queue or "none"),
            k.offer(c.offer_id) if c.offer_id else k.none,
            k.offers,
            k.agent_offers(c.agent_id) if c.agent_id else k.none,
            k.open_contacts,
            k.service,
            k.ended,
        ]
        args = [
            c.contact_id,
            str(contact.version),
            now_ms,
            json.dumps(dict(fields)),
            "1" if end_contact else "0",
            max(1, affinity_ttl_s),
        ]
        return self._run("release", commit, keys, args, defer)

    def agent_status(
        self,
        commit: Commit,
        agent_id: str,
        status: str,
        *,
        now_ms: int,
        requeue: Sequence[tuple[OfferInfo, float]],
    ) -> Outcome:
        k = self.keys
        keys = [k.agent(agent_id), k.agent_offers(agent_id), k.offers, k.away_spells]
        args: list[Any] = [status, now_ms, len(requeue)]
        for offer, score in requeue:
            keys += [k.offer(offer.offer_id), k.contact(offer.contact_id), k.queue(offer.queue or "general")]
            args += [offer.offer_id, offer.contact_id, repr(score)]
        return self._run("agent_status", commit, keys, args)

    def upsert_agent(
        self,
        agent_id: str,
        fields: Mapping[str, str],
        *,
        expected_version: int | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> Outcome:
        k = self.keys
        keys = [k.agent(agent_id), k.agents, k.audit]
        args = [
            agent_id,
            "" if expected_version is None else str(expected_version),
            json.dumps(dict(fields)),
            json.dumps(dict(audit)) if audit else "",
        ]
        return self._run("upsert_agent", Commit(), keys, args)

    def mark(self, commit: Commit) -> Outcome:
        return self._run("mark", commit, [], [])

    def deadletter(self, group: str, entry_id: str, fields: Mapping[str, str]) -> Outcome:
        k = self.keys
        flat: list[str] = []
        for key, value in fields.items():
            flat += [key, value]
        return self._run("deadletter", Commit(), [k.deadletter, k.events], [group, entry_id, *flat])

    # ---- reads ---------------------------------------------------------------------------------
    def load_contact(self, contact_id: str) -> ContactRecord | None:
        pipe = self._flushed().pipeline(transaction=False)
        pipe.hgetall(self.keys.contact(contact_id))
        pipe.zrange(self.keys.declines(contact_id), 0, -1, withscores=True)
        h, declines = pipe.execute()
        return contact_from_hash(_decode_map(h), _declines(declines))

    def load_contacts(self, contact_ids: Sequence[str]) -> list[ContactRecord | None]:
        pipe = self._flushed().pipeline(transaction=False)
        for cid in contact_ids:
            pipe.hgetall(self.keys.contact(cid))
            pipe.zrange(self.keys.declines(cid), 0, -1, withscores=True)
        res = pipe.execute()
        return [
            contact_from_hash(_decode_map(res[2 * i]), _declines(res[2 * i + 1]))
            for i in range(len(contact_ids))
        ]

    def load_batch(self, contact_ids: Sequence[str], customer_ids: Sequence[str]) -> BatchReads:
        """Every contact and customer a worker batch will need, in one round trip."""
        cids = list(dict.fromkeys(contact_ids))
        uids = list(dict.fromkeys(customer_ids))
        if not cids and not uids:
            return BatchReads({}, {})
        pipe = self._flushed().pipeline(transaction=False)
        for cid in cids:
            pipe.hgetall(self.keys.contact(cid))
            pipe.zrange(self.keys.declines(cid), 0, -1, withscores=True)
        for uid in uids:
            pipe.hgetall(self.keys.customer(uid))
        res = pipe.execute()
        contacts = {
            cid: contact_from_hash(_decode_map(res[2 * i]), _declines(res[2 * i + 1]))
            for i, cid in enumerate(cids)
        }
        base = 2 * len(cids)
        customers = {uid: _decode_map(res[base + i]) for i, uid in enumerate(uids)}
        return BatchReads(contacts, customers)

    def missing_contacts(self, contact_ids: Sequence[str]) -> set[str]:
        """Those of ``contact_ids`` with no contact (no contact.started applied), in one round trip."""
        if not contact_ids:
            return set()
        pipe = self._flushed().pipeline(transaction=False)
        for cid in contact_ids:
            pipe.exists(self.keys.contact(cid))
        return {cid for cid, n in zip(contact_ids, pipe.execute(), strict=True) if not n}

    def customer(self, customer_id: str) -> dict[str, str]:
        return _decode_map(self._flushed().hgetall(self.keys.customer(customer_id)))

    def touch_customer(self, customer_id: str, fields: Mapping[str, str], ttl_s: int) -> None:
        key = self.keys.customer(customer_id)
        pipe = self._flushed().pipeline(transaction=False)
        pipe.hset(key, mapping={k: v for k, v in fields.items()})
        pipe.expire(key, max(1, ttl_s))
        pipe.execute()

    def agent_ids(self) -> list[str]:
        return sorted(as_str(x) for x in self._flushed().smembers(self.keys.agents))

    def load_agents(self, now_ms: int, fairness_window_ms: int) -> list[AgentRecord]:
        ids = self.agent_ids()
        pipe = self._flushed().pipeline(transaction=False)
        floor = now_ms - fairness_window_ms
        for aid in ids:
            pipe.hgetall(self.keys.agent(aid))
            pipe.zcount(self.keys.agent_mot(aid), floor, "+inf")
        res = pipe.execute()
        out = []
        for i in range(len(ids)):
            rec = agent_from_hash(_decode_map(res[2 * i]), int(res[2 * i + 1]))
            if rec is not None:
                out.append(rec)
        return out

    def agent_snapshot(
        self, now_ms: int, fairness_window_ms: int, *, outcomes: bool = False
    ) -> tuple[list[AgentView], int]:
        """Every agent and the domain's recent moments of truth: two round trips (ids, then the rest).
        ``outcomes``: with each agent's posted-outcome tallies (outcome-aware matching reads them)."""
        ids = self.agent_ids()
        floor = now_ms - fairness_window_ms
        pipe = self._flushed().pipeline(transaction=False)
        for aid in ids:
            self._queue_agent_reads(pipe, aid, floor, outcomes)
        pipe.zcount(self.keys.mot_offers, floor, "+inf")
        res = pipe.execute()
        step = 3 if outcomes else 2
        views = []
        for i in range(len(ids)):
            view = _agent_view(res[step * i : step * (i + 1)])
            if view is not None:
                views.append(view)
        return views, int(res[-1])

    def _queue_agent_reads(self, pipe: Any, agent_id: str, floor_ms: int, outcomes: bool) -> None:
        pipe.hgetall(self.keys.agent(agent_id))
        pipe.zcount(self.keys.agent_mot(agent_id), floor_ms, "+inf")
        if outcomes:
            pipe.hgetall(self.keys.outcome_agent(agent_id))

    def agent_view(
        self, agent_id: str, now_ms: int, fairness_window_ms: int, *, outcomes: bool = False
    ) -> AgentView | None:
        """One agent as ``agent_snapshot`` shows it (one round trip)."""
        pipe = self._flushed().pipeline(transaction=False)
        self._queue_agent_reads(pipe, agent_id, now_ms - fairness_window_ms, outcomes)
        return _agent_view(pipe.execute())

    def load_agent(self, agent_id: str) -> AgentRecord | None:
        return agent_from_hash(_decode_map(self._flushed().hgetall(self.keys.agent(agent_id))))

    def agent_views(self, now_ms: int, fairness_window_ms: int) -> list[AgentView]:
        return [a.view for a in self.load_agents(now_ms, fairness_window_ms)]

    def mot_total_recent(self, now_ms: int, fairness_window_ms: int) -> int:
        return int(self._flushed().zcount(self.keys.mot_offers, now_ms - fairness_window_ms, "+inf"))

    def queue_head(self, queue: str, limit: int) -> list[str]:
        return [as_str(x) for x in self._flushed().zrange(self.keys.queue(queue), 0, limit - 1)]

    def queue_heads(self, queues: Sequence[str], limit: int) -> dict[str, list[str]]:
        """The first ``limit`` contact ids of each queue, in one round trip."""
        pipe = self._flushed().pipeline(transaction=False)
        for q in queues:
            pipe.zrange(self.keys.queue(q), 0, limit - 1)
        return {q: [as_str(x) for x in ids] for q, ids in zip(queues, pipe.execute(), strict=True)}

    def waiting_since(
        self, queues: Sequence[str], max_score: float, limit: int
    ) -> list[tuple[str, int, int | None]]:
        """Contacts that may have been waiting since ``max_score`` (s) or longer: (contact id, enqueue ms,
        callback ms or None), in queue order, at most ``limit`` per queue. A queue score is the enqueue time
        minus a head start (never negative), so every contact enqueued by ``max_score`` scores at or below
        it: the candidates are a prefix of each queue, read in two round trips."""
        pipe = self._flushed().pipeline(transaction=False)
        for q in queues:
            pipe.zrangebyscore(self.keys.queue(q), "-inf", repr(max_score), start=0, num=limit)
        ids = [as_str(x) for found in pipe.execute() for x in found]
        if not ids:
            return []
        pipe = self._flushed().pipeline(transaction=False)
        for cid in ids:
            pipe.hmget(self.keys.contact(cid), ["enqueued_ms", "callback_ms"])
        out = []
        for cid, (enq, callback) in zip(ids, pipe.execute(), strict=True):
            if enq:
                out.append((cid, int(float(as_str(enq))), int(float(as_str(callback))) if callback else None))
        return out

    def queue_position(self, queue: str, contact_id: str) -> int | None:
        rank: Any = self._flushed().zrank(self.keys.queue(queue), contact_id)
        return None if rank is None else int(rank)

    def wait_inputs(
        self, queue: str, contact_id: str, before: Sequence[str] = ()
    ) -> tuple[list[tuple[str, str]], ServiceTimes, list[BandCheck]]:
        """For a wait forecast: (channel, language) of each contact ahead of ``contact_id`` in ``queue``
        and of every contact in the ``before`` queues (served first), at most WAIT_SCAN per queue; the
        measured service times, with the latest spells away; and the latest bands checked against the
        waits lived. Two round trips."""
        pipe = self._flushed().pipeline(transaction=False)
        for q in (queue, *before):
            pipe.zrange(self.keys.queue(q), 0, WAIT_SCAN - 1)
        pipe.hgetall(self.keys.service)
        pipe.lrange(self.keys.away_spells, 0, -1)
        pipe.lrange(self.keys.ewt_bands, 0, CHECKS_KEPT - 1)
        *heads, service, spells, bands = pipe.execute()
        own = [as_str(x) for x in heads[0]]
        ahead = own[: own.index(contact_id)] if contact_id in own else own
        ahead += [as_str(x) for head in heads[1:] for x in head]
        pipe = self._flushed().pipeline(transaction=False)
        for cid in ahead:
            pipe.hmget(self.keys.contact(cid), ["channel", "language"])
        rows = pipe.execute() if ahead else []
        found = [(as_str(ch), as_str(lang)) for ch, lang in rows if ch and lang]
        return found, service_times(_decode_map(service), [as_str(x) for x in spells]), band_checks(bands)

    def band_checks(self) -> list[BandCheck]:
        """The latest announced bands checked against the waits lived (router/domain/wait_band.py)."""
        return band_checks(self._flushed().lrange(self.keys.ewt_bands, 0, CHECKS_KEPT - 1))

    def service_times(self) -> ServiceTimes:
        pipe = self._flushed().pipeline(transaction=False)
        pipe.hgetall(self.keys.service)
        pipe.lrange(self.keys.away_spells, 0, -1)
        service, spells = pipe.execute()
        return service_times(_decode_map(service), [as_str(x) for x in spells])

    def queue_stats(self, queue: str, now_ms: int, free_agents: int) -> QueueStats:
        return self.queue_wait_inputs(queue, None, now_ms, free_agents)[1]

    def queue_wait_inputs(
        self, queue: str, contact_id: str | None, now_ms: int, free_agents: int
    ) -> tuple[int | None, QueueStats]:
        """The contact's position in ``queue`` (None: not in it, or no contact given) and the queue's
        stats for the wait estimate, in one round trip."""
        pipe = self._flushed().pipeline(transaction=False)
        pipe.zcard(self.keys.queue(queue))
        pipe.zcount(self.keys.served(queue), now_ms - SERVED_WINDOW_MS, "+inf")
        pipe.zrange(self.keys.served(queue), 0, 0, withscores=True)
        if contact_id is not None:
            pipe.zrank(self.keys.queue(queue), contact_id)
        depth, served, first, *rank = pipe.execute()
        position = int(rank[0]) if rank and rank[0] is not None else None
        return position, self._queue_stats(int(depth), int(served), first, now_ms, free_agents)

    @staticmethod
    def _queue_stats(depth: int, served: int, first: Any, now_ms: int, free_agents: int) -> QueueStats:
        window_ms = SERVED_WINDOW_MS
        if first:
            # a young system has observed less than the full window; dividing by it would under-state the rate
            window_ms = max(10_000, min(SERVED_WINDOW_MS, now_ms - int(first[0][1])))
        return QueueStats(
            depth=int(depth), completions_per_s=served / (window_ms / 1000), free_agents=free_agents
        )

    def queue_depths(self) -> dict[str, int]:
        pipe = self._flushed().pipeline(transaction=False)
        for q in QUEUES:
            pipe.zcard(self.keys.queue(q))
        return dict(zip(QUEUES, (int(x) for x in pipe.execute()), strict=True))

    def due_offers(self, now_ms: int, limit: int = 100) -> list[str]:
        return [
            as_str(x)
            for x in self._flushed().zrangebyscore(self.keys.offers, "-inf", now_ms, start=0, num=limit)
        ]

    def load_offer(self, offer_id: str) -> OfferInfo | None:
        h = _decode_map(self._flushed().hgetall(self.keys.offer(offer_id)))
        return _offer_from_hash(h)

    def agent_pending_offers(self, agent_id: str) -> list[OfferInfo]:
        ids = sorted(as_str(x) for x in self._flushed().smembers(self.keys.agent_offers(agent_id)))
        pipe = self._flushed().pipeline(transaction=False)
        for oid in ids:
            pipe.hgetall(self.keys.offer(oid))
        out = []
        for oid, h in zip(ids, pipe.execute(), strict=True):
            info = _offer_from_hash(_decode_map(h))
            # an offer hash that expired still has to leave the set; the script skips non-pending ones
            out.append(info or OfferInfo(oid, agent_id, "-", "chat", "missing", 0, "general", False))
        return out

    # ---- replication -----------------------------------------------------------------------------
    def _domain_node(self) -> redis.Redis:
        """A client of the node that holds this domain: on a cluster, the master of the domain's slot."""
        client: Any = self._flushed()
        if isinstance(client, redis.RedisCluster):
            node = client.get_node_from_key(self.keys.events)
            return client.get_redis_connection(node)
        return cast(redis.Redis, client)

    def confirm_replicated(self, mode: str, count: int, timeout_ms: int) -> None:
        """The replication wait (Settings.replication_wait: 'off', 'wait' or 'waitaof'): raise
        ReplicationError when fewer than ``count`` replicas confirm every write so far."""
        if mode == "off":
            return
        confirmed = self.replicate(count, timeout_ms, aof=mode == "waitaof")
        if confirmed < count:
            raise ReplicationError(confirmed, count, timeout_ms)

    def replicate(self, count: int, timeout_ms: int, *, aof: bool = False) -> int:
        """Block until ``count`` replicas have every write this process has completed (``aof``: written to
        their AOF and fsynced, and to this node's own), or ``timeout_ms``; returns how many confirmed.
        WAIT covers the writes of its own connection only, so one connection sends a write of its own
        first: the replication stream is in order, so once that write is replicated, so is every write
        any connection completed before it."""
        pipe = self._domain_node().pipeline(transaction=False)
        pipe.hincrby(self.keys.stats, "replication_waits", 1)
        if aof:
            pipe.execute_command("WAITAOF", 1, count, timeout_ms)
        else:
            pipe.execute_command("WAIT", count, timeout_ms)
        try:
            _, confirmed = pipe.execute()
        except redis.exceptions.ResponseError as exc:
            if "unknown command" in str(exc).lower():
                raise ConfigError(
                    "replication_wait=waitaof needs WAITAOF (Redis >= 7.2, Valkey >= 8); use 'wait'"
                ) from exc
            raise
        return int(confirmed[1]) if aof else int(confirmed)

    def primary_state(self) -> tuple[bool, str, int]:
        """Whether the node holding this domain takes writes (a primary), a line saying so, and how many
        replicas follow it, in sync (/readyz; no addresses: the probe needs no key)."""
        try:
            info: Any = self._domain_node().info("replication")
        except redis.exceptions.ResponseError:  # a server without INFO (fakeredis)
            return True, "replication role not reported by this server", 0
        role = str(info.get("role", "master"))
        if role != "master":
            return False, f"the node reached is a {role} now (a failover): writes are refused", 0
        # a replica still loading its first copy is connected but confirms nothing yet: online ones only
        replicas = sum(
            1
            for k, v in info.items()
            if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
        )
        return True, f"primary, {replicas} replicas online", replicas

    # ---- workers -------------------------------------------------------------------------------
    def heartbeat(self, consumer: str, now_ms: int) -> None:
        self._flushed().zadd(self.keys.workers, {consumer: now_ms})

    def sample_floor(self, now_ms: int, step_ms: int) -> bool:
        """Add a floor sample (queue depths, moments of truth so far) unless the newest is less than
        ``step_ms`` away: whichever worker comes first samples, one sample per step. True when added."""
        self._flushed()  # the sample sees every transition the worker issued before it
        k = self.keys
        keys = [k.floor, k.stats, *(k.queue(q) for q in QUEUES)]
        return bool(self._sample_floor(keys=keys, args=[now_ms, max(1, step_ms), FLOOR_LEN, *QUEUES]))

    def live_workers(self, since_ms: int) -> int:
        """Workers that heartbeat at ``since_ms`` or later."""
        return int(self._flushed().zcount(self.keys.workers, since_ms, "+inf"))

    def heartbeats(self) -> dict[str, int]:
        rows: Any = self._flushed().zrange(self.keys.workers, 0, -1, withscores=True)
        return {as_str(c): int(ms) for c, ms in rows}

    def consumers(self, group: str) -> list[tuple[str, int, int]]:
        """(name, pending, idle ms) of every consumer of the events group."""
        rows: Any = self._flushed().xinfo_consumers(self.keys.events, group)
        return [(as_str(c["name"]), int(c["pending"]), int(c["idle"])) for c in rows]

    def prune_consumer(self, group: str, consumer: str, stale_before_ms: int) -> bool:
        """Delete the consumer when nothing is pending for it and it has no heartbeat since the cut-off."""
        k = self.keys
        return bool(self._prune_consumer(keys=[k.events, k.workers], args=[group, consumer, stale_before_ms]))

    def forget_worker(self, consumer: str) -> None:
        """Drop a heartbeat whose consumer is gone from the group."""
        self._flushed().zrem(self.keys.workers, consumer)

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in _decode_map(self._flushed().hgetall(self.keys.stats)).items()}

    def history(self, contact_id: str) -> list[dict[str, Any]]:
        return [json.loads(as_str(x)) for x in self._flushed().lrange(self.keys.history(contact_id), 0, -1)]


def band_check(raw: str) -> BandCheck | None:
    """An ``ewt_bands`` line ('low|high|actual', s) as a check; None when it is not one."""
    try:
        low, high, actual = (float(x) for x in raw.split("|"))
    except ValueError:
        return None
    return BandCheck(low, high, actual)


def band_checks(lines: Sequence[Any]) -> list[BandCheck]:
    return [c for c in (band_check(as_str(x)) for x in lines) if c is not None]


def service_times(h: Mapping[str, str], away_spells: Sequence[str] = ()) -> ServiceTimes:
    """The service hash (fields written by the scripts' ``ewma``) as measured service times, with the
    latest spells away (seconds, as the agent status script lists them)."""

    def num(name: str) -> float:
        try:
            value = float(h.get(name, "0"))
        except ValueError:
            return 0.0
        return value if math.isfinite(value) and value > 0 else 0.0

    prefix = "handle_s:"
    handle = {
        name[len(prefix) :]: (num(name), math.sqrt(num(f"{name}:var")))
        for name in h
        if name.startswith(prefix) and name.count(":") == 1
    }
    handle_kind = {
        name[len(prefix) :]: (num(name), math.sqrt(num(f"{name}:var")))
        for name in h
        if name.startswith(prefix) and name.count(":") == 2 and name.rsplit(":", 1)[1] in ("mot", "routine")
    }
    left_prefix = "left:"
    left = {
        name[len(left_prefix) :]: (num(name), int(num(f"{name}:n")))
        for name in h
        if name.startswith(left_prefix) and name.count(":") == 1
    }
    spells: list[float] = []
    for raw in away_spells:
        try:
            spell = float(raw)
        except ValueError:
            continue
        if math.isfinite(spell) and spell > 0:
            spells.append(spell)
    return ServiceTimes(
        num("answer_s"), math.sqrt(num("answer_s:var")), handle, tuple(spells), left, handle_kind
    )


def _outcome(name: str, res: Any) -> Outcome:
    if isinstance(res, Exception):  # a script error inside a pipeline: nothing of it was written
        return Outcome("err", (f"script {name} failed: {res}",))
    parts = tuple(as_str(x) for x in res)
    if parts[0] not in SCRIPT_STATUSES:
        return Outcome("err", (f"script {name} answered {parts[0]!r}",))
    return Outcome(cast(OutcomeStatus, parts[0]), parts[1:])


def body_with_prelude(body: str) -> str:
    return scripts.PRELUDE + body


def _agent_view(res: Sequence[Any]) -> AgentView | None:
    """An agent from its reads (``RoutingStore._queue_agent_reads``): hash, recent moments of truth and,
    when read, its outcome tallies."""
    tallies = outcome_tallies(_decode_map(res[2])) if len(res) > 2 else None
    rec = agent_from_hash(_decode_map(res[0]), int(res[1]), tallies)
    return rec.view if rec is not None else None


def _decode_map(h: Mapping[Any, Any]) -> dict[str, str]:
    try:  # the worker's client answers bytes: decode without a type test per item (a hot path)
        return {k.decode(): v.decode() for k, v in h.items()}
    except AttributeError:  # a client made with decode_responses=True
        return {as_str(k): as_str(v) for k, v in h.items()}


def _declines(rows: Sequence[tuple[Any, Any]]) -> dict[str, int]:
    """A declines sorted set read WITHSCORES: agent id -> decline time ms."""
    return {as_str(agent): int(ms) for agent, ms in rows}


def _offer_from_hash(h: Mapping[str, str]) -> OfferInfo | None:
    if not h or "offer_id" not in h:
        return None
    return OfferInfo(
        offer_id=h["offer_id"],
        agent_id=h.get("agent_id", ""),
        contact_id=h.get("contact_id", ""),
        channel=h.get("channel", "chat"),
        status=h.get("status", ""),
        deadline_ms=int(float(h.get("deadline_ms", "0"))),
        queue=h.get("queue", "general"),
        mot=h.get("mot") == "1",
    )
