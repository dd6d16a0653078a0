"""Voice with the real model: a worker with the transformer scorer and its learned moment-of-truth detector,
on a real redis-server, audio synthesised by espeak-ng. A borderline turn (the detector's probability
under its threshold on the words alone) becomes a moment of truth with agitated audio, not with calm
audio; a platform's cue does the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from router.domain.mot import model_probability
from router.events import Decision
from router.scoring.factory import build_scorer
from router.scoring.protocol import EmotionScorer
from router.scoring.voice_clips import espeak_wav, have_espeak
from router.settings import Settings
from router.store.store import RoutingStore
from router.worker.consumer import Worker

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

OPENING = "hello, I am calling about my last order"
# the learned detector's probability after these two turns is far above routine on the words yet under its
# threshold (0.75 against 0.91 with the log-odds features, which the calm test checks); agitated audio
# takes it over. The detector is steep around its threshold, so a retrained model may need another
# borderline sentence: "you charged me twice and now my rent is short" (0.895 against 0.93 with the mot
# head's neighbours) read 0.60 with the log-odds, and agitated audio lifted it to 0.85 only; this one
# (0.90 against 0.93 on the seventeen-round model, 0.93 against 0.95 on the composed-rows release) rose to
# 0.95 with the neighbours, a moment of truth on its words alone, then; "the app logged me out and now I
# cannot pay my rent" (0.87 on the nine-round model) fell to 0.60 on the ten-round one; before it, "I still
# cannot log in and the payment is due" (eight rounds) fell to 0.29 on nine
BORDERLINE = "you charged me twice and I am short for the rent"
VOICE = "en-gb"


@pytest.fixture(scope="module")
def scorer() -> EmotionScorer:
    return build_scorer(Settings(scorer="transformer"))


@pytest.fixture
def worker(real_redis_url: str, domain: str, scorer: EmotionScorer) -> Iterator[Worker]:
    store = RoutingStore(redis.Redis.from_url(real_redis_url), domain)
    w = Worker(store, scorer, Settings(domain=domain, scorer="transformer"), supports_blocking=False)
    w.ensure_group()
    assert w.engine.th.model is not None  # the learned detector decides, not the hand rules
    yield w
    store.client.close()


def send(w: Worker, events: list[dict[str, Any]]) -> list[Decision]:
    for e in events:
        w.store.client.xadd(w.keys.events, {"event": json.dumps(e)})
    for _ in range(3):
        w.run_once()
    return [Decision.model_validate_json(f[b"decision"]) for _, f in w.store.client.xrange(w.keys.decisions)]


def voice_call(audio: str | None, cues: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    if not have_espeak():
        pytest.fail("espeak-ng and sox are needed: apt-get install -y espeak-ng sox (scripts/test.sh does)")
    turn: dict[str, Any] = {"type": "contact.message", "contact_id": "c1", "seq": 1, "speaker": "customer"}
    events: list[dict[str, Any]] = [
        {"type": "contact.started", "contact_id": "c1", "channel": "voice", "customer": {"id": "u1"}},
        {
            "type": "contact.audio",
            "contact_id": "c1",
            "seq": 0,
            "audio": espeak_wav(OPENING, VOICE, "neutral"),
        },
        {**turn, "seq": 0, "text": OPENING},
    ]
    if audio is not None:
        events.append({"type": "contact.audio", "contact_id": "c1", "seq": 1, "audio": audio})
    events.append({**turn, "text": BORDERLINE, **({"acoustic": cues} if cues else {})})
    return events


def test_agitated_audio_makes_a_borderline_turn_a_moment_of_truth(worker: Worker) -> None:
    decisions = send(worker, voice_call(espeak_wav(BORDERLINE, VOICE, "agitated")))
    last = decisions[-1]
    assert last.moment_of_truth, [r.text for r in last.reasons]
    codes = [r.code for r in last.reasons]
    assert codes[0] == "acoustic_arousal" and "mot_model" in codes


@pytest.mark.parametrize("manner", ["calm", "none"])
def test_the_same_words_calm_or_without_audio_are_routine(worker: Worker, manner: str) -> None:
    audio = espeak_wav(BORDERLINE, VOICE, "calm") if manner == "calm" else None
    decisions = send(worker, voice_call(audio))
    assert not any(d.moment_of_truth for d in decisions)
    assert all("acoustic_arousal" not in [r.code for r in d.reasons] for d in decisions)
    rec = worker.store.load_contact("c1")
    model = worker.engine.th.model
    assert rec is not None and model is not None and rec.view.trajectory.turns == 2
    # borderline: far above a routine turn's probability on these words, yet under the threshold
    assert 0.25 < model_probability(rec.view, model) < model.threshold


def test_platform_cues_do_the_same(worker: Worker) -> None:
    decisions = send(worker, voice_call(None, {"arousal": 0.85, "valence": -0.3, "source": "acme"}))
    last = decisions[-1]
    assert last.moment_of_truth and last.reasons[0].code == "acoustic_arousal"
