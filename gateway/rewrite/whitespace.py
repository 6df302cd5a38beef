"""Invisible whitespace made canonical, identically on every request.

Line endings become `\\n`, trailing spaces and tabs go, and so do blank lines at the
start and end of each text. History that a client resends is rewritten the same way
each time, so the prefix the provider hashed last turn is the prefix it sees now.
"""

from __future__ import annotations

from typing import cast

from gateway.rewrite import digest, openai_text
from gateway.rewrite.memo import MIN_CHARS, CallMemo, call_memo, chars, observed
from gateway.rewrite.request import Finding, LLMRequest, Rewrite
from gateway.rewrite.snapshot import MemoView
from gateway.rewrite.text import TextEdit, edit_messages, edit_system, edit_tools

RULE = "whitespace"


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
        found = cast("tuple[str, str | None] | None", memo.get(key))
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


def whitespace(request: LLMRequest, enabled: bool, view: MemoView | None = None) -> LLMRequest:
    memo = call_memo(view, request.tenant)
    edit = _edit if memo is None else _REMEMBERED(memo)
    return observed(memo, _whitespace(request, enabled, edit))


def _whitespace(request: LLMRequest, enabled: bool, edit: TextEdit) -> LLMRequest:
    body = request.body
    system = edit_system(body.get("system"), edit)
    tools = edit_tools(body.get("tools"), edit)
    messages = edit_messages(body.get("messages"), edit)
    changed = [
        name
        for name, new in (("system", system), ("tools", tools), ("messages", messages))
        if new != body.get(name)
    ]
    if not changed:
        return request
    finding = Finding("whitespace_drift", ", ".join(changed))
    if not enabled:
        return request.noting(finding)
    new_body = {**body, "system": system, "tools": tools, "messages": messages}
    for name in ("system", "tools"):
        if name not in body:
            del new_body[name]
    return request.with_body(new_body, Rewrite(RULE, ", ".join(changed))).noting(finding)


def whitespace_openai(
    request: LLMRequest, enabled: bool, view: MemoView | None = None
) -> LLMRequest:
    """The same rule on an OpenAI body: instructions, messages or input items, tool
    descriptions."""
    memo = call_memo(view, request.tenant)
    edit = _edit if memo is None else _REMEMBERED(memo)
    return observed(memo, _whitespace_openai(request, enabled, edit))


def _whitespace_openai(request: LLMRequest, enabled: bool, edit: TextEdit) -> LLMRequest:
    body = request.body
    key = openai_text.items_key(body)
    fields = {
        "instructions": openai_text.edit_content(body.get("instructions"), edit),
        "tools": openai_text.edit_tools(body.get("tools"), edit),
        key: openai_text.edit_items(body.get(key), edit),
    }
    changed = [name for name, new in fields.items() if new is not body.get(name)]
    if not changed:
        return request
    finding = Finding("whitespace_drift", ", ".join(changed))
    if not enabled:
        return request.noting(finding)
    new_body = {**body, **{name: fields[name] for name in changed}}
    return request.with_body(new_body, Rewrite(RULE, ", ".join(changed))).noting(finding)
