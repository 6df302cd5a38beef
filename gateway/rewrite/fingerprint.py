"""A request's prompt, reduced to what decides its cache hits: one digest per layer.

The prefix registry compares a request with the previous one of its conversation layer
by layer, to say why the cache missed. Digests are of the bytes as sent (after the
rewrites), because the provider's cache key is the bytes: each block serialized and
digested (digest.py's `content`: xxh3, ~0.03 us a KB), the digests chained. One full pass
costs less than looking each block up in the memo by its value did (a walk of each block
into a key, and the key's hash: ~280 -> ~90 us on a 340 KB Claude Code turn). A message or
system list the body shares with an earlier accepted call's parse (the same object, as
prefix reuse makes them) is found by its identity instead: one lookup (memo.py's
`get_same`), whatever its size.
"""

from __future__ import annotations

import functools
from itertools import chain, compress
from operator import is_not
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from gateway.rewrite import digest, walk
from gateway.rewrite.family import family_of as family_of
from gateway.rewrite.family import prefix
from gateway.rewrite.family import prompt_family as prompt_family
from gateway.rewrite.family import unmarked as unmarked
from gateway.rewrite.memo import MIN_CHARS
from gateway.rewrite.walk import Walked

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo

# memo.py's kind: what a call's messages were found to be (by identity).
RUN = "fingerprint.run"
# A run's bytes a message beside the messages' own: its chain and first digests (16-byte
# bytes objects, ~50 bytes each), its size and marks, and a slot in each tuple.
_RUN_BYTES = 160
_flat = chain.from_iterable


class Fingerprint(NamedTuple):
    """A tuple: a frozen dataclass's __init__ cost ~3 us of a 1 KB body's audit."""

    family: bytes  # prompt_family: tenant, tools and the stable system blocks
    # The conversation's first message: it survives a change of model, tools or system, so
    # the next turn is still compared with this one and the changed layer can be named.
    conversation: bytes
    model: str
    tools: bytes
    system: bytes  # the stable system blocks only
    messages: tuple[bytes, ...]  # cumulative: messages[i] covers messages 0..i
    # The prefix through the breakpoint before the last one: what parallel calls that
    # differ only in their newest block (a fan-out's question) have in common.
    shared: bytes
    prompt_tokens: int  # estimated, for the minimum-length check
    tenant: bytes = b""  # who called (a credential's digest): whose learned state it is


def conversation_of(body: dict[str, Any], tenant: bytes, memo: CallMemo | None = None) -> bytes:
    """Who calls and the conversation's first block: the same every turn of it."""
    for message in body.get("messages") or ():
        first = walk.walked(message, b"", memo).first
        if first:
            return _conversation(tenant, first)
    return _conversation(tenant, b"")


# The tenant's digests of a family and of a conversation, kept for the calls that repeat
# them (every turn of a conversation, every call of a family): a keyed blake2b's ~0.6 us
# against a lookup's ~0.1. Keys of a credential's 8-byte digest and digests of 16 or 32
# bytes: a few hundred bytes an entry, least recently used out.
_owned = functools.lru_cache(maxsize=1024)(digest.owned)
# The digest of an empty list's bytes: tools or system blocks that are not there.
_NONE = digest.content(b"[]")


def _conversation(tenant: bytes, first: bytes) -> bytes:
    return _owned(tenant, first)


def short(sent: list[Any]) -> bool:
    """A conversation of one or two short strings (a 1 KB body's): no run kept or looked up."""
    if len(sent) > 2:
        return False
    for message in sent:  # `_small` of each, inline: no generator, no call (~0.34 -> ~0.15 us)
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or len(content) >= MIN_CHARS:
            return False
    return True


class Run(NamedTuple):
    """The messages of an accepted call as the chain walked them, a value a message: kept by
    the identity of its first message, so a turn that sends the same objects (prefix reuse)
    takes their places in the chain a stretch at a time (a slice), not one a message."""

    family: bytes  # the chain before the first message
    messages: tuple[Any, ...]
    chains: tuple[bytes, ...]  # the chain after each message
    sizes: tuple[int, ...]  # each message's bytes
    marks: tuple[tuple[bytes, ...], ...]  # each message's breakpoints' chains
    firsts: tuple[bytes, ...]  # each message's first block's digest


def _parted(run: Run, sent: list[Any]) -> list[int]:
    """The places where `sent` holds another object than the run, in the messages both
    have: compared in C (`map`, `compress`), however long the conversation."""
    return list(compress(range(len(sent)), map(is_not, run.messages, sent)))


def _chained(sent: Any, family: bytes) -> tuple[list[bytes], tuple[bytes, ...], bytes, int]:
    """(the chain after each message, the last two breakpoints' chains, the first block's
    digest, the messages' bytes), every message serialized."""
    chains: list[bytes] = []
    tail: tuple[bytes, ...] = (family,)
    first, total, chain = b"", 0, family
    for message in sent:
        walked = walk.walked(message, chain, None)
        chain = walked.after
        chains.append(chain)
        tail = (*tail, *walked.marks)[-2:] if walked.marks else tail
        first = first or walked.first
        total += walked.size
    return chains, tail, first, total


def _chained_short(
    sent: list[Any], family: bytes
) -> tuple[list[bytes], tuple[bytes, ...], bytes, int]:
    """`_chained` of messages of one short string each (`short`), as `walk.walked` has them:
    the string a text block without a breakpoint (~1.5 -> ~0.7 us for a question)."""
    content = digest.content
    chains: list[bytes] = []
    first, total, chain = b"", 0, family
    for message in sent:
        raw = orjson.dumps({"type": "text", "text": message["content"]})
        own = content(raw)
        chain = content(content(chain + str(message.get("role")).encode()) + own)
        chains.append(chain)
        first = first or own
        total += len(raw)
    return chains, (family,), first, total


