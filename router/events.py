"""Wire contracts: every inbound event type and the outbound decision record (schema_version 1).

Inbound stream entries carry one field, ``event``, holding JSON that validates against ``InboundEvent``
(a discriminated union on ``type``). Validation is strict: unknown fields, wrong types and out-of-range
values are rejected, and the worker dead-letters them with the validation message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from router.audio import MAX_AUDIO_B64_CHARS
from router.errors import EventError

SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 20_000
MAX_SEQ = 2**31 - 1  # a turn's position: what a platform's 32-bit counter holds, and exact in any JSON reader
MAX_TS_S = 4_102_444_800.0  # 2100-01-01: a later event time is a unit mistake (ms, µs), not a time

Channel = Literal["voice", "chat", "email", "social", "sms"]
CHANNELS: tuple[str, ...] = ("voice", "chat", "email", "social", "sms")
Speaker = Literal["customer", "agent", "bot"]
AgentStatus = Literal["available", "away", "offline"]
Tier = Literal["standard", "gold", "platinum"]
Action = Literal["self_service", "offer", "queued", "callback_offer", "released"]

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Customer(_Strict):
    id: Id
    language: Annotated[str, Field(min_length=2, max_length=8, pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")] = (
        "en"
    )
    tier: Tier = "standard"


class _EventBase(_Strict):
    schema_version: Literal[1] = 1
    event_id: Id | None = None
    ts: float | None = Field(
        default=None,
        ge=0,
        le=MAX_TS_S,
        allow_inf_nan=False,
        description="Event time, seconds since the epoch (finite, before 2100)",
    )


class ContactStarted(_EventBase):
    type: Literal["contact.started"]
    contact_id: Id
    channel: Channel
    customer: Customer
    topic: Annotated[str, Field(max_length=64)] | None = None


def _finite(lo: float, hi: float, what: str) -> Any:
    return Field(default=None, ge=lo, le=hi, allow_inf_nan=False, description=what)


class AcousticCues(_Strict):
    """How a voice turn sounded, from the platform's own speech analytics (docs/voice.md). Every field is
    optional; ``arousal`` is used as given, else the router estimates it from pitch, loudness and rate
    against the caller's earlier turns. Talk-over and silence are kept with the turn for the agent."""

    arousal: float | None = _finite(0, 1, "Vocal arousal, 0 calm to 1 highly activated")
    valence: float | None = _finite(-1, 1, "-1 negative to 1 positive; a positive one damps the lift")
    loudness_dbfs: float | None = _finite(-120, 0, "Level of the active speech, dBFS")
    pitch_hz: float | None = _finite(30, 1_000, "Median pitch of the turn, Hz")
    pitch_spread_st: float | None = _finite(0, 48, "Pitch range of the turn, semitones")
    speech_rate: float | None = _finite(0, 20, "Syllables per second of speech")
    talk_over_s: float | None = _finite(0, 3_600, "Seconds the customer spoke over the agent")
    silence_s: float | None = _finite(0, 3_600, "Seconds of silence in the turn")
    source: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@ -]+$")] = "platform"


class ContactMessage(_EventBase):
    type: Literal["contact.message"]
    contact_id: Id
    seq: int = Field(ge=0, le=MAX_SEQ, description="The turn's position in the conversation")
    speaker: Speaker
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    acoustic: AcousticCues | None = None


class ContactAudio(_EventBase):
    """The customer's audio of one voice turn, for platforms without speech analytics; its transcript is
    the ``contact.message`` with the same ``seq`` (either may come first: docs/voice.md)."""

    type: Literal["contact.audio"]
    contact_id: Id
    seq: int = Field(ge=0, le=MAX_SEQ, description="The seq of the turn's contact.message")
    # no pattern for the base64 alphabet: pydantic's regex took 0.25 ms per 100 KB, as long as the voice
    # analysis itself; the worker's decoding checks it (a dead letter, like any audio it cannot measure)
    audio: str = Field(
        min_length=4,
        max_length=MAX_AUDIO_B64_CHARS,
        description="Base64 of a mono 16-bit PCM WAV at 8 or 16 kHz, at most the workers' audio_max_s "
        "seconds; a worker dead-letters audio it cannot measure (bad_audio: ..., docs/voice.md)",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "audio/wav"},
    )


