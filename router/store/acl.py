"""Least-privilege Redis ACL rules for the router's two roles, per routing domain.

Each role starts from nothing (``-@all``, no keys, no channels) and gets back exactly the commands its code
sends, on the keys of one domain (``router:{d}:*``; the default domain ``*`` stands for every domain):

* ``worker`` consumes the events stream (read, acknowledge, claim, trim, its group and its consumers), runs
  the transition scripts, heartbeats, and reconciles under WATCH/MULTI.
* ``api`` reads the whole domain but writes only what the API owns: the events stream (XADD only), agent
  profiles, API keys, idempotency markers, the audit log, outcomes, stats and the dead-letter stream. It
  cannot delete, trim, expire, overwrite or regroup the events stream, and writes no contact, queue or
  offer: routing changes go through events.

Both may WAIT (and, when asked for, WAITAOF): the replication wait.

Neither role may list keys (SCAN, KEYS, RANDOMKEY, DBSIZE), switch databases (SELECT, SWAPDB, MOVE),
administer scripts or functions (SCRIPT FLUSH/KILL, FUNCTION, FCALL), publish or subscribe, or run any
server administration. EVAL and EVALSHA stay: since Redis 7 every command a script calls is checked
against these same rules, so a script can do no more than its caller. Redis declares EVALSHA's keys as
read-write, so every key the API hands one of its scripts is writable by the API.

What an ACL cannot express: the API's XADD to the events stream could carry MAXLEN/MINID, which trims.
ACLs match commands and keys, never options, and the API must append to that stream.
"""

from __future__ import annotations

import re
from typing import Literal

from router.store.keys import Keys

Role = Literal["worker", "api"]
ROLES: tuple[Role, ...] = ("worker", "api")
ALL_DOMAINS = "*"
DOMAIN_PATTERN = re.compile(r"^([A-Za-z0-9_.-]{1,64}|\*)$")  # Settings.domain, or every domain

# Both roles. PING (health checks), INFO (connect.py reads cluster_enabled), redis-py's cluster client
# (CLUSTER SLOTS for the slot map, COMMAND and COMMAND GETKEYS for key positions, ASKING to follow a slot
# in migration) and the router's Lua scripts (EVALSHA; SCRIPT LOAD after NOSCRIPT; SCRIPT EXISTS when a
# pipeline holds scripts; EVAL for a caller that sends the body).
COMMON_COMMANDS: tuple[str, ...] = (
    "ping",
    "info",
    "command",
    "cluster|slots",
    "asking",
    "eval",
    "evalsha",
    "script|load",
    "script|exists",
    # the replication wait (Settings.replication_wait): the worker before its XACK, the API before 202
    "wait",
)
# WAITAOF (replication_wait=waitaof) exists from Redis 7.2 / Valkey 8 on; an older server refuses an ACL
# that names it, so it is granted only when asked for (``router acl --waitaof``)
WAITAOF = "waitaof"
# reads the transition scripts and the store make, and the worker's stream bookkeeping
WORKER_READS: tuple[str, ...] = (
    "get",
    "exists",
    "hget",
    "hgetall",
    "hmget",
    "smembers",
    "scard",
    "sismember",
    "sscan",
    "zcard",
    "zcount",
    "zrange",
    "zrangebyscore",
    "zrank",
    "zscore",
    "lrange",
    "lindex",  # the floor-sample script reads the newest sample
    "xrange",
    "xrevrange",
    "xread",  # the demo's simulated floor follows the decisions as the worker user
    "xlen",
    "xpending",
    "xinfo|groups",
    "xinfo|consumers",
)
# none of these can remove or replace a stream (WRONGTYPE on one); SET and the expiries are granted on
# their own keys only (worker_rules)
WORKER_WRITES: tuple[str, ...] = (
    "hset",
    "hdel",  # an agent's busy-slot record goes when the slot frees (the wait forecast's slot ages)
    "hincrby",
    "sadd",
    "srem",
    "zadd",
    "zrem",
    "zremrangebyscore",
    "rpush",
    "lpush",  # the waits log (accepted offers against the wait announced)
    "ltrim",
    "xadd",
    "xreadgroup",
    "xack",
    "xautoclaim",
    "xtrim",
    "xgroup|create",
    "xgroup|delconsumer",
    # reconcile repairs an agent under WATCH
    "watch",
    "unwatch",
    "multi",
    "exec",
    "discard",
)
API_READS: tuple[str, ...] = (
    "get",
    "hget",
    "hgetall",
    "hmget",
    "hexists",
    "smembers",
    "scard",
    "zcard",
    "zcount",
    "zrange",
    "zrangebyscore",
    "zrank",
    "zscore",
    "zmscore",
    "lrange",
    "xrange",
    "xrevrange",
    "xlen",
    "xinfo|groups",
)
# none of these can remove or replace a stream (WRONGTYPE on one), so they may go to every writable key
API_WRITES: tuple[str, ...] = (
    "hset",
    "hdel",
    "hincrby",
    "sadd",
    "srem",
    "zadd",
    "zremrangebyscore",
    "xadd",
)


