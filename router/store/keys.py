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

    @property
    def workers(self) -> str:
        """Sorted set: consumer name -> its worker's last heartbeat (ms): live workers, and the consumers
        the housekeeping may delete."""
        return f"{self.prefix}:workers"

    def seen(self, event_id: str) -> str:
        return f"{self.prefix}:seen:{event_id}"

    # agents
    @property
    def agents(self) -> str:
        return f"{self.prefix}:agents"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}"

    # Sub-keys of an entity get their own kind segment (``agent_offers:<id>``, not ``agent:<id>:offers``):
    # ids may contain ':', so ``agent:a1:offers`` would be the hash of an agent called "a1:offers".
    def agent_offers(self, agent_id: str) -> str:
        return f"{self.prefix}:agent_offers:{agent_id}"

    def agent_mot(self, agent_id: str) -> str:
        return f"{self.prefix}:agent_mot:{agent_id}"

    @property
    def mot_offers(self) -> str:
        return f"{self.prefix}:mot_offers"

    # contacts and customers
    def contact(self, contact_id: str) -> str:
        return f"{self.prefix}:contact:{contact_id}"

    @property
    def open_contacts(self) -> str:
        """Set of the ids of contacts not ended, kept by the contact scripts: what reconcile reads, since no
        router role may list keys (router/store/acl.py)."""
        return f"{self.prefix}:open_contacts"

    def history(self, contact_id: str) -> str:
        return f"{self.prefix}:history:{contact_id}"

    def declines(self, contact_id: str) -> str:
        """Sorted set: agent id -> when (ms) it last declined or missed an offer of the contact. Entries
        older than the decline memory are pruned, and the key expires with its newest. (Not
        ``declined:<id>``, the never-expiring plain set this replaced: a new name, so an upgrade never
        meets the old type.)"""
        return f"{self.prefix}:declines:{contact_id}"

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}:customer:{customer_id}"

    # queues and offers
    def queue(self, name: str) -> str:
        return f"{self.prefix}:queue:{name}"

    def served(self, queue: str) -> str:
        return f"{self.prefix}:served:{queue}"

    @property
    def service(self) -> str:
        """Hash: measured service times (answer time, handle time per channel: mean, variance, count)."""
        return f"{self.prefix}:service"

    @property
    def waits(self) -> str:
        """List, newest first, capped: one JSON line per accepted offer, the wait lived and the one
        announced (for the dashboard's charts)."""
        return f"{self.prefix}:waits"

    @property
    def ewt_bands(self) -> str:
        """List, newest first, capped: 'low|high|actual' (s) for each announced wait then lived, the band as
        the forecast model gave it, before any correction (router/domain/wait_band.py)."""
        return f"{self.prefix}:ewt_bands"

    @property
    def away_spells(self) -> str:
        """List, newest first, capped: how long each of the latest spells away lasted (s), from 'away' to
        the next status (for the wait forecast: when an agent on a break is back)."""
        return f"{self.prefix}:away_spells"

    @property
    def ended(self) -> str:
        """List, newest first, capped: one JSON line per contact that ended, with its class, its status when
        it ended, its hand-offs and its customer (the dashboard's KPIs: router/domain/kpis.py)."""
        return f"{self.prefix}:ended"

    @property
    def floor(self) -> str:
        """List, newest first, capped: a sample of the floor every ``floor_sample_s``: queue depths and the
        count of contacts flagged moments of truth so far (the dashboard's depth and MoT series)."""
        return f"{self.prefix}:floor"

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

    # supervisor API (router/api, router/store/admin.py)
    @property
    def api_keys(self) -> str:
        """Hash: API key id -> JSON {sha256, scopes, name, created_ms}. Never the key itself."""
        return f"{self.prefix}:api:keys"

    def api_idempotency(self, event_id: str) -> str:
        """String: the events-stream id an API-posted event with this event_id was written as (TTL)."""
        return f"{self.prefix}:api:idem:{event_id}"

    @property
    def api_ingest(self) -> str:
        """Sorted set: event_id -> ms the API accepted it (last hour), for the decision latency metric."""
        return f"{self.prefix}:api:ingest"

    @property
    def outcomes(self) -> str:
        """Stream of post-contact outcomes (CSAT, resolution) per agent."""
        return f"{self.prefix}:outcomes"

    def outcome_marker(self, contact_id: str, agent_id: str) -> str:
        """One outcome per (contact, agent); '/' never occurs in an id, so the pair is unambiguous."""
        return f"{self.prefix}:outcome:{contact_id}/{agent_id}"

    def outcome_agent(self, agent_id: str) -> str:
        """Hash of an agent's outcome aggregates: '<mot|routine>:<n|sum|sumsq|resolved>'."""
        return f"{self.prefix}:outcomes:agent:{agent_id}"

    @property
    def outcome_totals(self) -> str:
        """Hash of the domain's outcome aggregates (same fields): peers = totals - agent."""
        return f"{self.prefix}:outcomes:all"
