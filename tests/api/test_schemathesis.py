"""schemathesis against the OpenAPI schema, over HTTP, on the embedded (fakeredis) store.

All checks, every phase (examples, coverage, fuzzing, stateful), ``max-examples`` 200 per operation
(ROUTER_SCHEMATHESIS_EXAMPLES to change it). Two statuses are added to schemathesis' defaults, both
required by HTTP: 412 is a right answer to a well-formed PATCH whose If-Match names another version
(positive_data_acceptance), and 428 is the answer to a PATCH without If-Match (missing_required_header,
RFC 6585). The run's JSON report and console output are saved under artifacts/schemathesis/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
from pydantic import SecretStr

from router.api.serve import ApiServer
from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.store.admin import AdminStore
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import MOT_TEXT, available, drain, message, seed_agent, started

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

KEY = "schemathesis-admin-key"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "schemathesis"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    """The API over a fresh in-process store holding the ids the schema's examples use (a42, c42 ...)."""
    settings = Settings(
        domain="schemathesis",
        admin_key=SecretStr(KEY),
        api_sse_max_s=0.02,
        api_sse_poll_s=0.01,
        api_rate_per_s=1e6,
        api_rate_burst=10**7,
        api_auth_fail_per_s=1e6,
        api_max_batch=20,
    )
    handle = StoreHandle(url=None, supports_blocking=False, _fake_server=fakeredis.FakeServer())
    store = RoutingStore(handle.client(), settings.domain)
    worker = Worker(store, LexiconScorer(), settings, consumer="st", supports_blocking=False)
    worker.ensure_group()  # /readyz is ready: no worker consumes during the run (fast, deterministic)
    for aid, eq in (("a01", 5), ("a42", 4)):
        seed_agent(store, aid, eq=eq)
    for ev in (available("a01"), available("a42"), started("c42"), message("c42", MOT_TEXT)):
        store.client.xadd(store.keys.events, {"event": json.dumps(ev)})
    store.client.xadd(store.keys.events, {"event": b"{not json"})
    drain(worker)
    AdminStore(store).record_outcome(
        contact_id="c42", agent_id="a01", mot=True, csat=5, resolved=True, who="t"
    )
    server = ApiServer(settings, handle, port=_free_port()).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_schemathesis_all_checks_no_failures(served: str, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if exe is None:
        pytest.fail("schemathesis is not installed (pip install schemathesis)")
    examples = int(os.environ.get("ROUTER_SCHEMATHESIS_EXAMPLES", "200"))
    seed = int(os.environ.get("ROUTER_SCHEMATHESIS_SEED", "3"))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            headers = {{ Authorization = "Bearer {KEY}" }}
            seed = {seed}
            [generation]
            max-examples = {examples}
            database = "none"
            [checks.positive_data_acceptance]
            expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
            [checks.missing_required_header]
            expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]
            """
        )
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = ARTIFACTS / "report.json"
    cmd = [
        exe,
        "--config-file",
        str(config),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "all",
        "--workers",
        "2",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=840, cwd=tmp_path, check=False)
    (ARTIFACTS / "output.txt").write_text(proc.stdout + proc.stderr)
    r = json.loads(report.read_text())
    summary = {
        "operations": r["operations"],
        "test_cases": r["test_cases"],
        "phases": {k: v["status"] for k, v in r["phases"].items()},
        "failures": len(r["failures"]),
        "errors": len(r["errors"]),
        "seconds": round(r["running_time"], 1),
    }
    print(json.dumps(summary))
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert r["failures"] == [] and r["errors"] == [], tail
    assert r["operations"]["tested"] == r["operations"]["total"] == r["operations"]["selected"]
    assert r["test_cases"]["with_failures"] == 0 and r["test_cases"]["errored"] == 0
    assert all(v["status"] == "success" for v in r["phases"].values()), summary
