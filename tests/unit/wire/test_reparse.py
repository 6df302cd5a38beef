"""A body parsed by reusing the tenant's earlier one (wire/reparse.py) is `orjson.loads` of
it: on every turn of every recorded session, on an identical repeat, and on hostile bodies
(which take the full parse); serialized by splicing (wire/splice.py) it is `orjson.dumps`."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import orjson
import pytest

from gateway.wire.reparse import common_prefix, reparse
from gateway.wire.splice import splice
from gateway.wire.turn import Sent, Turn, learn
from tests.support.fixtures import all_fixtures


def _sessions() -> list[tuple[str, list[bytes]]]:
    return [(f.name, [call.raw_body() for call in f.calls]) for f in all_fixtures()]


def _turn(raw: bytes) -> Turn:
    turn = learn(raw, orjson.loads(raw))
    assert turn is not None
    return turn


@pytest.mark.parametrize(("name", "raws"), _sessions(), ids=[n for n, _ in _sessions()])
def test_every_recorded_turn_parses_as_the_full_parse_and_splices_to_its_bytes(
    name: str, raws: list[bytes]
) -> None:
    held: list[Turn] = []
    reused = 0
    for raw in raws:
        full = orjson.loads(raw)
        found = reparse(raw, held)
        if found is None:
            turn = learn(raw, full)
        else:
            parsed, _base, turn = found
            assert parsed == full
            assert list(parsed) == list(full)  # the key order too
            reused += 1
        assert turn is not None  # the recorded clients send compact canonical JSON
        fresh = _turn(raw)  # what the reused turn knows is what learning it anew finds
        assert (turn.start, turn.ends, turn.tail, turn.members) == (
            fresh.start, fresh.ends, fresh.tail, fresh.members,
        )  # fmt: skip
        assert splice(turn.parsed, turn.pieces) == raw
        held = [turn, *held[:3]]
    # All but a conversation's first turn (Claude Code's sub-agents begin their own).
    assert reused >= len(raws) * 3 // 4


def test_an_identical_body_shares_every_object_of_the_earlier_parse() -> None:
    raws = _sessions()[0][1]
    turn = _turn(raws[-1])
    found = reparse(raws[-1], [turn])
    assert found is not None
    parsed, base, again = found
    assert base is turn
    assert again is turn  # the held turn itself: kept in its place, found by identity
    assert parsed is not turn.parsed
    assert all(parsed[key] is turn.parsed[key] for key in parsed)


def test_a_body_of_the_same_length_that_differs_anywhere_is_not_the_base() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "abc"}, {"role": "user", "content": "def"}],
        "system": "s" * 3000,
        "metadata": {"id": "xyz"},
        "max_tokens": 100,
    }
    raw = orjson.dumps(body)
    turn = _turn(raw)
    rng = random.Random(7)
    places = [raw.index(b"abc"), raw.index(b"def"), raw.index(b"sss") + 1500, raw.index(b"xyz")]
    for at in places + [rng.randrange(len(raw)) for _ in range(200)]:
        if raw[at] not in b"abcdefsxyz0123456789":
            continue  # a letter or digit in a string or a number: the body stays valid JSON
        other = raw[:at] + (b"q" if raw[at] != ord("q") else b"r") + raw[at + 1 :]
        if raw[at] in b"0123456789":
            other = raw[:at] + (b"7" if raw[at] != ord("7") else b"8") + raw[at + 1 :]
        found = reparse(other, [turn])
        if found is None:
            continue
        parsed, base, again = found
        assert parsed == orjson.loads(other)
        assert base is turn
        assert again is not turn
        assert again is None or again.raw == other


def test_a_growing_turn_shares_the_earlier_items_and_everything_after_them() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "a"}], "system": [{"x": 1}]}
    turn = _turn(orjson.dumps(body))
    grown = {**body, "messages": [*body["messages"], {"role": "assistant", "content": "b"}]}
    found = reparse(orjson.dumps(grown), [turn])
    assert found is not None
    parsed, _, new = found
    assert parsed == grown
    assert new is not None
    assert parsed["messages"][0] is turn.parsed["messages"][0]
    assert parsed["system"] is turn.parsed["system"]


BASE: dict[str, Any] = {
    "model": "claude-x",
    "messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
    "system": [{"type": "text", "text": "sys"}],
    "tools": [{"name": "t"}],
    "meta": {"turn": 1},
}
RAW = orjson.dumps(BASE)
HEAD = RAW[: RAW.index(b"]")]  # the messages' items, without the `]`
TAIL = RAW[RAW.index(b"]") :]

HOSTILE = {
    "a ] inside a string": HEAD + b',{"role":"user","content":"]"}' + TAIL,
    "the tail's bytes inside a string": HEAD
    + b',{"role":"user","content":"],\\"system\\":[1]"}'
    + TAIL,
    "a duplicate key in a new item": HEAD + b',{"role":"user","role":"x"}' + TAIL,
    "whitespace in the middle": HEAD + b' , { "role" : "user" } ' + TAIL,
    "a trailing comma": HEAD + b"," + TAIL,
    "a trailing comma and a space": HEAD + b", " + TAIL,
    "a trailing comma and a newline": HEAD + b",\n" + TAIL,
    "an invalid middle": HEAD + b",{nope}" + TAIL,
    "a middle that closes the array": HEAD + b',1],"system":[2' + TAIL,
    "a middle that closes the object": HEAD + b",1]}" + TAIL,
    "truncated": RAW[:-5],
    "a new last member repeating a key": RAW[:-1] + b',"model":"other"}',
    "a changed last member repeating a key": RAW[: RAW.index(b',"meta"')] + b',"model":"y"}',
    "a different key order": orjson.dumps({"messages": BASE["messages"], **BASE}),
    "whitespace at the end": RAW + b" ",
    "not an object": b"[" + RAW + b"]",
    "an empty array": RAW[: RAW.index(b"[") + 1] + TAIL,
    "fewer items": HEAD[: HEAD.index(b',{"role":"assistant"')] + TAIL,
    "invalid UTF-8 in the middle": HEAD + b',"\xff"' + TAIL,
    "a lone surrogate in the middle": HEAD + b',"\\ud800"' + TAIL,
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=list(HOSTILE))
def test_a_hostile_body_parses_as_the_full_parse_or_not_at_all(raw: bytes) -> None:
    try:
        full: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        full = None
    found = reparse(raw, [_turn(RAW)])
    if full is None or not isinstance(full, dict):
        assert found is None
        return
    if found is not None:
        parsed, _, turn = found
        assert parsed == full
        assert list(parsed) == list(full)
        if turn is not None:  # kept only if its bytes are its parse's dumps
            assert splice(turn.parsed, turn.pieces) == raw == orjson.dumps(full)


def test_whitespace_in_an_empty_array_parses_but_is_not_kept() -> None:
    body = {**BASE, "messages": []}
    raw = orjson.dumps(body)
    spaced = raw.replace(b"[]", b"[ ]", 1)
    found = reparse(spaced, [_turn(raw)])
    assert found is not None
    parsed, _, turn = found
    assert parsed == orjson.loads(spaced) == body
    assert turn is None  # its bytes are not its parse's dumps


def test_a_body_that_is_not_compact_canonical_is_not_kept() -> None:
    assert learn(b'{"model": "m", "messages": []}', {"model": "m", "messages": []}) is None
    assert learn(b'{"messages":[],"messages":[1]}', {"messages": [1]}) is None
    assert learn(b'{"model":"m"}', {"model": "m"}) is None  # no growing array


def test_splice_is_dumps_whatever_the_body_shares() -> None:
    turn = _turn(RAW)
    parsed = turn.parsed
    changed = {
        **parsed,
        "model": "other",
        "messages": [*parsed["messages"][:1], {"role": "user", "content": "new"}],
        "system": [{**parsed["system"][0], "cache_control": {"type": "ephemeral"}}],
        "extra": [],
    }
    for body in (parsed, changed, {}, {"a": {}}, orjson.loads(RAW)):
        assert splice(body, turn.pieces) == orjson.dumps(body)
        assert splice(body, {}) == orjson.dumps(body)


def test_splice_refuses_what_dumps_refuses_nesting_too_deep() -> None:
    deep: Any = []
    for _ in range(253):
        deep = [deep]
    body = {"messages": [deep]}  # 256 levels: orjson.loads reads it, dumps refuses it
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(body)
    with pytest.raises(orjson.JSONEncodeError):
        splice(body, {})
    raw = b'{"messages":[' + b"[" * 254 + b"]" * 254 + b"]}"
    assert learn(raw, orjson.loads(raw)) is None  # so never spliced from pieces


def test_common_prefix() -> None:
    assert common_prefix(b"abcdef", b"abcxef", 6) == 3
    assert common_prefix(b"abc", b"abc", 2) == 2
    assert common_prefix(b"abc", b"xbc", 3) == 0
    assert common_prefix(b"ab", b"abcd", 10) == 2


@pytest.mark.parametrize(("name", "raws"), _sessions(), ids=[n for n, _ in _sessions()])
def test_a_body_kept_as_it_came_is_learned_when_the_next_one_continues_it(
    name: str, raws: list[bytes]
) -> None:
    reused = 0
    for before, raw in pairwise(raws):
        sent = Sent(before, orjson.loads(before))
        found = reparse(raw, [sent])
        if found is not None:
            assert found[0] == orjson.loads(raw)
            assert found[1] is sent
            reused += 1
    assert reused >= (len(raws) - 1) // 2


def test_a_body_kept_as_it_came_that_the_next_does_not_resemble_is_not_learned() -> None:
    other = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "z" * 400}]})
    assert not Sent(other, orjson.loads(other)).resembles(RAW)
    assert reparse(RAW, [Sent(other, orjson.loads(other))]) is None


def _new_session(raw: bytes) -> bytes:
    """A Claude Code first turn as the client's next session sends it: its own session id
    (in `metadata`, after `system` and `tools`: as long as the last one's) and its own
    prompt."""
    body = orjson.loads(raw)
    user = body["metadata"]["user_id"]
    body["metadata"] = {"user_id": user[:-14] + "0123456789ab" + user[-2:]}
    last = body["messages"][-1]
    content = last["content"]
    last["content"] = [*content, {"type": "text", "text": "another prompt"}]
    return orjson.dumps(body)


@pytest.mark.parametrize("name", ["claude-long", "claude-projects"])
def test_a_new_sessions_first_turn_shares_the_last_sessions_system_and_tools(name: str) -> None:
    raws = dict(_sessions())[name]
    before = _turn(raws[0])  # the previous session's (its first turn, with the same system)
    raw = _new_session(raws[0])
    found = reparse(raw, [before])
    assert found is not None
    parsed, base, turn = found
    full = orjson.loads(raw)
    assert parsed == full
    assert list(parsed) == list(full)
    assert base is before
    assert parsed["system"] is before.parsed["system"]
    assert parsed["tools"] is before.parsed["tools"]
    assert turn is not None
    fresh = _turn(raw)
    assert (turn.start, turn.ends, turn.tail, turn.members) == (
        fresh.start, fresh.ends, fresh.tail, fresh.members,
    )  # fmt: skip
    assert splice(turn.parsed, turn.pieces) == raw
    longer = raw.replace(b'0123456789ab\\"}', b'0123456789abc\\"}')
    assert longer != raw
    found = reparse(longer, [before])  # not found where the tail moved: parsed whole
    assert found is None or found[0] == orjson.loads(longer)


# More members after the array than are tried by name from the end: one further in that
# differs, not in length, is found where the tail ends as the kept one's does.
LONG: dict[str, Any] = {
    **BASE,
    "meta": {"session": 1},
    "a": 1,
    "b": [2],
    "c": {"d": 3},
}
LONG_RAW = orjson.dumps(LONG)
LONG_HEAD = LONG_RAW[: LONG_RAW.index(b"]")]
LONG_TAIL = LONG_RAW[LONG_RAW.index(b"]") :]
NEW_META = LONG_TAIL.replace(b'"session":1', b'"session":2')

LONG_HOSTILE = {
    "another session": LONG_HEAD + NEW_META,
    "another session and item": LONG_HEAD + b',{"role":"user","content":"x"}' + NEW_META,
    "a longer session": LONG_HEAD + LONG_TAIL.replace(b'"session":1', b'"session":12'),
    "the tail's head nested in an item": LONG_HEAD
    + b',{"role":"user","content":[[1],"system":[{"type":"text","text":"sys"}]]}'
    + NEW_META,
    "the tail's head nested, valid": LONG_HEAD
    + b',{"role":"user","content":{"x":[1],"system":[{"type":"text","text":"sys"}]}}'
    + NEW_META,
    "the tail's head in a string": LONG_HEAD
    + b',{"role":"user","content":"],\\"system\\":[{"type"}'
    + NEW_META,
    "a middle that closes the array": LONG_HEAD + b',1],"system":[2' + NEW_META,
    "a repeated key after": LONG_HEAD + NEW_META[:-1] + b',"model":"y"}',
    "the changed member repeating a key": LONG_HEAD
    + NEW_META.replace(b'"meta":{"session":2}', b'"model":"z"'),
    "a member gone": LONG_HEAD + NEW_META.replace(b',"meta":{"session":2}', b""),
    "trailing bytes": LONG_HEAD + NEW_META + b"}",
    "truncated": LONG_HEAD + NEW_META[:-3],
    "every member the same, one more": LONG_RAW[:-1] + b',"e":5}',
}


@pytest.mark.parametrize("raw", LONG_HOSTILE.values(), ids=list(LONG_HOSTILE))
def test_a_member_further_in_that_differs_parses_as_the_full_parse_or_not_at_all(
    raw: bytes,
) -> None:
    try:
        full: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        full = None
    kept = _turn(LONG_RAW)
    found = reparse(raw, [kept])
    if full is None or not isinstance(full, dict):
        assert found is None
        return
    if raw in (LONG_HOSTILE["another session"], LONG_HOSTILE["another session and item"]):
        assert found is not None
        assert found[0]["system"] is kept.parsed["system"]
    if found is not None:
        parsed, _, turn = found
        assert parsed == full
        assert list(parsed) == list(full)
        if turn is not None:
            assert splice(turn.parsed, turn.pieces) == raw == orjson.dumps(full)
            fresh = _turn(raw)
            assert (turn.start, turn.ends, turn.tail, turn.members) == (
                fresh.start, fresh.ends, fresh.tail, fresh.members,
            )  # fmt: skip


def test_common_prefix_from_an_offset() -> None:
    assert common_prefix(b"xxabcdef", b"abcxef", 6, 2) == 3
    assert common_prefix(b"xxabc", b"abcd", 10, 2) == 3
    assert common_prefix(b"xx", b"abc", 10, 5) == 0


def test_the_held_body_sharing_the_most_items_is_the_base_in_any_order() -> None:
    def body(count: int, last: str = "") -> bytes:
        items = [{"role": "user", "content": f"item {i} " + "x" * 500} for i in range(count)]
        return orjson.dumps({"model": "m", "messages": [*items, {"n": last}], "system": "s"})

    raw = body(6, "new")
    longer, shorter, other = _turn(body(9)), _turn(body(4)), _turn(body(6, "old"))
    for held in ([longer, shorter, other], [shorter, other, longer], [other, longer, shorter]):
        found = reparse(raw, held)
        assert found is not None
        parsed, base, _turn_found = found
        assert parsed == orjson.loads(raw)
        assert base is longer or base is other  # six items each: the first of them held wins
        assert base is next(t for t in held if t is longer or t is other)
