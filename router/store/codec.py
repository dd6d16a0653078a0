"""Hash <-> dataclass conversion for contacts and agents. Timestamps are ms in Redis, s in the domain."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from router.domain.model import AgentView, ContactStatus, ContactView, OutcomeTally, Trajectory
from router.events import CHANNELS


def as_str(v: Any, errors: str = "strict") -> str:
    """A Redis reply as text: bytes (from a client without decode_responses) decoded as UTF-8, anything
    else ``str(v)``. ``errors`` as for ``bytes.decode``, for bytes that may not be UTF-8 (what a platform
    wrote)."""
    return v.decode("utf-8", errors) if isinstance(v, bytes) else str(v)


def _s(h: Mapping[str, str], key: str, default: str = "") -> str:
    return h.get(key, default)


def _f(h: Mapping[str, str], key: str, default: float = 0.0) -> float:
    raw = h.get(key)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact as stored: the domain view plus what only the store needs."""

    view: ContactView
    version: int
    transcript: tuple[dict[str, Any], ...] = ()
    mot_reasons: tuple[dict[str, str], ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict)


def traj_to_json(t: Trajectory) -> str:
    return json.dumps(
        {
            "i": list(t.intensities),
            "peak": t.peak,
            "pt": t.peak_turn,
            "n": t.turns,
            "m": list(t.mot_probs),
            "mp": t.mot_peak,
            "mpt": t.mot_peak_turn,
            "w": t.last_words,
        }
    )


def traj_from_json(raw: str) -> Trajectory:
    if not raw:
        return Trajectory()
    d = json.loads(raw)
    # "m"/"mp"/"mpt" (moment-of-truth probabilities) and "w" (the latest turn's words) are absent from
    # contacts stored by older versions
    return Trajectory(
        tuple(float(x) for x in d["i"]),
        float(d["peak"]),
        int(d["pt"]),
        int(d["n"]),
        tuple(float(x) for x in d.get("m", ())),
        float(d.get("mp", 0.0)),
        int(d.get("mpt", 0)),
        int(d.get("w", 0)),
    )


def contact_from_hash(h: Mapping[str, str], declined_ms: Mapping[str, int]) -> ContactRecord | None:
    """The contact, or None for an empty hash. ``declined_ms``: agent id -> when (ms) it last declined or
    missed an offer of the contact (the declines sorted set)."""
    if not h:
        return None
    enq = _f(h, "enqueued_ms", -1.0)
    view = ContactView(
        contact_id=_s(h, "contact_id"),
        channel=_s(h, "channel", "chat"),
        language=_s(h, "language", "en"),
        tier=_s(h, "tier", "standard"),
        customer_id=_s(h, "customer_id"),
        status=cast(ContactStatus, _s(h, "status", "new")),
        queue=_s(h, "queue") or None,
        agent_id=_s(h, "agent_id") or None,
        offer_id=_s(h, "offer_id") or None,
        moment_of_truth=_s(h, "mot") == "1",
        trajectory=traj_from_json(_s(h, "traj")),
        topic=_s(h, "topic") or None,
        topic_prob=_f(h, "topic_prob"),
        wants_human=_s(h, "wants_human") == "1",
        human_offered=_s(h, "human_offered") == "1",
        repeat_contact=_s(h, "repeat") == "1",
        created_ts=_f(h, "created_ms") / 1000,
        enqueued_ts=enq / 1000 if enq >= 0 else None,
        priority=_f(h, "priority"),
        last_agent_id=_s(h, "last_agent_id") or None,
        declined_ms=declined_ms,
    )
    return ContactRecord(
        view=view,
        version=int(_f(h, "version")),
        transcript=tuple(json.loads(h["transcript"])) if h.get("transcript") else (),
        mot_reasons=tuple(json.loads(h["mot_reasons"])) if h.get("mot_reasons") else (),
        raw=dict(h),
    )


