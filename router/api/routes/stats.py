"""The dashboard's pictures: the floor per interval over a window (waits by class, queue depths, moments of
truth, announced against actual waits) with the KPIs by class, and each agent's CSAT on moments of truth
against routine with the EQ it suggests.

Everything is read from capped logs the scripts keep (router/store/floor_logs.py) and computed by pure
functions (router/domain/floor_series.py, router/domain/kpis.py): a request costs what its window holds.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from router.api import outcome_stats
from router.api.context import ApiContext, get_ctx
from router.api.errors import responses
from router.api.schemas import (
    AgentOutcomesPage,
    AgentOutcomesRow,
    AnnouncedPair,
    ClassKpisOut,
    CsatGroup,
    LogCoverage,
    SeriesOut,
    WaitSeriesOut,
)
from router.api.security import READ, requires
from router.domain import floor_series as fs
from router.domain.kpis import CLASSES, ClassKpis, kpis_by_class
from router.domain.model import QUEUES
from router.store.admin import Aggregate
from router.store.floor_logs import FloorLogs, LogRead

router = APIRouter(tags=["stats"])

MAX_POINTS = 360  # intervals per series: a chart wider than that shows nothing more
ANNOUNCED_PAIRS = 300  # announced-against-actual points drawn


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _rs(xs: list[float | None], digits: int = 1) -> list[float | None]:
    return [_r(x, digits) for x in xs]


def _waits_out(w: fs.WaitSeries) -> WaitSeriesOut:
    return WaitSeriesOut(
        answered=w.answered,
        p50_s=_rs(w.p50_s),
        p90_s=_rs(w.p90_s),
        announced=w.announced,
        announced_mean_s=_rs(w.announced_mean_s),
        actual_mean_s=_rs(w.actual_mean_s),
        mae_s=_rs(w.mae_s),
    )


def kpis_out(k: ClassKpis) -> ClassKpisOut:
    return ClassKpisOut(
        contacts=k.contacts,
        csat=_r(k.csat),
        csat_n=k.csat_n,
        first_contact_resolution=_r(k.fcr, 4),
        fcr_n=k.fcr_n,
        repeat_contact_rate=_r(k.repeat_rate, 4),
        handoffs_per_contact=_r(k.handoffs_per_contact),
        abandonment=_r(k.abandonment, 4),
        abandoned=k.abandoned,
    )


def _coverage(read: LogRead[Any]) -> LogCoverage:
    return LogCoverage(complete=read.complete, oldest_ts=_r(read.oldest_s))


@router.get(
    "/v1/stats/series",
    response_model=SeriesOut,
    summary="The floor per interval (waits by class, queue depths, moments of truth, announced against "
    "actual waits) and the KPIs by class over the window",
    description=(
        "Intervals are aligned to multiples of `interval_s` and cover at least `window_s` up to now; "
        f"`interval_s` is widened to keep at most {MAX_POINTS} of them (the answer says the one used). KPIs: "
        "router/domain/kpis.py. `sources` says, per log, whether it reaches back to the window's start "
        "(the logs are capped)."
    ),
    openapi_extra=requires(*READ),
    responses=responses(422),
)
def series(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    window_s: Annotated[int, Query(ge=60, le=86_400)] = 3_600,
    interval_s: Annotated[int, Query(ge=10, le=3_600)] = 60,
) -> SeriesOut:
    interval_s = max(interval_s, math.ceil(window_s / MAX_POINTS))
    now = ctx.clock()
    g = fs.grid(now, window_s, interval_s)
    logs = FloorLogs(ctx.store)
    waits, samples = logs.waits(g.start_s), logs.samples(g.start_s)
    ended, rated = logs.ended(g.start_s), logs.rated(g.start_s)
    fcr_window_s = ctx.settings.fcr_window_s
    kpis = kpis_by_class(ended.items, rated.items, since_s=g.start_s, fcr_window_s=fcr_window_s)
    pairs = fs.announced_pairs(waits.items, g, ANNOUNCED_PAIRS)
    return SeriesOut(
        ts=round(now, 3),
        window_s=window_s,
        interval_s=interval_s,
        fcr_window_s=fcr_window_s,
        t=g.starts,
        waits={c: _waits_out(fs.wait_series(waits.items, g, mot=c == "mot")) for c in CLASSES},
        depth_max={q: fs.depth_series(samples.items, g, q) for q in QUEUES},
        moments_of_truth=fs.mot_series(samples.items, g),
        announced=[
            AnnouncedPair(
                ts=round(w.t_s, 3),
                moment_of_truth=w.mot,
                announced_s=round(w.announced_s or 0.0, 1),
                low_s=_r(w.low_s, 1),
                high_s=_r(w.high_s, 1),
                actual_s=round(w.actual_s or 0.0, 1),
            )
            for w in pairs
        ],
        kpis={c: kpis_out(kpis[c]) for c in CLASSES},
        sources={
            "waits": _coverage(waits),
            "ended": _coverage(ended),
            "samples": _coverage(samples),
            "outcomes": _coverage(rated),
        },
    )


def _group(a: Aggregate) -> CsatGroup:
    ci = outcome_stats.mean_ci95(a)
    return CsatGroup(
        n=a.n,
        mean_csat=round(a.sum / a.n, 3) if a.n else None,
        ci95=None if ci is None else [round(x, 3) for x in ci],
    )


@router.get(
    "/v1/stats/agents",
    response_model=AgentOutcomesPage,
    summary="Each agent's CSAT on moments of truth against routine, with the EQ it suggests and its interval",
    description=(
        "Agents with at least one posted outcome: those with a suggested EQ change first, then the most "
        "moments of truth rated. " + outcome_stats.METHOD
    ),
    openapi_extra=requires(*READ),
    responses=responses(422),
)
def agent_outcomes(
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> AgentOutcomesPage:
    recs = ctx.store.load_agents(int(ctx.clock() * 1000), int(ctx.settings.fairness_window_s * 1000))
    mine, total = ctx.admin.outcome_aggregates_of([r.view.agent_id for r in recs])
    rows = []
    for rec in recs:
        v = rec.view
        own = mine[v.agent_id]
        if own["mot"].n + own["routine"].n == 0:
            continue
        ev = outcome_stats.evaluate(v.eq, own, total)
        diff = ev.moments_of_truth
        rows.append(
            AgentOutcomesRow(
                agent_id=v.agent_id,
                name=v.name,
                eq=v.eq,
                suggested_eq=ev.suggested_eq,
                change=ev.suggested_eq - v.eq,
                reason=ev.reason,
                moments_of_truth=_group(own["mot"]),
                routine=_group(own["routine"]),
                mot_vs_peers=None if diff.ci95 is None else [round(x, 3) for x in diff.ci95],
                mot_difference=_r(diff.difference),
            )
        )
    rows.sort(key=lambda r: (r.change == 0, -r.moments_of_truth.n, -r.routine.n, r.agent_id))
    return AgentOutcomesPage(method=outcome_stats.METHOD, total=len(rows), items=rows[:limit])
