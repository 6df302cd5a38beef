"""Volatile content out of an OpenAI prompt's cached prefix (volatile.py, for OpenAI bodies).

The system part here is `instructions` (Responses) and the leading system/developer
messages. Under the policy `move`:
- lines holding a date or time go to the end of the newest user message, as a text part of
  their own (so the parts before keep their bytes next turn), or, where there is no such
  part to follow, to a user message of their own after the newest;
- lines learned to vary within a prompt family (state/lines.py) go to a message of the same
  role right after the stable system part: constant within a conversation, after what the
  family shares. Not on a Responses call that continues a stored conversation
  (`previous_response_id`): the message would pile up in it at every turn.
`truncate_to_day` and `report_only` work as on Anthropic bodies.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from gateway.rewrite.openai_text import (
    content_text,
    is_tools_item,
    items,
    items_key,
    leading_system,
    prompt_tools,
)
from gateway.rewrite.request import Finding, LLMRequest, Rewrite
from gateway.rewrite.volatile import (
    ISO_DATETIME,
    RFC_2822,
    RULE,
    TRUNCATE_RULE,
    VolatilePolicy,
    is_volatile,
)
from gateway.state.lines import LineStats


def volatile_openai(request: LLMRequest, policy: VolatilePolicy, lines: LineStats) -> LLMRequest:
    body = request.body
    conversation = items(body)
    lead = leading_system(conversation)
    instructions = body.get("instructions")
    sources: list[str] = [instructions] if isinstance(instructions, str) and instructions else []
    texts = [
        content_text(message.get("content"))
        for message in conversation[:lead]
        if not is_tools_item(message)  # tools placed in the input: kept as they are
    ]
    if any(text is None for text in texts):
        return request  # a system message with an image or a file: leave it be
    sources += [text for text in texts if text is not None]
    if not sources:
        return request
    split = [source.split("\n") for source in sources]
    flat = [line for source in split for line in source]
    dated = {i for i, line in enumerate(flat) if is_volatile(line)}
    family = _family(body, [line for i, line in enumerate(flat) if i not in dated])
    volatile_lines, lesson = lines.observe(request.tenant, family, flat)
    personal = volatile_lines - dated
    if "previous_response_id" in body:
        personal = set()
    findings = []
    if dated:
        findings.append(Finding("timestamp_in_prefix", f"{len(dated)} line(s) in system"))
    if personal:
        findings.append(Finding("user_content_in_prefix", f"{len(personal)} line(s) in system"))
    if not findings or policy == "report_only":
        return request.noting(*findings, lessons=(lesson,))
    if policy == "truncate_to_day":
        return _truncate(request, lead).noting(*findings, lessons=(lesson,))
    return _move(request, split, lead, dated, personal).noting(*findings, lessons=(lesson,))


def _family(body: dict[str, Any], stable_lines: list[str]) -> bytes:
    """A prompt family: the tools and the system part's first line that holds no date."""
    first = next((line for line in stable_lines if line.strip()), "")
    names = []
    for tool in prompt_tools(body):
        if isinstance(tool, dict):
            nested = tool.get("function")
            names.append((nested if isinstance(nested, dict) else tool).get("name"))
    return hashlib.blake2b(f"{names}\0{first}".encode(), digest_size=12).digest()


def _move(
    request: LLMRequest,
    split: list[list[str]],
    lead: int,
    dated: set[int],
    personal: set[int],
) -> LLMRequest:
    body = request.body
    conversation = items(body)
    kept: list[str] = []
    moved_dated: list[str] = []
    moved_personal: list[str] = []
    index = 0
    for source in split:
        keep: list[str] = []
        for line in source:
            target = (
                moved_dated if index in dated else moved_personal if index in personal else keep
            )
            target.append(line)
            index += 1
        kept.append("\n".join(keep).strip("\n"))
    has_instructions = len(split) > lead
    new_body = dict(body)
    if has_instructions:
        new_body["instructions"] = kept.pop(0)
    system = []
    texts = iter(kept)
    for message in conversation[:lead]:
        if is_tools_item(message):
            system.append(message)
        elif text := next(texts):
            system.append({**message, "content": text})
    if not (system or new_body.get("instructions")):
        return request  # the whole system part is volatile: nothing stable to cache
    role = conversation[lead - 1].get("role") if lead else "developer"
    tail = [{"role": role, "content": "\n".join(moved_personal)}] if moved_personal else []
    out = [*system, *tail, *conversation[lead:]]
    dates_at = None
    if moved_dated:
        out, dates_at = _with_dates(out, "\n".join(moved_dated), items_key(body) == "messages")
    new_body[items_key(body)] = out
    if not new_body.get("instructions") and has_instructions:
        del new_body["instructions"]
    where = []
    if moved_personal:
        where.append(f"{len(moved_personal)} line(s) after the stable system prompt")
    if moved_dated:
        where.append(f"{len(moved_dated)} to the end of the newest turn")
    return replace(
        request.with_body(new_body, Rewrite(RULE, ", ".join(where))),
        stable_system_blocks=len(system) + bool(new_body.get("instructions")),
        dates_at=dates_at,
    )


def _with_dates(
    conversation: list[Any], dates: str, chat: bool
) -> tuple[list[Any], tuple[int, int]]:
    """Dates as a last text part of the newest user message, and where they went. Where
    that would change the bytes of the message before them — a Responses string content
    becomes input_text parts — or the newest message is not the user's (tool results),
    they are a user message of their own after it."""
    newest = len(conversation) - 1
    last = conversation[newest] if conversation else None
    content = last.get("content") if isinstance(last, dict) and last.get("role") == "user" else None
    kind = "text" if chat else "input_text"
    if isinstance(content, str) and chat:
        content = [{"type": kind, "text": content}]
    if isinstance(content, list) and content and isinstance(last, dict):
        message = {**last, "content": [*content, {"type": kind, "text": dates}]}
        return [*conversation[:newest], message], (newest, len(content))
    return [*conversation, {"role": "user", "content": dates}], (newest + 1, 0)


def _truncate(request: LLMRequest, lead: int) -> LLMRequest:
    def to_day(text: str) -> str:
        return RFC_2822.sub(r"\1", ISO_DATETIME.sub(r"\1", text))

    body = request.body
    new_body = dict(body)
    if isinstance(instructions := body.get("instructions"), str):
        new_body["instructions"] = to_day(instructions)
    conversation = items(body)
    system = [
        {**m, "content": to_day(m["content"])} if isinstance(m.get("content"), str) else m
        for m in conversation[:lead]
    ]
    if lead:
        new_body[items_key(body)] = [*system, *conversation[lead:]]
    if new_body == body:
        return request
    return request.with_body(new_body, Rewrite(TRUNCATE_RULE, "timestamps cut to their date"))
