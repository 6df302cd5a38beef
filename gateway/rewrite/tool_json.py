"""Tool definitions in one byte-stable form: the first form the gateway saw of each.

The provider's cache key covers the tools' bytes, so a client that serializes the same
tools with keys or tools in another order (Go maps, Swift dictionaries, set iteration)
misses every time. Equal tools (equal as JSON values) are sent in their first-seen form
and, for the same set of tools, in the first-seen order (kept per tenant by the cache,
cache/tool_forms.py, from the `ToolsSeen` this stage reports).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import accumulate, repeat
from typing import Any

import orjson

from gateway.rewrite import digest
from gateway.rewrite.memo import MIN_CHARS, CallMemo, call_memo, derived
from gateway.rewrite.request import Finding, LLMRequest, Rewrite, evolve
from gateway.rewrite.snapshot import MemoView, ToolsSeen, ToolsView

RULE = "tool_json"


def identity(tool: Any) -> bytes:
    """A tool as a JSON value: the same whatever its keys' order."""
    return hashlib.blake2b(orjson.dumps(tool, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _identity(tool: Any, sent: bytes, memo: CallMemo | None) -> bytes:
    """`identity`, looked up by the bytes sent where an earlier call sent the same (a client
    sends the same bytes every turn: sorting and hashing them is ~80 us for Claude Code's).
    Found by the bytes' content digest, and taken only where the bytes kept with it are the
    same: a digest keys the lookup (xxh3: ~5 us over Claude Code's 81 KB of tools, where the
    bytes' own hash took ~40), never the answer."""
    if memo is None or len(sent) < MIN_CHARS:
        return identity(tool)
    key = ("tool", digest.content(sent))
    found: tuple[bytes, bytes] | None = memo.get(key)
    if found is not None and found[0] == sent:
        return found[1]
    new = identity(tool)
    # A copy of its exact size: orjson's output keeps the buffer it grew.
    memo.keep(key, (bytes(memoryview(sent)), new), len(sent))
    return new


@dataclass(frozen=True, slots=True)
class Sent:
    """The tools as sent: each tool's bytes (slices of the array's) and identity, the array's
    bytes, the set of identities (its hash computed once, for the order's lookup) and whether
    a tool holds a breakpoint. A pure function of the tools' value."""

    tools: tuple[bytes, ...]
    identities: tuple[bytes, ...]
    whole: bytes
    ids: frozenset[bytes]
    marked: bool

    @classmethod
    def of(cls, tools: list[Any], sent: list[bytes], identities: list[bytes], whole: bytes) -> Sent:
        marked = any("cache_control" in tool for tool in tools)
        return cls(tuple(sent), tuple(identities), whole, frozenset(identities), marked)

    def kept(self) -> Sent:
        """This, its bytes copied to their exact size (orjson's output keeps the buffer it
        grew), as the memo keeps it: with the tools list (about its JSON bytes), the array's
        bytes and the tools' slices of them, 3x the array's bytes."""
        whole = bytes(memoryview(self.whole))
        ends = list(accumulate(len(raw) + 1 for raw in self.tools))
        tools = tuple(
            whole[end - len(raw) : end] for raw, end in zip(self.tools, ends, strict=True)
        )
        return Sent(tools, self.identities, whole, self.ids, self.marked)


_DICT = repeat(dict)
SAME = "tool_json.tools"  # the memo's kind for what was derived from a tools list (get_same)
FORMS = "tool_json.forms"  # and for the list sent in its place (forms first seen)
CANONICAL = "tool_json.canonical"  # and for `canonical`'s answer, by the tools as sent


def _sent(tools: list[Any], memo: CallMemo | None) -> tuple[Sent, bool]:
    """`_sent_anew`, found by the identity of the tools list where an earlier accepted call
    sent this very list (a body that repeats an earlier one's bytes shares its parsed
    objects: one lookup, where the array's bytes cost a dumps and a digest of 81 KB for
    Claude Code's); and whether it was (the memo's own Sent, which lasts)."""
    if memo is None:
        return _sent_anew(tools, None), False
    found: Sent | None = memo.get_same(SAME, tools)
    if found is not None:
        return found, True
    sent = _sent_anew(tools, memo)
    memo.keep_same(SAME, tools, sent.kept(), 3 * len(sent.whole) + 40 * len(sent.tools))
    return sent, False


def _sent_anew(tools: list[Any], memo: CallMemo | None) -> Sent:
    """Each tool's bytes and identity, looked up for the whole array where an earlier call
    sent the same (one dumps and one digest of Claude Code's 81 KB of tools, where each tool's
    own took ~100 us of 24 dumps, digests and lookups). The kept value is (the array's bytes,
    the identities, where each tool's bytes end in them), taken only where those bytes are
    the same; each tool's by its own bytes where the array is new."""
    if memo is None:
        sent = [orjson.dumps(tool) for tool in tools]
        identities = [identity(tool) for tool in tools]
        return Sent.of(tools, sent, identities, b"[" + b",".join(sent) + b"]")
    whole = orjson.dumps(tools)
    if len(whole) < MIN_CHARS:  # deriving costs less than a lookup
        sent = [orjson.dumps(tool) for tool in tools]
        return Sent.of(tools, sent, [identity(tool) for tool in tools], whole)
    key = ("tools", digest.content(whole))
    found: tuple[bytes, tuple[bytes, ...], tuple[int, ...]] | None = memo.get(key)
    if found is not None and found[0] == whole:
        starts = [1, *(end + 1 for end in found[2][:-1])]
        sent = [whole[a:b] for a, b in zip(starts, found[2], strict=True)]
        return Sent.of(tools, sent, list(found[1]), whole)
    sent = [orjson.dumps(tool) for tool in tools]
    identities = [_identity(tool, raw, memo) for tool, raw in zip(tools, sent, strict=True)]
    ends: list[int] = []
    at = 0
    for raw in sent:  # the array's bytes: "[" + each tool's joined by "," + "]"
        at += 1 + len(raw)
        ends.append(at)
    kept = (bytes(memoryview(whole)), tuple(identities), tuple(ends))
    memo.keep(key, kept, len(whole) + 40 * len(sent))
    return Sent.of(tools, sent, identities, whole)


def canonical(
    tenant: bytes, tools: list[Any], known: ToolsView, memo: CallMemo | None = None
) -> tuple[list[Any], ToolsSeen | None, Sent]:
    """The tools in their first-seen form and order (the same list if already so; for the
    same list and forms, the same list as the call before), what was new in them (None:
    nothing), and the tools as sent. Where an earlier accepted call sent this very list and
    the learned forms and orders have not changed since (`ToolForms.version`), its answer,
    kept by the tools as sent (one lookup, where each tool's form was one: 24 for Claude
    Code's)."""
    sent, held = _sent(tools, memo)
    version = getattr(known, "version", None)
    if memo is None or version is None or not held:
        return _canonical(tenant, tools, known, memo, sent)
    now = version()
    found: tuple[object, list[Any] | None, ToolsSeen | None] | None = memo.get_same(CANONICAL, sent)
    if found is not None and found[0] == now:
        return (tools if found[1] is None else found[1]), found[2], sent
    forms, seen, _ = _canonical(tenant, tools, known, memo, sent)
    # Holds the Sent (3x the array's bytes) and the list sent in its place, if any (as
    # _forms' entry holds it), where their own entries are gone.
    rewritten = None if forms is tools else forms
    size = (3 if rewritten is None else 6) * len(sent.whole) + 64 * len(tools)
    memo.keep_same(CANONICAL, sent, (now, rewritten, seen), size)
    return forms, seen, sent


def _canonical(
    tenant: bytes, tools: list[Any], known: ToolsView, memo: CallMemo | None, sent: Sent
) -> tuple[list[Any], ToolsSeen | None, Sent]:
    identities = sent.identities
    forms = [known.form(tenant, i) for i in identities]
    new = tuple(
        (i, b) for i, b, form in zip(identities, sent.tools, forms, strict=True) if form is None
    )
    order, new_order = identities, None
    if len(identities) > 1:  # one tool has one order: nothing to remember
        first = known.order(tenant, sent.ids)
        if first is None:
            new_order = order
        else:
            order = first
    seen = ToolsSeen(tenant, new, new_order) if new or new_order else None
    if len(order) != len(identities):
        return tools, seen, sent  # the same tool twice: leave it to the provider to reject
    by_identity = {
        i: form or fresh for i, form, fresh in zip(identities, forms, sent.tools, strict=True)
    }
    wanted = tuple([by_identity[i] for i in order])
    return (tools if wanted == sent.tools else _forms(tools, wanted, memo)), seen, sent


def _forms(tools: list[Any], wanted: tuple[bytes, ...], memo: CallMemo | None) -> list[Any]:
    """The tools sent in place of `tools`: `wanted` parsed, the same list as the call before
    where these tools and forms were (kept by the tools list's identity, with the forms)."""
    if memo is not None:
        found: tuple[tuple[bytes, ...], list[Any]] | None = memo.get_same(FORMS, tools)
        if found is not None and found[0] == wanted:
            return found[1]
    forms = [orjson.loads(form) for form in wanted]
    if memo is not None:
        memo.keep_same(FORMS, tools, (wanted, forms), 3 * sum(map(len, wanted)))
    return forms


def stable_tool_json(
    request: LLMRequest, known: ToolsView, enabled: bool, view: MemoView | None = None
) -> LLMRequest:
    tools = request.body.get("tools")
    # Each a dict, tested in C (a generator's frame a tool: ~12 bytecodes each).
    if not isinstance(tools, list) or not tools or not all(map(isinstance, tools, _DICT)):
        return request
    memo = call_memo(view, request.tenant)
    forms, seen, sent = canonical(request.tenant, tools, known, memo)
    # What it saw, then what the memo kept (memo.py's `observed`), in the one new request.
    observations = request.observations + ((seen,) if seen is not None else ()) + derived(memo)
    if forms is not tools and enabled:
        rewrite = Rewrite(RULE, "tools in their first-seen key order and order")
        return evolve(
            request,
            body={**request.body, "tools": forms},
            rewrites=(*request.rewrites, rewrite),
            changed=True,
            findings=(*request.findings, _unstable(tools)),
            observations=observations,
        )
    prompt_tools = _prompt_tools(request, sent)
    findings = request.findings if forms is tools else (*request.findings, _unstable(tools))
    if (
        prompt_tools is request.prompt_tools
        and findings is request.findings
        and observations is request.observations
    ):
        return request
    return evolve(request, prompt_tools=prompt_tools, findings=findings, observations=observations)


def _unstable(tools: list[Any]) -> Finding:
    return Finding("unstable_tool_json", f"{len(tools)} tools re-serialized")


def _prompt_tools(request: LLMRequest, sent: Sent) -> bytes | None:
    """The tools' bytes as the family and fingerprint take them (fingerprint.unmarked:
    without breakpoints), where this stage has them and the body's tools stay as sent: an
    Anthropic body's tools, none with a breakpoint (unmarked's bytes are then the array's,
    and the volatile rule need not dump 81 KB of Claude Code's tools again). An OpenAI
    body's are reshaped first (openai_text.prompt_tools); else the request's own."""
    if request.provider != "anthropic" or request.prompt_tools is not None or sent.marked:
        return request.prompt_tools
    return sent.whole
