"""Request and response bodies of the API (OpenAPI components). Request models are strict and forbid
unknown fields, so what the schema allows is exactly what the API accepts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from router.events import Action, AgentStatus, Decision

ID_PATTERN = r"^[A-Za-z0-9_.:@-]+$"
# agents created through the API: no ':' so an agent id can never collide with another key of the agent
AGENT_ID_PATTERN = r"^[A-Za-z0-9_.@-]+$"
STREAM_ID_PATTERN = r"^[0-9]{1,15}-[0-9]{1,19}$"
LANG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$"
TAG_PATTERN = r"^[A-Za-z0-9_.:@-]{1,32}$"
IF_MATCH_PATTERN = r'^(\*|(W/)?"[0-9]{1,12}"( ?, ?(W/)?"[0-9]{1,12}")*)$'

WireId = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
AgentId = Annotated[str, Field(min_length=1, max_length=64, pattern=AGENT_ID_PATTERN)]
Lang = Annotated[str, Field(min_length=2, max_length=8, pattern=LANG_PATTERN)]
Tag = Annotated[str, Field(min_length=1, max_length=32, pattern=TAG_PATTERN)]
Eq = Annotated[int, Field(ge=1, le=5, description="Emotional intelligence, 1 (low) to 5 (high)")]
Slots = Annotated[int, Field(ge=0, le=100)]


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional(**kw: Any) -> Any:
    """An optional field that, when present, may not be null (the schema has no null either)."""
    return Field(default=None, json_schema_extra=_drop_default, **kw)


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable code", examples=["not_found"])
    detail: str = Field(description="What went wrong, for a person")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Validation problems (location, message, type); never the input"
    )


# ---- agents ---------------------------------------------------------------------------------------------


class Capacity(_Request):
    """Concurrent contacts per channel; a channel left out has no slots."""

    voice: Slots | SkipJsonSchema[None] = _optional()
    chat: Slots | SkipJsonSchema[None] = _optional()
    email: Slots | SkipJsonSchema[None] = _optional()
    social: Slots | SkipJsonSchema[None] = _optional()
    sms: Slots | SkipJsonSchema[None] = _optional()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("null is not allowed")
        return v

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class AgentCreate(_Request):
    agent_id: AgentId
    name: Annotated[str, Field(max_length=128)] = ""
    eq: Eq = 3
    languages: Annotated[list[Lang], Field(min_length=1, max_length=20)] = ["en"]
    capacity: Capacity = Capacity(chat=1)
    tags: Annotated[list[Tag], Field(max_length=50)] = []

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agent_id": "a42",
                    "name": "Dana",
                    "eq": 5,
                    "languages": ["en", "es"],
                    "capacity": {"chat": 3, "voice": 1},
                    "tags": ["fraud"],
                }
            ]
        }
    )


class SkillsPatch(_Request):
    """Fields to change; the rest stay as they are. Needs ``If-Match`` with the agent's ETag."""

    name: Annotated[str, Field(max_length=128)] | SkipJsonSchema[None] = _optional()
    eq: Eq | SkipJsonSchema[None] = _optional()
    languages: Annotated[list[Lang], Field(min_length=1, max_length=20)] | SkipJsonSchema[None] = _optional()
    capacity: Capacity | SkipJsonSchema[None] = _optional()
    tags: Annotated[list[Tag], Field(max_length=50)] | SkipJsonSchema[None] = _optional()

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "examples": [{"eq": 5}]})

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("null is not allowed")
        return v

    @model_validator(mode="after")
    def _something(self) -> SkillsPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        return self


class StatusChange(_Request):
    status: AgentStatus

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "available"}]})


class AgentOut(BaseModel):
    agent_id: str
    name: str
    eq: int
    languages: list[str]
    capacity: dict[str, int]
    load: dict[str, int]
    tags: list[str]
    status: AgentStatus
    version: int = Field(description="Profile version; the ETag is its quoted form")
    last_assigned_ts: float | None
    mot_recent: int = Field(description="Moments of truth offered in the fairness window")


class AgentsPage(BaseModel):
    items: list[AgentOut]
    total: int = Field(description="Agents that match the filters (all pages)")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The next page's offset; null on the last page")
    languages: list[str] = Field(description="Every language spoken on the floor (for a filter menu)")


class Accepted(BaseModel):
    event_id: str
    stream_id: str


class SuggestionGroup(BaseModel):
    n: int
    mean_csat: float | None
    sd_csat: float | None
    resolved_rate: float | None
    resolved_ci95: list[float] | None


