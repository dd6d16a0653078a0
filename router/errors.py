"""The exception tree. Everything the package raises on purpose derives from ``RouterError``.

RouterError
 +-- ConfigError           settings that cannot work together
 +-- StoreError            the store refused or could not be reached
 |    +-- ConflictError    optimistic concurrency lost; the caller re-reads and retries
 |    +-- ReplicationError fewer replicas confirmed a write than the replication wait asks for
 +-- EventError            an inbound event is invalid (carries the reason for the dead-letter entry)
 +-- ScorerError           the emotion scorer failed (the caller falls back)
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class ConfigError(RouterError):
    pass


class StoreError(RouterError):
    pass


class ConflictError(StoreError):
    pass


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
    pass
