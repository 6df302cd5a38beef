from __future__ import annotations

import random

import pytest

from gateway.endpoint.prepared import tenant, tenant_of
from gateway.metering.labels import LabelBounds
from gateway.wire.formats import ANTHROPIC_MESSAGES, OPENAI_CHAT, wire_for
from gateway.wire.headers import (
    client_response_headers,
    first_values,
    header_value,
    is_json,
    safe_model_name,
    upstream_request_headers,
    without_emulator_headers,
)


def test_hop_by_hop_and_gateway_headers_stay_behind() -> None:
    sent = upstream_request_headers(
        [
            (b"host", b"gateway:8080"),
            (b"connection", b"keep-alive"),
            (b"content-length", b"12"),
            (b"transfer-encoding", b"chunked"),
            (b"x-gateway-step", b"routing"),
            (b"x-api-key", b"sk-ant-1"),
            (b"authorization", b"Bearer sk-ant-2"),
            (b"anthropic-version", b"2026-10-21"),
            (b"anthropic-beta", b"files-api-2025-04-14"),
            (b"x-stainless-retry-count", b"0"),
            (b"x-something-new", b"kept"),
        ]
    )
    assert [name for name, _ in sent] == [
        b"x-api-key",
        b"authorization",
        b"anthropic-version",
        b"anthropic-beta",
        b"x-stainless-retry-count",
        b"x-something-new",
    ]


def test_response_headers_keep_upstreams_and_add_the_gateways() -> None:
    headers = client_response_headers(
        [(b"Request-Id", b"req_1"), (b"Connection", b"close"), (b"retry-after", b"3")],
        [(b"x-gateway-request-id", b"gw_1")],
    )
    assert headers == [
        (b"request-id", b"req_1"),
        (b"retry-after", b"3"),
        (b"x-gateway-request-id", b"gw_1"),
    ]


def test_label_values_are_bounded() -> None:
    labels = LabelBounds(["routing"], ["claude-sonnet-4-6"])
    assert labels.step("routing") == "routing"
    assert labels.step("anything-a-client-invents") == "other"
    assert labels.step(None) == "none"
    assert labels.model("claude-sonnet-4-6") == "claude-sonnet-4-6"
    assert labels.model("made-up-model") == "other"
    assert labels.model(None) == "other"


def test_an_upstreams_own_gateway_headers_and_connection_options_stay_behind() -> None:
    headers = client_response_headers(
        [
            (b"Connection", b"close, X-Hop"),
            (b"X-Hop", b"1"),
            (b"X-Gateway-Model", b"upstream-says"),
            (b"x-gateway-cost-usd", b"0.000001"),
            (b"request-id", b"req_1"),
        ],
        [(b"x-gateway-model", b"claude-haiku-4-5")],
    )
    assert headers == [(b"request-id", b"req_1"), (b"x-gateway-model", b"claude-haiku-4-5")]


def test_request_headers_a_connection_header_names_are_not_forwarded() -> None:
    sent = upstream_request_headers(
        [
            (b"connection", b"keep-alive, X-Secret-Hop"),
            (b"x-secret-hop", b"1"),
            (b"x-api-key", b"sk-ant-1"),
        ]
    )
    assert sent == [(b"x-api-key", b"sk-ant-1")]


def test_emulator_headers_are_stripped_for_other_upstreams() -> None:
    headers = [(b"x-emulator-fault", b"529"), (b"x-emulator-now", b"1"), (b"x-api-key", b"k")]
    assert without_emulator_headers(headers) == [(b"x-api-key", b"k")]


def test_content_type_is_a_case_insensitive_media_type_with_parameters() -> None:
    assert is_json(b"application/json")
    assert is_json(b"APPLICATION/JSON")
    assert is_json(b"Application/Json ; charset=UTF-8")
    assert not is_json(b"application/jsonx")
    assert not is_json(b"text/plain; application/json")
    assert not is_json(None)


def test_model_names_echoed_into_a_header_are_printable_ascii() -> None:
    assert safe_model_name("claude-haiku-4-5")
    assert safe_model_name("gpt-5.6-luna")
    assert safe_model_name("anthropic/claude-3:beta@2024")
    assert safe_model_name("m" * 256)
    for bad in (
        "",
        "m" * 257,
        "claude\u0000",
        "a\r\nb",
        "a\u007f",
        "claude haiku",
        "haïku",
        "a\tb",
    ):
        assert not safe_model_name(bad), bad


