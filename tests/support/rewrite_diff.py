"""What the gateway changed in a request, judged against what it says it changed.

`judge(client, upstream, rewrites, ...)` compares the body a client sent with the body that
reached the provider and sorts every difference into three lists:
- `unexplained`: a change no rule listed in `x-gateway-rewrites` makes (the gateway must
  say what it changed);
- `role_changes`: text that reached the model in another role than the client gave it —
  allowed only for the documented date move: a line holding a date that really varies
  (it changes across the calls of its prompt family, or is the recording day's "now"
  stamp) may go from the system prompt to the end of the newest user turn;
- `structure_changes`: the structure around the text changed — a system block or a message
  added, parts merged, a part list turned into a string, a line lifted out of the
  `<section>…</section>` that enclosed it. The one allowed addition is the moved dates'
  own text part at the end of the newest user turn.
Wire formats: Anthropic Messages, OpenAI Responses and Chat Completions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.rewrite.volatile import DAY_LEVEL, ISO_DATETIME, is_volatile
from gateway.rewrite.whitespace import canonical_whitespace

SYSTEM_ROLES = ("system", "developer")
TEXT_PARTS = ("text", "input_text", "output_text")
SECTION_OPEN = re.compile(r"^\s*<([A-Za-z][\w:-]*(?: [A-Za-z][\w-]*)?)>\s*$")
SECTION_CLOSE = re.compile(r"^\s*</([A-Za-z][\w:-]*(?: [A-Za-z][\w-]*)?)>\s*$")
# Rules that only add or change these top-level fields.
FIELD_RULES = {
    "prompt_cache_key": ("prompt_cache_key",),
    "prompt_cache_retention": ("prompt_cache_retention",),
    "prompt_cache_options": ("prompt_cache_options",),
    "route": ("model",),
    "pin": ("model",),
    "cache_diagnostics": ("diagnostics",),
}
BREAKPOINT_RULES = ("cache_breakpoints", "prompt_cache_breakpoint")
MARK_KEYS = ("cache_control", "prompt_cache_breakpoint")
MOVE_RULES = ("volatile_moved", "timestamp_truncated")


@dataclass
class Verdict:
    unexplained: list[str] = field(default_factory=list)
    role_changes: list[str] = field(default_factory=list)
    structure_changes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------ reading bodies


def conversation(body: dict[str, Any]) -> list[Any]:
    value = body.get("messages", body.get("input"))
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return value if isinstance(value, list) else []


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") in TEXT_PARTS and isinstance(part.get("text"), str):
            out.append(part["text"])
        elif part.get("type") == "tool_result":
            out.extend(_texts(part.get("content")))
    return out


def system_texts(body: dict[str, Any]) -> list[str]:
    """The system prompt's texts, in order: Anthropic `system`; OpenAI `instructions` and the
    leading system/developer messages."""
    out: list[str] = []
    system = body.get("system")
    out.extend(_texts(system))
    if isinstance(body.get("instructions"), str):
        out.append(body["instructions"])
    for message in conversation(body):
        if not (isinstance(message, dict) and message.get("role") in SYSTEM_ROLES):
            break
        out.extend(_texts(message.get("content")))
    return out


def lines_by_role(body: dict[str, Any]) -> dict[str, Counter[str]]:
    """Every non-blank line of text, by the role it reaches the model in."""
    roles: dict[str, Counter[str]] = {
        "system": Counter(),
        "user": Counter(),
        "assistant": Counter(),
    }
    for text in system_texts(body):
        roles["system"].update(_lines(text))
    lead = True
    for message in conversation(body):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if lead and role in SYSTEM_ROLES:
            continue
        lead = False
        bucket = (
            "system" if role in SYSTEM_ROLES else "assistant" if role == "assistant" else "user"
        )
        for text in _texts(message.get("content")):
            roles[bucket].update(_lines(text))
    return roles


def _lines(text: str) -> list[str]:
    return [line.rstrip(" \t") for line in text.split("\n") if line.strip()]


def skeleton(body: dict[str, Any], anthropic: bool) -> list[Any]:
    """The structure around the text: system blocks, messages, their roles and part types.
    On Anthropic's wire and in Chat Completions a string is the same as one text block (the
    API reads it so); in Responses a string and a part list are different structures."""
    system = body.get("system")
    blocks = 1 if isinstance(system, str) else len(system or [])
    shape: list[Any] = [
        f"system:{blocks} blocks",
        "instructions" if "instructions" in body else "",
    ]
    for message in conversation(body):
        if not isinstance(message, dict):
            shape.append(type(message).__name__)
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts: Any = ["text"] if anthropic else "str"
        else:
            parts = [p.get("type") if isinstance(p, dict) else "?" for p in content or []]
        shape.append((message.get("type", "message"), message.get("role"), parts))
    return shape


def sections_of(texts: Iterable[str]) -> dict[str, str]:
    """Each line inside a `<tag>` … `</tag>` section, with the section's tag."""
    found: dict[str, str] = {}
    for text in texts:
        open_tags: list[str] = []
        for line in text.split("\n"):
            if match := SECTION_OPEN.match(line):
                open_tags.append(match[1])
            elif (match := SECTION_CLOSE.match(line)) and match[1] in open_tags:
                del open_tags[open_tags.index(match[1]) :]
            elif open_tags and line.strip():
                found.setdefault(line.rstrip(" \t"), open_tags[-1])
    return found


