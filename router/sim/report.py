"""The simulation report: every figure from the floor's record of what customers and agents lived through,
the engine's decisions stream, and the store's counters."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from router.api import outcome_stats
from router.sim.floor import ContactTrack, SimFloor
from router.store.admin import AdminStore

HIGH_EQ = 4
LEARNED_CODES = ("chose_best_expected", "waiting_for_better")
LEARNED = re.compile(r"\(n=[1-9]")


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


def _reach_human_s(tracks: Iterable[ContactTrack]) -> list[float]:
    """For customers still in self-service when they came to need a person: seconds until the engine sent
    them to one (the button, self-service's offer of a person, or a re-score). One who gave up before is in
    the abandonment figures; one who gave up later in a queue counts here (self-service let them go)."""
    return [
        t.routed_ts - t.need_ts
        for t in tracks
        if t.need_ts is not None and t.routed_ts is not None and t.routed_ts >= t.need_ts
    ]


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


def false_alarms(tracks: Iterable[ContactTrack]) -> dict[str, Any]:
    """Where the detector's false alarms come from. A routine journey either replays one whole routine
    corpus conversation or strings 2-3 routine single turns (each written as a message of its own, often a
    calm alarming question) into one contact; the second is the simulator's construct, and every turn of
    it is another chance to misfire. ``precision_replayed`` is the precision over journeys that replay a
    whole corpus conversation (every moment of truth does), as the corpus's own conversation figures read."""
    tracks = list(tracks)
    wrong = [t for t in tracks if t.detected_mot and not t.j.truth_mot]
    composed = [t for t in wrong if len(t.j.sources) != 1]
    replayed = [t for t in tracks if len(t.j.sources) == 1]
    hits = sum(1 for t in replayed if t.detected_mot and t.j.truth_mot)
    return {
        "total": len(wrong),
        "routine_replayed": sum(1 for t in wrong if t.j.kind == "routine" and len(t.j.sources) == 1),
        "routine_composed": sum(1 for t in composed if t.j.kind == "routine"),
        "routine_human": sum(1 for t in wrong if t.j.kind == "routine_human"),
        "returning_customer": sum(1 for t in wrong if t.j.returning),
        "precision_replayed": _share(hits, sum(1 for t in replayed if t.detected_mot)),
    }


def _logged_in_s(breaks: Iterable[tuple[float, float]], end_s: float) -> float:
    away = sum(max(0.0, min(s + d, end_s) - s) for s, d in breaks if s < end_s)
    return max(1.0, end_s - away)


def ewt_accuracy(tracks: Iterable[ContactTrack]) -> dict[str, Any]:
    """Announced against actual waits: for each contact the engine queued with a wait estimate (its first
    'queued' decision, or a 'callback_offer' the customer declined and held on after) that an agent then
    accepted, the actual wait from that decision to the acceptance. Contacts that abandoned are left out:
    their wait is unknown (censored); so is one that took the callback offered when it was queued (no wait
    was announced for it to hold for). Inside
    the band: between its announced 10th and 90th percentiles."""
    pairs = [
        (ewt, (low, high), t.accepted_ts - at)
        for t in tracks
        if t.announced is not None and t.accepted_ts is not None
        for at, ewt, low, high in (t.announced,)
    ]
    if not pairs:
        return {"n": 0, "mae_s": None, "mean_actual_s": None, "mae_share_of_mean": None, "inside_band": None}
    mae = sum(abs(ewt - actual) for ewt, _, actual in pairs) / len(pairs)
    mean_actual = sum(actual for _, _, actual in pairs) / len(pairs)
    inside = sum(1 for _, (low, high), actual in pairs if low <= actual <= high)
    return {
        "n": len(pairs),
        "mae_s": _r(mae, 1),
        "mean_actual_s": _r(mean_actual, 1),
        "mean_announced_s": _r(sum(ewt for ewt, _, _ in pairs) / len(pairs), 1),
        "mae_share_of_mean": _r(mae / mean_actual, 3) if mean_actual > 0 else None,
        "inside_band": _share(inside, len(pairs)),
    }


def kpis_by_class(tracks: Sequence[ContactTrack]) -> dict[str, dict[str, Any]]:
    """The seeds' KPIs per class (ground truth: moment of truth or routine), over contacts that needed or
    were sent to a human: CSAT (survey answers), first-contact resolution, repeat-contact rate (a later
    contact of the same customer the same day), hand-offs per contact (offers that went to an agent and
    came back: declined, missed, revoked), abandonment."""
    later: Counter[str] = Counter()
    for t in tracks:
        if t.j.returning:
            later[t.j.customer_id] += 1
    out: dict[str, dict[str, Any]] = {}
    for name, is_mot in (("mot", True), ("routine", False)):
        human = [t for t in tracks if t.j.needs_human or t.routed_ts is not None]
        group = [t for t in human if t.j.truth_mot == is_mot]
        served = [t for t in group if t.agent_id is not None and t.end_reason == "resolved"]
        csats = [t.csat for t in served if t.csat is not None]
        first = [t for t in group if not t.j.returning]
        out[name] = {
            "contacts": len(group),
            "csat": _r(sum(csats) / len(csats), 3) if csats else None,
            "first_contact_resolution": _share(sum(1 for t in served if t.resolved), len(served)),
            "repeat_contact_rate": _share(sum(1 for t in first if later[t.j.customer_id] > 0), len(first)),
            "handoffs_per_contact": _r(sum(t.lost_offers for t in group) / len(group), 3) if group else None,
            "abandonment": _share(sum(1 for t in group if t.end_reason == "abandoned"), len(group)),
        }
    return out


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
        "mot_false_alarms": false_alarms(tracks),
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
        "reach_human_s": {
            "mot": _dist(_reach_human_s(t for t in tracks if t.j.truth_mot)),
            "routine": _dist(_reach_human_s(t for t in tracks if not t.j.truth_mot)),
        },
        "detour_share_mot": _share(sum(1 for t in truth if t.pressed_button), len(truth)),
        "callback_offers": sum(1 for t in tracks if t.callback_offered),
        "callbacks_taken": {
            "mot": sum(1 for t in tracks if t.callback_taken and t.j.truth_mot),
            "routine": sum(1 for t in tracks if t.callback_taken and not t.j.truth_mot),
        },
        "offers": sum(t.offers for t in tracks),
        "offers_lost": sum(t.lost_offers for t in tracks),
        "csat_mean": _r(sum(csats) / len(csats), 3) if csats else None,
        "csat_expected_mean": _r(sum(expected) / len(expected), 3) if expected else None,
        "ewt_accuracy": ewt_accuracy(tracks),
        "kpis_by_class": kpis_by_class(tracks),
        "outcomes_posted": floor.outcomes_posted,
        # decisions whose choice quotes an agent's own posted outcomes, not the EQ prior alone
        "learned_choices": sum(
            1
            for d in floor.log.decisions
            if any(r.code in LEARNED_CODES and LEARNED.search(r.text) for r in d.reasons)
        ),
        "mot_high_skill_share": _share(
            sum(1 for t in mot_served if floor.agents[t.agent_id or ""].a.skill >= HIGH_EQ - 0.5),
            len(mot_served),
        ),
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
    ("reach_human_s.mot.mean", "lower"),
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


def deltas(
    emotion: Mapping[str, Any], other: Mapping[str, Any], *, other_name: str = "skills_only"
) -> dict[str, Any]:
    """emotion_routing minus the other mode for each compared figure (None where either is undefined)."""
    out: dict[str, Any] = {}
    for key, better in COMPARE_KEYS:
        a, b = get_path(emotion, key), get_path(other, key)
        d = round(a - b, 4) if isinstance(a, int | float) and isinstance(b, int | float) else None
        out[key] = {"emotion_routing": a, other_name: b, "delta": d, "better": better}
    return out


def agent_outcomes(floor: SimFloor) -> list[dict[str, Any]]:
    """Each agent's posted outcomes as the API holds them (``GET /v1/agents/{id}/suggested-skills``): CSAT
    on moments of truth and on routine contacts with 95% intervals, and the EQ suggestion; beside the EQ
    tag, the simulator's hidden skill (for judging the router, never shown to it)."""
    admin = AdminStore(floor.store)
    rows = []
    for agent_id, track in sorted(floor.agents.items()):
        mine, total = admin.outcome_aggregates(agent_id)
        mot = outcome_stats.compare(mine["mot"], total["mot"].minus(mine["mot"]))
        routine = outcome_stats.group_stats(mine["routine"])
        suggested, why = outcome_stats.suggest(track.a.eq, mot)
        rows.append(
            {
                "agent_id": agent_id,
                "eq": track.a.eq,
                "skill": track.a.skill,
                "mot": _group(mot.agent),
                "routine": _group(routine),
                "suggested_eq": suggested,
                "suggestion": why,
            }
        )
    return rows


def _group(g: outcome_stats.GroupStats) -> dict[str, Any]:
    ci = None
    if g.n >= 2 and g.mean_csat is not None and g.sd_csat is not None:
        half = outcome_stats.t_quantile(0.975, g.n - 1) * g.sd_csat / math.sqrt(g.n)
        ci = [round(g.mean_csat - half, 3), round(g.mean_csat + half, 3)]
    return {"n": g.n, "csat": _r(g.mean_csat, 3), "ci95": ci, "resolved": _r(g.resolved_rate, 3)}
