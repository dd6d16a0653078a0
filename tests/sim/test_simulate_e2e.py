"""A small simulated day end to end through the real engine, in accelerated time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from router.settings import Settings
from router.sim.arrivals import SCENARIOS
from router.sim.simulate import run_simulate
from router.store.connect import StoreHandle, open_store
from router.store.keys import Keys

REQUIRED = {"events", "lost", "decision_latency_ms", "mot_recall", "mot_precision", "mot_high_eq_share"}
REQUIRED |= {"wait_s", "csat_mean", "abandonment", "occupancy_by_eq", "self_service_containment"}
STABLE = ("events", "mot_recall", "mot_precision", "mot_high_eq_share", "wait_s", "csat_mean", "abandonment")


def _png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.mark.slow
def test_compare_on_fakeredis_writes_both_reports_and_plots(tmp_path: Path) -> None:
    with open_store("", "fakeredis") as handle:
        out = run_simulate(
            Settings(scorer="lexicon"),
            handle,
            contacts=60,
            seed=3,
            compare=True,
            scenario="burst",
            workers=0,
            json_path=tmp_path / "r.json",
            plots_dir=tmp_path / "plots",
            corpus_dir=tmp_path / "no-corpus",  # the bundled English lines: unmistakable moments of truth
        )
    assert json.loads((tmp_path / "r.json").read_text()) == out
    assert set(out) >= {
        "emotion_routing",
        "fixed_ladder",
        "skills_only",
        "deltas",
        "deltas_vs_ladder",
        "plots",
    }
    emo, sk, lad = out["emotion_routing"], out["skills_only"], out["fixed_ladder"]
    for rep in (emo, sk, lad):
        assert set(rep) >= REQUIRED
        assert set(rep["decision_latency_ms"]) >= {"p50", "p95", "p99"}
        assert set(rep["wait_s"]) == {"mot", "routine"}
        assert set(rep["wait_s"]["mot"]) >= {"p50", "p90"}
        assert rep["lost"] == 0 and rep["still_pending"] == 0
        assert rep["over_capacity_max"] == 0
        assert rep["dead_letters"] == 3  # the three poison entries, on purpose
        assert rep["burst_contacts"] == 18
        assert rep["texts"]["source"] == "bundled"
        assert rep["outcomes_posted"] > 0 and rep["outcomes_refused"] == {}
        assert set(rep["ewt_accuracy"]) >= {"n", "mae_s", "inside_band"}
        assert set(rep["kpis_by_class"]) == {"mot", "routine"}
    assert emo["mot_recall"] > 0.5  # the bundled moments of truth are unmistakable
    assert sk["mot_recall"] == 0.0 and sk["mot_precision"] is None  # skills-only never scores
    assert sk["detour_share_mot"] > emo["detour_share_mot"]
    assert out["deltas"]["mot_high_eq_share"]["skills_only"] == sk["mot_high_eq_share"]
    assert out["deltas_vs_ladder"]["csat_by_class.mot"]["fixed_ladder"] == lad["csat_by_class"]["mot"]
    names = {Path(p).name for p in out["plots"]}
    assert "compare.png" in names and "emotion_routing_latency_cdf.png" in names
    assert {"fixed_ladder_agent_csat.png", "emotion_routing_ewt_accuracy.png"} <= names
    assert len(names) == 3 * 9 + 1
    assert all(_png(Path(p)) for p in out["plots"])


def _learned(rep: dict[str, object]) -> bool:
    """Whether any decision's reasons quote an agent's own outcomes (n=...) rather than the EQ prior."""
    return bool(rep["learned_choices"])


@pytest.mark.slow
def test_the_router_learns_only_from_outcomes_posted_through_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulated agents' true empathy never reaches the router: it sees their EQ tags, and the outcomes
    the simulator posts through POST /v1/outcomes. Without those posts it never leaves the EQ prior."""
    from router.sim import simulate
    from router.sim.api_outcomes import ApiOutcomes

    def day(handle: StoreHandle) -> tuple[dict[str, Any], dict[str, Any]]:
        journeys, agents, texts = simulate.plan_day(
            120, 4, SCENARIOS["day"], tmp_path / "none", mot_share=0.3
        )
        return simulate.run_mode(
            Settings(scorer="lexicon"),
            handle,
            "emotion",
            journeys,
            agents,
            SCENARIOS["day"],
            seed=4,
            workers=0,
            meta={"texts": texts},
            keep_keys=True,
        )

    with open_store("", "fakeredis") as handle:
        rep, _ = day(handle)
        r = handle.client()
        keys = Keys(rep["domain"])
        posted = [json.loads(f[b"outcome"]) for _, f in r.xrange(keys.outcomes)]
        for row in rep["agent_outcomes"]:
            profile = {k.decode(): v.decode() for k, v in r.hgetall(keys.agent(row["agent_id"])).items()}
            assert profile["eq"] == str(row["eq"])  # the tag, and nothing of the hidden skill
            assert not {f for f in profile if "skill" in f}
            mine = [p for p in posted if p["agent_id"] == row["agent_id"]]
            assert row["mot"]["n"] + row["routine"]["n"] == len(mine)
        # every outcome came through the API, under the simulator's key
        assert len(posted) == rep["outcomes_posted"] > 0 and {p["who"] for p in posted} == {"admin"}
        assert _learned(rep)

    monkeypatch.setattr(ApiOutcomes, "post", lambda self, *a: False)  # the surveys never reach the API
    with open_store("", "fakeredis") as handle:
        silent, _ = day(handle)
        assert silent["outcomes_posted"] == 0 and not _learned(silent)


