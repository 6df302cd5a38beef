"""Media in a body reserves at least what the emulator bills for it (the review's cases).

Media by reference shows no size (an image is billed ~1,600 tokens by Anthropic, 765 by
the emulator's OpenAI); a document or file by reference is billed by pages the body does
not show, so it reserves the model's whole input window; text that begins "data:" and
base64-shaped values outside the content blocks are text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest

from gateway.catalog import ModelCatalog, ModelSpec
from gateway.catalog.tokens import MEDIA_FLOOR_TOKENS, BodyChars, estimate_body_tokens
from gateway.emulator.anthropic.prompt import build_prompt
from gateway.emulator.openai.prompt import build_chat_prompt, build_responses_prompt
from gateway.metering.ceiling import CostCeiling
from gateway.metering.pricing import Pricing
from gateway.wire.usage import Usage

SONNET = "claude-sonnet-4-6"
GPT = "gpt-5.6-terra"
SMALL = base64.b64encode(b"\x89PNG" + bytes(300)).decode()  # ~400 characters
LARGE = base64.b64encode(bytes(range(256)) * 1600).decode()  # 546 KB of base64
FAKE = "data:" + "a b " * 100_000  # text, whatever it begins with
Builder = Callable[[Mapping[str, Any], ModelSpec], Any]


def anthropic(*blocks: Any) -> dict[str, Any]:
    content = list(blocks) if blocks else FAKE
    return {"model": SONNET, "max_tokens": 1, "messages": [{"role": "user", "content": content}]}


def image(source: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image", "source": source}


def document(source: dict[str, Any]) -> dict[str, Any]:
    return {"type": "document", "source": source}


def chat(*parts: Any) -> dict[str, Any]:
    content = list(parts) if parts else FAKE
    return {
        "model": GPT,
        "max_completion_tokens": 1,
        "messages": [{"role": "user", "content": content}],
    }


def responses(*parts: Any) -> dict[str, Any]:
    input_: Any = [{"role": "user", "content": list(parts)}] if parts else FAKE
    return {"model": GPT, "max_output_tokens": 1, "input": input_}


URL = {"type": "url", "url": "https://e.x/a.png"}
BASE64 = {"type": "base64", "media_type": "image/png"}
TOOL_USE = {
    "model": SONNET,
    "max_tokens": 1,
    "messages": [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "save",
                    "input": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": "a b " * 100_000,
                    },
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
        },
    ],
}
IN_TOOL_RESULT = anthropic(
    {"type": "tool_result", "tool_use_id": "t1", "content": [image(URL)] * 100}
)
HTTP_IMAGE = {"type": "image_url", "image_url": {"url": "https://e.x/a.png"}}
FUNCTION_OUTPUT = {
    "model": GPT,
    "max_output_tokens": 1,
    "input": [
        {"type": "function_call", "call_id": "c1", "name": "look", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_image", "image_url": "https://e.x/a.png"}] * 100,
        },
    ],
}

# (name, provider, body, whole window)
CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    ("anthropic image by url", "anthropic", anthropic(*[image(URL)] * 100), False),
    (
        "anthropic image by file",
        "anthropic",
        anthropic(image({"type": "file", "file_id": "f"})),
        False,
    ),
    (
        "anthropic small base64",
        "anthropic",
        anthropic(*[image({**BASE64, "data": SMALL})] * 100),
        False,
    ),
    ("anthropic large base64", "anthropic", anthropic(image({**BASE64, "data": LARGE})), False),
    ("anthropic image in a tool result", "anthropic", IN_TOOL_RESULT, False),
    (
        "anthropic pdf by url",
        "anthropic",
        anthropic(document({"type": "url", "url": "https://e.x/a.pdf"})),
        True,
    ),
    (
        "anthropic document by file",
        "anthropic",
        anthropic(document({"type": "file", "file_id": "file_1"})),
        True,
    ),
    ("anthropic fake data: text", "anthropic", anthropic(), False),
    ("anthropic base64 dict in tool_use.input", "anthropic", TOOL_USE, False),
    ("chat image by url", "openai/chat", chat(*[HTTP_IMAGE] * 100), False),
    (
        "chat small data url",
        "openai/chat",
        chat(
            *[{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{SMALL}"}}] * 100
        ),
        False,
    ),
    ("chat file by id", "openai/chat", chat({"type": "file", "file": {"file_id": "file_1"}}), True),
    (
        "chat file data",
        "openai/chat",
        chat({"type": "file", "file": {"file_data": f"data:application/pdf;base64,{LARGE}"}}),
        False,
    ),
    ("chat fake data: text", "openai/chat", chat(), False),
    (
        "chat data url as a text part",
        "openai/chat",
        chat({"type": "text", "text": f"data:image/png;base64,{LARGE}"}),
        False,
    ),
    (
        "responses image by url",
        "openai/responses",
        responses(*[{"type": "input_image", "image_url": "https://e.x/a.png"}] * 100),
        False,
    ),
    (
        "responses image by file id",
        "openai/responses",
        responses(*[{"type": "input_image", "file_id": "file_1"}] * 100),
        False,
    ),
    (
        "responses small data url",
        "openai/responses",
        responses(*[{"type": "input_image", "image_url": f"data:image/png;base64,{SMALL}"}] * 100),
        False,
    ),
    (
        "responses file by url",
        "openai/responses",
        responses({"type": "input_file", "file_url": "https://e.x/a.pdf"}),
        True,
    ),
    (
        "responses file by id",
        "openai/responses",
        responses({"type": "input_file", "file_id": "file_1"}),
        True,
    ),
    (
        "responses file data",
        "openai/responses",
        responses({"type": "input_file", "file_data": f"data:application/pdf;base64,{LARGE}"}),
        False,
    ),
    ("responses image in a function output", "openai/responses", FUNCTION_OUTPUT, False),
    ("responses fake data: text", "openai/responses", responses(), False),
]
BUILDERS: dict[str, Builder] = {
    "anthropic": build_prompt,
    "openai/chat": build_chat_prompt,
    "openai/responses": build_responses_prompt,
}


@pytest.fixture(scope="module")
def ceiling() -> CostCeiling:
    return CostCeiling(Pricing.load(), ModelCatalog.load(), default_output_tokens=4096)


@pytest.mark.parametrize(("name", "api", "body", "window"), CASES, ids=[c[0] for c in CASES])
def test_the_reservation_covers_what_the_emulator_bills(
    ceiling: CostCeiling, name: str, api: str, body: dict[str, Any], window: bool
) -> None:
    provider = api.split("/")[0]
    spec = ModelCatalog.load().resolve(body["model"])
    assert spec is not None
    billed_tokens = BUILDERS[api](body, spec).total_tokens
    billed = Pricing.load().cost(provider, spec.id, Usage(input=billed_tokens, output=1))
    most = ceiling.usd(provider, [body["model"]], body, orjson.dumps(body))
    assert billed is not None
    assert most is not None
    assert most >= billed, name
    # The walk and the JSON count find the same media.
    counted, walked = BodyChars.of_json(orjson.dumps(body), body), BodyChars.of(body)
    assert (counted.media, counted.media_tokens, counted.unsized) == (
        walked.media,
        walked.media_tokens,
        walked.unsized,
    )
    price = Pricing.load().price(provider, spec.id)
    assert price is not None
    at_window = price.most(spec.max_input_tokens, 1, "none" if provider == "anthropic" else "1h")
    assert (most == pytest.approx(at_window, rel=1e-6)) is window


def test_a_hundred_images_by_url_reserve_more_than_their_bill(ceiling: CostCeiling) -> None:
    """The review's case: $0.005 reserved against a $0.48 bill before."""
    body = anthropic(*[image(URL)] * 100)
    most = ceiling.usd("anthropic", [SONNET], body)
    assert most is not None
    assert most >= 100 * MEDIA_FLOOR_TOKENS * 3e-6 > 0.48


def test_an_ordinary_text_body_is_counted_as_before() -> None:
    body = {
        "model": SONNET,
        "system": [{"type": "text", "text": "You are terse."}],
        "tools": [{"name": "t", "description": "data:image/png;base64,AAAA", "input_schema": {}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "The quick brown fox. " * 400}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "a", "name": "t", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "a", "content": "x"}],
            },
        ],
    }
    raw = orjson.dumps(body)
    assert BodyChars.of_json(raw, body) == BodyChars(len(raw))
    assert BodyChars.of_json(raw, body).tokens(4.0) == -(-len(raw) // 4)
    assert BodyChars.of(body).media == 0
    assert estimate_body_tokens(body, 4.0) == BodyChars.of(body).tokens(4.0)
