"""A provider's body that breaks off (cut, or silent past the read timeout) leaves nothing
in a reference cycle: aiohttp keeps the error on the body's reader and raises it as it is,
so its traceback (whose frames hold the reader) made the reader, the response and what it
had buffered a cycle for the garbage collector (upstream/direct.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from gateway.errors import GatewayError, UpstreamSilent, UpstreamUnavailable
from gateway.upstream.direct import AiohttpResponse
from tests.support.collector import collector_off, garbage_of
from tests.unit.upstream.test_direct import (
    JSON_HEAD,
    Reply,
    call,
    direct,
    serving,
    then_cut,
    then_silent,
)

CALLS = 10
BROKEN = {
    "cut": (then_cut(JSON_HEAD + b'content-length: 50\r\n\r\n{"a'), UpstreamUnavailable),
    "silent": (then_silent(JSON_HEAD + b'content-length: 50\r\n\r\n{"a'), UpstreamSilent),
}


@pytest.fixture
def collector() -> Iterator[None]:
    with collector_off():
        yield


@pytest.mark.parametrize("way", list(BROKEN))
def test_a_body_that_breaks_off_leaves_no_cycle(way: str, collector: None) -> None:
    reply: Reply = BROKEN[way][0]

    async def go() -> tuple[list[type], list[str]]:
        errors: list[type] = []
        async with serving(reply) as (_, url):
            upstream = direct(url, timeout_s=0.05)
            try:
                garbage_of()  # what the server and the session's start left
                for _ in range(CALLS):
                    try:
                        await call(upstream)
                    except GatewayError as error:
                        errors.append(type(error))
                found = garbage_of(
                    AiohttpResponse, aiohttp.ClientResponse, aiohttp.StreamReader, Exception
                )
            finally:
                await upstream.aclose()
        return errors, found

    errors, found = asyncio.run(go())
    assert errors == [BROKEN[way][1]] * CALLS
    assert found == []
