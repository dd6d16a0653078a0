"""The benchmark's backlog: whole contacts interleaved as on a floor, its texts, its agents, and loading,
draining and clearing it on the server."""

from __future__ import annotations

import json
import random
from typing import Any

import redis

from router.settings import Settings
from router.store.codec import agent_profile_fields
from router.store.store import RoutingStore

TURNS_PER_CONTACT = 4  # contact.started, 4 customer messages, contact.ended: 6 events, 4 of them scored
WINDOW = 300  # contacts interleaved in the backlog, so that one contact's events are far apart
BENCH_AGENTS = 60
# Enough seats for the ~300 open contacts: the benchmark measures the engine in a steady state, not a floor
# that falls behind (agents never answer offers here, so a seat is held until the contact ends). An
# overloaded floor is what `router simulate --scenario burst` is for.
BENCH_CAPACITY = {"chat": 6, "voice": 2, "email": 6}
MOT_SHARE = 0.25  # contacts that open with a moment of truth; the rest are routine (mostly self-service)


def workload(
    contacts: int, routine: list[str], mot: list[str], seed: int = 7, mot_share: float = MOT_SHARE
) -> list[dict[str, Any]]:
    """A backlog of whole contacts (start, customer turns, end), ``WINDOW`` of them interleaved, so the
    engine sees contacts in every state at once, as on a floor. ``mot_share`` of the contacts open with
    two moment-of-truth lines, the rest are routine; ``routine`` and ``mot`` are used in order (cycling
    only when too short), so distinct lists give the scorer no cache hits. With fewer than ``WINDOW``
    contacts, one contact's events are only ``contacts`` entries apart: several workers may then take a
    contact's end before its start (a dead letter), so benchmarks use more."""
    rng = random.Random(seed)
    channels = ("chat", "chat", "chat", "voice", "email")
    per: list[list[dict[str, Any]]] = []
    k_routine = k_mot = 0
    for i in range(contacts):
        lines: list[str] = []
        is_mot = rng.random() < mot_share
        for seq in range(TURNS_PER_CONTACT):
            if is_mot and seq < 2:
                lines.append(mot[k_mot % len(mot)])
                k_mot += 1
            else:
                lines.append(routine[k_routine % len(routine)])
                k_routine += 1
        cid = f"c{i:06d}"
        evs: list[dict[str, Any]] = [
            {
                "type": "contact.started",
                "contact_id": cid,
                "channel": rng.choice(channels),
                "customer": {"id": f"u{i:06d}", "language": "en", "tier": "standard"},
            }
        ]
        for seq in range(TURNS_PER_CONTACT):
            evs.append(
                {
                    "type": "contact.message",
                    "contact_id": cid,
                    "seq": seq,
                    "speaker": "customer",
                    "text": lines[seq],
                }
            )
        evs.append({"type": "contact.ended", "contact_id": cid, "reason": "resolved"})
        per.append(evs)
    # contact i's step k goes to slot i + k * WINDOW: a pipeline in which about WINDOW contacts are open
    # at once and two events of one contact are always at least WINDOW entries apart
    slots = sorted(
        ((i + k * WINDOW, -k, i) for i in range(contacts) for k in range(TURNS_PER_CONTACT + 2)),
    )
    out = [per[i][-k] for _, k, i in slots]
    return [{**e, "event_id": f"e{n}"} for n, e in enumerate(out)]


def texts_for_bench(seed: int = 7) -> tuple[list[str], list[str]]:
    """(routine, moment-of-truth) customer lines, shuffled: the simulator's pools from ../shared/data
    (real airline tweets, Banking77, CLINC150, Bitext), or the bundled corpus."""
    from router.sim.texts import load_pools

    pools = load_pools()
    rng = random.Random(seed)
    routine, mot = list(pools.routine), list(pools.mot)
    rng.shuffle(routine)
    rng.shuffle(mot)
    return routine, mot


def scorer_bench_texts(contacts: int) -> tuple[list[str], list[str]]:
    """For (c): (routine, moment-of-truth) lists cut from the very messages (d) scores (distinct airline
    tweets, ``router.scoring.bench.bench_messages``), so that c / d compares texts of the same lengths;
    the two lists are disjoint and long enough that no text repeats (no cache hits)."""
    from router.scoring.bench import bench_messages

    texts = bench_messages(contacts * TURNS_PER_CONTACT * 3 // 2)
    cut = len(texts) * 3 // 10
    return texts[cut:], texts[:cut]


def prepare_domain(r: redis.Redis, settings: Settings) -> RoutingStore:
    store = RoutingStore(r, settings.domain, seen_ttl_s=settings.seen_ttl_s)
    for i in range(BENCH_AGENTS):
        fields = agent_profile_fields(
            name=f"Bench agent {i}",
            eq=1 + i % 5,
            languages=["en"],
            capacity=BENCH_CAPACITY,
            tags=[],
        )
        store.upsert_agent(f"a{i:03d}", fields)
    r.xgroup_create(store.keys.events, settings.group, id="0", mkstream=True)
    pipe = r.pipeline(transaction=False)
    for i in range(BENCH_AGENTS):
        pipe.xadd(
            store.keys.events,
            {
                "event": json.dumps(
                    {
                        "type": "agent.status",
                        "agent_id": f"a{i:03d}",
                        "status": "available",
                        "event_id": f"s{i}",
                    }
                )
            },
        )
    pipe.execute()
    return store


def load_backlog(r: redis.Redis, stream: str, events: list[dict[str, Any]]) -> str:
    last = "0-0"
    for i in range(0, len(events), 500):
        pipe = r.pipeline(transaction=False)
        for e in events[i : i + 500]:
            pipe.xadd(stream, {"event": json.dumps(e)})
        ids = pipe.execute()
        last = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
    return last


def clear_domain(r: redis.Redis, domain: str) -> None:
    keys = list(r.scan_iter(match=f"router:{{{domain}}}:*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def drained(r: redis.Redis, stream: str, group: str, last_id: str) -> bool:
    for g in r.xinfo_groups(stream):
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            ld = g["last-delivered-id"]
            ld = ld.decode() if isinstance(ld, bytes) else str(ld)
            return int(g["pending"]) == 0 and id_key(ld) >= id_key(last_id)
    return False
