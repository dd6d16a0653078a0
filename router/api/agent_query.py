"""Filter, sort and page the floor's agents for ``GET /v1/agents`` (a floor of hundreds: the dashboard shows
one page). Pure functions over the agents the store read, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from router.domain.model import AgentView

SortKey = Literal["agent_id", "name", "status", "eq", "languages", "load", "mot_recent", "last_assigned"]
SORT_KEYS: tuple[str, ...] = get_args(SortKey)
SORT_PATTERN = "^-?(" + "|".join(SORT_KEYS) + ")$"
STATUS_ORDER = {"available": 0, "away": 1, "offline": 2}


@dataclass(frozen=True, slots=True)
class AgentQuery:
    """``q``: case-insensitive part of the id or the name. ``language``: a language the agent speaks, its
    primary subtag matching too (``en`` finds ``en-GB``). ``sort``: a SortKey, descending when ``-``
    leads; ties go by agent id."""

    q: str | None = None
    status: str | None = None
    eq: int | None = None
    min_eq: int | None = None
    language: str | None = None
    sort: str = "agent_id"
    offset: int = 0
    limit: int = 50


def matches(a: AgentView, query: AgentQuery) -> bool:
    if query.status is not None and a.status != query.status:
        return False
    if query.eq is not None and a.eq != query.eq:
        return False
    if query.min_eq is not None and a.eq < query.min_eq:
        return False
    if query.language is not None:
        want = query.language.lower()
        if not any(lang.lower() == want or lang.lower().split("-")[0] == want for lang in a.languages):
            return False
    if query.q:
        needle = query.q.casefold()
        return needle in a.agent_id.casefold() or needle in a.name.casefold()
    return True


def sort_value(a: AgentView, key: str) -> tuple[float | str, ...]:
    """The value an agent sorts by under ``key`` (a SortKey)."""
    if key == "name":
        return (a.name.casefold(),)
    if key == "status":
        return (STATUS_ORDER.get(a.status, 3),)
    if key == "eq":
        return (a.eq,)
    if key == "languages":
        return (",".join(sorted(a.languages)),)
    if key == "load":
        return (sum(a.load.values()),)
    if key == "mot_recent":
        return (a.mot_recent,)
    if key == "last_assigned":
        return (a.last_assigned_ts,)
    return (a.agent_id,)


def select(agents: Sequence[AgentView], query: AgentQuery) -> tuple[list[AgentView], int]:
    """The page of agents ``query`` asks for, and how many match in all."""
    kept = [a for a in agents if matches(a, query)]
    key = query.sort.removeprefix("-")
    descending = query.sort.startswith("-")
    kept.sort(key=lambda a: a.agent_id)  # the tie-break, kept by the stable sort below
    kept.sort(key=lambda a: sort_value(a, key), reverse=descending)
    return kept[query.offset : query.offset + query.limit], len(kept)
