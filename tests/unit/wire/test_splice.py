"""Splicing a rewritten body (wire/splice.py): the parts the last body spliced from a turn's
pieces held beyond them are written again from their bytes, at the depth they were dumped
at, and the result is `orjson.dumps` of the body."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.wire.reparse import reparse
from gateway.wire.splice import Pieces, splice
from gateway.wire.turn import Turn, learn

BASE: dict[str, Any] = {
    "model": "claude-x",
    "messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
    "system": [{"type": "text", "text": "sys"}],
    "tools": [{"name": "t"}],
}
RAW = orjson.dumps(BASE)


def _turn() -> Turn:
    turn = learn(RAW, orjson.loads(RAW))
    assert turn is not None
    return turn


def _rewritten(parsed: dict[str, Any]) -> dict[str, Any]:
    """As a rewrite stage makes it: a new system list, a message moved off, a new value."""
    marked = {**parsed["messages"][1], "cache_control": {"type": "ephemeral"}}
    return {
        **parsed,
        "messages": [parsed["messages"][0], marked],
        "system": [{**parsed["system"][0], "cache_control": {"type": "ephemeral"}}],
        "extra": {"a": 1},
    }


def test_the_parts_a_splice_dumped_are_written_from_their_bytes_the_next_time() -> None:
    turn = _turn()
    body = _rewritten(turn.parsed)
    assert splice(body, turn.pieces) == orjson.dumps(body)
    sent = turn.pieces.sent
    assert {id(body["system"]), id(body["messages"][1]), id(body["extra"])} <= sent.keys()
    assert id(body["model"]) not in sent  # the parse's own pieces are not kept again
    # The kept bytes are what the next splice writes (a sentinel shows it), at their depth.
    sent[id(body["system"])] = (body["system"], (b'"S"',), 1)
    sent[id(body["messages"][1])] = (body["messages"][1], (b'"M"',), 2)
    again = splice({**body, "messages": list(body["messages"])}, turn.pieces)  # a new list
    assert b'"system":"S"' in again
    assert b'"messages":[{"role":"user","content":"one"},"M"]' in again


def test_a_kept_part_is_used_at_its_own_depth_only() -> None:
    turn = _turn()
    item = {"role": "user", "content": "new"}
    splice({**turn.parsed, "messages": [item]}, turn.pieces)
    turn.pieces.sent[id(item)] = (item, (b'"I"',), 2)
    top = {**turn.parsed, "messages": [], "item": item}
    assert splice(top, turn.pieces) == orjson.dumps(top)


def test_the_kept_parts_are_the_last_splice_s_only() -> None:
    turn = _turn()
    body = _rewritten(turn.parsed)
    splice(body, turn.pieces)
    splice(turn.parsed, turn.pieces)
    assert turn.pieces.sent == {
        id(turn.parsed["messages"]): turn.pieces.sent[id(turn.parsed["messages"])]
    }


def test_the_next_turn_carries_the_kept_parts() -> None:
    turn = _turn()
    body = _rewritten(turn.parsed)
    splice(body, turn.pieces)
    grown = {**BASE, "messages": [*BASE["messages"], {"role": "user", "content": "three"}]}
    found = reparse(orjson.dumps(grown), [turn])
    assert found is not None
    assert found[2] is not None
    pieces = found[2].pieces
    assert pieces is not turn.pieces
    assert id(body["system"]) in pieces.sent
    assert isinstance(pieces.copy(), Pieces)
    assert pieces.copy().sent is pieces.sent


def test_splice_raises_where_dumps_raises() -> None:
    for body in ({1: "a"}, {"a": {1: "b"}}, {"messages": [{1: "b"}]}):
        with pytest.raises(orjson.JSONEncodeError):
            orjson.dumps(body)
        with pytest.raises(orjson.JSONEncodeError):
            splice(body, _turn().pieces)
    assert splice({}, Pieces()) == b"{}"
