"""The embedded demo end to end, on the in-process fake and on a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.sim.demo import run_demo
from router.sim.pool_lines import PoolLines
from router.sim.texts import bundled_pools
from router.store.connect import open_store


@pytest.mark.slow
@pytest.mark.parametrize("embedded", ["fakeredis", "valkey"])
def test_demo_meets_its_targets(embedded: str, domain: str) -> None:
    """The engine's side of the demo, on the lexicon scorer and the bundled lines it reads well: the
    corpus's hard negatives (calm alarming questions, mild annoyance) are the transformer's to tell apart,
    and the lexicon sends about 0.3 of them to a person."""
    settings = Settings(
        domain=domain,
        offer_timeout_s=3.0,
        claim_min_idle_ms=2_000,
        claim_interval_s=0.5,
        sweep_interval_s=0.2,
    )
    with open_store("", embedded) as handle:
        lines = PoolLines(bundled_pools())
        report = run_demo(
            handle, settings, LexiconScorer(), contacts=80, seed=3, max_runtime_s=120, lines=lines
        )
    out = report.as_json()
    assert out["lost"] == 0
    assert out["over_capacity_max"] == 0
    assert out["dead_letters"] == 3  # the three poison entries the demo injects on purpose
    assert out["mot_to_high_eq_share"] >= 0.9
    assert out["routine_to_self_service_share"] >= 0.8
    assert out["moments_of_truth"] > 0
    assert report.extra["final_agent_load"] == 0
    assert report.extra["still_pending"] == 0


@pytest.mark.slow
@pytest.mark.model
def test_demo_cli_writes_exactly_the_documented_keys(tmp_path: Path) -> None:
    """The out-of-the-box demo: the transformer scorer by default."""
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "router", "demo", "--contacts", "40", "--seed", "5", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data) == {
        "events",
        "decisions",
        "dead_letters",
        "lost",
        "moments_of_truth",
        "mot_to_high_eq_share",
        "routine_to_self_service_share",
        "over_capacity_max",
        "decision_latency_ms",
        "mot_recall",
        "mot_precision",
    }
    assert set(data["decision_latency_ms"]) == {"p50", "p99"}
    assert 0.0 <= data["mot_recall"] <= 1.0 and 0.0 <= data["mot_precision"] <= 1.0
    assert data["lost"] == 0
