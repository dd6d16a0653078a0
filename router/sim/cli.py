"""`router simulate` and `router bench`, registered on the main typer app by ``register``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from router.settings import Settings, load_settings

console = Console(stderr=True)


def _settings(redis_url: str | None, scorer: str | None) -> Settings:
    return load_settings(redis_url=redis_url, scorer=scorer)


STEAL_WARN_SHARE = 0.03


def _warn_if_stolen(share: float | None) -> None:
    """Say so when the hypervisor took a noticeable share of the CPU during a benchmark."""
    if share is not None and share > STEAL_WARN_SHARE:
        console.print(
            f"[yellow]warning:[/] {share:.0%} of the CPU time was stolen by other guests of this VM during "
            "the run; the figures measure the neighbours as much as the code: run again when it is quiet"
        )


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v)


SUMMARY_KEYS = (
    "contacts",
    "events",
    "lost",
    "dead_letters",
    "over_capacity_max",
    "wall_s",
    "simulated_s",
    "throughput_events_per_s",
    "decision_latency_ms",
    "mot_recall",
    "mot_precision",
    "mot_false_alarms",
    "mot_high_eq_share",
    "wait_s.mot",
    "wait_s.routine",
    "abandonment",
    "self_service_containment",
    "csat_mean",
    "csat_by_class",
    "ewt_accuracy.mae_share_of_mean",
    "ewt_accuracy.inside_band",
    "outcomes_posted",
    "occupancy_by_eq",
)


def _get(rep: dict[str, Any], key: str) -> Any:
    cur: Any = rep
    for part in key.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, dict) and "n" in cur:
        cur = {k: v for k, v in cur.items() if k in ("p50", "p90", "p95", "p99")}
    return cur


# the simulate and bench commands, each short, defined where typer registers them: mccabe adds them up
def register(app: typer.Typer) -> None:  # noqa: C901
    @app.command()
    def simulate(
        contacts: Annotated[
            int, typer.Option(min=1, max=200_000, help="Simulated contacts in the day")
        ] = 2000,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same day)")] = 7,
        scenario: Annotated[
            str, typer.Option(help="day | burst (a storm cancels flights mid-morning)")
        ] = "day",
        compare: Annotated[
            bool,
            typer.Option(
                "--compare",
                help="Also run the fixed ladder (no outcome learning) and skills-only routing: all three",
            ),
        ] = False,
        mot_share: Annotated[
            float,
            typer.Option(
                min=0.0, max=0.8, help="Share of an ordinary day's contacts that are moments of truth"
            ),
        ] = 0.10,
        callback_accept: Annotated[
            float,
            typer.Option(min=0.0, max=1.0, help="Share of customers offered a callback who take it"),
        ] = 0.5,
        history_days: Annotated[
            int,
            typer.Option(
                min=0,
                max=30,
                help="Ordinary days played first on the same floor: the router starts with the outcomes "
                "their customers posted (0: it knows nothing but the EQ tags)",
            ),
        ] = 0,
        workers: Annotated[
            int, typer.Option(min=0, max=64, help="Engine worker processes (0: one in-process worker)")
        ] = 0,
        json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON")] = None,
        plots: Annotated[Path | None, typer.Option("--plots", help="Write PNG plots to this folder")] = None,
        agents: Annotated[
            int | None, typer.Option(min=1, help="Floor size (default: sized to the day)")
        ] = None,
        corpus: Annotated[
            Path | None,
            typer.Option(
                help="Moment-of-truth corpus (default models/corpus; bundled English lines when absent)"
            ),
        ] = None,
        corpus_split: Annotated[
            str,
            typer.Option(help="heldout (dev + test: test unseen by every weight) | all"),
        ] = "heldout",
        redis_url: Annotated[
            str | None,
            typer.Option("--redis-url", help="Redis URL (default: ROUTER_REDIS_URL, else embedded)"),
        ] = None,
        embedded: Annotated[
            str, typer.Option(help="Embedded store when no URL: valkey | fakeredis")
        ] = "valkey",
        scorer: Annotated[
            str | None, typer.Option("--scorer", help="lexicon | transformer | pipeline")
        ] = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ) -> None:
        """Simulate a contact-centre day through the engine in accelerated time (--compare: three modes)."""
        logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR)
        from router.errors import RouterError
        from router.sim.simulate import run_simulate
        from router.store.connect import open_store

        settings = _settings(redis_url, scorer)
        with open_store(settings.redis_url, embedded) as handle:
            where = settings.redis_url or f"embedded {embedded} ({handle.url or 'in-process'})"
            console.print(f"store: {where}; scorer {settings.scorer}; scenario {scenario}; seed {seed}")
            tasks: dict[str, TaskID] = {}
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:

                def on_progress(done: int, total: int, label: str) -> None:
                    if label not in tasks:
                        tasks[label] = progress.add_task(f"{label} contacts", total=total)
                    progress.update(tasks[label], completed=done, total=total)

                try:
                    result = run_simulate(
                        settings,
                        handle,
                        contacts=contacts,
                        seed=seed,
                        compare=compare,
                        mot_share=mot_share,
                        callback_accept_share=callback_accept,
                        scenario=scenario,
                        workers=workers,
                        json_path=json_path,
                        plots_dir=plots,
                        corpus_dir=corpus,
                        corpus_split=corpus_split,
                        agents=agents,
                        on_progress=on_progress,
                        history_days=history_days,
                    )
                except RouterError as exc:
                    console.print(f"[red]{exc}")
                    raise typer.Exit(2) from exc
        reports = (
            {name: result[name] for name in ("emotion_routing", "fixed_ladder", "skills_only")}
            if compare
            else {"emotion_routing": result}
        )
        table = Table(title=f"simulation: {scenario}, {contacts} contacts, seed {seed}")
        table.add_column("measure")
        for name in reports:
            table.add_column(name, justify="right")
        for key in SUMMARY_KEYS:
            table.add_row(key, *(_fmt(_get(rep, key)) for rep in reports.values()))
        Console().print(table)
        if plots is not None:
            console.print(f"plots: {', '.join(result.get('plots', []))}")
        if any(rep["lost"] or rep["over_capacity_max"] for rep in reports.values()):
            raise typer.Exit(1)

    bench_app = typer.Typer(
        invoke_without_command=True,
        no_args_is_help=False,
        help="Benchmarks: with no subcommand the whole engine run; `router bench scorer` the model alone.",
    )
    app.add_typer(bench_app, name="bench")

    @bench_app.command("scorer")
    def bench_scorer(
        json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure as JSON")] = None,
        messages: Annotated[int, typer.Option(min=32, help="Messages scored per measure")] = 1024,
        acoustic_only: Annotated[
            bool, typer.Option("--acoustic-only", help="Only the acoustic step beside the scorer (e)")
        ] = False,
    ) -> None:
        """The scorer alone: naive pipeline one at a time vs our scorer vs the raw forward pass."""
        from router.scoring.bench import run_bench_scorer

        res = run_bench_scorer(
            json_path,
            n_messages=messages,
            backend=load_settings().encoder_backend,
            acoustic_only=acoustic_only,
        )
        table = Table(title="router bench scorer")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in res.items():
            table.add_row(key, _fmt(value))
        Console().print(table)
        _warn_if_stolen(res.get("cpu_steal_share"))

    @bench_app.callback()
    def bench(
        ctx: typer.Context,
        json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure as JSON")] = None,
        redis_url: Annotated[
            str | None,
            typer.Option("--redis-url", help="Benchmark this server (default: start one on loopback)"),
        ] = None,
        contacts: Annotated[
            int, typer.Option(min=10, help="Contacts in the lexicon backlog (6 events each)")
        ] = 1500,
        transformer_contacts: Annotated[
            int, typer.Option(min=10, help="Contacts in the transformer backlog (6 events each)")
        ] = 1000,
        transformer: Annotated[
            bool, typer.Option("--transformer/--no-transformer", help="Measure (c) and (d) (loads the model)")
        ] = True,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ) -> None:
        """Raw Redis limit vs the engine end to end (lexicon, transformer) vs the scorer alone; scaling."""
        if ctx.invoked_subcommand is not None:
            return
        logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR)
        from router.bench.run import run_bench

        settings = load_settings()
        url = redis_url if redis_url is not None else (settings.redis_url or None)
        res = run_bench(
            settings,
            url,
            json_path,
            contacts=contacts,
            transformer_contacts=transformer_contacts,
            transformer=transformer,
            on_progress=lambda msg: console.print(msg),
        )
        table = Table(title="router bench")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("target", justify="right")
        targets = res["targets"]
        for key in (
            "raw_redis_msgs_per_s",
            "engine_lexicon_events_per_s",
            "engine_transformer_events_per_s",
            "scorer_msgs_per_s",
            "ratio_engine_to_raw",
            "ratio_e2e_to_scorer",
            "decision_latency_ms",
            "scaling",
        ):
            target = targets.get(key)
            table.add_row(key, _fmt(res.get(key)), f">= {target}" if target is not None else "")
        Console().print(table)
        _warn_if_stolen(res["machine"].get("cpu_steal_share"))
