"""How the customer sounds: voice features of a turn, the caller's running baseline, an arousal estimate,
and the rule that lets arousal raise a turn's scores. Pure functions; docs/voice.md explains the choices.

Arousal is how activated a voice is (raised, fast, loud), not whether the customer is negative: the fusion
only ever raises a turn's scores, and a platform's positive valence damps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from router.domain.model import Reason, Trajectory

# One unit of each deviation from the caller's baseline; a turn one unit up on every feature has arousal
# sigmoid(AROUSAL_SLOPE) = 0.82. Sizes of an audibly raised voice in the speech-emotion literature (hot
# anger vs neutral: F0 up by several semitones, level up by ~6 dB or more, tempo up by a fifth or more).
PITCH_UNIT_ST = 3.0
SPREAD_UNIT_ST = 3.0
LOUDNESS_UNIT_DB = 6.0
RATE_UNIT_LOG = math.log(1.25)
AROUSAL_SLOPE = 1.5
WEIGHTS: Mapping[str, float] = {"pitch": 0.35, "loudness": 0.35, "spread": 0.15, "rate": 0.15}
# With no earlier turn of the caller: population norms, pitch level left out (it says more about who is
# speaking than how), and each deviation counted half. ITU-T P.56's nominal active speech level is -26 dBov.
NORM_LOUDNESS_DBFS = -26.0
NORM_SPREAD_ST = 6.0
NORM_RATE = 4.5
FIRST_TURN_WEIGHT = 0.5
# The baseline follows the caller's calmer turns: a mean over the first BASELINE_TURNS, then a moving
# average; a turn at or above BASELINE_MAX_AROUSAL does not move it (a caller who grows angry stays angry
# relative to how the call began).
BASELINE_TURNS = 5
BASELINE_MAX_AROUSAL = 0.65
AROUSAL_NEUTRAL = 0.5


@dataclass(frozen=True, slots=True)
class VoiceFeatures:
    """What one voice turn sounds like; None where unknown (a platform's cue may carry only some).

    pitch_hz: median fundamental frequency of the voiced frames.
    pitch_spread_st: range of the pitch (10th to 90th percentile), semitones.
    loudness_dbfs: RMS level of the active speech, dB re full scale.
    speech_rate: syllabic rate, Hz (about syllables per second).
    speech_s: seconds of active speech the features come from (0: unknown).
    """

    pitch_hz: float | None = None
    pitch_spread_st: float | None = None
    loudness_dbfs: float | None = None
    speech_rate: float | None = None
    speech_s: float = 0.0

    def to_json(self) -> dict[str, float | None]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> VoiceFeatures:
        return cls(
            pitch_hz=_opt(d.get("pitch_hz")),
            pitch_spread_st=_opt(d.get("pitch_spread_st")),
            loudness_dbfs=_opt(d.get("loudness_dbfs")),
            speech_rate=_opt(d.get("speech_rate")),
            speech_s=float(d.get("speech_s") or 0.0),
        )

    @property
    def empty(self) -> bool:
        return all(getattr(self, k) is None for k in MEASURES)


MEASURES = ("pitch_hz", "pitch_spread_st", "loudness_dbfs", "speech_rate")


def _opt(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True, slots=True)
class VoiceBaseline:
    """The caller's voice so far in this contact: running means of the features of the turns it kept."""

    turns: int = 0
    features: VoiceFeatures = VoiceFeatures()

    def to_json(self) -> dict[str, Any]:
        return {"n": self.turns, **self.features.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> VoiceBaseline:
        return cls(int(d.get("n", 0)), VoiceFeatures.from_json(d))


@dataclass(frozen=True, slots=True)
class Arousal:
    """An arousal estimate in [0, 1] (0.5: as the baseline) and the deviations it rests on."""

    value: float
    source: str  # "audio" (the built-in estimate) or the platform's name
    deviations: Mapping[str, float]  # feature -> deviation in its own unit (st, dB, ratio)
    relative: bool  # True: against the caller's earlier turns; False: population norms (first turn)


def _deviations(f: VoiceFeatures, b: VoiceFeatures | None) -> dict[str, tuple[float, float]]:
    """feature -> (deviation in its own unit, the same in arousal units) for the features both have."""
    out: dict[str, tuple[float, float]] = {}
    ref_loud = b.loudness_dbfs if b is not None else NORM_LOUDNESS_DBFS
    ref_spread = b.pitch_spread_st if b is not None else NORM_SPREAD_ST
    ref_rate = b.speech_rate if b is not None else NORM_RATE
    if b is not None and f.pitch_hz and b.pitch_hz:
        st = 12.0 * math.log2(f.pitch_hz / b.pitch_hz)
        out["pitch"] = (st, st / PITCH_UNIT_ST)
    if f.loudness_dbfs is not None and ref_loud is not None:
        db = f.loudness_dbfs - ref_loud
        out["loudness"] = (db, db / LOUDNESS_UNIT_DB)
    if f.pitch_spread_st is not None and ref_spread is not None:
        st = f.pitch_spread_st - ref_spread
        out["spread"] = (st, st / SPREAD_UNIT_ST)
    if f.speech_rate and ref_rate:
        ratio = f.speech_rate / ref_rate
        out["rate"] = (ratio - 1.0, math.log(ratio) / RATE_UNIT_LOG)
    return out


def estimate_arousal(features: VoiceFeatures, baseline: VoiceBaseline, source: str = "audio") -> Arousal:
    """Arousal of one turn against the caller's baseline (population norms before the caller's first
    turn): a logistic function of the weighted mean deviation of pitch, loudness, pitch range and rate."""
    relative = baseline.turns > 0
    devs = _deviations(features, baseline.features if relative else None)
    weight = sum(WEIGHTS[k] for k in devs)
    z = sum(WEIGHTS[k] * units for k, (_, units) in devs.items()) / weight if weight else 0.0
    z *= 1.0 if relative else FIRST_TURN_WEIGHT
    value = 1.0 / (1.0 + math.exp(-AROUSAL_SLOPE * max(-20.0, min(20.0, z))))
    return Arousal(round(value, 4), source, {k: round(d, 3) for k, (d, _) in devs.items()}, relative)


def update_baseline(baseline: VoiceBaseline, features: VoiceFeatures, arousal: float) -> VoiceBaseline:
    """The baseline after this turn: the first turn seeds it, a calm enough turn moves it."""
    if baseline.turns > 0 and arousal >= BASELINE_MAX_AROUSAL:
        return baseline
    alpha = 1.0 / min(baseline.turns + 1, BASELINE_TURNS)
    old = baseline.features

    def mix(x: float | None, m: float | None) -> float | None:
        if x is None or m is None:
            return m if x is None else x
        return m + alpha * (x - m)

    return VoiceBaseline(
        baseline.turns + 1,
        VoiceFeatures(
            pitch_hz=mix(features.pitch_hz, old.pitch_hz),
            pitch_spread_st=mix(features.pitch_spread_st, old.pitch_spread_st),
            loudness_dbfs=mix(features.loudness_dbfs, old.loudness_dbfs),
            speech_rate=mix(features.speech_rate, old.speech_rate),
            speech_s=old.speech_s + features.speech_s,
        ),
    )


@dataclass(frozen=True, slots=True)
class Fused:
    intensity: float
    mot_prob: float
    lift: float  # what arousal added (0: nothing)


def fuse(intensity: float, mot_prob: float, arousal: float, valence: float | None, gain: float) -> Fused:
    """The documented rule: lift = gain * 2 * max(0, arousal - 0.5) * (1 - max(0, valence)); the turn's
    intensity and moment-of-truth probability each rise by the lift, capped at 1. A calm or average voice
    (arousal <= 0.5) changes nothing: the voice can add urgency the words lack, never take it away."""
    damp = 1.0 - max(0.0, valence) if valence is not None else 1.0
    lift = gain * 2.0 * max(0.0, arousal - AROUSAL_NEUTRAL) * damp
    if lift <= 0.0:
        return Fused(intensity, mot_prob, 0.0)
    return Fused(min(1.0, intensity + lift), min(1.0, mot_prob + lift), lift)


def raise_last_turn(traj: Trajectory, intensity: float, mot_prob: float) -> Trajectory:
    """``traj`` with its latest turn's scores raised (audio that arrived after its transcript): the peaks
    move to that turn when it now tops them."""
    if not traj.intensities:
        return traj
    value = max(traj.intensities[-1], intensity)
    prob = max(traj.mot_probs[-1] if traj.mot_probs else 0.0, mot_prob)
    probs = (*traj.mot_probs[:-1], prob) if traj.mot_probs else (prob,)
    return replace(
        traj,
        intensities=(*traj.intensities[:-1], value),
        mot_probs=probs,
        peak=max(traj.peak, value),
        peak_turn=traj.turns if value > traj.peak else traj.peak_turn,
        mot_peak=max(traj.mot_peak, prob),
        mot_peak_turn=traj.turns if prob > traj.mot_peak else traj.mot_peak_turn,
    )


_DEVIATION_TEXT = {
    "pitch": "pitch {:+.1f} st",
    "loudness": "loudness {:+.0f} dB",
    "spread": "pitch range {:+.1f} st",
    "rate": "rate {:+.0%}",
}


def acoustic_reason(arousal: Arousal, before: float, after: float, seq: int) -> Reason:
    """The ``acoustic_arousal`` reason of a turn whose voice raised its intensity."""
    parts = [f"from {arousal.source}"] if arousal.source != "audio" else []
    if arousal.deviations:
        ref = "the caller's earlier turns" if arousal.relative else "typical speech (first voice turn)"
        devs = ", ".join(_DEVIATION_TEXT[k].format(v) for k, v in arousal.deviations.items())
        parts.append(f"vs {ref} ({devs})")
    basis = " ".join(parts)
    return Reason(
        "acoustic_arousal",
        f"voice arousal {arousal.value:.2f} on turn seq {seq} {basis}: intensity {before:.2f} -> {after:.2f}",
    )
