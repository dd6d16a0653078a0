"""Stream worker: consumes events (``Worker``), routes contacts (``Engine``), writes decisions."""

from router.worker.consumer import Worker
from router.worker.engine import Engine

__all__ = ["Engine", "Worker"]
