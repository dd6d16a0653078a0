"""The simulator's survey desk: posts each served contact's outcome through the public API.

The router learns about agents only from ``POST /v1/outcomes`` (CSAT and resolution), as it would from a
real centre's post-contact surveys; the simulated agents' true empathy never leaves the simulator. The API
runs in this process (the FastAPI app over the same store, called through Starlette's in-process HTTP
client), so a post goes through the same authentication, validation and checks as any other client's: an
outcome for a contact never offered to that agent is refused (409), a second one for it too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.api import create_app
from router.settings import Settings
from router.store.connect import StoreHandle


class ApiOutcomes:
    """``post(contact_id, agent_id, csat, resolved)`` -> whether the API recorded it (201)."""

    def __init__(self, settings: Settings, handle: StoreHandle, clock: Callable[[], float]) -> None:
        self._token = f"sim-{secrets.token_urlsafe(24)}"
        # its own admin key, and no rate limit: the simulated day runs faster than any real floor posts
        api_settings = settings.model_copy(
            update={
                "admin_key": SecretStr(self._token),
                "api_rate_per_s": 1e9,
                "api_rate_burst": 1_000_000_000,
            }
        )
        self._client = TestClient(create_app(api_settings, handle, clock=clock))
        self._client.__enter__()
        self.refused: dict[int, int] = {}

    def post(self, contact_id: str, agent_id: str, csat: int, resolved: bool) -> bool:
        body: dict[str, Any] = {
            "contact_id": contact_id,
            "agent_id": agent_id,
            "csat": csat,
            "resolved": resolved,
        }
        r = self._client.post("/v1/outcomes", json=body, headers={"Authorization": f"Bearer {self._token}"})
        if r.status_code == 201:
            return True
        self.refused[r.status_code] = self.refused.get(r.status_code, 0) + 1
        return False

    def close(self) -> None:
        self._client.__exit__(None, None, None)