def contact_fields(c: ContactView) -> dict[str, str]:
    """Fields the worker owns (status/offer/agent are also written by the reservation scripts)."""
    out = {
        "contact_id": c.contact_id,
        "channel": c.channel,
        "language": c.language,
        "tier": c.tier,
        "customer_id": c.customer_id,
        "status": c.status,
        "queue": c.queue or "",
        "mot": "1" if c.moment_of_truth else "0",
        "traj": traj_to_json(c.trajectory),
        "topic": c.topic or "",
        "topic_prob": f"{c.topic_prob:.4f}",
        "wants_human": "1" if c.wants_human else "0",
        "human_offered": "1" if c.human_offered else "0",
        "repeat": "1" if c.repeat_contact else "0",
        "created_ms": str(int(c.created_ts * 1000)),
        "priority": f"{c.priority:.4f}",
        "last_agent_id": c.last_agent_id or "",
    }
    if c.enqueued_ts is not None:
        out["enqueued_ms"] = str(int(c.enqueued_ts * 1000))
    return out


@dataclass(frozen=True, slots=True)
class AgentRecord:
    view: AgentView
    version: int
    raw: Mapping[str, str] = field(default_factory=dict)


def outcome_tallies(h: Mapping[str, str]) -> dict[str, OutcomeTally]:
    """An agent's outcome hash (``<class>:<n|sum|sumsq|resolved>``, keys.outcome_agent) as tallies per
    class; a field that is not a number counts as 0."""
    parts: dict[str, dict[str, float]] = {}
    for name, raw in h.items():
        cls, _, stat = name.rpartition(":")
        if cls and stat in ("n", "sum", "resolved"):
            try:
                parts.setdefault(cls, {})[stat] = float(raw)
            except ValueError:
                continue
    return {
        cls: OutcomeTally(int(v.get("n", 0)), v.get("sum", 0.0), int(v.get("resolved", 0)))
        for cls, v in parts.items()
        if v.get("n", 0) > 0
    }


def agent_from_hash(
    h: Mapping[str, str], mot_recent: int = 0, outcomes: Mapping[str, OutcomeTally] | None = None
) -> AgentRecord | None:
    if not h or "agent_id" not in h:
        return None
    caps = {ch: int(_f(h, f"cap:{ch}")) for ch in CHANNELS if f"cap:{ch}" in h}
    loads = {ch: int(_f(h, f"load:{ch}")) for ch in CHANNELS if f"load:{ch}" in h}
    status = _s(h, "status", "offline")
    view = AgentView(
        agent_id=h["agent_id"],
        eq=int(_f(h, "eq", 1)),
        languages=frozenset(x for x in _s(h, "languages").split(",") if x),
        capacity=caps,
        load=loads,
        status=status if status in ("available", "away", "offline") else "offline",  # type: ignore[arg-type]
        last_assigned_ts=_f(h, "last_assigned_ms") / 1000,
        status_ts=_f(h, "status_ms") / 1000,
        name=_s(h, "name"),
        tags=frozenset(x for x in _s(h, "tags").split(",") if x),
        mot_recent=mot_recent,
        outcomes=outcomes or {},
        busy=_busy_slots(h),
    )
    return AgentRecord(view=view, version=int(_f(h, "version")), raw=dict(h))


def _busy_slots(h: Mapping[str, str]) -> dict[str, tuple[tuple[float, bool], ...]]:
    """The agent hash's 'busy:<contact>' fields (channel|since ms|mot, written by the offer, accept and
    release scripts) as channel -> (since, epoch s; mot), oldest first; malformed ones are skipped."""
    out: dict[str, list[tuple[float, bool]]] = {}
    for key, value in h.items():
        if not key.startswith("busy:"):
            continue
        ch, _, rest = value.partition("|")
        since, _, mot = rest.partition("|")
        try:
            since_s = float(since) / 1000
        except ValueError:
            continue
        if ch and since_s > 0:
            out.setdefault(ch, []).append((since_s, mot == "1"))
    return {ch: tuple(sorted(slots)) for ch, slots in out.items()}


def agent_profile_fields(
    *, name: str, eq: int, languages: list[str], capacity: Mapping[str, int], tags: list[str]
) -> dict[str, str]:
    out = {"name": name, "eq": str(eq), "languages": ",".join(languages), "tags": ",".join(tags)}
    for ch in CHANNELS:
        out[f"cap:{ch}"] = str(int(capacity.get(ch, 0)))
    return out
