"""What an agent is expected to achieve on a class of contact, learned from posted outcomes. Pure.

Every posted outcome (``POST /v1/outcomes``: CSAT 1-5 and resolved yes/no) is folded into the agent's
tallies for the contact's *class*: its kind (``mot`` when the router had it as a moment of truth, else
``routine``) and, finer, the kind with each of the contact's topic, language, channel and tone (the band
of its peak intensity). ``expect`` turns the tallies into a posterior mean:

- **The EQ prior.** Before any outcome, an agent of EQ ``e`` is expected to score
  ``csat_at_eq3 + csat_per_eq * (e - 3)`` on moments of truth (routine: ``routine_csat``, flat) and to
  resolve with probability ``resolved_at_eq3 + resolved_per_eq * (e - 3)`` (routine:
  ``routine_resolved``). The supervisor's EQ tag is a belief about the agent, so it is where the
  estimate starts, not where it stays.
- **Shrinkage on the kind.** CSAT is a normal mean with a conjugate prior worth ``n0`` pseudo-outcomes:
  ``(n0 * prior + sum) / (n0 + n)``; resolution a Beta(n0 * p0, n0 * (1 - p0)) prior, the same formula.
  With ``n0`` = 8, eight outcomes move the estimate halfway from the tag to the agent's own record.
- **Finer classes.** A finer class with at least ``fine_min_n`` outcomes is shrunk the same way towards
  the kind's posterior (``fine_n0`` pseudo-outcomes) and contributes its difference from it; the
  estimate is the kind's posterior plus the mean of those differences.

``utility`` = expected CSAT + ``resolution_weight`` x expected resolution: a resolution is worth one CSAT
point by default (an unresolved contact comes back, and a repeat contact is what customers hate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from router.domain.model import AgentView, ContactView, OutcomeTally

OutcomeKind = Literal["mot", "routine"]
DIMENSIONS: tuple[str, ...] = ("topic", "language", "channel", "tone")
# Bands of the contact's peak intensity (``tone``): a routine contact that is tense may be a moment of
# truth the detector missed, and agents' records on it can show who serves it best.
TONE_BANDS: tuple[tuple[float, str], ...] = ((0.6, "upset"), (0.3, "tense"), (0.0, "calm"))


@dataclass(frozen=True, slots=True)
class OutcomeConfig:
    """The prior, the shrinkage and the costs outcome-aware matching weighs (docs/routing.md)."""

    n0: float = 8.0  # pseudo-outcomes of the EQ prior
    mot_csat_at_eq3: float = 3.6
    mot_csat_per_eq: float = 0.3
    routine_csat: float = 4.0
    mot_resolved_at_eq3: float = 0.7
    mot_resolved_per_eq: float = 0.05
    routine_resolved: float = 0.85
    fine_min_n: int = 5  # outcomes before a finer class (topic, language, channel, tone) counts
    fine_n0: float = 10.0
    resolution_weight: float = 1.0  # CSAT points a resolution is worth
    # CSAT points one more minute of waiting costs (the seeds: waiting is what customers hate most)
    mot_wait_cost_per_min: float = 0.5
    routine_wait_cost_per_min: float = 0.1
    expected_handle_s: float = 420.0  # a busy slot frees after this on average (the better pool's EWT)
    tie_margin: float = 0.1  # utilities this close are equal: the ladder's preference decides
    reserve_max_hold_s: float = 30.0  # the longest a routine contact waits for the high-EQ reserve


@dataclass(frozen=True, slots=True)
class ContactClass:
    kind: OutcomeKind
    topic: str | None
    language: str
    channel: str
    tone: str

    def fine_keys(self) -> tuple[str, ...]:
        values = {"topic": self.topic, "language": self.language, "channel": self.channel, "tone": self.tone}
        return tuple(class_key(self.kind, dim, v) for dim in DIMENSIONS if (v := values[dim]))

    def keys(self) -> tuple[str, ...]:
        """Every tally key an outcome of this class is folded into: the kind, then the finer classes."""
        return (self.kind, *self.fine_keys())


@dataclass(frozen=True, slots=True)
class Expectation:
    csat: float
    resolved: float
    n: int  # outcomes of the agent on this kind
    utility: float
    finer: tuple[str, ...] = ()  # finer classes with enough outcomes to count


def class_key(kind: str, dim: str, value: str) -> str:
    """``mot|language=de``: '|' and '=' never occur in a kind or a dimension name."""
    return f"{kind}|{dim}={value}"


def tone(peak: float) -> str:
    return next(name for floor, name in TONE_BANDS if peak >= floor)


def contact_class(contact: ContactView, queue: str | None = None) -> ContactClass:
    """The class the router can see: a moment of truth when flagged (or in the mot queue)."""
    mot = contact.moment_of_truth or queue == "mot"
    return ContactClass(
        kind="mot" if mot else "routine",
        topic=contact.topic,
        language=contact.language,
        channel=contact.channel,
        tone=tone(contact.trajectory.peak),
    )


def prior(eq: int, kind: OutcomeKind, cfg: OutcomeConfig) -> tuple[float, float]:
    """(CSAT, resolution probability) expected of an agent of EQ ``eq`` before any outcome."""
    if kind == "routine":
        return cfg.routine_csat, cfg.routine_resolved
    csat = cfg.mot_csat_at_eq3 + cfg.mot_csat_per_eq * (eq - 3)
    res = cfg.mot_resolved_at_eq3 + cfg.mot_resolved_per_eq * (eq - 3)
    return min(5.0, max(1.0, csat)), min(1.0, max(0.0, res))


def _shrunk(mean: float, n0: float, tally: OutcomeTally | None, field: Literal["csat", "resolved"]) -> float:
    if tally is None or tally.n <= 0:
        return mean
    total = tally.csat_sum if field == "csat" else tally.resolved
    return (n0 * mean + total) / (n0 + tally.n)


def expect(agent: AgentView, cls: ContactClass, cfg: OutcomeConfig) -> Expectation:
    """The agent's posterior expected CSAT and resolution on ``cls``."""
    return expect_from(agent.eq, agent.outcomes, cls, cfg)


