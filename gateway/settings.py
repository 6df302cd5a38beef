"""The one typed, frozen configuration tree, and how it is loaded.

Precedence, highest first: environment (`GATEWAY_<SECTION>__<KEY>`), the YAML file
(`--config PATH`, else ./config/gateway.yaml when present), then the defaults below,
which run as-is: the emulator as upstream, no keys needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_PATH = Path("config/gateway.yaml")

LatencyMode = Literal["none", "realistic", "simulated"]
# An HTTP error status the provider documents, or a failure of the response itself.
FaultKind = Literal[
    "400", "401", "402", "403", "404", "409", "413", "429", "500", "504", "529",
    "cut", "stream-error", "slow",
]  # fmt: skip


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # httpx's transport to providers; aiohttp won the overhead benchmark (docs/benchmarks.md).
    upstream_transport: Literal["aiohttp", "httpcore"] = "aiohttp"
    # `gateway serve` starts `gateway emulate` beside itself, so the defaults run with no keys:
    # only when a provider's base_url is the emulator's address (emulator.host:emulator.port).
    start_emulator: bool = True
    # On SIGTERM: stop accepting, let in-flight requests and streams finish for up to this
    # long, then cut what is left and exit. Kubernetes' grace period must be longer (deploy/k8s).
    shutdown_grace_s: int = Field(default=30, ge=0)
    # Request line plus headers, and the number of headers: past either, 431 and close.
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    max_headers: int = Field(default=100, gt=0)
    # The client edge (docs/limits.md): from a request's first byte to the end of its head,
    # past it 408 and close (slowloris); a body must arrive whole within body_timeout_s of
    # its head, past it 408 and close, its bytes released (32 MiB in 60 s is ~4.5 Mbit/s).
    head_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    # Request bodies being received at once (declared lengths counted up front), per worker:
    # past it, 503 and close. What slow or withholding uploads can pin in memory: room for
    # one body of max_body_bytes and some small ones beside it.
    max_incoming_body_bytes: int = Field(default=40 * 1024 * 1024, gt=0)
    # An error sent before the body was read whole: the rest of the body is read and dropped
    # for up to this long before the close, so that the client reads the error, not a reset.
    linger_s: float = Field(default=5.0, ge=0)
    # ... and for up to this many bytes: past them the connection is closed at once (a client
    # declaring a 10**12-byte body would otherwise have ~15 GB read in 5 s on loopback).
    linger_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # A connection with no request in progress (new, or kept alive after a response) is
    # closed after this long: longer than a load balancer's own idle timeout (AWS ALB: 60 s),
    # so that the balancer, not the gateway, closes a pooled connection.
    idle_timeout_s: float = Field(default=75.0, gt=0)
    # Connections (or requests in progress) per worker process: past it, 503 and close.
    max_connections: int = Field(default=1024, ge=1)


class RewriteSettings(Section):
    """Each rule can be switched off; a switched-off rule still reports its findings."""

    whitespace: bool = True
    tool_json: bool = True
    volatile: Literal["move", "truncate_to_day", "report_only"] = "move"
    # Requests of a prompt family seen before its per-user lines are learned and moved.
    learn_volatile_after: int = Field(default=5, ge=1)
    breakpoints: Literal["augment", "replace", "respect"] = "augment"
    # auto: 1h for the stable prefix, or a conversation's tail, of a prompt family whose
    # observed reuse gaps (median of the last 16) fall between 5 minutes and an hour;
    # 5m otherwise, and until 3 gaps have been seen.
    cache_ttl: Literal["auto", "5m", "1h"] = "auto"
    # What the gateway learns from requests (tool forms, per-user lines, the prefix registry)
    # is bounded in bytes: in all, and per tenant (a credential: a gateway key, or the
    # provider key a client sends). A tenant past its share forgets its own oldest entries,
    # never those of a tenant within its share (docs/limits.md, "Learned state").
    learned_state_max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    learned_state_per_tenant_max_bytes: int = Field(default=16 * 1024 * 1024, ge=16 * 1024)
    # Deprecated, ignored: learned state is bounded by the byte limits above.
    tool_forms_max_entries: int | None = Field(default=None, ge=1, deprecated=True)
    # Steps whose concurrent calls on a prefix not yet cached wait for the first one's
    # response to begin, so they read the cache instead of all writing it ("*": every step).
    coalesce_steps: tuple[str, ...] = ()
    coalesce_max_wait_s: float = Field(default=2.0, ge=0)
    # Ask Anthropic for its own cache-miss diagnosis (`diagnostics.previous_message_id`,
    # GA since 2026-09-23): off by default, as a provider or proxy without it rejects the field.
    provider_diagnostics: bool = False
    # Deprecated, ignored: the prefix registry is learned state (learned_state_max_bytes).
    registry_max_entries: int | None = Field(default=None, ge=1, deprecated=True)
    # OpenAI: a prompt_cache_key derived from the prompt family when the client sent none.
    prompt_cache_key: bool = True
    # OpenAI cache lifetime per step ("*": every step), where the client set none:
    # prompt_cache_retention on models before GPT-5.6 (24h only where the model offers it),
    # prompt_cache_options.ttl on GPT-5.6 and later. Unset: the provider's default.
    openai_cache_retention: dict[str, Literal["in_memory", "24h"]] = Field(default_factory=dict)
    openai_cache_ttl: dict[str, Literal["30m", "12h"]] = Field(default_factory=dict)


class MeteringSettings(Section):
    # One JSON line per model call, never prompt text: "stdout", "off", or a file path.
    call_log: str = "stdout"
    # Lines waiting for the call log's writer thread; past it a line is dropped and counted
    # (gateway_call_log_dropped_total) rather than the gateway waiting on a stalled stdout.
    call_log_queue_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # At shutdown, how long the writer may take to write out what is queued.
    call_log_flush_s: float = Field(default=5.0, ge=0)
    # OpenTelemetry traces of each call (GenAI conventions) to this OTLP/HTTP endpoint, e.g.
    # http://collector:4318/v1/traces; unset: no tracing.
    otlp_endpoint: str | None = None
    # Step labels kept as metric label values; any other x-gateway-step is bucketed as "other".
    steps: tuple[str, ...] = (
        "routing", "classification", "tool_decision", "search", "fetch", "planning",
        "synthesis", "summarization", "extraction", "chat",
    )  # fmt: skip


class TierPriceSettings(Section):
    """Rates for calls whose prompt (input + cache read + cache write) is over a size."""

    above_prompt_tokens: int = Field(gt=0)
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    # Unset cache rates follow Anthropic's multipliers of input: 0.1x, 1.25x, 2x.
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_5m_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_1h_per_mtok: float | None = Field(default=None, ge=0)


class ModelPriceSettings(Section):
    """One model's price in USD per million tokens, replacing or scaling the listed one.

    With rates (input and output at least), the entry is the model's whole price; with
    only `scale`, it multiplies the listed price (a negotiated discount: 0.8 = 20% off).
    """

    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_5m_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_1h_per_mtok: float | None = Field(default=None, ge=0)
    tiers: tuple[TierPriceSettings, ...] = ()
    scale: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _whole_price(self) -> ModelPriceSettings:
        rates = (
            self.input_per_mtok, self.output_per_mtok, self.cache_read_per_mtok,
            self.cache_write_5m_per_mtok, self.cache_write_1h_per_mtok,
        )  # fmt: skip
        whole = self.input_per_mtok is not None and self.output_per_mtok is not None
        if not whole and (self.tiers or any(rate is not None for rate in rates)):
            raise ValueError("a price with rates needs input_per_mtok and output_per_mtok")
        return self


class PricingSettings(Section):
    # Keyed by model id as the API names it, or genai-prices' id for it (which covers
    # its dated snapshots); added to the packaged table (gateway/metering/prices.yaml).
    models: dict[str, ModelPriceSettings] = Field(default_factory=dict)
    # Batch calls on a model without a batch price of its own: Anthropic and OpenAI's -50%.
    batch_multiplier: float = Field(default=0.5, ge=0, le=1)


class CanarySettings(Section):
    """A share of a step's conversations sent to a candidate model, sticky per conversation."""

    model: str
    percent: float = Field(ge=0, le=100)


