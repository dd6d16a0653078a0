"""/metrics: what the store knows, plus the API's own request metrics, in one prometheus-client registry.

Workers are separate processes, so the API exports the shared truth from Redis at scrape time
(``StoreCollector``): the stats hash the worker scripts increment (events processed, decisions,
dead letters, replays, scorer fallbacks when a worker records them), queue depths, pending offers,
stream backlogs, agents by status, recent accepted offers.

Decision-level series (decisions by action, moments of truth, offer outcomes, decision latency) come from
tailing the decisions stream: each scrape reads the decisions written since the previous scrape (the first
scrape starts with the newest ``TAIL_START`` decisions) and feeds ordinary counters and a histogram, so
they are monotonic for the life of the API process like any Prometheus counter. Decision latency is the
decision's ``ts`` minus the time its event entered the system, where the store knows it: the stream id
time for events without an ``event_id`` (the id is the entry id) and the API's ingest time for events
posted through ``POST /v1/events`` (kept one hour in ``api:ingest``). Events a platform XADDs directly
with its own ``event_id`` carry no arrival time the API can see and are not in the histogram.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from router.domain.kpis import CLASSES, ClassKpis, ContactClass, kpis_by_class
from router.domain.model import QUEUES
from router.domain.wait_band import BandCorrection, band_correction
from router.scoring.protocol import EmotionScorer
from router.settings import Settings
from router.store.admin import AdminStore, stream_id_ms
from router.store.floor_logs import FloorLogs
from router.store.store import STORE_OUTAGES

log = logging.getLogger(__name__)

TAIL_START = 1_000
TAIL_MAX_PER_SCRAPE = 20_000
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAT_COUNTERS = {
    "processed": ("router_events_processed", "Events applied by the workers (stats hash)"),
    "decisions": ("router_decisions_written", "Decisions written by the workers (stats hash)"),
    "dead_letters": ("router_dead_letters", "Entries dead-lettered by the workers (stats hash)"),
    "replayed": ("router_deadletters_replayed", "Dead letters replayed through the API (stats hash)"),
    "scorer_fallbacks": ("router_scorer_fallbacks", "Batches the fallback scorer answered (stats hash)"),
    "mot_contacts": ("router_moments_of_truth", "Contacts flagged moments of truth (stats hash)"),
}
# The KPIs by class over the last kpi_window_s, as the dashboard shows them (router/domain/kpis.py); a class
# with nothing to measure has no sample
KPI_GAUGES: dict[str, tuple[str, Callable[[ClassKpis], float | None]]] = {
    "router_kpi_contacts": ("Contacts that ended after going to a person", lambda k: k.contacts),
    "router_kpi_csat": ("Mean CSAT of the outcomes posted", lambda k: k.csat),
    "router_kpi_first_contact_resolution": (
        "Share of contacts an agent took whose customer did not come back within fcr_window_s",
        lambda k: k.fcr,
    ),
    "router_kpi_repeat_contact_rate": (
        "Share of contacts whose customer's previous contact started within fcr_window_s",
        lambda k: k.repeat_rate,
    ),
    "router_kpi_handoffs_per_contact": (
        "Offers that came back to the queue per contact",
        lambda k: k.handoffs_per_contact,
    ),
    "router_kpi_abandonment_rate": (
        "Share of contacts that ended before any agent accepted them",
        lambda k: k.abandonment,
    ),
}
# Announced against actual waits, counted by the offer script at each acceptance of a contact that was
# announced a wait: divide (error or inside) by checked for the mean absolute error and the share inside
# the band, and the error by the actual for the error as a share of the mean wait.
EWT_COUNTERS = {
    "ewt_checked": ("router_ewt_checked", "Accepted contacts that had been announced a wait", 1.0),
    "ewt_abs_error_ms": (
        "router_ewt_abs_error_seconds",
        "Sum of |announced - actual| wait over them (seconds)",
        0.001,
    ),
    "ewt_actual_ms": ("router_ewt_actual_wait_seconds", "Sum of their actual waits (seconds)", 0.001),
    "ewt_inside_band": (
        "router_ewt_inside_band",
        "Of them, actual waits inside the announced band (10th-90th percentile)",
        1.0,
    ),
}
OFFER_LOST_CODES = {"offer_declined": "declined", "offer_timeout": "timeout"}


def _band_gauges(band: BandCorrection) -> Iterator[GaugeMetricFamily]:
    """How far the announced bands' ends are moved from the forecast model's (router/domain/wait_band.py):
    a factor on (wait + 1 s) per end, 1 when not moved. A factor far from 1, or drifting, says the model
    misses something about this floor."""
    g = GaugeMetricFamily(
        "router_ewt_band_factor",
        "Factor on the forecast model's band end (wait + 1 s) that the announced band applies",
        labels=["end"],
    )
    g.add_metric(["low"], math.exp(-band.low_log))
    g.add_metric(["high"], math.exp(band.high_log))
    yield g
    g = GaugeMetricFamily("router_ewt_band_checks", "Announced waits lived that the band correction uses")
    g.add_metric([], band.checks)
    yield g


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "router_api_requests", "API requests", ["method", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "router_api_request_duration_seconds", "API request duration", ["method", "route"], registry=r
        )
        self.decisions = Counter(
            "router_decisions_observed",
            "Decisions seen on the decisions stream by action",
            ["action"],
            registry=r,
        )
        self.moments_of_truth = Counter(
            "router_moments_of_truth_observed", "Decisions on contacts that are moments of truth", registry=r
        )
        self.offer_outcomes = Counter(
            "router_offer_outcomes_observed",
            "Offers made and offers lost (declined, timed out) seen on the decisions stream",
            ["outcome"],
            registry=r,
        )
        self.decision_latency = Histogram(
            "router_decision_latency_seconds",
            "Event arrival to decision, where the arrival time is known (see router/api/metrics.py)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._tail_lock = threading.Lock()
        self._last_id: str | None = None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def attach_store(
        self,
        admin: AdminStore,
        settings: Settings,
        *,
        scorer: EmotionScorer | None,
        clock: Callable[[], float],
    ) -> None:
        self.registry.register(StoreCollector(admin, settings, scorer=scorer, clock=clock))

    def render(self, admin: AdminStore) -> bytes:
        try:
            self.poll_decisions(admin)
        except STORE_OUTAGES as exc:
            log.warning("metrics: decisions tail skipped: %s", type(exc).__name__)
        out: bytes = generate_latest(self.registry)
        return out

    def poll_decisions(self, admin: AdminStore) -> int:
        """Fold the decisions written since the last scrape into the counters; returns how many."""
        with self._tail_lock:
            seen = 0
            if self._last_id is None:
                items, last = admin.recent_decisions(TAIL_START)
                self._observe(admin, items)
                self._last_id, seen = last, len(items)
            while seen < TAIL_MAX_PER_SCRAPE:
                items, last = admin.decisions_after(self._last_id, 2_000)
                if last == self._last_id:
                    break
                self._observe(admin, items)
                self._last_id = last
                seen += len(items)
            return seen

    def _observe(self, admin: AdminStore, items: list[tuple[str, dict[str, Any]]]) -> None:
        need_ingest = [
            str(d.get("event_id"))
            for _, d in items
            if d.get("event_id") and stream_id_ms(str(d["event_id"])) is None
        ]
        ingest = admin.ingest_ms(sorted(set(need_ingest)))
        for _, d in items:
            action = str(d.get("action", "unknown"))
            self.decisions.labels(action).inc()
            if d.get("moment_of_truth"):
                self.moments_of_truth.inc()
            if action == "offer":
                self.offer_outcomes.labels("offered").inc()
            elif action == "released":
                for r in d.get("reasons") or ():
                    code = r.get("code") if isinstance(r, dict) else None
                    if code in OFFER_LOST_CODES:
                        self.offer_outcomes.labels(OFFER_LOST_CODES[code]).inc()
            eid = str(d.get("event_id") or "")
            arrived_ms = stream_id_ms(eid) if eid else None
            if arrived_ms is None and eid:
                arrived_ms = ingest.get(eid)
            ts = d.get("ts")
            if arrived_ms is not None and isinstance(ts, int | float):
                latency = float(ts) - arrived_ms / 1000
                if 0 <= latency < 3_600:
                    self.decision_latency.observe(latency)


class StoreCollector(Collector):
    """Reads the store at scrape time. When Redis is unreachable it reports router_store_up 0 and nothing
    else from the store (the scrape itself still succeeds)."""

    def __init__(
        self,
        admin: AdminStore,
        settings: Settings,
        *,
        scorer: EmotionScorer | None,
        clock: Callable[[], float],
    ) -> None:
        self.admin = admin
        self.settings = settings
        self.scorer = scorer
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # dynamic: never checked against duplicates at registration

    def collect(self) -> Iterator[Any]:
        admin, store, settings = self.admin, self.admin.store, self.settings
        up = GaugeMetricFamily("router_store_up", "1 when the API can read the store")
        try:
            stats = store.stats()
            depths = store.queue_depths()
            counts = admin.floor_counts()
            agents = store.load_agents(int(self.clock() * 1000), int(settings.fairness_window_s * 1000))
            group = admin.group_info(settings.group)
            live = admin.live_workers(settings.worker_dead_after_s)
            since = int(self.clock() * 1000) - 15 * 60 * 1000
            served = {q: admin.served_recent(q, since) for q in QUEUES}
            kpis = self._kpis()
            band = band_correction(store.band_checks())
        except redis.RedisError as exc:
            log.warning("metrics: store unreadable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        # a scorer running in this process (router demo --api) counts its own fallbacks
        local = {"scorer_fallbacks": int(getattr(self.scorer, "fallbacks", 0) or 0)}
        for field, (name, doc) in STAT_COUNTERS.items():
            c = CounterMetricFamily(name, doc)
            c.add_metric([], float(stats.get(field, 0) + local.get(field, 0)))
            yield c
        for field, (name, doc, scale) in EWT_COUNTERS.items():
            c = CounterMetricFamily(name, doc)
            c.add_metric([], stats.get(field, 0) * scale)
            yield c
        yield from _band_gauges(band)
        g = GaugeMetricFamily("router_queue_depth", "Contacts waiting per queue", labels=["queue"])
        for q, n in depths.items():
            g.add_metric([q], n)
        yield g
        g = GaugeMetricFamily(
            "router_offers_accepted_recent",
            "Offers accepted in the last 15 minutes per queue",
            labels=["queue"],
        )
        for q, n in served.items():
            g.add_metric([q], n)
        yield g
        for key, doc in (
            ("offers_pending", "Offers waiting for an agent's answer"),
            ("deadletter_backlog", "Entries in the dead-letter stream"),
            ("events_backlog", "Entries in the events stream (not yet trimmed)"),
            ("outcomes", "Post-contact outcomes recorded"),
        ):
            g = GaugeMetricFamily(f"router_{key}", doc)
            g.add_metric([], counts[key])
            yield g
        g = GaugeMetricFamily("router_agents", "Agents by status", labels=["status"])
        by_status = {"available": 0, "away": 0, "offline": 0}
        for a in agents:
            by_status[a.view.status] = by_status.get(a.view.status, 0) + 1
        for status, n in by_status.items():
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily(
            "router_events_pending", "Events delivered to a worker and not yet acknowledged"
        )
        g.add_metric([], group["pending"] if group else 0)
        yield g
        g = GaugeMetricFamily("router_worker_consumers", "Consumers in the workers' group")
        g.add_metric([], group["consumers"] if group else 0)
        yield g
        g = GaugeMetricFamily("router_workers_live", "Workers with a heartbeat within worker_dead_after_s")
        g.add_metric([], live)
        yield g
        g = GaugeMetricFamily("router_kpi_window_seconds", "The window the router_kpi_* gauges cover")
        g.add_metric([], settings.kpi_window_s)
        yield g
        for name, (doc, value) in KPI_GAUGES.items():
            g = GaugeMetricFamily(name, f"{doc} (last kpi_window_s, by class)", labels=["class"])
            for cls in CLASSES:
                x = value(kpis[cls])
                if x is not None:
                    g.add_metric([cls], float(x))
            yield g

    def _kpis(self) -> Mapping[ContactClass, ClassKpis]:
        since_s = self.clock() - self.settings.kpi_window_s
        logs = FloorLogs(self.admin.store)
        ended, rated = logs.ended(since_s), logs.rated(since_s)
        return kpis_by_class(
            ended.items, rated.items, since_s=since_s, fcr_window_s=self.settings.fcr_window_s
        )