class SuggestionEvidence(BaseModel):
    agent: SuggestionGroup
    peers: SuggestionGroup
    difference: float | None = Field(description="agent mean CSAT - peers mean CSAT")
    ci95: list[float] | None
    welch_t: float | None
    df: float | None
    p_value: float | None


class Suggestion(BaseModel):
    agent_id: str
    current_eq: int
    suggested_eq: int
    change: int
    applied: Literal[False] = False
    reason: str
    method: str
    moments_of_truth: SuggestionEvidence
    routine: SuggestionEvidence


class AuditEntry(BaseModel):
    id: str
    ts: float | None
    who: str
    agent_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: str | None


# ---- events ---------------------------------------------------------------------------------------------


class EventResult(BaseModel):
    index: int
    event_id: str | None = Field(description="The idempotency key; null when the stream id is the identity")
    stream_id: str
    duplicate: bool = Field(description="True when this event_id was accepted before (not written again)")


class EventsAccepted(BaseModel):
    accepted: int
    duplicates: int
    results: list[EventResult]


# ---- queues, contacts, decisions --------------------------------------------------------------------------


class StuckContactOut(BaseModel):
    contact_id: str
    waited_s: float
    code: str = Field(description="all_declined | stuck")
    reason: str = Field(description="Why, in a sentence")


class QueueOut(BaseModel):
    name: str
    depth: int
    longest_wait_s: float
    min_eq_now: int = Field(description="EQ floor for the longest-waiting contact (escalation ladder)")
    ewt_s: float = Field(
        description="Expected wait of a contact joining now; never 0 while a stuck contact waits"
    )
    ewt_sd_s: float = Field(description="Standard deviation of that wait")
    eligible_agents: int = Field(description="Available agents at or above the EQ floor")
    free_agents: int = Field(description="Of those, agents with a free slot on some channel")
    served_per_min: float
    callback_threshold_s: float
    callback_offered: bool = Field(description="A contact joining now would be offered a callback")
    stuck: int = Field(
        description="Waiting contacts that free agents are not taking (among the first 200 waiting): "
        "declined by every agent with a free slot who could take them, or waiting ROUTER_STUCK_AFTER_S "
        "or longer while agents had a free slot on their channel"
    )
    stuck_contacts: list[StuckContactOut] = Field(description="Up to 20 of them, longest waiting first")


class QueuesOut(BaseModel):
    ts: float
    queues: list[QueueOut]


class TrajectoryOut(BaseModel):
    intensities: list[float]
    peak: float
    peak_turn: int
    turns: int
    last: float
    trend: float


class TranscriptTurn(BaseModel):
    seq: int | None
    speaker: str
    text: str | None = Field(description="Null for keys with routing:read:redacted")
    intensity: float | None = None
    arousal: float | None = Field(
        default=None, description="Vocal arousal of a voice turn, 0-1 (docs/voice.md)"
    )
    voice: str | None = Field(
        default=None, description="Where the arousal came from: 'audio' or the platform"
    )
    text_intensity: float | None = Field(
        default=None, description="The words' intensity, when the voice raised `intensity` above it"
    )


class DecisionItem(Decision):
    id: str = Field(description="Decision stream entry id")


class ContactOut(BaseModel):
    contact_id: str
    status: str
    channel: str
    language: str
    tier: str
    queue: str | None
    agent_id: str | None
    offer_id: str | None
    moment_of_truth: bool
    topic: str | None
    topic_prob: float
    wants_human: bool
    human_offered: bool = Field(description="self-service has offered the customer a person (routing.md)")
    repeat_contact: bool
    priority: float
    created_ts: float
    enqueued_ts: float | None
    trajectory: TrajectoryOut
    mot_reasons: list[dict[str, str]]
    transcript: list[TranscriptTurn]
    redacted: bool
    decisions: list[dict[str, Any]]


class DecisionsPage(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="Decision records (schema_version 1) plus their stream id"
    )
    next_before: str | None


# ---- dead letters -----------------------------------------------------------------------------------------


class DeadLetterSummary(BaseModel):
    id: str
    stream_id: str | None
    error: str
    deliveries: int
    consumer: str | None
    ts: float | None
    payload_bytes: int


class DeadLetter(DeadLetterSummary):
    payload: str


class DeadLetterPage(BaseModel):
    count: int
    items: list[DeadLetterSummary]
    next_before: str | None


class Replayed(BaseModel):
    id: str
    stream_id: str