class ShadowSettings(Section):
    """A sampled share of a step's calls also sent to a candidate, for offline comparison."""

    model: str
    sample: float = Field(ge=0, le=1)


class StepSettings(Section):
    # The tier whose model replaces the client's; unset: the client's model (pinned) is kept.
    tier: str | None = None
    # Latency budgets: a breach is counted (gateway_latency_budget_breaches_total) and logged.
    ttft_ms: int | None = Field(default=None, gt=0)
    total_ms: int | None = Field(default=None, gt=0)
    # With ttft_ms: no first token within it (and nothing sent yet), start the same call
    # on the first fallback (or the same model) and relay whichever starts first.
    hedge: bool = False
    # Tried in order once the step's model has failed its retries: model ids or "tier:NAME".
    fallbacks: tuple[str, ...] = ()
    # The whole call's time limit for this step (attempts, backoff, the body or stream to its
    # last byte), enforced; unset: the provider's total_timeout_s / stream_timeout_s.
    timeout_s: float | None = Field(default=None, gt=0)
    canary: CanarySettings | None = None
    shadow: ShadowSettings | None = None


class RetrySettings(Section):
    """Retries of 429, 5xx, 529, connect errors and timeouts, before the client gets a byte."""

    attempts_per_model: int = Field(default=3, ge=1)  # the first try included
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)
    # A provider asking to wait longer than this: the next fallback instead, or the error.
    max_retry_after_s: float = Field(default=20.0, ge=0)
    # A provider that took the call and then sent nothing for its timeout_s: false, the next
    # fallback (another try would bill the call again and likely wait as long); true, retried
    # like a connect timeout, within the call's total_timeout_s.
    retry_read_timeouts: bool = False
    # The retry budget, per provider (Envoy's and Finagle's): over the last `budget_window_s`,
    # retries (and fallback attempts) are at most `budget_ratio` of the calls plus
    # `budget_min_per_s` a second; past it a failed attempt's error goes to the client at once.
    budget_ratio: float = Field(default=0.2, ge=0)
    budget_min_per_s: float = Field(default=0.1, ge=0)
    budget_window_s: float = Field(default=10.0, gt=0)
    # The circuit breaker, per provider and model: after `breaker_failures` failed attempts
    # in a row (429, 5xx, 529, connect errors, timeouts, cuts) calls to that model are answered
    # at once with the provider's overloaded error and a retry-after, without calling it; after
    # `breaker_cooldown_s` one call goes through as a probe, and its success closes it.
    # 0 failures: no breaker.
    breaker_failures: int = Field(default=5, ge=0)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    # Models with a failure on record, per process: past it, a new model's failures are not
    # counted (its calls are never refused) until another model's breaker closes.
    breaker_max_models: int = Field(default=1024, ge=1)


