"""Volatile content out of the cached prefix: dates and times, and lines that vary per user.

A date in the system prompt changes the prompt's bytes every minute or every day, and a
user's name in it gives every user a prefix of their own: nothing after such a line is
read from cache. With the policy `move` (the default) the model still sees every word,
but where it no longer breaks the prefix:
- lines learned to vary between requests of a prompt family (a user's name, company,
  plan — see state/lines.py) go to a system block after the stable ones: constant within
  a conversation, so its history still caches;
- lines holding a date or time go to the end of the newest user turn, after the last
  breakpoint, so the conversation's history caches too (in the system prompt they would
  change the prefix of every later message at each turn).
`truncate_to_day` cuts ISO and RFC 2822 timestamps to their date in place instead, and
`report_only` changes nothing. Findings `timestamp_in_prefix` and `user_content_in_prefix`
are reported whatever the policy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from typing import Any, Literal

from gateway.rewrite.request import Finding, LLMRequest, Rewrite
from gateway.state.lines import LineStats

RULE = "volatile_moved"
TRUNCATE_RULE = "timestamp_truncated"
VolatilePolicy = Literal["move", "truncate_to_day", "report_only"]

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_MON = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
ISO_DATETIME = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
RFC_2822 = re.compile(
    rf"\b((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+\d{{1,2}}\s+(?:{_MON})\s+\d{{4}})"
    r"\s+\d{2}:\d{2}(?::\d{2})?(?:\s+(?:[+-]\d{4}|GMT|UTC))?"
)
DAY_LEVEL = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b"
    rf"|\b(?:{_DAYS}),?\s+(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?,\s+\d{{4}}\b"
    rf"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+\d{{1,2}}\s+(?:{_MON})\s+\d{{4}}\b"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
)
TIME_LEVEL = re.compile(
    r"\b\d{1,2}:\d{2}(?::\d{2})?\s?(?:[AaPp]\.?[Mm]\.?)?\b"
    r"|(?i:\b(?:timestamp|time|epoch|now|ts|unix)\b\W{0,3}\d{10}(?:\d{3})?\b)"
)


def is_volatile(line: str) -> bool:
    # Every shape above has a digit: most lines are dismissed by one scan, no regex.
    if not any(c.isdigit() for c in line):
        return False
    return bool(ISO_DATETIME.search(line) or TIME_LEVEL.search(line) or DAY_LEVEL.search(line))


def volatile(request: LLMRequest, policy: VolatilePolicy, lines: LineStats) -> LLMRequest:
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
    dated = {i for i, line in enumerate(flat) if is_volatile(line)}
    family = _family(request, [line for i, line in enumerate(flat) if i not in dated])
    volatile_lines, lesson = lines.observe(request.tenant, family, flat)
    personal = volatile_lines - dated
    findings = []
    if dated:
        findings.append(Finding("timestamp_in_prefix", f"{len(dated)} line(s) in system"))
    if personal:
        findings.append(Finding("user_content_in_prefix", f"{len(personal)} line(s) in system"))
    if not findings or policy == "report_only":
        return _mark_dated_turn(request).noting(*findings, lessons=(lesson,))
    if policy == "truncate_to_day":
        return _truncate(request, blocks).noting(*findings, lessons=(lesson,))
    return _move(request, blocks, dated, personal).noting(*findings, lessons=(lesson,))


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


def _move(
    request: LLMRequest, blocks: list[Any], dated: set[int], personal: set[int]
) -> LLMRequest:
    stable: list[Any] = []
    moved_dated: list[str] = []
    moved_personal: list[str] = []
    index = 0
    for block in blocks:
        if not (isinstance(block, dict) and isinstance(block.get("text"), str)):
            stable.append(block)
            continue
        keep: list[str] = []
        for line in block["text"].split("\n"):
            target = (
                moved_dated if index in dated else moved_personal if index in personal else keep
            )
            target.append(line)
            index += 1
        text = "\n".join(keep).strip("\n")
        if text:
            stable.append({**block, "text": text})
        elif "cache_control" in block and stable:
            # The client's breakpoint was on a block that is now empty: keep it on the last one.
            stable[-1] = {**stable[-1], "cache_control": block["cache_control"]}
    if not stable:
        return request  # the whole system prompt is volatile: nothing stable to cache
    messages = request.body.get("messages") or []
    newest = len(messages) - 1
    turn_takes_dates = bool(moved_dated) and newest >= 0 and messages[newest].get("role") == "user"
    tail = moved_personal + ([] if turn_takes_dates else moved_dated)
    body = {
        **request.body,
        "system": stable + ([{"type": "text", "text": "\n".join(tail)}] if tail else []),
    }
    if turn_takes_dates:
        dates = "\n".join(moved_dated)
        body["messages"] = [*messages[:newest], _append(messages[newest], dates)]
    where = f"{len(tail)} line(s) after the stable system prompt"
    if turn_takes_dates:
        where += f", {len(moved_dated)} to the end of the newest turn"
    return replace(
        request.with_body(body, Rewrite(RULE, where)),
        stable_system_blocks=len(stable),
        dates_at=(newest, len(body["messages"][newest]["content"]) - 1)
        if turn_takes_dates
        else None,
    )


def _append(message: dict[str, Any], text: str) -> dict[str, Any]:
    # At the end: a user turn that answers tool calls must start with its tool results.
    content = message.get("content")
    blocks = (
        [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
    )
    return {**message, "content": [*blocks, {"type": "text", "text": text}]}


def _truncate(request: LLMRequest, blocks: list[Any]) -> LLMRequest:
    def to_day(text: str) -> str:
        return RFC_2822.sub(r"\1", ISO_DATETIME.sub(r"\1", text))

    new_blocks = [
        {**b, "text": to_day(b["text"])}
        if isinstance(b, dict) and isinstance(b.get("text"), str)
        else b
        for b in blocks
    ]
    if new_blocks == blocks:
        return request
    body = {**request.body, "system": new_blocks}
    return request.with_body(body, Rewrite(TRUNCATE_RULE, "timestamps cut to their date"))
