"""`router bench` on a tiny workload: every figure and ratio is there, the workload is what it says."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from router.bench import cpu
from router.bench.run import run_bench
from router.bench.workload import BENCH_AGENTS, TURNS_PER_CONTACT, WINDOW, workload
from router.events import parse_event
from router.settings import Settings

KEYS = {
    "raw_redis_msgs_per_s",
    "engine_lexicon_events_per_s",
    "engine_transformer_events_per_s",
    "scorer_msgs_per_s",
    "ratio_engine_to_raw",
    "ratio_e2e_to_scorer",
    "decision_latency_ms",
    "scaling",
}


def test_workload_is_valid_interleaved_and_uses_every_text_once() -> None:
    routine = [f"routine line {i}" for i in range(4 * 700)]
    mot = [f"moment of truth {i}" for i in range(2 * 700)]
    evs = workload(700, routine, mot)
    assert len(evs) == 700 * (TURNS_PER_CONTACT + 2)
    for e in evs:
        parse_event(json.dumps(e))  # every event passes the wire contract
    assert len({e["event_id"] for e in evs}) == len(evs)
    msgs = [e["text"] for e in evs if e["type"] == "contact.message"]
    assert len(set(msgs)) == len(msgs)  # no text twice: the scorer's cache never answers
    opening = [e["text"] for e in evs if e["type"] == "contact.message" and e["seq"] == 0]
    assert 0.18 < sum(t.startswith("moment") for t in opening) / 700 < 0.32
    kinds = Counter(e["type"] for e in evs[:WINDOW])
    assert kinds == {"contact.started": WINDOW}  # a window of contacts starts before any of them speaks
    pos = {(e["contact_id"], e["type"], e.get("seq")): i for i, e in enumerate(evs)}
    for c in (f"c{i:06d}" for i in range(700)):
        steps = [pos[(c, "contact.started", None)], *(pos[(c, "contact.message", s)] for s in range(4))]
        steps.append(pos[(c, "contact.ended", None)])
        assert all(b - a >= WINDOW for a, b in itertools.pairwise(steps))


@pytest.mark.slow
def test_bench_reports_every_figure(tmp_path: Path) -> None:
    res = run_bench(
        Settings(),
        None,
        tmp_path / "bench.json",
        contacts=WINDOW + 20,
        raw_messages=2_000,
        latency_s=1.0,
        scaling=(1, 2),
        transformer=False,
    )
    assert json.loads((tmp_path / "bench.json").read_text()) == res
    assert set(res) >= KEYS
    assert res["raw_redis_msgs_per_s"] > 0 and res["engine_lexicon_events_per_s"] > 0
    assert res["ratio_engine_to_raw"] == pytest.approx(
        res["engine_lexicon_events_per_s"] / res["raw_redis_msgs_per_s"], abs=1e-4
    )
    assert set(res["decision_latency_ms"]) == {"p50", "p99"}
    assert res["decision_latency_ms"]["p50"] is not None
    assert set(res["scaling"]) == {"1", "2"}
    assert res["engine_transformer_events_per_s"] is None and res["ratio_e2e_to_scorer"] is None
    one = res["details"]["engine_lexicon"]["1"]
    # a backlog drains in full batches: one read, one batch read, one pipeline of commits, one ack per
    # batch, plus the offers (3.2 per event before commits were batched)
    assert one["retried"] == 0 and 0 < one["round_trips_per_event"] < 2
    # whole-floor reads: at most about one per batch and sweep, never one per event
    assert 0 < one["agent_snapshots_per_event"] < 0.5
    for run in res["details"]["engine_lexicon"].values():
        backlog = (WINDOW + 20) * (TURNS_PER_CONTACT + 2) + BENCH_AGENTS
        assert run["dead_letters"] == 0 and run["offers_accepted"] > 0
        assert run["events"] == backlog + run["offers_accepted"]  # the responder's answers count too
        assert run["cpu_steal_share"] is None or 0.0 <= run["cpu_steal_share"] <= 1.0
    assert "cpu_steal_share" in res["machine"]


def _proc_stat(steal: int, total_other: int) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice, then per-CPU lines
    return f"cpu  {total_other} 0 0 0 0 0 0 {steal} 7 7\ncpu0 1 2 3 4 5 6 7 8 9 10\n"


def test_steal_meter_reads_the_stolen_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    monkeypatch.setattr(cpu, "PROC_STAT", stat)
    stat.write_text(_proc_stat(steal=100, total_other=900))
    meter = cpu.StealMeter()
    stat.write_text(_proc_stat(steal=130, total_other=1170))  # 300 more jiffies, 30 of them stolen
    assert meter.share() == pytest.approx(0.1)
    assert meter.share() == pytest.approx(0.1)  # from the same start
    stat.write_text(_proc_stat(steal=100, total_other=900))  # no time passed: no share to give
    assert meter.share() is None


def test_steal_meter_without_proc_stat_says_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "PROC_STAT", tmp_path / "absent")
    assert cpu.StealMeter().share() is None
