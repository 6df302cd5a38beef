"""Invisible whitespace made canonical, identically on every request.

Line endings become `\\n`, trailing spaces and tabs go, and so do blank lines at the
start and end of each text. History that a client resends is rewritten the same way
each time, so the prefix the provider hashed last turn is the prefix it sees now.
"""

from __future__ import annotations

import functools
from itertools import compress, count
from operator import is_not
from typing import Any, NamedTuple

from gateway.rewrite import digest, openai_text, text
from gateway.rewrite.memo import MIN_CHARS, CallMemo, call_memo, chars, derived, observed
from gateway.rewrite.request import Finding, LLMRequest, Rewrite, evolve
from gateway.rewrite.snapshot import MemoView
from gateway.rewrite.text import FIELDS, PartEdit, TextEdit, TextField

RULE = "whitespace"
RUN = ".run"  # the memo's kind for a list field's `ItemsRun`, after the field's own
# What a kept item and its canonical form add to a run beside their texts: references, an end.
RUN_BYTES = 32
# A list of at most this many short texts is walked, not looked up.
SHORT_ITEMS = 8


def canonical_whitespace(text: str) -> str:
    if "\n" not in text and "\r" not in text:  # one line (one memchr each): its end only
        return text.rstrip(" \t")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # "\t" first: one memchr, where a needle ending in "\n" stops at every line (241 -> 4 us
    # over a 340 KB body's texts).
    if " \n" in text or ("\t" in text and "\t\n" in text):
        text = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
    text = text.rstrip(" \t\n")
    lead = len(text) - len(text.lstrip(" \t\n"))
    # Blank lines before the first text go; that line's own indentation stays.
    return text[text.rfind("\n", 0, lead) + 1 :] if lead else text


def _edit(text: str) -> str:
    # A text that is only whitespace is the provider's to reject, not ours to empty.
    return canonical_whitespace(text) or text


def _remembered(memo: CallMemo) -> TextEdit:
    """`_edit`, looked up for a long text an earlier turn sent too. Found by the content
    digest of an ASCII text's bytes and taken only where the text kept with it is the same
    (a digest keys the lookup, never the answer): the copy and xxh3 cost ~25 us over Claude
    Code's 220 KB of long ASCII texts where the built-in hash of each (a fresh parse's, so
    never cached) costs ~70, and the scans ~390. A text of one
    line is edited, not looked up: two memchr scans prove it needs at most its end trimmed.
    (Tried: one lookup a message by its orjson bytes; slower, as a message whose text the
    rule changes must be walked again.)"""

    def edit(text: str) -> str:
        if len(text) < MIN_CHARS or ("\n" not in text and "\r" not in text):
            return _edit(text)
        # An ASCII text's bytes are a copy (~25 us over 220 KB); a wider text's a transcoding
        # that costs more than the built-in hash: it is keyed by itself.
        key = (RULE, digest.content(text.encode("ascii")) if text.isascii() else text)
        found: tuple[str, str | None] | None = memo.get(key)
        if found is not None and found[0] == text:
            return text if found[1] is None else found[1]
        new = _edit(text)
        size = chars(text) + (0 if new is text else chars(new))
        memo.keep(key, (text, None if new is text else new), size)
        return new

    return edit


def _remembered_by_text(memo: CallMemo) -> TextEdit:
    """`_remembered` keyed by the text itself, where the content digest is blake2b's (~0.7 us
    a KB, slower than the built-in hash)."""

    def edit(text: str) -> str:
        if len(text) < MIN_CHARS or ("\n" not in text and "\r" not in text):
            return _edit(text)
        key = (RULE, text)
        found = memo.get(key)
        if found is None:
            new = _edit(text)
            found = True if new is text else new
            memo.keep(key, found, chars(text) + (0 if new is text else chars(new)))
        return text if found is True else str(found)

    return edit


_REMEMBERED = _remembered if digest.ALGORITHM == "xxh3" else _remembered_by_text


class ItemsRun(NamedTuple):
    """The items of a list field an accepted call sent and their canonical forms (`out`,
    the list that call's rule returned), a pure function of each item's value; `edited`:
    the index of the first item the rule changed (len(items) where none); `ends`: the bytes
    held through each item, itself and its canonical form."""

    items: tuple[Any, ...]
    out: list[Any]
    edited: int
    ends: tuple[int, ...]


