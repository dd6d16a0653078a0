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

Not librosa: its ``yin`` alone took ~1.3 ms on a 4.8 s turn at 8 kHz where this whole step takes about
0.5 ms (docs/voice.md has the bench), and its first call compiles numba code for ~19 s, which a worker
would spend inside a batch.

Speed (issue #16: at most a fifth of the text scorer's time per turn). At 32 frames most of the cost is
numpy's per-call overhead and memory traffic, not arithmetic: one rfft call for the frames and their
windows, in-place arithmetic, no array wider than it must be, frames gathered from a strided view, the
loudness kept as power (no dB round trip). Each change left every feature of 200 espeak-ng turns
unchanged to the last reported digit.
"""

from __future__ import annotations

import functools
import math

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
_NEIGHBOURS = np.array([-1, 0, 1])  # a lag's and its neighbours' offsets, for the parabolic refinement


def features_from_wav(b64: str, max_s: float) -> VoiceFeatures:
    """The features of a contact.audio payload; ``EventError('bad_audio: ...')`` when it has none to give
    (silence, clipping, no voiced speech, too long)."""
    return voice_features(decode_wav(b64, max_s))


def voice_features(pcm: Pcm) -> VoiceFeatures:
    x, sr = pcm.samples, pcm.rate_hz
    _check_clipping(x)
    power = _frame_power(x, round(HOP_S * sr), FRAME_S / HOP_S)
    db: Floats = 10.0 * np.log10(power + 1e-12)
    active = _active(db)
    n_active = int(np.count_nonzero(active))
    speech_s = n_active * HOP_S
    if speech_s < MIN_SPEECH_S:
        raise bad_audio(f"{speech_s:.2f} s of speech above {SILENCE_DBFS:.0f} dBFS; silence or a dead line")
    f0 = _pitch(x, sr, round(HOP_S * sr), np.flatnonzero(active))
    if len(f0) < MIN_VOICED_FRAMES:
        raise bad_audio("no voiced speech found (noise, whisper or silence)")
    pitch_hz, spread_st = _pitch_stats(f0)
    return VoiceFeatures(
        pitch_hz=round(pitch_hz, 2),
        pitch_spread_st=round(spread_st, 3),
        loudness_dbfs=round(10.0 * math.log10(float(power[active].sum()) / n_active + 1e-12), 2),
        speech_rate=round(_syllabic_rate(power), 3),
        speech_s=round(speech_s, 2),
    )


def _check_clipping(x: npt.NDArray[np.float32]) -> None:
    full = 32767 / 32768
    if x.max() < full and x.min() > -full:  # two fast reductions settle almost every turn
        return
    share = float(np.count_nonzero(np.abs(x) >= full)) / len(x)
    if share > CLIP_SHARE:
        raise bad_audio(f"clipped: {share:.1%} of samples at full scale")


def _frame_power(x: npt.NDArray[np.float32], hop: int, hops_per_frame: float) -> Floats:
    """Mean power re full scale of each FRAME_S frame, every HOP_S: sums of whole hops (no long cumulative
    sum). The hops' sums of squares stay in float32 (80 or 160 terms: a relative error near 1e-5, a
    ten-thousandth of a dB), four times faster than einsum casting each product to float64."""
    k = round(hops_per_frame)
    n_hops = len(x) // hop
    if n_hops < k:
        raise bad_audio(f"{len(x) / hop * HOP_S * 1000:.0f} ms of audio; too short to hear a voice")
    sq = x[: n_hops * hop].reshape(n_hops, hop)
    per_hop = np.einsum("ij,ij->i", sq, sq).astype(np.float64)
    frames: Floats = sum(per_hop[i : n_hops - k + 1 + i] for i in range(k)) / (k * hop)
    return frames


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
    # the active frames (sorted) whose analysis window fits in the turn
    idx = active_idx[: np.searchsorted(active_idx, (len(x) - n * step) // hop, side="right")]
    if len(idx) > PITCH_FRAMES:  # evenly spread: the nearest frame to each of PITCH_FRAMES equal steps
        idx = idx[(np.arange(PITCH_FRAMES) * (len(idx) - 1) + (PITCH_FRAMES - 1) // 2) // (PITCH_FRAMES - 1)]
    if len(idx) == 0:
        return np.zeros(0)
    # every frame start as a row of a strided view of the samples (no copy); only the chosen rows are copied
    x = np.ascontiguousarray(x)  # decode_wav's already is: a no-op
    starts = np.ndarray((len(x) - n * step + 1, n * step), x.dtype, x, strides=(x.itemsize, x.itemsize))
    raw = starts[idx * hop]
    if step > 1:
        raw = raw.reshape(len(idx), n, step).mean(axis=2)
    tau, dip = _first_dip(_cmnd(raw, w, tau_max), tau_min)
    f0: Floats = rate / tau[dip <= YIN_VOICED_MAX]
    return f0


@functools.cache
def _fft_size(n: int) -> int:
    """The smallest 2^a * 3^b >= n: 384 for the 334 samples of a frame at 8 kHz, where 512 took a fifth
    longer (pocketfft is as quick on factors of 3 as on 2)."""
    best = 1 << (n - 1).bit_length()
    power3 = 3
    while power3 < best:  # 3^b times the smallest power of two that brings it to n
        best = min(best, power3 << (-(-n // power3) - 1).bit_length())
        power3 *= 3
    return best


def _cmnd(frames: npt.NDArray[np.float32], w: int, tau_max: int) -> Floats:
    """YIN's cumulative mean normalised difference d'(tau), tau = 0..tau_max, one row per frame (less its
    mean), with the difference function from FFT correlations: d(tau) = E(0) + E(tau) - 2 r(tau).

    At 32 frames the numpy calls cost as much as the numbers, so: the frames and their first ``w`` samples
    go through one rfft call, the arithmetic works in place, and E(tau) - E(0) is a running sum over the
    tau_max samples that enter and leave the window rather than over the whole frame."""
    k, n = frames.shape
    size = _fft_size(n)  # lags 0..tau_max do not wrap round
    both = np.zeros((2 * k, size))
    seg = both[:k, :n]
    seg[...] = frames
    seg -= seg.sum(axis=1, keepdims=True) / n
    both[k:, :w] = seg[:, :w]
    spec = np.fft.rfft(both, axis=1)
    cross = spec[:k]
    cross *= np.conjugate(spec[k:], out=spec[k:])
    r = np.fft.irfft(cross, size, axis=1)[:, 1 : tau_max + 1]
    enter = np.square(seg[:, w:])
    enter -= np.square(seg[:, :tau_max])
    d = np.cumsum(enter, axis=1)  # E(tau) - E(0), tau = 1..tau_max
    d += 2.0 * np.einsum("ij,ij->i", seg[:, :w], seg[:, :w])[:, None]
    d -= 2.0 * r
    np.maximum(d, 0.0, out=d)
    cum = np.cumsum(d, axis=1)
    np.maximum(cum, 1e-12, out=cum)
    d *= np.arange(1, tau_max + 1)
    out: Floats = np.empty((k, tau_max + 1))
    out[:, 0] = 1.0
    np.divide(d, cum, out=out[:, 1:])
    return out


def _first_dip(cmnd: Floats, tau_min: int) -> tuple[Floats, Floats]:
    """Per frame: the first lag from tau_min whose d' is under the threshold, at the bottom of its dip
    (else the global minimum), refined by a parabola through its neighbours; and d' there."""
    body = cmnd[:, tau_min:-1]
    under = body < YIN_THRESHOLD
    rows = np.arange(len(body))
    first = under.argmax(axis=1)
    none = ~under[rows, first]
    if none.any():
        first[none] = body[none].argmin(axis=1)
    # the bottom of the dip that starts there: the first lag from it where d' stops falling
    rising = body[:, 1:] >= body[:, :-1]
    rising &= np.arange(body.shape[1] - 1) >= first[:, None]
    bottom = rising.argmax(axis=1)
    bottom[~rising[rows, bottom]] = body.shape[1] - 1
    t = bottom + tau_min
    a, b, c = cmnd[rows[:, None], t[:, None] + _NEIGHBOURS].T
    den = a + c - 2.0 * b
    shift = np.zeros_like(b)
    np.divide(0.5 * (a - c), den, out=shift, where=np.abs(den) > 1e-12)
    return t + np.clip(shift, -1.0, 1.0), b


def _syllabic_rate(power: Floats) -> float:
    """The centroid (Hz) of the loudness envelope's (RMS per frame) modulation spectrum between
    RATE_BAND_HZ: speech modulates its amplitude at the syllable rate, so this follows syllables per
    second. Only the band's bins are squared and summed."""
    env = np.sqrt(power + 1e-12)
    env -= env.mean()
    env *= np.hanning(len(env))
    size = 1 << int(np.ceil(np.log2(2 * len(env))))
    bin_hz = 1.0 / (size * HOP_S)
    lo, hi = int(np.ceil(RATE_BAND_HZ[0] / bin_hz)), int(RATE_BAND_HZ[1] / bin_hz)
    spec = np.fft.rfft(env, size)[lo : hi + 1]
    power_spec = spec.real**2 + spec.imag**2
    total = float(power_spec.sum())
    return float(np.arange(lo, hi + 1) @ power_spec) * bin_hz / total if total > 0 else 0.0
