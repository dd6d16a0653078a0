"""The voice rules (router/domain/voice.py): arousal against the caller's baseline, the baseline's update,
the fusion rule and the late raise of a turn. Pure: no audio here (tests/scoring/test_acoustic.py has it)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.model import Trajectory
from router.domain.trajectory import add_turn
from router.domain.voice import (
    BASELINE_MAX_AROUSAL,
    VoiceBaseline,
    VoiceFeatures,
    acoustic_reason,
    estimate_arousal,
    fuse,
    raise_last_turn,
    update_baseline,
)
from tests.domain.domain_strategies import PROPERTY, trajectories, unit_floats

CALM = VoiceFeatures(pitch_hz=110.0, pitch_spread_st=3.0, loudness_dbfs=-26.0, speech_rate=4.0, speech_s=3.0)
SEEDED = update_baseline(VoiceBaseline(), CALM, 0.5)


def louder(f: VoiceFeatures, db: float = 0.0, st_up: float = 0.0, rate: float = 1.0) -> VoiceFeatures:
    assert f.pitch_hz is not None and f.loudness_dbfs is not None and f.speech_rate is not None
    return VoiceFeatures(
        pitch_hz=f.pitch_hz * 2 ** (st_up / 12),
        pitch_spread_st=f.pitch_spread_st,
        loudness_dbfs=f.loudness_dbfs + db,
        speech_rate=f.speech_rate * rate,
        speech_s=f.speech_s,
    )


def test_a_turn_like_the_baseline_is_neutral() -> None:
    a = estimate_arousal(CALM, SEEDED)
    assert a.value == pytest.approx(0.5) and a.relative
    assert a.deviations == {"pitch": 0.0, "loudness": 0.0, "spread": 0.0, "rate": 0.0}


def test_raised_voice_is_aroused_and_a_softer_one_is_calm() -> None:
    raised = estimate_arousal(louder(CALM, db=6, st_up=3, rate=1.25), SEEDED)
    # one unit up on pitch, loudness and rate, the pitch range unchanged: z = 0.35 + 0.35 + 0.15
    assert raised.value == pytest.approx(1 / (1 + math.exp(-1.5 * 0.85)), abs=1e-4)
    assert raised.deviations["pitch"] == pytest.approx(3.0, abs=1e-3)
    calmer = estimate_arousal(louder(CALM, db=-6, st_up=-3, rate=0.8), SEEDED).value
    assert calmer == pytest.approx(1 - raised.value, abs=1e-4)  # symmetric about the baseline


@PROPERTY
@given(
    db=st.floats(-20, 20),
    st_up=st.floats(-12, 12),
    rate=st.floats(0.3, 3.0),
    extra=st.floats(0.1, 10),
    which=st.sampled_from(["db", "st_up", "rate"]),
)
def test_arousal_rises_with_each_feature(
    db: float, st_up: float, rate: float, extra: float, which: str
) -> None:
    base = louder(CALM, db=db, st_up=st_up, rate=rate)
    kw = {"db": db, "st_up": st_up, "rate": rate}
    kw[which] = kw[which] * (1 + extra) if which == "rate" else kw[which] + extra
    more = louder(CALM, **kw)
    a, b = estimate_arousal(base, SEEDED).value, estimate_arousal(more, SEEDED).value
    assert 0.0 <= a <= b <= 1.0


def test_first_turn_uses_population_norms_without_pitch_level_and_at_half_weight() -> None:
    a = estimate_arousal(louder(CALM, db=6, st_up=12), VoiceBaseline())
    assert not a.relative and "pitch" not in a.deviations
    # 6 dB over the nominal level counts half: sigmoid(1.5 * 0.5 * weighted mean)
    relative = estimate_arousal(louder(CALM, db=6), SEEDED).value
    assert 0.5 < a.value < relative


def test_missing_features_are_left_out_not_counted_as_calm() -> None:
    only_loud = VoiceFeatures(loudness_dbfs=-14.0)
    a = estimate_arousal(only_loud, SEEDED)
    assert set(a.deviations) == {"loudness"}
    assert a.value == pytest.approx(1 / (1 + math.exp(-1.5 * 2.0)), abs=1e-4)
    assert estimate_arousal(VoiceFeatures(), SEEDED).value == 0.5


def test_baseline_seeds_then_follows_calm_turns_but_not_aroused_ones() -> None:
    b1 = update_baseline(VoiceBaseline(), louder(CALM, db=10), 0.95)  # the first turn always seeds
    assert b1.turns == 1 and b1.features.loudness_dbfs == pytest.approx(-16.0)
    b2 = update_baseline(b1, CALM, 0.3)
    assert b2.turns == 2 and b2.features.loudness_dbfs == pytest.approx(-21.0)  # mean of two
    assert update_baseline(b2, louder(CALM, db=20), BASELINE_MAX_AROUSAL) == b2
    b = b2
    for _ in range(20):
        b = update_baseline(b, CALM, 0.3)
    assert b.features.loudness_dbfs == pytest.approx(-26.0, abs=0.1)
    assert VoiceBaseline.from_json(b.to_json()).turns == b.turns


def test_features_round_trip_through_json() -> None:
    assert VoiceFeatures.from_json(CALM.to_json()) == CALM
    partial = VoiceFeatures(pitch_hz=200.0)
    assert VoiceFeatures.from_json(partial.to_json()) == partial


@PROPERTY
@given(i=unit_floats, p=unit_floats, a=unit_floats, gain=unit_floats, v=st.none() | st.floats(-1, 1))
def test_fusion_only_raises_is_bounded_and_needs_arousal_over_half(
    i: float, p: float, a: float, gain: float, v: float | None
) -> None:
    f = fuse(i, p, a, v, gain)
    assert i <= f.intensity <= 1.0 and p <= f.mot_prob <= 1.0
    assert f.lift >= 0.0
    if a <= 0.5 or gain == 0 or (v is not None and v >= 1.0):
        assert (f.intensity, f.mot_prob, f.lift) == (i, p, 0.0)
    else:
        assert f.lift == pytest.approx(gain * 2 * (a - 0.5) * (1 - max(0.0, v or 0.0)))


def test_fusion_rule_numbers() -> None:
    f = fuse(0.4, 0.5, 0.9, None, 0.3)
    assert (f.intensity, f.mot_prob, f.lift) == pytest.approx((0.64, 0.74, 0.24))
    assert fuse(0.4, 0.5, 0.9, 0.5, 0.3).lift == pytest.approx(0.12)  # positive valence halves it
    assert fuse(0.4, 0.5, 0.9, -0.8, 0.3).lift == pytest.approx(0.24)  # negative valence does not add
    assert fuse(0.9, 0.95, 1.0, None, 0.3).intensity == 1.0


@PROPERTY
@given(traj=trajectories(), i=unit_floats, p=unit_floats)
def test_raising_the_last_turn_is_adding_it_with_the_higher_scores(
    traj: Trajectory, i: float, p: float
) -> None:
    if not traj.intensities:
        assert raise_last_turn(traj, i, p) == traj
        return
    raised = raise_last_turn(traj, i, p)
    assert raised.turns == traj.turns and len(raised.intensities) == len(traj.intensities)
    assert raised.intensities[-1] == max(traj.intensities[-1], i)
    assert raised.peak == max(traj.peak, raised.intensities[-1])
    assert raised.mot_peak >= traj.mot_peak
    assert raised.intensities[:-1] == traj.intensities[:-1]


def test_raised_last_turn_takes_the_peak() -> None:
    traj = add_turn(add_turn(Trajectory(), 0.3, 0.4), 0.2, 0.3)
    raised = raise_last_turn(traj, 0.6, 0.7)
    assert (raised.peak, raised.peak_turn, raised.mot_peak, raised.mot_peak_turn) == (0.6, 2, 0.7, 2)


def test_reason_names_the_deviations_or_the_platform() -> None:
    a = estimate_arousal(louder(CALM, db=9, st_up=4, rate=1.3), SEEDED)
    r = acoustic_reason(a, 0.4, 0.62, 7)
    assert r.code == "acoustic_arousal"
    assert "caller's earlier turns" in r.text and "pitch +4.0 st" in r.text and "loudness +9 dB" in r.text
    assert "rate +30%" in r.text and "0.40 -> 0.62" in r.text and "seq 7" in r.text
    platform = estimate_arousal(CALM, SEEDED, source="genesys")
    assert "from genesys" in acoustic_reason(platform, 0.4, 0.5, 1).text
