"""`router keys`: create, list and revoke API keys of a routing domain (stored hashed in its store)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from router.settings import Settings, load_settings

if TYPE_CHECKING:  # imported lazily at run time: keeps `router --help` fast
    from router.store.admin import AdminStore

keys_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)
console = Console(stderr=True)

RedisUrl = Annotated[str | None, typer.Option("--redis-url", help="Redis URL (default: ROUTER_REDIS_URL)")]
Domain = Annotated[str | None, typer.Option("--domain", help="Routing domain (default: ROUTER_DOMAIN)")]


def _settings(redis_url: str | None, domain: str | None) -> Settings:
    s = load_settings()
    updates = {k: v for k, v in (("redis_url", redis_url), ("domain", domain)) if v is not None}
    s = s.model_copy(update=updates) if updates else s
    if not s.redis_url:
        console.print("[red]router keys needs ROUTER_REDIS_URL or --redis-url (keys live in the store)")
        raise typer.Exit(2)
    return s


def _admin(s: Settings) -> AdminStore:
    from router.store.admin import AdminStore
    from router.store.connect import StoreHandle
    from router.store.store import RoutingStore

    handle = StoreHandle(url=s.redis_url, supports_blocking=True)
    return AdminStore(RoutingStore(handle.client(), s.domain))


@keys_app.command("create")
def create(
    scopes: Annotated[
        str,
        typer.Option(
            "--scopes",
            help="Comma-separated: events:write, agents:write, routing:read, routing:read:redacted, "
            "deadletter:read, deadletter:write, deadletter:*. An editor of agents needs agents:write and "
            "routing:read (or routing:read:redacted) to read the ETag its edits send as If-Match.",
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key")] = "",
    redis_url: RedisUrl = None,
    domain: Domain = None,
) -> None:
    """Create a key. The key is printed once on stdout; only its SHA-256 is stored."""
    from router.api.security import normalize_scopes

    try:
        wanted = normalize_scopes(scopes.split(","))
    except ValueError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    if not wanted:
        console.print("[red]give at least one scope")
        raise typer.Exit(2)
    settings = _settings(redis_url, domain)
    admin = _admin(settings)
    if not admin.domain_in_use():
        console.print(
            f"[yellow]warning: domain {settings.domain!r} has no events stream and no agents; a key works "
            "only for the domain it was made in: is the name misspelt? (--domain, ROUTER_DOMAIN)"
        )
    rec, token = admin.create_key(name, wanted)
    console.print(f"key {rec.key_id} ({', '.join(rec.scopes)}); store it now, it is not shown again:")
    typer.echo(token)


@keys_app.command("list")
def list_keys(redis_url: RedisUrl = None, domain: Domain = None) -> None:
    """List keys (ids, names, scopes; never the keys)."""
    table = Table(title="API keys")
    for col in ("id", "name", "scopes", "created"):
        table.add_column(col)
    for rec in _admin(_settings(redis_url, domain)).list_keys():
        created = dt.datetime.fromtimestamp(rec.created_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        table.add_row(rec.key_id, rec.name, ", ".join(rec.scopes), created)
    Console().print(table)


@keys_app.command("revoke")
def revoke(key_id: str, redis_url: RedisUrl = None, domain: Domain = None) -> None:
    """Revoke a key by its id; it stops working on the next request."""
    if not _admin(_settings(redis_url, domain)).revoke_key(key_id):
        console.print(f"[red]no key {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
