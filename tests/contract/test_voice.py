"""Voice through a real worker (router/worker/voice.py, docs/voice.md): a borderline text turn with agitated
audio or platform cues becomes a moment of truth with the ``acoustic_arousal`` reason, the same turn calm
does not; audio and transcript join whichever comes first; bad audio is a dead letter and the turn is
routed on its words. The audio is speech synthesised by espeak-ng and sox."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from router.audio import encode_wav
from router.events import Decision
from router.scoring.voice_clips import Manner, espeak_wav, have_espeak
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.contract.contract_helpers import (
    ScriptedScorer,
    dead_letters,
    decisions,
    ev,
    message,
    pending_ids,
    started,
    xadd,
)

MakeWorker = Callable[..., Worker]

OPENING = "hello, I am calling about my last order"
BORDERLINE = "I was charged twice for the same order"  # scored 0.42: just under the 0.5 peak rule
LATER = "and the delivery is late as well"


@pytest.fixture
def scorer() -> ScriptedScorer:
    return ScriptedScorer(
        {"charged twice": (0.42, None, 0.0, 0.0), "delivery is late": (0.3, None, 0.0, 0.0)}
    )


@pytest.fixture(scope="module")
def clips() -> dict[str, str]:
    """The caller's opening turn (neutral) and the borderline turn calm and agitated, one voice, 8 kHz."""
    if not have_espeak():
        pytest.fail("espeak-ng and sox are needed: apt-get install -y espeak-ng sox (scripts/test.sh does)")
    manners: dict[str, tuple[str, Manner]] = {
        "opening": (OPENING, "neutral"),
        "calm": (BORDERLINE, "calm"),
        "agitated": (BORDERLINE, "agitated"),
    }
    return {name: espeak_wav(text, "en-us", manner) for name, (text, manner) in manners.items()}


def audio(cid: str, seq: int, b64: str) -> dict[str, Any]:
    return ev("contact.audio", contact_id=cid, seq=seq, audio=b64)


def run(worker: Worker) -> None:
    for _ in range(3):
        worker.run_once()


def codes(d: Decision) -> list[str]:
    return [r.code for r in d.reasons]


def transcript(store: RoutingStore, cid: str) -> list[dict[str, Any]]:
    rec = store.load_contact(cid)
    assert rec is not None
    return list(rec.transcript)


def opening(store: RoutingStore, clips: dict[str, str], cid: str = "c1") -> None:
    """A voice contact whose first turn (neutral voice) seeds the caller's baseline."""
    xadd(store, started(cid, "voice"))
    xadd(store, audio(cid, 0, clips["opening"]))
    xadd(store, message(cid, 0, OPENING))


