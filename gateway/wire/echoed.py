"""A Responses object parsed without parsing its echo of the request's tools.

A Responses reply repeats the request's `tools` (18 of a Codex reply's 19 KB): parsing them
is most of what reading its usage, model, id and tier costs, and none of those is in them.
The bytes of a few tools arrays seen before are kept (from a full parse: the tools' dumps
where the reply is compact, else, as OpenAI indents its replies, the bytes up to the next
member's key where they parse alone); a reply whose first `"tools":` member holds one of
them is parsed with `null` in its place.

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

# (bytes, their brackets: at most the value's depth), the most recently used first.
_known: tuple[tuple[bytes, int], ...] = ()

Holder = Callable[[Any], Any]  # the object of a parse that holds its `tools`


def loads(body: bytes, holder: Holder) -> Any:
    """`orjson.loads(body)` (raising as it raises), but the value of its first `"tools":`
    member may be None where it is an array kept before. A full parse's tools (those of the
    object `holder` finds in it) are kept when that member holds them."""
    at = _value_at(body)
    if at < 0:
        return orjson.loads(body)
    for i, (known, brackets) in enumerate(_known):
        if body.startswith(known, at):
            if body.count(b"[", 0, at) + body.count(b"{", 0, at) + brackets > MAX_DEPTH:
                return orjson.loads(body)
            if i:
                _keep(known, brackets)  # the most recently used first
            return orjson.loads(b"".join((body[:at], b"null", body[at + len(known) :])))
    parsed = orjson.loads(body)
    _learn(body, at, parsed, holder)
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


def _learn(body: bytes, at: int, parsed: Any, holder: Holder) -> None:
    try:
        container = holder(parsed)
    except (AttributeError, TypeError):
        return
    if (
        not isinstance(container, dict)
        or not isinstance(value := container.get("tools"), list)
        or body[at : at + 1] != b"["
    ):
        return
    if body[at + 1 : at + 2] in _SPACE:
        known = _indented(body, at, container)
    else:
        known = _compact(body, at, value)
    if known is not None and MIN_BYTES <= len(known) <= MAX_BYTES:
        _keep(known, known.count(b"[") + known.count(b"{"))


def _keep(known: bytes, brackets: int) -> None:
    global _known
    others = [entry for entry in _known if entry[0] != known]
    _known = ((known, brackets), *others[: KEPT - 1])


def _compact(body: bytes, at: int, value: list[Any]) -> bytes | None:
    """The value's dumps, if it is its bytes at `at`."""
    try:
        known = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None  # nested past what dumps writes
    return known if body.startswith(known, at) else None


def _indented(body: bytes, at: int, container: dict[str, Any]) -> bytes | None:
    """The bytes from `at` to the next member's key (OpenAI indents its replies), if they
    parse alone: then they are one whole value, the one at `at`."""
    names = iter(container)
    for name in names:
        if name == "tools":
            break
    following = next(names, None)
    if following is None:
        return None
    end = body.find(orjson.dumps(following), at)
    known = body[at:end].rstrip(_SPACE) if end > at else b""
    if not known.endswith(b","):
        return None
    known = known[:-1].rstrip(_SPACE)
    try:
        orjson.loads(known)
    except orjson.JSONDecodeError:
        return None
    return known


def response_holder(parsed: Any) -> Any:
    """A Responses object: it holds its tools."""
    return parsed


def event_holder(parsed: Any) -> Any:
    """A Responses stream event: its `response` holds the tools."""
    return parsed.get("response")


def forget() -> None:
    """No tools kept (tests)."""
    global _known
    _known = ()
