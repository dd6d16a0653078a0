"""The agents' side of a benchmark: every offer answered at once, so the floor stays in a steady state."""

from __future__ import annotations

import json
import threading
from typing import Any

import redis

from router.bench.workload import drained, id_key
from router.store.store import RoutingStore


class Responder(threading.Thread):
    """The agents' side of the platform: answers every offer the engine makes with ``offer.accepted``
    (written to the events stream, as a platform would), so no offer waits for its time-out and the floor
    stays in a steady state."""

    def __init__(self, url: str, store: RoutingStore) -> None:
        super().__init__(daemon=True, name="bench-responder")
        self.r = redis.Redis.from_url(url)
        self.events = store.keys.events
        self.decisions = store.keys.decisions
        self.cursor = "0-0"
        self.sent = 0
        self.last_id = "0-0"
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.step(block_ms=50)
        except BaseException as exc:  # surfaced by the caller
            self.error = exc

    def step(self, block_ms: int | None = None) -> int:
        res: Any = self.r.xread({self.decisions: self.cursor}, count=1_000, block=block_ms)
        if not res:
            return 0
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for entry_id, fields in res[0][1]:
            self.cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            d = json.loads(fields[b"decision"])
            if d.get("action") == "offer" and d.get("offer_id"):
                answer = {
                    "type": "offer.accepted",
                    "offer_id": d["offer_id"],
                    "event_id": f"acc-{d['offer_id']}",
                }
                pipe.xadd(self.events, {"event": json.dumps(answer)})
                n += 1
        if n:
            ids = pipe.execute()
            self.last_id = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
            self.sent += n
        return n

    def caught_up(self) -> bool:
        newest: Any = self.r.xrevrange(self.decisions, count=1)
        if not newest:
            return True
        top = newest[0][0]
        return id_key(top.decode() if isinstance(top, bytes) else str(top)) <= id_key(self.cursor)

    def close(self) -> None:
        self.halt.set()
        self.join(5)
        self.r.close()


def settled(r: redis.Redis, stream: str, group: str, last: str, responder: Responder) -> bool:
    """Every backlog entry and every answer handled, and no decision left unanswered."""
    if not responder.caught_up():
        return False
    newest = max(last, responder.last_id, key=id_key)
    return drained(r, stream, group, newest) and responder.caught_up()
