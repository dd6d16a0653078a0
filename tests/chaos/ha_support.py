"""High-availability harness: a primary with a replica behind a link we can stall, three sentinels (the
same redis-server binary in sentinel mode), a Redis Cluster whose masters have replicas, and the router's
ACL users on every node (ACL rules are not replicated)."""

from __future__ import annotations

import random
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from router.store.acl import setuser_command
from tests.chaos.chaos_support import RedisServer, free_port

MASTER_NAME = "mymaster"
# a primary starts a full sync 5 s after a replica asks by default (waiting for more replicas); the wait
# on, the rejoined node confirms nothing until it has synced, so the scenarios start it at once
NODE_OPTIONS = ("--repl-diskless-sync-delay", "0")
USERS = {"worker": ("router-worker", "worker-pw"), "api": ("router-api", "api-pw")}


def add_users(port: int) -> None:
    """The router's worker and API users, on one node (its default user stays the admin)."""
    admin = redis.Redis(port=port)
    for role, (name, password) in USERS.items():
        admin.execute_command(*setuser_command(role, name, password))  # type: ignore[arg-type]
    admin.close()


class LinkProxy:
    """Carries a replica's link to its primary. ``stall()`` holds back what the primary sends (one direction
    of a partition): the replica falls behind for as long as the stall lasts, and what is held dies with
    the primary."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.stalled = threading.Event()
        self.held_bytes = 0
        # monotonic time up to which the replica has everything the primary sent: the pump drained the
        # primary's socket and forwarded it, not stalled. The durability bound is measured from here, not
        # from the stall: a pump thread slowed by the test process's other threads lags before any stall.
        self.caught_up_at = time.monotonic()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:  # closed
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:  # the primary is gone: so is the replica's link
                down.close()
                continue
            threading.Thread(target=self._pump, args=(down, up), daemon=True).start()

    def _pump(self, down: socket.socket, up: socket.socket) -> None:
        held = bytearray()
        try:
            while True:
                ready, _, _ = select.select([down, up], [], [], 0.05)
                polled_at, drained = time.monotonic(), True
                if down in ready:
                    data = down.recv(65536)
                    if not data:
                        return
                    up.sendall(data)
                if up in ready:
                    data = up.recv(65536)
                    if not data:
                        return
                    held += data
                    drained = len(data) < 65536
                if not self.stalled.is_set():
                    if held:
                        down.sendall(held)
                        held.clear()
                    if drained:
                        self.caught_up_at = polled_at
                self.held_bytes = len(held)
        except OSError:
            return
        finally:
            down.close()
            up.close()

    def stall(self) -> None:
        self.stalled.set()

    def close(self) -> None:
        self.listener.close()


class SentinelTopology:
    """A primary, one replica (its link through a LinkProxy) and three sentinels, quorum 2."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.primary = RedisServer(_dir(workdir, "primary"), aof=False, extra=NODE_OPTIONS)
        add_users(self.primary.port)
        self.proxy = LinkProxy(self.primary.port)
        self.replica = RedisServer(
            _dir(workdir, "replica"),
            aof=False,
            extra=(*NODE_OPTIONS, "--replicaof", "127.0.0.1", str(self.proxy.port)),
        )
        add_users(self.replica.port)
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels = [self._sentinel(port) for port in self.sentinel_ports]
        self._wait_discovered()

    def _sentinel(self, port: int) -> subprocess.Popen[bytes]:
        conf = self.workdir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
            # long: a sentinel would otherwise point the replica at the primary directly, past the proxy
            f"sentinel failover-timeout {MASTER_NAME} 60000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        proc = subprocess.Popen(
            [self.primary.binary, str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_ping(port)
        return proc

    def _wait_discovered(self, timeout_s: float = 30) -> None:
        """Until every sentinel knows the replica and the two other sentinels (hello messages, every 2 s)."""
        deadline = time.monotonic() + timeout_s
        for port in self.sentinel_ports:
            s = redis.Redis(port=port, decode_responses=True)
            while True:
                replicas: Any = s.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                peers: Any = s.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
                if len(replicas) == 1 and len(peers) == 2:
                    break
                assert time.monotonic() < deadline, "sentinels never discovered the replica and each other"
                time.sleep(0.1)
            s.close()

    def url(self, role: str | None = None) -> str:
        auth = "{}:{}@".format(*USERS[role]) if role else ""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{auth}{hosts}/{MASTER_NAME}/0"

    def master_ports(self) -> set[int | None]:
        """The primary each sentinel names (None: it does not answer)."""
        ports: set[int | None] = set()
        for port in self.sentinel_ports:
            try:
                addr: Any = redis.Redis(port=port).execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME
                )
            except redis.RedisError:
                addr = None
            ports.add(int(addr[1]) if addr else None)
        return ports

    def wait_switched(self, timeout_s: float = 30) -> None:
        """Until every sentinel names the replica: a sentinel that still named the old primary would send
        clients to it once it is back (as a replica, still syncing)."""
        deadline = time.monotonic() + timeout_s
        while self.master_ports() != {self.replica.port}:
            assert time.monotonic() < deadline, "the sentinels never agreed on the promoted replica"
            time.sleep(0.05)

    def rejoin_old_primary(self) -> None:
        """Start the killed primary again as a replica of the promoted one (what an orchestrator does: a
        node without persistence must never come back as an empty primary)."""
        self.primary = RedisServer(
            _dir(self.workdir, "primary-again"),
            aof=False,
            port=self.primary.port,
            extra=(*NODE_OPTIONS, "--replicaof", "127.0.0.1", str(self.replica.port)),
        )
        add_users(self.primary.port)

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
        for proc in self.sentinels:
            proc.wait(10)
        self.primary.stop()
        self.replica.stop()
        self.proxy.close()


