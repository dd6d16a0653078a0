"""The documented least-privilege ACL users are enough to run the router, and no more.

The refusal matrix sends every command a role must not run, as that role, to a real redis-server. Each one
is first put to ``ACL DRYRUN`` by the admin connection: a rule that wrongly allowed FLUSHALL or SHUTDOWN
fails the test there instead of wrecking the suite's server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from router.events import AgentStatusChanged, event_digest
from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.sim.demo import run_demo
from router.store.acl import ROLES, Role, rules, setuser_command
from router.store.admin import AdminStore, PostedEvent
from router.store.connect import open_store
from router.store.keys import Keys
from router.store.store import RoutingStore

pytestmark = [pytest.mark.redis]

LIBRARY = (
    "#!lua name=routerevil\nredis.register_function('evil', function() return redis.call('FLUSHALL') end)"
)


@dataclass
class AclUser:
    role: Role
    name: str
    url: str


MakeUser = Callable[..., AclUser]


@pytest.fixture
def make_user(real_redis_admin_url: str) -> Iterator[MakeUser]:
    """Creates fresh ACL users of a role (on one domain, or every domain) and removes them afterwards."""
    admin = redis.Redis.from_url(real_redis_admin_url)
    names: list[str] = []

    def make(role: Role, domain: str = "*") -> AclUser:
        name, password = f"router-{role}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        admin.execute_command(*setuser_command(role, name, password, domain))
        names.append(name)
        parts = urlsplit(real_redis_admin_url)
        url = urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}"))
        return AclUser(role, name, url)

    yield make
    for name in names:
        admin.execute_command("ACL", "DELUSER", name)
    admin.close()


@pytest.fixture
def admin(real_redis_admin_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(real_redis_admin_url)
    yield client
    client.close()


@pytest.fixture
def tenants(admin: redis.Redis, real_redis_admin_url: str, domain: str) -> Iterator[tuple[Keys, Keys]]:
    """This test's domain, with a live events stream and group, and another tenant with a secret in
    databases 0 and 1."""
    mine, other = Keys(domain), Keys(f"{domain}-other")
    admin.xgroup_create(mine.events, "router", id="0", mkstream=True)
    admin.xadd(mine.events, {"event": "{}"})
    db1 = redis.Redis.from_url(real_redis_admin_url, db=1)
    for db in (admin, db1):
        db.set(other.prefix + ":secret", "tenant2 data")
    yield mine, other
    admin.delete(mine.events, other.prefix + ":secret")
    db1.delete(other.prefix + ":secret")
    db1.close()


def _refused_by_both(mine: Keys, other: Keys) -> list[tuple[str, ...]]:
    """Server-wide, cross-tenant, key-listing, database-switching and script/function administration."""
    secret = other.prefix + ":secret"
    return [
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "LOAD", LIBRARY),
        ("FUNCTION", "DELETE", "routerevil"),
        ("FUNCTION", "LIST"),
        ("FUNCTION", "DUMP"),
        ("FCALL", "evil", "0"),
        ("FCALL_RO", "evil", "0"),
        ("SELECT", "1"),
        ("SWAPDB", "0", "1"),
        ("MOVE", mine.stats, "1"),
        ("SCAN", "0"),
        ("KEYS", "*"),
        ("RANDOMKEY",),
        ("DBSIZE",),
        ("GET", secret),
        ("SET", secret, "overwritten"),
        ("EXISTS", secret),
        ("EVAL", "return redis.call('GET', KEYS[1])", "1", secret),
        ("XADD", other.events, "*", "event", "{}"),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
        ("CONFIG", "RESETSTAT"),
        ("SHUTDOWN", "NOSAVE"),
        ("SAVE",),
        ("BGSAVE",),
        ("BGREWRITEAOF",),
        ("ACL", "LIST"),
        ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all", "~*"),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "ID", "1"),
        ("MONITOR",),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("SLOWLOG", "GET"),
        ("MEMORY", "USAGE", mine.events),
        ("OBJECT", "ENCODING", mine.events),
        ("DUMP", mine.events),
        ("RESTORE", mine.stats + ":copy", "0", "x"),
        ("MIGRATE", "127.0.0.1", "1", mine.events, "0", "10"),
        ("COPY", mine.events, mine.stats + ":copy"),
        ("RENAME", mine.events, mine.stats + ":moved"),
        ("SORT", mine.agents, "STORE", mine.events),
        ("SUNIONSTORE", mine.events, mine.agents),
        ("DEL", mine.events),
        ("UNLINK", mine.events),
        ("XDEL", mine.events, "0-1"),
        ("XSETID", mine.events, "0-1"),
        ("XGROUP", "DESTROY", mine.events, "router"),
        ("XGROUP", "SETID", mine.events, "router", "$"),
        ("SET", mine.events, "overwritten"),
        ("EXPIRE", mine.events, "1"),
        ("PEXPIRE", mine.events, "1"),
        ("PUBLISH", "router", "x"),
        ("PUBSUB", "CHANNELS"),
        ("MODULE", "LIST"),
        ("FAILOVER",),
        ("CLUSTER", "RESET"),
        ("LATENCY", "LATEST"),
    ]


def _refused_to_the_api(mine: Keys) -> list[tuple[str, ...]]:
    """What only the worker may do: consume and trim the events stream, change routing state directly."""
    return [
        ("XTRIM", mine.events, "MAXLEN", "0"),
        ("XGROUP", "CREATE", mine.events, "intruders", "$"),
        ("XGROUP", "DELCONSUMER", mine.events, "router", "w1"),
        ("XREADGROUP", "GROUP", "router", "w1", "STREAMS", mine.events, ">"),
        ("XACK", mine.events, "router", "0-1"),
        ("XAUTOCLAIM", mine.events, "router", "w1", "0", "0"),
        ("XCLAIM", mine.events, "router", "w1", "0", "0-1"),
        ("XPENDING", mine.events, "router"),
        ("XADD", mine.decisions, "*", "decision", "{}"),
        ("HSET", mine.contact("c1"), "status", "ended"),
        ("ZADD", mine.queue("mot"), "1", "c1"),
        ("ZREM", mine.queue("mot"), "c1"),
        ("HSET", mine.offer("o1"), "status", "accepted"),
        ("SADD", mine.open_contacts, "c1"),
        ("SET", mine.seen("e1"), "1"),
        ("EXPIRE", mine.customer("u1"), "1"),
        ("WATCH", mine.agent("a1")),
    ]


def _expect_refused(admin: redis.Redis, user: AclUser, client: redis.Redis, command: tuple[str, ...]) -> None:
    verdict = admin.execute_command("ACL", "DRYRUN", user.name, *command)
    verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
    assert verdict != "OK", f"{user.role} may run {command[:3]}"
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)


@pytest.mark.parametrize("role", ROLES)
def test_refusal_matrix(
    role: Role, make_user: MakeUser, admin: redis.Redis, tenants: tuple[Keys, Keys]
) -> None:
    mine, other = tenants
    user = make_user(role, mine.domain)
    refused = _refused_by_both(mine, other) + (_refused_to_the_api(mine) if role == "api" else [])
    assert len(refused) >= 40
    client = redis.Redis.from_url(user.url)
    for command in refused:
        _expect_refused(admin, user, client, command)
    # a command a script calls is checked like the same command sent directly
    for body in ("return redis.call('FLUSHALL')", "return redis.call('SCAN', '0')"):
        refused = r"NOPERM|no permissions|can't run this command"
        with pytest.raises(redis.exceptions.ResponseError, match=refused):
            client.eval(body, 0)
    client.close()
    # nothing of it happened
    assert admin.xinfo_groups(mine.events)[0]["name"] == b"router"
    assert admin.xlen(mine.events) == 1
    assert admin.get(other.prefix + ":secret") == b"tenant2 data"
    assert not admin.function_list()


def test_the_issue_reproduction_is_refused(make_user: MakeUser, tenants: tuple[Keys, Keys]) -> None:
    """Issue 14, item 2, step by step: flush scripts, read another database, list keys, unlink the stream."""
    mine, other = tenants
    for role in ROLES:
        user = make_user(role, mine.domain)
        client = redis.Redis.from_url(user.url)
        sha = client.script_load("return 1")  # the router's own scripts keep working ...
        assert client.evalsha(sha, 0) == 1 and client.eval("return 2", 0) == 2
        for command in (("SCRIPT", "FLUSH"), ("FUNCTION", "FLUSH"), ("SELECT", "1"), ("SCAN", "0")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        assert client.script_exists(sha) == [True]  # ... and stay loaded
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get(other.prefix + ":secret")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.randomkey()
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.unlink(mine.events)
        client.close()


def test_a_user_of_every_domain_still_lists_nothing(make_user: MakeUser, admin: redis.Redis) -> None:
    """The default (``--domain`` not given) reaches every domain's keys, and nothing else."""
    user = make_user("worker")
    client = redis.Redis.from_url(user.url)
    a, b = Keys(f"t{uuid.uuid4().hex[:8]}"), Keys(f"t{uuid.uuid4().hex[:8]}")
    client.hset(a.stats, "x", 1)
    client.hset(b.stats, "x", 1)
    for command in (("SCAN", "0"), ("KEYS", "*"), ("SET", "not-a-router-key", "1"), ("SELECT", "1")):
        _expect_refused(admin, user, client, command)
    client.close()
    admin.delete(a.stats, b.stats)