def _default_tiers() -> dict[str, dict[str, str]]:
    # Current models only: claude-sonnet-4-5 retires 2026-11-30 (`gateway check` warns).
    return {
        "small": {"anthropic": "claude-haiku-5-5", "openai": "gpt-5.6-luna"},
        "large": {"anthropic": "claude-sonnet-5-5", "openai": "gpt-5.6-terra"},
    }


def _default_steps() -> dict[str, StepSettings]:
    # Documented practice: routing, classification and tool decisions on a small model,
    # synthesis on the large one. Other labels keep the client's model.
    small, large = StepSettings(tier="small"), StepSettings(tier="large")
    return {
        "routing": small,
        "classification": small,
        "tool_decision": small,
        "synthesis": large,
    }


class RoutingSettings(Section):
    """The cascade: step label -> tier -> model, model aliases pinned, retries, fallbacks."""

    # Aliases to dated snapshots: pin (rewrite), warn (a finding only), reject (400).
    pin_policy: Literal["pin", "warn", "reject"] = "pin"
    # Alias -> snapshot, over the catalog's own aliases (e.g. to hold an older snapshot).
    pins: dict[str, str] = Field(default_factory=dict)
    # Traffic to a model retiring within this many days is a finding and a metric.
    retirement_window_days: int = Field(default=30, ge=0)
    # Read lifecycle dates from the provider's GET /v1/models at start (when reachable).
    refresh_lifecycle: bool = True
    tiers: dict[str, dict[str, str]] = Field(default_factory=_default_tiers)
    steps: dict[str, StepSettings] = Field(default_factory=_default_steps)
    # The step an x-gateway-step label not in `steps` follows; unset: such calls keep their model.
    default_step: str | None = None
    retries: RetrySettings = RetrySettings()
    # Shadow pairs (primary and candidate outputs, usage, cost), one JSON line each.
    shadow_log: str = "shadow.jsonl"
    # Request bodies held by shadow calls in flight: past this, a sampled call gets no
    # shadow (gateway_shadow_calls_total{status="skipped"}).
    shadow_max_pending_bytes: int = Field(default=16 * 1024 * 1024, ge=0)

    @model_validator(mode="after")
    def _known_names(self) -> RoutingSettings:
        if self.default_step is not None and self.default_step not in self.steps:
            raise ValueError(f"default_step {self.default_step!r} is not in steps")
        for label, step in self.steps.items():
            named = [step.tier] if step.tier else []
            named += [f[len("tier:") :] for f in step.fallbacks if f.startswith("tier:")]
            for tier in named:
                if tier not in self.tiers:
                    raise ValueError(f"steps.{label}: unknown tier {tier!r}")
            if step.hedge and step.ttft_ms is None:
                raise ValueError(f"steps.{label}: hedge needs ttft_ms")
        return self


