"""`Seen.compact` and `compacted` against the form compact had before (`dataclasses.replace`
of the fingerprint's digests by the last, the count kept): the same fields for every count a
Seen may hold (none, zero, fewer or more than its digests), as the registry's record and a
replica's adopted calls make them."""

from __future__ import annotations

import random
from dataclasses import astuple, replace

import pytest

from gateway.cache.seen import Seen, compacted
from gateway.rewrite.fingerprint import Fingerprint
from gateway.wire.usage import Usage


def _former(seen: Seen) -> Seen:
    fp = seen.fingerprint
    if len(fp.messages) <= 1:
        return seen
    return replace(
        seen, fingerprint=fp._replace(messages=fp.messages[-1:]), message_count=seen.messages
    )


def _fingerprint(count: int) -> Fingerprint:
    messages = tuple(b"m%d" % i for i in range(count))
    return Fingerprint(b"f", b"c", "model", b"t", b"s", messages, b"sh", 100, b"tenant")


@pytest.mark.parametrize("digests", range(4))
@pytest.mark.parametrize("count", [None, 0, 1, 2, 7])
def test_compact_keeps_what_it_kept(digests: int, count: int | None) -> None:
    seen = Seen(_fingerprint(digests), 1.0, 2.0, 300, "msg", count)
    assert astuple(seen.compact()) == astuple(_former(seen))
    assert seen.compact().messages == seen.messages


def test_compacted_is_a_new_calls_seen_made_compact() -> None:
    rng = random.Random(3)
    for _ in range(200):
        fp = _fingerprint(rng.randrange(5))
        usage = Usage(*(rng.choice((0, 1024, 3000)) for _ in range(5)))
        started, answered = rng.random(), rng.random()
        message_id = rng.choice((None, "msg_1"))
        made = compacted(
            fp, started, answered, usage.cache_read + usage.cache_write_5m + usage.cache_write_1h,
            message_id,
        )  # fmt: skip
        assert astuple(made) == astuple(_former(Seen.of(fp, usage, started, answered, message_id)))
