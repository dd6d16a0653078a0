"""A voice turn in the contact's state: the caller's voice baseline, audio that waits for its transcript,
and the turn's scores after fusion. The rules are in router.domain.voice; the join is in docs/voice.md:

- ``contact.message`` with ``acoustic`` cues: fused as it is applied.
- ``contact.audio`` before its transcript: its features wait in the contact (``voice_pending``, by seq),
  and the ``contact.message`` with that seq is fused as it is applied.
- ``contact.audio`` after its transcript: when that turn is still the latest scored customer turn, its
  scores are raised in place and the contact placed again; after a later turn, the audio only feeds the
  baseline and the transcript (a verdict is not rewritten from the past).

Nothing waits for audio: a turn with none is scored on its words alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from router.domain.model import ContactView, Reason, TurnScore
from router.domain.voice import (
    Arousal,
    VoiceBaseline,
    VoiceFeatures,
    acoustic_reason,
    estimate_arousal,
    fuse,
    raise_last_turn,
    update_baseline,
)
from router.events import AcousticCues, ContactMessage
from router.store.codec import ContactRecord

VOICE_BASELINE = "voice_baseline"  # contact hash fields
VOICE_PENDING = "voice_pending"
PENDING_KEPT = 8  # audio of turns whose transcript has not come: the latest seqs kept
AUDIO_SOURCE = "audio"


@dataclass(frozen=True)
class VoiceTurn:
    """A customer message's voice: its scores after fusion, the contact fields and transcript-entry keys it
    writes, and the ``acoustic_arousal`` reason when the voice raised the turn."""

    turn: TurnScore
    fields: dict[str, str]
    entry: dict[str, object]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class AudioStep:
    """What a contact.audio changes: contact fields, and a view to place again when it raised the latest
    turn (None: nothing to re-decide)."""

    fields: dict[str, str]
    view: ContactView | None
    reasons: tuple[Reason, ...]


def _json_field(rec: ContactRecord, name: str) -> dict[str, Any]:
    raw = rec.raw.get(name, "")
    value = json.loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}


def baseline_of(rec: ContactRecord) -> VoiceBaseline:
    return VoiceBaseline.from_json(_json_field(rec, VOICE_BASELINE))


def _cue_features(cues: AcousticCues) -> VoiceFeatures:
    return VoiceFeatures(
        pitch_hz=cues.pitch_hz,
        pitch_spread_st=cues.pitch_spread_st,
        loudness_dbfs=cues.loudness_dbfs,
        speech_rate=cues.speech_rate,
    )


def _cue_entry(cues: AcousticCues) -> dict[str, object]:
    return {k: getattr(cues, k) for k in ("talk_over_s", "silence_s") if getattr(cues, k) is not None}


def voice_on_message(
    ev: ContactMessage, rec: ContactRecord, turn: TurnScore, gain: float
) -> VoiceTurn | None:
    """The voice of a customer message: its own cues, else audio that arrived before it; None: neither."""
    pending = _json_field(rec, VOICE_PENDING)
    held = pending.pop(str(ev.seq), None)
    fields = {VOICE_PENDING: json.dumps(pending)} if held is not None else {}
    baseline = baseline_of(rec)
    valence: float | None = None
    entry: dict[str, object] = {}
    if ev.acoustic is not None:
        feats, valence, entry = _cue_features(ev.acoustic), ev.acoustic.valence, _cue_entry(ev.acoustic)
        if ev.acoustic.arousal is not None:
            arousal: Arousal | None = Arousal(ev.acoustic.arousal, ev.acoustic.source, {}, baseline.turns > 0)
        else:
            arousal = None if feats.empty else estimate_arousal(feats, baseline, ev.acoustic.source)
    elif isinstance(held, dict):
        feats = VoiceFeatures.from_json(held)
        arousal = estimate_arousal(feats, baseline, AUDIO_SOURCE)
    else:
        return None
    if arousal is None:
        return VoiceTurn(turn, fields, entry, ())
    if not feats.empty:
        fields[VOICE_BASELINE] = json.dumps(update_baseline(baseline, feats, arousal.value).to_json())
    entry.update(arousal=round(arousal.value, 3), voice=arousal.source)
    fused = fuse(turn.intensity, turn.mot_prob, arousal.value, valence, gain)
    if fused.lift <= 0:
        return VoiceTurn(turn, fields, entry, ())
    entry["text_intensity"] = round(turn.intensity, 3)
    reason = acoustic_reason(arousal, turn.intensity, fused.intensity, ev.seq)
    fused_turn = replace(turn, intensity=fused.intensity, mot_prob=fused.mot_prob)
    return VoiceTurn(fused_turn, fields, entry, (reason,))


def _customer_entry(transcript: Sequence[Mapping[str, Any]], seq: int) -> int | None:
    for i, t in enumerate(transcript):
        if t.get("seq") == seq and t.get("speaker") == "customer":
            return i
    return None


def _is_latest_scored(transcript: Sequence[Mapping[str, Any]], i: int) -> bool:
    return "intensity" in transcript[i] and not any(
        t.get("speaker") == "customer" and "intensity" in t for t in transcript[i + 1 :]
    )


def voice_on_audio(seq: int, rec: ContactRecord, feats: VoiceFeatures, gain: float) -> AudioStep | None:
    """A contact.audio for turn ``seq``: kept for its transcript, or applied to it; None when that turn's
    voice was counted already."""
    transcript = list(rec.transcript)
    i = _customer_entry(transcript, seq)
    if i is None:
        pending = _json_field(rec, VOICE_PENDING)
        pending[str(seq)] = feats.to_json()
        kept = dict(sorted(pending.items(), key=lambda kv: int(kv[0]))[-PENDING_KEPT:])
        return AudioStep({VOICE_PENDING: json.dumps(kept)}, None, ())
    if "arousal" in transcript[i]:
        return None
    baseline = baseline_of(rec)
    arousal = estimate_arousal(feats, baseline, AUDIO_SOURCE)
    entry = {**transcript[i], "arousal": round(arousal.value, 3), "voice": AUDIO_SOURCE}
    fields = {VOICE_BASELINE: json.dumps(update_baseline(baseline, feats, arousal.value).to_json())}
    view: ContactView | None = None
    reasons: tuple[Reason, ...] = ()
    traj = rec.view.trajectory
    if _is_latest_scored(transcript, i) and traj.intensities:
        text_i, text_p = traj.intensities[-1], traj.mot_probs[-1] if traj.mot_probs else 0.0
        fused = fuse(text_i, text_p, arousal.value, None, gain)
        if fused.lift > 0:
            entry.update(
                text_intensity=round(text_i, 3),
                intensity=round(fused.intensity, 3),
                mot_prob=round(fused.mot_prob, 3),
            )
            view = replace(rec.view, trajectory=raise_last_turn(traj, fused.intensity, fused.mot_prob))
            reasons = (acoustic_reason(arousal, text_i, fused.intensity, seq),)
    transcript[i] = entry
    fields["transcript"] = json.dumps(transcript)
    return AudioStep(fields, view, reasons)
