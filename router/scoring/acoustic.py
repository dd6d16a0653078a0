"""Voice features of one turn's audio with numpy alone: loudness, pitch and speech rate.

- Loudness: RMS per 30 ms frame (10 ms hop); the active speech is every frame within 30 dB of the loud end
  (95th percentile) and above -55 dBFS; its level is the mean power of those frames, in dBFS.
- Pitch: YIN (de Cheveigné & Kawahara, JASA 2002: the cumulative mean normalised difference, its first
  dip under 0.15, parabolic refinement) on at most ``PITCH_FRAMES`` active frames spread over the turn. A
  median and a 10-90 % range in semitones need no more, and the cost stays flat for long turns. Frames
  more than an octave from the median (octave errors) are left out of the range.
- Speech rate: the centroid of the loudness envelope's modulation spectrum (1-16 Hz). Speech modulates
  its amplitude at the syllable rate (the spectrum peaks near 4-5 Hz: Ding et al., Neurosci. Biobehav. Rev.
  2017), so the centroid follows syllables per second; espeak-ng at 130 and 210 words per minute measure
  about 4 and 6.3 Hz. Counting syllable nuclei (peaks of the loudness contour) missed a third of the
  syllables of fast speech, whose dips are shallow.

Not librosa: its ``yin`` alone took ~1.3 ms on a 4.8 s turn at 8 kHz where this whole module takes about
half that (docs/voice.md has the bench), and its first call compiles numba code for ~19 s, which a worker
would spend inside a batch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from router.audio import Pcm, bad_audio, decode_wav
from router.domain.voice import VoiceFeatures

Floats = npt.NDArray[np.float64]

HOP_S = 0.010
FRAME_S = 0.030
ACTIVE_RANGE_DB = 30.0
SILENCE_DBFS = -55.0  # the loudest frames under this: nobody spoke (or the line was dead)
MIN_SPEECH_S = 0.25
CLIP_SHARE = 0.01  # more than this share of samples at full scale: the level and pitch are unreliable
PITCH_MIN_HZ = 60.0
PITCH_MAX_HZ = 500.0
PITCH_WINDOW_S = 0.025
PITCH_FRAMES = 32
PITCH_RATE_HZ = 8_000
YIN_THRESHOLD = 0.15
YIN_VOICED_MAX = 0.35  # a frame whose best dip stays above this is not voiced
MIN_VOICED_FRAMES = 5
RATE_BAND_HZ = (1.0, 16.0)


def features_from_wav(b64: str, max_s: float) -> VoiceFeatures:
    """The features of a contact.audio payload; ``EventError('bad_audio: ...')`` when it has none to give
    (silence, clipping, no voiced speech, too long)."""
    return voice_features(decode_wav(b64, max_s))


def voice_features(pcm: Pcm) -> VoiceFeatures:
    x, sr = pcm.samples, pcm.rate_hz
    _check_clipping(x)
    db = _frame_levels(x, round(HOP_S * sr), FRAME_S / HOP_S)
    active = _active(db)
    speech_s = float(active.sum()) * HOP_S
    if speech_s < MIN_SPEECH_S:
        raise bad_audio(f"{speech_s:.2f} s of speech above {SILENCE_DBFS:.0f} dBFS; silence or a dead line")
    f0 = _pitch(x, sr, round(HOP_S * sr), np.flatnonzero(active))
    if len(f0) < MIN_VOICED_FRAMES:
        raise bad_audio("no voiced speech found (noise, whisper or silence)")
    pitch_hz, spread_st = _pitch_stats(f0)
    return VoiceFeatures(
        pitch_hz=round(pitch_hz, 2),
        pitch_spread_st=round(spread_st, 3),
        loudness_dbfs=round(float(10.0 * np.log10(np.mean(10.0 ** (db[active] / 10.0)))), 2),
        speech_rate=round(_syllabic_rate(db), 3),
        speech_s=round(speech_s, 2),
    )


def _check_clipping(x: npt.NDArray[np.float32]) -> None:
    share = float(np.count_nonzero(np.abs(x) >= 32767 / 32768)) / len(x)
    if share > CLIP_SHARE:
        raise bad_audio(f"clipped: {share:.1%} of samples at full scale")


def _frame_levels(x: npt.NDArray[np.float32], hop: int, hops_per_frame: float) -> Floats:
    """dB re full scale of each FRAME_S frame, every HOP_S: sums of whole hops (no long cumulative sum)."""
    k = round(hops_per_frame)
    n_hops = len(x) // hop
    if n_hops < k:
        raise bad_audio(f"{len(x) / hop * HOP_S * 1000:.0f} ms of audio; too short to hear a voice")
    sq = x[: n_hops * hop].reshape(n_hops, hop)
    per_hop = np.einsum("ij,ij->i", sq, sq, dtype=np.float64)
    frames = sum(per_hop[i : n_hops - k + 1 + i] for i in range(k)) / (k * hop)
    levels: Floats = 10.0 * np.log10(frames + 1e-12)
    return levels


def _pitch_stats(f0: Floats) -> tuple[float, float]:
    """Median pitch (Hz) and its 10-90 % range (semitones), leaving out frames an octave or more from the
    median (octave errors)."""
    semitones = np.sort(12.0 * np.log2(f0 / 100.0))
    median = float(semitones[len(semitones) // 2])
    kept = semitones[np.abs(semitones - median) < 12.0]  # sorted still
    p10, p90 = kept[int(0.1 * (len(kept) - 1))], kept[int(np.ceil(0.9 * (len(kept) - 1)))]
    return 100.0 * 2.0 ** (median / 12.0), float(p90 - p10)


def _active(db: Floats) -> npt.NDArray[np.bool_]:
    loud = float(np.partition(db, int(0.95 * (len(db) - 1)))[int(0.95 * (len(db) - 1))])
    if loud < SILENCE_DBFS:
        return np.zeros(len(db), dtype=bool)
    return (db > loud - ACTIVE_RANGE_DB) & (db > SILENCE_DBFS)


def _pitch(x: npt.NDArray[np.float32], sr: int, hop: int, active_idx: npt.NDArray[np.intp]) -> Floats:
    """F0 of the voiced frames among up to PITCH_FRAMES active frames spread evenly over the turn, at 8 kHz
    (16 kHz frames are brought down by averaging sample pairs, a crude low-pass that pitch tolerates)."""
    step = max(1, sr // PITCH_RATE_HZ)
    rate = sr // step
    w = round(PITCH_WINDOW_S * rate)
    tau_min, tau_max = int(rate / PITCH_MAX_HZ), int(rate / PITCH_MIN_HZ) + 1
    n = w + tau_max
    idx = active_idx[active_idx * hop + n * step <= len(x)]
    if len(idx) > PITCH_FRAMES:
        idx = idx[np.linspace(0, len(idx) - 1, PITCH_FRAMES).round().astype(np.intp)]
    if len(idx) == 0:
        return np.zeros(0)
    seg = x[idx[:, None] * hop + np.arange(n * step)[None, :]].astype(np.float64)
    if step > 1:
        seg = seg.reshape(len(idx), n, step).mean(axis=2)
    seg -= seg.mean(axis=1, keepdims=True)
    tau, dip = _first_dip(_cmnd(seg, w, tau_max), tau_min)
    f0: Floats = rate / tau[dip <= YIN_VOICED_MAX]
    return f0


def _cmnd(seg: Floats, w: int, tau_max: int) -> Floats:
    """YIN's cumulative mean normalised difference d'(tau), tau = 0..tau_max, one row per frame, with the
    difference function from FFT correlations: d(tau) = E(0) + E(tau) - 2 r(tau)."""
    size = 1 << int(np.ceil(np.log2(seg.shape[1])))  # lags 0..tau_max do not wrap round
    spec_all = np.fft.rfft(seg, size, axis=1)
    spec_win = np.fft.rfft(seg[:, :w], size, axis=1)
    r = np.fft.irfft(spec_all * np.conj(spec_win), size, axis=1)[:, : tau_max + 1]
    sq = np.empty((seg.shape[0], seg.shape[1] + 1))
    sq[:, 0] = 0.0
    np.cumsum(seg * seg, axis=1, out=sq[:, 1:])
    energy = sq[:, w : w + tau_max + 1] - sq[:, : tau_max + 1]  # E(tau): the window's energy shifted by tau
    taus = np.arange(tau_max + 1)
    d = np.maximum(energy[:, :1] + energy - 2.0 * r, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1)
    out: Floats = np.ones_like(d)
    out[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    return out


def _first_dip(cmnd: Floats, tau_min: int) -> tuple[Floats, Floats]:
    """Per frame: the first lag from tau_min whose d' is under the threshold, at the bottom of its dip
    (else the global minimum), refined by a parabola through its neighbours; and d' there."""
    body = cmnd[:, tau_min:-1]
    under = body < YIN_THRESHOLD
    first = np.where(under.any(axis=1), under.argmax(axis=1), body.argmin(axis=1))
    rows = np.arange(len(body))
    # the bottom of the dip that starts there: the first lag from it where d' stops falling
    lags = np.arange(body.shape[1] - 1)
    rising = (body[:, 1:] >= body[:, :-1]) & (lags[None, :] >= first[:, None])
    bottom = np.where(rising.any(axis=1), rising.argmax(axis=1), body.shape[1] - 1)
    t = bottom + tau_min
    a, b, c = cmnd[rows, t - 1], cmnd[rows, t], cmnd[rows, t + 1]
    den = a - 2.0 * b + c
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1.0, den), 0.0)
    return t + np.clip(shift, -1.0, 1.0), b


def _syllabic_rate(db: Floats) -> float:
    """The centroid (Hz) of the loudness envelope's modulation spectrum between RATE_BAND_HZ: speech
    modulates its amplitude at the syllable rate, so this follows syllables per second."""
    env = 10.0 ** (db / 20.0)
    env = (env - env.mean()) * np.hanning(len(env))
    size = 1 << int(np.ceil(np.log2(2 * len(env))))
    power = np.abs(np.fft.rfft(env, size)) ** 2
    freqs = np.fft.rfftfreq(size, HOP_S)
    band = (freqs >= RATE_BAND_HZ[0]) & (freqs <= RATE_BAND_HZ[1])
    total = float(power[band].sum())
    return float((freqs[band] * power[band]).sum() / total) if total > 0 else 0.0
