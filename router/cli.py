"""The `router` command line (typer)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from router.settings import Settings, load_settings

if TYPE_CHECKING:  # imported lazily at run time: keeps `router --help` fast
    import redis

app = typer.Typer(
    help="Moments-of-truth router: emotion-aware contact routing on Redis Streams.", no_args_is_help=True
)
console = Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _settings(redis_url: str | None, domain: str | None, scorer: str | None = None) -> Settings:
    return load_settings(redis_url=redis_url, domain=domain, scorer=scorer)


RedisUrl = Annotated[
    str | None, typer.Option("--redis-url", help="Redis URL (default: ROUTER_REDIS_URL, else embedded)")
]
Domain = Annotated[str | None, typer.Option("--domain", help="Routing domain (default: ROUTER_DOMAIN)")]
ScorerOpt = Annotated[str | None, typer.Option("--scorer", help="lexicon | transformer | pipeline")]


@app.command()
def schema() -> None:
    """Print the JSON Schema of the inbound events and the decision record."""
    from router.events import event_schema

    sys.stdout.write(json.dumps(event_schema(), indent=2) + "\n")


@app.command()
def worker(
    redis_url: RedisUrl = None,
    domain: Domain = None,
    scorer: ScorerOpt = None,
    consumer: Annotated[str | None, typer.Option(help="Consumer name (default: host-pid)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Consume the events stream of a domain until SIGTERM (finishes the batch, acks, exits)."""
    _setup_logging(verbose)
    from router.scoring.factory import build_scorer
    from router.store.connect import open_store
    from router.store.store import RoutingStore
    from router.worker.consumer import Worker

    settings = _settings(redis_url, domain, scorer)
    if not settings.redis_url:
        console.print(
            "[red]router worker needs ROUTER_REDIS_URL or --redis-url (use `router demo` for embedded)"
        )
        raise typer.Exit(2)
    with open_store(settings.redis_url) as handle:
        store = RoutingStore(handle.client(), settings.domain, seen_ttl_s=settings.seen_ttl_s)
        w = Worker(store, build_scorer(settings), settings, consumer=consumer)
        w.install_signal_handlers()
        w.run()
        console.print(
            f"worker {w.consumer} stopped: {w.stats.processed} processed, "
            f"{w.stats.dead_lettered} dead-lettered"
        )


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(min=1, max=100_000, help="Simulated contacts")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same floor)")] = 7,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the summary as JSON")] = None,
    redis_url: RedisUrl = None,
    embedded: Annotated[str, typer.Option(help="Embedded store when no URL: valkey | fakeredis")] = "valkey",
    scorer: ScorerOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    api: Annotated[
        bool, typer.Option("--api", help="Also serve the API and dashboard; run until stopped (Ctrl-C)")
    ] = False,
    host: Annotated[str, typer.Option(help="API address (with --api)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65_535, help="API port (with --api; 0 picks one)")] = 8000,
) -> None:
    """Run a simulated contact centre through the engine on an embedded store (no Redis needed)."""
    _setup_logging(verbose)
    from router.scoring.factory import build_scorer
    from router.sim.demo import run_demo
    from router.store.connect import open_store

    settings = _settings(redis_url, None, scorer)
    demo_settings = Settings.model_validate(
        {
            **settings.model_dump(),
            "offer_timeout_s": 3.0,
            "claim_min_idle_ms": 2_000,
            "claim_interval_s": 0.5,
            "sweep_interval_s": 0.2,
            "domain": settings.domain if settings.domain != "default" else f"demo-{seed}",
        }
    )
    with open_store(settings.redis_url, embedded) as handle:
        where = settings.redis_url or f"embedded {embedded} ({handle.url or 'in-process'})"
        console.print(f"store: {where}; domain {demo_settings.domain}; scorer {demo_settings.scorer}")
        _clear_demo_domain(handle.client(), demo_settings.domain)
        sc = build_scorer(demo_settings)
        if api:
            from router.sim.live_demo import run_live_demo

            def ready(url: str, key: str) -> None:
                # stdout, flushed: scripts and tests read the URL and the key from here
                typer.echo(f"dashboard: {url}/\nadmin key: {key}\nAPI docs: {url}/docs", err=False)
                sys.stdout.flush()

            run_live_demo(
                demo_settings, handle, sc, host=host, port=port, contacts=contacts, seed=seed, on_ready=ready
            )
            return
        with Progress(
            TextColumn("contacts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("contacts", total=contacts)
            report = run_demo(
                handle,
                demo_settings,
                sc,
                contacts=contacts,
                seed=seed,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    table = Table(title="demo summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in {**report.as_json(), **report.extra}.items():
        table.add_row(
            k, json.dumps(v) if isinstance(v, dict) else f"{v:.3f}" if isinstance(v, float) else str(v)
        )
    Console().print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    if report.lost or report.over_capacity_max:
        raise typer.Exit(1)


def _clear_demo_domain(client: redis.Redis, domain: str) -> None:
    """A reused domain on a real Redis would mix runs: start clean, when the user may list keys (the
    router's own ACL roles may not)."""
    import redis

    try:
        for key in client.scan_iter(match=f"router:{{{domain}}}:*", count=1000):
            client.delete(key)
    except redis.exceptions.NoPermissionError:
        console.print(f"this Redis user may not list keys: domain {domain} is not cleared first")


@app.command()
def reconcile(
    redis_url: RedisUrl = None,
    domain: Domain = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing")] = False,
    scan: Annotated[
        bool,
        typer.Option(
            "--scan",
            help="Find contacts by listing keys (SCAN: an admin user, workers stopped) and rebuild the "
            "open-contacts index too",
        ),
    ] = False,
) -> None:
    """Rebuild agent load, pending-offer indexes and queue membership from open work (after a restore)."""
    from router.domain.policy import PolicyConfig
    from router.store.connect import open_store
    from router.store.reconcile import reconcile as run_reconcile
    from router.store.store import RoutingStore

    settings = _settings(redis_url, domain)
    if not settings.redis_url:
        console.print("[red]router reconcile needs ROUTER_REDIS_URL or --redis-url")
        raise typer.Exit(2)
    with open_store(settings.redis_url) as handle:
        store = RoutingStore(handle.client(), settings.domain)
        report = run_reconcile(store, dry_run=dry_run, cfg=PolicyConfig.from_settings(settings), scan=scan)
    for fix in report.fixes:
        console.print(("would fix: " if dry_run else "fixed: ") + fix)
    console.print(f"{report.contacts_scanned} contacts scanned; {len(report.fixes)} inconsistencies")


@app.command("api")
def api_cmd(
    redis_url: RedisUrl = None,
    domain: Domain = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Port")] = 8000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the supervisor API and dashboard over the store the workers use (ROUTER_REDIS_URL)."""
    _setup_logging(verbose)
    from router.api.serve import serve_api
    from router.store.connect import open_store

    settings = _settings(redis_url, domain)
    if not settings.redis_url:
        console.print(
            "[red]router api needs ROUTER_REDIS_URL or --redis-url (use `router demo --api` for embedded)"
        )
        raise typer.Exit(2)
    if not settings.admin_key.get_secret_value():
        console.print("no ROUTER_ADMIN_KEY: only keys from `router keys create` are accepted")
    with open_store(settings.redis_url) as handle:
        console.print(f"API on http://{host}:{port}/ (domain {settings.domain})")
        serve_api(settings, handle, host, port)


def _add_keys_app() -> None:
    from router.keys_cli import keys_app

    app.add_typer(keys_app, name="keys")


_add_keys_app()


def _add_sim_commands() -> None:
    from router.sim.cli import register

    register(app)  # `router simulate` and `router bench`


_add_sim_commands()


@app.command()
def score(
    scorer: ScorerOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Lines per model call")] = 64,
) -> None:
    """Score JSON lines {"text", "language"?} from stdin; one JSON line per input on stdout."""
    from router.scoring.score_cli import run_score

    settings = _settings(None, None, scorer)
    run_score(sys.stdin, sys.stdout, settings, batch_size=batch_size)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="The public data folder")] = Path("../shared/data"),
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every measure as JSON")] = None,
) -> None:
    """Measure the emotion model on held-out public data (AUROC, Pearson, topic F1, per language)."""
    from router.scoring.evaluate import run_evaluate

    if not data.is_dir():
        console.print(f"[red]no data folder at {data}")
        raise typer.Exit(2)
    run_evaluate(data, json_path, backend=load_settings().encoder_backend)


@app.command()
def acl(
    role: Annotated[str, typer.Argument(help="worker | api")],
    username: Annotated[str, typer.Option(help="Redis user name")] = "",
    password: Annotated[str, typer.Option(help="Password (default: a generated one)")] = "",
    domain: Annotated[
        str, typer.Option(help="The routing domain the user may reach; '*' (the default) is every domain")
    ] = "*",
    waitaof: Annotated[
        bool, typer.Option("--waitaof", help="Also grant WAITAOF (replication_wait=waitaof; Redis >= 7.2)")
    ] = False,
) -> None:
    """Print the least-privilege `ACL SETUSER` line for a role (run it with redis-cli as an admin, on every
    node: ACL rules are not replicated)."""
    import secrets
    import shlex

    from router.store.acl import ROLES, setuser_command

    if role not in ROLES:
        console.print(f"[red]unknown role {role!r}; choose one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    try:
        cmd = setuser_command(
            role,
            username or f"router-{role}",
            password or secrets.token_urlsafe(24),
            domain,
            waitaof=waitaof,
        )
    except ValueError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    sys.stdout.write(" ".join(shlex.quote(x) for x in cmd) + "\n")


def main() -> None:  # pragma: no cover
    app()
