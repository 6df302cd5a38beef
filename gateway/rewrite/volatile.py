"""Volatile content out of the cached prefix: dates and times, and lines that vary per user.

A time in the system prompt changes the prompt's bytes every minute, and a user's name in it
gives every user a prefix of their own: nothing after such a line is read from cache. With
the policy `move` (the default) the model still sees every word, but where it no longer
breaks the prefix — within what movable.py allows, which keeps meaning and structure:
- lines holding a date or time that varies (a "now" stamp, or learned to vary across the
  prompt family, state/lines.py) go to the end of the newest user turn, after the last
  breakpoint, so the conversation's history caches too: the one move that changes a
  line's role. Example dates in static instructions, and today's date alone, stay;
- lines learned to vary per user stay where they are on this wire: a cache entry ends at a
  block's end, so only a block of their own would help, and that changes the structure.
A line that varies but cannot move is left in place and reported (`volatile_line_kept`).
`truncate_to_day` cuts the varying ISO and RFC 2822 timestamps to their date in place
instead, and `report_only` changes nothing. Findings `timestamp_in_prefix` and
`user_content_in_prefix` are reported whatever the policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from gateway.cache.lines import LineStats
from gateway.rewrite.movable import (
    DAY_LEVEL,
    ISO_DATETIME,
    RFC_2822,
    TIME_LEVEL,
    Moves,
    is_volatile,
    plan,
    rebuilt,
)
from gateway.rewrite.request import Finding, LLMRequest, Rewrite

__all__ = ["DAY_LEVEL", "ISO_DATETIME", "RFC_2822", "TIME_LEVEL", "is_volatile", "volatile"]

RULE = "volatile_moved"
TRUNCATE_RULE = "timestamp_truncated"
KEPT = "volatile_line_kept"
VolatilePolicy = Literal["move", "truncate_to_day", "report_only"]


def findings_of(moves: Moves, policy: VolatilePolicy) -> list[Finding]:
    findings = []
    if moves.varying_dates:
        findings.append(
            Finding("timestamp_in_prefix", f"{len(moves.varying_dates)} line(s) in system")
        )
    if moves.personal:
        findings.append(
            Finding("user_content_in_prefix", f"{len(moves.personal)} line(s) in system")
        )
    if moves.kept and policy == "move":
        findings.append(Finding(KEPT, moves.detail()))
    return findings


def volatile(
    request: LLMRequest,
    policy: VolatilePolicy,
    lines: LineStats,
    now: dt.datetime | None = None,
) -> LLMRequest:
    """`now`: the request's time (a "now" stamp is close to it); the clock's by default."""
    system = request.body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
    if not isinstance(blocks, list) or not blocks:
        return request
    texts = [
        b["text"].split("\n")
        for b in blocks
        if isinstance(b, dict) and isinstance(b.get("text"), str)
    ]
    flat = [line for text in texts for line in text]
    shaped = [is_volatile(line) for line in flat]
    family = _family(request, [line for line, shape in zip(flat, shaped, strict=True) if not shape])
    learned, lesson = lines.observe(request.tenant, family, flat)
    messages = request.body.get("messages") or []
    newest = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    moves = plan(
        texts,
        learned,
        now or dt.datetime.now(dt.UTC),
        shaped,
        turn_takes_dates=newest.get("role") == "user",
        ends_pay=False,
    )
    findings = findings_of(moves, policy)
    if policy == "truncate_to_day" and moves.varying_dates:
        return _truncate(request, blocks, moves).noting(*findings, lessons=(lesson,))
    if policy == "move" and moves.to_turn:
        return _move(request, blocks, moves).noting(*findings, lessons=(lesson,))
    return _mark_dated_turn(request).noting(*findings, lessons=(lesson,))


def _mark_dated_turn(request: LLMRequest) -> LLMRequest:
    """A newest user turn that ends in a block of dates alone (as `move` leaves it): mark
    it. A string content is its one block, as the breakpoint plan counts it."""
    messages = request.body.get("messages") or []
    newest = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    content = newest.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if newest.get("role") != "user" or not isinstance(content, list) or not content:
        return request
    last = content[-1]
    text = last.get("text") if isinstance(last, dict) and last.get("type") == "text" else None
    if isinstance(text, str) and text and all(map(is_volatile, text.split("\n"))):
        return replace(request, dates_at=(len(messages) - 1, len(content) - 1))
    return request


def _family(request: LLMRequest, stable_lines: list[str]) -> bytes:
    """A prompt family: the tools and the system prompt's first line that holds no date."""
    first = next((line for line in stable_lines if line.strip()), "")
    tools = [t.get("name") for t in request.body.get("tools") or () if isinstance(t, dict)]
    return hashlib.blake2b(f"{tools}\0{first}".encode(), digest_size=12).digest()


def _text_blocks(blocks: list[Any], edit: Callable[[list[str], int], str]) -> list[Any]:
    """The system blocks with each text block's lines (and the index of its first line in
    the whole system prompt) passed through `edit`."""
    out = []
    first = 0
    for block in blocks:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            lines = block["text"].split("\n")
            text = edit(lines, first)
            first += len(lines)
            block = block if text == block["text"] else {**block, "text": text}
        out.append(block)
    return out


def _system(request: LLMRequest, blocks: list[Any]) -> Any:
    """The system field as the client wrote it: a string stays a string."""
    return blocks[0]["text"] if isinstance(request.body.get("system"), str) else blocks


def _move(request: LLMRequest, blocks: list[Any], moves: Moves) -> LLMRequest:
    flat = [
        line
        for b in blocks
        if isinstance(b, dict) and isinstance(b.get("text"), str)
        for line in b["text"].split("\n")
    ]
    dates = "\n".join(flat[i] for i in sorted(moves.to_turn))
    messages = request.body.get("messages") or []
    newest = len(messages) - 1
    body = {
        **request.body,
        "system": _system(request, _text_blocks(blocks, lambda ls, at: rebuilt(ls, at, moves))),
        "messages": [*messages[:newest], _append(messages[newest], dates)],
    }
    where = f"{len(moves.to_turn)} line(s) to the end of the newest turn"
    return replace(
        request.with_body(body, Rewrite(RULE, where)),
        stable_system_blocks=len(blocks),
        dates_at=(newest, len(body["messages"][newest]["content"]) - 1),
    )


def _append(message: dict[str, Any], text: str) -> dict[str, Any]:
    # At the end: a user turn that answers tool calls must start with its tool results.
    content = message.get("content")
    blocks = (
        [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
    )
    return {**message, "content": [*blocks, {"type": "text", "text": text}]}


def _truncate(request: LLMRequest, blocks: list[Any], moves: Moves) -> LLMRequest:
    def to_day(lines: list[str], first: int) -> str:
        return "\n".join(
            RFC_2822.sub(r"\1", ISO_DATETIME.sub(r"\1", line))
            if first + j in moves.varying_dates
            else line
            for j, line in enumerate(lines)
        )

    new_blocks = _text_blocks(blocks, to_day)
    if new_blocks == blocks:
        return request
    body = {**request.body, "system": _system(request, new_blocks)}
    return request.with_body(body, Rewrite(TRUNCATE_RULE, "timestamps cut to their date"))
