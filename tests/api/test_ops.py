"""Dead letters, outcomes and suggested skills, metrics, health and readiness, an unreachable store."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.api import create_app
from router.api.outcome_stats import compare, suggest, t_cdf, t_quantile, t_two_sided_p, wilson
from router.domain.wait_band import MIN_CHECKS
from router.settings import Settings
from router.store.admin import AdminStore, Aggregate
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import (
    ADMIN,
    MOT_TEXT,
    available,
    bearer,
    drain,
    message,
    post,
    seed_agent,
    started,
)

pytestmark = pytest.mark.timeout(60)


# ---- dead letters ---------------------------------------------------------------------------------------


def _poison(client: TestClient, store: RoutingStore, worker: Worker) -> list[str]:
    """Two dead letters: one still invalid, one whose payload is valid (it failed for another reason)."""
    store.client.xadd(store.keys.events, {"event": b"{not json"})
    drain(worker)
    valid = json.dumps(started("c-replay"))
    store.deadletter(
        worker.group,
        "0-1",
        {
            "stream_id": "0-1",
            "payload": valid,
            "error": "too_many_deliveries",
            "deliveries": "6",
            "consumer": "w9",
            "ts": "1.5",
        },
    )
    return [e["id"] for e in client.get("/v1/deadletters", headers=ADMIN).json()["items"]]


def test_list_inspect_and_count_dead_letters(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    ids = _poison(client, store, worker)
    page = client.get("/v1/deadletters", headers=ADMIN).json()
    assert page["count"] == 2 and len(ids) == 2
    newest = page["items"][0]
    assert newest["error"] == "too_many_deliveries" and newest["deliveries"] == 6 and "payload" not in newest
    one = client.get(f"/v1/deadletters/{ids[1]}", headers=ADMIN).json()
    assert one["payload"] == "{not json" and one["error"].startswith("invalid_json")
    assert client.get("/v1/deadletters/1-1", headers=ADMIN).status_code == 404
    assert client.get("/v1/deadletters/not-an-id", headers=ADMIN).status_code == 422
    assert client.get("/v1/overview", headers=ADMIN).json()["deadletter_backlog"] == 2
    first = client.get("/v1/deadletters?limit=1", headers=ADMIN).json()
    assert first["next_before"] == ids[0]
    assert [
        e["id"] for e in client.get(f"/v1/deadletters?before={ids[0]}", headers=ADMIN).json()["items"]
    ] == ids[1:]


def test_replay_one_validates_again(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    good, bad = _poison(client, store, worker)  # newest first: the valid payload, then the broken one
    r = client.post(f"/v1/deadletters/{bad}/replay", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "still_invalid"
    r = client.post(f"/v1/deadletters/{good}/replay", headers=ADMIN)
    assert r.status_code == 202
    assert client.get(f"/v1/deadletters/{good}", headers=ADMIN).status_code == 404
    assert client.post(f"/v1/deadletters/{good}/replay", headers=ADMIN).status_code == 404
    drain(worker)
    assert client.get("/v1/contacts/c-replay", headers=ADMIN).status_code == 200
    assert store.stats()["replayed"] == 1


def test_replay_all_and_discard(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    ids = _poison(client, store, worker)
    rep = client.post("/v1/deadletters/replay", headers=ADMIN).json()
    assert [x["id"] for x in rep["replayed"]] == [ids[0]]
    assert [x["id"] for x in rep["still_invalid"]] == [ids[1]] and rep["remaining"] == 1
    assert client.delete(f"/v1/deadletters/{ids[1]}", headers=ADMIN).status_code == 204
    assert client.delete(f"/v1/deadletters/{ids[1]}", headers=ADMIN).status_code == 404
    assert client.get("/v1/deadletters", headers=ADMIN).json()["count"] == 0
    assert client.post("/v1/deadletters/replay?limit=0", headers=ADMIN).status_code == 422


def test_replay_all_replays_what_was_there_once(
    client: TestClient, store: RoutingStore, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a worker dead-letters the replayed events again while the call runs; the call replayed
    those new dead letters too (two events six times each). It replays what was there at its start, once."""
    for agent in ("ghost1", "ghost2"):  # valid events the worker dead-letters: no such agent
        event = {"type": "agent.status", "agent_id": agent, "status": "available"}
        store.client.xadd(store.keys.events, {"event": json.dumps(event)})
    drain(worker)
    before = [e["id"] for e in client.get("/v1/deadletters", headers=ADMIN).json()["items"]]
    assert len(before) == 2
    replay = AdminStore.replay

    def replay_and_work(self: AdminStore, entry_id: str, payload: str) -> str | None:
        sid = replay(self, entry_id, payload)
        drain(worker)  # a worker takes the replayed event at once and dead-letters it again
        return sid

    monkeypatch.setattr(AdminStore, "replay", replay_and_work)
    rep = client.post("/v1/deadletters/replay", headers=ADMIN).json()
    assert sorted(x["id"] for x in rep["replayed"]) == sorted(before)
    assert rep["remaining"] == 2 and store.stats()["replayed"] == 2
    after = [e["id"] for e in client.get("/v1/deadletters", headers=ADMIN).json()["items"]]
    assert not set(after) & set(before)  # the new dead letters wait for the next call


