"""Voice turns to measure the acoustic step on: speech synthesised by espeak-ng and resampled by sox (both
Debian packages; scripts/test.sh installs them), calm or agitated, or a synthetic voice where they are
missing. The tests and ``router bench scorer`` use them."""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

import numpy as np

from router.audio import encode_wav

Manner = Literal["neutral", "calm", "agitated"]


@dataclass(frozen=True)
class Prosody:
    """espeak-ng's knobs: pitch 0-99 (-p), words per minute (-s), amplitude 0-200 (-a), and the SSML
    pitch range (x-low .. x-high)."""

    pitch: int
    wpm: int
    amplitude: int
    pitch_range: str


# calm: low, slow, soft, flat; agitated: high, fast, loud, wide
MANNERS: dict[Manner, Prosody] = {
    "neutral": Prosody(50, 160, 90, "medium"),
    "calm": Prosody(30, 130, 60, "x-low"),
    "agitated": Prosody(70, 200, 130, "x-high"),
}


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def espeak_wav(text: str, voice: str, manner: Manner, rate_hz: int = 8_000) -> str:
    """Base64 of a mono 16-bit WAV of ``text`` spoken by espeak-ng ``voice`` (e.g. "en-us", "es+f3") in
    ``manner``, resampled by sox to ``rate_hz``."""
    p = MANNERS[manner]
    ssml = f'<speak><prosody range="{p.pitch_range}">{_escape(text)}</prosody></speak>'
    knobs = ["-p", str(p.pitch), "-s", str(p.wpm), "-a", str(p.amplitude)]
    spoken = subprocess.run(
        ["espeak-ng", "-m", "--stdout", "-v", voice, *knobs],
        input=ssml.encode("utf-8"),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    # -G guards against clipping in the resampler; dither stays off so the same input gives the same file
    wav = subprocess.run(
        ["sox", "-G", "-t", "wav", "-", "-t", "wav", "-r", str(rate_hz), "-c", "1", "-b", "16", "-D", "-"],
        input=spoken,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return base64.b64encode(_fix_sizes(wav)).decode("ascii")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fix_sizes(wav: bytes) -> bytes:
    """sox writing to a pipe cannot seek back to fill in the RIFF and data sizes: set them."""
    data_at = wav.find(b"data")
    if data_at < 0:
        return wav
    body = len(wav) - (data_at + 8)
    out = bytearray(wav)
    out[4:8] = (len(wav) - 8).to_bytes(4, "little")
    out[data_at + 4 : data_at + 8] = body.to_bytes(4, "little")
    return bytes(out)


def synthetic_wav(seconds: float = 3.5, f0_hz: float = 120.0, rate_hz: int = 8_000, seed: int = 0) -> str:
    """A voice-like signal where espeak-ng is missing: a harmonic series on a gliding pitch, its loudness
    modulated at a syllable rate of 4.5 Hz, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    f0 = f0_hz * 2.0 ** (1.5 * np.sin(2 * np.pi * 0.4 * t) / 12.0)
    phase = 2 * np.pi * np.cumsum(f0) / rate_hz
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0_hz < rate_hz / 2)
    syllables = 0.5 * (1.0 + np.sin(2 * np.pi * 4.5 * t)) ** 2
    x = 0.1 * harmonics * syllables + 0.002 * rng.standard_normal(len(t))
    return encode_wav(x, rate_hz)