@pytest.mark.parametrize("batches", ["one batch", "audio first, its own batch"])
def test_agitated_audio_makes_the_borderline_turn_a_moment_of_truth(
    batches: str, store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    opening(store, clips)
    xadd(store, audio("c1", 1, clips["agitated"]))
    if batches != "one batch":
        run(w)
        assert [d.action for d in decisions(store)] == ["self_service"]  # the audio waits for its words
    xadd(store, message("c1", 1, BORDERLINE))
    run(w)
    assert pending_ids(store, w.group) == [] and dead_letters(store) == []
    first, last = decisions(store)
    assert first.action == "self_service" and not first.moment_of_truth
    assert last.moment_of_truth and last.action in ("queued", "callback_offer") and last.queue == "mot"
    assert codes(last)[0] == "acoustic_arousal" and "mot_peak" in codes(last)
    why = last.reasons[0].text
    assert "vs the caller's earlier turns" in why and "intensity 0.42 ->" in why
    turn = transcript(store, "c1")[-1]
    assert turn["seq"] == 1 and turn["voice"] == "audio" and turn["arousal"] > 0.6
    assert turn["text_intensity"] == 0.42 and turn["intensity"] > 0.5


def test_the_same_turn_calm_stays_routine(
    store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    opening(store, clips)
    xadd(store, audio("c1", 1, clips["calm"]))
    xadd(store, message("c1", 1, BORDERLINE))
    run(w)
    (only,) = decisions(store)  # the opening's self-service: nothing changed
    assert only.action == "self_service"
    rec = store.load_contact("c1")
    assert rec is not None and not rec.view.moment_of_truth and rec.view.trajectory.peak == 0.42
    turn = rec.transcript[-1]
    assert turn["arousal"] <= 0.5 and "text_intensity" not in turn and turn["intensity"] == 0.42


def test_audio_after_its_transcript_raises_the_latest_turn(
    store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    opening(store, clips)
    xadd(store, message("c1", 1, BORDERLINE))
    run(w)
    assert [d.action for d in decisions(store)] == ["self_service"]
    audio_id = xadd(store, audio("c1", 1, clips["agitated"]))
    run(w)
    last = decisions(store)[-1]
    assert last.event_id == audio_id and last.moment_of_truth and codes(last)[0] == "acoustic_arousal"
    rec = store.load_contact("c1")
    assert rec is not None and rec.view.trajectory.turns == 2  # raised in place, not a third turn
    assert rec.view.trajectory.intensities[-1] > 0.5


def test_audio_after_a_later_turn_only_feeds_the_baseline(
    store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    opening(store, clips)
    xadd(store, message("c1", 1, BORDERLINE))
    xadd(store, message("c1", 2, LATER))
    xadd(store, audio("c1", 1, clips["agitated"]))
    run(w)
    assert pending_ids(store, w.group) == []
    assert [d.action for d in decisions(store)] == ["self_service"]  # a verdict is not rewritten late
    turns = {t["seq"]: t for t in transcript(store, "c1")}
    assert turns[1]["arousal"] > 0.6 and turns[1]["intensity"] == 0.42


def test_a_second_audio_for_a_counted_turn_changes_nothing(
    store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    opening(store, clips)
    xadd(store, audio("c1", 1, clips["calm"]))
    xadd(store, message("c1", 1, BORDERLINE))
    run(w)
    before = store.load_contact("c1")
    xadd(store, audio("c1", 1, clips["agitated"]))  # another clip for the same turn: the first one counted
    run(w)
    after = store.load_contact("c1")
    assert before is not None and after is not None
    assert after.transcript == before.transcript and after.view.trajectory == before.view.trajectory
    assert len(decisions(store)) == 1 and pending_ids(store, w.group) == []


@pytest.mark.parametrize(
    ("cues", "mot"),
    [
        ({"arousal": 0.85, "source": "acme-analytics"}, True),
        ({"arousal": 0.3, "source": "acme-analytics"}, False),
        ({"arousal": 0.85, "valence": 0.9, "source": "acme-analytics"}, False),  # excited, not upset
        ({"arousal": 0.85, "valence": -0.6, "talk_over_s": 2.5}, True),
    ],
)
def test_platform_cues_do_the_same(
    cues: dict[str, Any], mot: bool, store: RoutingStore, make_worker: MakeWorker
) -> None:
    w = make_worker()
    xadd(store, started("c1", "voice"))
    xadd(store, message("c1", 0, OPENING))
    xadd(store, {**message("c1", 1, BORDERLINE), "acoustic": cues})
    run(w)
    last = decisions(store)[-1]
    assert last.moment_of_truth is mot
    assert ("acoustic_arousal" in codes(last)) is mot
    if mot:
        assert f"from {cues.get('source', 'platform')}" in last.reasons[0].text
    turn = transcript(store, "c1")[-1]
    assert turn["arousal"] == cues["arousal"] and turn["voice"] == cues.get("source", "platform")
    assert turn.get("talk_over_s") == cues.get("talk_over_s")


def test_platform_features_without_arousal_are_scored_against_the_caller(
    store: RoutingStore, make_worker: MakeWorker
) -> None:
    w = make_worker()
    calm = {"pitch_hz": 120.0, "loudness_dbfs": -28.0, "speech_rate": 4.0, "source": "pbx"}
    raised = {"pitch_hz": 160.0, "loudness_dbfs": -18.0, "speech_rate": 5.2, "source": "pbx"}
    xadd(store, started("c1", "voice"))
    xadd(store, {**message("c1", 0, OPENING), "acoustic": calm})
    xadd(store, {**message("c1", 1, BORDERLINE), "acoustic": raised})
    run(w)
    last = decisions(store)[-1]
    assert last.moment_of_truth and codes(last)[0] == "acoustic_arousal"
    assert "pitch +5.0 st" in last.reasons[0].text and "loudness +10 dB" in last.reasons[0].text


@pytest.mark.parametrize(
    ("clip", "error"),
    [
        (encode_wav([0.0] * 16_000, 8_000), "bad_audio: 0.00 s of speech"),
        ("bm90IGF1ZGlv", "bad_audio: not a WAV file"),
        ("bm90 IGF1ZGlv", "bad_audio: not base64"),
    ],
)
def test_bad_audio_is_dead_lettered_and_the_turn_is_routed_on_its_words(
    clip: str, error: str, store: RoutingStore, make_worker: MakeWorker
) -> None:
    w = make_worker()
    xadd(store, started("c1", "voice"))
    bad = xadd(store, audio("c1", 0, clip))
    xadd(store, message("c1", 0, BORDERLINE))
    run(w)
    assert pending_ids(store, w.group) == []
    (dl,) = dead_letters(store)
    assert dl["stream_id"] == bad and dl["error"].startswith(error)
    assert json.loads(dl["payload"])["audio"] == clip
    (d,) = decisions(store)
    assert d.action == "self_service" and "acoustic_arousal" not in codes(d)
    assert "arousal" not in transcript(store, "c1")[-1]


def test_audio_before_its_contact_waits(
    store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    waiting = xadd(store, audio("c9", 0, clips["opening"]))
    run(w)
    assert pending_ids(store, w.group) == [waiting] and dead_letters(store) == []


def test_a_restarted_contact_forgets_the_callers_voice(
    store: RoutingStore, make_worker: MakeWorker, clips: dict[str, str]
) -> None:
    w = make_worker()
    opening(store, clips)
    xadd(store, audio("c1", 5, clips["agitated"]))  # waits for a transcript that never comes
    xadd(store, ev("contact.ended", contact_id="c1", reason="resolved"))
    run(w)
    rec = store.load_contact("c1")
    assert rec is not None and rec.raw.get("voice_baseline") and rec.raw.get("voice_pending")
    xadd(store, started("c1", "voice"))
    run(w)
    rec = store.load_contact("c1")
    assert rec is not None and not rec.raw.get("voice_baseline") and not rec.raw.get("voice_pending")
