"""`router simulate`: a contact centre of your own shape, played against the real engine in accelerated time.

One run: generate the day (arrivals, journeys replaying the project's moment-of-truth corpus, the floor),
register the agents, then let the discrete-event floor (``router.sim.floor``) drive customers and agents
while the engine, in this process or in N worker processes, routes in simulated seconds. Served contacts'
outcomes go to the router through ``POST /v1/outcomes`` (``router.sim.api_outcomes``), the only way it
learns who serves whom well. ``--compare`` plays the same seed three times: emotion-aware routing with
outcome-aware matching, the fixed EQ ladder without outcome learning, and plain skills-based routing (no
emotion scoring, agents' EQ unknown to the router, longest-idle agent with the language and channel), and
reports all three with the deltas.

The outcome model and every assumption behind it: docs/simulation.md.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.errors import ConfigError
from router.settings import Settings
from router.sim.agents import FloorAgent, build_floor, size_floor
from router.sim.api_outcomes import ApiOutcomes
from router.sim.arrivals import SCENARIOS, Scenario
from router.sim.corpus_lines import SPLITS, CorpusSplit, load_lines
from router.sim.demo import POISON
from router.sim.floor import SimFloor
from router.sim.journeys import (
    DEFAULT_CALLBACK_ACCEPT_SHARE,
    DEFAULT_MOT_SHARE,
    SimJourney,
    build_journeys,
)
from router.sim.plots import compare_chart, write_plots
from router.sim.report import agent_outcomes, build_report, deltas
from router.sim.workers import (
    InProcessPump,
    ManualClock,
    Mode,
    ProcessPump,
    Pump,
    make_scorer,
    worker_settings,
)
from router.store.codec import as_str
from router.store.connect import StoreHandle
from router.store.keys import Keys
from router.store.store import RoutingStore
from router.worker.engine import Engine

# The simulated day starts on a Monday; the engine's clock (and every decision's ts) is simulated time.
SIM_DATE = datetime(2026, 3, 2, tzinfo=UTC)
# Skills-only routing does not know the agents' EQ: every agent is registered with this one.
SKILLS_ONLY_EQ = 3
MODE_NAMES: dict[Mode, str] = {
    "emotion": "emotion_routing",
    "ladder": "fixed_ladder",
    "skills_only": "skills_only",
}
COMPARED: tuple[Mode, ...] = ("emotion", "ladder", "skills_only")
# earlier days (--history-days) draw their customers from seed + this x day number
HISTORY_SEED_STEP = 1_000
MAX_HISTORY_DAYS = 30

Progress = Callable[[int, int, str], None]


def plan_day(
    contacts: int,
    seed: int,
    scenario: Scenario,
    corpus_dir: Path | None = None,
    agents: int | None = None,
    corpus_split: CorpusSplit = "heldout",
    mot_share: float = DEFAULT_MOT_SHARE,
    callback_accept_share: float = DEFAULT_CALLBACK_ACCEPT_SHARE,
) -> tuple[list[SimJourney], list[FloorAgent], dict[str, Any]]:
    """The day's journeys and floor, all from ``seed``; the floor sized for the usual day unless given,
    and speaking every language of the day. The journeys replay ``corpus_split`` of the corpus in
    ``corpus_dir`` (default ``models/corpus``; the bundled English lines without one)."""
    rng = random.Random(seed)
    lines = load_lines(corpus_dir, corpus_split)
    journeys = build_journeys(contacts, rng, lines, scenario, mot_share, callback_accept_share)
    n_voice, n_digital = size_floor(journeys, scenario)
    if agents is not None:
        share = n_voice / (n_voice + n_digital)
        n_voice = max(1, round(agents * share))
        n_digital = max(1, agents - n_voice)
    languages = {j.language for j in journeys}
    floor = build_floor(n_voice, n_digital, random.Random(seed + 1), scenario, languages)
    return journeys, floor, lines.describe()


def _clear_domain(handle: StoreHandle, domain: str) -> None:
    client = handle.client()
    keys = list(client.scan_iter(match=f"router:{{{domain}}}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])


def run_mode(
    settings: Settings,
    handle: StoreHandle,
    mode: Mode,
    journeys: list[SimJourney],
    agents: list[FloorAgent],
    scenario: Scenario,
    *,
    seed: int,
    workers: int,
    meta: dict[str, Any],
    on_progress: Progress | None = None,
    keep_keys: bool = False,
    history_from: str | None = None,
    label: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Play the day once with ``mode``; returns (report, series for the plots). ``history_from``: a domain
    whose posted-outcome records the floor starts with (earlier days, see ``carry_outcomes``)."""
    label = label or MODE_NAMES[mode]
    domain = f"sim-{seed}-{label}-{uuid.uuid4().hex[:6]}"
    in_process = workers <= 0 or handle.url is None
    # only emotion routing learns from outcomes; the others are posted all the same (the charts read them)
    update = {"domain": domain, "outcome_matching": mode == "emotion"}
    s = worker_settings(settings.model_copy(update=update), 1 if in_process else workers)
    store = RoutingStore(handle.client(), domain, seen_ttl_s=s.seen_ttl_s)
    store.client.xgroup_create(store.keys.events, s.group, id="0", mkstream=True)
    agent_ids = [a.agent_id for a in agents]
    carried = carry_outcomes(handle, history_from, domain, agent_ids) if history_from else 0
    t0 = SIM_DATE.timestamp() + scenario.open_h * 3600.0
    pump: Pump
    scorer_name: str
    if in_process:
        scorer = make_scorer(s, mode)
        pump = InProcessPump(store, scorer, s, ManualClock(t0 - 120.0))
        scorer_name = scorer.name
    else:
        assert handle.url is not None
        pump = ProcessPump(workers, handle.url, store, s, mode, t0 - 120.0)
        scorer_name = ""
    sweeper = Engine(store, s, clock=pump.clock)
    surveys = ApiOutcomes(s, handle, pump.clock)
    floor = SimFloor(
        store,
        pump,
        sweeper,
        journeys,
        agents,
        t0=t0,
        span_s=scenario.span_s,
        seed=seed,
        register_eq=(lambda a: SKILLS_ONLY_EQ) if mode == "skills_only" else (lambda a: a.eq),
        sweep_after_route_s=(
            s.ladder_step1_s,
            s.ladder_step2_s,
            s.affinity_timeout_s,
            s.mot_reserve_max_hold_s,
        ),
        offer_timeout_s=s.offer_timeout_s,
        poison=POISON,
        post_outcome=surveys.post,
    )
    floor.setup()
    started = time.perf_counter()
    try:
        floor.run(on_progress=(lambda done, total: on_progress(done, total, label)) if on_progress else None)
    finally:
        pump_stats = pump.close()
        surveys.close()
    wall = time.perf_counter() - started
    report = build_report(
        floor,
        meta={
            **meta,
            "mode": label,
            "scorer": pump_stats.pop("scorer", None) or scorer_name,
            "workers": 0 if in_process else workers,
            "domain": domain,
        },
        wall_s=wall,
        group=s.group,
        pump_stats=pump_stats,
    )
    report["outcomes_refused"] = {str(k): v for k, v in sorted(surveys.refused.items())}
    report["outcomes_carried"] = carried
    report["agent_outcomes"] = agent_outcomes(floor)
    series = {
        "open_h": scenario.open_h,
        "latencies_ms": floor.log.latencies_ms,
        "samples": floor.log.samples,
        "accepted": [
            (t.accepted_ts - floor.t0, w, t.j.truth_mot)
            for t in floor.contacts.values()
            if t.accepted_ts is not None and (w := t.wait_s) is not None
        ],
        "arrivals": [(t.start_ts - floor.t0, t.j.truth_mot, t.detected_mot) for t in floor.contacts.values()],
        "announced": [
            (ewt, low, high, t.accepted_ts - at, t.j.truth_mot)
            for t in floor.contacts.values()
            if t.announced is not None and t.accepted_ts is not None
            for at, ewt, low, high in (t.announced,)
        ],
        "waits": {
            "mot": [w for t in floor.contacts.values() if t.j.truth_mot and (w := t.wait_s) is not None],
            "routine": [
                w for t in floor.contacts.values() if not t.j.truth_mot and (w := t.wait_s) is not None
            ],
        },
    }
    if not keep_keys:
        _clear_domain(handle, domain)
    return report, series