def expect_from(
    eq: int, tallies: Mapping[str, OutcomeTally], cls: ContactClass, cfg: OutcomeConfig
) -> Expectation:
    csat0, res0 = prior(eq, cls.kind, cfg)
    kind = tallies.get(cls.kind)
    csat = _shrunk(csat0, cfg.n0, kind, "csat")
    res = _shrunk(res0, cfg.n0, kind, "resolved")
    d_csat: list[float] = []
    d_res: list[float] = []
    finer: list[str] = []
    for key in cls.fine_keys():
        fine = tallies.get(key)
        if fine is None or fine.n < cfg.fine_min_n:
            continue
        finer.append(key.partition("|")[2])
        d_csat.append(_shrunk(csat, cfg.fine_n0, fine, "csat") - csat)
        d_res.append(_shrunk(res, cfg.fine_n0, fine, "resolved") - res)
    if finer:
        csat = min(5.0, max(1.0, csat + sum(d_csat) / len(d_csat)))
        res = min(1.0, max(0.0, res + sum(d_res) / len(d_res)))
    n = kind.n if kind is not None else 0
    return Expectation(csat, res, n, csat + cfg.resolution_weight * res, tuple(finer))


def wait_cost(wait_s: float, kind: OutcomeKind, cfg: OutcomeConfig) -> float:
    """Utility lost by waiting ``wait_s`` more seconds."""
    per_min = cfg.mot_wait_cost_per_min if kind == "mot" else cfg.routine_wait_cost_per_min
    return max(0.0, wait_s) / 60.0 * per_min


def describe(agent_id: str, e: Expectation, kind: OutcomeKind) -> str:
    """'a03: expected CSAT 4.3 on moments of truth (n=41; by language=de)'."""
    what = "moments of truth" if kind == "mot" else "routine contacts"
    basis = f"n={e.n}" if e.n else "no outcomes yet: EQ prior"
    if e.finer:
        basis += "; by " + ", ".join(e.finer)
    return f"{agent_id}: expected CSAT {e.csat:.1f} on {what} ({basis}), resolution {e.resolved:.0%}"