class ClusterTopology:
    """Three masters, each with one replica (six redis-server processes), node time-out 1 s."""

    NODE_TIMEOUT_MS = 1000

    def __init__(self, workdir: Path) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.fail("needs Debian's redis-cli (scripts/test.sh installs it)")
        self.workdir = workdir
        self.nodes = {port: self._node(port) for port in cluster_ports(6)}
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.nodes:
            add_users(port)
        self.wait_ok()
        self.wait_replicas_synced()

    def _node(self, port: int) -> RedisServer:
        d = _dir(self.workdir, f"node{port}")
        extra = (
            *NODE_OPTIONS,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(d / "nodes.conf"),
            "--cluster-node-timeout",
            str(self.NODE_TIMEOUT_MS),
        )
        return RedisServer(d, aof=False, port=port, extra=extra)

    def wait_ok(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        for port, node in self.nodes.items():
            if node.proc is None or node.proc.poll() is not None:
                continue
            c = redis.Redis(port=port, decode_responses=True)
            while "cluster_state:ok" not in str(c.execute_command("CLUSTER", "INFO")):
                assert time.monotonic() < deadline, "cluster never became ok"
                time.sleep(0.1)
            c.close()

    def wait_replicas_synced(self, timeout_s: float = 30) -> None:
        """Every replica linked to its master and done with its first sync. ``cluster_state:ok`` comes before
        that: a replica promoted mid-sync has no data at all, and the failover tests assume one that has."""
        deadline = time.monotonic() + timeout_s
        for port in self.nodes:
            c = redis.Redis(port=port, decode_responses=True)
            while True:
                info = c.info("replication")
                if info["role"] == "master" or (
                    info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")
                ):
                    break
                assert time.monotonic() < deadline, f"replica {port} never synced: {info}"
                time.sleep(0.1)
            c.close()

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot now."""
        for port, node in self.nodes.items():
            if node.proc is None or node.proc.poll() is not None:
                continue
            slot = int(redis.Redis(port=port).execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in redis.Redis(port=port).execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise AssertionError("no live node")

    def url(self, role: str | None = None, *, avoid: int = 0) -> str:
        auth = "{}:{}@".format(*USERS[role]) if role else ""
        port = next(p for p in self.nodes if p != avoid)
        return f"redis://{auth}127.0.0.1:{port}/0"

    def wait_promoted(self, key: str, old_master: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.master_of(key) != old_master:
                    return
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "no replica took over the slot"
            time.sleep(0.05)

    def rejoin(self, port: int) -> None:
        """Restart a killed node on its own nodes.conf: it joins as a replica of the node that replaced it
        and syncs from it (it has no data of its own: no persistence)."""
        self.nodes[port].start()
        add_users(port)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


def cluster_ports(n: int) -> list[int]:
    """Ports whose cluster-bus twin (port + 10000) is free too: an ephemeral port above 55535 has no valid
    twin, and redis-server refuses to start in cluster mode there."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < n:
        port = rng.randrange(20_000, 30_000)
        if port in ports:
            continue
        try:
            for p in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        ports.append(port)
    return ports


def _dir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def _wait_ping(port: int) -> None:
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            client.close()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"no server on {port}")
