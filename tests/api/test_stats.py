"""The dashboard's pictures through the API: GET /v1/stats/series (series and KPIs by class), GET
/v1/stats/agents (CSAT on moments of truth against routine, with the EQ suggestion), the KPIs on /metrics,
and GET /v1/agents filtered, sorted and paged for a floor of hundreds."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from router.store.admin import AdminStore
from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import ADMIN, MOT_TEXT, available, drain, message, post, seed_agent, started

pytestmark = pytest.mark.timeout(60)


def _offer(client: TestClient, contact_id: str) -> str:
    items = client.get(f"/v1/decisions?action=offer&contact_id={contact_id}", headers=ADMIN).json()["items"]
    assert items, f"no offer for {contact_id}"
    return str(items[0]["offer_id"])


def _send(client: TestClient, worker: Worker, events: list[dict[str, Any]] | dict[str, Any]) -> None:
    post(client, events)
    drain(worker)


def _sample(store: RoutingStore) -> None:
    assert store.sample_floor(int(time.time() * 1000), 1)
    time.sleep(0.002)  # the next sample is at least a step (1 ms) later


def human(contact_id: str) -> dict[str, Any]:
    return {"type": "contact.human_requested", "contact_id": contact_id}


def accepted(offer_id: str) -> dict[str, Any]:
    return {"type": "offer.accepted", "offer_id": offer_id}


def completed(agent_id: str, contact_id: str) -> dict[str, Any]:
    return {"type": "work.completed", "agent_id": agent_id, "contact_id": contact_id}


@pytest.fixture
def day(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    """One agent and four contacts: a moment of truth served at once; a routine contact queued (announced a
    wait) then served; a routine contact that gives up in the queue; the first customer back, served."""
    seed_agent(store, "a1", eq=5, chat=1)
    _send(client, worker, available("a1"))
    _sample(store)
    _send(client, worker, [started("c1"), message("c1", MOT_TEXT)])
    _send(client, worker, accepted(_offer(client, "c1")))
    _send(client, worker, [started("c2"), human("c2")])
    _send(client, worker, [started("c3"), human("c3")])
    _sample(store)  # c2 and c3 wait in the general queue
    _send(client, worker, {"type": "contact.ended", "contact_id": "c3", "reason": "abandoned"})
    _send(client, worker, completed("a1", "c1"))
    _send(client, worker, accepted(_offer(client, "c2")))
    _send(client, worker, completed("a1", "c2"))
    _send(client, worker, [started("c4", customer={"id": "u-c1", "language": "en"}), human("c4")])
    _send(client, worker, accepted(_offer(client, "c4")))
    _send(client, worker, completed("a1", "c4"))
    _sample(store)
    for cid, csat in (("c1", 5), ("c2", 3), ("c4", 4)):
        body = {"contact_id": cid, "agent_id": "a1", "csat": csat, "resolved": True}
        assert client.post("/v1/outcomes", json=body, headers=ADMIN).status_code == 201


@pytest.mark.usefixtures("day")
def test_series_and_kpis_of_a_small_day(client: TestClient) -> None:
    r = client.get("/v1/stats/series?window_s=3600&interval_s=60", headers=ADMIN)
    assert r.status_code == 200, r.text
    s = r.json()
    n = len(s["t"])
    assert 60 <= n <= 61 and s["t"][1] - s["t"][0] == 60 and s["t"][0] <= s["ts"] - 3_600
    mot, routine = s["waits"]["mot"], s["waits"]["routine"]
    assert sum(mot["answered"]) == 1 and sum(routine["answered"]) == 2
    assert all(len(v) == n for v in (*mot.values(), *routine.values()))
    assert any(x is not None for x in mot["p50_s"]) and any(x is not None for x in routine["p90_s"])
    # c2 was announced a wait while c3 and it queued, and is the one pair drawn
    assert sum(routine["announced"]) == 1 and sum(mot["announced"]) == 0
    (pair,) = s["announced"]
    assert pair["moment_of_truth"] is False and pair["announced_s"] >= 0 and pair["actual_s"] >= 0
    assert max(x for x in s["depth_max"]["general"] if x is not None) == 2
    assert sum(x or 0 for x in s["moments_of_truth"]) == 1
    k_mot, k_routine = s["kpis"]["mot"], s["kpis"]["routine"]
    assert k_mot == {
        "contacts": 1,
        "csat": 5.0,
        "csat_n": 1,
        "first_contact_resolution": 0.0,  # its customer came back (c4)
        "fcr_n": 1,
        "repeat_contact_rate": 0.0,
        "handoffs_per_contact": 0.0,
        "abandonment": 0.0,
        "abandoned": 0,
    }
    assert k_routine["contacts"] == 3 and k_routine["csat"] == 3.5 and k_routine["csat_n"] == 2
    assert k_routine["first_contact_resolution"] == 1.0 and k_routine["fcr_n"] == 2
    assert k_routine["repeat_contact_rate"] == pytest.approx(1 / 3, abs=1e-3)  # c4
    assert k_routine["abandonment"] == pytest.approx(1 / 3, abs=1e-3) and k_routine["abandoned"] == 1
    assert all(src["complete"] for src in s["sources"].values())
    assert s["fcr_window_s"] == 86_400


def test_series_bounds(client: TestClient) -> None:
    r = client.get("/v1/stats/series?window_s=86400&interval_s=60", headers=ADMIN)
    assert r.status_code == 200 and r.json()["interval_s"] == 240  # widened: at most 360 intervals
    assert 360 <= len(r.json()["t"]) <= 361
    assert client.get("/v1/stats/series?window_s=10", headers=ADMIN).status_code == 422
    assert client.get("/v1/stats/series?interval_s=5", headers=ADMIN).status_code == 422
    empty = client.get("/v1/stats/series?window_s=600&interval_s=60", headers=ADMIN).json()
    assert empty["moments_of_truth"] == [None] * len(empty["t"]) and empty["announced"] == []
    assert empty["kpis"]["mot"]["contacts"] == 0 and empty["kpis"]["mot"]["csat"] is None


@pytest.mark.usefixtures("day")
def test_metrics_export_the_kpis_by_class(client: TestClient) -> None:
    text = client.get("/metrics", headers=ADMIN).text
    for line in (
        'router_kpi_contacts{class="mot"} 1.0',
        'router_kpi_contacts{class="routine"} 3.0',
        'router_kpi_csat{class="mot"} 5.0',
        'router_kpi_csat{class="routine"} 3.5',
        'router_kpi_first_contact_resolution{class="mot"} 0.0',
        'router_kpi_first_contact_resolution{class="routine"} 1.0',
        'router_kpi_handoffs_per_contact{class="mot"} 0.0',
        'router_kpi_abandonment_rate{class="mot"} 0.0',
        "router_kpi_window_seconds 3600.0",
        "router_moments_of_truth_total 1.0",
    ):
        assert line in text, line
    assert 'router_kpi_repeat_contact_rate{class="routine"} 0.333' in text
    assert 'router_kpi_abandonment_rate{class="routine"} 0.333' in text


def test_metrics_leave_out_a_kpi_with_nothing_to_measure(client: TestClient) -> None:
    text = client.get("/metrics", headers=ADMIN).text
    assert "# TYPE router_kpi_csat gauge" in text and "router_kpi_csat{" not in text
    assert 'router_kpi_contacts{class="mot"} 0.0' in text


def test_agent_outcomes_put_the_suggested_changes_first(
    client: TestClient, store: RoutingStore, admin_store: AdminStore
) -> None:
    for aid, eq in (("good", 3), ("poor", 4), ("few", 3), ("none", 2)):
        seed_agent(store, aid, eq=eq)
    scores = {"good": [5, 5, 4, 5, 5, 5], "poor": [2, 1, 2, 2, 1, 2], "few": [4]}
    for aid, csats in scores.items():
        for i, csat in enumerate(csats):
            admin_store.record_outcome(
                contact_id=f"{aid}-{i}", agent_id=aid, mot=True, csat=csat, resolved=True, who="t"
            )
            admin_store.record_outcome(
                contact_id=f"{aid}-r{i}", agent_id=aid, mot=False, csat=4, resolved=True, who="t"
            )
    page = client.get("/v1/stats/agents", headers=ADMIN).json()
    assert page["total"] == 3 and "Welch" in page["method"]
    rows = {r["agent_id"]: r for r in page["items"]}
    assert [r["agent_id"] for r in page["items"]][:2] == ["good", "poor"]  # both have a change
    good, poor, few = rows["good"], rows["poor"], rows["few"]
    assert (good["eq"], good["suggested_eq"], good["change"]) == (3, 4, 1)
    assert (poor["suggested_eq"], poor["change"]) == (3, -1)
    assert few["change"] == 0 and "insufficient evidence" in few["reason"]
    lo, hi = good["moments_of_truth"]["ci95"]
    assert lo < good["moments_of_truth"]["mean_csat"] < hi and good["moments_of_truth"]["n"] == 6
    assert good["mot_vs_peers"][0] > 0 and good["mot_difference"] > 0
    assert good["routine"] == {"n": 6, "mean_csat": 4.0, "ci95": [4.0, 4.0]}
    assert few["moments_of_truth"]["ci95"] is None  # one outcome: no interval
    assert [r["agent_id"] for r in client.get("/v1/stats/agents?limit=1", headers=ADMIN).json()["items"]] == [
        "good"
    ]


# ---- the agents table -------------------------------------------------------------------------------------


@pytest.fixture
def floor500(store: RoutingStore) -> None:
    """500 agents: eq 1-5 in turn, every third speaks German, every seventh away, the rest available or
    offline; names say their number."""
    for i in range(500):
        aid = f"ag{i:03d}"
        langs = ["en", "de-AT"] if i % 3 == 0 else ["en"]
        fields = agent_profile_fields(
            name=f"Agent Number {i}", eq=i % 5 + 1, languages=langs, capacity={"chat": 2}, tags=[]
        )
        fields["status"] = "away" if i % 7 == 0 else "available" if i % 2 else "offline"
        assert store.upsert_agent(aid, fields).ok


def _page(client: TestClient, query: str) -> dict[str, Any]:
    r = client.get(f"/v1/agents?{query}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.usefixtures("floor500")
def test_agents_are_paged_with_their_total(client: TestClient) -> None:
    first = _page(client, "")
    assert first["total"] == 500 and first["limit"] == 50 and len(first["items"]) == 50
    assert first["next_offset"] == 50 and first["languages"] == ["de-AT", "en"]
    assert [a["agent_id"] for a in first["items"][:2]] == ["ag000", "ag001"]
    last = _page(client, "offset=450&limit=100")
    assert (
        len(last["items"]) == 50 and last["next_offset"] is None and last["items"][-1]["agent_id"] == "ag499"
    )
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = _page(client, f"limit=120&offset={offset}")
        seen += [a["agent_id"] for a in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 500


@pytest.mark.usefixtures("floor500")
def test_agents_filter_by_name_status_eq_and_language(client: TestClient) -> None:
    hits = _page(client, "q=number%2042")  # a part of the name, any case
    assert [a["agent_id"] for a in hits["items"]] == ["ag042", *(f"ag{i}" for i in range(420, 430))]
    assert _page(client, "q=AG49")["total"] == 10  # ag490..ag499, by id
    away = _page(client, "status=away&limit=500")
    assert away["total"] == len([i for i in range(500) if i % 7 == 0])
    assert {a["status"] for a in away["items"]} == {"away"}
    eq5 = _page(client, "eq=5&limit=500")
    assert eq5["total"] == 100 and {a["eq"] for a in eq5["items"]} == {5}
    assert _page(client, "min_eq=4")["total"] == 200
    german = _page(client, "language=de&limit=500")  # the primary subtag finds de-AT
    assert german["total"] == 167 and all("de-AT" in a["languages"] for a in german["items"])
    assert _page(client, "language=de-AT")["total"] == 167
    both = _page(client, "language=de&eq=1&status=offline&limit=500")
    expect = [i for i in range(500) if i % 3 == 0 and i % 5 == 0 and i % 2 == 0 and i % 7 != 0]
    assert [a["agent_id"] for a in both["items"]] == [f"ag{i:03d}" for i in expect]
    assert _page(client, "q=nobody")["items"] == [] and _page(client, "q=nobody")["next_offset"] is None


@pytest.mark.usefixtures("floor500")
def test_agents_sort_by_a_column_either_way_ties_by_id(client: TestClient) -> None:
    desc = _page(client, "sort=-eq&limit=500")["items"]
    assert [a["eq"] for a in desc] == sorted((a["eq"] for a in desc), reverse=True)
    top = [a["agent_id"] for a in desc if a["eq"] == 5]
    assert top == sorted(top)  # ties by id, ascending, also when the column descends
    by_status = [a["status"] for a in _page(client, "sort=status&limit=500")["items"]]
    assert by_status.index("away") > by_status.index("available") and by_status[-1] == "offline"
    ids = [a["agent_id"] for a in _page(client, "sort=-agent_id&limit=3")["items"]]
    assert ids == ["ag499", "ag498", "ag497"]
    names = [a["name"] for a in _page(client, "sort=name&limit=500")["items"]]
    assert names == sorted(names, key=str.casefold)


@pytest.mark.parametrize(
    "query", ["sort=salary", "limit=0", "limit=501", "offset=-1", "eq=6", "status=busy", "language=e"]
)
def test_bad_agent_queries_are_422(client: TestClient, query: str) -> None:
    assert client.get(f"/v1/agents?{query}", headers=ADMIN).status_code == 422
