"""Upstream, the only provider I/O, through an httpx transport (httpx.MockTransport; the
default client, aiohttp, is test_direct.py's): what it sends (URL, headers, timeouts), and
how whatever a provider sends back becomes either a response or one of the gateway's own
errors, never a transport's exception."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.errors import (
    GatewayError,
    MalformedResponse,
    ResponseTooLarge,
    UpstreamSilent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import ProviderSettings
from gateway.upstream import MAX_RESPONSE_HEADERS, Response, Upstream

Handler = Callable[[httpx.Request], httpx.Response]


def upstream(handler: Handler, emulated: frozenset[str] = frozenset(), **limits: Any) -> Upstream:
    providers = {
        "anthropic": ProviderSettings(base_url="http://anthropic.invalid/", **limits),
        "openai": ProviderSettings(base_url="http://openai.invalid/base"),
    }
    return Upstream(providers, emulated=emulated, transport=httpx.MockTransport(handler))


def sent(u: Upstream, provider: str = "anthropic", headers: Any = ()) -> Response:
    async def go() -> Response:
        response = await u.open(provider, "POST", "/v1/messages?beta=true", list(headers), b"{}")
        await u.read(provider, response)
        return response

    return asyncio.run(go())


def failure(u: Upstream) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        sent(u)
    return raised.value


class Seen:
    def __init__(self, response: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response or httpx.Response(200, content=b"{}")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


# --- what is sent -------------------------------------------------------------------------


def test_the_request_goes_to_the_providers_base_url_with_its_target() -> None:
    seen = Seen()
    sent(upstream(seen), "openai")
    assert str(seen.requests[0].url) == "http://openai.invalid/base/v1/messages?beta=true"
    sent(upstream(seen), "anthropic")  # a trailing slash on the base is not doubled
    assert str(seen.requests[1].url) == "http://anthropic.invalid/v1/messages?beta=true"


def test_headers_are_sent_as_given_and_the_body_uncompressed() -> None:
    seen = Seen()
    sent(upstream(seen), headers=[(b"x-api-key", b"sk-ant-1"), (b"anthropic-version", b"1")])
    request = seen.requests[0]
    assert request.headers["x-api-key"] == "sk-ant-1"  # the key the relay chose, untouched
    assert request.headers["anthropic-version"] == "1"
    assert request.headers["accept-encoding"] == "identity"  # usage is read from the bytes
    assert request.content == b"{}"


def test_emulator_headers_reach_only_the_emulator() -> None:
    seen = Seen()
    fault = [(b"x-emulator-fault", b"529"), (b"x-api-key", b"k")]
    sent(upstream(seen), "anthropic", fault)
    assert "x-emulator-fault" not in seen.requests[0].headers
    assert seen.requests[0].headers["x-api-key"] == "k"
    sent(upstream(seen, emulated=frozenset({"anthropic"})), "anthropic", fault)
    assert seen.requests[1].headers["x-emulator-fault"] == "529"


def test_each_request_carries_its_providers_timeouts() -> None:
    seen = Seen()
    sent(upstream(seen, timeout_s=7, connect_timeout_s=2))
    timeouts = seen.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 2, "read": 7, "write": 7, "pool": 7}


# --- what comes back ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 404, 529, 599])
def test_a_response_of_any_http_status_is_returned(status: int) -> None:
    assert sent(upstream(Seen(httpx.Response(status)))).status_code == status


@pytest.mark.parametrize("status", [101, 199, 600, 999])
def test_a_status_outside_200_to_599_is_a_malformed_response(status: int) -> None:
    error = failure(upstream(Seen(httpx.Response(status))))
    assert isinstance(error, MalformedResponse)
    assert error.status == 502


def test_too_many_headers_is_a_malformed_response() -> None:
    headers = [(f"x-h{i}", "v") for i in range(MAX_RESPONSE_HEADERS + 1)]
    assert isinstance(
        failure(upstream(Seen(httpx.Response(200, headers=headers)))), MalformedResponse
    )
    headers = headers[:MAX_RESPONSE_HEADERS]
    assert sent(upstream(Seen(httpx.Response(200, headers=headers)))).status_code == 200


def raising(error: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        (httpx.ConnectError("refused"), UpstreamUnavailable, 502),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout, 504),
        (httpx.PoolTimeout("full"), UpstreamTimeout, 504),
        (httpx.ReadTimeout("silent"), UpstreamSilent, 504),
        (httpx.RemoteProtocolError("not http"), MalformedResponse, 502),
        (httpx.ReadError("reset"), UpstreamUnavailable, 502),
    ],
)
def test_transport_errors_become_the_gateways_own(
    error: Exception, expected: type[GatewayError], status: int
) -> None:
    raised = failure(upstream(raising(error)))
    assert type(raised) is expected
    assert raised.status == status


def test_only_a_timeout_before_the_request_was_sent_is_a_connect_timeout() -> None:
    silent = failure(upstream(raising(httpx.ReadTimeout("silent")), timeout_s=42))
    assert isinstance(silent, UpstreamSilent)
    assert "42 s" in silent.message


# --- reading a whole body -----------------------------------------------------------------


class Body(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes, error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk
        if self.error is not None:
            raise self.error


def read(response: httpx.Response, **limits: Any) -> bytes:
    """The body of `response` as Upstream.read holds it, under the provider's `limits`."""
    u = upstream(Seen(response), **limits)

    async def go() -> bytes:
        opened = await u.open("anthropic", "POST", "/v1/messages", [], b"{}")
        return await u.read("anthropic", opened)

    return asyncio.run(go())


