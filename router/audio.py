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
import struct
import wave
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pybase64

from router.errors import EventError

SAMPLE_RATES_HZ: tuple[int, ...] = (8_000, 16_000)  # narrow-band telephony and wide-band (G.722, Opus)
MAX_AUDIO_S = 60.0  # the contract's hard ceiling; Settings.audio_max_s is the (lower) working limit
WAV_HEADER_BYTES = 44
# base64 characters of the longest payload the contract allows (16 kHz, 16 bits, MAX_AUDIO_S, a header)
MAX_AUDIO_B64_CHARS = 4 * -(-(int(MAX_AUDIO_S * 16_000 * 2) + 1_024) // 3)
BAD_AUDIO = "bad_audio"
WAVE_FORMAT_PCM = 1


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
    # pybase64 (SIMD): 8 us for 100 KB where the standard library's decoder takes 250 us, as long as the
    # rest of the voice analysis; the same strict alphabet (no whitespace, padding only at the end)
    try:
        data = pybase64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_audio(f"not base64 ({exc})") from None
    if not data:
        raise bad_audio("empty payload")
    return data


def _open(data: bytes) -> tuple[int, int, int, memoryview]:
    """(channels, sample width in bytes, rate, PCM bytes) of a WAV file; refuses anything else.

    The chunks are walked as the standard library's ``wave`` reads them (the first ``fmt `` and ``data``
    within the RIFF chunk's size, odd chunks padded, PCM only), with struct: ``wave`` cost a fifth of
    the whole voice analysis and copied the samples, which stay a view of the decoded bytes here."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise bad_audio(f"not a WAV file (starts with {data[:12]!r})")
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    pos = 12
    fmt: tuple[int, int, int] | None = None
    while pos + 8 <= end:
        name, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if name == b"fmt ":
            fmt = _fmt_chunk(data[body : min(body + size, end)])
        elif name == b"data":
            if fmt is None:
                raise _unreadable("data chunk before fmt chunk")
            channels, width, rate = fmt
            frame_bytes = size // (channels * width) * channels * width
            return channels, width, rate, memoryview(data)[body : min(body + frame_bytes, end)]
        pos = body + size + (size & 1)
    raise _unreadable("fmt chunk and/or data chunk missing")


def _fmt_chunk(chunk: bytes) -> tuple[int, int, int]:
    """(channels, sample width in bytes, rate) of a PCM ``fmt `` chunk."""
    if len(chunk) < 14:
        raise _unreadable("truncated fmt chunk")
    tag, channels, rate = struct.unpack_from("<HHI", chunk)
    if tag != WAVE_FORMAT_PCM:  # a-law, mu-law, float, extensible
        raise _unreadable(f"unknown format: {tag}")
    if len(chunk) < 16:
        raise _unreadable("truncated fmt chunk")
    width = (struct.unpack_from("<H", chunk, 14)[0] + 7) // 8
    if not width:
        raise _unreadable("bad sample width")
    if not channels:
        raise _unreadable("bad # of channels")
    return channels, width, rate


def _unreadable(why: str) -> EventError:
    return bad_audio(f"unreadable WAV ({why}); 16-bit PCM expected")


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
    pcm = np.frombuffer(frames, dtype="<i2", count=len(frames) // 2)
    return Pcm(np.multiply(pcm, np.float32(1 / 32768), dtype=np.float32), rate)


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
