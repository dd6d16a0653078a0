"""Arrivals: a Poisson process with a time-of-day profile, plus the burst scenario's surge.

Given that ``n`` contacts arrive in a day, the arrival times of a non-homogeneous Poisson process with rate
lambda(t) are independent draws from the density lambda(t) / integral(lambda): so a fixed contact count is
drawn exactly by picking an hour with the profile's weights and a uniform instant inside it. The burst
(a storm cancels flights) is a second Poisson process over its window, its arrivals marked ``burst``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Relative contact rate per hour of the day (0-23): a typical service-desk curve, morning peak 10-12,
# a dip at lunch, a second peak 14-16, tailing off in the evening. Hours outside open..close are closed.
DAY_PROFILE: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,  # 00-07 closed
    0.6, 1.0, 1.4, 1.5, 1.1, 0.9, 1.3, 1.4,  # 08-15
    1.2, 0.9, 0.6, 0.4, 0.0, 0.0, 0.0, 0.0,  # 16-23
)  # fmt: skip


@dataclass(frozen=True)
class Burst:
    """A surge of moments of truth: ``share`` of all contacts arrive in [start_h, start_h + duration_h),
    with a rate that ramps up over the first third of the window and decays after (a triangle)."""

    start_h: float = 10.5
    duration_h: float = 1.5
    share: float = 0.3
    mot_share: float = 0.85  # of the surge's contacts, moments of truth (the rest: routine travel questions)


@dataclass(frozen=True)
class Scenario:
    name: str
    open_h: int = 8
    close_h: int = 20
    burst: Burst | None = None

    @property
    def span_s(self) -> float:
        return (self.close_h - self.open_h) * 3600.0


SCENARIOS: dict[str, Scenario] = {
    "day": Scenario("day"),
    "burst": Scenario("burst", burst=Burst()),
}


def hourly_weights(scenario: Scenario) -> list[float]:
    return [DAY_PROFILE[h] if scenario.open_h <= h < scenario.close_h else 0.0 for h in range(24)]


@dataclass(frozen=True)
class Arrival:
    t_s: float  # seconds since the floor opened (scenario.open_h)
    burst: bool


def arrival_times(n: int, rng: random.Random, scenario: Scenario) -> list[Arrival]:
    """``n`` arrivals sorted by time, in seconds since opening."""
    n_burst = round(n * scenario.burst.share) if scenario.burst is not None else 0
    weights = hourly_weights(scenario)
    hours = [h for h in range(24) if weights[h] > 0]
    out: list[Arrival] = []
    for _ in range(n - n_burst):
        h = rng.choices(hours, weights=[weights[h] for h in hours])[0]
        out.append(Arrival((h - scenario.open_h) * 3600.0 + rng.random() * 3600.0, False))
    if scenario.burst is not None:
        b = scenario.burst
        lo = (b.start_h - scenario.open_h) * 3600.0
        hi = lo + b.duration_h * 3600.0
        for _ in range(n_burst):
            out.append(Arrival(rng.triangular(lo, hi, lo + (hi - lo) / 3), True))
    out.sort(key=lambda a: a.t_s)
    return out
