"""The stream consumer: batched reads, reclaim of dead consumers' work, dead letters, ack, trim, shutdown.

At least once, never zero times: an entry is acknowledged only after its effects (state, decision, seen
marker) are committed by a Lua script, or after it is recorded in the dead-letter stream in the same script
that acknowledges it. Anything else stays pending and is reclaimed with XAUTOCLAIM.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import redis

from router.domain.turns import earlier_customer_turns
from router.domain.voice import VoiceFeatures
from router.errors import EventError, ReplicationError, RetryLater, RouterError
from router.events import (
    ContactAudio,
    ContactEnded,
    ContactMessage,
    ContactStarted,
    HumanRequested,
    InboundEvent,
    WorkCompleted,
    parse_event,
)
from router.scoring.acoustic import features_from_wav
from router.scoring.detector import mot_model_for
from router.scoring.protocol import MOT_CONTEXT_TURNS, EmotionScore, EmotionScorer
from router.settings import Settings
from router.store.codec import as_str
from router.store.reconcile import reconcile
from router.store.store import STORE_OUTAGES, RoutingStore
from router.worker.engine import Engine
from router.worker.state import Deferred

log = logging.getLogger(__name__)

Entry = tuple[str, dict[bytes, bytes]]
# a dead letter keeps the whole original payload up to this many characters (and says so when it cuts)
MAX_DEADLETTER_PAYLOAD = 4_000_000
DELETED = "deleted_before_processing: the entry was removed from the stream while pending"
LANGUAGES_KEPT = 50_000  # contact languages remembered from contact.started events (oldest dropped first)
# contacts whose recent customer turns a worker remembers for the next turn's context (oldest dropped first)
CONTEXTS_KEPT = 20_000
# events that wait (pending, retried) while their contact has no contact.started yet
WAITS_FOR_START = (ContactMessage, ContactAudio, HumanRequested, ContactEnded, WorkCompleted)
# the worker backs off and retries on these, its entries left pending: Redis is unavailable, or its
# replicas did not confirm a batch (the replication wait)
WAIT_AND_RETRY: tuple[type[Exception], ...] = (*STORE_OUTAGES, ReplicationError)
LONG_OUTAGE_S = 1.0  # after an outage this long (a failover, a restart) the start-up check runs again


# how Redis answers when the events stream or its group is gone: a group command (XREADGROUP, XAUTOCLAIM,
# XPENDING, in a script too) says NOGROUP; XINFO on a stream that no longer exists says "no such key"; and
# fakeredis words XREADGROUP on a missing stream its own way
_GROUP_LOST = ("NOGROUP", "no such key", "The XGROUP subcommand requires the key to exist")


def is_group_lost(exc: redis.ResponseError) -> bool:
    """Redis's answer to a command of the worker's loop when the stream or its group does not exist."""
    return str(exc).startswith(_GROUP_LOST)


def _txt_lossless(v: Any) -> str:
    return v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes) else str(v)


@dataclass
class Prepared:
    """A batch read, validated and scored: what ``Worker.apply`` needs. Preparing touches no routing state,
    so the score-ahead thread prepares the next batch while this one applies."""

    entries: Sequence[Entry]
    deliveries: dict[str, int]
    parsed: list[tuple[str, InboundEvent]]
    rejected: list[tuple[str, dict[bytes, bytes], str]]  # (entry id, fields, dead-letter reason)
    scores: dict[str, EmotionScore]
    voices: dict[str, VoiceFeatures] = field(default_factory=dict)  # contact.audio entry id -> features


@dataclass
class ConsumerStats:
    read: int = 0
    processed: int = 0
    dead_lettered: int = 0
    retried: int = 0
    reclaimed: int = 0
    batches: int = 0
    scorer_fallbacks: int = 0
    replication_unconfirmed: int = 0
    decision_latency_ms: list[float] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        store: RoutingStore,
        scorer: EmotionScorer,
        settings: Settings,
        *,
        consumer: str | None = None,
        supports_blocking: bool = True,
    ) -> None:
        self.store = store
        self.r = store.client
        self.keys = store.keys
        self.scorer = scorer
        self.settings = settings
        self.group = settings.group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10_000}"
        self.blocking = supports_blocking
        self.engine = Engine(store, settings, mot_model=mot_model_for(settings, scorer))
        self._scorer_takes_languages = "languages" in inspect.signature(scorer.score).parameters
        # a scorer that reads a turn after the contact's earlier ones (the transformer's mot_context head)
        self._scorer_takes_contexts = "contexts" in inspect.signature(scorer.score).parameters
        self._recent_turns: dict[str, dict[int, str]] = {}  # contact id -> seq -> text (scored here)
        self.stats = ConsumerStats()
        self._stop = threading.Event()
        self._next_claim = 0.0
        self._next_trim = 0.0
        self._next_sweep = 0.0
        self._next_heartbeat = 0.0
        self._next_floor_sample = 0.0
        self._own_pending_done = False
        self._own_cursor = "0"
        self._unconfirmed = False  # the replicas did not confirm the last batch (the replication wait)
        # score ahead: the next batch is read and scored on one helper thread while this one applies (see
        # Settings.score_ahead). Off without blocking reads (fakeredis, in-process demo workers).
        wanted = settings.score_ahead == "on" or (settings.score_ahead == "auto" and scorer.name != "lexicon")
        self._score_ahead = wanted and supports_blocking
        self._ahead: Future[Prepared] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._score_lock = threading.Lock()  # reclaim and sweep batches score on the main thread
        self._languages_seen: dict[str, str] = {}  # contact id -> language, from contact.started events

    @property
    def score_ahead(self) -> bool:
        """Whether the next batch is read and scored while the current one applies."""
        return self._score_ahead

    @property
    def read_ahead(self) -> Future[Prepared] | None:
        """The batch being read and scored ahead (pending, not yet applied), if any."""
        return self._ahead

    # ---- lifecycle ------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(self.keys.events, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: finishing the current batch, then exiting", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, *, max_idle_s: float | None = None) -> None:
        """Consume until stopped (or until idle for ``max_idle_s`` when given). Survives Redis outages."""
        self.ensure_group()
        self.startup_check()
        idle_since = time.monotonic()
        outage_s = 0.0  # the current back-off; 0 while Redis answers
        outage_since = 0.0
        while not self._stop.is_set():
            try:
                if self._unconfirmed:
                    # no new reads (each re-read counts as a delivery, towards max_deliveries) until the
                    # replicas confirm again
                    self._confirm_replicated()
                    self._unconfirmed = False
                n = self.run_once()
                if outage_s:
                    outage_s = 0.0
                    # a blip (a dropped connection) changes nothing; a failover takes seconds
                    if time.monotonic() - outage_since >= LONG_OUTAGE_S:
                        self._after_outage()
            except WAIT_AND_RETRY as exc:
                outage_since = outage_since if outage_s else time.monotonic()
                outage_s = min(self.settings.reconnect_backoff_max_s, max(0.1, outage_s * 2))
                self._during_outage(exc, outage_s)
                self._stop.wait(outage_s)
                continue
            except redis.ResponseError as exc:
                if not is_group_lost(exc):
                    raise
                self._group_lost(exc)
                continue
            if n:
                idle_since = time.monotonic()
            elif max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                break
            elif not self.blocking:
                self._stop.wait(self.settings.idle_sleep_ms / 1000)
        self._finish_ahead()
        self._leave()

    def _during_outage(self, exc: Exception, backoff_s: float) -> None:
        """Redis is gone, read-only (a failover) or its replicas did not confirm a batch: what this worker
        holds stays pending (never acknowledged) and is reclaimed after claim_min_idle_ms, whichever node
        is the primary then. A batch the replicas did not confirm is read again from this worker's pending
        list once they do (once: every read counts as a delivery, towards max_deliveries)."""
        if isinstance(exc, ReplicationError):
            self.stats.replication_unconfirmed += 1
            self._unconfirmed = True
            self._own_pending_done = False
            self._own_cursor = "0"
            log.warning("batch not acknowledged: %s; retrying in %.1f s", exc, backoff_s)
        else:
            log.warning("redis unavailable (%s: %s); retrying in %.1f s", type(exc).__name__, exc, backoff_s)
        self.store.discard_deferred()
        self._ahead = None  # read from a node that may be gone; its entries stay pending (reclaimed)

    def _group_lost(self, exc: redis.ResponseError) -> None:
        """The events stream or its group is gone: a failover to a replica that had not received them
        (``ROUTER_REPLICATION_WAIT=off``), or an operator's DEL. The group is created again from the start of
        whatever stream there is now, so events appended since are read (a repeat is harmless: ``event_id``),
        instead of every read failing until the worker is restarted."""
        log.warning("the events group is gone (%s): creating it again from the stream's start", exc)
        self.store.discard_deferred()
        self._ahead = None
        self._own_pending_done = False
        self._own_cursor = "0"
        try:
            self.ensure_group()
        except WAIT_AND_RETRY as again:  # the next read meets the missing group again and retries
            log.warning("could not create the events group yet: %s", again)
            self._stop.wait(self.settings.reconnect_backoff_max_s)

    def _confirm_replicated(self) -> None:
        s = self.settings
        self.store.confirm_replicated(s.replication_wait, s.replica_wait_count, s.replica_wait_timeout_ms)

    def _after_outage(self) -> None:
        """Back after an outage, perhaps on a promoted replica that lacks the old primary's last writes:
        check derived state against the contacts again (the start-up check)."""
        log.warning("redis answers again")
        try:
            self.startup_check()
        except WAIT_AND_RETRY as exc:
            log.warning("check after the outage skipped: %s", exc)

    def _leave(self) -> None:
        """A worker that stops cleanly takes its consumer out of the group (when nothing is pending for it),
        so the dashboard does not count it until the housekeeping would."""
        try:
            self.store.prune_consumer(self.group, self.consumer, int(time.time() * 1000) + 1)
        except STORE_OUTAGES as exc:
            log.warning("consumer %s left in the group (%s); the housekeeping deletes it", self.consumer, exc)
        except redis.ResponseError as exc:
            if not is_group_lost(exc):
                raise
            log.warning("consumer %s not deleted: the events group is gone (%s)", self.consumer, exc)

    def _finish_ahead(self) -> None:
        """Apply a batch read ahead before exiting (its entries are pending for this consumer: were the
        process killed instead, they would be reclaimed, never lost)."""
        ahead, self._ahead = self._ahead, None
        try:
            if ahead is not None:
                self.apply(ahead.result())
        except WAIT_AND_RETRY as exc:
            log.warning("batch read ahead not applied (%s); it stays pending for redelivery", exc)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def startup_check(self) -> list[str]:
        """Compare agent load, offer indexes and queues with the contacts (after a restore they can
        disagree). Repair only when no other worker of the group is active; should one be active anyway
        (after a failover every consumer looks idle for a while), each repair re-reads what it fixes under
        WATCH, so it does not undo a peer's work. Returns what was found."""
        now_ms = int(time.time() * 1000)
        peers = [
            c
            for c in self.r.xinfo_consumers(self.keys.events, self.group)
            if as_str(c["name"]) != self.consumer
            and int(c.get("idle", now_ms)) < self.settings.claim_min_idle_ms
        ]
        report = reconcile(self.store, dry_run=bool(peers), cfg=self.engine.cfg)
        for fix in report.fixes:
            log.warning(
                "%s at start-up: %s", "found (other workers active, not fixed)" if peers else "fixed", fix
            )
        return report.fixes

    def run_once(self) -> int:
        """One step: housekeeping when due, then one batch. Returns entries handled."""
        now = time.monotonic()
        handled = 0
        if now >= self._next_claim:
            self._next_claim = now + self.settings.claim_interval_s
            handled += self._reclaim()
        if now >= self._next_sweep:
            self._next_sweep = now + self.settings.sweep_interval_s
            self.engine.sweep()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.settings.heartbeat_interval_s
            self.store.heartbeat(self.consumer, int(time.time() * 1000))
        if now >= self._next_floor_sample:
            # every worker offers a sample; the script keeps one per step (the dashboard's depth series)
            step_s = self.settings.floor_sample_s
            self._next_floor_sample = now + step_s
            self.store.sample_floor(int(self.engine.clock() * 1000), int(step_s * 1000))
        if now >= self._next_trim:
            self._next_trim = now + self.settings.trim_interval_s
            self.trim()
            self.prune_consumers()
        if not self._own_pending_done:
            # after a restart, our own unacknowledged entries first: one pass over our pending list from 0,
            # advancing past each batch. Entries that stay pending (retry later, failed) are not re-read in a
            # tight loop here; the reclaim timer redelivers them after claim_min_idle_ms.
            entries = self._read(self._own_cursor)
            if not entries:
                self._own_pending_done = True
            else:
                self._own_cursor = entries[-1][0]
            handled += self.process(entries, check_deliveries=True)
            return handled
        if not self._score_ahead:
            return handled + self.process(self._read(">"))
        ahead, self._ahead = self._ahead, None
        batch = ahead.result() if ahead is not None else self._read_prepared()
        if batch.entries:  # a busy stream: read and score the next batch while this one applies
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-ahead")
            self._ahead = self._pool.submit(self._read_prepared)
        return handled + self.apply(batch)

    def _read_prepared(self) -> Prepared:
        return self.prepare(self._read(">"))

    def _read(self, start: str) -> list[Entry]:
        block = self.settings.block_ms if (self.blocking and start == ">") else None
        res: Any = self.r.xreadgroup(
            self.group, self.consumer, {self.keys.events: start}, count=self.settings.batch_size, block=block
        )
        if not res:
            return []
        _, entries = res[0]
        return [(as_str(eid), fields) for eid, fields in entries]

    def _reclaim(self) -> int:
        """Take over entries idle past claim_min_idle_ms (their consumer died or is stuck)."""
        res = self.r.xautoclaim(
            self.keys.events,
            self.group,
            self.consumer,
            min_idle_time=self.settings.claim_min_idle_ms,
            start_id="0-0",
            count=self.settings.batch_size,
        )
        claimed = [(as_str(eid), fields) for eid, fields in res[1] if fields is not None] if res else []
        # entries deleted while pending come back as ids without fields; XAUTOCLAIM already dropped them
        # from the pending list, and the trimmer never trims past pending work, so this only follows manual
        # deletes: record them in the dead-letter stream so the loss is never silent
        deleted = res[2] if res and len(res) > 2 else []
        for eid in deleted:
            log.error("pending entry %s was deleted from the stream before processing", as_str(eid))
            self._deadletter(as_str(eid), {}, DELETED, 0)  # 0: its delivery count left with it
        if claimed:
            self.stats.reclaimed += len(claimed)
            log.info("reclaimed %d idle entries", len(claimed))
        return self.process(claimed, check_deliveries=True) if claimed else 0

    # ---- processing -----------------------------------------------------------------------------
    def process(self, entries: Sequence[Entry], *, check_deliveries: bool = False) -> int:
        """Validate, score and apply one batch; returns the number of entries handled."""
        if not entries:
            return 0
        return self.apply(self.prepare(entries, check_deliveries=check_deliveries))

    def prepare(self, entries: Sequence[Entry], *, check_deliveries: bool = False) -> Prepared:
        """Validate and score a batch. Reads Redis (delivery counts, languages) but writes nothing, so it
        may run on the score-ahead thread while the previous batch applies."""
        deliveries = self._delivery_counts(entries) if check_deliveries and entries else {}
        over = [(eid, f) for eid, f in entries if deliveries.get(eid, 1) > self.settings.max_deliveries]
        rejected: list[tuple[str, dict[bytes, bytes], str]] = self._over_delivered(over, deliveries)
        parsed: list[tuple[str, InboundEvent]] = []
        for entry_id, fields in entries:
            if deliveries.get(entry_id, 1) > self.settings.max_deliveries:
                continue
            if not fields:  # an entry deleted while pending is read back without fields
                rejected.append((entry_id, {}, DELETED))
            elif (raw := fields.get(b"event")) is None:
                rejected.append((entry_id, fields, "missing_field: entry has no 'event' field"))
            else:
                try:
                    ev = parse_event(raw)
                except EventError as exc:
                    rejected.append((entry_id, fields, exc.reason))
                    continue
                parsed.append((entry_id, ev))
                if isinstance(ev, ContactStarted):
                    self._remember_language(ev.contact_id, ev.customer.language)
        voices = self._voices(entries, parsed, rejected)
        if len(voices) < sum(isinstance(ev, ContactAudio) for _, ev in parsed):
            parsed = [(eid, ev) for eid, ev in parsed if not isinstance(ev, ContactAudio) or eid in voices]
        return Prepared(entries, deliveries, parsed, rejected, self._score(parsed), voices)

    def _voices(
        self,
        entries: Sequence[Entry],
        parsed: Sequence[tuple[str, InboundEvent]],
        rejected: list[tuple[str, dict[bytes, bytes], str]],
    ) -> dict[str, VoiceFeatures]:
        """The voice features of the batch's contact.audio events, beside the text scores. Audio that gives
        none (silence, clipping, too long) is dead-lettered; its transcript is routed on its words."""
        voices: dict[str, VoiceFeatures] = {}
        for entry_id, ev in parsed:
            if not isinstance(ev, ContactAudio):
                continue
            try:
                voices[entry_id] = features_from_wav(ev.audio, self.settings.audio_max_s)
                continue
            except EventError as exc:
                reason = exc.reason
            except Exception as exc:  # a bug in the analysis must not stop the batch
                log.exception("audio of entry %s could not be analysed", entry_id)
                reason = f"bad_audio: analysis failed ({type(exc).__name__}: {exc})"
            rejected.append((entry_id, entries_map(entries)[entry_id], reason))
        return voices

    def _over_delivered(
        self, over: Sequence[Entry], deliveries: dict[str, int]
    ) -> list[tuple[str, dict[bytes, bytes], str]]:
        """Entries delivered more than ``max_deliveries`` times, each with the reason it kept failing when
        that is known without running it again (it may be what crashed its workers): an event for a
        contact with no contact.started is 'unknown_contact' with the id, anything else
        'too_many_deliveries'."""
        waiting: dict[str, str] = {}  # entry id -> the contact it names
        for entry_id, fields in over:
            try:
                ev = parse_event(fields.get(b"event", b""))
            except EventError:
                continue
            if isinstance(ev, WAITS_FOR_START):
                waiting[entry_id] = ev.contact_id
        missing = self.store.missing_contacts(list(dict.fromkeys(waiting.values())))
        out = []
        for entry_id, fields in over:
            cid, n = waiting.get(entry_id), deliveries.get(entry_id, 1)
            reason = (
                f"unknown_contact: {cid} has no contact.started after {n} deliveries"
                if cid in missing
                else "too_many_deliveries"
            )
            out.append((entry_id, fields, reason))
        return out

    def apply(self, batch: Prepared) -> int:
        """Dead-letter what was rejected, apply the rest in stream order, then one XACK."""
        if not batch.entries:
            return 0
        self.stats.batches += 1
        self.stats.read += len(batch.entries)
        self._count_fallbacks()
        for entry_id, fields, reason in batch.rejected:
            self._deadletter(entry_id, fields, reason, batch.deliveries.get(entry_id, 1))
        # after scoring, so the batch's reads are as fresh as they can be when the events apply
        self.engine.begin_batch([ev for _, ev in batch.parsed], defer=True)
        try:
            acks = self._apply_all(batch)
        finally:
            self.engine.end_batch()
        if acks:
            # with the replication wait on, the batch's effects are on enough replicas before the XACK: a
            # failover then keeps them, or keeps the entries pending (ReplicationError: no XACK)
            self._confirm_replicated()
            # one XACK for the batch, only after every acknowledged entry's script committed
            self.r.xack(self.keys.events, self.group, *acks)
            self.stats.processed += len(acks)
        return len(batch.entries)

    def _apply_all(self, batch: Prepared) -> list[str]:
        """Apply the batch's events in stream order; returns the entry ids whose effects committed. Commits
        nothing waits on are deferred and sent in one pipeline (engine.settle); one that did not apply
        (and any later event of its contact) is applied again here, in stream order, before its ack."""
        acks: list[str] = []
        waiting: list[tuple[str, InboundEvent, Deferred]] = []
        for entry_id, ev in batch.parsed:
            d = self._handle_one(entry_id, ev, batch, acks)
            if d is not None:
                waiting.append((entry_id, ev, d))
        self.engine.settle()
        for entry_id, ev, d in waiting:
            if d.outcome is not None and d.outcome.status in ("ok", "dup"):
                acks.append(entry_id)
            else:
                self._handle_one(entry_id, ev, batch, acks)
        return acks

    def _handle_one(
        self, entry_id: str, ev: InboundEvent, batch: Prepared, acks: list[str]
    ) -> Deferred | None:
        """Apply one event: acked when applied, dead-lettered when bad, left pending when it fails, or
        returned when its commit was deferred."""
        event_id = ev.event_id or entry_id
        try:
            d = self.engine.handle(ev, event_id, batch.scores.get(entry_id), batch.voices.get(entry_id))
            if d is not None:
                return d
            acks.append(entry_id)
        except EventError as exc:
            fields = dict(entries_map(batch.entries)[entry_id])
            self._deadletter(entry_id, fields, exc.reason, batch.deliveries.get(entry_id, 1))
        except RetryLater as exc:
            self.stats.retried += 1
            log.info("entry %s left pending: %s", entry_id, exc)
        except STORE_OUTAGES:
            raise
        except RouterError as exc:
            log.warning("entry %s not applied (%s); it stays pending for redelivery", entry_id, exc)
        except Exception:
            # a bug must not kill the worker; the entry stays pending, and after max_deliveries it lands
            # in the dead-letter stream with its delivery count
            log.exception("entry %s failed; it stays pending for redelivery", entry_id)
        return None

    def _score(self, parsed: Sequence[tuple[str, InboundEvent]]) -> dict[str, EmotionScore]:
        """One scorer call per batch, customer turns only, with each contact's language when the scorer
        can use it (the transformer switches to its multilingual head)."""
        todo = [
            (eid, ev) for eid, ev in parsed if isinstance(ev, ContactMessage) and ev.speaker == "customer"
        ]
        if not todo:
            return {}
        texts = [ev.text for _, ev in todo]
        with self._score_lock:
            if self._scorer_takes_contexts:
                languages = self._languages([ev.contact_id for _, ev in todo])
                contexts = self._contexts([ev for _, ev in todo if isinstance(ev, ContactMessage)])
                results = self.scorer.score(texts, languages=languages, contexts=contexts)  # type: ignore[call-arg]
            elif self._scorer_takes_languages:
                languages = self._languages([ev.contact_id for _, ev in todo])
                results = self.scorer.score(texts, languages=languages)  # type: ignore[call-arg]
            else:
                results = self.scorer.score(texts)
        return {eid: s for (eid, _), s in zip(todo, results, strict=True)}

    def _contexts(self, messages: Sequence[ContactMessage]) -> list[list[str]]:
        """Each customer message's earlier customer turns: the contact's stored transcript tail (one round
        trip for the batch) and the turns this worker scored itself, earlier ones of this batch included
        (with score-ahead, the previous batch may not be committed yet)."""
        contacts = list(dict.fromkeys(ev.contact_id for ev in messages))
        pipe = self.r.pipeline(transaction=False)
        for cid in contacts:
            pipe.hget(self.keys.contact(cid), "transcript")
        stored: dict[str, list[dict[str, Any]]] = {}
        for cid, raw in zip(contacts, pipe.execute(), strict=True):
            try:
                loaded = json.loads(as_str(raw)) if raw else []
            except ValueError:
                loaded = []
            stored[cid] = [t for t in loaded if isinstance(t, dict)] if isinstance(loaded, list) else []
        out: list[list[str]] = []
        for ev in messages:
            recent = self._recent_turns.pop(ev.contact_id, {})
            out.append(earlier_customer_turns(stored[ev.contact_id], recent, ev.seq, MOT_CONTEXT_TURNS))
            recent[ev.seq] = ev.text
            # the newest turns, and the contact re-inserted as the most recently seen
            self._recent_turns[ev.contact_id] = dict(sorted(recent.items())[-MOT_CONTEXT_TURNS:])
            if len(self._recent_turns) > CONTEXTS_KEPT:
                self._recent_turns.pop(next(iter(self._recent_turns)))
        return out

    def _remember_language(self, contact_id: str, language: str) -> None:
        # a batch read ahead may hold a contact's first turns while its start is still being applied
        if len(self._languages_seen) >= LANGUAGES_KEPT:
            self._languages_seen.pop(next(iter(self._languages_seen)))
        self._languages_seen[contact_id] = language

    def _languages(self, contact_ids: Sequence[str]) -> list[str | None]:
        known: dict[str, str | None] = {c: self._languages_seen.get(c) for c in contact_ids}
        missing = [c for c, lang in known.items() if lang is None]
        if missing:
            pipe = self.r.pipeline(transaction=False)
            for cid in missing:
                pipe.hget(self.keys.contact(cid), "language")
            known.update({c: as_str(x) if x else None for c, x in zip(missing, pipe.execute(), strict=True)})
        return [known[c] for c in contact_ids]

    def _count_fallbacks(self) -> None:
        """Publish the scorer's fallback count (FallbackScorer keeps one) to the domain's stats hash, where
        the API's /metrics reads it: workers are other processes than the API."""
        total = int(getattr(self.scorer, "fallbacks", 0))
        if total > self.stats.scorer_fallbacks:
            self.r.hincrby(self.keys.stats, "scorer_fallbacks", total - self.stats.scorer_fallbacks)
            self.stats.scorer_fallbacks = total

    def _delivery_counts(self, entries: Sequence[Entry]) -> dict[str, int]:
        # one exact look-up per entry (one round trip): a range query from the first id to the last could be
        # crowded out by other pending entries between them, of other consumers or our own, and miss ours
        pipe = self.r.pipeline(transaction=False)
        for eid, _ in entries:
            pipe.xpending_range(self.keys.events, self.group, min=eid, max=eid, count=1)
        return {as_str(r["message_id"]): int(r["times_delivered"]) for rows in pipe.execute() for r in rows}

    def _deadletter(self, entry_id: str, fields: dict[bytes, bytes], error: str, deliveries: int) -> None:
        raw = fields.get(b"event")
        if raw is None:  # no 'event' field: keep whatever the entry had, so nothing of it is lost
            kept = {as_str(k, "backslashreplace"): as_str(v, "backslashreplace") for k, v in fields.items()}
            payload = json.dumps(kept) if kept else ""
        else:
            payload = raw.decode("utf-8", errors="backslashreplace") if isinstance(raw, bytes) else str(raw)
        entry = {
            "stream_id": entry_id,
            "payload": payload[:MAX_DEADLETTER_PAYLOAD],
            "error": error[:2_000],
            "deliveries": str(deliveries),
            "consumer": self.consumer,
            "ts": f"{time.time():.3f}",
        }
        if len(payload) > MAX_DEADLETTER_PAYLOAD:
            entry["payload_truncated_from"] = str(len(payload))
        self.store.deadletter(self.group, entry_id, entry)
        self.stats.dead_lettered += 1
        log.warning("entry %s dead-lettered: %s", entry_id, error[:200])

    # ---- consumers ------------------------------------------------------------------------------
    def prune_consumers(self) -> list[str]:
        """Delete the consumers of workers silent for ``worker_dead_after_s`` with nothing pending (what a
        dead worker left is reclaimed first), and heartbeats of consumers no longer in the group. Returns
        the consumers deleted."""
        now_ms = int(time.time() * 1000)
        dead_after_ms = int(self.settings.worker_dead_after_s * 1000)
        consumers = self.store.consumers(self.group)
        pruned = [
            name
            for name, pending, idle_ms in consumers
            if name != self.consumer
            and pending == 0
            and idle_ms >= dead_after_ms
            and self.store.prune_consumer(self.group, name, now_ms - dead_after_ms)
        ]
        if pruned:
            log.info("deleted consumers of workers gone for %.0f s: %s", dead_after_ms / 1000, pruned)
        members = {name for name, _, _ in consumers}
        for name, beat_ms in self.store.heartbeats().items():
            if name not in members and now_ms - beat_ms >= dead_after_ms:
                self.store.forget_worker(name)
        return pruned

    # ---- trimming -------------------------------------------------------------------------------
    def trim(self) -> int:
        """Trim the events stream up to the oldest entry some group still needs: never unprocessed work."""
        try:
            groups = self.r.xinfo_groups(self.keys.events)
        except redis.ResponseError:
            return 0
        if not groups:
            return 0
        floor: str | None = None
        for g in groups:
            name = as_str(g["name"])
            last = as_str(g["last-delivered-id"])
            pend = self.r.xpending(self.keys.events, name)
            oldest = as_str(pend["min"]) if pend and pend.get("pending") else None
            safe = oldest if oldest is not None else _next_id(last)
            if floor is None or _id_key(safe) < _id_key(floor):
                floor = safe
        if floor is None or floor in ("0-0", "0-1"):
            return 0
        return int(self.r.xtrim(self.keys.events, minid=floor, approximate=False))


def entries_map(entries: Sequence[Entry]) -> dict[str, dict[bytes, bytes]]:
    return dict(entries)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: str) -> str:
    ms, seq = _id_key(entry_id)
    return f"{ms}-{seq + 1}"