def _history_run(tmp_path: Path) -> tuple[dict[str, Any], list[bytes]]:
    with open_store("", "fakeredis") as handle:
        rep = run_simulate(
            Settings(scorer="lexicon"),
            handle,
            contacts=80,
            seed=4,
            workers=0,
            mot_share=0.3,
            corpus_dir=tmp_path / "none",
            history_days=2,
        )
        return rep, list(handle.client().scan_iter(match="router:{sim-*history*"))


@pytest.mark.slow
def test_earlier_days_leave_the_router_their_posted_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--history-days: the measured day starts with the records the router kept from the surveys of
    earlier days on the same floor, and only those; the earlier days' keys are gone afterwards."""
    from router.sim.api_outcomes import ApiOutcomes

    rep, leftovers = _history_run(tmp_path)
    assert leftovers == []
    history = rep["history"]
    assert history["days"] == 2 and history["seeds"] == [1004, 2004]
    assert rep["outcomes_carried"] == history["outcomes"] > 0
    served = sum(row["mot"]["n"] + row["routine"]["n"] for row in rep["agent_outcomes"])
    assert served == rep["outcomes_carried"] + rep["outcomes_posted"]
    assert _learned(rep)

    monkeypatch.setattr(ApiOutcomes, "post", lambda self, *a: False)  # no survey reaches the API
    silent, _ = _history_run(tmp_path)
    assert silent["outcomes_carried"] == 0 and not _learned(silent)


@pytest.mark.slow
def test_same_seed_same_day(tmp_path: Path) -> None:
    runs = []
    for _ in range(2):
        with open_store("", "fakeredis") as handle:
            runs.append(
                run_simulate(
                    Settings(scorer="lexicon"),
                    handle,
                    contacts=40,
                    seed=5,
                    workers=0,
                    json_path=None,
                    corpus_dir=tmp_path / "x",
                )
            )
    assert [runs[0][k] for k in STABLE] == [runs[1][k] for k in STABLE]


@pytest.mark.slow
def test_a_customer_who_takes_the_callback_does_not_give_up(tmp_path: Path) -> None:
    """A short-staffed day with short callback thresholds: callbacks are offered; customers who take them
    keep their place and are served, so fewer give up than on the same day where nobody takes one."""
    settings = Settings(scorer="lexicon", callback_threshold_s=20.0, mot_callback_threshold_s=10.0)
    reps = {}
    for share in (0.0, 1.0):
        with open_store("", "fakeredis") as handle:
            reps[share] = run_simulate(
                settings,
                handle,
                contacts=120,
                seed=3,
                workers=0,
                agents=1,
                callback_accept_share=share,
                corpus_dir=tmp_path / "x",
            )
    none, every = reps[0.0], reps[1.0]
    assert none["callback_offers"] > 0 and none["callbacks_taken"] == {"mot": 0, "routine": 0}
    assert sum(every["callbacks_taken"].values()) == every["callback_offers"]
    assert every["abandonment"]["all"] < none["abandonment"]["all"]
    assert none["lost"] == every["lost"] == 0