class SameParts:
    """A call's canonical parts, each found by the identity of the part an earlier accepted
    call sent (rewrite/memo.py's `get_same`): a body whose bytes repeat an earlier call's
    shares its parsed objects, so a resent part costs a lookup, not a walk over its text,
    and comes back as the very object the earlier call's did (the stages after this one,
    and the serializer, see shared objects too). A list field (the messages) is one
    `ItemsRun`, kept by its first item's identity: a turn shares the previous turn's items
    up to some point (prefix reuse), so their canonical forms are that run's, and only the
    items after them are edited with `edit` (the texts' value-keyed lookups, `_remembered`).
    A part taken whole (the system prompt, the tools) is kept as (the part edited, the bytes
    it and the part hold): a pure function of the part's value."""

    __slots__ = ("_edit", "_memo")

    def __init__(self, memo: CallMemo, edit: TextEdit) -> None:
        self._memo = memo
        self._edit = edit

    def field(self, field: TextField, value: Any) -> Any:
        if field.item is not None and isinstance(value, list):
            return self._items(field, value)
        if isinstance(value, list | dict) or (isinstance(value, str) and len(value) >= MIN_CHARS):
            return self._one(field.kind, value, field.edit)[0]
        return field.edit(value, self._edit)  # a short text: editing costs less than a lookup

    def _one(self, kind: str, part: Any, edit: PartEdit) -> tuple[Any, int]:
        found: tuple[Any, int] | None = self._memo.get_same(kind, part)
        if found is not None:
            return found
        new = edit(part, self._edit)
        held = text.held(part)
        kept = (new, held if new is part else 2 * held)  # an edit only shortens a text
        if new is not part or held >= MIN_CHARS:  # else walking it costs less than keeping it
            self._memo.keep_same(kind, part, kept, kept[1])
        return kept

    def _items(self, field: TextField, items: list[Any]) -> list[Any]:
        # A few short texts (a small app's question): walked, as that costs less than a
        # lookup and an entry.
        short = len(items) <= SHORT_ITEMS and all(map(_short, items))
        walked = short and field.edit(items, self._edit) is items
        if walked:
            return items
        kind = field.kind + RUN
        run: ItemsRun | None = self._memo.get_same(kind, items[0])
        same = 0
        if run is not None:
            # The first item that is not the run's own object (a new one, or past its end).
            same = next(compress(count(), map(is_not, run.items, items)), len(run.items))
            same = min(same, len(items))
            if same == len(items) == len(run.items):
                return items if run.edited == same else run.out
        edit = field.item
        assert edit is not None  # `field` took this list for it
        if same:
            assert run is not None
            out, ends = run.out[:same], list(run.ends[:same])
            edited = run.edited if run.edited < same else len(items)
        else:
            out, ends, edited = [], [], len(items)
        total = ends[-1] if ends else 0
        for at in range(same, len(items)):
            item = items[at]
            new = edit(item, self._edit)
            held = text.held(item)
            if new is not item:
                held *= 2  # an edit only shortens a text
                edited = min(edited, at)
            total += held + RUN_BYTES
            out.append(new)
            ends.append(total)
        if edited >= len(items):
            out, edited = items, len(items)
        kept = ItemsRun(tuple(items), out, edited, tuple(ends))
        self._memo.keep_same(kind, items[0], kept, total + RUN_BYTES)
        return out


def _short(item: Any) -> bool:
    """A message or item of one short text (a string content)."""
    content = item.get("content") if type(item) is dict else None
    return type(content) is str and len(content) < MIN_CHARS


def whitespace(request: LLMRequest, enabled: bool, view: MemoView | None = None) -> LLMRequest:
    return _rule(request, enabled, view, FIELDS)


def whitespace_openai(
    request: LLMRequest, enabled: bool, view: MemoView | None = None
) -> LLMRequest:
    """The same rule on an OpenAI body: instructions, messages or input items, tool
    descriptions."""
    return _rule(request, enabled, view, openai_text.fields(request.body))


def _rule(
    request: LLMRequest, enabled: bool, view: MemoView | None, fields: tuple[TextField, ...]
) -> LLMRequest:
    memo = call_memo(view, request.tenant)
    body = request.body
    same = None if memo is None else SameParts(memo, _REMEMBERED(memo))
    changed: dict[str, Any] = {}  # each field the rule changed, in the fields' order
    for f in fields:  # one loop, where a comprehension, a generator and another were three
        name = f.name
        if name in body:
            value = body[name]
            new = f.edit(value, _edit) if same is None else same.field(f, value)
            if new is not value:
                changed[name] = new
    if not changed:
        return observed(memo, request)
    finding, rewrite = _noted(tuple(changed))
    findings = (*request.findings, finding)
    observations = request.observations + derived(memo)
    if not enabled:  # `observed(memo, request.noting(finding))` in one new request
        return evolve(request, findings=findings, observations=observations)
    new_body = {**body, **changed}
    # `observed(memo, request.with_body(new_body, rewrite).noting(finding))` in one
    return evolve(
        request,
        body=new_body,
        rewrites=(*request.rewrites, rewrite),
        changed=True,
        findings=findings,
        observations=observations,
    )


@functools.lru_cache(maxsize=64)  # the names of some of a wire's few fields: a handful of keys
def _noted(changed: tuple[str, ...]) -> tuple[Finding, Rewrite]:
    names = ", ".join(changed)
    return Finding("whitespace_drift", names), Rewrite(RULE, names)