# ---- outcomes and suggested skills ----------------------------------------------------------------------


def _served(client: TestClient, store: RoutingStore, worker: Worker, cid: str, text: str = MOT_TEXT) -> str:
    post(client, [started(cid), message(cid, text)])
    drain(worker)
    return str(client.get(f"/v1/contacts/{cid}", headers=ADMIN).json()["agent_id"])


def test_post_outcome(client: TestClient, store: RoutingStore, worker: Worker) -> None:
    seed_agent(store, "a1", eq=5)
    post(client, [available("a1")])
    assert _served(client, store, worker, "c1") == "a1"
    r = client.post(
        "/v1/outcomes",
        json={"contact_id": "c1", "agent_id": "a1", "csat": 5, "resolved": True},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    assert r.json()["moment_of_truth"] is True and r.json()["outcome_id"]
    again = client.post(
        "/v1/outcomes",
        json={"contact_id": "c1", "agent_id": "a1", "csat": 1, "resolved": False},
        headers=ADMIN,
    )
    assert again.status_code == 409 and again.json()["error"] == "duplicate_outcome"
    other = client.post(
        "/v1/outcomes",
        json={"contact_id": "c1", "agent_id": "a2", "csat": 3, "resolved": True},
        headers=ADMIN,
    )
    assert other.status_code == 409 and other.json()["error"] == "agent_not_on_contact"
    missing = client.post(
        "/v1/outcomes",
        json={"contact_id": "zz", "agent_id": "a1", "csat": 3, "resolved": True},
        headers=ADMIN,
    )
    assert missing.status_code == 404
    for bad in (
        {"contact_id": "c1", "agent_id": "a1", "csat": 6, "resolved": True},
        {"contact_id": "c1", "agent_id": "a1", "csat": 3},
        {"contact_id": "c1", "agent_id": "a1", "csat": 3, "resolved": "yes"},
    ):
        assert client.post("/v1/outcomes", json=bad, headers=ADMIN).status_code == 422
    s = client.get("/v1/agents/a1/suggested-skills", headers=ADMIN).json()
    assert s["moments_of_truth"]["agent"]["n"] == 1 and s["moments_of_truth"]["agent"]["mean_csat"] == 5.0


def _seed_outcomes(admin: AdminStore, agent: str, scores: list[int], mot: bool = True) -> None:
    for i, csat in enumerate(scores):
        admin.record_outcome(
            contact_id=f"{agent}-{i}-{mot}", agent_id=agent, mot=mot, csat=csat, resolved=csat >= 4, who="t"
        )


def test_suggested_skills_up_down_and_insufficient(
    client: TestClient, store: RoutingStore, admin_store: AdminStore
) -> None:
    for aid, eq in (("star", 3), ("weak", 5), ("new", 3), ("peer", 3)):
        seed_agent(store, aid, eq=eq)
    _seed_outcomes(admin_store, "star", [5, 5, 4, 5, 5, 5, 4, 5])
    _seed_outcomes(admin_store, "weak", [2, 1, 2, 3, 2, 2, 1, 2])
    _seed_outcomes(admin_store, "peer", [3, 4, 3, 4, 3, 4, 3, 4, 3, 4])
    _seed_outcomes(admin_store, "new", [5, 5])
    _seed_outcomes(admin_store, "star", [3, 3, 3], mot=False)
    up = client.get("/v1/agents/star/suggested-skills", headers=ADMIN).json()
    assert up["current_eq"] == 3 and up["suggested_eq"] == 4 and up["change"] == 1 and up["applied"] is False
    ev = up["moments_of_truth"]
    assert ev["agent"]["n"] == 8 and ev["peers"]["n"] == 20 and ev["difference"] > 0
    assert ev["ci95"][0] > 0 and 0 <= ev["p_value"] < 0.05 and ev["df"] > 1
    assert up["routine"]["agent"]["n"] == 3 and "Welch" in up["method"]
    down = client.get("/v1/agents/weak/suggested-skills", headers=ADMIN).json()
    assert down["suggested_eq"] == 4 and down["moments_of_truth"]["ci95"][1] < 0
    few = client.get("/v1/agents/new/suggested-skills", headers=ADMIN).json()
    assert few["suggested_eq"] == 3 and "insufficient" in few["reason"]
    # a suggestion is never applied
    assert client.get("/v1/agents/star", headers=ADMIN).json()["eq"] == 3
    assert client.get("/v1/agents/nobody/suggested-skills", headers=ADMIN).status_code == 404


def _post_outcome(client: TestClient, cid: str, agent_id: str, csat: int) -> None:
    body = {"contact_id": cid, "agent_id": agent_id, "csat": csat, "resolved": csat >= 4}
    r = client.post("/v1/outcomes", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text


def test_posted_outcomes_teach_the_router_who_serves_moments_of_truth_best(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    """Outcomes posted through the API, and nothing else, move outcome-aware matching off the EQ tags: the
    eq 5 agent whose moments of truth end badly loses them to the eq 4 agent whose end well."""
    seed_agent(store, "tag5", eq=5, chat=1)
    seed_agent(store, "good4", eq=4, chat=1)
    post(client, [available("tag5"), available("good4")])
    served: dict[str, int] = {"tag5": 0, "good4": 0}
    for i in range(12):
        cid = f"m{i}"
        agent = _served(client, store, worker, cid)
        served[agent] += 1
        _post_outcome(client, cid, agent, 1 if agent == "tag5" else 5)
        post(client, [{"type": "work.completed", "agent_id": agent, "contact_id": cid}])
        drain(worker)
    snapshot, _ = store.agent_snapshot(int(time.time() * 1000), 3_600_000, outcomes=True)
    tallies = {a.agent_id: a.outcomes for a in snapshot}
    assert tallies["tag5"]["mot"].n == served["tag5"] >= 1
    assert tallies["good4"]["mot|channel=chat"].n == served["good4"]
    assert tallies["good4"]["mot"].csat_sum == 5 * served["good4"]
    # the tag first, then the record: the last moments of truth all went to good4
    assert _served(client, store, worker, "first-after") == "good4"
    offer = [d for d in store.history("first-after") if d["action"] == "offer"][-1]
    assert any("chose good4: expected CSAT" in r["text"] for r in offer["reasons"])


def test_outcome_statistics_match_reference_values() -> None:
    # two-sided p of t=2.0 with 5 df is 0.10194 (tables); Wilson 7/10 is (0.3968, 0.8922)
    assert t_two_sided_p(2.0, 5) == pytest.approx(0.10194, abs=1e-5)
    assert wilson(7, 10) == pytest.approx((0.39678, 0.89221), abs=1e-4)
    # t quantiles (tables): 12.7062 (1 df), 2.2281 (10 df), 1.9600 (many); symmetric, and the CDF's inverse
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-4)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.9600, abs=1e-4)
    for p, df in ((0.01, 3.3), (0.3, 17.0), (0.999, 2.5)):
        assert t_quantile(p, df) == pytest.approx(-t_quantile(1 - p, df), abs=1e-8)
        assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)
    a = [5, 4, 5, 5, 4, 5]
    b = [3, 4, 2, 3, 4, 3, 3]
    agg = lambda xs: Aggregate(len(xs), sum(xs), sum(x * x for x in xs), 0)  # noqa: E731
    c = compare(agg(a), agg(b))
    scipy_stats = pytest.importorskip("scipy.stats")
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert c.welch_t == pytest.approx(ref.statistic) and c.p_value == pytest.approx(ref.pvalue)
    lo, hi = ref.confidence_interval()
    assert c.ci95 == pytest.approx((lo, hi))
    assert suggest(3, c)[0] == 4


