"""The simulation report: every figure from the floor's record of what customers and agents lived through,
the engine's decisions stream, and the store's counters."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from router.sim.floor import ContactTrack, SimFloor

HIGH_EQ = 4


def pct(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile; None for no values (JSON null: "not measured", never 0)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def _share(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def _dist(values: Sequence[float], nd: int = 1) -> dict[str, Any]:
    return {
        "p50": _r(pct(values, 50), nd),
        "p90": _r(pct(values, 90), nd),
        "mean": _r(sum(values) / len(values), nd) if values else None,
        "n": len(values),
    }


def over_capacity_max(floor: SimFloor) -> int:
    """Replay offers (+1) and agent releases (-1) per agent and channel from the decisions stream; the
    worst excess over the agent's capacity (0 when the engine never over-booked anyone)."""
    load: dict[tuple[str, str], int] = defaultdict(int)
    worst = 0
    for d in floor.log.decisions:
        if d.agent_id is None or d.agent_id not in floor.agents:
            continue
        tr = floor.contacts.get(d.contact_id)
        channel = tr.j.channel if tr is not None else "chat"
        key = (d.agent_id, channel)
        if d.action == "offer":
            load[key] += 1
            cap = floor.agents[d.agent_id].a.capacity.get(channel, 0)
            worst = max(worst, load[key] - cap)
        elif d.action == "released":
            load[key] -= 1
    return worst


def _recall_by_language(truth: Iterable[ContactTrack]) -> dict[str, float | None]:
    by_lang: defaultdict[str, list[bool]] = defaultdict(list)
    for t in truth:
        by_lang[t.j.language].append(t.detected_mot)
    return {lang: _share(sum(hits), len(hits)) for lang, hits in sorted(by_lang.items())}


def _logged_in_s(breaks: Iterable[tuple[float, float]], end_s: float) -> float:
    away = sum(max(0.0, min(s + d, end_s) - s) for s, d in breaks if s < end_s)
    return max(1.0, end_s - away)