def test_a_body_within_the_cap_is_read_whole() -> None:
    body = Body(b"12345", b"67890")
    assert read(httpx.Response(200, stream=body), max_response_bytes=10) == b"1234567890"


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    body = Body(b"x" * 11)
    response = httpx.Response(200, headers={"content-length": "11"}, stream=body)
    with pytest.raises(ResponseTooLarge):
        read(response, max_response_bytes=10)
    assert body.read == 0


def test_an_undeclared_body_is_cut_off_at_the_cap_without_holding_more() -> None:
    body = Body(b"x" * 6, b"y" * 6, b"z" * 6)
    with pytest.raises(ResponseTooLarge):
        read(httpx.Response(200, stream=body), max_response_bytes=10)
    assert body.read == 2  # the third chunk was never asked for


@pytest.mark.parametrize(
    ("error", "expected"),
    [(httpx.ReadError("reset"), UpstreamUnavailable), (httpx.ReadTimeout("slow"), UpstreamSilent)],
)
def test_a_body_that_breaks_off_is_the_gateways_error(
    error: Exception, expected: type[GatewayError]
) -> None:
    body = Body(b'{"type":', error=error)
    with pytest.raises(expected):
        read(httpx.Response(200, stream=body))


def test_closing_closes_the_transport() -> None:
    closed: list[bool] = []

    class Transport(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    u = Upstream(
        {"anthropic": ProviderSettings(base_url="http://a.invalid")},
        transport=Transport(Seen()),
    )
    assert u.usable
    asyncio.run(u.aclose())
    assert not u.usable
    assert closed == [True]


@pytest.mark.parametrize(
    ("method", "body"), [("POST", b"{}"), ("POST", b""), ("PUT", b""), ("GET", b"")]
)
@pytest.mark.parametrize(
    "extra",
    [
        [],
        [(b"Host", b"elsewhere")],
        [(b"content-length", b"2")],
        [(b"Transfer-Encoding", b"chunked")],
        [(b"host", b"h"), (b"Content-Length", b"0"), (b"transfer-encoding", b"chunked")],
    ],
)
def test_the_request_is_the_one_httpx_builds_from_the_body(
    method: str, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    """The headers httpx adds for `content=body` (Host, Content-Length) are given at once,
    where the caller gave none: the same request, header for header."""
    seen = Seen()
    headers = [(b"x-api-key", b"k"), (b"content-type", b"application/json"), *extra]
    relay = upstream(seen)

    async def go() -> None:
        response = await relay.open("anthropic", method, "/v1/messages", headers, body)
        await response.aclose()

    asyncio.run(go())
    url = httpx.URL("http://anthropic.invalid/v1/messages")
    expected = httpx.Request(
        method, url, headers=[*headers, (b"accept-encoding", b"identity")], content=body
    )
    request = seen.requests[0]
    assert request.headers.raw == expected.headers.raw
    assert request.content == expected.content == body
