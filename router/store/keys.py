"""Every Redis key name of a routing domain. All carry the hash tag ``{domain}`` so that a domain lives
in one cluster slot and every Lua script may touch any of its keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    domain: str

    @property
    def prefix(self) -> str:
        return f"router:{{{self.domain}}}"

    # streams
    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}:decisions"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}:deadletter"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    # bookkeeping
    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    def seen(self, event_id: str) -> str:
        return f"{self.prefix}:seen:{event_id}"

    # agents
    @property
    def agents(self) -> str:
        return f"{self.prefix}:agents"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}"

    def agent_offers(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}:offers"

    def agent_mot(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}:mot"

    @property
    def mot_offers(self) -> str:
        return f"{self.prefix}:mot_offers"

    # contacts and customers
    def contact(self, contact_id: str) -> str:
        return f"{self.prefix}:contact:{contact_id}"

    def history(self, contact_id: str) -> str:
        return f"{self.prefix}:contact:{contact_id}:history"

    def declined(self, contact_id: str) -> str:
        return f"{self.prefix}:contact:{contact_id}:declined"

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}:customer:{customer_id}"

    # queues and offers
    def queue(self, name: str) -> str:
        return f"{self.prefix}:queue:{name}"

    def served(self, queue: str) -> str:
        return f"{self.prefix}:queue:{queue}:served"

    def offer(self, offer_id: str) -> str:
        return f"{self.prefix}:offer:{offer_id}"

    @property
    def offers(self) -> str:
        """Sorted set of pending offer ids by deadline (ms): the timeout sweep reads it."""
        return f"{self.prefix}:offers"

    @property
    def none(self) -> str:
        """A placeholder for an unused KEYS slot; never written."""
        return f"{self.prefix}:none"
