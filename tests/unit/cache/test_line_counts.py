"""The learned line counts (cache/lines.py) take a repeated set of lines in O(1), owing its
counts until another set comes: every judgement is the one counting each call would make."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest

from gateway.cache import lines as lines_module
from gateway.cache.lines import LineStats
from gateway.rewrite.snapshot import LinesSeen


class EagerStats:
    """The counts as they were kept before: each call's every line counted and made the most
    recent, the least recent forgotten past `max_lines`."""

    def __init__(self, max_lines: int, min_requests: int = 5, share: float = 0.5) -> None:
        self.max_lines, self.min_requests, self.share = max_lines, min_requests, share
        self.requests = 0
        self.counts: OrderedDict[int, int] = OrderedDict()

    def learn(self, lines: frozenset[int]) -> None:
        self.requests += 1
        for key in lines:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.counts.move_to_end(key)
        while len(self.counts) > self.max_lines:
            self.counts.popitem(last=False)

    def varying(self, asked: list[int]) -> set[int]:
        requests = self.requests + 1
        if self.requests == 0 or requests < self.min_requests:
            return set()
        floor = self.share * requests - 1
        return {i for i, key in enumerate(asked) if self.counts.get(key, 0) < floor}


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("max_lines", [6, 2_000])
def test_owed_counts_judge_as_counting_each_call_would(
    seed: int, max_lines: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random runs of prompts (most calls repeat the last set, as the very object or an equal
    one; some change a line or two), each call judged before it is counted, over a bound
    small enough to forget lines and one that never does."""
    monkeypatch.setattr(lines_module, "MAX_LINES", max_lines)
    rng = random.Random(seed)
    stats, eager = LineStats(), EagerStats(max_lines)
    last = frozenset(range(5))
    for _ in range(120):
        roll = rng.random()
        if roll < 0.25:  # a line or two change
            changed = set(last) - set(rng.sample(sorted(last), min(len(last), rng.randint(0, 2))))
            last = frozenset(changed | {rng.randint(0, 12) for _ in range(rng.randint(0, 2))})
        elif roll < 0.4:  # the same set, another object
            last = frozenset(set(last))
        sent = last
        asked = list(sent) + [rng.randint(0, 12)] * (roll > 0.9)  # and a key it lacks
        distinct = frozenset(asked) if roll > 0.9 else sent
        assert stats.varying(b"t", b"f", asked, distinct) == eager.varying(asked)
        stats.learn(LinesSeen(b"t", b"f", sent))
        eager.learn(sent)


def test_a_set_counted_again_is_owed_not_walked() -> None:
    """A set that repeats runs: its lines are owed, not counted; another set pays the lines
    it lacks and starts its own new ones, and leaves those it shares as they are."""
    stats = LineStats()
    prompt = frozenset(range(100))
    for _ in range(10):
        stats.learn(LinesSeen(b"t", b"f", prompt))
    family = stats._families.get(b"t", b"f")
    assert family is not None
    assert family.pending == 10  # each line's count, none held
    assert set(family.peek(prompt)) == {0}
    stats.learn(LinesSeen(b"t", b"f", frozenset(range(1, 101))))  # another set
    assert family.pending == 11
    assert list(family.peek([0, 1, 99, 100])) == [10, 0, 0, 1 - 11]  # paid, as they were, new
    assert stats.varying(b"t", b"f", [0, 100], frozenset({0, 100})) == {1}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("share", [0.3, 0.5, 0.9, 1.0, 1.4])
def test_the_lines_below_the_floor_judge_as_counting_each_call_would(
    seed: int, share: float
) -> None:
    """A family whose prompts differ in a few lines, sent in runs (one prompt a few calls,
    then another, as a client alternating projects does), some keys on several lines: the
    lines found below the floor (kept while a set repeats, filtered as its threshold
    falls, found again as it rises, share > 1) and the few new lines of another set are
    what a walk of every line finds."""
    rng = random.Random(seed)
    stats, eager = LineStats(stable_share=share), EagerStats(2_000, share=share)
    base = list(range(40))
    prompts = [frozenset(base[:-3] + rng.sample(range(40, 60), 3)) for _ in range(3)]
    for _ in range(25):
        sent = rng.choice(prompts)
        for _ in range(rng.randint(1, 6)):
            asked = [*sent, *rng.sample(sorted(sent), 3)]  # lines that repeat a key
            assert stats.varying(b"t", b"f", asked, sent) == eager.varying(asked)
            sent = sent if rng.random() < 0.7 else frozenset(sent)  # or an equal set
            stats.learn(LinesSeen(b"t", b"f", sent))
            eager.learn(sent)


def test_the_lines_below_are_found_again_for_another_set() -> None:
    """The lines kept as below the floor are the last set's: once another set is counted
    they are looked for again, even where its threshold is lower (kept, the new set's rare
    line would be missed)."""
    stats = LineStats(min_requests=2)
    for _ in range(10):
        stats.learn(LinesSeen(b"t", b"f", frozenset({1, 2, 3})))
    stats.learn(LinesSeen(b"t", b"f", frozenset({1, 2, 3, 9})))  # 9: once in eleven
    assert stats.varying(b"t", b"f", [1, 2, 3, 9], frozenset({1, 2, 3, 9})) == {3}
    second = frozenset({1, 2, 4})
    for _ in range(3):  # 4: once, then owed two more; the threshold falls below the last
        stats.learn(LinesSeen(b"t", b"f", second))
    assert stats.varying(b"t", b"f", [1, 2, 4], second) == {2}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("max_lines", [8, 30])
def test_running_sets_forget_lines_as_counting_each_call_would(
    seed: int, max_lines: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sets near the bound and past it (a set past it does not run: each of its lines is
    counted), differing in many lines or a few: the lines forgotten, and so every
    judgement, are those counting each call forgets."""
    monkeypatch.setattr(lines_module, "MAX_LINES", max_lines)
    rng = random.Random(seed)
    stats, eager = LineStats(min_requests=2), EagerStats(max_lines, min_requests=2)
    sent = frozenset(rng.sample(range(3 * max_lines), max_lines // 2))
    for _ in range(150):
        roll = rng.random()
        if roll < 0.2:  # a new prompt, up to past the bound
            size = rng.randint(1, max_lines + 4)
            sent = frozenset(rng.sample(range(3 * max_lines), size))
        elif roll < 0.5:  # a line or two differ
            dropped = set(rng.sample(sorted(sent), min(len(sent) - 1, rng.randint(0, 2))))
            sent = frozenset((sent - dropped) | {rng.randrange(3 * max_lines)})
        asked = sorted(sent | {rng.randrange(3 * max_lines)})
        assert stats.varying(b"t", b"f", asked, frozenset(asked)) == eager.varying(asked)
        assert stats.varying(b"t", b"f", list(sent), sent) == eager.varying(list(sent))
        stats.learn(LinesSeen(b"t", b"f", sent))
        eager.learn(sent)