class TeamBudgetSettings(Section):
    daily_budget_usd: float | None = Field(default=None, gt=0)
    monthly_budget_usd: float | None = Field(default=None, gt=0)


def _redis_url_from_environment() -> SecretStr | None:
    url = os.environ.get("REDIS_URL")
    return SecretStr(url) if url else None


class StateSettings(Section):
    """Gateway keys, budgets, rate limits and the shared prefix registry (docs/keys.md)."""

    # redis://host:6379/0 (also REDIS_URL); unset: in memory, this process only.
    redis_url: SecretStr | None = Field(default_factory=_redis_url_from_environment)
    key_prefix: str = "tollgate:"  # every Redis key starts with it
    # Each Redis call, connecting included, from when it has a connection.
    timeout_ms: int = Field(default=50, gt=0)
    max_connections: int = Field(default=64, ge=1)
    # Past max_connections a call queues for a free connection this long, then is refused
    # (503): a busy pool is load, not an outage, and never fails open.
    pool_wait_ms: int = Field(default=1000, gt=0)
    # Redis is judged unreachable (each key's last known state, then on_outage, applies)
    # after a connection error, or when no call has succeeded for this long while calls
    # fail. Before that a call that times out is tried again, up to call_attempts times in
    # all, then refused (503): a slow Redis is not an outage and never fails open.
    outage_after_ms: int = Field(default=1000, gt=0)
    call_attempts: int = Field(default=3, ge=1)
    # Charges of answered calls that could not be settled (Redis away), kept in memory and
    # settled when it is back; past this many the oldest are dropped and counted
    # (gateway_settle_dropped_total). About 200 bytes each.
    settle_backlog_max: int = Field(default=50_000, ge=0)
    # Where charges still unsettled at shutdown are kept (JSON lines, no secrets) and
    # settled from at the next start; "": not kept (counted as dropped).
    settle_backlog_file: str = ".tollgate/settle-backlog.jsonl"
    # Gateway keys whose last known state (valid, revoked, spend) this replica keeps for
    # outages: about 1 KB each.
    known_keys_max: int = Field(default=10_000, ge=0)
    # When Redis cannot be reached: relay unchecked (fail_open), or refuse with 503
    # (fail_closed). A key's own --on-outage wins.
    on_outage: Literal["fail_open", "fail_closed"] = "fail_open"
    outage_log_interval_s: float = Field(default=30.0, gt=0)
    # Refuse (401) credentials that are not gateway keys; false: provider keys pass through.
    require_gateway_key: bool = False
    # Without Redis, gateway keys live in this file: `gateway keys` writes it, serve reads it.
    keys_file: str = ".tollgate/keys.json"
    # A call reserves the most it can cost (input estimated from the body, plus its
    # max_tokens, at the dearest model it may be served by). A model without a price is
    # refused (403) to a key or team with a budget, and reserves nothing for one without.
    # This is reserved only by a counted call without a JSON body to judge.
    first_call_reserve_usd: float = Field(default=0.01, ge=0)
    # The output limit a call without max_tokens reserves for, on a model the catalog does
    # not know (a known model reserves its own maximum output).
    reserve_output_tokens: int = Field(default=32_768, ge=1)
    teams: dict[str, TeamBudgetSettings] = Field(default_factory=dict)
    # Key names kept as metric label values; further keys are counted as "other".
    max_key_labels: int = Field(default=200, ge=1)


