"""The report's false-alarm breakdown, on hand-made contacts."""

from __future__ import annotations

import random

from router.sim.floor import ContactTrack
from router.sim.journeys import SimJourney
from router.sim.report import false_alarms
from router.sim.script import Kind


def _track(kind: Kind, sources: tuple[str, ...], flagged: bool, returning: bool = False) -> ContactTrack:
    j = SimJourney(
        contact_id=f"c-{random.random()}",
        customer_id="u",
        kind=kind,
        channel="chat",
        language="en",
        tier="standard",
        start_s=0.0,
        turns=("a",) * len(sources),
        turn_offsets_s=tuple(float(k) for k in range(len(sources))),
        need_turn=None if kind == "routine" else 0,
        button_delay_s=20.0,
        linger_s=30.0,
        patience_s=60.0,
        returning=returning,
        sources=sources,
    )
    return ContactTrack(j, random.Random(0), detected_mot=flagged)


def test_false_alarms_say_which_journeys_they_come_from() -> None:
    tracks = [
        _track("turning", ("en-c-001",), True),  # a hit
        _track("mot", ("en-c-002",), False),  # a miss
        _track("routine", ("en-c-010",), True),  # a replayed routine conversation, flagged
        _track("routine", ("en-c-011",), False),
        _track("routine", ("en-t-0001", "en-t-0002"), True, returning=True),  # stitched single turns
        _track("routine", ("en-t-0003", "en-t-0004", "en-t-0005"), True),
        _track("routine_human", ("en-t-0006", "en-t-0007"), True),
    ]
    got = false_alarms(tracks)
    assert got == {
        "total": 4,
        "routine_replayed": 1,
        "routine_composed": 2,
        "routine_human": 1,
        "returning_customer": 1,
        # replayed journeys flagged: the turning hit and the routine conversation
        "precision_replayed": 0.5,
    }
    assert false_alarms([])["precision_replayed"] is None