def test_errors_the_gateway_answers_alone_take_the_paths_envelope() -> None:
    assert wire_for("/v1/chat/completions") is OPENAI_CHAT
    assert wire_for("/v1/responses") is OPENAI_CHAT
    assert wire_for("/v1/messages/count_tokens") is ANTHROPIC_MESSAGES
    assert wire_for("/nope") is ANTHROPIC_MESSAGES
    assert wire_for("/v1/embeddings", [(b"authorization", b"Bearer k")]) is OPENAI_CHAT
    bearer_with_version = [(b"authorization", b"Bearer k"), (b"anthropic-version", b"1")]
    assert wire_for("/v1/models", bearer_with_version) is ANTHROPIC_MESSAGES


def _upstream_request_headers_reference(
    client_headers: list[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The filter line by line, as it was before the names-joined fast path."""
    from gateway.wire.headers import NOT_FORWARDED_UP, connection_options

    named = connection_options(client_headers)
    return [
        (name, value)
        for name, value in client_headers
        if name not in NOT_FORWARDED_UP
        and not name.startswith(b"x-gateway-")
        and (not named or name not in named)
    ]


def test_upstream_request_headers_equal_the_line_by_line_filter_over_a_grid() -> None:
    import itertools
    import random

    names = [
        b"host", b"Host", b"content-length", b"x-api-key", b"anthropic-version",
        b"connection", b"Connection", b"CONNECTION", b"keep-alive", b"x-gateway-step",
        b"X-Gateway-Step", b"x-gateway", b"x-custom", b"te", b"upgrade", b"accept-encoding",
        b"a\nx-gateway-b", b"x-connection", b"connectionx", b"",
    ]  # fmt: skip
    values = [b"", b"x-custom", b"keep-alive, x-custom", b"X-Custom ,, te", b"close", b"v"]
    rng = random.Random(7)
    grids = [[]] + [[(n, v)] for n, v in itertools.product(names, values)]
    for _ in range(3000):
        size = rng.randrange(1, 9)
        grids.append([(rng.choice(names), rng.choice(values)) for _ in range(size)])
    for headers in grids:
        expected = _upstream_request_headers_reference(headers)
        assert upstream_request_headers(headers) == expected, headers
        assert upstream_request_headers(iter(headers)) == expected, headers


def test_client_response_headers_drop_upstream_gateway_lines_wherever_they_are() -> None:
    own = [(b"x-gateway-request-id", b"gw_1")]
    for lines in (
        [(b"content-type", b"application/json")],
        [(b"X-Gateway-Cost-Usd", b"1"), (b"date", b"d")],
        [(b"date", b"d"), (b"x-gateway-model", b"m")],
        [(b"x-gatewayish", b"1"), (b"content-length", b"3")],
    ):
        sent = client_response_headers(lines, own, keep_length=False)
        expected = [
            (name.lower(), value)
            for name, value in lines
            if not name.lower().startswith(b"x-gateway-") and name.lower() != b"content-length"
        ]
        assert sent == expected + own


def _random_headers(rng: random.Random) -> list[tuple[bytes, bytes]]:
    """Lines with repeated names, names in other cases, prefixes, line breaks and empties."""
    names = [
        b"x-api-key", b"X-Api-Key", b"authorization", b"content-type", b"x-gateway-step",
        b"x-gateway-route", b"x-emulator-fault", b"X-Emulator-Now", b"x-emulator-", b"host",
        b"a\nx-emulator-b", b"", b"x-emulatorx", b"\xff",
    ]  # fmt: skip
    return [
        (rng.choice(names), bytes(rng.randrange(256) for _ in range(rng.randrange(4))))
        for _ in range(rng.randrange(12))
    ]


@pytest.mark.parametrize("seed", range(200))
def test_first_values_find_what_header_value_finds(seed: int) -> None:
    rng = random.Random(seed)
    headers = _random_headers(rng)
    first = first_values(headers)
    for name in {name for name, _ in headers} | {b"x-gateway-step", b"absent"}:
        assert first.get(name) == header_value(headers, name)
    assert tenant_of(first.get(b"x-api-key") or first.get(b"authorization")) == tenant(headers)


@pytest.mark.parametrize("seed", range(200))
def test_emulator_headers_are_stripped_as_one_by_one(seed: int) -> None:
    headers = _random_headers(random.Random(seed))
    kept = [(n, v) for n, v in headers if not n.startswith(b"x-emulator-")]
    stripped = without_emulator_headers(headers)
    assert stripped == kept
    assert (stripped is headers) == (kept == headers)
