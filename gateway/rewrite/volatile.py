"""Volatile content out of the cached prefix: timestamps and dates in the system prompt.

A date in the system prompt changes the prompt's bytes every minute or every day, so
nothing after it is ever read from cache. Policies: `move` takes the lines holding one
out of the stable system blocks into a system block of their own after them (the model
still sees every word; the breakpoint goes before it); `truncate_to_day` cuts ISO and
RFC 2822 timestamps to their date in place; `report_only` changes nothing. Each is
reported as the finding `timestamp_in_prefix` either way.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal

from gateway.rewrite.request import Finding, LLMRequest, Rewrite

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


def volatile(request: LLMRequest, policy: VolatilePolicy) -> LLMRequest:
    system = request.body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
    if not isinstance(blocks, list) or not blocks:
        return request
    found = [
        line
        for block in blocks
        if isinstance(block, dict) and isinstance(block.get("text"), str)
        for line in block["text"].split("\n")
        if is_volatile(line)
    ]
    if not found:
        return request
    finding = Finding("timestamp_in_prefix", f"{len(found)} line(s) in system")
    if policy == "report_only":
        return request.noting(finding)
    if policy == "truncate_to_day":
        return _truncate(request, blocks).noting(finding)
    return _move(request, blocks, len(found)).noting(finding)


def _move(request: LLMRequest, blocks: list[Any], count: int) -> LLMRequest:
    stable: list[Any] = []
    moved: list[str] = []
    for block in blocks:
        if not (isinstance(block, dict) and isinstance(block.get("text"), str)):
            stable.append(block)
            continue
        keep: list[str] = []
        for line in block["text"].split("\n"):
            (moved if is_volatile(line) else keep).append(line)
        text = "\n".join(keep).strip("\n")
        if text:
            stable.append({**block, "text": text})
        elif "cache_control" in block and stable:
            # The client's breakpoint was on a block that is now empty: keep it on the last one.
            stable[-1] = {**stable[-1], "cache_control": block["cache_control"]}
    if not stable:
        return request  # the whole system prompt is volatile: nothing stable to cache
    tail = {"type": "text", "text": "\n".join(moved)}
    body = {**request.body, "system": [*stable, tail]}
    rewrite = Rewrite(RULE, f"{count} line(s) after the stable system prompt")
    return replace(request.with_body(body, rewrite), stable_system_blocks=len(stable))


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
