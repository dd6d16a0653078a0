"""Least-privilege Redis ACL rules for the router's two roles.

Both roles reach only the router's keys (``~router:*``) and no pub/sub channels. Neither may run
administrative commands (``-@admin -@dangerous``: no FLUSHALL, CONFIG, DEBUG, KEYS, SHUTDOWN ...); INFO is
allowed back because the client reads ``cluster_enabled`` from it. The API role cannot consume the stream
(no XREADGROUP/XACK/XAUTOCLAIM/XGROUP/XTRIM): it writes events and reads state.
"""

from __future__ import annotations

WORKER_RULES: tuple[str, ...] = (
    "resetkeys",
    "~router:*",
    "resetchannels",
    "-@all",
    "+@read",
    "+@write",
    "+@stream",
    "+@scripting",
    "+@transaction",
    "+@connection",
    "-@admin",
    "-@dangerous",
    "+info",
    "+ping",
)
API_RULES: tuple[str, ...] = (
    *WORKER_RULES,
    "-xreadgroup",
    "-xack",
    "-xautoclaim",
    "-xclaim",
    "-xgroup",
    "-xtrim",
)
ROLES: dict[str, tuple[str, ...]] = {"worker": WORKER_RULES, "api": API_RULES}


def setuser_command(role: str, username: str, password: str) -> list[str]:
    """The ``ACL SETUSER`` arguments that create (or reset) ``username`` for ``role``."""
    return ["ACL", "SETUSER", username, "reset", "on", f">{password}", *ROLES[role]]