class ProviderSettings(Section):
    """Where a provider is, and how long and how much the gateway waits for and holds of it
    (docs/limits.md, "Upstream")."""

    base_url: str
    api_key: SecretStr | None = None
    # Per read: the longest silence from the provider, its response headers included (a JSON
    # answer's headers come only once the whole answer is made). Past it: 504, not retried
    # on the same model (it took the call; another try would bill it again).
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)  # past it: 504, retried
    # A whole call: every attempt and backoff, and reading a JSON body; a step's
    # `timeout_s` replaces it (and stream_timeout_s). Past it: 504.
    total_timeout_s: float = Field(default=600.0, gt=0)
    # A stream, from its first attempt to its last byte: past it, the stream is ended with the
    # wire format's error event.
    stream_timeout_s: float = Field(default=1800.0, gt=0)
    # A JSON response held whole (to read its usage): past it, 502.
    max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # One SSE line or event held by a stream's parsers: past it, the event is skipped by the
    # meter (its bytes still reach the client) and the usage filter passes bytes unchanged.
    max_event_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # This upstream is Tollgate's emulator: the client's x-emulator-* headers (faults, the
    # virtual clock) are forwarded to it; to any other upstream they are stripped. An
    # upstream that `server.start_emulator` starts at the emulator's address counts as one.
    emulator: bool = False


class ProvidersSettings(Section):
    anthropic: ProviderSettings = ProviderSettings(base_url="http://127.0.0.1:8090")
    openai: ProviderSettings = ProviderSettings(base_url="http://127.0.0.1:8090")


class EmulatorSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    latency: LatencyMode = "none"
    virtual_clock: bool = False
    # Caches are isolated per workspace; by default every API key is its own workspace.
    workspaces: dict[str, str] = Field(default_factory=dict)
    # When non-empty, only these API keys authenticate; otherwise any non-empty key does.
    api_keys: tuple[SecretStr, ...] = ()
    reply_words: int = Field(default=30, ge=1)
    lookback_blocks: int = Field(default=20, ge=1)
    cache_max_entries: int = Field(default=100_000, ge=1)
    fault_rates: dict[FaultKind, float] = Field(default_factory=dict)
    fault_seed: int = 0
    slow_fault_ms: int = Field(default=2000, ge=0)
    # A model id the catalog does not list but that follows a provider's naming
    # (`gpt-6.2-sol`, `claude-opus-5-1`) is served with its nearest listed relative's
    # defaults and an `x-emulator-model-inferred` header; strict refuses it with a 404.
    strict_models: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="GATEWAY_", env_nested_delimiter="__"
    )

    server: ServerSettings = ServerSettings()
    providers: ProvidersSettings = ProvidersSettings()
    emulator: EmulatorSettings = EmulatorSettings()
    rewrite: RewriteSettings = RewriteSettings()
    metering: MeteringSettings = MeteringSettings()
    pricing: PricingSettings = PricingSettings()
    state: StateSettings = StateSettings()
    routing: RoutingSettings = RoutingSettings()
    # Entries added to or replacing the packaged model catalog (gateway/catalog/models.yaml).
    models: tuple[dict[str, Any], ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)


class ConfigError(Exception):
    """A configuration that cannot run, with a message naming the bad field."""


def config_path(path: Path | None) -> Path | None:
    """The YAML file that applies: the one named, else ./config/gateway.yaml if present."""
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    return path


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path` (or ./config/gateway.yaml if it exists) and the environment."""
    path = config_path(path)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text("utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc


def _describe(exc: ValidationError, path: Path | None) -> str:
    source = f"{path} and GATEWAY_* environment" if path else "GATEWAY_* environment"
    lines = [
        f"  {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors()
    ]
    return "\n".join([f"in {source}:", *lines])