class HumanRequested(_EventBase):
    type: Literal["contact.human_requested"]
    contact_id: Id


class ContactEnded(_EventBase):
    type: Literal["contact.ended"]
    contact_id: Id
    reason: Annotated[str, Field(max_length=64)] = "completed"
    csat: int | None = Field(default=None, ge=1, le=5)


class AgentStatusChanged(_EventBase):
    type: Literal["agent.status"]
    agent_id: Id
    status: AgentStatus


class OfferAccepted(_EventBase):
    type: Literal["offer.accepted"]
    offer_id: Id


class OfferDeclined(_EventBase):
    type: Literal["offer.declined"]
    offer_id: Id


class WorkCompleted(_EventBase):
    type: Literal["work.completed"]
    agent_id: Id
    contact_id: Id


InboundEvent = Annotated[
    ContactStarted
    | ContactMessage
    | ContactAudio
    | HumanRequested
    | ContactEnded
    | AgentStatusChanged
    | OfferAccepted
    | OfferDeclined
    | WorkCompleted,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[InboundEvent] = TypeAdapter(InboundEvent)
EVENT_TYPES: tuple[str, ...] = (
    "contact.started",
    "contact.message",
    "contact.audio",
    "contact.human_requested",
    "contact.ended",
    "agent.status",
    "offer.accepted",
    "offer.declined",
    "work.completed",
)


class Reason(_Strict):
    code: str
    text: str


class Decision(_Strict):
    """One routing decision. Exactly one is written per event that changes routing."""

    schema_version: Literal[1] = 1
    decision_id: str
    event_id: str
    contact_id: str
    action: Action
    agent_id: str | None = None
    queue: str | None = None
    offer_id: str | None = None
    priority: float = 0.0
    moment_of_truth: bool = False
    intensity: float = Field(default=0.0, ge=0, le=1)
    # the detector's probability that the contact is a moment of truth (None before any customer turn)
    mot_prob: float | None = Field(default=None, ge=0, le=1)
    estimated_wait_s: float | None = None
    # its uncertainty (sd, s)
    estimated_wait_sd_s: float | None = None
    # the announced band (s): the 10th and 90th percentiles of the wait (router/domain/wait_forecast.py),
    # corrected by the bands checked against waits lived (router/domain/wait_band.py)
    estimated_wait_low_s: float | None = None
    estimated_wait_high_s: float | None = None
    reasons: tuple[Reason, ...] = ()
    ts: float


def parse_event(raw: bytes | str) -> InboundEvent:
    """Parse one ``event`` field. Raises ``EventError`` with a readable reason on any problem."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise EventError(f"invalid_utf8: {exc}") from None
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EventError(f"invalid_json: {exc}") from None
    if not isinstance(data, dict):
        raise EventError(f"invalid_event: expected a JSON object, got {type(data).__name__}")
    try:
        return EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise EventError(f"invalid_event: {errors}") from None
    except RecursionError:
        raise EventError("invalid_event: nesting too deep") from None


# the dead-letter reason (and the API's 409 error code) for an event_id reused with other content; the
# commit scripts answer it too (router/store/scripts.py)
CONFLICTING_DUPLICATE = "conflicting_duplicate"


def event_digest(event: InboundEvent) -> str:
    """A digest of the event's content: its parsed fields, defaults included, as canonical JSON. The same
    event sent twice has the same digest whatever its key order, spacing or omitted defaults; an event_id
    reused for other content has another (kept with the seen marker, compared on every repeat)."""
    data = event.model_dump(mode="json")
    if isinstance(event, ContactAudio):  # escaping 100 KB of base64 into the JSON costs more than hashing it
        data["audio"] = "sha256:" + hashlib.sha256(event.audio.encode("utf-8", "surrogatepass")).hexdigest()
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def event_schema() -> dict[str, Any]:
    """JSON Schema of the inbound union and the decision record, for ``router schema``."""
    return {
        "inbound_event": EVENT_ADAPTER.json_schema(),
        "decision": Decision.model_json_schema(),
    }