class _Chain:
    """The chain `_chained_shared` builds: a value a message, as `Run` keeps them."""

    __slots__ = ("chains", "firsts", "marks", "sizes")

    def __init__(self) -> None:
        self.chains: list[bytes] = []
        self.sizes: list[int] = []
        self.marks: list[tuple[bytes, ...]] = []
        self.firsts: list[bytes] = []

    def add(self, walked: Walked) -> bytes:
        self.chains.append(walked.after)
        self.sizes.append(walked.size)
        self.marks.append(walked.marks)
        self.firsts.append(walked.first)
        return walked.after

    def put(self, after: bytes, size: int, marks: tuple[bytes, ...], first: bytes) -> bytes:
        self.chains.append(after)
        self.sizes.append(size)
        self.marks.append(marks)
        self.firsts.append(first)
        return after

    def run(self, family: bytes, sent: list[Any]) -> Run:
        chains, sizes, marks, firsts = self.chains, self.sizes, self.marks, self.firsts
        return Run(family, tuple(sent), tuple(chains), tuple(sizes), tuple(marks), tuple(firsts))

    def take(self, run: Run, start: int, end: int) -> bytes:
        """The run's places `start` to `end`: the same objects after the same chain."""
        self.chains += run.chains[start:end]
        self.sizes += run.sizes[start:end]
        self.marks += run.marks[start:end]
        self.firsts += run.firsts[start:end]
        return run.chains[end - 1]


def _chained_shared(
    sent: list[Any], family: bytes, memo: CallMemo
) -> tuple[list[bytes], tuple[bytes, ...], bytes, int]:
    """`_chained`, each stretch of messages an accepted call sent as these objects after the
    same chain taken from its run (`Run`), each other message found by identity where it was
    kept alone: the Python work is the messages that differ from the run's, or follow it."""
    made = _Chain()
    chain = family
    run: Run | None = memo.get_same(RUN, sent[0]) if sent else None  # type: ignore[assignment]
    at = 0  # the first message not yet in `made`
    if run is not None and run.family == family:
        kept, chains = run.messages, run.chains
        common = min(len(kept), len(sent))
        parted = _parted(run, sent)
        for part in (*parted, common):
            if at < part:  # the same objects as the run's from `at`
                if (chains[at - 1] if at else family) == chain:
                    chain = made.take(run, at, part)
                else:  # an earlier message parted the chains: each walked or found alone
                    for message in sent[at:part]:
                        chain = made.add(walk.walked(message, chain, memo))
            if part == common:
                at = part
                break
            # Where the run and `sent` part, the run's place again after the same chain: a
            # breakpoint the client's turn moved, or the gateway's, parts them for a message.
            marks = None
            if (chains[part - 1] if part else family) == chain:
                marks = walk.again(kept[part], sent[part], run.marks[part], chains[part])
            if marks is None:
                chain = made.add(walk.walked(sent[part], chain, memo))
            else:
                chain = made.put(chains[part], run.sizes[part], marks, run.firsts[part])
            at = part + 1
        changed = bool(parted) or len(kept) != len(sent)
    else:
        changed = True
    for message in sent[at:]:
        chain = made.add(walk.walked(message, chain, memo))
    total = sum(made.sizes)
    marked = list(filter(None, made.marks))  # the messages with breakpoints: the last two's
    tail = (family, *_flat(marked[-2:]))[-2:]
    first = next(filter(None, made.firsts), b"")
    if sent and changed:
        memo.keep_same(RUN, sent[0], made.run(family, sent), _RUN_BYTES * len(sent) + total)
    return made.chains, tail, first, total


def fingerprint(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    chars_per_token: float,
    tenant: bytes = b"",
    tools: bytes | None = None,
    memo: CallMemo | None = None,
    own_system: bool = True,
) -> Fingerprint:
    """`tools`: the tools' bytes without their breakpoints, where a stage has them already.
    `memo`: where the parts this body shares with an earlier accepted call's are found;
    `own_system`: as family.py's `prefix` has it."""
    if not body.get("system") and (tools is not None or not body.get("tools")):
        # `prefix` of no system prompt (and no tools but those given): "[]" for each one
        # missing, and nothing the memo could hold (~0.9 -> ~0.1 us)
        tools_digest = _NONE if tools is None else digest.content(tools)
        stable_digest, size = _NONE, (2 if tools is None else len(tools)) + 2
    else:
        tools_digest, stable_digest, size = prefix(
            body, stable_system_blocks, tools, memo, own_system
        )
    family = _owned(tenant, tools_digest + stable_digest)
    sent = body.get("messages") or []
    if isinstance(sent, list) and short(sent):
        chains, tail, first, total = _chained_short(sent, family)
    elif memo is None or not isinstance(sent, list):
        chains, tail, first, total = _chained(sent, family)
    else:
        chains, tail, first, total = _chained_shared(sent, family, memo)
    return Fingerprint(
        family=family,
        conversation=_conversation(tenant, first),
        model=str(body.get("model")),
        tools=tools_digest,
        system=stable_digest,
        messages=tuple(chains),
        shared=tail[0],
        prompt_tokens=int((size + total) / chars_per_token),
        tenant=tenant,
    )
