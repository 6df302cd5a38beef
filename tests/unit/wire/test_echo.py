"""A gateway-injected prompt_cache_key is not echoed back to the client."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.wire.echo import EchoFilter, unecho

KEY = b'"tollgate-0123456789abcdef0123456789abcdef"'
CREATED = (
    b"event: response.created\n"
    b'data: {"type":"response.created","response":{"id":"r","prompt_cache_key":'
)
STREAM = (
    CREATED
    + KEY
    + b',"status":"in_progress"}}\n\n'
    + b"event: response.output_text.delta\n"
    + b'data: {"type":"response.output_text.delta","delta":"\\"tollgate"}\n\n'
    + b"event: response.completed\n"
    + b'data: {"type":"response.completed","response":{"prompt_cache_key":'
    + KEY
    + b"}}\n\n"
)
EXPECTED = STREAM.replace(KEY, b"null")


def test_a_json_body_gets_null_in_place_of_the_key() -> None:
    body = b'{"id":"r","prompt_cache_key":' + KEY + b',"output":[]}'
    assert unecho(body, KEY, b"null") == b'{"id":"r","prompt_cache_key":null,"output":[]}'
    assert unecho(b'{"prompt_cache_key":"mine"}', KEY, b"null") == b'{"prompt_cache_key":"mine"}'


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_a_stream_split_anywhere_gets_null_in_place_of_the_key(cuts: list[int]) -> None:
    points = sorted({0, len(STREAM), *cuts})
    echo = EchoFilter(KEY, b"null")
    out = b"".join(echo.feed(STREAM[a:b]) for a, b in itertools.pairwise(points))
    assert out + echo.flush() == EXPECTED


def test_an_events_end_is_never_held_back() -> None:
    echo = EchoFilter(KEY, b"null")
    event = b'data: {"delta":"x"}\n\n'
    assert echo.feed(event) == event
    assert echo.feed(b'data: {"k":"tollg') == b'data: {"k":'  # maybe the key: held
    assert echo.feed(b'ate"}\n\n') == b'"tollgate"}\n\n'  # it was not
