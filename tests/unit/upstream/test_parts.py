"""A body sent as its parts (wire/splice.py's `Parts`) puts on the wire the very bytes its
join does: the same head (Content-Length framing, never chunked), the same body, the same
clipping at a length the client declared; sent again (a retry, a fallback), the same again."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.upstream import Upstream
from gateway.wire.headers import RawHeaders
from gateway.wire.splice import ALONE_FROM_BYTES, Json, Parts, Pieces, piece, spliced
from tests.unit.upstream.test_direct import OK, direct, serving

BIG = ALONE_FROM_BYTES
SPLITS: list[list[Json]] = [
    [b'{"a":', b"1" * BIG, b"}"],
    [b"x" * BIG, b"y" * 3, b"z" * (2 * BIG)],
    [b"{", b"[" * 10, b"2" * (5 * BIG), b"]" * 10, b"}"],
    [b"q" * 100_000],
    [b"a", b"b", b"c"],
    # A long part as a view of its dump (splice.py's `dumped`), short ones too.
    [memoryview(b"[" + b"v" * BIG + b"]")[1:-1], b"w", memoryview(b"[[x]]")[2:-2]],
]
HEADS: list[RawHeaders] = [
    [(b"x-api-key", b"k"), (b"content-type", b"application/json")],
    [],
    [(b"x-dup", b"1"), (b"X-Dup", b"2")],
]


async def sent(upstream: Upstream, headers: RawHeaders, body: bytes | Parts) -> None:
    response = await upstream.open("anthropic", "POST", "/v1/messages", headers, body)
    try:
        await upstream.read("anthropic", response)
    finally:
        await response.aclose()


def wire(headers: RawHeaders, *bodies: bytes | Parts) -> list[bytes]:
    """The requests for `bodies`, sent one after another to one server (one Host)."""

    async def go() -> list[bytes]:
        async with serving(OK) as (server, url):
            upstream = direct(url)
            for body in bodies:
                await sent(upstream, headers, body)
            await upstream.aclose()
            return server.seen

    return asyncio.run(go())


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("headers", HEADS)
def test_the_parts_put_the_bytes_of_their_join_on_the_wire(
    split: list[bytes], headers: RawHeaders
) -> None:
    whole = b"".join(split)
    parts = Parts(tuple(split), len(whole))
    # Sent twice on one connection (a retry sends the same again), then as bytes.
    again = wire(headers, parts, parts, whole)
    assert again[0] == again[1] == again[2]
    assert b"transfer-encoding" not in again[0].lower()
    assert f"\r\ncontent-length: {len(whole)}\r\n".encode() in again[0].lower()
    assert again[0].endswith(b"\r\n\r\n" + whole)


def test_a_declared_length_clips_the_parts_as_it_clips_the_bytes() -> None:
    split: list[Json] = [b"a" * BIG, b"b" * 10, memoryview(b"c" * BIG)]
    whole = b"".join(split)
    headers = [(b"Content-Length", str(BIG + 5).encode())]
    clipped = wire(headers, Parts(tuple(split), len(whole)), whole)
    assert clipped[0] == clipped[1]
    assert clipped[0].endswith(b"\r\n\r\n" + whole[: BIG + 5])


def test_a_body_with_a_long_part_is_spliced_into_parts_that_join_to_its_json() -> None:
    long_text = "t" * BIG
    body = {"model": "m", "messages": [{"content": "hi"}, {"content": long_text}, "x"]}
    pieces = Pieces({id(item): piece(item, orjson.dumps(item), 2) for item in body["messages"][:2]})
    out = spliced(body, pieces)
    assert isinstance(out, Parts)
    assert bytes(out) == orjson.dumps(body)
    assert len(out) == len(orjson.dumps(body))
    assert [len(p) >= BIG for p in out.parts] == [False, True, False]
    assert spliced({"model": "m", "messages": [{"content": "hi"}]}, Pieces()) == orjson.dumps(
        {"model": "m", "messages": [{"content": "hi"}]}
    )