# ---- health, readiness, metrics -------------------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient, worker: Worker) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["group"]["ok"] is True


def test_readyz_and_the_dashboard_count_live_workers(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    """Issue 14: three consumers, two of them dead workers: "Workers 3" is wrong, one is alive."""
    for i, name in enumerate(("dead1", "dead2", "alive")):
        store.client.xadd(store.keys.events, {"event": json.dumps(started(f"c{i}"))})
        store.client.xreadgroup(worker.group, name, {store.keys.events: ">"}, count=1)
    store.heartbeat("dead1", int(time.time() * 1000) - 3_600_000)  # silent for an hour
    store.heartbeat("alive", int(time.time() * 1000))
    assert client.get("/v1/overview", headers=ADMIN).json()["workers"] == 1
    assert "router_workers_live 1.0" in client.get("/metrics", headers=ADMIN).text
    detail = client.get("/readyz").json()["checks"]["group"]["detail"]
    assert detail == f"group {worker.group}: 3 consumers, 1 live workers"


def test_readyz_without_group_is_503(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["group"]["ok"] is False


def test_metrics_export_store_decisions_latency_and_requests(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    seed_agent(store, "a1", eq=5, chat=1)
    post(client, [available("a1"), started("c1", event_id="s1"), message("c1", MOT_TEXT, event_id="m1")])
    post(client, [started("c2"), message("c2", MOT_TEXT)])  # no event_id: the stream id is the arrival time
    store.client.xadd(store.keys.events, {"event": b"{bad"})
    drain(worker)
    text = client.get("/metrics", headers=ADMIN).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples["router_store_up"] == 1
    assert samples["router_events_processed_total"] >= 5 and samples["router_dead_letters_total"] == 1
    assert samples['router_queue_depth{queue="mot"}'] == 1
    assert samples["router_offers_pending"] == 1 and samples["router_deadletter_backlog"] == 1
    assert samples['router_decisions_observed_total{action="offer"}'] == 1
    assert samples['router_offer_outcomes_observed_total{outcome="offered"}'] == 1
    assert samples["router_moments_of_truth_observed_total"] >= 2
    assert samples["router_decision_latency_seconds_count"] >= 3
    assert samples['router_agents{status="available"}'] == 1 and samples["router_worker_consumers"] == 1
    assert any(k.startswith("router_api_requests_total{") for k in samples)
    assert samples["router_ewt_checked_total"] == 0  # nobody announced a wait was accepted yet
    # incremental: a second scrape counts only new decisions
    again = client.get("/metrics", headers=ADMIN).text
    assert 'router_decisions_observed_total{action="offer"} 1.0' in again


def test_metrics_give_announced_against_actual_waits(client: TestClient, store: RoutingStore) -> None:
    """The offer script's counters (tests/contract: test_an_acceptance_measures_...) in seconds."""
    counters = {"ewt_checked": 4, "ewt_abs_error_ms": 30_500, "ewt_actual_ms": 122_000, "ewt_inside_band": 3}
    store.client.hset(store.keys.stats, mapping=counters)
    text = client.get("/metrics", headers=ADMIN).text
    for line in ("router_ewt_checked_total 4.0", "router_ewt_abs_error_seconds_total 30.5"):
        assert line in text
    assert "router_ewt_actual_wait_seconds_total 122.0" in text and "router_ewt_inside_band_total 3.0" in text
    assert "router_ewt_band_checks 0.0" in text and 'router_ewt_band_factor{end="high"} 1.0' in text


def test_metrics_say_how_far_the_bands_are_moved_from_the_models(
    client: TestClient, store: RoutingStore
) -> None:
    """Thirty waits lived at three times the model's high end (+1 s): the high end is moved by 3."""
    store.client.lpush(store.keys.ewt_bands, *["10.0|20.0|62.0"] * MIN_CHECKS, "not a check")
    text = client.get("/metrics", headers=ADMIN).text
    assert f"router_ewt_band_checks {float(MIN_CHECKS)}" in text
    assert 'router_ewt_band_factor{end="high"} 3.0' in text


def test_metrics_need_a_read_key_unless_public(make_app: Callable[..., object], client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    with TestClient(make_app(api_metrics_public=True)) as c:  # type: ignore[arg-type]
        assert c.get("/metrics").status_code == 200


# ---- an unreachable store ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a hung Redis."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    for c in conns:
        c.close()
    srv.close()


@pytest.mark.parametrize("kind", ["refused", "hung"])
def test_unreachable_store_is_a_fast_503(
    kind: str, request: pytest.FixtureRequest, key_for: Callable[..., str]
) -> None:
    port = _closed_port() if kind == "refused" else request.getfixturevalue("silent_server")
    settings = Settings(domain="down", admin_key=SecretStr("adm"), api_redis_timeout_s=0.3)
    app = create_app(settings, StoreHandle(url=f"redis://127.0.0.1:{port}/0", supports_blocking=True))
    with TestClient(app) as c:
        for method, path in (("GET", "/v1/agents"), ("GET", "/v1/queues"), ("POST", "/v1/events")):
            t0 = time.monotonic()
            body = started("c1") if method == "POST" else None
            r = c.request(method, path, headers=bearer("adm"), json=body)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["error"] == "store_unavailable"
            assert time.monotonic() - t0 < 1.5
        # an API key (not the admin key) needs the store to be checked: 503, not 401
        assert c.get("/v1/queues", headers=bearer("mr_0123456789ab_whatever")).status_code == 503
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["redis"]["ok"] is False
        assert "router_store_up 0.0" in c.get("/metrics", headers=bearer("adm")).text
        assert c.get("/healthz").status_code == 200


def test_a_cluster_with_no_node_reachable_is_a_503_and_not_ready(
    client: TestClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mid-failover a cluster client can find no node at all: redis-py raises RedisClusterUnreachableError,
    which is not a RedisError. It is an outage like the others: 503 with the reason, and /readyz answers
    not ready (a chaos run of a cluster failover once got a 500 with no body from /readyz)."""

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise redis.exceptions.RedisClusterUnreachableError("no node of the cluster answers")

    monkeypatch.setattr(redis.Redis, "execute_command", unreachable)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["redis"]["ok"] is False
    r = client.get("/v1/agents", headers=ADMIN)
    assert r.status_code == 503 and r.json()["error"] == "store_unavailable"
