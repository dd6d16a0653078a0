"""A real 3-master Redis Cluster on loopback: two routing domains on different slots, driven end to end."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.sim.demo import run_demo
from router.store.connect import open_store
from router.store.keys import Keys
from tests.chaos.ha_support import cluster_ports

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        pytest.fail("needs Debian's redis-server and redis-cli (scripts/test.sh installs them)")
    ports = cluster_ports(3)
    procs = []
    for port in ports:
        workdir: Path = tmp_path_factory.mktemp(f"node{port}")
        procs.append(
            subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(workdir / "nodes.conf"),
                    "--dir",
                    str(workdir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        for port in ports:
            _wait_ping(port)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        node = redis.Redis(port=ports[0])
        deadline = time.monotonic() + 30
        while _cluster_state(node) != "ok":
            assert time.monotonic() < deadline, "cluster never became ok"
            time.sleep(0.1)
        node.close()
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _cluster_state(node: redis.Redis) -> str:
    info: Any = node.execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return str(info.get("cluster_state", ""))
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "ok" if "cluster_state:ok" in text else "fail"


def _wait_ping(port: int) -> None:
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            client.close()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"redis-server on {port} did not start")


def _domains_on_different_nodes() -> tuple[str, str]:
    """Two domain names whose hash tags fall in different thirds of the slot space (different masters)."""
    picked: dict[int, str] = {}
    for i in range(1000):
        name = f"centre{i}"
        third = key_slot(Keys(name).events.encode()) * 3 // 16384
        picked.setdefault(third, name)
        if 0 in picked and 2 in picked:
            return picked[0], picked[2]
    raise AssertionError("no domains found")


def test_two_domains_on_different_slots_run_the_demo(cluster_url: str) -> None:
    first, second = _domains_on_different_nodes()
    assert key_slot(Keys(first).events.encode()) != key_slot(Keys(second).events.encode())
    with open_store(cluster_url) as handle:
        assert handle.cluster
        for domain in (first, second):
            settings = Settings(
                domain=domain,
                offer_timeout_s=3.0,
                claim_min_idle_ms=2_000,
                claim_interval_s=0.5,
                sweep_interval_s=0.2,
            )
            report = run_demo(handle, settings, LexiconScorer(), contacts=40, seed=11, max_runtime_s=120)
            out = report.as_json()
            assert out["lost"] == 0, out
            assert out["over_capacity_max"] == 0, out
            assert out["dead_letters"] == 3, out
            assert report.extra["final_agent_load"] == 0
            assert out["mot_to_high_eq_share"] >= 0.9, out
