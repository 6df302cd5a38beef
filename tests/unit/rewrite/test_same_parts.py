"""The canonical-text and tool stages find what they derived by the identity of the part
(rewrite/memo.py's `get_same`): a body that shares an earlier accepted call's parsed objects
(prefix reuse) gets the very objects that call got, and the output is the same as without
the memo — for the same object twice, an equal copy, and a copy with one part changed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite import text
from gateway.rewrite.memo import Derived
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.snapshot import ToolsSeen
from gateway.rewrite.tool_json import FORMS, SAME, Sent, identity, stable_tool_json
from gateway.rewrite.whitespace import whitespace, whitespace_openai
from tests.support.fixtures import FIXTURES, load

TENANT = b"tenant-a"
RECORDINGS = sorted(path.stem for path in FIXTURES.glob("*.jsonl"))
# A stage over a learned memory (its memo None: every value derived anew).
Stage = Callable[[LLMRequest, LearnedMemory], LLMRequest]


def _whitespace(request: LLMRequest, learned: LearnedMemory) -> LLMRequest:
    rule = whitespace if request.provider == "anthropic" else whitespace_openai
    return rule(request, True, learned.memo)


def _tool_json(request: LLMRequest, learned: LearnedMemory) -> LLMRequest:
    return stable_tool_json(request, learned.tools, True, learned.memo)


def _memories() -> tuple[LearnedMemory, LearnedMemory]:
    """A memory with the memo, and one without it that learns the same."""
    return tuple(LearnedMemory.within(LearnedState.default(), memo=m) for m in (True, False))  # type: ignore[return-value]


def _outcome(request: LLMRequest) -> tuple[Any, ...]:
    observed = tuple(o for o in request.observations if not isinstance(o, Derived))
    return json.dumps(request.body), request.rewrites, request.findings, observed


def _bodies(name: str) -> Iterator[tuple[str, bytes]]:
    for call in load(FIXTURES / f"{name}.jsonl").calls:
        yield ("anthropic" if call.wire == "anthropic" else "openai"), call.raw_body()


def _edited(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of `body` with the first message or item's text changed (trailing spaces and
    CRLF: text the rule edits), everything else shared with `body`."""
    out = dict(body)
    key = "messages" if "messages" in body else "input"
    items = list(body.get(key) or [])
    for i, item in enumerate(items):
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            items[i] = {**item, "content": content + "  \r\nmore  "}
            break
        texts = [j for j, b in enumerate(content or []) if isinstance(b.get("text"), str)]
        if texts:
            blocks = list(content)
            blocks[texts[0]] = {**blocks[texts[0]], "text": blocks[texts[0]]["text"] + "  \r\n."}
            items[i] = {**item, "content": blocks}
            break
    assert items != body.get(key), "nothing to edit: the case compares nothing"
    out[key] = items
    return out


@pytest.mark.parametrize("stage", [_whitespace, _tool_json], ids=["whitespace", "tool_json"])
@pytest.mark.parametrize("name", RECORDINGS)
def test_a_stage_gives_the_same_objects_for_the_same_parts_and_the_output_without_memo(
    name: str, stage: Stage
) -> None:
    learned, plain = _memories()
    for provider, raw in _bodies(name):
        body = orjson.loads(raw)
        first = stage(LLMRequest(provider, body, tenant=TENANT), learned)
        learned.learn(first.observations)
        plain.learn(
            stage(LLMRequest(provider, orjson.loads(raw), tenant=TENANT), plain).observations
        )
        again = stage(LLMRequest(provider, body, tenant=TENANT), learned)
        # The same object: the same output objects, part by part, and nothing derived anew
        # once what the first call taught is learned (tool_json's answer is kept with the
        # learned forms' version, which the first call's own forms moved).
        for key, value in first.body.items():
            assert again.body[key] is value, key
        learned.learn(again.observations)
        third = stage(LLMRequest(provider, body, tenant=TENANT), learned)
        assert _outcome(third) == _outcome(again)
        assert not any(isinstance(o, Derived) for o in third.observations)
        # Unchanged parts are the input's objects.
        for key, value in body.items():
            if key in first.body and json.dumps(first.body[key]) == json.dumps(value):
                assert first.body[key] is value, key
        # An equal copy, a copy with one text changed, and the same object: as without memo.
        for sent in (copy.deepcopy(body), _edited(body), body):
            reference = stage(LLMRequest(provider, copy.deepcopy(sent), tenant=TENANT), plain)
            out = stage(LLMRequest(provider, sent, tenant=TENANT), learned)
            assert _outcome(out) == _outcome(reference)