# ------------------------------------------------------------------------ normalizing


def _walk(value: Any, on_string: Callable[[str], str], drop: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, on_string, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_walk(v, on_string, drop) for v in value]
    return on_string(value) if isinstance(value, str) else value


def _blank_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "" if k == "text" else _blank_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_text(v) for v in value]
    return value


def non_text(body: dict[str, Any]) -> list[Any]:
    """Everything in the conversation but its text, in order: tool calls, tool results (their
    text blanked), reasoning items…; where moved lines go cannot change these."""
    out: list[Any] = []
    for item in conversation(body):
        if not isinstance(item, dict):
            out.append(item)
            continue
        content = item.get("content")
        if "role" not in item or item.get("type") not in (None, "message"):
            out.append(_blank_text(item))
        elif isinstance(content, list):
            out.extend(
                _blank_text(part)
                for part in content
                if not (isinstance(part, dict) and part.get("type") in TEXT_PARTS)
            )
    return out


def _as_blocks(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic body with every string content (and a string system) as the one text
    block the API reads it as: how a rule that marks it (cache_breakpoints) must write it."""
    out = dict(body)
    if isinstance(out.get("system"), str):
        out["system"] = [{"type": "text", "text": out["system"]}]
    if isinstance(out.get("messages"), list):
        out["messages"] = [
            {**m, "content": [{"type": "text", "text": m["content"]}]}
            if isinstance(m, dict) and isinstance(m.get("content"), str)
            else m
            for m in out["messages"]
        ]
    return out


def _normalized(
    body: dict[str, Any], rewrites: set[str], anthropic: bool = False
) -> dict[str, Any]:
    out = _as_blocks(body) if anthropic else dict(body)
    for rule, fields in FIELD_RULES.items():
        if rule in rewrites:
            for name in fields:
                out.pop(name, None)
    drop = MARK_KEYS if rewrites & set(BREAKPOINT_RULES) else ()
    on_string: Callable[[str], str] = (
        (lambda s: canonical_whitespace(s) or s) if "whitespace" in rewrites else (lambda s: s)
    )
    out = _walk(out, on_string, drop)
    if "tool_json" in rewrites and isinstance(out.get("tools"), list):
        out["tools"] = sorted(out["tools"], key=lambda t: str(t.get("name", t)))
    if rewrites & set(MOVE_RULES):
        # Lines moved between blocks and messages: their text is compared as lines by role
        # (judge), the structure by its skeleton; here, the rest of the conversation.
        key = "messages" if "messages" in out else "input"
        conversation_rest = non_text(out)
        for name in ("system", "instructions", key):
            out.pop(name, None)
        out["conversation without text"] = conversation_rest
    return out


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if type(a) is not type(b):
        return f"{path or '/'}: {type(a).__name__} -> {type(b).__name__}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a:
                return f"{path}/{key}: added"
            if key not in b:
                return f"{path}/{key}: removed"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}/{key}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items -> {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}/{i}")
    return f"{path}: {str(a)[:60]!r} -> {str(b)[:60]!r}"


# ------------------------------------------------------------------------ judging


@dataclass(frozen=True)
class Context:
    """What the judge knows beyond the call: which system lines of the call's prompt family
    vary across the recording, and the recording's day (a "now" stamp)."""

    varying_lines: frozenset[str] = frozenset()
    today: str | None = None


def _may_move_to_user(line: str, context: Context) -> bool:
    if not is_volatile(line):
        return False
    if line in context.varying_lines:
        return True
    stamps = {m[0] for m in DAY_LEVEL.finditer(line)} | {m[1] for m in ISO_DATETIME.finditer(line)}
    return context.today is not None and context.today in stamps


def judge(
    client: dict[str, Any],
    upstream: dict[str, Any],
    rewrites: set[str],
    context: Context,
    anthropic: bool,
) -> Verdict:
    verdict = Verdict()
    one_part = _string_is_one_part(client, anthropic)
    normal_client = _normalized(client, rewrites, one_part)
    normal_upstream = _normalized(upstream, rewrites, one_part)
    if normal_client != normal_upstream:
        difference = _first_difference(normal_client, normal_upstream)
        verdict.unexplained.append(f"not by {sorted(rewrites) or 'any rule'}: {difference}")
    before, after = lines_by_role(client), lines_by_role(upstream)
    everything_before = sum(before.values(), Counter())
    everything_after = sum(after.values(), Counter())
    moved = rewrites & set(MOVE_RULES)
    if moved and "timestamp_truncated" not in rewrites and everything_before != everything_after:
        gone = list((everything_before - everything_after).elements())[:2]
        new = list((everything_after - everything_before).elements())[:2]
        verdict.unexplained.append(f"lines not just moved: -{gone} +{new}")
    for line in (before["system"] - after["system"]).elements():
        if after["user"][line] > before["user"][line]:
            kind = "a static dated line" if is_volatile(line) else "a line"
            if not _may_move_to_user(line, context):
                verdict.role_changes.append(f"{kind} went from system to user: {line[:80]!r}")
    _structure(client, upstream, verdict, one_part)
    return verdict


def _string_is_one_part(body: dict[str, Any], anthropic: bool) -> bool:
    """Anthropic Messages and Chat Completions read a string content as one text part."""
    return anthropic or "messages" in body


def _structure(
    client: dict[str, Any], upstream: dict[str, Any], verdict: Verdict, anthropic: bool
) -> None:
    before, after = skeleton(client, anthropic), skeleton(upstream, anthropic)
    if len(after) == len(before) and after[-1:] != before[-1:]:
        # The moved dates' own text part at the end of the newest user turn is allowed.
        last_before, last_after = before[-1], after[-1]
        if (
            isinstance(last_before, tuple)
            and isinstance(last_after, tuple)
            and isinstance(last_before[2], list)
            and last_after[2][: len(last_before[2])] == last_before[2]
            and len(last_after[2]) == len(last_before[2]) + 1
            and last_after[2][-1] in TEXT_PARTS
        ):
            after = [*after[:-1], last_before]
    elif len(after) == len(before) + 1 and _dates_alone(conversation(upstream)[-1:]):
        # Or, where no user part could take them, the dates as a user message of their own.
        after = after[:-1]
    if before != after:
        verdict.structure_changes.append(f"structure: {_first_difference(before, after)}")
    enclosed = sections_of(system_texts(client))
    kept = sections_of(system_texts(upstream))
    for line, tag in enclosed.items():
        if kept.get(line) != tag and line.strip():
            verdict.structure_changes.append(f"lifted out of <{tag}>: {line[:80]!r}")
            break


def _dates_alone(messages: list[Any]) -> bool:
    if not messages or not isinstance(messages[0], dict) or messages[0].get("role") != "user":
        return False
    lines = [line for text in _texts(messages[0].get("content")) for line in _lines(text)]
    return bool(lines) and all(map(is_volatile, lines))


def varying_system_lines(bodies: Iterable[dict[str, Any]]) -> frozenset[str]:
    """System lines that are not in every call of their prompt family (its tools and first
    system line, as the gateway keys a family)."""
    families: dict[Any, list[set[str]]] = {}
    for body in bodies:
        lines = [line for text in system_texts(body) for line in _lines(text)]
        first = next((line for line in lines if not is_volatile(line)), "")
        tools = tuple(str(t.get("name")) for t in body.get("tools") or () if isinstance(t, dict))
        families.setdefault((tools, first), []).append(set(lines))
    varying: set[str] = set()
    for seen in families.values():
        varying |= set.union(*seen) - set.intersection(*seen)
    return frozenset(varying)
