"""Volatile content out of the cached prefix: dates and times, and lines that vary per user.

A time in the system prompt changes the prompt's bytes every minute, and a user's name in it
gives every user a prefix of their own: nothing after such a line is read from cache. With
the policy `move` (the default) the model still sees every word, but where it no longer
breaks the prefix — within what movable.py allows, which keeps meaning and structure:
- lines holding a date or time that varies (a "now" stamp, or learned to vary across the
  prompt family, cache/lines.py) go to the end of the newest user turn, after the last
  breakpoint, so the conversation's history caches too: the one move that changes a
  line's role. Example dates in static instructions, and today's date alone, stay;
- lines learned to vary per user go to the end of the text that holds them where the
  provider caches by token prefix (OpenAI); on Anthropic a cache entry ends at a block's
  end, so only a block of their own would help, and that changes the structure: they stay.
A line that varies but cannot move is left in place and reported (`volatile_line_kept`).
`truncate_to_day` cuts the varying ISO and RFC 2822 timestamps to their date in place
instead, and `report_only` changes nothing. Findings `timestamp_in_prefix` and
`user_content_in_prefix` are reported whatever the policy.

One rule for both providers: where a wire keeps its system part and where dates go are its
`SystemPart` (text.py for Anthropic, openai_text.py for OpenAI).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal, Protocol

from gateway.rewrite.fingerprint import prompt_family, unmarked
from gateway.rewrite.memo import MIN_CHARS, CallMemo, call_memo, derived
from gateway.rewrite.movable import NOTHING, Moves, plan, rebuilt
from gateway.rewrite.openai_text import OpenAISystem
from gateway.rewrite.request import Finding, LLMRequest, Rewrite, evolve
from gateway.rewrite.shapes import (
    DAY_LEVEL,
    ISO_DATETIME,
    RFC_2822,
    TIME_LEVEL,
    is_volatile,
)
from gateway.rewrite.snapshot import LinesSeen, LinesView, MemoView, Observation
from gateway.rewrite.system_lines import line_key, system_lines
from gateway.rewrite.text import AnthropicSystem

__all__ = [
    "DAY_LEVEL",
    "ISO_DATETIME",
    "RFC_2822",
    "TIME_LEVEL",
    "is_volatile",
    "line_key",
    "volatile",
    "volatile_openai",
]

RULE = "volatile_moved"
TRUNCATE_RULE = "timestamp_truncated"
KEPT = "volatile_line_kept"
VolatilePolicy = Literal["move", "truncate_to_day", "report_only"]
Place = tuple[int, ...]


class SystemPart(Protocol):
    """Where a wire keeps the system part's texts, and where moved lines go."""

    def system_part(self, body: dict[str, Any]) -> tuple[list[tuple[Place, str]], Any]:
        """The system part's texts, each at its place, and the prompt's tools: one walk."""

    def replaced(self, body: dict[str, Any], texts: dict[Place, str]) -> dict[str, Any]: ...
    def layers(self, body: dict[str, Any]) -> int: ...
    def layer_of(self, body: dict[str, Any], place: Place) -> int: ...
    def turn_takes_dates(self, body: dict[str, Any]) -> bool: ...
    def ends_pay(self, body: dict[str, Any]) -> bool: ...
    def with_dates(
        self, body: dict[str, Any], dates: str
    ) -> tuple[dict[str, Any], tuple[int, int]]: ...
    def dated_turn(
        self, body: dict[str, Any], is_date: Callable[[str], bool]
    ) -> tuple[int, int] | None: ...


ANTHROPIC = AnthropicSystem()
OPENAI = OpenAISystem()


def volatile(
    request: LLMRequest,
    policy: VolatilePolicy,
    lines: LinesView,
    now: dt.datetime,
    memo: MemoView | None = None,
) -> LLMRequest:
    """`now`: the request's time (a "now" stamp is close to it)."""
    return volatile_lines(request, policy, lines, now, ANTHROPIC, memo)


def volatile_openai(
    request: LLMRequest,
    policy: VolatilePolicy,
    lines: LinesView,
    now: dt.datetime,
    memo: MemoView | None = None,
) -> LLMRequest:
    """The same rule on an OpenAI body: instructions and leading system messages."""
    return volatile_lines(request, policy, lines, now, OPENAI, memo)


def volatile_lines(
    request: LLMRequest,
    policy: VolatilePolicy,
    lines: LinesView,
    now: dt.datetime,
    part: SystemPart,
    view: MemoView | None = None,
) -> LLMRequest:
    return _volatile_lines(request, policy, lines, now, part, call_memo(view, request.tenant))