def _written_by_api(k: Keys) -> tuple[str, ...]:
    """The keys the API writes, directly or as a key of one of its scripts."""
    return (
        k.events,
        k.deadletter,
        k.audit,
        k.stats,
        k.none,
        k.agents,
        k.agent("*"),
        k.agent_offers("*"),  # emptied by the delete-agent script
        k.agent_mot("*"),
        k.api_keys,
        k.api_idempotency("*"),
        k.seen("*"),  # read by the ingest script (a reused event_id): declared, so read-write
        k.api_ingest,
        k.outcomes,
        k.outcome_marker("*", "*"),
        k.outcome_agent("*"),
        k.outcome_totals,
    )


def _selector(patterns: tuple[str, ...], command: str) -> str:
    """One command allowed on these keys only (a Redis 7 selector: checked apart from the root rules)."""
    return "(" + " ".join([*(f"~{p}" for p in patterns), "resetchannels", "-@all", f"+{command}"]) + ")"


def worker_rules(domain: str = ALL_DOMAINS, *, waitaof: bool = False) -> tuple[str, ...]:
    k = Keys(domain)
    commands = (*COMMON_COMMANDS, *((WAITAOF,) if waitaof else ()), *WORKER_READS, *WORKER_WRITES)
    return (
        "resetkeys",
        f"~{k.prefix}:*",
        "resetchannels",
        "-@all",
        *(f"+{c}" for c in commands),
        # SET replaces a key of any type and an expiry deletes one later: never on the streams
        _selector((k.seen("*"),), "set"),
        _selector((k.customer("*"),), "expire"),
        _selector((k.offer("*"), k.declines("*")), "pexpire"),
    )


def api_rules(domain: str = ALL_DOMAINS, *, waitaof: bool = False) -> tuple[str, ...]:
    k = Keys(domain)
    commands = (*COMMON_COMMANDS, *((WAITAOF,) if waitaof else ()), *API_READS, *API_WRITES)
    return (
        "resetkeys",
        f"%R~{k.prefix}:*",
        # read-write, not %W~: Redis grants a key only when one pattern covers every access it needs
        *(f"~{p}" for p in _written_by_api(k)),
        "resetchannels",
        "-@all",
        *(f"+{c}" for c in commands),
        # SET replaces a key of any type and DEL/XDEL remove data: only on the keys the API's scripts need
        _selector((k.api_idempotency("*"), k.outcome_marker("*", "*")), "set"),
        _selector((k.agent("*"), k.agent_offers("*"), k.agent_mot("*")), "del"),
        _selector((k.deadletter,), "xdel"),
    )


def rules(role: Role, domain: str = ALL_DOMAINS, *, waitaof: bool = False) -> tuple[str, ...]:
    if not DOMAIN_PATTERN.match(domain):
        raise ValueError(f"domain {domain!r}: a routing domain name, or '*' for every domain")
    make = worker_rules if role == "worker" else api_rules
    return make(domain, waitaof=waitaof)


def setuser_command(
    role: Role, username: str, password: str, domain: str = ALL_DOMAINS, *, waitaof: bool = False
) -> list[str]:
    """The ``ACL SETUSER`` arguments that create (or reset) ``username`` for ``role`` on ``domain``. ACL
    rules are not replicated: run it on every node (primary, replicas, every cluster node)."""
    return ["ACL", "SETUSER", username, "reset", "on", f">{password}", *rules(role, domain, waitaof=waitaof)]
