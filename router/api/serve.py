"""Running the API: ``serve_api`` (blocking, for ``router api``) and ``ApiServer`` (a background thread,
for ``router demo --api`` and tests)."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from router.api.app import create_app
from router.scoring.protocol import EmotionScorer
from router.settings import Settings
from router.store.connect import StoreHandle

log = logging.getLogger(__name__)


def _config(
    settings: Settings, handle: StoreHandle, host: str, port: int, scorer: EmotionScorer | None
) -> uvicorn.Config:
    app = create_app(settings, handle, scorer=scorer)
    # uvicorn's access log would print query strings; ApiGuard logs method, route template and status
    return uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning", lifespan="off")


def serve_api(
    settings: Settings,
    handle: StoreHandle,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    scorer: EmotionScorer | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM."""
    uvicorn.Server(_config(settings, handle, host, port, scorer)).run()


class ApiServer:
    """The API on a background thread; ``url`` once started, ``stop()`` to end it."""

    def __init__(
        self,
        settings: Settings,
        handle: StoreHandle,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        scorer: EmotionScorer | None = None,
    ) -> None:
        self.server = uvicorn.Server(_config(settings, handle, host, port, scorer))
        # uvicorn installs no signal handlers off the main thread: SIGINT stays the caller's
        self.host = host
        self.thread = threading.Thread(target=self.server.run, name="router-api", daemon=True)

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for s in servers:
            for sock in s.sockets:
                return int(sock.getsockname()[1])
        return 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
