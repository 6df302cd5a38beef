"""Cost per call against hand-computed numbers from docs/wire.md (USD per MTok)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import pytest
import yaml
from genai_prices import Usage as ListedUsage
from genai_prices import calc_price
from genai_prices.data import providers
from pydantic import ValidationError

from gateway.catalog import ModelCatalog
from gateway.metering.pricing import FINE_TUNED_FACTOR, Pricing
from gateway.settings import ModelPriceSettings, PricingSettings
from gateway.wire.usage import Usage

# A cached agent step: a little new input, a large cached prefix, writes at both TTLs.
CACHED = Usage(
    input=2_000, output=1_000, cache_read=50_000, cache_write_5m=4_000, cache_write_1h=3_000
)


@pytest.fixture(scope="module")
def pricing() -> Pricing:
    return Pricing.load()


def configured(**models: ModelPriceSettings) -> Pricing:
    return Pricing.load(PricingSettings(models=models))


def test_sonnet_4_6_cached_call(pricing: Pricing) -> None:
    # 3 input, 15 output, 0.30 read, 3.75 5m write, 6 1h write.
    expected = 2_000 * 3 + 1_000 * 15 + 50_000 * 0.30 + 4_000 * 3.75 + 3_000 * 6
    assert expected / 1e6 == pytest.approx(0.069)
    assert pricing.cost("anthropic", "claude-sonnet-4-6", CACHED) == pytest.approx(0.069)


def test_haiku_4_5_by_its_dated_id(pricing: Pricing) -> None:
    # 1 input, 5 output, 0.10 read, 1.25 5m write, 2 1h write.
    usage = Usage(input=10_000, output=2_000, cache_read=100_000, cache_write_5m=8_000)
    expected = (10_000 * 1 + 2_000 * 5 + 100_000 * 0.10 + 8_000 * 1.25) / 1e6
    assert pricing.cost("anthropic", "claude-haiku-4-5-20251001", usage) == pytest.approx(expected)
    assert pricing.cost("anthropic", "claude-haiku-4-5", usage) == pytest.approx(0.04)
    price = pricing.price("anthropic", "claude-haiku-4-5-20251001")
    assert price is not None
    assert price.source == "genai-prices"


def test_haiku_5_5_is_tiered_by_the_whole_prompt(pricing: Pricing) -> None:
    # ≤100k prompt tokens (cached ones count): 0.10 / 0.50 / read 0.01; over it every token
    # of the call is billed at 0.50 / 2.50 / read 0.05.
    at_limit = Usage(input=1_000, output=1_000, cache_read=99_000)
    over = Usage(input=1_000, output=1_000, cache_read=99_001)
    small = (1_000 * 0.10 + 1_000 * 0.50 + 99_000 * 0.01) / 1e6
    large = (1_000 * 0.50 + 1_000 * 2.50 + 99_001 * 0.05) / 1e6
    assert pricing.cost("anthropic", "claude-haiku-5-5", at_limit) == pytest.approx(small)
    assert pricing.cost("anthropic", "claude-haiku-5-5", over) == pytest.approx(large)


def test_sonnet_4_5_long_context(pricing: Pricing) -> None:
    # Over 200k prompt tokens: 6 input, 22.50 output (genai-prices).
    usage = Usage(input=250_000, output=1_000)
    expected = (250_000 * 6 + 1_000 * 22.50) / 1e6
    assert pricing.cost("anthropic", "claude-sonnet-4-5-20250929", usage) == pytest.approx(expected)
    # Sonnet 4.6 has 1M context at the standard price.
    assert pricing.cost("anthropic", "claude-sonnet-4-6", usage) == pytest.approx(
        (250_000 * 3 + 1_000 * 15) / 1e6
    )


def test_packaged_prices_fill_the_snapshots_gaps(pricing: Pricing) -> None:
    million_in = Usage(input=1_000_000)
    # genai-prices 0.2.3 lists Sonnet 5 at its launch price (2); 3 since 2026-09-01.
    assert pricing.cost("anthropic", "claude-sonnet-5", million_in) == pytest.approx(3.0)
    # Mythos 5.1 is missing from the snapshot; priced as Fable 5.1 (read 0.25).
    reads = Usage(cache_read=1_000_000)
    assert pricing.cost("anthropic", "claude-mythos-5-1", reads) == pytest.approx(0.25)
    assert pricing.cost("anthropic", "claude-fable-5-1", reads) == pytest.approx(0.25)
    price = pricing.price("anthropic", "claude-mythos-5")
    assert price is not None
    assert price.source == "packaged"


def test_packaged_entries_are_still_needed() -> None:
    """Fails once genai-prices carries an entry's numbers: then drop it from prices.yaml."""
    text = resources.files("gateway.metering").joinpath("prices.yaml").read_text("utf-8")
    listed = Pricing(())
    packaged = Pricing.load()
    for model in yaml.safe_load(text)["models"]:
        snapshot = listed.cost("anthropic", model, CACHED)
        assert snapshot is None or snapshot != pytest.approx(
            packaged.cost("anthropic", model, CACHED)
        ), model


