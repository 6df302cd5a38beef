"""Stores that forget their least recently used entries: past a number of entries
(BoundedDict), or past a number of bytes per tenant and in all (LearnedState)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def peek(self, keys: Iterable[K]) -> Iterator[V | None]:
        """The keys' values, their recency left as it is (a read that judges, not a use)."""
        return map(self._data.get, keys)

    def peek_or(self, keys: Iterable[K], default: V) -> Iterator[V]:
        """`peek`, with `default` for a key not held."""
        return map(self._data.get, keys, repeat(default))

    def count(self: BoundedDict[K, int], keys: Iterable[K]) -> None:
        """One more of each key, each now the most recent (one lookup and one move a key,
        where `get` and a store were two of each: 37 -> ~15 us for a 239-line prompt)."""
        data = self._data
        for key in keys:
            data[key] = data.get(key, 0) + 1
            data.move_to_end(key)
        while len(data) > self.max_entries:
            data.popitem(last=False)

    def add(self: BoundedDict[K, int], keys: Iterable[K], more: int) -> None:
        """`more` more of each key, each held already, its recency left as it is (no key is
        added, so none is forgotten)."""
        data = self._data
        for key in keys:
            data[key] += more

    def setdefault(self, key: K, value: V) -> V:
        """The stored value for `key`, storing `value` first if there was none."""
        stored = self.get(key)
        if stored is not None:
            return stored
        self[key] = value
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


# What one entry of learned state costs beyond the bytes its table counts for it: its record,
# its key tuple and a node in each of the two orders (measured with tracemalloc, rounded up).
ENTRY_OVERHEAD_BYTES = 320
# The defaults of rewrite.learned_state_max_bytes and learned_state_per_tenant_max_bytes.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_PER_TENANT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class _Tenant:
    name: bytes
    bytes: int = 0
    # Its entries, least recently used first: a tenant over its share forgets its own first.
    order: OrderedDict[Hashable, None] = field(default_factory=OrderedDict)


# An entry: its value, its size, the key as stored (a use moves the entry by it, found by
# identity, where the caller's equal key would be compared again with each of the two orders':
# a key holding a 24 KB text costs ~1 us a comparison; a Claude Code turn looks up ~450 KB of
# texts and tools), and its tenant. A tuple: made in C, where a record's __init__ is a call.
_Entry = tuple[object, int, Hashable, _Tenant]
Kept = tuple[Hashable, object, int]  # what `put_all` stores: a key, its value, its size


