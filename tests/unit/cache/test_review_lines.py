"""The learned line counts (cache/lines.py) judge every request as counting every call would
(the code below), on odd runs of sets: empty sets, sets at the bound and past it, sets
equal as values but other objects (iterated in another order), judgements of sets other
than the last between learned calls, integer and extreme shares, several families and
tenants interleaved."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence

import pytest

from gateway.cache import lines as lines_module
from gateway.cache.lines import FAMILY_BYTES, LAST_LINE_BYTES, LINE_BYTES, LineStats
from gateway.rewrite.snapshot import LinesSeen


class EagerStats:
    """Counting every call (the semantics the counts keep): each line of each call counted and
    made the most recent in its set's order, the least recent forgotten past `max_lines`,
    per tenant and family."""

    def __init__(self, max_lines: int, min_requests: int, share: float) -> None:
        self.max_lines, self.min_requests, self.share = max_lines, min_requests, share
        self.requests: dict[tuple[bytes, bytes], int] = {}
        self.counts: dict[tuple[bytes, bytes], OrderedDict[int, int]] = {}

    def varying(
        self, tenant: bytes, family: bytes, lines: Sequence[int], distinct: frozenset[int]
    ) -> set[int]:
        seen = self.requests.get((tenant, family), 0)
        if not seen or seen + 1 < self.min_requests:
            return set()
        floor = self.share * (seen + 1) - 1
        counts = self.counts[tenant, family]
        return {i for i, key in enumerate(lines) if counts.get(key, 0) < floor}

    def learn(self, seen: LinesSeen) -> None:
        key = (seen.tenant, seen.family)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.counts.setdefault(key, OrderedDict())
        for line in seen.lines:
            counts[line] = counts.get(line, 0) + 1
            counts.move_to_end(line)
        while len(counts) > self.max_lines:
            counts.popitem(last=False)


def _shuffled(lines: frozenset[int], rng: random.Random) -> frozenset[int]:
    """An equal set, another object, built in another order (its iteration order may differ
    where keys collide in the table)."""
    keys = list(lines)
    rng.shuffle(keys)
    return frozenset(keys)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize(
    ("max_lines", "min_requests", "share"),
    [(6, 1, 0.5), (6, 3, 1), (12, 5, 0.5), (12, 2, 2.0), (40, 1, 0.0), (40, 4, 0.75)],
)
def test_odd_runs_of_sets_judge_as_the_counts_kept_before(
    seed: int, max_lines: int, min_requests: int, share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lines_module, "MAX_LINES", max_lines)
    rng = random.Random(seed)
    stats = LineStats(min_requests=min_requests, stable_share=share)
    old = EagerStats(max_lines, min_requests, share)
    universe = [rng.getrandbits(64) - 2**63 for _ in range(3 * max_lines)] + list(range(-2, 5))
    families = [(b"t1", b"f1"), (b"t1", b"f2"), (b"t2", b"f1")]
    sets = {family: frozenset(rng.sample(universe, max_lines // 2)) for family in families}
    seen_sets: list[frozenset[int]] = [frozenset()]
    judged = 0
    for _ in range(200):
        family = rng.choice(families)
        sent = sets[family]
        roll = rng.random()
        if roll < 0.1:
            sent = frozenset()
        elif roll < 0.2:  # at the bound, or just past it
            sent = frozenset(rng.sample(universe, max_lines + rng.choice([0, 0, 1, 2])))
        elif roll < 0.4:
            dropped = set(rng.sample(sorted(sent), min(len(sent), rng.randint(0, 3))))
            sent = frozenset((sent - dropped) | set(rng.sample(universe, rng.randint(0, 3))))
        elif roll < 0.55:
            sent = rng.choice(seen_sets)  # an earlier set, back again
        elif roll < 0.7:
            sent = _shuffled(sent, rng)
        sets[family] = sent
        seen_sets.append(sent)
        # Judged: the set sent, an earlier one, and lines with repeated and unknown keys.
        asked = [*sent, *rng.sample(universe, 2), *list(sent)[:2]]
        for lines in (list(sent), list(rng.choice(seen_sets)), asked):
            for _ in range(rng.randint(1, 2)):  # a judgement twice changes nothing
                got = stats.varying(*family, lines, frozenset(lines))
                assert got == old.varying(*family, lines, frozenset(lines))
                judged += bool(got)
        stats.learn(LinesSeen(*family, sent))
        old.learn(LinesSeen(*family, sent))
        held = stats._families.get(*family)
        assert held is not None
        assert len(held.counts) <= max_lines
        assert held.size <= FAMILY_BYTES + (LINE_BYTES + LAST_LINE_BYTES) * max_lines
    if share > 0:
        assert judged  # some lines were found to vary


def test_an_equal_set_in_another_order_forgets_as_its_own_order_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two equal sets whose iteration orders differ (keys in one slot of the table): counting
    each call makes the lines most recent in the newest call's order, so past the bound the
    first line of that order goes first. (The counts before the runs kept the first set's
    order for a repeated set, and forgot the other line here.)"""
    monkeypatch.setattr(lines_module, "MAX_LINES", 2)
    big = 8395041395544188670
    first, again = frozenset([big, 1]), frozenset([1, big])
    assert first == again
    assert list(first) != list(again)
    stats, eager = LineStats(min_requests=1), EagerStats(2, 1, 0.5)
    for sent in (first, again, frozenset({2})):
        stats.learn(LinesSeen(b"t", b"f", sent))
        eager.learn(LinesSeen(b"t", b"f", sent))
    asked = [2, 3, big, 1]
    expected = eager.varying(b"t", b"f", asked, frozenset(asked))
    assert stats.varying(b"t", b"f", asked, frozenset(asked)) == expected
    assert len(expected) == 2  # one of the two lines is forgotten, and an unknown one varies
