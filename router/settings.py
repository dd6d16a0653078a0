"""One settings object for the whole process, read once from the environment (prefix ``ROUTER_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    # Where the store lives. Empty means "embedded": the CLI starts one for the process.
    # redis://, rediss://, a Cluster node's URL (found by INFO), or Sentinel:
    # redis+sentinel://[user:password@]host:port[,host:port...]/master_name[/db] (router/store/connect.py)
    redis_url: str = ""
    embedded: Literal["valkey", "fakeredis"] = "valkey"
    domain: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    # Stream consumption
    group: str = "router"
    batch_size: int = Field(default=64, ge=1, le=10_000)
    block_ms: int = Field(default=200, ge=0)
    idle_sleep_ms: int = Field(default=20, ge=0)
    # read and score the next batch on a helper thread while the current one applies; the read-ahead batch
    # is pending until acknowledged. "auto": on for model scorers (the encoder releases the GIL, so Redis and
    # routing overlap the model: c/d 0.62 -> 0.82 in router bench), off for the lexicon (pure Python: the
    # two threads would only take turns at the GIL, 1,677 -> 1,247 events/s measured)
    score_ahead: Literal["auto", "on", "off"] = "auto"
    claim_min_idle_ms: int = Field(default=5_000, ge=1)
    claim_interval_s: float = Field(default=1.0, gt=0)
    max_deliveries: int = Field(default=5, ge=1)
    trim_interval_s: float = Field(default=5.0, gt=0)
    seen_ttl_s: int = Field(default=86_400, ge=1)
    sweep_interval_s: float = Field(default=0.5, gt=0)
    conflict_retries: int = Field(default=20, ge=1)
    # workers heartbeat this often; one silent for worker_dead_after_s is not counted live (/readyz, the
    # dashboard), and its consumer is deleted from the group once nothing is pending for it (its entries
    # are reclaimed after claim_min_idle_ms first)
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    worker_dead_after_s: float = Field(default=30.0, gt=0)
    # a worker that loses Redis (a failover, a restart) retries with exponential back-off up to this
    reconnect_backoff_max_s: float = Field(default=2.0, gt=0)

    # Replication wait (docs/reliability.md): "wait" sends WAIT replica_wait_count replica_wait_timeout_ms
    # (Redis >= 3) and "waitaof" WAITAOF 1 replica_wait_count replica_wait_timeout_ms (Redis >= 7.2, Valkey
    # >= 8; AOF on) after a worker batch's commits and before its XACK, and after the API's ingest before it
    # answers. Fewer confirmations: the batch is not acknowledged (redelivered, applied once) and the API
    # answers 503 (the producer retries with the same event_id). "off": asynchronous replication as is.
    replication_wait: Literal["off", "wait", "waitaof"] = "off"
    replica_wait_count: int = Field(default=1, ge=1, le=16)
    replica_wait_timeout_ms: int = Field(default=1_000, ge=1, le=60_000)

    # Moment-of-truth detection. With the transformer scorer the learned detector (models/detector.json,
    # scripts/train_detector.py) decides; these hand rules decide only for scorers without it (lexicon,
    # pipeline), where a missed moment of truth costs more than an empathetic agent on a routine contact.
    mot_peak_threshold: float = Field(default=0.5, ge=0, le=1)
    mot_last_threshold: float = Field(default=0.6, ge=0, le=1)
    mot_trend_threshold: float = Field(default=0.25, ge=0, le=1)
    mot_topic_threshold: float = Field(default=0.5, ge=0, le=1)
    mot_topic_intensity_floor: float = Field(default=0.08, ge=0, le=1)
    human_request_threshold: float = Field(default=0.5, ge=0, le=1)
    # Added to the learned detector's logit for a customer back within affinity_ttl_s. The corpus has no
    # repeat-contact flag to learn this from, so it is a stated prior: +1.0 multiplies the odds by e.
    mot_repeat_logit: float = Field(default=1.0, ge=0, le=10)

    # Routing
    mot_min_eq: int = Field(default=4, ge=1, le=5)
    ladder_step1_s: float = Field(default=20.0, ge=0)
    ladder_step1_min_eq: int = Field(default=3, ge=1, le=5)
    ladder_step2_s: float = Field(default=60.0, ge=0)
    seconds_per_priority_point: float = Field(default=30.0, gt=0)
    fairness_window_s: float = Field(default=3_600.0, gt=0)
    fairness_max_share: float = Field(default=0.5, gt=0, le=1)
    fairness_min_sample: int = Field(default=4, ge=1)
    affinity_timeout_s: float = Field(default=30.0, ge=0)
    affinity_ttl_s: float = Field(default=86_400.0, ge=0)
    # a callback is offered when the estimated wait exceeds this, or when a contact has waited this long
    callback_threshold_s: float = Field(default=300.0, gt=0)
    # the same for a contact in the moment-of-truth queue: an upset customer gives up sooner
    # (docs/routing.md), and a call back that keeps their place beats a minute more on hold
    mot_callback_threshold_s: float = Field(default=60.0, gt=0)
    # self-service offers a person, once, when a customer turn's moment-of-truth probability reaches this
    # while the contact's verdict is still routine: a detector miss then costs a tap, not a search for the
    # button (docs/routing.md). 1 turns the offer off. On the dev split, 0.5 offers the most moments of
    # truth a person on time (131 of 160; 16 of the 32 the detector misses) and 31 of 166 routine contacts
    human_offer_mot_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    queue_scan_limit: int = Field(default=50, ge=1)
    # a queued contact that has waited this long while agents had a free slot on its channel is "stuck"
    # (GET /v1/queues, the dashboard): agents are free, yet none takes it
    stuck_after_s: float = Field(default=60.0, gt=0)

    # Outcome-aware matching (router/domain/matching.py, docs/routing.md): each agent's posted outcomes per
    # class of contact, shrunk to a prior from the agent's EQ; off, the plain ladder decides. The prior is a
    # stated belief (a supervisor's EQ tag), worth outcome_prior_n outcomes.
    outcome_matching: bool = True
    outcome_prior_n: float = Field(default=8.0, gt=0)
    outcome_prior_mot_csat_eq3: float = Field(default=3.6, ge=1, le=5)
    outcome_prior_mot_csat_per_eq: float = Field(default=0.3, ge=0, le=1)
    outcome_prior_routine_csat: float = Field(default=4.0, ge=1, le=5)
    outcome_prior_mot_resolved_eq3: float = Field(default=0.7, ge=0, le=1)
    outcome_prior_mot_resolved_per_eq: float = Field(default=0.05, ge=0, le=0.25)
    outcome_prior_routine_resolved: float = Field(default=0.85, ge=0, le=1)
    outcome_fine_min_n: int = Field(default=5, ge=1)
    outcome_resolution_weight: float = Field(default=1.0, ge=0)
    outcome_tie_margin: float = Field(default=0.1, ge=0)
    # CSAT points one more minute of waiting costs, and a busy slot's expected time to free (for the wait
    # for a better agent)
    mot_wait_cost_per_min: float = Field(default=0.5, ge=0)
    routine_wait_cost_per_min: float = Field(default=0.1, ge=0)
    expected_handle_s: float = Field(default=420.0, gt=0)
    # the longest a routine contact waits while the high-EQ reserve keeps the free eq>=mot_min_eq slots
    mot_reserve_max_hold_s: float = Field(default=30.0, ge=0)

    # Offers
    offer_timeout_s: float = Field(default=15.0, gt=0)
    # how long a decline or a missed offer keeps the agent from being offered that contact again (like other
    # routers' re-offer cool-down); when every agent who could take it has declined, it is re-offered anyway
    decline_memory_s: float = Field(default=180.0, ge=0)
    transcript_tail: int = Field(default=10, ge=1)

    # Scoring
    scorer: Literal["lexicon", "transformer", "pipeline"] = "transformer"
    model_dir: str = ""
    hf_model: str = ""
    torch_threads: int = Field(default=0, ge=0)
    # ROUTER_ENCODER_BACKEND: "auto" uses ONNX Runtime int8 when scripts/export_onnx.py has written
    # .cache/onnx/encoder-int8.onnx (or models/onnx/) and stamped it as equal in quality for the heads in
    # models/, else torch fp32.
    encoder_backend: Literal["auto", "torch", "onnx"] = "auto"

    # Voice (docs/voice.md): contact.audio longer than audio_max_s is dead-lettered (the contract's ceiling
    # is 60 s; 20 s of 16 kHz audio is ~850 KB of base64, under api_max_body_bytes). A turn's vocal arousal
    # a above 0.5 lifts its intensity and moment-of-truth probability by acoustic_gain * 2 * (a - 0.5).
    audio_max_s: float = Field(default=20.0, gt=0, le=60)
    acoustic_gain: float = Field(default=0.3, ge=0, le=1)

    # The dashboard's series and KPIs (GET /v1/stats/series, /metrics). A contact is resolved at first contact
    # when its customer does not come back within fcr_window_s (the customer's record is kept that long);
    # /metrics reports the KPIs over the last kpi_window_s; the workers sample queue depths every
    # floor_sample_s
    fcr_window_s: float = Field(default=86_400.0, gt=0, le=30 * 86_400)
    kpi_window_s: float = Field(default=3_600.0, ge=60, le=86_400)
    floor_sample_s: float = Field(default=10.0, ge=1, le=3_600)

    # Supervisor API (router/api)
    admin_key: SecretStr = SecretStr("")  # ROUTER_ADMIN_KEY: every scope; empty disables it
    api_max_body_bytes: int = Field(default=1_048_576, ge=1_024)  # larger request bodies get 413
    api_max_batch: int = Field(default=500, ge=1, le=10_000)  # events per POST /v1/events
    api_rate_per_s: float = Field(default=50.0, gt=0)  # per-key token bucket refill (per API process)
    api_rate_burst: int = Field(default=200, ge=1)  # per-key token bucket size
    api_auth_fail_per_s: float = Field(default=5.0, gt=0)  # failed authentications per client address
    api_redis_timeout_s: float = Field(default=1.0, gt=0)  # short: an unreachable store answers 503 fast
    api_sse_poll_s: float = Field(default=0.25, gt=0)  # live feed poll interval
    api_sse_max_s: float = Field(default=300.0, gt=0)  # a feed connection closes after this; clients resume
    api_metrics_public: bool = False  # /metrics without a key (for a scraper inside a private network)
    api_idempotency_ttl_s: int = Field(default=86_400, ge=1)


def load_settings(**overrides: object) -> Settings:
    """The environment's settings, with the given values (command-line options) on top; None means
    "not given" and leaves the environment's value."""
    settings = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return Settings.model_validate({**settings.model_dump(), **updates}) if updates else settings
