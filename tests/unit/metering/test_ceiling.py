"""The most a call can cost, reserved against a gateway key's budget before it is made."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from gateway.catalog import ModelCatalog
from gateway.catalog.tokens import BodyChars, count_tokens, estimate_body_tokens
from gateway.metering.ceiling import CostCeiling, cache_writes
from gateway.metering.pricing import Pricing
from gateway.wire.usage import Usage

SONNET = "claude-sonnet-4-6"  # 3 input, 15 output, 6 a 1h cache write (USD per MTok)


@pytest.fixture(scope="module")
def ceiling() -> CostCeiling:
    return CostCeiling(Pricing.load(), ModelCatalog.load(), default_output_tokens=4096)


def ask(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": SONNET, "messages": [{"role": "user", "content": text}], **fields}


def test_never_less_than_the_call_is_billed(ceiling: CostCeiling) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 500
    most = ceiling.usd("anthropic", [SONNET], ask(text, max_tokens=1000))
    billed = Pricing.load().cost(
        "anthropic", SONNET, Usage(input=count_tokens(text, 4.0), output=1000)
    )
    assert most is not None
    assert billed is not None
    assert most >= billed
    # Without cache_control nothing is written: each input token at the input rate (3)...
    tokens = estimate_body_tokens(ask(text), 4.0)
    assert most == pytest.approx(tokens * 3e-6 + 1000 * 15e-6, rel=0.01)
    # ... with a 1h breakpoint, at the 1h write rate (6), which a 1h write is billed at.
    marked = ask(
        text,
        max_tokens=1000,
        system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    )
    written = ceiling.usd("anthropic", [SONNET], marked)
    assert written is not None
    billed_1h = Pricing.load().cost(
        "anthropic", SONNET, Usage(cache_write_1h=count_tokens(text, 4.0), output=1000)
    )
    assert billed_1h is not None
    assert written >= billed_1h
    assert written == pytest.approx(
        estimate_body_tokens(marked, 4.0) * 6e-6 + 1000 * 15e-6, rel=0.01
    )


def test_without_max_tokens_the_model_s_own_maximum(ceiling: CostCeiling) -> None:
    most = ceiling.usd("anthropic", [SONNET], ask("hi"))
    assert most is not None
    assert most >= 64_000 * 15e-6  # Sonnet 4.6 writes up to 64k tokens
    unknown = ceiling.usd("openai", ["gpt-4o"], {"model": "gpt-4o", "messages": []})
    assert unknown is not None  # priced but not in the catalog: the configured default
    assert unknown >= 4096 * 10e-6


def test_the_dearest_model_the_call_may_be_served_by(ceiling: CostCeiling) -> None:
    cheap = ceiling.usd("anthropic", ["claude-haiku-4-5"], ask("hi", max_tokens=100))
    both = ceiling.usd("anthropic", ["claude-haiku-4-5", SONNET], ask("hi", max_tokens=100))
    assert cheap is not None
    assert both is not None
    assert both > cheap
    assert ceiling.usd("anthropic", ["no-such-model"], ask("hi")) is None


def test_media_is_known_by_its_place_and_shape_not_its_content() -> None:
    image = base64.b64encode(bytes(range(256)) * 400).decode()  # 136 KB of base64
    source = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": image},
    }
    as_media = estimate_body_tokens(ask_blocks(source), 4.0)
    assert as_media < len(image) / 20  # not 34k tokens of text
    url = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}}
    assert estimate_body_tokens(ask_blocks(url), 4.0) < len(image) / 20
    # The same characters sent as text are billed as text, "data:" or not.
    assert estimate_body_tokens(ask(image), 4.0) >= len(image) / 4
    assert estimate_body_tokens(ask("data:image/png;base64," + image), 4.0) >= len(image) / 4
    # Media outside the content blocks is not media: here, a field of the body.
    assert estimate_body_tokens({"content": [source]}, 4.0) >= len(image) / 4


def ask_blocks(*blocks: Any) -> dict[str, Any]:
    return {"model": SONNET, "messages": [{"role": "user", "content": list(blocks)}]}


def test_a_deeply_nested_body_is_walked_without_recursion() -> None:
    body: Any = "leaf"
    for _ in range(5000):
        body = [body]
    assert estimate_body_tokens(body, 4.0) == 1


# The budget review: fields and options the ceiling must not be blind to.

GPT = "gpt-5.6-terra"


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": GPT, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_the_largest_output_limit_is_reserved_whichever_field_sets_it(
    ceiling: CostCeiling,
) -> None:
    """{"max_tokens":16,"max_completion_tokens":20000}: OpenAI generates up to 20000."""
    both = ceiling.usd("openai", [GPT], chat(max_tokens=16, max_completion_tokens=20000))
    alone = ceiling.usd("openai", [GPT], chat(max_completion_tokens=20000))
    assert both is not None
    assert both == pytest.approx(alone, rel=1e-3)  # the body's own size aside
    responses = {"model": GPT, "input": "hi", "max_tokens": 16, "max_output_tokens": 20000}
    assert ceiling.usd("openai", [GPT], responses) == pytest.approx(alone, rel=1e-3)


def test_each_choice_is_reserved_its_output(ceiling: CostCeiling) -> None:
    one = ceiling.usd("openai", [GPT], chat(max_completion_tokens=1000))
    eight = ceiling.usd("openai", [GPT], chat(max_completion_tokens=1000, n=8))
    assert one is not None
    assert eight is not None
    assert eight - one == pytest.approx(7 * 1000 * 12e-6, rel=0.01)  # output: $12 / MTok


def test_the_priority_tier_is_reserved_at_its_price(ceiling: CostCeiling) -> None:
    default = ceiling.usd("openai", [GPT], chat(max_completion_tokens=1000))
    priority = ceiling.usd(
        "openai", [GPT], chat(max_completion_tokens=1000, service_tier="priority")
    )
    assert default is not None
    assert priority is not None
    assert priority == pytest.approx(2 * default, rel=0.01)


@pytest.mark.parametrize("field", ["previous_response_id", "conversation"])
def test_a_stored_conversation_is_reserved_at_the_model_s_input_window(
    ceiling: CostCeiling, field: str
) -> None:
    body = {"model": GPT, "input": "and then?", "max_output_tokens": 10, field: "resp_1"}
    spec = ModelCatalog.load().resolve(GPT)
    assert spec is not None
    most = ceiling.usd("openai", [GPT], body)
    assert most is not None
    fresh = ceiling.usd("openai", [GPT], {k: v for k, v in body.items() if k != field})
    assert fresh is not None
    assert most > fresh
    price = Pricing.load().price("openai", GPT)
    assert price is not None
    assert most == pytest.approx(price.most(spec.max_input_tokens, 10), rel=0.01)


# Counted from the body's JSON (what the gateway sends), not by walking each of its values.

IMAGE = base64.b64encode(bytes(range(256)) * 400).decode()  # 136 KB of base64


def test_the_json_counts_at_least_every_character_of_the_text() -> None:
    body = ask('Quotes " and \\ and newlines\n, ünïcödé and 漢字 ' * 300, max_tokens=10)
    body["tools"] = [{"name": "t", "input_schema": {"type": "object", "minimum": 1}}]
    walked = BodyChars.of(body)
    counted = BodyChars.of_json(orjson.dumps(body), body)
    assert counted.media == walked.media == 0
    # Every string's characters, each at least a byte; the walk's 8 a number aside.
    assert counted.text >= walked.text - 8


def test_media_from_the_json_is_media_in_the_conversation_and_text_in_a_tool() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": IMAGE},
    }
    nested = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    anthropic = {"model": SONNET, "messages": [{"role": "user", "content": [nested]}]}
    url = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + IMAGE}}
    chat = {"model": GPT, "messages": [{"role": "user", "content": [url]}]}
    for body in (anthropic, chat):
        counted = BodyChars.of_json(orjson.dumps(body), body)
        walked = BodyChars.of(body)
        assert counted.media == walked.media >= len(IMAGE)
        assert counted.media_tokens == walked.media_tokens
        assert counted.text == len(orjson.dumps(body)) - counted.media
        assert counted.tokens(4.0) < len(IMAGE) / 20  # not 34k tokens of text
    # A tool's definition is read as text, whatever it holds.
    tooled = {**chat, "tools": [{"name": "t", "description": "data:" + IMAGE}]}
    assert BodyChars.of_json(orjson.dumps(tooled), tooled).tokens(4.0) >= len(IMAGE) / 4


def test_the_ceiling_counts_the_json_it_is_given_or_serializes_the_body(
    ceiling: CostCeiling,
) -> None:
    body = ask("The quick brown fox. " * 400, max_tokens=10)
    raw = orjson.dumps(body)
    assert ceiling.usd("anthropic", [SONNET], body, raw) == ceiling.usd("anthropic", [SONNET], body)
    deep: Any = "leaf"
    for _ in range(300):  # past orjson's 255 levels: walked instead
        deep = [deep]
    assert ceiling.usd("anthropic", [SONNET], ask("hi", max_tokens=10, metadata=deep)) is not None


def test_cache_writes_are_read_where_anthropic_reads_them() -> None:
    hour = {"type": "ephemeral", "ttl": "1h"}
    schema = {"type": "object", "properties": {"cache_control": hour}}
    assert cache_writes({"tools": [{"name": "t", "input_schema": schema}]}) == "none"
    assert cache_writes({"tools": [{"name": "t", "cache_control": hour}]}) == "1h"
    assert cache_writes({"cache_control": {"type": "ephemeral"}}) == "5m"
    nested = {
        "type": "tool_result",
        "content": [{"type": "text", "text": "x", "cache_control": hour}],
    }
    assert cache_writes({"messages": [{"role": "user", "content": [nested]}]}) == "1h"
