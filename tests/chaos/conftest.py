"""Fixtures of the chaos suite; the harness itself is in chaos_support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.chaos_support import REPORTED, RedisServer, WorkerPool


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, aof=False)
    yield server
    server.stop()


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, aof=True)
    yield server
    server.stop()


@pytest.fixture
def workers_for(tmp_path: Path) -> Iterator[Any]:
    pools: list[WorkerPool] = []

    def make(url: str, domain: str, **env: str) -> WorkerPool:
        pool = WorkerPool(url, domain, tmp_path, **env)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Every chaos figure in the log, whatever the capture settings."""
    if REPORTED:
        terminalreporter.section("chaos figures")
        for line in REPORTED:
            terminalreporter.write_line(line)
