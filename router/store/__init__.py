"""The Redis store of a routing domain: every key name (``keys``), every Lua transition (``scripts``, run
by ``store``), the supervisor's reads and writes (``admin``), connecting (``connect``), least-privilege
users (``acl``) and the repair after a restore (``reconcile``)."""

from router.store.admin import AdminStore
from router.store.connect import StoreHandle, open_store
from router.store.keys import Keys
from router.store.store import Commit, Outcome, OutcomeStatus, RoutingStore

__all__ = [
    "AdminStore",
    "Commit",
    "Keys",
    "Outcome",
    "OutcomeStatus",
    "RoutingStore",
    "StoreHandle",
    "open_store",
]
