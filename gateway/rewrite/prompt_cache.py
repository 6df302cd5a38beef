"""OpenAI's cache plan: which cache a request lands on, how long it lives, where it is written.

OpenAI caches automatically (docs/wire.md#openai-prompt-caching); what a client controls is
- `prompt_cache_key`: requests are routed, and cached, by it. The gateway derives one from
  the prompt family (tenant, tools, stable system part) when the client sent none, so a
  family's requests meet on one cache instead of being spread over machines;
- the lifetime: `prompt_cache_retention` (`in_memory` | `24h`, models before GPT-5.6; 24h
  only on those with extended retention) or `prompt_cache_options.ttl` (GPT-5.6 and later),
  set per step from config when the client set none;
- on GPT-5.6 and later, where writes happen: only at breakpoints (the last block, plus up
  to 3 marked `prompt_cache_breakpoint`). Like Anthropic's plan (breakpoints.py), the end of
  the stable system part and the newest message before moved dates get one, so other
  conversations of the family, and the next turn, read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.catalog import ModelSpec
from gateway.rewrite.family import family_of
from gateway.rewrite.openai_text import TEXT_PARTS, items, items_key, layers, leading_system
from gateway.rewrite.request import LLMRequest, Rewrite

KEY_RULE = "prompt_cache_key"
RETENTION_RULE = "prompt_cache_retention"
OPTIONS_RULE = "prompt_cache_options"
BREAKPOINT_RULE = "prompt_cache_breakpoint"
KEY_PREFIX = "tollgate-"
MARK = {"mode": "explicit"}
IMPLICIT_MARKS = 3  # implicit mode: the last block is a breakpoint, plus up to 3 marked


def cache_key(request: LLMRequest) -> LLMRequest:
    """The prompt family as the fingerprint has it (fingerprint.py), as the key."""
    if "prompt_cache_key" in request.body:
        return request
    shaped = layers(request.body)
    family = family_of(shaped, request.stable_system_blocks, request.tenant, request.prompt_tools)
    key = KEY_PREFIX + family.hex()
    return request.with_body({**request.body, "prompt_cache_key": key}, Rewrite(KEY_RULE, key))


def for_step(per_step: Mapping[str, str], step: str | None) -> str | None:
    """The step's own setting, else the one for every step ("*")."""
    return per_step.get(step or "") or per_step.get("*")


def retention(
    request: LLMRequest,
    spec: ModelSpec | None,
    retention_by_step: Mapping[str, str],
    ttl_by_step: Mapping[str, str],
) -> LLMRequest:
    body = request.body
    if spec is None or spec.provider != "openai":
        return request
    if spec.openai_cache == "exact":
        ttl = for_step(ttl_by_step, request.step)
        options = body.get("prompt_cache_options")
        if ttl is None or not isinstance(options, dict | None) or (options or {}).get("ttl"):
            return request
        new = {**(options or {}), "ttl": ttl}
        return request.with_body({**body, "prompt_cache_options": new}, Rewrite(OPTIONS_RULE, ttl))
    wanted = for_step(retention_by_step, request.step)
    if wanted is None or "prompt_cache_retention" in body:
        return request
    if wanted == "24h" and not spec.extended_retention:
        return request  # the API would refuse it (400): the model's default stays
    body = {**body, "prompt_cache_retention": wanted}
    return request.with_body(body, Rewrite(RETENTION_RULE, wanted))


def breakpoints(request: LLMRequest, spec: ModelSpec | None, respect: bool) -> LLMRequest:
    """Marks on GPT-5.6+ chat and input messages: the stable system part's end, the newest
    message before moved dates. Never more than implicit mode allows, never in explicit mode
    (the client placed every write itself)."""
    body = request.body
    options = body.get("prompt_cache_options")
    if spec is None or spec.openai_cache != "exact":
        return request
    if isinstance(options, dict) and options.get("mode") == "explicit":
        return request
    conversation = items(body)
    chat = items_key(body) == "messages"
    wanted = []
    stable = leading_system(conversation)
    if request.stable_system_blocks is not None:  # moved lines follow the stable ones
        stable = request.stable_system_blocks - bool(body.get("instructions"))
    if stable > 0:
        wanted.append(stable - 1)
    before_dates: tuple[int, int] | None = None  # (message, part) right before moved dates
    if request.dates_at is not None:
        at_message, at_part = request.dates_at
        if at_part > 0:
            before_dates = (at_message, at_part - 1)
        elif at_message >= 1:
            wanted.append(at_message - 1)
    chosen: list[tuple[int, int | None]] = [
        (i, None)
        for i in dict.fromkeys(wanted)
        if i < len(conversation) - 1
        and not _marked(conversation[i])
        and _markable(conversation[i], chat)
    ]
    if before_dates is not None:
        chosen.append(before_dates)
    if not chosen:  # nothing to mark: the client's marks need no count
        return request
    taken = _marks(conversation, 1 if respect else IMPLICIT_MARKS)
    if respect and taken:
        return request
    chosen = chosen[: max(IMPLICIT_MARKS - taken, 0)]
    if not chosen:
        return request
    marked = list(conversation)
    for i, index in chosen:
        marked[i] = _mark(marked[i], index)
    detail = f"{len(chosen)} marked"
    return request.with_body({**body, items_key(body): marked}, Rewrite(BREAKPOINT_RULE, detail))


def _marks(conversation: list[Any], enough: int) -> int:
    """How many messages the client marked, counted up to `enough` (what the plan needs
    to know): `_marked` of each, inline, since every turn resends the whole conversation
    (~0.4 us a message as a call with a generator, 402 Codex items ~65 us a turn)."""
    taken = 0
    for message in conversation:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and "prompt_cache_breakpoint" in part:
                    taken += 1
                    if taken >= enough:
                        return taken
                    break
    return taken


def _marked(message: Any) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(part, dict) and "prompt_cache_breakpoint" in part for part in content
    )


def _markable(message: Any, chat: bool) -> bool:
    """A message whose last part is text; in chat also a string (it becomes one text part).
    A string in Responses input stays: its part type (input_text) would change its bytes."""
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    if isinstance(content, list):
        last = content[-1] if content else None
        return isinstance(last, dict) and last.get("type") in TEXT_PARTS
    return chat and isinstance(content, str) and bool(content)


def _mark(message: dict[str, Any], part: int | None) -> dict[str, Any]:
    """The message with its last part (or part `part`) marked as a breakpoint."""
    content = message["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    index = len(content) - 1 if part is None else part
    marked = {**content[index], "prompt_cache_breakpoint": MARK}
    return {**message, "content": [*content[:index], marked, *content[index + 1 :]]}
