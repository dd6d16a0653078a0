"""The emotional trajectory of one contact: customer-turn intensities over time. Pure functions."""

from __future__ import annotations

import math

from router.domain.model import Trajectory


def clamp01(value: float) -> float:
    """Clamp to [0, 1]; NaN counts as 0 so a broken score can never trigger or block a moment of truth."""
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


def word_count(text: str) -> int:
    """A turn's length in words as typed (runs of non-space), which the learned detector reads."""
    return len(text.split())


def add_turn(
    traj: Trajectory, intensity: float, mot_prob: float = 0.0, keep: int = 20, words: int = 0
) -> Trajectory:
    """Return ``traj`` with one more customer turn (its intensity, moment-of-truth probability and length in
    words).

    Only the last ``keep`` intensities are kept (bounded state in Redis), but ``peak`` and ``turns`` cover
    the whole contact: customers remember the worst moment even after it scrolled out of the window.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    value, prob = clamp01(intensity), clamp01(mot_prob)
    turn = traj.turns + 1
    # The first turn always sets the peak (even at 0) so peak_turn is never 0 once a turn exists;
    # later turns replace it only when strictly higher, so the peak keeps its earliest turn number.
    new_peak = traj.turns == 0 or value > traj.peak
    new_mot_peak = traj.turns == 0 or prob > traj.mot_peak
    # a trajectory stored before per-turn probabilities existed gets zeros for its earlier turns
    probs = (0.0,) * (len(traj.intensities) - len(traj.mot_probs)) + traj.mot_probs
    return Trajectory(
        intensities=(*traj.intensities, value)[-keep:],
        peak=value if new_peak else traj.peak,
        peak_turn=turn if new_peak else traj.peak_turn,
        turns=turn,
        mot_probs=(*probs, prob)[-keep:],
        mot_peak=prob if new_mot_peak else traj.mot_peak,
        mot_peak_turn=turn if new_mot_peak else traj.mot_peak_turn,
        last_words=max(0, words),
    )
