"""Voice features of one turn's audio with numpy alone: loudness, pitch and speech rate.

- Loudness: RMS per 30 ms frame (10 ms hop); the active speech is every frame within 30 dB of the loud end
  (95th percentile) and above -55 dBFS; its level is the mean power of those frames, in dBFS.
- Pitch: YIN (de Cheveigné & Kawahara, JASA 2002: the cumulative mean normalised difference, its first
  dip under 0.15, parabolic refinement) on at most ``PITCH_FRAMES`` active frames spread over the turn. A
  median and a 10-90 % range in semitones need no more, and the cost stays flat for long turns. Frames
  more than an octave from the median (octave errors) are left out of the range.
- Speech rate: syllable nuclei, after de Jong & Wempe (2009): peaks of the smoothed loudness contour in
  voiced speech that stand out from the dip before them by ``NUCLEUS_DIP_DB``, per second of active speech.

Not librosa: its ``yin`` measured ~1.3 ms on a 4.8 s turn at 8 kHz (this module: about a quarter of that,
``router bench scorer``), and its first call compiles numba code for ~19 s, which a worker would spend
inside a batch.
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
PITCH_FRAMES = 64
PITCH_RATE_HZ = 8_000
YIN_THRESHOLD = 0.15
YIN_VOICED_MAX = 0.35  # a frame whose best dip stays above this is not voiced
MIN_VOICED_FRAMES = 5
NUCLEUS_DIP_DB = 2.0
NUCLEUS_MIN_GAP_S = 0.08
SMOOTH_FRAMES = 5
# vowels cross zero about as often as their first formant (< ~1 kHz); fricatives several times more
VOWEL_MAX_CROSSINGS_PER_S = 2_500.0


def features_from_wav(b64: str, max_s: float) -> VoiceFeatures:
    """The features of a contact.audio payload; ``EventError('bad_audio: ...')`` when it has none to give
    (silence, clipping, no voiced speech, too long)."""
    return voice_features(decode_wav(b64, max_s))


def voice_features(pcm: Pcm) -> VoiceFeatures:
    x = pcm.samples.astype(np.float64)
    _check_clipping(x)
    sr = pcm.rate_hz
    hop, frame = round(HOP_S * sr), round(FRAME_S * sr)
    if len(x) < frame:
        raise bad_audio(f"{pcm.duration_s * 1000:.0f} ms of audio; too short to hear a voice")
    starts = np.arange(0, len(x) - frame + 1, hop)
    db = 10.0 * np.log10(_frame_sums(x * x, starts, frame) / frame + 1e-12)
    active = _active(db)
    speech_s = float(active.sum()) * HOP_S
    if speech_s < MIN_SPEECH_S:
        raise bad_audio(f"{speech_s:.2f} s of speech above {SILENCE_DBFS:.0f} dBFS; silence or a dead line")
    loudness = float(10.0 * np.log10(np.mean(10.0 ** (db[active] / 10.0))))
    f0 = _pitch(x, sr, hop, np.flatnonzero(active))
    if len(f0) < MIN_VOICED_FRAMES:
        raise bad_audio("no voiced speech found (noise, whisper or silence)")
    semitones = np.sort(12.0 * np.log2(f0 / 100.0))
    median = float(semitones[len(semitones) // 2])
    kept = semitones[np.abs(semitones - median) <= 12.0]  # sorted still
    p10, p90 = kept[int(0.1 * (len(kept) - 1))], kept[int(np.ceil(0.9 * (len(kept) - 1)))]
    flips = (np.signbit(x[1:]) != np.signbit(x[:-1])).astype(np.float64)
    crossings_per_s = _frame_sums(flips, starts, frame - 1) / (frame - 1) * sr
    smooth = np.convolve(db, np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES, mode="same")
    nuclei = _nuclei(smooth, active & (crossings_per_s < VOWEL_MAX_CROSSINGS_PER_S))
    return VoiceFeatures(
        pitch_hz=round(100.0 * 2.0 ** (median / 12.0), 2),
        pitch_spread_st=round(float(p90 - p10), 3),
        loudness_dbfs=round(loudness, 2),
        speech_rate=round(nuclei / speech_s, 3),
        speech_s=round(speech_s, 2),
    )


def _frame_sums(v: Floats, starts: npt.NDArray[np.intp], length: int) -> Floats:
    """Sum of ``v`` over each frame [start, start + length), from one cumulative sum."""
    cs = np.concatenate([[0.0], np.cumsum(v)])
    return cs[starts + length] - cs[starts]  # type: ignore[no-any-return]


def _check_clipping(x: Floats) -> None:
    share = float(np.mean(np.abs(x) >= 32767 / 32768))
    if share > CLIP_SHARE:
        raise bad_audio(f"clipped: {share:.1%} of samples at full scale")


def _active(db: Floats) -> npt.NDArray[np.bool_]:
    loud = float(np.partition(db, int(0.95 * (len(db) - 1)))[int(0.95 * (len(db) - 1))])
    if loud < SILENCE_DBFS:
        return np.zeros(len(db), dtype=bool)
    return (db > loud - ACTIVE_RANGE_DB) & (db > SILENCE_DBFS)


def _pitch(x: Floats, sr: int, hop: int, active_idx: npt.NDArray[np.intp]) -> Floats:
    """F0 of the voiced frames among up to PITCH_FRAMES active frames spread evenly over the turn."""
    if sr > PITCH_RATE_HZ:  # the pitch needs no more than 8 kHz: average sample pairs (a crude low-pass)
        step = sr // PITCH_RATE_HZ
        x = x[: len(x) - len(x) % step].reshape(-1, step).mean(axis=1)
        hop, sr = hop // step, PITCH_RATE_HZ
    w = round(PITCH_WINDOW_S * sr)
    tau_min, tau_max = int(sr / PITCH_MAX_HZ), int(sr / PITCH_MIN_HZ) + 1
    n = w + tau_max
    starts = active_idx * hop
    keep = starts + n <= len(x)
    idx = active_idx[keep]
    if len(idx) > PITCH_FRAMES:
        idx = idx[np.linspace(0, len(idx) - 1, PITCH_FRAMES).round().astype(np.intp)]
    if len(idx) == 0:
        return np.zeros(0)
    seg = x[idx[:, None] * hop + np.arange(n)[None, :]]
    seg = seg - seg.mean(axis=1, keepdims=True)
    cmnd = _cmnd(seg, w, tau_max)
    tau, dip = _first_dip(cmnd, tau_min)
    voiced = dip <= YIN_VOICED_MAX
    f0: Floats = sr / tau[voiced]
    return f0


def _cmnd(seg: Floats, w: int, tau_max: int) -> Floats:
    """YIN's cumulative mean normalised difference d'(tau), tau = 0..tau_max, one row per frame, with the
    difference function from FFT correlations: d(tau) = E(0) + E(tau) - 2 r(tau)."""
    size = 1 << int(np.ceil(np.log2(seg.shape[1])))  # lags 0..tau_max do not wrap round
    spec_all = np.fft.rfft(seg, size, axis=1)
    spec_win = np.fft.rfft(seg[:, :w], size, axis=1)
    r = np.fft.irfft(spec_all * np.conj(spec_win), size, axis=1)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((seg.shape[0], 1)), np.cumsum(seg * seg, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy = sq[:, taus + w] - sq[:, taus]  # E(tau): the window's energy shifted by tau
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
    # walk down to the bottom of the dip that starts there (a few steps at most)
    for _ in range(16):
        nxt = np.minimum(first + 1, body.shape[1] - 1)
        step = body[rows, nxt] < body[rows, first]
        if not step.any():
            break
        first = np.where(step, nxt, first)
    t = first + tau_min
    a, b, c = cmnd[rows, t - 1], cmnd[rows, t], cmnd[rows, t + 1]
    den = a - 2.0 * b + c
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1.0, den), 0.0)
    return t + np.clip(shift, -1.0, 1.0), b


def _nuclei(smooth: Floats, vowel_like: npt.NDArray[np.bool_]) -> int:
    """Syllable nuclei: peaks of the smoothed loudness in vowel-like frames (active, few zero crossings)
    that rise NUCLEUS_DIP_DB above the lowest point since the previous nucleus, NUCLEUS_MIN_GAP_S apart."""
    mid = smooth[1:-1]
    peaks = np.flatnonzero((mid >= smooth[:-2]) & (mid > smooth[2:])) + 1
    peaks = peaks[vowel_like[peaks]]
    gap = round(NUCLEUS_MIN_GAP_S / HOP_S)
    count, last, prev, low = 0, -gap, 0, np.inf
    for p in peaks.tolist():
        low = min(low, float(smooth[prev : p + 1].min()))
        if smooth[p] - low >= NUCLEUS_DIP_DB and p - last >= gap:
            count, last, low = count + 1, p, np.inf
        prev = p
    return count
