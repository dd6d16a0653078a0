"""The floor's KPIs by class of contact (moment of truth, routine), as the simulation reports them for each
seed (router/sim/report.py), here from what the store logs. Pure functions, no I/O.

Over the contacts that ended in the window and needed a person (they were queued, offered or assigned):

* CSAT: the mean of the post-contact outcomes posted in the window (``POST /v1/outcomes``), by the class
  of their contact.
* First-contact resolution: of the contacts an agent took, the share whose customer did not start another
  contact within ``fcr_window_s`` of this one's start. A contact that came back counts once it has ended (it
  is in the ended-contacts log then), and one less than ``fcr_window_s`` old may still come back: the figure
  for the last hour is provisional, an upper bound.
* Repeat-contact rate: the share that were themselves a repeat: their customer's previous contact started
  within ``fcr_window_s`` before this one.
* Hand-offs per contact: times an offer came back to the queue (declined, missed, revoked when the agent
  left), per contact. The router never moves a contact once an agent has accepted it.
* Abandonment: the share that ended while queued or offered: before any agent accepted them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from router.domain.model import ContactStatus

ContactClass = Literal["mot", "routine"]
CLASSES: tuple[ContactClass, ...] = ("mot", "routine")
# the statuses a contact can end in once it went to a person; 'queued' and 'offered' mean nobody took it
HUMAN_STATUSES = frozenset({"queued", "offered", "assigned"})
ABANDONED_STATUSES = frozenset({"queued", "offered"})


@dataclass(frozen=True, slots=True)
class EndedContact:
    """One entry of the ended-contacts log: when it ended and started, its class, the status it ended in,
    how often it was handed back to the queue, its customer, and when that customer's previous contact
    started (None: none known)."""

    t_s: float
    started_s: float
    mot: bool
    was: ContactStatus
    handoffs: int
    customer_id: str
    prev_contact_s: float | None = None

    @property
    def cls(self) -> ContactClass:
        return "mot" if self.mot else "routine"

    @property
    def human(self) -> bool:
        return self.was in HUMAN_STATUSES

    @property
    def served(self) -> bool:
        return self.was == "assigned"

    @property
    def abandoned(self) -> bool:
        return self.was in ABANDONED_STATUSES


@dataclass(frozen=True, slots=True)
class RatedContact:
    """One post-contact outcome: when it was posted, the class of its contact, CSAT 1-5, resolved."""

    t_s: float
    mot: bool
    csat: int
    resolved: bool


@dataclass(frozen=True, slots=True)
class ClassKpis:
    """The KPIs of one class; a rate is None when nothing was there to measure (its count is 0)."""

    contacts: int
    csat: float | None
    csat_n: int
    fcr: float | None
    fcr_n: int
    repeat_rate: float | None
    handoffs_per_contact: float | None
    abandonment: float | None
    abandoned: int


def is_repeat(c: EndedContact, fcr_window_s: float) -> bool:
    """Whether the customer's previous contact started within the window before this one."""
    return c.prev_contact_s is not None and 0 <= c.started_s - c.prev_contact_s <= fcr_window_s


def came_back(contacts: Sequence[EndedContact], fcr_window_s: float) -> list[bool]:
    """For each contact, whether another contact of the same customer (among ``contacts``) started after it
    and within ``fcr_window_s`` of its start."""
    starts: dict[str, list[float]] = defaultdict(list)
    for c in contacts:
        if c.customer_id:
            starts[c.customer_id].append(c.started_s)
    out = []
    for c in contacts:
        others = starts.get(c.customer_id, []) if c.customer_id else []
        out.append(any(c.started_s < s <= c.started_s + fcr_window_s for s in others))
    return out


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def kpis_by_class(
    ended: Sequence[EndedContact],
    rated: Iterable[RatedContact],
    *,
    since_s: float,
    fcr_window_s: float,
) -> Mapping[ContactClass, ClassKpis]:
    """The KPIs of each class over the contacts that ended (and the outcomes posted) at ``since_s`` or
    later. ``ended`` may hold older entries too: later contacts of a customer are looked for among all."""
    back = came_back(ended, fcr_window_s)
    csats: dict[ContactClass, list[int]] = {c: [] for c in CLASSES}
    for r in rated:
        if r.t_s >= since_s:
            csats["mot" if r.mot else "routine"].append(r.csat)
    out: dict[ContactClass, ClassKpis] = {}
    for cls in CLASSES:
        idx = [i for i, c in enumerate(ended) if c.t_s >= since_s and c.human and c.cls == cls]
        group = [ended[i] for i in idx]
        served = [i for i in idx if ended[i].served]
        scores = csats[cls]
        n = len(group)
        abandoned = sum(1 for c in group if c.abandoned)
        out[cls] = ClassKpis(
            contacts=n,
            csat=sum(scores) / len(scores) if scores else None,
            csat_n=len(scores),
            fcr=_share(sum(1 for i in served if not back[i]), len(served)),
            fcr_n=len(served),
            repeat_rate=_share(sum(1 for c in group if is_repeat(c, fcr_window_s)), n),
            handoffs_per_contact=sum(c.handoffs for c in group) / n if n else None,
            abandonment=_share(abandoned, n),
            abandoned=abandoned,
        )
    return out
