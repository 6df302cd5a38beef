"""A Responses object parsed without its echoed tools (wire/echoed.py) is the full parse but
for the value of a `tools` member, and fails where the full parse fails."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.wire import echoed
from gateway.wire.openai_usage import json_object, response_object, usage_from_response
from gateway.wire.responses_usage import ResponsesStreamUsage
from gateway.wire.usage import Reported

TOOLS = [
    {"type": "function", "name": f"tool_{i}", "description": "d" * 40, "parameters": {}}
    for i in range(30)
]
S = orjson.dumps(TOOLS)
HEAD = b'{"id":"resp_1","model":"gpt-x","output":[],"tools":'
TAIL = b',"service_tier":"default","usage":{"input_tokens":10,"output_tokens":2}}'
REPLY = HEAD + S + TAIL


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    echoed.forget()
    yield
    echoed.forget()


def _without_tools(value: Any) -> Any:
    """The value with every `tools` member's value None (a walk without recursion: the
    bodies nest as deep as orjson reads)."""
    out: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, out, 0)]
    while stack:
        item, into, at = stack.pop()
        if isinstance(item, dict):
            made: Any = dict.fromkeys(item)
            for k, v in item.items():
                stack.append((None if k == "tools" else v, made, k))
        elif isinstance(item, list):
            made = [None] * len(item)
            stack.extend((v, made, i) for i, v in enumerate(item))
        else:
            made = item
        into[at] = made
    return out[0]


def _full(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return orjson.JSONDecodeError


def _echoed(raw: bytes) -> object:
    try:
        return echoed.loads(raw, echoed.response_holder)
    except orjson.JSONDecodeError:
        return orjson.JSONDecodeError


def _old_usage(raw: bytes) -> Reported:
    """usage_from_response as a full parse reads it."""
    response = json_object(raw)
    if response is None or not isinstance(response.get("usage"), dict):
        return Reported()
    return usage_from_response(raw)  # echoed.forget() first: the full parse


def test_a_reply_seen_again_skips_its_tools_and_reports_the_same() -> None:
    first = usage_from_response(REPLY)
    assert echoed._known
    assert echoed._known[0][0] == S
    assert echoed.loads(REPLY, echoed.response_holder)["tools"] is None
    assert usage_from_response(REPLY) == first
    assert first.model == "gpt-x"
    assert first.service_tier == "default"


def test_a_small_tools_array_is_not_kept() -> None:
    usage_from_response(HEAD + b"[]" + TAIL)
    usage_from_response(HEAD + b'[{"type":"function"}]' + TAIL)
    assert echoed._known == ()


def test_an_indented_reply_is_kept_to_its_next_members_key() -> None:
    indented = orjson.dumps(orjson.loads(REPLY), option=orjson.OPT_INDENT_2)
    first = usage_from_response(indented)
    assert echoed._known
    known = echoed._known[0][0]
    assert known.startswith(b"[\n")
    assert orjson.loads(known) == TOOLS
    assert echoed.loads(indented, echoed.response_holder)["tools"] is None
    assert usage_from_response(indented) == first


def test_an_indented_reply_whose_tools_come_last_is_not_kept() -> None:
    reply = orjson.loads(REPLY)
    last = {**{k: v for k, v in reply.items() if k != "tools"}, "tools": reply["tools"]}
    usage_from_response(orjson.dumps(last, option=orjson.OPT_INDENT_2))
    assert echoed._known == ()


def test_an_indented_reply_whose_next_key_is_inside_its_tools_is_not_kept() -> None:
    tools = [{**TOOLS[0], "parameters": {"service_tier": 1}}, *TOOLS[1:]]
    reply = {**orjson.loads(REPLY), "tools": tools}
    usage_from_response(orjson.dumps(reply, option=orjson.OPT_INDENT_2))
    assert echoed._known == ()


def _deep(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b'{"tools":' + S + b"}" + b"]" * levels + b"}"


HOSTILE = {
    "the same reply": REPLY,
    "nested, not the top level's": b'{"x":{"tools":' + S + b'},"usage":{"input_tokens":1}}',
    "a later top-level tools": REPLY[:-1] + b',"tools":1}',
    "a later usage": REPLY[:-1] + b',"usage":{"input_tokens":99}}',
    "a later model": REPLY[:-1] + b',"model":"other"}',
    "a number glued after": HEAD + S + b".5" + TAIL,
    "a string glued after": HEAD + S + b'"x"' + TAIL,
    "an escaped quote before": b'{"a":"\\"tools":' + S + b'"}',
    "inside a string": b'{"a":"x\\",\\"tools\\":' + S.replace(b'"', b'\\"') + b'"}',
    "a bare key before": b'{"a":"b"tools":' + S + b"}",
    "truncated after": HEAD + S + TAIL[:-2],
    "whitespace around": HEAD + b" \n " + S + b" " + TAIL,
    "a tab before the key": b'{"id":"r",\t"tools":' + S + TAIL,
    "nested past orjson's depth": _deep(1020),
    "nested to its depth": _deep(1019),
    "nested to the depth looked at": _deep(930),
    "an array, not an object": b"[" + REPLY + b"]",
    "invalid UTF-8 after": HEAD + S + b',"x":"\xff"' + TAIL,
    "a lone surrogate after": HEAD + S + b',"x":"\\ud800"' + TAIL,
    "a duplicate inside the tools' place": HEAD + S[:-1] + b',{"usage":1}]' + TAIL,
    "indented": orjson.dumps(orjson.loads(REPLY), option=orjson.OPT_INDENT_2),
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=list(HOSTILE))
def test_a_body_parses_as_the_full_parse_but_for_tools_or_fails_as_it_does(raw: bytes) -> None:
    usage_from_response(REPLY)  # the tools' bytes kept
    assert echoed._known
    full = _full(raw)
    got = _echoed(raw)
    if full is orjson.JSONDecodeError or got is orjson.JSONDecodeError:
        assert got is full
        return
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # == on a body nested 1,000 levels
    try:
        assert _without_tools(got) == _without_tools(full)
    finally:
        sys.setrecursionlimit(limit)
    if isinstance(full, dict):
        assert list(got) == list(full)
    reported = usage_from_response(raw)
    echoed.forget()
    assert reported == _old_usage(raw)


def test_a_stream_events_response_skips_its_tools_once_seen() -> None:
    event = b'{"type":"response.completed","response":' + REPLY + b"}"
    block = b"event: response.completed\ndata: " + event + b"\n\n"
    watched = []
    for _ in range(2):
        usage = ResponsesStreamUsage()
        usage.feed(block)
        watched.append((usage.model, usage.message_id, usage.service_tier, usage.usage))
    assert echoed._known
    assert echoed._known[0][0] == S
    assert watched[0] == watched[1]
    assert watched[0][3] is not None
    assert watched[0][3].input == 10
    kept = response_object(event, echoed.event_holder)
    assert kept is not None
    assert kept["response"]["tools"] is None


def test_the_most_recently_used_tools_come_first_and_at_most_kept() -> None:
    arrays = [[{**tool, "name": f"{n}_{tool['name']}"} for tool in TOOLS] for n in range(10)]
    replies = [HEAD + orjson.dumps(tools) + TAIL for tools in arrays]
    for reply in replies:
        usage_from_response(reply)
    assert len(echoed._known) == echoed.KEPT
    assert echoed._known[0][0] == orjson.dumps(arrays[-1])
    assert echoed.loads(replies[3], echoed.response_holder)["tools"] is None
    assert echoed._known[0][0] == orjson.dumps(arrays[3])
    usage_from_response(replies[3])
    assert len({known for known, _ in echoed._known}) == echoed.KEPT
    usage_from_response(REPLY)
    # Brackets in a string before it: maybe too deep to skip, so parsed whole, kept once.
    bracketed = b'{"a":"' + b"[" * 990 + b'","tools":' + S + TAIL
    reported = usage_from_response(bracketed)
    assert reported.model is None
    assert reported.usage is not None
    assert echoed._known[0][0] == S
    assert len({known for known, _ in echoed._known}) == len(echoed._known)
