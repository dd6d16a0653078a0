"""Fixtures of the API suite: an app over a fresh in-process fakeredis store, the admin key, scoped keys,
and an in-process worker that routes what the API posts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import fakeredis
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.api import create_app
from router.scoring.lexicon import LexiconScorer
from router.settings import Settings
from router.store.admin import AdminStore
from router.store.connect import StoreHandle
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import ADMIN_KEY


@pytest.fixture
def api_settings() -> Settings:
    return Settings(
        domain=f"api{uuid.uuid4().hex[:10]}",
        admin_key=SecretStr(ADMIN_KEY),
        api_sse_max_s=0.4,
        api_sse_poll_s=0.02,
        api_rate_per_s=1_000.0,
        api_rate_burst=10_000,
        api_auth_fail_per_s=1_000.0,
    )


@pytest.fixture
def handle() -> StoreHandle:
    return StoreHandle(url=None, supports_blocking=False, _fake_server=fakeredis.FakeServer())


@pytest.fixture
def store(handle: StoreHandle, api_settings: Settings) -> RoutingStore:
    return RoutingStore(handle.client(), api_settings.domain)


@pytest.fixture
def admin_store(store: RoutingStore) -> AdminStore:
    return AdminStore(store)


@pytest.fixture
def make_app(handle: StoreHandle, api_settings: Settings) -> Callable[..., FastAPI]:
    def make(**overrides: object) -> FastAPI:
        s = api_settings.model_copy(update=overrides) if overrides else api_settings
        return create_app(s, handle)

    return make


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def key_for(admin_store: AdminStore) -> Callable[..., str]:
    """A fresh API key with exactly these scopes."""

    def make(*scopes: str, name: str = "test") -> str:
        _, token = admin_store.create_key(name, scopes)
        return token

    return make


@pytest.fixture
def worker(store: RoutingStore, api_settings: Settings) -> Worker:
    w = Worker(store, LexiconScorer(), api_settings, consumer="api-test", supports_blocking=False)
    w.ensure_group()
    return w
