"""The bounded stores' batched and one-call paths are the plain ones: `put_all` is `put` of
each entry in turn, a table's `get` is the state's, `count` is one key at a time."""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

import pytest

from gateway.cache.bounded import ENTRY_OVERHEAD_BYTES, BoundedDict, LearnedState, LearnedTable

TENANTS = [b"a", b"b", b"c"]


def snapshot(state: LearnedState) -> tuple[Any, ...]:
    """Everything the state holds, in both its orders."""
    tenants = {name: (held.bytes, list(held.order)) for name, held in state._tenants.items()}
    entries = [(key, entry[0], entry[1]) for key, entry in state._entries.items()]
    return state.bytes, state.forgotten, entries, tenants


@pytest.mark.parametrize("seed", range(40))
def test_put_all_is_put_of_each_entry_in_turn(seed: int) -> None:
    """Random batches over small bounds (entries forgotten per tenant and in all, an entry too
    large to keep, keys replaced, tenants emptied and made again), with lookups between."""
    rng = random.Random(seed)
    entry = ENTRY_OVERHEAD_BYTES + 100
    told: list[list[int]] = [[], []]
    one = LearnedState(12 * entry, 6 * entry, told[0].append)
    batched = LearnedState(12 * entry, 6 * entry, told[1].append)
    for state in (one, batched):
        state.watch("t")
    for _ in range(60):
        tenant = rng.choice(TENANTS)
        batch = [
            (("t" if rng.random() < 0.5 else "u", tenant, rng.randint(0, 12)), rng.random(), size)
            for size in (
                rng.choice([10, 100, 300, 2000, 10 * entry]) for _ in range(rng.randint(0, 5))
            )
        ]
        for key, value, size in batch:
            one.put(tenant, key, value, size)
        batched.put_all(tenant, batch)
        for _ in range(rng.randint(0, 3)):  # uses reorder both alike
            key = ("t", rng.choice(TENANTS), rng.randint(0, 12))
            assert one.get(key) == batched.get(key)
        assert snapshot(one) == snapshot(batched)
        assert one.bytes <= one.max_bytes
        if batch:
            assert told[0][-1] == told[1][-1] == batched.bytes


def test_a_tables_get_is_the_states_and_moves_the_entry_in_both_orders() -> None:
    state = LearnedState(10**6, 10**6)
    table: LearnedTable[int, str] = LearnedTable(state, "t")
    table.put_all(b"a", [(1, "one", 10), (2, "two", 10), (3, "three", 10)])
    table.put(b"b", 1, "b-one", 10)
    assert (table.get(b"a", 1), table.get(b"b", 1), table.get(b"a", 4)) == ("one", "b-one", None)
    assert state.get(("t", b"a", 2)) == "two"
    assert list(state._entries) == [
        ("t", b"a", 3),
        ("t", b"a", 1),
        ("t", b"b", 1),
        ("t", b"a", 2),
    ]
    assert list(state._tenants[b"a"].order) == [("t", b"a", 3), ("t", b"a", 1), ("t", b"a", 2)]


@pytest.mark.parametrize("seed", range(20))
def test_count_is_one_key_at_a_time(seed: int) -> None:
    """As a set, a list with a key twice, and a generator; over a bound that forgets."""
    rng = random.Random(seed)
    counts: BoundedDict[int, int] = BoundedDict(8)
    eager: OrderedDict[int, int] = OrderedDict()
    for _ in range(30):
        keys = [rng.randint(0, 14) for _ in range(rng.randint(0, 6))]
        given: Any = rng.choice([frozenset(keys), keys, (key for key in keys)])
        order = list(given) if not isinstance(given, list) else given
        if not isinstance(given, (list, frozenset)):
            given = iter(order)
        counts.count(given)
        for key in order:
            eager[key] = eager.get(key, 0) + 1
            eager.move_to_end(key)
        while len(eager) > 8:
            eager.popitem(last=False)
        assert list(counts.peek(eager)) == list(eager.values())
        assert list(counts._data.items()) == list(eager.items())
