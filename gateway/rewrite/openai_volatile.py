"""Volatile content out of an OpenAI prompt's cached prefix (volatile.py, for OpenAI bodies).

The system part here is `instructions` (Responses) and the leading system/developer
messages: its texts are the instructions, each string content and each text part. Under
the policy `move`, within what movable.py allows:
- lines holding a date or time that varies go to the end of the newest user message, as a
  text part of their own (so the parts before keep their bytes next turn; a chat string
  is read as one text part), or, where there is no such part to follow — a Responses
  string, tool results — as a user message of their own after the newest;
- lines learned to vary within a prompt family (state/lines.py) go to the end of the text
  that holds them: the provider caches by token prefix, so what followed them is shared
  by the family again. Never out of a `<section>`, across a heading, or into another
  message or part; not on a Responses call that continues a stored conversation
  (`previous_response_id`).
`truncate_to_day` and `report_only` work as on Anthropic bodies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gateway.cache.lines import LineStats
from gateway.rewrite.movable import Moves, plan, rebuilt
from gateway.rewrite.openai_text import TEXT_PARTS, items, items_key, leading_system, prompt_tools
from gateway.rewrite.request import LLMRequest, Rewrite
from gateway.rewrite.volatile import (
    ISO_DATETIME,
    RFC_2822,
    RULE,
    TRUNCATE_RULE,
    VolatilePolicy,
    findings_of,
    is_volatile,
)

# Where a text of the system part lives: ("instructions",), ("message", m), ("part", m, p).
Place = tuple[int, ...]
INSTRUCTIONS: Place = ()


def _texts(body: dict[str, Any], lead: int) -> list[tuple[Place, str]]:
    conversation = items(body)
    found: list[tuple[Place, str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        found.append((INSTRUCTIONS, instructions))
    for m, message in enumerate(conversation[:lead]):
        content = message.get("content")
        if isinstance(content, str):
            found.append(((m,), content))
        elif isinstance(content, list):
            found += [
                ((m, p), part["text"])
                for p, part in enumerate(content)
                if isinstance(part, dict)
                and part.get("type") in TEXT_PARTS
                and isinstance(part.get("text"), str)
            ]
    return found


def volatile_openai(
    request: LLMRequest,
    policy: VolatilePolicy,
    lines: LineStats,
    now: dt.datetime | None = None,
) -> LLMRequest:
    body = request.body
    lead = leading_system(items(body))
    texts = _texts(body, lead)
    if not texts:
        return request
    split = [text.split("\n") for _, text in texts]
    flat = [line for source in split for line in source]
    shaped = [is_volatile(line) for line in flat]
    family = _family(body, [line for line, shape in zip(flat, shaped, strict=True) if not shape])
    learned, lesson = lines.observe(request.tenant, family, flat)
    moves = plan(
        split,
        learned,
        now or dt.datetime.now(dt.UTC),
        shaped,
        turn_takes_dates=True,
        ends_pay="previous_response_id" not in body,
    )
    findings = findings_of(moves, policy)
    if policy == "truncate_to_day" and moves.varying_dates:
        return _truncate(request, texts, moves).noting(*findings, lessons=(lesson,))
    if policy == "move" and (moves.to_turn or moves.to_end):
        return _move(request, texts, lead, moves).noting(*findings, lessons=(lesson,))
    return request.noting(*findings, lessons=(lesson,))


def _family(body: dict[str, Any], stable_lines: list[str]) -> bytes:
    """A prompt family: the tools and the system part's first line that holds no date."""
    first = next((line for line in stable_lines if line.strip()), "")
    names = []
    for tool in prompt_tools(body):
        if isinstance(tool, dict):
            nested = tool.get("function")
            names.append((nested if isinstance(nested, dict) else tool).get("name"))
    return hashlib.blake2b(f"{names}\0{first}".encode(), digest_size=12).digest()


def _edited(
    body: dict[str, Any], texts: list[tuple[Place, str]], edit: Callable[[list[str], int], str]
) -> dict[str, Any]:
    """The body with each text of the system part (its lines, and the index of its first
    line in the whole system part) passed through `edit`, every structure kept."""
    new_body = dict(body)
    conversation = list(items(body))
    first = 0
    for place, text in texts:
        lines = text.split("\n")
        new = edit(lines, first)
        first += len(lines)
        if new == text:
            continue
        if place == INSTRUCTIONS:
            new_body["instructions"] = new
            continue
        message = conversation[place[0]]
        if len(place) == 1:
            conversation[place[0]] = {**message, "content": new}
        else:
            parts = list(message["content"])
            parts[place[1]] = {**parts[place[1]], "text": new}
            conversation[place[0]] = {**message, "content": parts}
    if isinstance(body.get(items_key(body)), list):
        new_body[items_key(body)] = conversation
    return new_body


def _move(
    request: LLMRequest, texts: list[tuple[Place, str]], lead: int, moves: Moves
) -> LLMRequest:
    body = request.body
    new_body = _edited(body, texts, lambda lines, first: rebuilt(lines, first, moves))
    flat = [line for _, text in texts for line in text.split("\n")]
    where = []
    # The system part's layers (openai_text.layers): the instructions, then each message.
    has_instructions = bool(body.get("instructions"))
    stable = has_instructions + lead
    if moves.to_end:
        where.append(f"{len(moves.to_end)} line(s) to the end of their text")
        first = 0
        for place, text in texts:
            count = text.count("\n") + 1
            if any(first <= i < first + count for i in moves.to_end):
                stable = 0 if place == INSTRUCTIONS else has_instructions + place[0]
                break
            first += count
    dates_at = None
    if moves.to_turn:
        dates = "\n".join(flat[i] for i in sorted(moves.to_turn))
        out, dates_at = _with_dates(items(new_body), dates, items_key(body) == "messages")
        new_body[items_key(body)] = out
        where.append(f"{len(moves.to_turn)} to the end of the newest turn")
    return replace(
        request.with_body(new_body, Rewrite(RULE, ", ".join(where))),
        stable_system_blocks=stable,
        dates_at=dates_at,
    )


def _with_dates(
    conversation: list[Any], dates: str, chat: bool
) -> tuple[list[Any], tuple[int, int]]:
    """Dates as a last text part of the newest user message, and where they went (in chat a
    string content is one text part: it gains the dates' part). Where that would change the
    message before them — a Responses string content would become input_text parts, other
    bytes next turn — or the newest message is not the user's (tool results), they are a
    user message of their own after it."""
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


def _truncate(request: LLMRequest, texts: list[tuple[Place, str]], moves: Moves) -> LLMRequest:
    def to_day(lines: list[str], first: int) -> str:
        return "\n".join(
            RFC_2822.sub(r"\1", ISO_DATETIME.sub(r"\1", line))
            if first + j in moves.varying_dates
            else line
            for j, line in enumerate(lines)
        )

    new_body = _edited(request.body, texts, to_day)
    if new_body == request.body:
        return request
    return request.with_body(new_body, Rewrite(TRUNCATE_RULE, "timestamps cut to their date"))
