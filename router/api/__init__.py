"""The supervisor and platform API (FastAPI) and its dashboard."""

from __future__ import annotations

from router.api.app import create_app
from router.api.serve import ApiServer, serve_api

__all__ = ["ApiServer", "create_app", "serve_api"]