class LearnedState:
    """Everything the gateway learns from requests, bounded by bytes, per tenant and in all.

    A tenant is a credential (its digest: endpoint/prepared.tenant). Its entries are forgotten
    least recently used first once it holds more than `per_tenant_max_bytes`; past
    `max_bytes` in all, an insertion by a tenant holding more than its fair share
    (`max_bytes` over the tenants holding state) forgets that tenant's own oldest entry, and
    one by a tenant within its share forgets the oldest entry of anyone. So a caller that
    floods holds at most its own cap and pushes out only its own entries, never those of a
    tenant within its share. Sizes are estimates (`ENTRY_OVERHEAD_BYTES` plus what the
    table counts: the lengths of stored strings and a constant per object), kept cheap.
    """

    def __init__(
        self,
        max_bytes: int,
        per_tenant_max_bytes: int,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.per_tenant_max_bytes = min(per_tenant_max_bytes, max_bytes)
        self.on_change = on_change  # told the bytes held after each change (a gauge)
        self.bytes = 0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()  # least recent first
        self._tenants: dict[bytes, _Tenant] = {}
        # Entries of the watched tables forgotten so far (`watch`): a reader that derived
        # something from their lookups knows it still holds while neither this count nor
        # the table's own additions moved.
        self.forgotten = 0
        self._watched: frozenset[str] = frozenset()

    def watch(self, name: str) -> None:
        """Counts in `forgotten` each entry forgotten from the table `name` (LearnedTable)."""
        self._watched |= {name}

    @classmethod
    def default(cls) -> LearnedState:
        return cls(DEFAULT_MAX_BYTES, DEFAULT_PER_TENANT_MAX_BYTES)

    def __len__(self) -> int:
        return len(self._entries)

    def tenant_bytes(self, tenant: bytes) -> int:
        held = self._tenants.get(tenant)
        return held.bytes if held is not None else 0

    def get(self, key: Hashable) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, _, stored, held = entry
        self._entries.move_to_end(stored)
        held.order.move_to_end(stored)
        return value

    def getter(self, name: str) -> Callable[[bytes, Any], object | None]:
        """`get` of the table `name`'s (tenant, key) in one call (a stage's lookup went through
        three: its table's, the state's, and the memo's own; ~100 lookups a call)."""
        find, last = self._entries.get, self._entries.move_to_end

        def get(tenant: bytes, key: Any) -> object | None:
            entry = find((name, tenant, key))
            if entry is None:
                return None
            stored = entry[2]
            last(stored)
            entry[3].order.move_to_end(stored)
            return entry[0]

        return get

    def put(self, tenant: bytes, key: Hashable, value: object, size: int) -> bool:
        """Stores `value` (replacing what `key` held), forgetting what the bounds require;
        False when it is larger than a tenant may hold, and so not stored."""
        self.put_all(tenant, ((key, value, size),))
        return key in self._entries

    def put_all(self, tenant: bytes, kept: Iterable[Kept], table: str | None = None) -> None:
        """`put` of each (key, value, size) in turn, the bytes held told once, after them (a
        call's stages keep ~10 entries); `table`: each key stored as LearnedTable's, (table,
        tenant, key), made here (a generator of them cost a resumed frame an entry)."""
        entries, tenants = self._entries, self._tenants
        per_tenant_max_bytes, max_bytes = self.per_tenant_max_bytes, self.max_bytes
        for key, value, size in kept:
            if table is not None:
                key = (table, tenant, key)
            size += ENTRY_OVERHEAD_BYTES
            old = entries.pop(key, None)
            if old is not None:
                self._forget(key, old)
            if size > per_tenant_max_bytes:
                continue
            held = tenants.get(tenant)  # anew each time: forgetting may have dropped it
            if held is None:
                held = tenants[tenant] = _Tenant(tenant)
            entries[key] = (value, size, key, held)
            held.order[key] = None
            held.bytes += size
            self.bytes += size
            if held.bytes > per_tenant_max_bytes or self.bytes > max_bytes:
                self._make_room(held)
        self._changed()

    def _make_room(self, held: _Tenant) -> None:
        while held.bytes > self.per_tenant_max_bytes:
            self.pop(next(iter(held.order)))
        while self.bytes > self.max_bytes:
            fair_share = self.max_bytes / len(self._tenants)
            own = held.bytes > fair_share
            self.pop(next(iter(held.order)) if own else next(iter(self._entries)))

    def pop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._forget(key, entry)

    def _forget(self, key: Hashable, entry: _Entry) -> None:
        """What the entry counted, taken off (it is out of `_entries` already)."""
        if self._watched and type(key) is tuple and key[0] in self._watched:
            self.forgotten += 1
        _, size, stored, held = entry
        del held.order[stored]
        held.bytes -= size
        self.bytes -= size
        if not held.order:
            del self._tenants[held.name]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.bytes)


class LearnedTable(Generic[K, V]):
    """One kind of learned entry (tool forms, line counts, ...) in a shared LearnedState:
    keys are per tenant, so one tenant's entries are never another's."""

    def __init__(self, state: LearnedState, name: str) -> None:
        self.state = state
        self.name = name
        # The state's lookup of this table's keys, typed as this table's (a cast is a call).
        self.get: Callable[[bytes, K], V | None] = state.getter(name)  # type: ignore[assignment]

    def put(self, tenant: bytes, key: K, value: V, size: int) -> bool:
        """See LearnedState.put; `size` is what the key and value hold, in bytes (estimated)."""
        return self.state.put(tenant, (self.name, tenant, key), value, size)

    def put_all(self, tenant: bytes, kept: Iterable[tuple[K, V, int]]) -> None:
        """`put` of each (key, value, size) in turn (LearnedState.put_all)."""
        self.state.put_all(tenant, kept, self.name)

    def pop(self, tenant: bytes, key: K) -> None:
        self.state.pop((self.name, tenant, key))
