"""The call log, traces and metric labels, and prices over the packaged table."""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.settings.section import Section


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
