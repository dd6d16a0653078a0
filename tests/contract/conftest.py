"""Fixtures of the contract suite; every test here runs on fakeredis and on a real server (``backend``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from router.settings import Settings
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from router.worker.engine import Engine
from tests.contract.contract_helpers import FakeClock, ScriptedScorer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scorer() -> ScriptedScorer:
    return ScriptedScorer()


@pytest.fixture
def engine(store: RoutingStore, settings: Settings, clock: FakeClock) -> Engine:
    return Engine(store, settings, clock=clock)


@pytest.fixture
def make_worker(
    store: RoutingStore, settings: Settings, scorer: ScriptedScorer, clock: FakeClock
) -> Callable[..., Worker]:
    """A worker on the test's domain: settings overrides as keywords, the fake clock for its engine."""

    def make(consumer: str = "w1", *, real_clock: bool = False, **overrides: Any) -> Worker:
        s = settings.model_copy(update=overrides) if overrides else settings
        w = Worker(store, scorer, s, consumer=consumer, supports_blocking=False)
        if not real_clock:
            w.engine = Engine(store, s, clock=clock)
        w.ensure_group()
        return w

    return make