def test_every_catalog_model_is_priced(pricing: Pricing) -> None:
    for spec in ModelCatalog.load().models:
        for name in (spec.id, *spec.aliases):
            assert pricing.cost(spec.provider, name, CACHED), name


def test_agrees_with_genai_prices_own_arithmetic() -> None:
    listed = Pricing(())
    now = datetime.now(UTC)
    checked = 0
    for provider in providers:
        if provider.id not in ("anthropic", "openai"):
            continue
        for model in provider.models:
            for usage in (CACHED, Usage(150_000, 900, 120_000, 10_000, 5_000)):
                ours = listed.cost(provider.id, model.id, usage)
                # genai-prices' fine-tuned ids (ft:gpt-4o) do not match their own clauses
                # (ft:gpt-4o-2024-…): it cannot price them by id, only real ids.
                if ours is None or model.id.startswith("ft:"):
                    continue
                theirs = calc_price(
                    ListedUsage(
                        input_tokens=usage.input
                        + usage.cache_read
                        + usage.cache_write_5m
                        + usage.cache_write_1h,
                        output_tokens=usage.output,
                        cache_read_tokens=usage.cache_read,
                        cache_write_tokens=usage.cache_write_5m + usage.cache_write_1h,
                        cache_write_1h_tokens=usage.cache_write_1h,
                    ),
                    model.id,
                    provider_id=provider.id,
                    genai_request_timestamp=now,
                )
                assert ours == pytest.approx(float(theirs.total_price), rel=1e-9), model.id
                checked += 1
    assert checked > 100


def test_a_scale_override_discounts_the_list_price() -> None:
    pricing = configured(**{"claude-sonnet-4-6": ModelPriceSettings(scale=0.8)})
    assert pricing.cost("anthropic", "claude-sonnet-4-6", CACHED) == pytest.approx(0.069 * 0.8)


def test_a_rate_override_replaces_the_price_and_covers_dated_ids() -> None:
    # Keyed by genai-prices' id; cache rates left out follow 0.1x / 1.25x / 2x of input.
    entry = ModelPriceSettings(input_per_mtok=0.8, output_per_mtok=4)
    pricing = configured(**{"claude-haiku-4-5": entry})
    expected = (2_000 * 0.8 + 1_000 * 4 + 50_000 * 0.08 + 4_000 * 1.0 + 3_000 * 1.6) / 1e6
    assert pricing.cost("anthropic", "claude-haiku-4-5-20251001", CACHED) == pytest.approx(expected)
    price = pricing.price("anthropic", "claude-haiku-4-5-20251001")
    assert price is not None
    assert price.source == "config"


def test_config_adds_a_model_with_tiers() -> None:
    entry = ModelPriceSettings.model_validate(
        {
            "input_per_mtok": 1,
            "output_per_mtok": 2,
            "cache_read_per_mtok": 0,
            "tiers": [{"above_prompt_tokens": 1_000, "input_per_mtok": 10, "output_per_mtok": 20}],
        }
    )
    pricing = configured(**{"in-house-7b": entry})
    assert pricing.cost("openai", "in-house-7b", Usage(input=1_000, output=1_000)) == pytest.approx(
        3e-3
    )
    assert pricing.cost("openai", "in-house-7b", Usage(input=1_001)) == pytest.approx(1_001e-5)


def test_rates_without_input_and_output_are_refused() -> None:
    with pytest.raises(ValidationError, match="needs input_per_mtok and output_per_mtok"):
        ModelPriceSettings(cache_read_per_mtok=0.1)


