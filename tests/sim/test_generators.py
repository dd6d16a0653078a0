"""The simulator's generators, deterministic under a seed: arrivals, text pools, journeys, the floor."""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from router.sim.agents import (
    EQ_MIX,
    Load,
    agents_for,
    build_floor,
    eq_for,
    erlang_c,
    handle_time_s,
    offered_erlangs,
    peak_loads,
    size_floor,
)
from router.sim.arrivals import SCENARIOS, Burst, Scenario, arrival_times, hourly_weights
from router.sim.journeys import build_journeys
from router.sim.pool_lines import PoolLines
from router.sim.texts import DEFAULT_DATA_DIR, bundled_pools, load_pools

DAY = SCENARIOS["day"]
BURST = SCENARIOS["burst"]


# ------------------------------------------------------------------------------------------------ arrivals
def test_arrivals_are_seeded_sorted_and_inside_opening_hours() -> None:
    a = arrival_times(500, random.Random(1), DAY)
    b = arrival_times(500, random.Random(1), DAY)
    assert a == b
    assert len(a) == 500
    ts = [x.t_s for x in a]
    assert ts == sorted(ts)
    assert ts[0] >= 0 and ts[-1] < DAY.span_s
    assert not any(x.burst for x in a)
    assert arrival_times(500, random.Random(2), DAY) != a


def test_arrivals_follow_the_time_of_day_profile() -> None:
    a = arrival_times(20_000, random.Random(3), DAY)
    per_hour = Counter(int(x.t_s // 3600) + DAY.open_h for x in a)
    weights = hourly_weights(DAY)
    total = sum(weights)
    for h in range(DAY.open_h, DAY.close_h):
        expected = 20_000 * weights[h] / total
        assert abs(per_hour[h] - expected) < 5 * expected**0.5 + 5, (h, per_hour[h], expected)
    assert per_hour[11] > 2 * per_hour[8]  # the morning peak against the opening hour


def test_burst_puts_its_share_in_its_window() -> None:
    burst = Burst(start_h=10.0, duration_h=1.0, share=0.25)
    sc = Scenario("b", burst=burst)
    a = arrival_times(1_000, random.Random(4), sc)
    marked = [x for x in a if x.burst]
    assert len(marked) == 250
    lo, hi = (10.0 - sc.open_h) * 3600, (11.0 - sc.open_h) * 3600
    assert all(lo <= x.t_s <= hi for x in marked)
    first_third = sum(1 for x in marked if x.t_s < lo + (hi - lo) / 3)
    assert first_third > len(marked) / 4  # a triangle peaking a third in: the surge ramps up fast


# ------------------------------------------------------------------------------------------------ texts
def test_bundled_pools_when_the_data_folder_is_missing(tmp_path: Path) -> None:
    pools = load_pools(tmp_path / "absent")
    assert pools.source == "bundled"
    assert pools == bundled_pools()
    assert all(pools.sizes()[k] > 0 for k in ("routine", "mot", "storm", "turning", "human"))
    assert all("flight" in t.lower() for t in pools.storm)


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "airline_tweets").exists(), reason="../shared/data not present")
def test_pools_from_shared_data_are_clean_and_stable() -> None:
    pools = load_pools()
    assert pools.source == "shared-data"
    assert set(pools.sources) >= {"airline_tweets", "banking77_test", "clinc150_test", "bitext"}
    for name, pool in (("routine", pools.routine), ("mot", pools.mot), ("storm", pools.storm)):
        assert len(pool) > 500, name
        assert list(pool) == sorted(set(pool)), name  # de-duplicated and ordered: seeds pick the same lines
    assert set(pools.storm) <= set(pools.mot)
    assert not any(re.search(r"@\w|https?://|&amp;", t) for t in pools.mot)
    assert not any("Cancelled Flightled" in t for t in pools.mot)  # the Kaggle reason leak is undone
    assert load_pools() == pools


# ------------------------------------------------------------------------------------------------ journeys
def test_bundled_journeys_are_seeded_and_carry_their_ground_truth() -> None:
    pools = bundled_pools()
    js = build_journeys(400, random.Random(5), PoolLines(pools), DAY)
    assert js == build_journeys(400, random.Random(5), PoolLines(pools), DAY)
    assert [j.contact_id for j in js] == [f"c{i:05d}" for i in range(400)]
    kinds = Counter(j.kind for j in js)
    assert set(kinds) == {"routine", "routine_human", "mot", "turning"}
    assert kinds["routine"] > kinds["mot"] > 0
    for j in js:
        assert list(j.turn_offsets_s) == sorted(j.turn_offsets_s) and j.turn_offsets_s[0] > 0
        assert len(j.turns) == len(j.turn_offsets_s)
        assert j.patience_s >= 15.0
        assert j.language == "en" and j.sources == ()  # the bundled lines are English, from no corpus
        if j.kind == "routine":
            assert j.need_turn is None and not j.truth_mot and not j.needs_human
            assert all(t in pools.routine for t in j.turns)
        elif j.kind == "routine_human":
            assert j.need_turn == 1 and j.turns[1] in pools.human and not j.truth_mot
        elif j.kind == "mot":
            assert j.need_turn is not None and j.turns[j.need_turn] in pools.mot and j.truth_mot
        else:
            assert j.need_turn == 2 and j.turns[2] in pools.turning and j.truth_mot
            assert j.turns[0] in pools.routine and j.turns[1] in pools.routine


