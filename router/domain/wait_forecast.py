"""How long a queued contact will wait, from the agents who may serve it. Pure.

A contact leaves its queue when a slot it may take is there for it: a free one, or a busy one that frees.
The contacts ahead of it that compete for the same slots (``competing_ahead``) take theirs first, so it
needs the ``ahead + 1``-th. Who may serve it changes while it waits, at known moments: the escalation
ladder widens the EQ floor (20 s, 60 s), the high-EQ reserve's hold on a routine contact ends, the wait
for a returning customer's last agent runs out, a remembered decline expires, an agent on a break is
expected back (``returns``: the measured spells away that lasted longer than this one has so far). While
outcome-aware matching waits for better agents (``waiting_for``) the pool is theirs and the ladder's, not
the free agents it passed by. ``stages`` lists the pool at each of those moments: its free slots and its
busy slots on the contact's channel.

**The wait.** Busy slots free at ``busy / (handle_s x residual_share)`` per second, a Poisson process;
the free slots of a stage are there from its start. ``handle_s`` is the mean time a slot stays busy on
the channel, measured by the store as work completes, with its coefficient of variation ``cv``. A slot
found busy is part-way through its work: its remaining time averages ``(1 + cv^2) / 2`` of a whole one
(the renewal residual; 1 for exponential handle times, 0.58 for the simulator's cv 0.4), so the first of
``b`` busy slots frees sooner than ``handle_s / b``. ``residual_share`` goes from that value for one slot
to 1 for many (the minimum of many residuals is set by their density near 0, which is ``1 / handle_s``
whatever the shape): ``1 - (1 - (1 + cv^2) / 2) / sqrt(b)``, an interpolation between the two exact ends
that matches the simulated handle times within 5% (docs/routing.md). The wait T is the first time the
``P(T > t) = P(Poisson(L(t)) < ahead + 1 - free(t))``, with ``L`` the integrated rate. Its mean, its sd
and its 10th and 90th percentiles come in closed form per stage (Poisson sums), plus the time an agent
takes to accept an offer (``answer_s``, measured too). Contacts ahead that leave unserved (the queue's
measured ``left_share``) free their slot for the next: the wait is a mixture over how many are still
there.

**Busy slots of known age.** Where the store knows when a busy slot was taken (``Stage.elapsed``, from
``AgentView.busy``), that slot frees with the hazard of a lognormal handle time of its kind (moment of
truth or routine: ``Service.handle``) conditioned on the time it has lasted, instead of the memoryless
rate: a slot near the end of its work frees soon, one just taken does not. The hazard is averaged over
the pieces of ``HAZARD_GRID_S`` so the Poisson sums stay closed-form piece by piece; with nobody ahead the
wait is the first of the slots' remaining times (exact up to that averaging). The lognormal is the shape,
the store's measured mean and cv its parameters.

**Why not the queue's departures.** A queue's observed departures per second are its arrivals, not how
fast it could be served: a queue that is usually empty sees few departures and so announced minutes when
a slot was about to free (2,000 contacts: 155 s announced against 30 s lived, docs/simulation.md).

**Nobody to serve it.** When no agent logged in (nor expected back) can ever take the contact (no slot
in the last stage), one who can is assumed to turn up every ``PRIOR_S_PER_DEPARTURE`` seconds
(router/domain/ewt.py): the estimate errs long, never infinite, and the callback follows from it.

**The band.** ``low_s``-``high_s`` is the 10th-90th percentile: eight waits in ten should land inside
when the model holds; the sim and ``/metrics`` count how many do.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from router.domain.ewt import PRIOR_S_PER_DEPARTURE
from router.domain.model import AgentView, ContactView, base_language
from router.domain.policy import PolicyConfig, min_eq, queued_for_s, remembered_decline_ms

MAX_WAIT_S = 86_400.0  # a wait nobody can serve is announced as this (JSON and Redis cannot hold inf)
BAND = (0.10, 0.90)  # the announced band: these quantiles of the wait
Z_90 = 1.2816  # the standard normal's 90th percentile
MAX_AHEAD = 2_000  # contacts ahead counted at most (the Poisson sums are linear in it)
# Before the store has measured a channel's handle times: their spread assumed, as a coefficient of
# variation. Handle times are skewed but not memoryless (the simulator's mixture measures 0.45-0.55); the
# first completed contact on the channel replaces it.
UNMEASURED_HANDLE_CV = 0.5
# Spells away measured before an agent away is expected back: fewer say too little about the floor's breaks
MIN_AWAY_SPELLS = 5
# Contacts that waited in a queue and then were served or left, before the share that left counts
MIN_LEFT_SAMPLES = 20
# Where the hazard of a busy slot of known age is averaged into a constant rate (s from now): fine where
# waits are short, coarse where they are rare; a slot still busy past the last cut frees at 1 / handle_s
HAZARD_GRID_S: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0)
MIN_HANDLE_CV = 0.05  # a measured spread below this (a handful of equal handle times) is taken as this


@dataclass(frozen=True, slots=True)
class Stage:
    """From ``after_s`` seconds from now on, the slots on the contact's channel that may serve it."""

    after_s: float
    free_slots: int
    busy_slots: int
    # of the busy slots, those whose start the store knows: (seconds busy so far, a moment of truth?)
    elapsed: tuple[tuple[float, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Service:
    """How slots free and offers are answered on one channel."""

    handle_s: float  # mean time a busy slot stays busy
    handle_cv: float = 1.0  # its coefficient of variation (1: memoryless, exponential)
    answer_s: float = 0.0  # mean time from an offer to its acceptance
    answer_sd_s: float = 0.0
    # (mean, cv) of the handle time by kind of contact (True: a moment of truth), where measured
    by_kind: Mapping[bool, tuple[float, float]] = field(default_factory=dict)

    def handle(self, mot: bool) -> tuple[float, float]:
        """(mean, cv) of the handle time of a contact of this kind: its own measure, else the channel's."""
        return self.by_kind.get(mot, (self.handle_s, self.handle_cv))


@dataclass(frozen=True, slots=True)
class ServiceTimes:
    """What the store measured (``router:{d}:service``): from an offer to its acceptance, and how long
    accepted work lasts per channel, (mean, sd); and how long agents stayed away (their breaks). Empty
    before anything was measured."""

    answer_s: float = 0.0
    answer_sd_s: float = 0.0
    handle_s: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    away_spells_s: tuple[float, ...] = ()  # the latest spells away, s (``router:{d}:away_spells``)
    # per queue: of the contacts that waited in it, the share that left unserved, and how many were seen
    left: Mapping[str, tuple[float, int]] = field(default_factory=dict)
    # "<channel>:mot" / "<channel>:routine" -> (mean, sd) of the handle time of that kind on the channel
    handle_kind_s: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def left_share(self, queue: str) -> float:
        """The share of contacts that waited in ``queue`` and left it unserved; 0 until
        ``MIN_LEFT_SAMPLES`` were seen."""
        share, n = self.left.get(queue, (0.0, 0))
        return min(max(share, 0.0), 1.0) if n >= MIN_LEFT_SAMPLES and math.isfinite(share) else 0.0

    def for_channel(self, channel: str, default_handle_s: float) -> Service:
        """The channel's service as measured; before any measure ``default_handle_s`` with a spread of
        ``UNMEASURED_HANDLE_CV``."""
        kinds = {
            mot: (m, max(0.0, sd) / m)
            for mot, name in ((True, "mot"), (False, "routine"))
            for m, sd in (self.handle_kind_s.get(f"{channel}:{name}", (0.0, 0.0)),)
            if m > 0 and math.isfinite(m) and math.isfinite(sd)
        }
        mean, sd = self.handle_s.get(channel, (0.0, 0.0))
        if not (mean > 0 and math.isfinite(mean) and math.isfinite(sd)):
            return Service(default_handle_s, UNMEASURED_HANDLE_CV, self.answer_s, self.answer_sd_s, kinds)
        return Service(mean, max(0.0, sd) / mean, self.answer_s, self.answer_sd_s, kinds)


@dataclass(frozen=True, slots=True)
class WaitForecast:
    mean_s: float
    sd_s: float
    low_s: float  # 10th percentile
    high_s: float  # 90th percentile


def back_in_s(away_for_s: float, spells_s: Sequence[float]) -> float | None:
    """When an agent away for ``away_for_s`` is expected back: the median of what remains of the measured
    spells that lasted longer. None with fewer than ``MIN_AWAY_SPELLS`` spells, or when none lasted that
    long (an agent away longer than any break has not said when they return)."""
    if len(spells_s) < MIN_AWAY_SPELLS:
        return None
    left = sorted(d - away_for_s for d in spells_s if d > away_for_s)
    if not left:
        return None
    mid = len(left) // 2
    return left[mid] if len(left) % 2 else (left[mid - 1] + left[mid]) / 2.0


def returns(agents: Sequence[AgentView], now: float, spells_s: Sequence[float]) -> dict[str, float]:
    """Agent id -> seconds until each agent away is expected back (``back_in_s``), for those whose spell
    start the store knows. Agents offline are not expected back."""
    out: dict[str, float] = {}
    for a in agents:
        if a.status != "away" or a.status_ts <= 0:
            continue
        back = back_in_s(max(0.0, now - a.status_ts), spells_s)
        if back is not None:
            out[a.agent_id] = back
    return out


def stages(
    contact: ContactView,
    queue: str,
    agents: Sequence[AgentView],
    now: float,
    cfg: PolicyConfig,
    *,
    hold_s: float = 0.0,
    affinity_s: float = 0.0,
    waiting_for: frozenset[str] = frozenset(),
    back_in: Mapping[str, float] | None = None,
) -> tuple[Stage, ...]:
    """The pool at each moment it changes. ``hold_s``: seconds the high-EQ reserve still keeps agents of
    eq >= ``cfg.mot_min_eq`` from this (routine) contact; ``affinity_s``: seconds it still waits for its
    last agent alone. Outcome-aware matching (``cfg.outcome``) weighs every agent the fully widened
    ladder allows, so then the ladder's steps do not narrow the pool, except while it waits for better
    agents (``waiting_for``, busy now): it passes the free ones by until the ladder itself would offer, so
    until then the pool is those agents and the ladder's (matching.choose_by_outcome). ``back_in``: agent
    id -> seconds until an agent away is expected back (``returns``); from then on they count as
    available."""
    waited_s = queued_for_s(contact, now)
    if cfg.outcome is not None and not waiting_for:
        waited_s = max(waited_s, cfg.ladder_step2_s)
    back = dict(back_in or {})
    moments = {0.0, hold_s, affinity_s, *back.values()}
    if queue == "mot":
        moments |= {cfg.ladder_step1_s - waited_s, cfg.ladder_step2_s - waited_s}
    for at_ms in contact.declined_ms.values():
        moments.add(at_ms / 1000 + cfg.decline_memory_s - now)
    out: list[Stage] = []
    for after in sorted(m for m in moments if 0.0 <= m < MAX_WAIT_S):
        then = [_at(a, after, back) for a in agents]
        pool = [
            a
            for a in then
            if _serves(a, contact, queue, now, after, waited_s, cfg, hold_s, affinity_s, waiting_for)
        ]
        free = sum(max(0, a.free(contact.channel)) for a in pool)
        busy = sum(_busy(a, contact.channel) for a in pool)
        elapsed = tuple(sorted(e for a in pool for e in _elapsed(a, contact.channel, now)))
        if not out or (free, busy, elapsed) != (out[-1].free_slots, out[-1].busy_slots, out[-1].elapsed):
            out.append(Stage(after, free, busy, elapsed))
    return tuple(out)


def _elapsed(agent: AgentView, channel: str, now: float) -> list[tuple[float, bool]]:
    """(seconds busy so far, mot) of the agent's busy slots on ``channel`` whose start is known: the newest
    ones, at most as many as its load (a record left behind by a lost release is never counted)."""
    n = _busy(agent, channel)
    slots = agent.busy.get(channel, ())
    newest = sorted(slots, key=lambda s: s[0])[-n:] if n > 0 else []
    return [(max(0.0, now - since), mot) for since, mot in newest]


def _at(agent: AgentView, after: float, back: Mapping[str, float]) -> AgentView:
    """The agent as it will be ``after`` seconds from now: back from their spell away when expected."""
    at = back.get(agent.agent_id)
    if agent.status == "away" and at is not None and after >= at:
        return replace(agent, status="available")
    return agent


def _busy(agent: AgentView, channel: str) -> int:
    return max(0, min(agent.load.get(channel, 0), agent.capacity.get(channel, 0)))


def _serves(
    a: AgentView,
    contact: ContactView,
    queue: str,
    now: float,
    after: float,
    waited_s: float,
    cfg: PolicyConfig,
    hold_s: float,
    affinity_s: float,
    waiting_for: frozenset[str],
) -> bool:
    if a.status != "available" or not a.speaks(contact.language):
        return False
    if a.capacity.get(contact.channel, 0) <= 0:
        return False
    if a.eq < min_eq(queue, waited_s + after, cfg) and a.agent_id not in waiting_for:
        return False
    if after < hold_s and a.eq >= cfg.mot_min_eq:
        return False
    if after < affinity_s and a.agent_id != contact.last_agent_id:
        return False
    return remembered_decline_ms(a.agent_id, contact, now + after, cfg) is None


def pool_wait(
    agents: Sequence[AgentView], channel: str, now: float, ahead: int, service: Service
) -> WaitForecast:
    """The wait for a slot among ``agents`` alone, all busy on ``channel``, with ``ahead`` contacts before
    this one wanting them too: the ``forecast`` of one stage of their busy slots, the known ages included.
    Outcome-aware matching weighs waiting for a better pool with it (router/domain/matching.py)."""
    busy = sum(_busy(a, channel) for a in agents)
    elapsed = tuple(sorted(e for a in agents for e in _elapsed(a, channel, now)))
    return forecast((Stage(0.0, 0, busy, elapsed),), ahead, service)


def competing_ahead(
    contact: ContactView, ahead: Iterable[tuple[str, str]], agents: Sequence[AgentView]
) -> int:
    """Of the contacts ahead, given as (channel, language), those competing for this contact's slots: the
    same channel, in a language that some agent who could serve this one speaks."""
    spoken = {
        base_language(lang)
        for a in agents
        if a.speaks(contact.language) and a.capacity.get(contact.channel, 0) > 0
        for lang in a.languages
    }
    return sum(
        1 for channel, language in ahead if channel == contact.channel and base_language(language) in spoken
    )


def forecast(pools: Sequence[Stage], ahead: int, service: Service, left_share: float = 0.0) -> WaitForecast:
    """The wait of a contact with ``ahead`` competing contacts before it (module docstring). Each of them
    leaves unserved (gives up, ends) with probability ``left_share``, so the slot it would have taken
    serves the next: the wait is a mixture over how many are still there, Binomial(ahead, 1 -
    left_share). The answer time adds to the wait, its spread to the sd and to the band (its own 10th-90th
    percentiles, as a normal's, added to the ends: a band a little wider, never narrower, than the
    sum's)."""
    segs = _segments(pools, service)
    if not segs:
        return _unbounded()
    mix = _still_ahead(min(max(0, ahead), MAX_AHEAD), left_share)
    mean = 0.0
    second = 0.0  # E[T^2] / 2
    for seg in segs:
        part = seg.moments(mix)
        if part is None:
            return _unbounded()
        mean += part[0]
        second += part[1]
    answer_s, answer_sd_s = max(0.0, service.answer_s), max(0.0, service.answer_sd_s)
    sd = math.sqrt(max(0.0, 2.0 * second - mean * mean) + answer_sd_s**2)
    low, high = (_quantile(segs, mix, q) for q in BAND)
    spread = Z_90 * answer_sd_s
    return WaitForecast(
        _capped(mean + answer_s),
        _capped(sd),
        _capped(low + max(0.0, answer_s - spread)),
        _capped(high + answer_s + spread),
    )


def _still_ahead(ahead: int, left_share: float) -> list[tuple[int, float]]:
    """(k, weight): the wait is for the k-th slot to free with that probability, k - 1 the contacts ahead
    still there, Binomial(ahead, 1 - left_share), every count within 5 sd of the mean. Each count is kept
    as it is: merging neighbours (as this did up to 2026-12-02) made the mixture coarser past a size and
    the band could shrink with one more contact ahead; the segments price all counts in one pass."""
    p_stay = 1.0 - min(max(left_share, 0.0), 1.0)
    if ahead == 0 or p_stay >= 1.0:
        return [(ahead + 1, 1.0)]
    if p_stay <= 0.0:
        return [(1, 1.0)]
    mu = ahead * p_stay
    reach = 5.0 * math.sqrt(ahead * p_stay * (1.0 - p_stay)) + 1.0
    lo, hi = max(0, math.floor(mu - reach)), min(ahead, math.ceil(mu + reach))
    log_p, log_q, log_n = math.log(p_stay), math.log1p(-p_stay), math.lgamma(ahead + 1)
    pmf = [
        (
            x + 1,
            math.exp(
                log_n - math.lgamma(x + 1) - math.lgamma(ahead - x + 1) + x * log_p + (ahead - x) * log_q
            ),
        )
        for x in range(lo, hi + 1)
    ]
    total = sum(w for _, w in pmf)
    return [(k, w / total) for k, w in pmf if w > 0.0]


def _capped(seconds: float) -> float:
    return min(seconds, MAX_WAIT_S)


def _unbounded() -> WaitForecast:
    return WaitForecast(MAX_WAIT_S, MAX_WAIT_S, MAX_WAIT_S, MAX_WAIT_S)


@dataclass(frozen=True, slots=True)
class _Segment:
    start_s: float
    end_s: float  # inf for the last
    rate_per_s: float
    free: int
    base: float  # integrated rate at the start

    def survival(self, mix: Sequence[tuple[int, float]], t: float) -> float:
        """P(T > t) for t in the segment, mixed over ``mix``: one Poisson pass for every count."""
        top = max(k for k, _ in mix) - self.free
        if top <= 0:
            return 0.0
        cdf = _poisson_cdfs(top - 1, self.base + self.rate_per_s * (t - self.start_s))
        return sum(w * cdf[k - self.free - 1] for k, w in mix if k > self.free)

    def moments(self, mix: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
        """(integral of P(T > t), integral of t P(T > t)) over the segment, mixed over ``mix``; None when
        it never ends. For k slots the integrals are sums over j < k - free of Poisson terms, so one pass
        up to the largest k and running sums give every count."""
        top = max(k for k, _ in mix) - self.free
        if top <= 0:
            return 0.0, 0.0
        s, e, r, a = self.start_s, self.end_s, self.rate_per_s, self.base
        if r <= 0.0:
            ca = _poisson_cdfs(top - 1, a)
            c = sum(w * ca[k - self.free - 1] for k, w in mix if k > self.free)
            if math.isinf(e):
                return None if c > 1e-12 else (0.0, 0.0)
            return c * (e - s), c * (e * e - s * s) / 2.0
        b = math.inf if math.isinf(e) else a + r * (e - s)
        ca, cb = _poisson_cdfs(top, a), _poisson_cdfs(top, b)
        i0 = i1 = 0.0
        sums = [(0.0, 0.0)]  # (i0, i1) over j < need, for need = 0..top
        for j in range(top):
            i0 += ca[j] - cb[j]
            i1 += (j + 1) * (ca[j + 1] - cb[j + 1])
            sums.append((i0, i1))
        m0 = m1 = 0.0
        for k, w in mix:
            need = k - self.free
            if need > 0:
                j0, j1 = sums[need]
                m0 += w * j0 / r
                m1 += w * ((s - a / r) * j0 + j1 / r) / r
        return m0, m1


def residual_share(busy: int, cv: float) -> float:
    """Mean time to the first of ``busy`` slots freeing, as a share of ``handle_s / busy`` (docstring)."""
    one = (1.0 + min(max(cv, 0.0), 1.0) ** 2) / 2.0
    return 1.0 - (1.0 - one) / math.sqrt(max(1, busy))


def _segments(pools: Sequence[Stage], service: Service) -> list[_Segment]:
    """Piecewise-constant rates: per stage, the unknown slots' constant rate plus, for the slots whose
    elapsed time is known, the mean of their summed hazard over each piece of ``HAZARD_GRID_S``."""
    ordered = sorted(pools, key=lambda p: p.after_s)
    handle_s = service.handle_s
    if not ordered or handle_s <= 0 or not math.isfinite(handle_s):
        return []
    out: list[_Segment] = []
    base = 0.0
    for i, p in enumerate(ordered):
        start = 0.0 if i == 0 else max(0.0, p.after_s)
        end = max(start, ordered[i + 1].after_s) if i + 1 < len(ordered) else math.inf
        known = p.elapsed[: max(0, p.busy_slots)]
        unknown = max(0, p.busy_slots) - len(known)
        flat = unknown / (handle_s * residual_share(unknown, service.handle_cv)) if unknown else 0.0
        if i + 1 == len(ordered) and p.busy_slots <= 0 and p.free_slots <= 0:
            flat = 1.0 / PRIOR_S_PER_DEPARTURE  # nobody logged in can serve it (module docstring)
        for a, b in _pieces(start, end):
            rate = flat + _known_rate(known, a, b, service)
            out.append(_Segment(a, b, rate, max(0, p.free_slots), base))
            if math.isfinite(b):
                base += rate * (b - a)
    return out


def _pieces(start: float, end: float) -> list[tuple[float, float]]:
    cuts = [start, *(g for g in HAZARD_GRID_S if start < g < end), end]
    return list(itertools.pairwise(cuts))


def _known_rate(known: Sequence[tuple[float, bool]], a: float, b: float, service: Service) -> float:
    """The summed hazard of the known busy slots, averaged over [a, b) seconds from now; past the grid
    (b infinite) each slot frees again and again at the renewal rate, one per mean handle time."""
    total = 0.0
    if b <= a:
        return total  # a stage that lasts no time adds nothing
    for elapsed_s, mot in known:
        mean_s, cv = service.handle(mot)
        if math.isinf(b):
            total += 1.0 / mean_s
        else:
            total += (_cum_hazard(elapsed_s, b, mean_s, cv) - _cum_hazard(elapsed_s, a, mean_s, cv)) / (b - a)
    return total


def _cum_hazard(elapsed_s: float, t: float, mean_s: float, cv: float) -> float:
    """-ln P(a slot busy for ``elapsed_s`` is still busy ``t`` s from now), lognormal handle times."""
    return _log_survival(elapsed_s, mean_s, cv) - _log_survival(elapsed_s + t, mean_s, cv)


def _log_survival(x_s: float, mean_s: float, cv: float) -> float:
    """ln P(H > x) for a lognormal H of this mean and coefficient of variation (log space: no underflow)."""
    if x_s <= 0.0:
        return 0.0
    sigma = math.sqrt(math.log1p(max(cv, MIN_HANDLE_CV) ** 2))
    z = (math.log(x_s) - math.log(mean_s) + sigma * sigma / 2.0) / (sigma * math.sqrt(2.0))
    tail = math.erfc(z)
    if tail > 1e-300:
        return math.log(0.5 * tail)
    return -z * z - math.log(z * math.sqrt(math.pi)) - math.log(2.0)  # erfc's asymptote


def _survival(segs: Sequence[_Segment], mix: Sequence[tuple[int, float]], t: float) -> float:
    seg = next((s for s in reversed(segs) if s.start_s <= t), segs[0])
    return seg.survival(mix, t)


def _quantile(segs: Sequence[_Segment], mix: Sequence[tuple[int, float]], q: float) -> float:
    """The smallest t with P(T <= t) >= q, to 0.1 s."""
    target = 1.0 - q
    if _survival(segs, mix, 0.0) <= target:
        return 0.0
    hi = 1.0
    while _survival(segs, mix, hi) > target:
        hi *= 2.0
        if hi >= MAX_WAIT_S:
            return MAX_WAIT_S
    lo = 0.0
    while hi - lo > 0.1:
        mid = (lo + hi) / 2.0
        if _survival(segs, mix, mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _poisson_cdfs(n: int, mean: float) -> list[float]:
    """P(Poisson(mean) <= j) for j = 0..n, in one pass (terms in log space: no underflow to a wrong 0)."""
    if math.isinf(mean):
        return [0.0] * (n + 1)
    if mean <= 0.0:
        return [1.0] * (n + 1)
    log_mean = math.log(mean)
    out: list[float] = []
    total = 0.0
    for i in range(n + 1):
        total += math.exp(-mean + i * log_mean - math.lgamma(i + 1))
        out.append(min(1.0, total))
    return out