def test_the_api_writes_what_it_owns(
    make_user: MakeUser, admin: redis.Redis, tenants: tuple[Keys, Keys]
) -> None:
    """The API role posts events, edits and deletes an agent, replays and discards dead letters."""
    mine, _ = tenants
    user = make_user("api", mine.domain)
    client = redis.Redis.from_url(user.url)
    api = AdminStore(RoutingStore(client, mine.domain))
    event = AgentStatusChanged(type="agent.status", event_id="e1", agent_id="a1", status="away")
    posted = PostedEvent("e1", event.model_dump_json(), event_digest(event))
    [(_, dup)] = api.post_events([posted], ttl_s=60).results
    assert not dup and admin.xlen(mine.events) == 2
    assert api.store.upsert_agent("a1", {"name": "A"}).ok
    assert api.delete_agent("a1", {"who": "test"})[0] == "ok"
    first, second = (admin.xadd(mine.deadletter, {"payload": "{}"}).decode() for _ in range(2))
    assert api.replay(first, "{}") is not None
    assert api.delete_deadletter(second)
    client.close()
    admin.delete(*(k for k in (mine.deadletter, mine.audit, mine.agents, mine.api_ingest, mine.stats)))


@pytest.mark.slow
def test_demo_runs_as_the_worker_user(make_user: MakeUser, domain: str) -> None:
    user = make_user("worker", domain)
    settings = Settings(domain=domain, offer_timeout_s=3.0, claim_min_idle_ms=2_000, sweep_interval_s=0.2)
    with open_store(user.url) as handle:
        report = run_demo(handle, settings, LexiconScorer(), contacts=40, seed=2, max_runtime_s=120)
    out = report.as_json()
    assert out["lost"] == 0 and out["over_capacity_max"] == 0, out


@pytest.mark.parametrize("role", ROLES)
def test_both_roles_may_run_the_replication_wait(role: Role, make_user: MakeUser, domain: str) -> None:
    """WAIT after a write of their own (RoutingStore.replicate); WAITAOF only when granted (Redis >= 7.2 knows
    it: an older server refuses an ACL that names it)."""
    user = make_user(role, domain)
    client = redis.Redis.from_url(user.url)
    assert RoutingStore(client, domain).replicate(0, 10) == 0  # no replica here: none confirms
    client.close()
    assert "+waitaof" not in " ".join(rules(role, domain))
    assert "+waitaof" in rules(role, domain, waitaof=True)
