"""Store reads and writes that only the supervisor API needs: API keys, event ingestion with idempotency,
agent deletion, the audit log, decisions and dead letters, post-contact outcomes.

The worker's transitions (router/store/store.py, scripts.py) stay the only writers of routing state; the
API changes routing only through the events stream (agent status) and ``RoutingStore.upsert_agent``
(profiles). Every multi-key write here is one Lua script on keys of one domain (one cluster slot).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from router.store.codec import as_str
from router.store.store import AUDIT_MAXLEN, RoutingStore

OUTCOME_MARKER_TTL_S = 90 * 86_400
INGEST_WINDOW_MS = 3_600_000
OUTCOMES_MAXLEN = 100_000
OUTCOME_KINDS = ("mot", "routine")
OUTCOME_FIELDS = ("n", "sum", "sumsq", "resolved")
KEY_PREFIX = "mr"

# Ingest a batch of events. Idempotent per event_id: a repeated id with the same content answers the stream
# id it was written as; with other content (against an earlier post, an event the workers applied, or an
# earlier event of the batch) the whole batch is refused and nothing is written.
# KEYS: 1 events stream, 2 ingest times, then per event: its idempotency key and its seen marker
#       (placeholders when it has no id)
# ARGV: 1 now ms, 2 idempotency ttl s, 3 ingest window ms, then per event: event id ('' none), payload,
#       content digest
# An idempotency key holds '<stream id> <digest>' (or, written before digests, the stream id alone).
_POST_EVENTS = r"""
local n = (#ARGV - 3) / 3
local function digest_of(known)
  local sid, d = string.match(known, '^(%S+) (%S+)$')
  if sid then return sid, d end
  return known, nil
end
local prior, first = {}, {}
for i = 1, n do
  local eid, digest = ARGV[1 + i * 3], ARGV[3 + i * 3]
  if eid ~= '' then
    local had = prior[eid]
    if had == nil then
      local known = redis.call('GET', KEYS[1 + i * 2])
      local seen = redis.call('GET', KEYS[2 + i * 2])
      if known then
        local sid, d = digest_of(known)
        first[eid] = sid
        had = d or false
      elseif seen and seen ~= '1' and seen ~= '*' then
        had = seen
      end
    end
    if had and had ~= digest then return {'conflict', tostring(i - 1), eid} end
    if had == nil then prior[eid] = digest else prior[eid] = had end
  end
end
local out = {}
local written = {}
for i = 1, n do
  local eid, payload, digest = ARGV[1 + i * 3], ARGV[2 + i * 3], ARGV[3 + i * 3]
  local sid = eid ~= '' and (first[eid] or written[eid])
  if sid then
    out[#out + 1] = sid
    out[#out + 1] = '1'
  else
    sid = redis.call('XADD', KEYS[1], '*', 'event', payload)
    if eid ~= '' then
      written[eid] = sid
      redis.call('SET', KEYS[1 + i * 2], sid .. ' ' .. digest, 'EX', ARGV[2])
      redis.call('ZADD', KEYS[2], ARGV[1], eid)
    end
    out[#out + 1] = sid
    out[#out + 1] = '0'
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
return out
"""

# Delete an agent that holds no work. KEYS: 1 agent, 2 agents set, 3 audit, 4 agent's pending offers,
# 5 agent's recent MoT offers. ARGV: 1 agent id, 2 audit entry JSON, 3 audit maxlen
_DELETE_AGENT = r"""
if redis.call('HGET', KEYS[1], 'agent_id') ~= ARGV[1] then return {'missing'} end
if redis.call('SCARD', KEYS[4]) > 0 then return {'busy', 'pending_offers'} end
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  if string.sub(h[i], 1, 5) == 'load:' and (tonumber(h[i + 1]) or 0) > 0 then
    return {'busy', 'holds_work'}
  end
end
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'entry', ARGV[2])
return {'ok'}
"""

# Replay one dead letter: back onto the events stream, out of the dead-letter stream, in one step.
# KEYS: 1 dead-letter stream, 2 events stream, 3 stats. ARGV: 1 entry id, 2 payload
_REPLAY = r"""
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {'missing'} end
local sid = redis.call('XADD', KEYS[2], '*', 'event', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'replayed', 1)
return {'ok', sid}
"""

# Record one outcome per (contact, agent) and fold it into the agent's and the domain's aggregates.
# KEYS: 1 marker, 2 outcomes stream, 3 agent aggregates, 4 domain aggregates
# ARGV: 1 entry JSON, 2 kind (mot|routine), 3 csat, 4 resolved 1|0, 5 marker ttl s, 6 outcomes maxlen,
# 7.. the finer classes of the contact (router.domain.outcomes: 'mot|language=de', ...), agent's hash only
_OUTCOME = r"""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return {'dup'} end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'outcome', ARGV[1])
local csat = tonumber(ARGV[3])
local function fold(key, class)
  redis.call('HINCRBY', key, class .. ':n', 1)
  redis.call('HINCRBY', key, class .. ':sum', csat)
  redis.call('HINCRBY', key, class .. ':sumsq', csat * csat)
  redis.call('HINCRBY', key, class .. ':resolved', tonumber(ARGV[4]))
end
fold(KEYS[3], ARGV[2])
fold(KEYS[4], ARGV[2])
for i = 7, #ARGV do fold(KEYS[3], ARGV[i]) end
return {'ok', id}
"""


def _decode_map(h: Mapping[Any, Any]) -> dict[str, str]:
    return {as_str(k, "replace"): as_str(v, "replace") for k, v in h.items()}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_ms: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PostedEvent:
    event_id: str | None
    payload: str  # the event as JSON
    digest: str  # router.events.event_digest


@dataclass(frozen=True, slots=True)
class Posted:
    """(stream id, duplicate) per event in order; or, when an event reused an event_id for other content,
    nothing written and ``conflict`` = (its index, its event_id)."""

    results: list[tuple[str, bool]]
    conflict: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class StreamEntry:
    entry_id: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Aggregate:
    n: int = 0
    sum: int = 0
    sumsq: int = 0
    resolved: int = 0

    def minus(self, other: Aggregate) -> Aggregate:
        return Aggregate(
            max(0, self.n - other.n),
            self.sum - other.sum,
            self.sumsq - other.sumsq,
            max(0, self.resolved - other.resolved),
        )


def parse_token(token: str) -> tuple[str, str] | None:
    """``mr_<key id>_<secret>`` -> (key id, token); None when it has not that shape."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    if len(parts[1]) > 32 or not all(c in "0123456789abcdef" for c in parts[1]):
        return None
    return parts[1], token


def stream_id_ms(entry_id: str) -> int | None:
    """The millisecond part of a stream entry id (``1712345678901-0``), or None for another string."""
    ms, sep, seq = entry_id.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or len(ms) > 15 or len(seq) > 19:
        return None
    return int(ms)


class AdminStore:
    """API-side access to one routing domain; wraps the worker's ``RoutingStore`` (same client)."""

    def __init__(self, store: RoutingStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.r: redis.Redis = store.client
        self.keys = store.keys
        self.clock = clock
        self._post_events = self.r.register_script(_POST_EVENTS)
        self._delete_agent = self.r.register_script(_DELETE_AGENT)
        self._replay = self.r.register_script(_REPLAY)
        self._outcome = self.r.register_script(_OUTCOME)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- API keys ------------------------------------------------------------------------------
    def create_key(self, name: str, scopes: Sequence[str]) -> tuple[ApiKeyRecord, str]:
        """A new key; the token is returned once and only its SHA-256 is stored."""
        key_id = secrets.token_hex(6)
        token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        rec = ApiKeyRecord(key_id, name, tuple(sorted(set(scopes))), self._now_ms(), hash_token(token))
        doc = {"sha256": rec.sha256, "scopes": list(rec.scopes), "name": name, "created_ms": rec.created_ms}
        self.r.hset(self.keys.api_keys, key_id, json.dumps(doc))
        return rec, token

    def list_keys(self) -> list[ApiKeyRecord]:
        raw = _decode_map(self.r.hgetall(self.keys.api_keys))
        return sorted((self._key_from_json(k, v) for k, v in raw.items()), key=lambda r: r.created_ms)

    def revoke_key(self, key_id: str) -> bool:
        return bool(self.r.hdel(self.keys.api_keys, key_id))

    def verify_key(self, token: str) -> ApiKeyRecord | None:
        """The key a presented token belongs to, compared in constant time, or None."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, _ = parsed
        raw = self.r.hget(self.keys.api_keys, key_id)
        if raw is None:
            return None
        rec = self._key_from_json(key_id, as_str(raw))
        if not hmac.compare_digest(hash_token(token), rec.sha256):
            return None
        return rec

    @staticmethod
    def _key_from_json(key_id: str, raw: str) -> ApiKeyRecord:
        d = json.loads(raw)
        return ApiKeyRecord(
            key_id=key_id,
            name=str(d.get("name", "")),
            scopes=tuple(str(s) for s in d.get("scopes", [])),
            created_ms=int(d.get("created_ms", 0)),
            sha256=str(d.get("sha256", "")),
        )

    def domain_in_use(self) -> bool:
        """Whether the domain has an events stream or agents: a key made for one that has neither is most
        likely made for a misspelt domain."""
        pipe = self.r.pipeline(transaction=False)
        pipe.exists(self.keys.events)
        pipe.scard(self.keys.agents)
        events, agents = pipe.execute()
        return bool(events) or bool(agents)

    # ---- events --------------------------------------------------------------------------------
    def post_events(self, events: Sequence[PostedEvent], ttl_s: int) -> Posted:
        """XADD each event, in order, unless one reuses an event_id for other content (nothing written)."""
        k = self.keys
        keys: list[str] = [k.events, k.api_ingest]
        args: list[Any] = [self._now_ms(), ttl_s, INGEST_WINDOW_MS]
        for e in events:
            keys += [k.api_idempotency(e.event_id), k.seen(e.event_id)] if e.event_id else [k.none, k.none]
            args += [e.event_id or "", e.payload, e.digest]
        flat = [as_str(x) for x in self._post_events(keys=keys, args=args)]
        if flat[0] == "conflict":
            return Posted([], (int(flat[1]), flat[2]))
        return Posted([(flat[i], flat[i + 1] == "1") for i in range(0, len(flat), 2)])

    def ingest_ms(self, event_ids: Sequence[str]) -> dict[str, int]:
        """When the API accepted each of these events (ms), for those it still remembers."""
        if not event_ids:
            return {}
        scores = self.r.zmscore(self.keys.api_ingest, list(event_ids))
        return {eid: int(s) for eid, s in zip(event_ids, scores, strict=True) if s is not None}

    # ---- agents --------------------------------------------------------------------------------
    def agent_exists(self, agent_id: str) -> bool:
        return bool(self.r.hexists(self.keys.agent(agent_id), "agent_id"))

    def delete_agent(self, agent_id: str, audit: Mapping[str, Any]) -> tuple[str, str]:
        """('ok'|'missing'|'busy', detail)."""
        k = self.keys
        res = self._delete_agent(
            keys=[k.agent(agent_id), k.agents, k.audit, k.agent_offers(agent_id), k.agent_mot(agent_id)],
            args=[agent_id, json.dumps(dict(audit)), AUDIT_MAXLEN],
        )
        parts = [as_str(x) for x in res]
        return parts[0], parts[1] if len(parts) > 1 else ""

    def audit(
        self, *, limit: int, before: str | None, agent_id: str | None, scan: int = 5_000
    ) -> list[StreamEntry]:
        def keep(e: StreamEntry) -> bool:
            if agent_id is None:
                return True
            try:
                return bool(json.loads(e.fields.get("entry", "{}")).get("agent_id") == agent_id)
            except ValueError:
                return False

        return self._scan_back(self.keys.audit, limit=limit, before=before, keep=keep, scan=scan)

    # ---- decisions -----------------------------------------------------------------------------
    def decisions(
        self,
        *,
        limit: int,
        before: str | None,
        keep: Callable[[dict[str, Any]], bool],
        scan: int = 5_000,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Recent decisions, newest first, that ``keep`` accepts; scans at most ``scan`` entries."""
        out: list[tuple[str, dict[str, Any]]] = []

        def accept(e: StreamEntry) -> bool:
            try:
                d = json.loads(e.fields.get("decision", ""))
            except ValueError:
                return False
            if isinstance(d, dict) and keep(d):
                out.append((e.entry_id, d))
            return False  # collected above; _scan_back only counts

        self._scan_back(
            self.keys.decisions,
            limit=limit,
            before=before,
            keep=accept,
            scan=scan,
            stop=lambda: len(out) >= limit,
        )
        return out[:limit]

    def decisions_after(self, last_id: str, count: int) -> tuple[list[tuple[str, dict[str, Any]]], str]:
        """Decisions strictly after ``last_id``, oldest first, and the id to continue after."""
        res: Any = self.r.xrange(self.keys.decisions, min=f"({last_id}", max="+", count=count)
        return _parse_decisions(res), as_str(res[-1][0]) if res else last_id

    def last_decision_id(self) -> str:
        res: Any = self.r.xrevrange(self.keys.decisions, max="+", min="-", count=1)
        return as_str(res[0][0]) if res else "0-0"

    def recent_decisions(self, count: int) -> tuple[list[tuple[str, dict[str, Any]]], str]:
        """The newest ``count`` decisions, oldest first, and the id to continue after."""
        raw: Any = self.r.xrevrange(self.keys.decisions, max="+", min="-", count=count)
        res = list(reversed(raw or []))
        return _parse_decisions(res), as_str(res[-1][0]) if res else "0-0"

    # ---- dead letters --------------------------------------------------------------------------
    def deadletter_count(self) -> int:
        return int(self.r.xlen(self.keys.deadletter))

    def deadletters(self, *, limit: int, before: str | None) -> list[StreamEntry]:
        return self._scan_back(
            self.keys.deadletter, limit=limit, before=before, keep=lambda e: True, scan=limit
        )

    def deadletter(self, entry_id: str) -> StreamEntry | None:
        res: Any = self.r.xrange(self.keys.deadletter, min=entry_id, max=entry_id, count=1)
        if not res:
            return None
        eid, fields = res[0]
        return StreamEntry(as_str(eid), _decode_map(fields))

    def deadletters_oldest(self, count: int, after: str = "-", until: str = "+") -> list[StreamEntry]:
        """Dead letters oldest first, strictly after ``after`` and up to ``until`` (inclusive)."""
        start = after if after == "-" else f"({after}"
        res: Any = self.r.xrange(self.keys.deadletter, min=start, max=until, count=count)
        return [StreamEntry(as_str(eid), _decode_map(f)) for eid, f in res]

    def last_deadletter_id(self) -> str | None:
        """The newest dead letter's id, or None when there is none."""
        res: Any = self.r.xrevrange(self.keys.deadletter, max="+", min="-", count=1)
        return as_str(res[0][0]) if res else None

    def replay(self, entry_id: str, payload: str) -> str | None:
        """The new events-stream id, or None when the entry is gone (replayed or deleted meanwhile)."""
        k = self.keys
        res = self._replay(keys=[k.deadletter, k.events, k.stats], args=[entry_id, payload])
        parts = [as_str(x) for x in res]
        return parts[1] if parts[0] == "ok" else None

    def delete_deadletter(self, entry_id: str) -> bool:
        return bool(self.r.xdel(self.keys.deadletter, entry_id))

    # ---- outcomes ------------------------------------------------------------------------------
    def record_outcome(
        self,
        *,
        contact_id: str,
        agent_id: str,
        mot: bool,
        csat: int,
        resolved: bool,
        who: str,
        classes: Sequence[str] = (),
    ) -> str | None:
        """The outcome's stream id, or None when this (contact, agent) already has one. ``classes``: the
        contact's finer classes (``ContactClass.fine_keys``), folded into the agent's tallies too, which
        outcome-aware matching reads."""
        k = self.keys
        entry = {
            "contact_id": contact_id,
            "agent_id": agent_id,
            "moment_of_truth": mot,
            "csat": csat,
            "resolved": resolved,
            "who": who,
            "ts": round(self.clock(), 3),
        }
        res = self._outcome(
            keys=[
                k.outcome_marker(contact_id, agent_id),
                k.outcomes,
                k.outcome_agent(agent_id),
                k.outcome_totals,
            ],
            args=[
                json.dumps(entry),
                "mot" if mot else "routine",
                csat,
                "1" if resolved else "0",
                OUTCOME_MARKER_TTL_S,
                OUTCOMES_MAXLEN,
                *classes,
            ],
        )
        parts = [as_str(x) for x in res]
        return parts[1] if parts[0] == "ok" else None

    def outcome_aggregates(self, agent_id: str) -> tuple[dict[str, Aggregate], dict[str, Aggregate]]:
        """(agent's, domain's) aggregates per kind ('mot', 'routine')."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.outcome_agent(agent_id))
        pipe.hgetall(self.keys.outcome_totals)
        mine, total = (_decode_map(h) for h in pipe.execute())
        return _aggregates(mine), _aggregates(total)

    def outcome_aggregates_of(
        self, agent_ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, Aggregate]], dict[str, Aggregate]]:
        """Each agent's aggregates per kind, and the domain's, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for aid in agent_ids:
            pipe.hgetall(self.keys.outcome_agent(aid))
        pipe.hgetall(self.keys.outcome_totals)
        *mine, total = (_decode_map(h) for h in pipe.execute())
        return {aid: _aggregates(h) for aid, h in zip(agent_ids, mine, strict=True)}, _aggregates(total)

    # ---- queues and floor ----------------------------------------------------------------------
    def enqueued_ms(self, queue: str, limit: int) -> list[int]:
        """Enqueue times (ms) of up to ``limit`` contacts at the head of ``queue``."""
        ids = self.store.queue_head(queue, limit)
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for cid in ids:
            pipe.hget(self.keys.contact(cid), "enqueued_ms")
        out = []
        for raw in pipe.execute():
            try:
                if raw is not None:
                    out.append(int(float(as_str(raw))))
            except ValueError:
                continue
        return out

    def floor_counts(self) -> dict[str, int]:
        """Stream backlogs and pending offers, for the overview and /metrics."""
        k = self.keys
        pipe = self.r.pipeline(transaction=False)
        pipe.xlen(k.events)
        pipe.xlen(k.deadletter)
        pipe.zcard(k.offers)
        pipe.xlen(k.outcomes)
        events, dead, offers, outcomes = pipe.execute()
        return {
            "events_backlog": int(events),
            "deadletter_backlog": int(dead),
            "offers_pending": int(offers),
            "outcomes": int(outcomes),
        }

    def group_info(self, group: str) -> dict[str, int] | None:
        """{'consumers', 'pending', 'lag'} of the workers' group, or None when it does not exist."""
        try:
            groups = self.r.xinfo_groups(self.keys.events)
        except redis.ResponseError:
            return None
        for g in groups:
            if as_str(g.get("name", "")) == group:
                lag = g.get("lag")
                return {
                    "consumers": int(g.get("consumers", 0) or 0),
                    "pending": int(g.get("pending", 0) or 0),
                    "lag": int(lag) if lag is not None else -1,
                }
        return None

    def live_workers(self, dead_after_s: float) -> int:
        """Workers that heartbeat within the last ``dead_after_s`` (consumers of dead workers linger in
        the group until the housekeeping deletes them)."""
        return self.store.live_workers(self._now_ms() - int(dead_after_s * 1000))

    def served_recent(self, queue: str, since_ms: int) -> int:
        return int(self.r.zcount(self.keys.served(queue), since_ms, "+inf"))

    # ---- helpers -------------------------------------------------------------------------------
    def _scan_back(
        self,
        key: str,
        *,
        limit: int,
        before: str | None,
        keep: Callable[[StreamEntry], bool],
        scan: int,
        stop: Callable[[], bool] | None = None,
    ) -> list[StreamEntry]:
        """Newest-first entries of a stream strictly before ``before`` that ``keep`` accepts."""
        out: list[StreamEntry] = []
        if before is not None and stream_id_ms(before) == 0 and int(before.partition("-")[2] or 0) == 0:
            return out  # nothing precedes 0-0 (and Redis refuses the exclusive bound "(0-0")
        upper = f"({before}" if before else "+"
        scanned = 0
        chunk = max(1, min(500, scan))
        while scanned < scan and len(out) < limit and not (stop and stop()):
            res: Any = self.r.xrevrange(key, max=upper, min="-", count=chunk)
            if not res:
                break
            for eid, fields in res:
                e = StreamEntry(as_str(eid), _decode_map(fields))
                scanned += 1
                if keep(e):
                    out.append(e)
                if len(out) >= limit or scanned >= scan or (stop and stop()):
                    break
            upper = f"({as_str(res[-1][0])}"
            if len(res) < chunk:
                break
        return out


def _parse_decisions(res: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for eid, fields in res:
        try:
            d = json.loads(as_str(fields.get(b"decision", b"")))
        except ValueError:
            continue
        if isinstance(d, dict):
            out.append((as_str(eid), d))
    return out


def _aggregates(h: Mapping[str, str]) -> dict[str, Aggregate]:
    out = {}
    for kind in OUTCOME_KINDS:
        vals = []
        for f in OUTCOME_FIELDS:
            try:
                vals.append(int(h.get(f"{kind}:{f}", "0")))
            except ValueError:
                vals.append(0)
        out[kind] = Aggregate(*vals)
    return out
