"""A turn's messages in the fingerprint's digest chain, taken from the run an earlier accepted
call kept: agents resend the conversation each turn, and prefix reuse hands the messages it
shares with the previous turn on as the same objects, so a turn's walk is of the messages it
added, and of those a breakpoint parted from the previous turn's copies (walk.py's `again`).
"""

from __future__ import annotations

from itertools import chain, compress
from operator import is_not
from typing import TYPE_CHECKING, Any, NamedTuple

from gateway.rewrite import walk
from gateway.rewrite.walk import Walked

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo

# memo.py's kind: what a call's messages were found to be (by identity).
RUN = "fingerprint.run"
# memo.py's kind: a conversation's second message (by identity) to the id of the first
# message its run is kept by (`_found`). An int: the entry keeps no message alive.
LINK = "fingerprint.link"
_LINK_BYTES = 64
# A run's bytes a message beside the messages' own: its chain and first digests (16-byte
# bytes objects, ~50 bytes each), its size and marks, and a slot in each tuple.
_RUN_BYTES = 160
_flat = chain.from_iterable


class Run(NamedTuple):
    """The messages of an accepted call as the chain walked them, a value a message, and the
    chain's totals: kept by the identity of its first message, so a turn that sends the same
    objects (prefix reuse) takes their places in the chain a stretch at a time (a slice), not
    one a message."""

    family: bytes  # the chain before the first message
    messages: tuple[Any, ...]
    chains: tuple[bytes, ...]  # the chain after each message
    sizes: tuple[int, ...]  # each message's bytes
    marks: tuple[tuple[bytes, ...], ...]  # each message's breakpoints' chains
    firsts: tuple[bytes, ...]  # each message's first block's digest
    tail: tuple[bytes, ...]  # the chains after the last two breakpoints (or the family)
    first: bytes  # the first block's digest
    total: int  # the messages' bytes


def _parted(run: Run, sent: list[Any]) -> list[int]:
    """The places where `sent` holds another object than the run, in the messages both
    have: compared in C (`map`, `compress`), however long the conversation."""
    return list(compress(range(len(sent)), map(is_not, run.messages, sent)))


class _Chain:
    """The chain `chained` builds: a value a message, as `Run` keeps them."""

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

    def take(self, run: Run, start: int, end: int) -> bytes:
        """The run's places `start` to `end`: the same objects after the same chain."""
        self.chains += run.chains[start:end]
        self.sizes += run.sizes[start:end]
        self.marks += run.marks[start:end]
        self.firsts += run.firsts[start:end]
        return run.chains[end - 1]

    def run(self, family: bytes, sent: list[Any]) -> Run:
        """The run of `sent`, with its totals."""
        marked = list(filter(None, self.marks))  # messages with breakpoints: the last two's
        tail = (family, *_flat(marked[-2:]))[-2:]
        first = next(filter(None, self.firsts), b"")
        chains, sizes, marks, firsts = self.chains, self.sizes, self.marks, self.firsts
        messages = tuple(sent)
        return Run(family, messages, tuple(chains), tuple(sizes), tuple(marks), tuple(firsts),
                   tail, first, sum(sizes))  # fmt: skip

    def walk(self, sent: list[Any], chain: bytes, memo: CallMemo, new: bool = False) -> bytes:
        for message in sent:
            chain = self.add(walk.walked(message, chain, memo, new))
        return chain


def chained(sent: list[Any], family: bytes, memo: CallMemo) -> Run:
    """fingerprint.py's `_chained` as a run: each stretch of messages an accepted call sent
    as these objects after the same chain taken from its run, each other message found by
    identity where it was kept alone. The Python work is the messages that differ from the
    run's or follow it."""
    key, run = _found(sent, memo)
    if run is None or run.family != family:
        made = _Chain()
        made.walk(sent, family, memo)
    else:
        kept = run.messages
        parted = _parted(run, sent)
        if not parted:
            if len(kept) == len(sent):
                return run
            if len(kept) < len(sent):
                return _extended(run, sent, memo)
            # The run's start (a call on the conversation's first messages, or an earlier
            # turn's again): the longer run stays kept for the turn that extends it.
            made = _Chain()
            made.take(run, 0, len(sent))
            return made.run(family, sent)
        made = _retaken(run, sent, parted, memo)
    new = run is None
    run = made.run(family, sent)
    if sent:
        memo.keep_same(RUN, key, run, _RUN_BYTES * len(sent) + run.total)
        if new and len(sent) > 1:
            memo.keep_same(LINK, sent[1], id(key), _LINK_BYTES)
    return run


def _found(sent: list[Any], memo: CallMemo) -> tuple[Any, Run | None]:
    """(the object to keep the run by, the run kept by it): by the first message's identity;
    where that is new (a breakpoint placed on it: a copy of it) and the second message is
    not, the run of the first message the second came with (`LINK`), kept by that first
    message again. Any run found is only a start: `chained` compares it with `sent`."""
    if not sent:
        return None, None
    first = sent[0]
    run: Run | None = memo.get_same(RUN, first)
    if run is not None or len(sent) < 2:
        return first, run
    at: int | None = memo.get_same(LINK, sent[1])
    held: tuple[Any, Run] | None = None if at is None else memo.get((RUN, at))
    if held is None or len(held[1].messages) < 2 or held[1].messages[1] is not sent[1]:
        return first, None
    return held  # (the run's own first message, its run)


def _extended(run: Run, sent: list[Any], memo: CallMemo) -> Run:
    """The run, then the messages `sent` adds after it (a conversation's next turn): new to
    the memo, as an accepted call that had walked them would have kept its longer run."""
    made = _Chain()
    made.walk(sent[len(run.messages) :], run.chains[-1], memo, new=True)
    tail = (*run.tail, *_flat(made.marks))[-2:]
    total = run.total + sum(made.sizes)
    run = Run(
        run.family,
        tuple(sent),
        run.chains + tuple(made.chains),
        run.sizes + tuple(made.sizes),
        run.marks + tuple(made.marks),
        run.firsts + tuple(made.firsts),
        tail,
        run.first or next(filter(None, made.firsts), b""),
        total,
    )
    memo.keep_same(RUN, sent[0], run, _RUN_BYTES * len(sent) + total)
    if len(made.chains) == len(sent) - 1:  # the run was the first message alone
        memo.keep_same(LINK, sent[1], id(sent[0]), _LINK_BYTES)
    return run


def _retaken(run: Run, sent: list[Any], parted: list[int], memo: CallMemo) -> _Chain:
    """The chain of `sent` where it parts from the run (`parted`) or is shorter."""
    made = _Chain()
    kept, chains, family = run.messages, run.chains, run.family
    common = min(len(kept), len(sent))
    chain, at = family, 0  # the first message not yet in `made`
    for part in (*parted, common):
        if at < part:  # the same objects as the run's from `at`
            if (chains[at - 1] if at else family) == chain:
                chain = made.take(run, at, part)
            else:  # an earlier message parted the chains: each walked or found alone
                chain = made.walk(sent[at:part], chain, memo)
        if part == common:
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
    # Past the run, after its own chain: new to the memo, as in `_extended`.
    made.walk(sent[common:], chain, memo, chain == chains[common - 1])
    return made
