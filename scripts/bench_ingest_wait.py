"""What the replication wait costs `POST /v1/events`: latency of 50-event posts with ROUTER_REPLICATION_WAIT
off and wait, against a primary that has a replica (docs/reliability.md, "What the wait costs").

    python scripts/bench_ingest_wait.py redis://127.0.0.1:6379/0 [posts]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid

import httpx

from router.api.serve import ApiServer
from router.settings import Settings
from router.store.connect import open_store

BATCH = 50


def measure(url: str, wait: str, posts: int) -> dict[str, float]:
    domain = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        domain=domain,
        redis_url=url,
        admin_key="bench",
        api_rate_per_s=1e6,
        api_rate_burst=1_000_000,
        replication_wait=wait,
    )
    took_ms: list[float] = []
    with open_store(url) as handle:
        api = ApiServer(settings, handle).start()
        with httpx.Client(timeout=10, headers={"Authorization": "Bearer bench"}) as http:
            for n in range(posts):
                batch = [
                    {
                        "type": "contact.started",
                        "event_id": f"e{n}.{i}",
                        "contact_id": f"c{n}.{i}",
                        "channel": "chat",
                        "customer": {"id": "u"},
                    }
                    for i in range(BATCH)
                ]
                t0 = time.perf_counter()
                res = http.post(api.url + "/v1/events", json=batch)
                took_ms.append((time.perf_counter() - t0) * 1000)
                assert res.status_code == 202, res.text
        api.stop()
    took_ms.sort()
    return {
        "p50_ms": round(statistics.median(took_ms), 2),
        "p99_ms": round(took_ms[int(len(took_ms) * 0.99) - 1], 2),
        "events_per_s": round(BATCH * len(took_ms) / (sum(took_ms) / 1000)),
    }


def main() -> None:
    url, posts = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
    out: dict[str, list[dict[str, float]]] = {}
    for wait in ("off", "wait", "off", "wait"):  # interleaved: the machine drifts
        out.setdefault(wait, []).append(measure(url, wait, posts))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
