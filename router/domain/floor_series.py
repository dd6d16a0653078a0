"""The floor over time, per interval, for the dashboard's charts: waits of answered contacts by class, queue
depths, moments of truth, and announced against actual waits. Pure functions, no I/O.

The intervals are aligned to multiples of their length (``grid``), so two refreshes a few seconds apart
draw the same bars. An interval with no data says so (None), which a chart shows as a gap, never as 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AcceptedWait:
    """One accepted offer from the waits log: when, the class, the wait since the contact was queued and,
    when a wait was announced to it, the announcement (mean and 10th-90th band) and the wait since then."""

    t_s: float
    mot: bool
    waited_s: float | None
    announced_s: float | None = None
    low_s: float | None = None
    high_s: float | None = None
    actual_s: float | None = None

    @property
    def announced(self) -> bool:
        return self.announced_s is not None and self.actual_s is not None


@dataclass(frozen=True, slots=True)
class FloorSample:
    """A worker's sample of the floor: queue depths, and the contacts flagged moments of truth so far."""

    t_s: float
    depth: Mapping[str, int]
    mot_total: int


@dataclass(frozen=True, slots=True)
class Grid:
    """``n`` intervals of ``interval_s`` from ``start_s``; the last one holds ``now``."""

    start_s: float
    interval_s: float
    n: int

    @property
    def end_s(self) -> float:
        return self.start_s + self.n * self.interval_s

    @property
    def starts(self) -> list[float]:
        return [self.start_s + i * self.interval_s for i in range(self.n)]

    def index(self, t_s: float) -> int | None:
        """The interval holding ``t_s``, or None outside the grid."""
        if not self.start_s <= t_s < self.end_s:
            return None
        return min(self.n - 1, int((t_s - self.start_s) // self.interval_s))


def grid(now_s: float, window_s: float, interval_s: float) -> Grid:
    """The intervals covering the last ``window_s`` up to ``now_s``, aligned to multiples of
    ``interval_s``."""
    if interval_s <= 0 or window_s <= 0:
        raise ValueError("window and interval must be positive")
    start = math.floor((now_s - window_s) / interval_s) * interval_s
    end = (math.floor(now_s / interval_s) + 1) * interval_s
    return Grid(start, interval_s, max(1, round((end - start) / interval_s)))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between order statistics; None when empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = min(max(q, 0.0), 1.0) * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class WaitSeries:
    """Per interval: contacts answered, their wait p50 and p90 (since queued), and of those that had been
    announced a wait, how many, the mean announced, the mean actual, and the mean absolute error."""

    answered: list[int]
    p50_s: list[float | None]
    p90_s: list[float | None]
    announced: list[int]
    announced_mean_s: list[float | None]
    actual_mean_s: list[float | None]
    mae_s: list[float | None]


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def wait_series(waits: Iterable[AcceptedWait], g: Grid, *, mot: bool) -> WaitSeries:
    """The waits of one class (``mot``) on the grid's intervals."""
    waited: list[list[float]] = [[] for _ in range(g.n)]
    pairs: list[list[tuple[float, float]]] = [[] for _ in range(g.n)]
    answered = [0] * g.n
    for w in waits:
        i = g.index(w.t_s)
        if i is None or w.mot != mot:
            continue
        answered[i] += 1
        if w.waited_s is not None:
            waited[i].append(w.waited_s)
        if w.announced_s is not None and w.actual_s is not None:
            pairs[i].append((w.announced_s, w.actual_s))
    return WaitSeries(
        answered=answered,
        p50_s=[percentile(xs, 0.5) for xs in waited],
        p90_s=[percentile(xs, 0.9) for xs in waited],
        announced=[len(p) for p in pairs],
        announced_mean_s=[_mean([a for a, _ in p]) for p in pairs],
        actual_mean_s=[_mean([x for _, x in p]) for p in pairs],
        mae_s=[_mean([abs(x - a) for a, x in p]) for p in pairs],
    )


def announced_pairs(waits: Iterable[AcceptedWait], g: Grid, limit: int) -> list[AcceptedWait]:
    """The newest ``limit`` accepted contacts on the grid that had been announced a wait, newest first."""
    kept = [w for w in waits if w.announced and g.index(w.t_s) is not None]
    kept.sort(key=lambda w: -w.t_s)
    return kept[: max(0, limit)]


def depth_series(samples: Iterable[FloorSample], g: Grid, queue: str) -> list[int | None]:
    """The highest depth of ``queue`` sampled in each interval (None: no sample, e.g. no worker ran)."""
    out: list[int | None] = [None] * g.n
    for s in samples:
        i = g.index(s.t_s)
        if i is None or queue not in s.depth:
            continue
        d = s.depth[queue]
        prev = out[i]
        out[i] = d if prev is None else max(prev, d)
    return out


def mot_series(samples: Iterable[FloorSample], g: Grid) -> list[int | None]:
    """Contacts flagged moments of truth per interval: the growth of the running count between consecutive
    samples, put in the interval of the later one. A count that went down (the stats were reset) adds
    nothing. None for an interval with no pair of samples ending in it."""
    ordered = sorted(samples, key=lambda s: s.t_s)
    out: list[int | None] = [None] * g.n
    for prev, cur in itertools.pairwise(ordered):
        i = g.index(cur.t_s)
        if i is None:
            continue
        out[i] = (out[i] or 0) + max(0, cur.mot_total - prev.mot_total)
    return out
