"""`router bench --json PATH`: how close to the limits the engine runs, all in one run on one server.

(a) ``raw_redis_msgs_per_s``: the raw limit, a pipelined loop in Python on the same server and client
    library: XADD 100 entries in one pipeline, XREADGROUP them, XACK them, repeat.
(b) ``engine_lexicon_events_per_s``: the engine end to end (validate, score, contact state, policy,
    reservation, decision, ack) with the lexicon scorer, one worker process draining a backlog; then
    ``decision_latency_ms`` p50/p99 with events written at 50% of that rate.
(c) ``engine_transformer_events_per_s``: the same backlog shape with the transformer scorer, on the
    texts (d) scores (same lengths), each once (the scorer's cache never answers).
(d) ``scorer_msgs_per_s``: the scorer alone (``router.scoring.bench.run_bench_scorer``), measured just
    before and just after (c) and averaged, so that c / d compares like with like on a drifting machine.

Ratios: ``ratio_engine_to_raw`` = b / a; ``ratio_e2e_to_scorer`` = the customer messages per second that
(c) scored end to end / d, i.e. the model's cost per message over the whole pipeline's (1.0 would mean
Redis and routing cost nothing). ``scaling``: (b)'s backlog drained by 1, 2 and 4 worker processes.
Where the time goes is measured too: Redis commands per event (INFO commandstats) and the worker's and
the server's CPU seconds per event.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.utils import HIREDIS_AVAILABLE

from router.bench.cpu import StealMeter
from router.bench.latency import paced_latency
from router.bench.raw import RAW_BATCH, raw_limit
from router.bench.server import local_server, server_info
from router.bench.throughput import engine_throughput
from router.bench.workload import (
    BENCH_AGENTS,
    MOT_SHARE,
    TURNS_PER_CONTACT,
    WINDOW,
    scorer_bench_texts,
    texts_for_bench,
    workload,
)
from router.settings import Settings

Progress = Callable[[str], None]


def run_bench(
    settings: Settings,
    url: str | None,
    json_path: Path | None,
    *,
    contacts: int = 1_500,
    transformer_contacts: int = 1_000,
    raw_messages: int = 100_000,
    latency_s: float = 10.0,
    scaling: tuple[int, ...] = (1, 2, 4),
    transformer: bool = True,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Every figure of the benchmark in one run, against ``url`` or a redis-server started on loopback."""
    say = on_progress or (lambda _msg: None)
    steal = StealMeter()
    with contextlib.ExitStack() as stack:
        if url:
            server_desc = "given URL"
        else:
            url, server_desc = stack.enter_context(local_server())
        r = redis.Redis.from_url(url)
        info = server_info(r)
        say("(a) raw XADD + XREADGROUP + XACK loop")
        raw = raw_limit(r, raw_messages)
        routine, mot = texts_for_bench()
        backlog = workload(contacts, routine, mot)
        runs: dict[int, dict[str, Any]] = {}
        for n in scaling:
            say(f"(b) engine, lexicon scorer, {n} worker process(es), {len(backlog)} events")
            runs[n] = engine_throughput(url, settings, "lexicon", n, backlog)
        base = runs.get(1) or next(iter(runs.values()))
        rate = 0.5 * float(base["events_per_s"])
        say(f"(b) decision latency at {rate:.0f} events/s (50% of the sustained rate)")
        paced = paced_latency(
            url, settings, "lexicon", rate, workload(contacts, routine, mot, seed=8), latency_s
        )
        scorer_runs: list[dict[str, Any]] = []
        trans: dict[str, Any] = {}
        if transformer:
            from router.scoring.bench import run_bench_scorer

            def scorer_alone() -> dict[str, Any]:
                # neither the naive baseline nor the torch-vs-ONNX comparison is a figure here: keep it short
                return run_bench_scorer(
                    None,
                    n_messages=512,
                    n_naive=32,
                    threads=settings.torch_threads,
                    compare_onnx=False,
                    backend=settings.encoder_backend,
                )

            # (d) just before and just after (c), averaged: c/d compares like with like on a machine whose
            # load drifts
            say("(d) scorer alone")
            scorer_runs.append(scorer_alone())
            say(f"(c) engine, transformer scorer, 1 worker process, {transformer_contacts} contacts")
            trans_backlog = workload(transformer_contacts, *scorer_bench_texts(transformer_contacts))
            trans = engine_throughput(url, settings, "transformer", 1, trans_backlog)
            say("(d) scorer alone, again")
            scorer_runs.append(scorer_alone())
        r.close()
    rates = [float(s["scorer_msgs_per_s"]) for s in scorer_runs]
    scorer_rate = round(sum(rates) / len(rates), 1) if rates else None
    result: dict[str, Any] = {
        "raw_redis_msgs_per_s": round(raw, 1),
        "engine_lexicon_events_per_s": base["events_per_s"],
        "engine_transformer_events_per_s": trans.get("events_per_s"),
        "scorer_msgs_per_s": scorer_rate,
        "ratio_engine_to_raw": round(float(base["events_per_s"]) / raw, 4),
        "ratio_e2e_to_scorer": round(float(trans["messages_per_s"]) / float(scorer_rate), 3)
        if trans and scorer_rate
        else None,
        "scoring_share_of_e2e_time": trans.get("scoring_share_of_time"),
        "decision_latency_ms": {"p50": paced["p50"], "p99": paced["p99"]},
        "scaling": {str(n): run["events_per_s"] for n, run in runs.items()},
        "targets": {"ratio_engine_to_raw": 0.3, "ratio_e2e_to_scorer": 0.85},
        "details": {
            "engine_lexicon": {str(n): run for n, run in runs.items()},
            "latency": paced,
            "engine_transformer": trans,
            "engine_transformer_messages_per_s": trans.get("messages_per_s"),
            "scorer": scorer_runs,
            "scorer_msgs_per_s_before_after": rates,
            "raw_batch": RAW_BATCH,
            "workload": f"contacts of 1 start + {TURNS_PER_CONTACT} customer messages + 1 end, "
            f"{WINDOW} interleaved, {MOT_SHARE:.0%} opening with a moment of truth; {BENCH_AGENTS} agents "
            "answering every offer",
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus_available": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": platform.python_version(),
            "redis_py": redis.__version__,
            "hiredis": bool(HIREDIS_AVAILABLE),
            "server": {**info, "how": server_desc},
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            # CPU time the hypervisor gave to other guests during the whole run (each engine run has its
            # own ``cpu_steal_share`` in details): a few percent or more, and the ratios are suspect
            "cpu_steal_share": steal.share(),
        },
    }
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
