"""Hypothesis strategies shared by the domain tests (``from tests.domain.domain_strategies import ...``)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from router.domain.model import AgentView, ContactView, Trajectory
from router.domain.trajectory import add_turn

# The CI box is small and shared: a per-example deadline would make these properties flaky, not stricter.
PROPERTY = settings(deadline=None, max_examples=150)

CHANNELS = ("chat", "voice")
LANGUAGES = ("en", "de", "fr")
TIERS = ("standard", "gold", "platinum")
AGENT_IDS = tuple(f"a{i}" for i in range(8))
STATUSES = ("new", "self_service", "queued", "offered", "assigned")

unit_floats = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def trajectories(draw: st.DrawFn, max_turns: int = 12) -> Trajectory:
    keep = draw(st.integers(1, 8))  # small windows so the peak often scrolls out of the kept turns
    traj = Trajectory()
    for value in draw(st.lists(unit_floats, max_size=max_turns)):
        traj = add_turn(traj, value, keep=keep)
    return traj


@st.composite
def contacts(draw: st.DrawFn, now: float = 1_000.0) -> ContactView:
    """Contacts enqueued between 0 and 120 s before ``now`` (spans both ladder steps)."""
    topic = draw(st.sampled_from((None, "lost_card", "fraud")))
    return ContactView(
        contact_id=draw(st.sampled_from([f"c{i}" for i in range(20)])),
        channel=draw(st.sampled_from(CHANNELS)),
        language=draw(st.sampled_from(LANGUAGES)),
        tier=draw(st.sampled_from(TIERS)),
        status=draw(st.sampled_from(STATUSES)),
        queue=draw(st.sampled_from((None, "mot", "general"))),
        moment_of_truth=draw(st.booleans()),
        trajectory=draw(trajectories()),
        topic=topic,
        topic_prob=draw(unit_floats) if topic else 0.0,
        wants_human=draw(st.booleans()),
        repeat_contact=draw(st.booleans()),
        enqueued_ts=draw(st.one_of(st.none(), st.floats(now - 120.0, now))),
        last_agent_id=draw(st.one_of(st.none(), st.sampled_from(AGENT_IDS))),
        # declines from 400 s before ``now`` on: remembered (within the 180 s memory) or forgotten
        declined_ms=draw(
            st.dictionaries(
                st.sampled_from(AGENT_IDS),
                st.integers(int(now * 1000) - 400_000, int(now * 1000)),
                max_size=3,
            )
        ),
    )


@st.composite
def agents(draw: st.DrawFn, agent_id: str | None = None) -> AgentView:
    capacity = {ch: draw(st.integers(0, 3)) for ch in CHANNELS}
    # Loads may exceed capacity (a skill edit lowered it): such an agent must never be chosen.
    load = {ch: draw(st.integers(0, capacity[ch] + 1)) for ch in CHANNELS}
    return AgentView(
        agent_id=agent_id or draw(st.sampled_from(AGENT_IDS)),
        eq=draw(st.integers(1, 5)),
        languages=draw(st.frozensets(st.sampled_from(LANGUAGES), max_size=3)),
        capacity=capacity,
        load=load,
        status=draw(st.sampled_from(("available", "available", "away", "offline"))),
        last_assigned_ts=draw(st.sampled_from((0.0, 100.0, 500.0, 900.0))),
        mot_recent=draw(st.integers(0, 10)),
    )


@st.composite
def agent_lists(draw: st.DrawFn, max_size: int = 8) -> list[AgentView]:
    ids = draw(st.lists(st.sampled_from(AGENT_IDS), unique=True, max_size=max_size))
    return [draw(agents(agent_id=i)) for i in ids]
