"""The emotional trajectory of one contact: customer-turn intensities over time. Pure functions."""

from __future__ import annotations

import math

from router.domain.model import Trajectory


def clamp01(value: float) -> float:
    """Clamp to [0, 1]; NaN counts as 0 so a broken score can never trigger or block a moment of truth."""
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


def add_turn(traj: Trajectory, intensity: float, keep: int = 20) -> Trajectory:
    """Return ``traj`` with one more customer turn.

    Only the last ``keep`` intensities are kept (bounded state in Redis), but ``peak`` and ``turns`` cover
    the whole contact: customers remember the worst moment even after it scrolled out of the window.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    value = clamp01(intensity)
    turn = traj.turns + 1
    # The first turn always sets the peak (even at 0) so peak_turn is never 0 once a turn exists;
    # later turns replace it only when strictly higher, so the peak keeps its earliest turn number.
    new_peak = traj.turns == 0 or value > traj.peak
    return Trajectory(
        intensities=(*traj.intensities, value)[-keep:],
        peak=value if new_peak else traj.peak,
        peak_turn=turn if new_peak else traj.peak_turn,
        turns=turn,
    )
