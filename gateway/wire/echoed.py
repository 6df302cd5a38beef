"""A Responses object parsed without parsing its echo of the request's tools.

A Responses reply repeats the request's `tools` (18 of a Codex reply's 19 KB): parsing them
is most of what reading its usage, model, id and tier costs, and none of those is in them.
The bytes of a few tools arrays seen before are kept; a reply whose first `"tools":` member
holds one of them is parsed with `null` in its place.

Why that is the full parse but for that one value: the `"tools":` found follows `,`, `{` or
whitespace, so its first quote is not escaped; if the parse with `null` succeeds, that quote
opens a string (closing one, it would leave `tools` bare) followed by `:`, so `"tools"` is a
key and `null` its value, outside any string. The kept bytes are one complete JSON value
(`orjson.dumps` of a parse, or bytes `orjson.loads` read as one value), and a value is
self-delimiting: in the reply they are that key's whole value, lexed as they were alone. So
the reply is valid exactly when the substituted one is (nesting checked: orjson refuses more
than 1024 levels, and the value sits at most as deep as the brackets before it), and its
parse is the same, duplicate keys and all, with that key's value in place of `null`. Readers
of usage never read a `tools` member or anything inside one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

KEY = b'"tools":'
_BEFORE = frozenset(b", \t\n\r{")
_SPACE = b" \t\n\r"
_SPACES = (b" ", b"\t", b"\n", b"\r")
KEPT = 8  # tools arrays kept (a gateway's clients send few)
MIN_BYTES = 1024  # below this the parse saved is less than the search
MAX_BYTES = 1 << 20
MAX_DEPTH = 1000  # under orjson's 1024 levels

# (bytes, their brackets: at most the value's depth), the most recently learned first.
_known: tuple[tuple[bytes, int], ...] = ()

Tools = Callable[[Any], Any]  # the parse's tools value, where the reply keeps it


def loads(body: bytes, tools: Tools) -> Any:
    """`orjson.loads(body)` (raising as it raises), but the value of its first `"tools":`
    member may be None where it is an array kept before. A full parse's tools (`tools` of
    the parse) are kept when that member holds them."""
    at = _value_at(body)
    if at < 0:
        return orjson.loads(body)
    for known, brackets in _known:
        if body.startswith(known, at):
            if body.count(b"[", 0, at) + body.count(b"{", 0, at) + brackets > MAX_DEPTH:
                break
            return orjson.loads(b"".join((body[:at], b"null", body[at + len(known) :])))
    parsed = orjson.loads(body)
    _learn(body, at, parsed, tools)
    return parsed


def _value_at(body: bytes) -> int:
    """Where the value of the first `"tools":` begins, if the quote before it is unescaped."""
    found = body.find(KEY)
    if found <= 0 or body[found - 1] not in _BEFORE:
        return -1
    at = found + len(KEY)
    while body[at : at + 1] in _SPACES:
        at += 1
    return at


def _learn(body: bytes, at: int, parsed: Any, tools: Tools) -> None:
    global _known
    try:
        value = tools(parsed)
    except (AttributeError, TypeError):
        return
    if not isinstance(value, list) or body[at : at + 1] != b"[" or body[at + 1 : at + 2] in _SPACE:
        return  # an indented reply's value is not its dumps: not looked for
    try:
        known = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return  # nested past what dumps writes
    if not body.startswith(known, at):
        return
    if not MIN_BYTES <= len(known) <= MAX_BYTES:
        return
    _known = ((known, known.count(b"[") + known.count(b"{")), *_known[: KEPT - 1])


def response_tools(parsed: Any) -> Any:
    """A Responses object's tools."""
    return parsed.get("tools")


def event_tools(parsed: Any) -> Any:
    """The tools of a Responses stream event's `response`."""
    return parsed.get("response").get("tools")


def forget() -> None:
    """No tools kept (tests)."""
    global _known
    _known = ()
