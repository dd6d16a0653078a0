"""Stream worker: consumes events (``Worker``), routes contacts (``Engine``), writes decisions.

``Engine`` is layered over router/worker/state.py (batch state, reads, commits, agent snapshot),
router/worker/matching.py (offers, waits, pulls) and router/worker/sweep.py (time-outs, the safety net).
"""

from router.worker.consumer import Worker
from router.worker.engine import Engine
from router.worker.state import BatchState, Deferred

__all__ = ["BatchState", "Deferred", "Engine", "Worker"]