class StillInvalid(BaseModel):
    id: str
    error: str


class ReplayReport(BaseModel):
    replayed: list[Replayed]
    still_invalid: list[StillInvalid]
    remaining: int


# ---- outcomes ---------------------------------------------------------------------------------------------


class OutcomeIn(_Request):
    contact_id: WireId
    agent_id: WireId
    csat: Annotated[int, Field(ge=1, le=5)]
    resolved: bool

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"contact_id": "c42", "agent_id": "a01", "csat": 5, "resolved": True}]
        }
    )


class OutcomeOut(BaseModel):
    outcome_id: str
    contact_id: str
    agent_id: str
    moment_of_truth: bool
    csat: int
    resolved: bool


# ---- stats ------------------------------------------------------------------------------------------------


class WaitSeriesOut(BaseModel):
    """Per interval, contacts of one class whose offer was accepted in it."""

    answered: list[int]
    p50_s: list[float | None] = Field(description="Median wait since queued; null: none answered")
    p90_s: list[float | None]
    announced: list[int] = Field(description="Of them, those that had been announced a wait")
    announced_mean_s: list[float | None]
    actual_mean_s: list[float | None] = Field(description="Their mean wait since the announcement")
    mae_s: list[float | None] = Field(description="Mean |actual - announced|")


class AnnouncedPair(BaseModel):
    ts: float
    moment_of_truth: bool
    announced_s: float
    low_s: float | None
    high_s: float | None
    actual_s: float


class ClassKpisOut(BaseModel):
    contacts: int = Field(description="Contacts that ended in the window after going to a person")
    csat: float | None = Field(description="Mean CSAT of the outcomes posted in the window")
    csat_n: int
    first_contact_resolution: float | None = Field(
        description="Of the contacts an agent took, the share whose customer did not start another contact "
        "within fcr_window_s (provisional for contacts younger than that)"
    )
    fcr_n: int
    repeat_contact_rate: float | None = Field(
        description="Share of the contacts whose customer's previous contact started within fcr_window_s"
    )
    handoffs_per_contact: float | None = Field(
        description="Offers that came back to the queue (declined, missed, revoked) per contact"
    )
    abandonment: float | None = Field(description="Share that ended before any agent accepted them")
    abandoned: int


class LogCoverage(BaseModel):
    complete: bool = Field(description="False when the capped log does not reach back to the window's start")
    oldest_ts: float | None


class SeriesOut(BaseModel):
    ts: float
    window_s: int
    interval_s: int
    fcr_window_s: float
    t: list[float] = Field(description="Start of each interval (s since the epoch), oldest first")
    waits: dict[str, WaitSeriesOut] = Field(description="By class: mot, routine")
    depth_max: dict[str, list[int | None]] = Field(
        description="By queue: the highest depth sampled in each interval; null: no sample"
    )
    moments_of_truth: list[int | None] = Field(
        description="Contacts flagged moments of truth in each interval; null: no sample"
    )
    announced: list[AnnouncedPair] = Field(description="The newest announced waits against the actual")
    kpis: dict[str, ClassKpisOut] = Field(description="By class: mot, routine")
    sources: dict[str, LogCoverage] = Field(description="waits, ended, samples, outcomes")


class CsatGroup(BaseModel):
    n: int
    mean_csat: float | None
    ci95: list[float] | None = Field(description="95% t interval of the mean; null below 2 outcomes")


class AgentOutcomesRow(BaseModel):
    agent_id: str
    name: str
    eq: int
    suggested_eq: int
    change: int
    reason: str
    moments_of_truth: CsatGroup
    routine: CsatGroup
    mot_vs_peers: list[float] | None = Field(
        description="95% interval of the agent's MoT mean CSAT minus its peers' (the suggestion's evidence)"
    )
    mot_difference: float | None


class AgentOutcomesPage(BaseModel):
    method: str
    total: int = Field(description="Agents with at least one outcome")
    items: list[AgentOutcomesRow]


# ---- ops --------------------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class ReadyCheck(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, ReadyCheck]


class WhoAmI(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    redacted: bool


class Overview(BaseModel):
    domain: str
    stats: dict[str, int]
    deadletter_backlog: int
    offers_pending: int
    events_backlog: int
    outcomes: int
    agents: dict[str, int]
    queues: dict[str, int]
    workers: int | None = Field(
        description="Live workers (a heartbeat within ROUTER_WORKER_DEAD_AFTER_S); null when the workers' "
        "group does not exist"
    )


ActionFilter = Action
