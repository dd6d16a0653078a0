#!/usr/bin/env python
"""The smallest error an announced wait can have when handle times vary as the simulator's do.

    .venv/bin/python scripts/ewt_oracle.py [--states 1500] [--draws 600] [--seed 0]

An oracle knows everything the store could know and more: how long every busy slot has been busy, the
exact handle-time law (lognormal, sigma 0.4, as `router/sim/agents.py` draws it) and how many contacts
are ahead.
Nothing else varies: nobody jumps the queue, the ladder never widens, no agent declines or leaves. It
announces the median of the wait that follows (the point that minimises the mean absolute error) and is
scored as `router simulate` scores the router: the sum of |announced - actual| over the sum of actual
waits. The table is that share by busy slots in the contact's pool and contacts ahead of it.

The wait is the (ahead + 1)-th moment a slot frees, plus an agent's 2-8 s to answer. A busy slot is
part-way through its work: its whole handle time is drawn length-biased (a long piece of work is more
likely to be the one in progress) and its age uniformly within it; it frees at the remaining time, then
after fresh whole handle times. The share does not depend on the handle time's scale.

With nobody ahead the wait is the first of a few random remaining times, and even this oracle errs by about
half the mean wait: docs/simulation-history.md compares that with the issue's 30% target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.sim.agents import ACCEPT_DELAY_S, HANDLE_MEDIAN_S, HANDLE_SIGMA

SIGMA = HANDLE_SIGMA
MEDIAN_S = HANDLE_MEDIAN_S["chat"]  # the share is scale-free
ANSWER_S = ACCEPT_DELAY_S
BUSY_SLOTS = (1, 2, 4, 8)
AHEAD = (0, 1, 2, 4, 8)


class Oracle:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.mu = float(np.log(MEDIAN_S))
        whole = self.rng.lognormal(self.mu, SIGMA, 400_000)
        self.in_progress = whole[self.rng.random(whole.size) < whole / whole.max()]  # length-biased

    def remaining(self, age_s: float, draws: int) -> np.ndarray:
        """Remaining handle times of a slot busy for ``age_s``: the law conditioned on lasting that long."""
        out = np.empty(draws)
        got = 0
        while got < draws:
            h = self.rng.lognormal(self.mu, SIGMA, 4 * draws)
            h = h[h > age_s][: draws - got]
            out[got : got + h.size] = h - age_s
            got += h.size
        return out

    def state(self, busy: int, ahead: int, draws: int) -> tuple[float, float]:
        """(expected |wait - median|, expected wait) for one pool of ``busy`` slots of random ages."""
        ages = self.rng.random(busy) * self.rng.choice(self.in_progress, busy)
        frees = [np.stack([self.remaining(a, draws) for a in ages], axis=1)]
        while len(frees) * busy < ahead + 1:
            frees.append(frees[-1] + self.rng.lognormal(self.mu, SIGMA, (draws, busy)))
        ordered = np.sort(np.concatenate(frees, axis=1), axis=1)
        wait = ordered[:, ahead] + self.rng.uniform(*ANSWER_S, draws)
        return float(np.mean(np.abs(wait - np.median(wait)))), float(np.mean(wait))

    def share(self, busy: int, ahead: int, states: int, draws: int) -> float:
        r = np.array([self.state(busy, ahead, draws) for _ in range(states)])
        return float(r[:, 0].sum() / r[:, 1].sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--states", type=int, default=1500, help="pools drawn per cell")
    ap.add_argument("--draws", type=int, default=600, help="futures drawn per pool")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    oracle = Oracle(args.seed)
    print("oracle's mean absolute error / mean wait, by busy slots (rows) and contacts ahead (columns)")
    print("busy | " + " ".join(f"{a:>5d}" for a in AHEAD))
    for busy in BUSY_SLOTS:
        cells = [oracle.share(busy, ahead, args.states, args.draws) for ahead in AHEAD]
        print(f"{busy:>4d} | " + " ".join(f"{c:5.2f}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