def test_a_canonicalized_message_comes_back_as_the_same_new_object() -> None:
    messages = [
        {"role": "user", "content": "fine"},
        {"role": "assistant", "content": [{"type": "text", "text": "trailing  \r\n" * 200}]},
    ]
    body = {
        "model": "m",
        "system": [{"type": "text", "text": "sys  \n" * 300}],
        "messages": messages,
    }
    learned = LearnedMemory.within(LearnedState.default())
    first = whitespace(LLMRequest("anthropic", body, tenant=TENANT), True, learned.memo)
    learned.learn(first.observations)
    changed = [*body["messages"], {"role": "user", "content": "next"}]  # a later turn
    later = whitespace(
        LLMRequest("anthropic", {**body, "messages": changed}, tenant=TENANT), True, learned.memo
    )
    assert first.body["messages"][0] is messages[0]  # unchanged: the input's own
    assert first.body["messages"][1] is not messages[1]
    assert later.body["messages"][1] is first.body["messages"][1]  # the same canonical object
    assert later.body["system"] is first.body["system"]
    assert later.body["messages"][2] is changed[2]


SEARCH = {"name": "search", "description": "Search the web. " * 80, "input_schema": {"a": 1}}
FETCH = {"name": "fetch", "description": "Fetch a page.", "input_schema": {"b": 2}}


def test_tools_sent_in_their_first_form_are_the_same_list_on_the_next_call() -> None:
    learned, plain = _memories()
    first_form = [SEARCH, FETCH]
    seen = ToolsSeen(TENANT, tuple((identity(t), orjson.dumps(t)) for t in first_form), None)
    learned.learn([seen])
    plain.learn([seen])
    reordered = [dict(reversed(list(tool.items()))) for tool in first_form]  # keys reordered
    body = {"model": "m", "tools": reordered, "messages": []}
    outs = []
    for _ in range(3):
        out = _tool_json(LLMRequest("anthropic", body, tenant=TENANT), learned)
        learned.learn(out.observations)
        outs.append(out.body["tools"])
    assert outs[0] == first_form
    assert outs[0] is not reordered
    assert outs[1] is outs[2]  # the forms list kept with the tools list's identity
    kinds = {key[0] for key in _kept_keys(learned, body)}
    assert {SAME, FORMS} <= kinds
    reference = _tool_json(LLMRequest("anthropic", copy.deepcopy(body), tenant=TENANT), plain)
    assert reference.body["tools"] == outs[2]


def _kept_keys(learned: LearnedMemory, body: dict[str, Any]) -> list[Any]:
    request = _tool_json(LLMRequest("anthropic", copy.deepcopy(body), tenant=TENANT), learned)
    return [key for o in request.observations if isinstance(o, Derived) for key, _, _ in o.entries]


def _strings(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict):
        return sum(len(k) + _strings(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(map(_strings, value))
    return 0


@pytest.mark.parametrize("name", RECORDINGS)
def test_a_parts_size_counts_at_least_its_strings(name: str) -> None:
    """What a kept part declares (text.held) bounds what it holds: at least its strings'
    bytes (and the memo's entries declare at least that of the part they hold)."""
    for _, raw in _bodies(name):
        body = orjson.loads(raw)
        parts = [body.get("system"), body.get("tools"), *(body.get("messages") or [])]
        parts += body.get("input") if isinstance(body.get("input"), list) else []
        for part in parts:
            if part is not None:
                assert text.held(part) >= _strings(part)


def test_the_tools_kept_are_the_tools_sent_copied() -> None:
    tools = [SEARCH, FETCH, {"name": "é", "input_schema": {}}]
    sent = Sent.of(
        tools, [orjson.dumps(t) for t in tools], [identity(t) for t in tools], orjson.dumps(tools)
    )
    kept = sent.kept()
    assert kept == sent
    assert kept.whole is not sent.whole


@pytest.mark.parametrize("content", ["short  ", "fine"])
def test_a_short_conversation_rewritten_is_the_same_list_on_the_next_call(content: str) -> None:
    """Short texts are walked before any lookup; one the rule changed is still looked up."""
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    learned = LearnedMemory.within(LearnedState.default())
    outs = []
    for _ in range(3):
        out = whitespace(LLMRequest("anthropic", body, tenant=TENANT), True, learned.memo)
        learned.learn(out.observations)
        outs.append(out.body["messages"])
    assert outs[1] is outs[2]
    assert (outs[0] is body["messages"]) == (content == "fine")
    assert outs[0] == [{"role": "user", "content": content.rstrip()}]
