"""Voice through the API (docs/voice.md): a platform posts cues or audio with its events; bad audio is a
422 that names the cause; the contact's transcript shows each voice turn's arousal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from router.audio import MAX_AUDIO_B64_CHARS, encode_wav
from router.scoring.voice_clips import synthetic_wav
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.api.api_helpers import ADMIN, drain, message, post, started

pytestmark = pytest.mark.timeout(60)


def audio(contact_id: str, seq: int, b64: str) -> dict[str, object]:
    return {"type": "contact.audio", "contact_id": contact_id, "seq": seq, "audio": b64}


def test_audio_over_the_contracts_cap_is_422(make_app: Callable[..., FastAPI], store: RoutingStore) -> None:
    """Over 60 s at 16 kHz; the body cap is raised so that the contract, not the cap, answers."""
    with TestClient(make_app(api_max_body_bytes=4_000_000)) as client:
        r = client.post("/v1/events", json=audio("c1", 0, "A" * (MAX_AUDIO_B64_CHARS + 4)), headers=ADMIN)
    assert r.status_code == 422, r.text
    assert "contact.audio, field audio: String should have at most" in r.text
    assert store.client.xlen(store.keys.events) == 0


def test_audio_the_workers_cannot_measure_is_a_dead_letter(
    client: TestClient, store: RoutingStore, worker: Worker
) -> None:
    """The API takes any payload its schema allows (the schema cannot say "a WAV file"); the worker refuses
    the audio with its reason, and the turn is still routed on its words."""
    at_22k = encode_wav(np.zeros(800), 22_050)
    post(client, [started("c1", "voice"), audio("c1", 0, at_22k), audio("c1", 1, "not base64!")])
    post(client, [message("c1", "hello")])
    drain(worker)
    errors = sorted(d["error"] for d in client.get("/v1/deadletters", headers=ADMIN).json()["items"])
    assert errors[0].startswith("bad_audio: not base64")
    assert errors[1] == "bad_audio: sample rate 22050 Hz; 8000 or 16000 Hz expected"
    c = client.get("/v1/contacts/c1", headers=ADMIN).json()
    assert c["status"] == "self_service" and c["transcript"][0].get("arousal") is None


def test_transcript_shows_each_voice_turns_arousal(client: TestClient, worker: Worker) -> None:
    cues = {"arousal": 0.9, "valence": -0.4, "source": "acme"}
    post(
        client,
        [
            started("c1", "voice"),
            audio("c1", 0, synthetic_wav(3.0, 120.0)),
            message("c1", "hello, it is about my bill"),
            message("c1", "you charged me twice", seq=1, acoustic=cues),
        ],
    )
    drain(worker)
    c = client.get("/v1/contacts/c1", headers=ADMIN).json()
    first, second = c["transcript"]
    assert first["voice"] == "audio" and 0 <= first["arousal"] <= 1
    assert second["voice"] == "acme" and second["arousal"] == 0.9
    assert second["text_intensity"] is not None and second["intensity"] > second["text_intensity"]
