"""The whitespace rule's lists of messages or items (whitespace.py's `ItemsRun`, kept by the
first item's identity): the items an accepted call sent as these very objects take that
call's canonical forms, the rest are edited; whatever the order of lists sharing items, the
output is the one without the memo."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.memo import Derived
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.whitespace import whitespace, whitespace_openai

TENANT = b"tenant-a"
LONG = "a line  \n" * 200  # the rule changes it (trailing spaces), over MIN_CHARS
CLEAN = "a line\n" * 199 + "a line"  # the rule leaves it alone


def _message(i: int, dirty: bool) -> dict[str, Any]:
    text = f"{i}: " + (LONG if dirty else CLEAN)
    return {"role": "user" if i % 2 else "assistant", "content": [{"type": "text", "text": text}]}


def _outcome(request: LLMRequest) -> tuple[Any, ...]:
    observed = tuple(o for o in request.observations if not isinstance(o, Derived))
    return json.dumps(request.body), request.rewrites, request.findings, observed


def _rule(provider: str, body: dict[str, Any], learned: LearnedMemory | None) -> LLMRequest:
    memo = None if learned is None else learned.memo
    rule = whitespace if provider == "anthropic" else whitespace_openai
    out = rule(LLMRequest(provider, body, tenant=TENANT), True, memo)
    if learned is not None:
        learned.learn(out.observations)
    return out


def _plain(provider: str, body: dict[str, Any]) -> LLMRequest:
    return _rule(provider, copy.deepcopy(body), None)


def _body(messages: list[Any]) -> dict[str, Any]:
    return {"model": "m", "messages": messages}


@pytest.mark.parametrize("seed", range(20))
def test_lists_sharing_items_in_any_order_rewrite_as_without_the_memo(seed: int) -> None:
    """Turns that grow, roll back, fork, change an item in the middle or at the start, and
    resend the same list: each as without the memo, a list the rule leaves alone is the
    input's own, and the items the turn before sent as these very objects, up to the first
    that is not, come back as the objects they came back as then."""
    rng = random.Random(seed)
    pool = [_message(i, dirty=rng.random() < 0.3) for i in range(12)]
    learned = LearnedMemory.within(LearnedState.default())
    last: list[Any] = [pool[0]]
    last_sent = _rule("anthropic", _body(last), learned).body["messages"]
    for _ in range(30):
        move = rng.choice(["grow", "grow", "back", "middle", "first", "again", "copy"])
        if move == "grow":
            items = last + [rng.choice(pool) for _ in range(rng.randint(1, 3))]
        elif move == "back":
            items = last[: rng.randint(1, len(last))]
        elif move == "middle":
            items = list(last)
            at = rng.randrange(len(items))
            items[at] = _message(100 + at, dirty=rng.random() < 0.5)
        elif move == "first":
            items = [_message(200, dirty=rng.random() < 0.5), *last[1:]]
        elif move == "again":
            items = last
        else:
            items = list(last)  # the same items in a new list
        out = _rule("anthropic", _body(items), learned)
        assert _outcome(out) == _outcome(_plain("anthropic", _body(items)))
        sent = out.body["messages"]
        if not out.rewrites:
            assert sent is items
        for item, before, form, form_before in zip(items, last, sent, last_sent, strict=False):
            if item is not before:
                break
            assert form is form_before
        last, last_sent = items, sent


def test_an_item_changed_in_the_middle_is_edited_and_the_rest_taken_from_the_run() -> None:
    learned = LearnedMemory.within(LearnedState.default())
    items = [_message(i, dirty=True) for i in range(4)]
    first = _rule("anthropic", _body(items), learned)
    changed = [items[0], _message(1, dirty=False), *items[2:]]
    later = _rule("anthropic", _body(changed), learned)
    assert _outcome(later) == _outcome(_plain("anthropic", _body(changed)))
    assert later.body["messages"][0] is first.body["messages"][0]
    assert later.body["messages"][1] is changed[1]  # clean: its own object


def test_the_same_items_in_a_new_list_left_alone_are_that_list() -> None:
    learned = LearnedMemory.within(LearnedState.default())
    items = [_message(i, dirty=False) for i in range(10)]
    _rule("anthropic", _body(items), learned)
    again = list(items)
    out = _rule("anthropic", _body(again), learned)
    assert out.body["messages"] is again
    assert not out.rewrites
    assert not out.findings


def test_the_same_items_on_another_wire_or_tenant_are_edited_as_theirs() -> None:
    """Anthropic leaves an `input_text` part alone; OpenAI's rule edits it: a run kept for
    one wire's field is not the other's, nor another tenant's."""
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": LONG}]},
        {"role": "assistant", "content": "fine"},
        *[_message(i, dirty=True) for i in range(9)],
    ]
    learned = LearnedMemory.within(LearnedState.default())
    anthropic = _rule("anthropic", _body(items), learned)
    assert anthropic.body["messages"][0] is items[0]
    openai = _rule("openai", _body(items), learned)
    assert _outcome(openai) == _outcome(_plain("openai", _body(items)))
    assert openai.body["messages"][0] is not items[0]
    elsewhere = LLMRequest("anthropic", _body(items), tenant=b"tenant-b")
    other = whitespace(elsewhere, True, learned.memo)
    assert _outcome(other) == _outcome(_plain("anthropic", _body(items)))


def test_a_run_declares_at_least_the_texts_it_holds() -> None:
    learned = LearnedMemory.within(LearnedState.default())
    items = [_message(i, dirty=i % 2 == 0) for i in range(10)]
    out = _rule("anthropic", _body(items), learned)
    kept = [entry for o in out.observations if isinstance(o, Derived) for entry in o.entries]
    (run,) = [(value, size) for key, value, size in kept if str(key[0]).endswith(".run")]
    texts = sum(len(m["content"][0]["text"]) for m in items)
    edited = sum(len(m["content"][0]["text"]) for m in out.body["messages"] if m not in items)
    assert run[1] >= texts + edited


def test_a_growing_conversation_keeps_one_run_each_turn_under_one_key() -> None:
    """A turn keeps one entry for its list, under the first item's identity: the previous
    turn's run is replaced, not joined by another the size of the conversation."""
    learned = LearnedMemory.within(LearnedState.default())
    items: list[Any] = []
    keys = set()
    for i in range(8):
        items = [*items, _message(i, dirty=i % 3 == 0)]
        out = _rule("anthropic", _body(items), learned)
        kept = [key for o in out.observations if isinstance(o, Derived) for key, _, _ in o.entries]
        runs = [key for key in kept if str(key[0]).endswith(".run")]
        assert len(runs) == 1
        keys.add(runs[0])
        texts = [key for key in kept if key not in runs]
        assert len(texts) <= 1  # the new message's text, by value; none of the others
    assert len(keys) == 1


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_the_same_items_under_another_system_prompt_or_tools_rewrite_as_without_the_memo(
    provider: str,
) -> None:
    learned = LearnedMemory.within(LearnedState.default())
    items = [_message(i, dirty=i == 1) for i in range(10)]
    system = "instructions" if provider == "openai" else "system"
    for prompt in (LONG, CLEAN, LONG + "x", CLEAN):
        tools = [{"name": "t", "description": prompt}]
        body = {**_body(items), system: prompt, "tools": tools}
        out = _rule(provider, body, learned)
        assert _outcome(out) == _outcome(_plain(provider, body))