def carry_outcomes(handle: StoreHandle, source: str, target: str, agent_ids: list[str]) -> int:
    """Start ``target`` with the outcome records ``source`` holds for these agents (and the domain's
    totals): what a real floor's router has kept from earlier days. The records are the router's own,
    made by ``POST /v1/outcomes`` from the surveys of those days; nothing of the simulator's hidden agent
    model is copied. Returns the outcomes carried (moments of truth and routine, all agents)."""
    client = handle.client()
    src, dst = Keys(source), Keys(target)
    pairs = [(src.outcome_agent(a), dst.outcome_agent(a)) for a in agent_ids]
    carried = 0
    for key_from, key_to in [*pairs, (src.outcome_totals, dst.outcome_totals)]:
        fields = client.hgetall(key_from)
        if fields:
            client.hset(key_to, mapping={k: v for k, v in fields.items()})
    for field, n in client.hgetall(src.outcome_totals).items():
        if as_str(field) in ("mot:n", "routine:n"):
            carried += int(n)
    return carried


def _play_history(
    settings: Settings,
    handle: StoreHandle,
    days: int,
    seed: int,
    agents: list[FloorAgent],
    journeys_for: Callable[[int], list[SimJourney]],
    *,
    workers: int,
    meta: dict[str, Any],
    on_progress: Progress | None,
) -> tuple[str | None, dict[str, Any]]:
    """Play ``days`` ordinary days on this floor under emotion routing, each starting from the records
    the one before left: a floor that has been open a while, whose router knows its agents from their
    customers' surveys. Returns the last day's domain (kept until the measured runs have copied it) and
    what the report says about it."""
    domain: str | None = None
    seeds: list[int] = []
    carried = 0
    day = SCENARIOS["day"]
    for d in range(days):
        day_seed = seed + HISTORY_SEED_STEP * (d + 1)
        rep, _ = run_mode(
            settings,
            handle,
            "emotion",
            journeys_for(day_seed),
            agents,
            day,
            seed=day_seed,
            workers=workers,
            meta={**meta, "scenario": "day", "seed": day_seed},
            on_progress=on_progress,
            keep_keys=True,
            history_from=domain,
            label=f"history_day_{d + 1}",
        )
        if domain is not None:
            _clear_domain(handle, domain)
        domain = rep["domain"]
        seeds.append(day_seed)
        carried = rep["outcomes_carried"] + rep["outcomes_posted"]
    return domain, {"days": days, "seeds": seeds, "outcomes": carried}


