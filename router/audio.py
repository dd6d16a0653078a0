"""The audio of a ``contact.audio`` event: base64 of a mono 16-bit PCM WAV at 8 or 16 kHz, and the reasons a
payload is refused.

The wire model (router.events) checks only what its JSON Schema can say (a string, a length cap), so that
every payload the published schema allows is accepted by ``POST /v1/events``. The worker
checks the rest when it extracts the voice features (router.scoring.acoustic): base64, RIFF/WAVE, PCM, one
channel, 16 bits, 8 or 16 kHz, samples, at most ``audio_max_s``, then silence and clipping. Every refusal
is an ``EventError`` whose reason starts with ``bad_audio:``, and the worker dead-letters the event.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.errors import EventError

SAMPLE_RATES_HZ: tuple[int, ...] = (8_000, 16_000)  # narrow-band telephony and wide-band (G.722, Opus)
MAX_AUDIO_S = 60.0  # the contract's hard ceiling; Settings.audio_max_s is the (lower) working limit
WAV_HEADER_BYTES = 44
# base64 characters of the longest payload the contract allows (16 kHz, 16 bits, MAX_AUDIO_S, a header)
MAX_AUDIO_B64_CHARS = 4 * -(-(int(MAX_AUDIO_S * 16_000 * 2) + 1_024) // 3)
BAD_AUDIO = "bad_audio"


@dataclass(frozen=True, slots=True)
class Pcm:
    """Decoded audio: samples as float32 in [-1, 1) and the sample rate."""

    samples: npt.NDArray[np.float32]
    rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate_hz


def bad_audio(what: str) -> EventError:
    return EventError(f"{BAD_AUDIO}: {what}")


def _wav_bytes(b64: str) -> bytes:
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_audio(f"not base64 ({exc})") from None
    if not data:
        raise bad_audio("empty payload")
    return data


def _open(data: bytes) -> tuple[int, int, int, bytes]:
    """(channels, sample width in bytes, rate, PCM bytes) of a WAV file; refuses anything else."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise bad_audio(f"not a WAV file (starts with {data[:12]!r})")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            head = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        # wave reads only PCM: a-law, mu-law and float WAVs say 'unknown format'
        raise bad_audio(f"unreadable WAV ({exc}); 16-bit PCM expected") from None
    return (*head, frames)


def _check_format(channels: int, width: int, rate: int, n_frames: int, max_s: float) -> None:
    if channels != 1:
        raise bad_audio(f"{channels} channels; send the customer's side of the call as mono")
    if width != 2:
        raise bad_audio(f"{8 * width}-bit samples; 16-bit PCM expected")
    if rate not in SAMPLE_RATES_HZ:
        raise bad_audio(f"sample rate {rate} Hz; 8000 or 16000 Hz expected")
    if n_frames == 0:
        raise bad_audio("no samples")
    if n_frames / rate > max_s:
        raise bad_audio(f"{n_frames / rate:.1f} s long; the limit is {max_s:g} s")


def decode_wav(b64: str, max_s: float = MAX_AUDIO_S) -> Pcm:
    """The samples of a contact.audio payload, or ``EventError('bad_audio: ...')``."""
    channels, width, rate, frames = _open(_wav_bytes(b64))
    _check_format(channels, width, rate, len(frames) // max(1, channels * width), max_s)
    pcm = np.frombuffer(frames[: len(frames) - len(frames) % 2], dtype="<i2")
    return Pcm((pcm.astype(np.float32) / 32768.0), rate)


def encode_wav(samples: npt.ArrayLike, rate_hz: int) -> str:
    """Base64 of a mono 16-bit WAV of ``samples`` in [-1, 1] (tests, the bench and the simulator)."""
    pcm = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 32767 / 32768) * 32768.0
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(np.round(pcm).astype("<i2").tobytes())
    return base64.b64encode(buf.getvalue()).decode("ascii")