@pytest.mark.slow
def test_customers_offered_a_person_by_self_service_reach_one_sooner() -> None:
    """The same day with self-service's offer of a person off and on: customers who need one take it
    instead of searching for the button, so moments of truth stuck in self-service reach a person sooner
    and no more of them give up. At 0.3: the lexicon's stand-in probability runs lower than the
    transformer's. (Fewer abandonments is the hope, but on 300 contacts it turns on one customer or none.)"""
    reps = {}
    for threshold in (1.0, 0.3):
        with open_store("", "fakeredis") as handle:
            settings = Settings(scorer="lexicon", human_offer_mot_prob=threshold)
            reps[threshold] = run_simulate(settings, handle, contacts=300, seed=3, workers=0)
    off, on = reps[1.0], reps[0.3]
    assert on["mot_truth"] == off["mot_truth"] and on["contacts"] == off["contacts"]  # the same journeys
    assert off["actions"]["self_service"] == 300  # one per contact: no offer
    assert on["actions"]["self_service"] > 330  # the offers, at most one per contact
    assert on["reach_human_s"]["mot"]["n"] >= 10
    assert on["reach_human_s"]["mot"]["mean"] < off["reach_human_s"]["mot"]["mean"]
    assert on["abandonment"]["mot"] <= off["abandonment"]["mot"]
    assert on["lost"] == off["lost"] == 0


@pytest.mark.slow
def test_cli_simulate_on_fakeredis(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "simulate",
            "--embedded",
            "fakeredis",
            "--contacts",
            "30",
            "--seed",
            "2",
            "--scorer",
            "lexicon",
            "--corpus-split",
            "heldout",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data) >= REQUIRED and data["lost"] == 0
    assert data["texts"]["source"] == "corpus" and data["texts"]["splits"] == ["dev", "test"]
    assert "mot_high_eq_share" in proc.stdout


@pytest.mark.slow
def test_a_day_of_corpus_journeys_in_many_languages(tmp_path: Path) -> None:
    """The project's corpus, held out: every contact served in its own language, nothing lost."""
    with open_store("", "fakeredis") as handle:
        rep = run_simulate(Settings(scorer="lexicon"), handle, contacts=150, seed=9, workers=0)
    assert rep["texts"]["source"] == "corpus" and rep["texts"]["corpus_split"] == "heldout"
    assert rep["lost"] == 0 and rep["still_pending"] == 0 and rep["over_capacity_max"] == 0
    assert (
        len(rep["journey_languages"]) >= 6
        and max(rep["journey_languages"], key=rep["journey_languages"].get) == "en"
    )
    assert rep["mot_truth"] > 0 and rep["mot_recall"] is not None
    wrong = rep["mot_false_alarms"]
    flagged_truth = round(rep["mot_recall"] * rep["mot_truth"])
    assert wrong["total"] == rep["mot_detected"] - flagged_truth
    assert wrong["total"] == wrong["routine_replayed"] + wrong["routine_composed"] + wrong["routine_human"]


@pytest.mark.slow
@pytest.mark.redis
def test_worker_processes_on_a_real_server(real_redis_admin_url: str, tmp_path: Path) -> None:
    """Two engine processes on one shared simulated clock give the same day a lone worker gives. As an
    admin: the simulator clears its domains by listing keys, which no router ACL role may."""
    reports = []
    for workers in (0, 2):
        with open_store(real_redis_admin_url) as handle:
            reports.append(
                run_simulate(
                    Settings(scorer="lexicon"),
                    handle,
                    contacts=40,
                    seed=4,
                    workers=workers,
                    json_path=None,
                    corpus_dir=tmp_path / "x",
                )
            )
    inproc, procs = reports
    assert procs["workers"] == 2 and procs["lost"] == 0 and procs["over_capacity_max"] == 0
    assert procs["run"]["processed"] == procs["events"] - procs["dead_letters"]
    assert procs["events"] == inproc["events"]
    assert procs["mot_recall"] == inproc["mot_recall"]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "tags"), [("ladder", True), ("skills_only", False)])
def test_the_fixed_ladder_knows_the_eq_tags_and_skills_only_does_not(
    tmp_path: Path, mode: str, tags: bool
) -> None:
    """The fixed ladder differs from emotion routing only by not learning from outcomes: it routes on the
    same EQ tags. Skills-only routing registers everyone with one EQ."""
    from router.sim import simulate

    journeys, agents, texts = simulate.plan_day(30, 4, SCENARIOS["day"], tmp_path / "none")
    with open_store("", "fakeredis") as handle:
        rep, _ = simulate.run_mode(
            Settings(scorer="lexicon"),
            handle,
            mode,  # type: ignore[arg-type]
            journeys,
            agents,
            SCENARIOS["day"],
            seed=4,
            workers=0,
            meta={"texts": texts},
            keep_keys=True,
        )
        r = handle.client()
        keys = Keys(rep["domain"])
        registered = {a.agent_id: int(r.hget(keys.agent(a.agent_id), "eq") or 0) for a in agents}
    expected = {a.agent_id: (a.eq if tags else simulate.SKILLS_ONLY_EQ) for a in agents}
    assert registered == expected
    assert len({a.eq for a in agents}) > 1