def _corpus_split(name: str) -> CorpusSplit:
    for split in SPLITS:
        if split == name:
            return split
    raise ConfigError(f"unknown corpus split {name!r}; choose one of {', '.join(SPLITS)}")


def run_simulate(
    settings: Settings,
    handle: StoreHandle,
    *,
    contacts: int = 2000,
    seed: int = 7,
    compare: bool = False,
    scenario: str = "day",
    workers: int = 1,
    json_path: Path | None = None,
    plots_dir: Path | None = None,
    corpus_dir: Path | None = None,
    corpus_split: str = "heldout",
    agents: int | None = None,
    on_progress: Progress | None = None,
    mot_share: float = DEFAULT_MOT_SHARE,
    callback_accept_share: float = DEFAULT_CALLBACK_ACCEPT_SHARE,
    history_days: int = 0,
) -> dict[str, Any]:
    """Simulate ``contacts`` contacts of ``scenario`` ("day" or "burst"). ``workers`` worker processes on a
    real server (0: one in-process worker, the only choice on fakeredis). Returns the report; with
    ``compare`` the three reports under ``emotion_routing``, ``fixed_ladder`` and ``skills_only``, plus
    ``deltas`` (emotion routing minus skills-only) and ``deltas_vs_ladder``. Journeys replay the corpus in
    ``corpus_dir`` (default ``models/corpus``), its held-out splits unless ``corpus_split`` is ``all``;
    ``mot_share`` of an ordinary day's stories are moments of truth; ``callback_accept_share`` of the
    customers offered a callback take it. ``history_days`` ordinary days (other customers, the same floor)
    are played first under emotion routing, and every mode starts with the outcome records they left."""
    if not 0.0 <= mot_share <= 0.8:
        raise ConfigError(f"mot_share {mot_share} outside 0..0.8")
    if not 0.0 <= callback_accept_share <= 1.0:
        raise ConfigError(f"callback_accept_share {callback_accept_share} outside 0..1")
    if not 0 <= history_days <= MAX_HISTORY_DAYS:
        raise ConfigError(f"history_days {history_days} outside 0..{MAX_HISTORY_DAYS}")
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    split = _corpus_split(corpus_split)
    sc = SCENARIOS[scenario]
    journeys, floor_agents, texts = plan_day(
        contacts, seed, sc, corpus_dir, agents, split, mot_share, callback_accept_share
    )
    meta = {
        "scenario": scenario,
        "seed": seed,
        "mot_share": mot_share,
        "callback_accept_share": callback_accept_share,
        "store": handle.url or "fakeredis (in-process)",
        "texts": texts,
        "simulated_day": (SIM_DATE.replace(hour=sc.open_h)).isoformat(),
    }
    lines = load_lines(corpus_dir, split) if history_days else None

    def history_journeys(day_seed: int) -> list[SimJourney]:
        assert lines is not None
        rng = random.Random(day_seed)
        return build_journeys(contacts, rng, lines, SCENARIOS["day"], mot_share, callback_accept_share)

    history_domain, meta["history"] = _play_history(
        settings,
        handle,
        history_days,
        seed,
        floor_agents,
        history_journeys,
        workers=workers,
        meta=meta,
        on_progress=on_progress,
    )
    modes: tuple[Mode, ...] = COMPARED if compare else ("emotion",)
    reports: dict[str, dict[str, Any]] = {}
    all_series: dict[str, dict[str, Any]] = {}
    for mode in modes:
        rep, ser = run_mode(
            settings,
            handle,
            mode,
            journeys,
            floor_agents,
            sc,
            seed=seed,
            workers=workers,
            meta=meta,
            on_progress=on_progress,
            history_from=history_domain,
        )
        reports[MODE_NAMES[mode]] = rep
        all_series[MODE_NAMES[mode]] = ser
    if history_domain is not None:
        _clear_domain(handle, history_domain)
    result: dict[str, Any]
    if compare:
        emo, sk, lad = reports["emotion_routing"], reports["skills_only"], reports["fixed_ladder"]
        result = {
            "scenario": scenario,
            "seed": seed,
            "contacts": contacts,
            **reports,
            "deltas": deltas(emo, sk),
            "deltas_vs_ladder": deltas(emo, lad, other_name="fixed_ladder"),
        }
    else:
        result = reports["emotion_routing"]
    if plots_dir is not None:
        files: list[str] = []
        for name, rep in reports.items():
            prefix = f"{name}_" if compare else ""
            files += [str(p) for p in write_plots(plots_dir, all_series[name], rep, prefix)]
        if compare:
            title = f"Three routing modes: {scenario} scenario, {contacts} contacts, seed {seed}"
            files.append(str(compare_chart(reports, plots_dir / "compare.png", title)))
        result["plots"] = files
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