def build_report(
    floor: SimFloor,
    *,
    meta: Mapping[str, Any],
    wall_s: float,
    group: str,
    pump_stats: Mapping[str, Any],
) -> dict[str, Any]:
    store = floor.store
    stats = store.stats()
    pending_info: Any = store.client.xpending(store.keys.events, group)
    still_pending = int(pending_info.get("pending", 0)) if pending_info else 0
    processed = stats.get("processed", 0)
    dead = stats.get("dead_letters", 0)
    sent = floor.log.sent
    lost = max(0, sent - processed - dead - still_pending)

    tracks = list(floor.contacts.values())
    truth = [t for t in tracks if t.j.truth_mot]
    detected = [t for t in tracks if t.detected_mot]
    hit = sum(1 for t in truth if t.detected_mot)
    served = [t for t in tracks if t.accepted_ts is not None and t.agent_id is not None]
    eq_of = {aid: a.a.eq for aid, a in floor.agents.items()}
    mot_served = [t for t in served if t.j.truth_mot]
    mot_high = sum(1 for t in mot_served if eq_of[t.agent_id or ""] >= HIGH_EQ)
    det_served = [t for t in served if t.detected_mot]
    det_high = sum(1 for t in det_served if eq_of[t.agent_id or ""] >= HIGH_EQ)

    def waits(group_: Iterable[ContactTrack]) -> list[float]:
        return [w for t in group_ if (w := t.wait_s) is not None]

    routine_served = [t for t in served if not t.j.truth_mot]
    needing = [t for t in tracks if t.j.needs_human or t.routed_ts is not None]
    abandoned = [t for t in tracks if t.end_reason == "abandoned"]
    routine_kind = [t for t in tracks if t.j.kind == "routine"]
    contained = sum(1 for t in routine_kind if t.end_reason == "self_service")
    to_human = sum(1 for t in routine_kind if t.routed_ts is not None)
    csats = [t.csat for t in tracks if t.csat is not None]
    expected = [t.csat_expected for t in tracks if t.csat_expected is not None]

    def csat_of(pred: Any) -> float | None:
        xs = [t.csat for t in tracks if t.csat is not None and pred(t)]
        return _r(sum(xs) / len(xs), 3) if xs else None

    end_s = max((t.ended_ts for t in tracks if t.ended_ts is not None), default=floor.t0) - floor.t0
    floor.finish_agents(floor.t0 + end_s)
    occ: dict[int, list[float]] = defaultdict(list)
    for a in floor.agents.values():
        occ[a.a.eq].append(a.busy_s / _logged_in_s(a.a.breaks, end_s))
    lat = floor.log.latencies_ms
    engine_s = floor.log.drain_s + floor.log.sweep_s
    return {
        **meta,
        "contacts": len(tracks),
        "events": sent,
        "decisions": stats.get("decisions", 0),
        "dead_letters": dead,
        "still_pending": still_pending,
        "lost": lost,
        "over_capacity_max": over_capacity_max(floor),
        "wall_s": round(wall_s, 1),
        "simulated_s": round(end_s, 1),
        "speedup": round(end_s / wall_s, 1) if wall_s > 0 else None,
        "throughput_events_per_s": round(sent / wall_s, 1) if wall_s > 0 else None,
        "engine_events_per_s": round(sent / engine_s, 1) if engine_s > 0 else None,
        "decision_latency_ms": {
            "p50": _r(pct(lat, 50), 2),
            "p95": _r(pct(lat, 95), 2),
            "p99": _r(pct(lat, 99), 2),
            "n": len(lat),
        },
        "mot_truth": len(truth),
        "mot_detected": len(detected),
        "mot_recall": _share(hit, len(truth)),
        "mot_recall_by_language": _recall_by_language(truth),
        "mot_precision": _share(hit, len(detected)),
        "mot_high_eq_share": _share(mot_high, len(mot_served)),
        "detected_mot_high_eq_share": _share(det_high, len(det_served)),
        "wait_s": {"mot": _dist(waits(mot_served)), "routine": _dist(waits(routine_served))},
        "abandonment": {
            "mot": _share(
                sum(1 for t in abandoned if t.j.truth_mot), len([t for t in needing if t.j.truth_mot])
            ),
            "routine": _share(
                sum(1 for t in abandoned if not t.j.truth_mot), len([t for t in needing if not t.j.truth_mot])
            ),
            "all": _share(len(abandoned), len(needing)),
        },
        "self_service_containment": _share(contained, len(routine_kind)),
        "routine_to_human_share": _share(to_human, len(routine_kind)),
        "detour_share_mot": _share(sum(1 for t in truth if t.pressed_button), len(truth)),
        "callback_offers": sum(1 for t in tracks if t.callback_offered),
        "offers": sum(t.offers for t in tracks),
        "offers_lost": sum(t.lost_offers for t in tracks),
        "csat_mean": _r(sum(csats) / len(csats), 3) if csats else None,
        "csat_expected_mean": _r(sum(expected) / len(expected), 3) if expected else None,
        "csat_by_class": {
            "mot": csat_of(lambda t: t.j.truth_mot),
            "routine_human": csat_of(lambda t: t.j.kind == "routine_human"),
            "routine": csat_of(lambda t: t.j.kind == "routine"),
        },
        "occupancy_by_eq": {str(eq): round(sum(v) / len(v), 3) for eq, v in sorted(occ.items())},
        "agents": {
            "count": len(floor.agents),
            "by_eq": {str(k): v for k, v in sorted(Counter(a.a.eq for a in floor.agents.values()).items())},
            "voice": sum(1 for a in floor.agents.values() if a.a.profile == "voice"),
            "digital": sum(1 for a in floor.agents.values() if a.a.profile == "digital"),
        },
        "journeys": dict(sorted(Counter(t.j.kind for t in tracks).items())),
        "journey_languages": dict(sorted(Counter(t.j.language for t in tracks).items())),
        "burst_contacts": sum(1 for t in tracks if t.j.burst),
        "returning_contacts": sum(1 for t in tracks if t.j.returning),
        "actions": dict(sorted(Counter(d.action for d in floor.log.decisions).items())),
        "run": {
            "ticks": floor.log.ticks,
            "sweeps": floor.log.sweeps,
            "engine_wait_s": round(floor.log.drain_s, 1),
            "sweep_s": round(floor.log.sweep_s, 1),
            **{k: v for k, v in pump_stats.items() if k != "per_worker_processed"},
        },
    }


# The figures --compare puts side by side, and which direction is better.
COMPARE_KEYS: tuple[tuple[str, str], ...] = (
    ("mot_high_eq_share", "higher"),
    ("wait_s.mot.p50", "lower"),
    ("wait_s.mot.p90", "lower"),
    ("wait_s.routine.p50", "lower"),
    ("wait_s.routine.p90", "lower"),
    ("abandonment.mot", "lower"),
    ("abandonment.routine", "lower"),
    ("csat_by_class.mot", "higher"),
    ("csat_mean", "higher"),
    ("self_service_containment", "higher"),
    ("detour_share_mot", "lower"),
    ("mot_recall", "higher"),
    ("mot_precision", "higher"),
    ("decision_latency_ms.p50", "lower"),
    ("decision_latency_ms.p99", "lower"),
)


def get_path(report: Mapping[str, Any], path: str) -> Any:
    cur: Any = report
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def deltas(emotion: Mapping[str, Any], skills: Mapping[str, Any]) -> dict[str, Any]:
    """emotion_routing minus skills_only for each compared figure (None where either side is undefined)."""
    out: dict[str, Any] = {}
    for key, better in COMPARE_KEYS:
        a, b = get_path(emotion, key), get_path(skills, key)
        d = round(a - b, 4) if isinstance(a, int | float) and isinstance(b, int | float) else None
        out[key] = {"emotion_routing": a, "skills_only": b, "delta": d, "better": better}
    return out
