"""The logs behind the dashboard's series and KPIs, read back as domain records: the waits log (accepted
offers), the ended-contacts log, the floor samples and the outcomes stream.

The three lists are newest first and capped by the scripts that write them (router/store/store.py); a read
goes back in chunks until it passes the start of the window, so its cost follows the window, not the log.
Every read says whether it reached back to the window's start (``complete``): a log at its cap may not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast, get_args

from router.domain.floor_series import AcceptedWait, FloorSample
from router.domain.kpis import EndedContact, RatedContact
from router.domain.model import ContactStatus
from router.store.codec import as_str
from router.store.store import ENDED_LEN, FLOOR_LEN, WAITS_LEN, RoutingStore

CHUNK = 500
OUTCOMES_READ_MAX = 20_000  # outcomes read per window: beyond that the window is reported incomplete


class _Timed(Protocol):
    @property
    def t_s(self) -> float: ...


T = TypeVar("T", bound=_Timed)


@dataclass(frozen=True, slots=True)
class LogRead(Generic[T]):
    """Records of a log at or after a time, newest first, and whether the log reaches back that far."""

    items: list[T]
    complete: bool
    oldest_s: float | None  # the oldest record read (None: none)


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _obj(raw: Any) -> dict[str, Any] | None:
    try:
        d = json.loads(as_str(raw, "replace"))
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


def accepted_wait(raw: Any) -> AcceptedWait | None:
    """A waits-log line (RESOLVE_OFFER) as a record; None when it is not one."""
    d = _obj(raw)
    t_ms = _num(d, "t_ms") if d else None
    if d is None or t_ms is None:
        return None
    return AcceptedWait(
        t_s=t_ms / 1000,
        mot=d.get("mot") is True,
        waited_s=_num(d, "waited_s"),
        announced_s=_num(d, "announced_s"),
        low_s=_num(d, "low_s"),
        high_s=_num(d, "high_s"),
        actual_s=_num(d, "actual_s"),
    )


def ended_contact(raw: Any) -> EndedContact | None:
    """An ended-contacts-log line (RELEASE) as a record; None when it is not one."""
    d = _obj(raw)
    t_ms = _num(d, "t_ms") if d else None
    if d is None or t_ms is None:
        return None
    prev = _num(d, "prev_ms")
    was = d.get("was")
    if was not in get_args(ContactStatus):
        return None
    return EndedContact(
        t_s=t_ms / 1000,
        started_s=(_num(d, "started_ms") or t_ms) / 1000,
        mot=d.get("mot") is True,
        was=cast(ContactStatus, was),
        handoffs=int(_num(d, "handoffs") or 0),
        customer_id=str(d.get("customer", "")),
        prev_contact_s=prev / 1000 if prev else None,
    )


def floor_sample(raw: Any) -> FloorSample | None:
    """A floor-sample line (SAMPLE_FLOOR) as a record; None when it is not one."""
    d = _obj(raw)
    t_ms = _num(d, "t_ms") if d else None
    if d is None or t_ms is None:
        return None
    depth = d.get("depth")
    depths = (
        {str(q): int(n) for q, n in depth.items() if isinstance(n, int | float)}
        if isinstance(depth, dict)
        else {}
    )
    return FloorSample(t_s=t_ms / 1000, depth=depths, mot_total=int(_num(d, "mot") or 0))


def rated_contact(fields: dict[Any, Any]) -> RatedContact | None:
    """An outcomes-stream entry (AdminStore.record_outcome) as a record; None when it is not one."""
    d = _obj(fields.get(b"outcome", fields.get("outcome", b"")))
    if d is None:
        return None
    ts, csat = _num(d, "ts"), _num(d, "csat")
    if ts is None or csat is None:
        return None
    return RatedContact(
        t_s=ts, mot=d.get("moment_of_truth") is True, csat=int(csat), resolved=bool(d.get("resolved"))
    )


class FloorLogs:
    """Reads of one domain's dashboard logs (any role that may read the domain)."""

    def __init__(self, store: RoutingStore) -> None:
        self.r = store.client
        self.keys = store.keys

    def waits(self, since_s: float) -> LogRead[AcceptedWait]:
        return self._list(self.keys.waits, since_s, WAITS_LEN, accepted_wait)

    def ended(self, since_s: float) -> LogRead[EndedContact]:
        return self._list(self.keys.ended, since_s, ENDED_LEN, ended_contact)

    def samples(self, since_s: float) -> LogRead[FloorSample]:
        """Floor samples from ``since_s`` on, plus the one before it (the base of the first interval's count
        of moments of truth)."""
        return self._list(self.keys.floor, since_s, FLOOR_LEN, floor_sample, keep_one_older=True)

    def rated(self, since_s: float) -> LogRead[RatedContact]:
        """Outcomes posted from ``since_s`` on (at most OUTCOMES_READ_MAX, the newest)."""
        res: Any = self.r.xrevrange(
            self.keys.outcomes, max="+", min=str(int(since_s * 1000)), count=OUTCOMES_READ_MAX
        )
        items = [x for _, fields in res if (x := rated_contact(fields)) is not None]
        return LogRead(items, len(res) < OUTCOMES_READ_MAX, items[-1].t_s if items else None)

    def _list(
        self,
        key: str,
        since_s: float,
        cap: int,
        parse: Callable[[Any], T | None],
        *,
        keep_one_older: bool = False,
    ) -> LogRead[T]:
        items: list[T] = []
        times: list[float] = []
        start = 0
        reached = False
        while start < cap and not reached:
            raw: Any = self.r.lrange(key, start, min(start + CHUNK, cap) - 1)
            for line in raw:
                rec = parse(line)
                if rec is None:
                    continue
                t_s = rec.t_s
                if t_s < since_s:
                    reached = True
                    if keep_one_older:
                        items.append(rec)
                        times.append(t_s)
                    break
                items.append(rec)
                times.append(t_s)
            if len(raw) < CHUNK:
                # the end of the log: it holds everything there is unless it is at its cap
                reached = reached or start + len(raw) < cap
                break
            start += CHUNK
        return LogRead(items, reached, min(times) if times else None)
