from __future__ import annotations

from gateway.metering.labels import LabelBounds
from gateway.wire.headers import client_response_headers, upstream_request_headers


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