def _volatile_lines(
    request: LLMRequest,
    policy: VolatilePolicy,
    lines: LinesView,
    now: dt.datetime,
    part: SystemPart,
    memo: CallMemo | None,
) -> LLMRequest:
    body = request.body
    texts, prompt = part.system_part(body)
    if not texts:
        return request
    # By identity where the body shares an earlier call's texts: a lookup (system_lines.py).
    system = system_lines(tuple(text for _, text in texts), memo)
    tools = _prompt_tools(request, prompt, memo)
    # Digested, not looked up: xxh3 of the tools' bytes is ~5 us, a lookup by them ~29.
    family = prompt_family(request.tenant, tools, system.first)
    varying = lines.varying(request.tenant, family, system.keys, system.distinct)
    flat = system.flat
    learned = {i for i in varying if flat[i].strip()}
    seen: tuple[Observation, ...] = (LinesSeen(request.tenant, family, system.distinct),)
    # A line varies only as a "now" stamp (one of `stamps`) or as learned: neither, and no
    # line is looked at, nor where lines would go (most calls of Claude Code: dated lines,
    # none a stamp).
    if not system.stamps and not learned:
        moves = NOTHING
    else:
        moves = plan(
            system.split,
            learned,
            now,
            system.shapes,
            turn_takes_dates=part.turn_takes_dates(body),
            ends_pay=part.ends_pay(body),
            flat=flat,
            stamps=system.stamps,
            places=system.places,
        )
    findings = findings_of(moves, policy) if moves is not NOTHING else []
    # What the memo kept after what the rule saw (memo.py's `observed`), in the one request.
    seen += derived(memo)
    if policy == "truncate_to_day" and moves.varying_dates:
        request = evolve(request, prompt_tools=tools)
        return _truncate(request, part, texts, moves).noting(*findings, observed=seen)
    if policy == "move" and (moves.to_turn or moves.to_end):
        noted = (request.findings + tuple(findings), request.observations + seen)
        return _move(request, part, texts, flat, moves, tools, noted)
    dated = part.dated_turn(body, is_volatile)
    return evolve(  # one new request where most calls made three (~1.6 us each)
        request,
        prompt_tools=tools,
        dates_at=request.dates_at if dated is None else dated,
        findings=request.findings + tuple(findings),
        observations=request.observations + seen,
    )


TOOLS = "volatile.tools"  # the memo's kind for the tools' bytes, by the tools list (get_same)


def _prompt_tools(request: LLMRequest, tools: Any, memo: CallMemo | None) -> bytes:
    """The prompt's tools as bytes without their breakpoints (fingerprint.unmarked), where no
    stage before made them (an OpenAI body's: tool_json leaves them): found by the identity
    of the body's tools list where they are that list's alone (no tools item adds some) and
    an earlier accepted call sent the very list (Codex's: ~130 us a serialization)."""
    if request.prompt_tools is not None:
        return request.prompt_tools
    sent = request.body.get("tools")
    if memo is None or not isinstance(sent, list) or len(tools) != len(sent):
        return unmarked(tools)
    found: bytes | None = memo.get_same(TOOLS, sent)
    if found is None:
        found = unmarked(tools)
        if len(found) >= MIN_CHARS:
            memo.keep_same(TOOLS, sent, found, 3 * len(found))
    return found


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


def _edited(
    texts: list[tuple[Place, str]], edit: Callable[[list[str], int], str]
) -> dict[Place, str]:
    """The texts `edit` changed, by place: it is given each text's lines and the index of
    its first line in the whole system part."""
    out = {}
    first = 0
    for place, text in texts:
        lines = text.split("\n")
        new = edit(lines, first)
        first += len(lines)
        if new != text:
            out[place] = new
    return out


def _move(
    request: LLMRequest,
    part: SystemPart,
    texts: list[tuple[Place, str]],
    flat: tuple[str, ...],
    moves: Moves,
    tools: bytes,
    noted: tuple[tuple[Finding, ...], tuple[Observation, ...]],
) -> LLMRequest:
    """The request with the lines moved, the prompt's tools (`tools`), and its findings and
    observations as they are to be (`noted`), in one new request."""
    body = request.body
    new_body = part.replaced(body, _edited(texts, lambda lines, at: rebuilt(lines, at, moves)))
    where = []
    stable = part.layers(body)
    if moves.to_end:  # the layers before the first text a learned line moved within
        where.append(f"{len(moves.to_end)} line(s) to the end of their text")
        first = 0
        for place, text in texts:
            count = text.count("\n") + 1
            if any(first <= i < first + count for i in moves.to_end):
                stable = part.layer_of(body, place)
                break
            first += count
    dates_at = None
    if moves.to_turn:
        dates = "\n".join(flat[i] for i in sorted(moves.to_turn))
        new_body, dates_at = part.with_dates(new_body, dates)
        where.append(f"{len(moves.to_turn)} line(s) to the end of the newest turn")
    # `request.with_body(new_body, rewrite)` with the rest, in one new request
    return evolve(
        request,
        body=new_body,
        rewrites=(*request.rewrites, Rewrite(RULE, ", ".join(where))),
        changed=True,
        stable_system_blocks=stable,
        dates_at=dates_at,
        prompt_tools=tools,
        findings=noted[0],
        observations=noted[1],
    )


def _truncate(
    request: LLMRequest, part: SystemPart, texts: list[tuple[Place, str]], moves: Moves
) -> LLMRequest:
    def to_day(lines: list[str], first: int) -> str:
        return "\n".join(
            RFC_2822.sub(r"\1", ISO_DATETIME.sub(r"\1", line))
            if first + j in moves.varying_dates
            else line
            for j, line in enumerate(lines)
        )

    edits = _edited(texts, to_day)
    if not edits:
        return request
    new_body = part.replaced(request.body, edits)
    return request.with_body(new_body, Rewrite(TRUNCATE_RULE, "timestamps cut to their date"))