def test_an_unknown_model_has_no_price(pricing: Pricing) -> None:
    assert pricing.cost("anthropic", "claude-unreleased-9", CACHED) is None
    assert pricing.cost("openai", "no-such-model", CACHED) is None
    assert pricing.cost("anthropic", None, CACHED) is None


def test_batch_halves_the_price(pricing: Pricing) -> None:
    # From genai-prices' own batch price where it has one, else pricing.batch_multiplier.
    full = pricing.cost("anthropic", "claude-haiku-4-5", CACHED)
    assert full is not None
    assert pricing.cost("anthropic", "claude-haiku-4-5", CACHED, batch=True) == pytest.approx(
        full / 2
    )
    assert pricing.cost("anthropic", "claude-sonnet-5", CACHED, batch=True) == pytest.approx(
        (2_000 * 3 + 1_000 * 15 + 50_000 * 0.30 + 4_000 * 3.75 + 3_000 * 6) / 2e6
    )


def test_surcharges_genai_prices_knows(pricing: Pricing) -> None:
    # Fast mode on Opus 5.5: 8 / 40 instead of 4 / 20 (docs/wire.md).
    usage = Usage(input=1_000_000, output=1_000_000)
    assert pricing.cost("anthropic", "claude-opus-5-5", usage) == pytest.approx(24.0)
    fast = (("speed", "fast"),)
    assert pricing.cost("anthropic", "claude-opus-5-5", usage, context=fast) == pytest.approx(48.0)
    # Web search: $10 per 1,000 searches.
    assert pricing.cost("anthropic", "claude-opus-5-5", Usage(), web_searches=3) == pytest.approx(
        0.03
    )


def test_an_unlisted_id_is_priced_as_the_relative_it_is_served_like() -> None:
    """A newer snapshot the tables do not list yet (Codex's default moves faster than any
    price table): priced as its listed relative, so that it is metered and budgeted."""
    usage = Usage(input=1_000_000, output=0)
    unrelated = Pricing.load()
    assert unrelated.cost("anthropic", "claude-opus-9-9", usage) is None
    related = Pricing.load(relative=lambda m: "claude-opus-4-5" if m == "claude-opus-9-9" else None)
    assert related.cost("anthropic", "claude-opus-9-9", usage) == related.cost(
        "anthropic", "claude-opus-4-5", usage
    )
    assert related.cost("anthropic", "claude-opus-9-9", usage)


def test_a_fine_tuned_model_is_priced_as_listed_or_as_its_base_at_the_dearer_ratio(
    pricing: Pricing,
) -> None:
    """Unpriced, a fine-tuned id charged a flat cent a call whatever its tokens."""
    listed = pricing.price("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc")
    assert listed is not None
    assert listed.base.output * 1e6 == pytest.approx(1.2)  # genai-prices lists it
    tuned = pricing.price("openai", "ft:gpt-4.1-2025-04-14:acme::abc123")
    base = pricing.price("openai", "gpt-4.1-2025-04-14")
    assert tuned is not None
    assert base is not None
    assert tuned.base.output == pytest.approx(FINE_TUNED_FACTOR * base.base.output)
    assert pricing.price("openai", "ft:no-such-base:acme::x") is None


def test_a_prices_cost_is_its_rates_cost_over_a_grid() -> None:
    """`Price.cost` sums in its own frame what `rates(usage).cost(usage)` sums, in the same
    order: the same float, tiered or not, web searches or none."""
    import random

    from gateway.metering.rates import Price, Rates

    rng = random.Random(5)

    def rates() -> Rates:
        return Rates(*(rng.choice([0.0, 3e-6, rng.uniform(0, 1e-4), 1 / 3]) for _ in range(5)))

    for _ in range(3000):
        drawn = [(rng.randrange(10**6), rates()) for _ in range(rng.randrange(3))]
        tiers = tuple(sorted(drawn, key=lambda tier: tier[0]))
        price = Price("m", "config", rates(), tiers, rng.choice([0.0, 0.01, 1 / 7]))
        counts = [rng.choice([0, 1, 7, rng.randrange(10**7), -3]) for _ in range(5)]
        usage = Usage(*counts)
        searches = rng.choice([0, 1, 4])
        expected = price.rates(usage).cost(usage) + searches * price.per_web_search
        assert price.cost(usage, searches) == expected
