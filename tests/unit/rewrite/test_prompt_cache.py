"""OpenAI's cache plan (rewrite/prompt_cache.py) as tables: a body, what the volatile rule
left (stable_system_blocks, dates_at) and the model -> the body sent."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.rewrite import prompt_cache
from gateway.rewrite.request import LLMRequest
from tests.support.rewrite import CATALOG

EXACT = "gpt-5.6-terra"  # writes only at breakpoints
MARK = {"mode": "explicit"}


def msg(role: str, content: Any) -> dict[str, Any]:
    return {"role": role, "content": content}


def part(text: str, marked: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    return {**block, "prompt_cache_breakpoint": MARK} if marked else block


SYSTEM, DEV, USER, ASSISTANT = (
    msg("system", "Rules."),
    msg("developer", "Tools."),
    msg("user", "Q"),
    msg("assistant", "A"),
)
ROWS: list[tuple[str, list[Any], dict[str, Any], list[Any] | None]] = [
    ("the end of the leading system part",
     [SYSTEM, DEV, USER], {}, [SYSTEM, msg("developer", [part("Tools.", True)]), USER]),
    ("learned lines moved after the first system message: the stable end is it",
     [SYSTEM, DEV, USER], {"stable_system_blocks": 1},
     [msg("system", [part("Rules.", True)]), DEV, USER]),
    ("dates moved to a part of their own: the part before them",
     [SYSTEM, msg("user", [part("Q"), part("Now")])], {"dates_at": (1, 1)},
     [msg("system", [part("Rules.", True)]), msg("user", [part("Q", True), part("Now")])]),
    ("dates moved to a message of their own: the message before them",
     [SYSTEM, USER, ASSISTANT, msg("user", "Now")], {"dates_at": (3, 0)},
     [msg("system", [part("Rules.", True)]), USER, msg("assistant", [part("A", True)]),
      msg("user", "Now")]),
    ("never the newest message: the last block is a breakpoint already",
     [SYSTEM], {}, None),
    ("the client's own marks count against the three",
     [SYSTEM, msg("user", [part("a", True)]), msg("assistant", [part("b", True)]),
      msg("user", [part("c", True)]), USER], {}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("messages", "left", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_breakpoints(messages: list[Any], left: dict[str, Any], expected: list[Any] | None) -> None:
    request = LLMRequest("openai", {"model": EXACT, "messages": messages}, **left)
    out = prompt_cache.breakpoints(request, CATALOG.resolve(EXACT), respect=False)
    if expected is None:
        assert out is request
    else:
        assert out.body["messages"] == expected
        assert [r.rule for r in out.rewrites] == ["prompt_cache_breakpoint"]


def key(body: dict[str, Any], stable: int | None = None, tenant: bytes = b"t") -> str:
    request = LLMRequest("openai", body, tenant=tenant, stable_system_blocks=stable)
    return str(prompt_cache.cache_key(request).body["prompt_cache_key"])


def test_the_key_is_the_prompt_family_as_far_as_it_is_stable() -> None:
    """Two users' prompts differing only in a line moved past the stable part meet on one
    cache; another tenant, or other tools, on another."""
    ann = {"model": EXACT, "messages": [SYSTEM, msg("system", "User: Ann"), USER]}
    bo = {"model": EXACT, "messages": [SYSTEM, msg("system", "User: Bo"), USER]}
    assert key(ann, stable=1) == key(bo, stable=1)
    assert key(ann) != key(bo)
    assert key(ann, stable=1) != key(ann, stable=1, tenant=b"other")
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert key(ann, stable=1) != key({**ann, "tools": tools}, stable=1)


def test_the_client_marks_are_counted_as_far_as_the_plan_needs() -> None:
    """`_marks` counts the messages `_marked` finds, up to its bound; and the client's
    marks limit the plan alike whether they come before or after the ones it chose."""
    marked, plain = msg("user", [part("a"), part("b", True)]), msg("user", [part("c")])
    odd: list[Any] = ["text", msg("user", "s"), {"type": "function_call"}, msg("user", [3])]
    for count in range(5):
        conversation = [*odd, *[marked] * count, plain, *odd]
        for enough in (1, 3):
            expected = min(sum(map(prompt_cache._marked, conversation)), enough)
            assert prompt_cache._marks(conversation, enough) == expected
    spec = CATALOG.resolve(EXACT)
    for count in range(4):
        for at in (0, 2):
            messages = [SYSTEM, DEV, USER, ASSISTANT, msg("user", "Now")]
            messages[at + 2 : at + 2] = [marked] * count
            request = LLMRequest("openai", {"model": EXACT, "messages": messages})
            out = prompt_cache.breakpoints(request, spec, respect=False)
            assert (out is request) == (count >= 3)
            assert prompt_cache.breakpoints(request, spec, respect=True) is request or not count