def test_callback_takers_are_their_own_draw() -> None:
    """The share of customers who would take a callback moves no other draw of the day."""
    pools = PoolLines(bundled_pools())
    half = build_journeys(1_000, random.Random(8), pools, DAY, callback_accept_share=0.5)
    none = build_journeys(1_000, random.Random(8), pools, DAY, callback_accept_share=0.0)
    every = build_journeys(1_000, random.Random(8), pools, DAY, callback_accept_share=1.0)
    assert [replace(j, accepts_callback=False) for j in half] == none
    assert not any(j.accepts_callback for j in none) and all(j.accepts_callback for j in every)
    assert 0.45 < sum(j.accepts_callback for j in half) / len(half) < 0.55


def test_returning_customers_come_back_after_their_first_contact() -> None:
    js = build_journeys(1_000, random.Random(6), PoolLines(bundled_pools()), DAY)
    first_start: dict[str, float] = {}
    returning = 0
    for j in js:
        if j.returning:
            returning += 1
            assert j.customer_id in first_start
            assert j.start_s - first_start[j.customer_id] >= 1_200.0
        else:
            assert j.customer_id not in first_start  # a new customer id each time
        first_start.setdefault(j.customer_id, j.start_s)
    assert 60 < returning < 180  # about 12%


def test_bundled_burst_journeys_are_storm_moments_of_truth() -> None:
    pools = bundled_pools()
    js = build_journeys(1_000, random.Random(7), PoolLines(pools), BURST)
    burst = [j for j in js if j.burst]
    assert len(burst) == 300
    mot = [j for j in burst if j.kind == "mot"]
    assert len(mot) > 0.75 * len(burst)
    assert all(j.turns[j.need_turn or 0] in pools.storm for j in mot)
    assert not any(j.returning for j in burst)


# ------------------------------------------------------------------------------------------------ floor
@pytest.mark.parametrize("n", [3, 8, 14, 20, 57])
def test_eq_mix_keeps_high_eq_scarce_but_present(n: int) -> None:
    eqs = eq_for(n)
    assert len(eqs) == n
    counts = Counter(eqs)
    assert counts[5] >= 1 and counts[4] >= 1
    if n >= 10:
        for eq, share in EQ_MIX:
            assert abs(counts[eq] - share * n) <= 1.5, (eq, counts[eq], share * n)


def test_floor_is_seeded_sized_for_the_usual_day_and_mixes_profiles() -> None:
    js = build_journeys(2_000, random.Random(8), PoolLines(bundled_pools()), BURST)
    usual = [j for j in js if not j.burst]
    assert offered_erlangs(js, BURST) == offered_erlangs(usual, BURST)  # the storm is not staffed for
    n_voice, n_digital = size_floor(js, BURST)
    assert n_voice >= 2 and n_digital >= 2
    floor = build_floor(n_voice, n_digital, random.Random(9), BURST)
    assert floor == build_floor(n_voice, n_digital, random.Random(9), BURST)
    assert sum(1 for a in floor if a.profile == "voice") == n_voice
    assert len({a.agent_id for a in floor}) == len(floor)
    assert all("en" in a.languages for a in floor)
    for profile in ("voice", "digital"):
        assert max(a.eq for a in floor if a.profile == profile) >= 4
    for a in floor:
        assert a.breaks and all(s > 0 and s + d < BURST.span_s for s, d in a.breaks)


def test_handle_time_is_seeded_and_empathy_shortens_moments_of_truth() -> None:
    js = build_journeys(300, random.Random(10), PoolLines(bundled_pools()), DAY)
    mot = next(j for j in js if j.kind == "mot" and j.channel == "chat")
    assert handle_time_s(mot, 5, random.Random(1)) == handle_time_s(mot, 5, random.Random(1))
    assert handle_time_s(mot, 5, random.Random(1)) < handle_time_s(mot, 1, random.Random(1))
    routine = next(j for j in js if j.kind == "routine" and j.channel == "chat")
    assert handle_time_s(routine, 5, random.Random(1)) == handle_time_s(routine, 1, random.Random(1))


def test_erlang_c_and_the_agents_it_asks_for() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # textbook value
    assert erlang_c(1, 0.5) == pytest.approx(0.5) and erlang_c(3, 3.0) == 1.0 and erlang_c(4, 0.0) == 0.0
    load = Load(erlangs=1.0, work_s=300.0)
    n = agents_for(load)
    assert n == 3  # two answer only 69% within 20 s
    assert agents_for(load, share=0.95) > n and agents_for(Load(0.0, 0.0)) == 0


def test_the_floor_has_the_high_eq_agents_its_moments_of_truth_need() -> None:
    js = build_journeys(2_000, random.Random(8), PoolLines(bundled_pools()), DAY)
    n_voice, n_digital = size_floor(js, DAY)
    mot = peak_loads(js, DAY, mot_only=True)
    floor = build_floor(n_voice, n_digital, random.Random(9), DAY)
    for profile, n in (("voice", n_voice), ("digital", n_digital)):
        high = sum(1 for a in floor if a.profile == profile and a.eq >= 4)
        assert n >= agents_for(peak_loads(js, DAY)[profile])
        assert high >= agents_for(mot[profile]) - 1  # a quarter of the profile, dealt by largest remainder
