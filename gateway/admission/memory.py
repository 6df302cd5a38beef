"""This replica's memory of keys, for when the store does not answer: each key's last known
record (or that the store said it has none: revoked) and its spend as last seen, plus what
this replica let through since. Bounded: `state.known_keys_max` keys, about 1 KB each."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.cache.bounded import BoundedDict
from gateway.state.keys import GatewayKey
from gateway.state.ledger import Period

Spend = tuple[int, int, int, int]  # nano-USD in each of state.ledger.PERIOD_NAMES
NO_SPEND: Spend = (0, 0, 0, 0)


@dataclass(slots=True)
class Known:
    """A key's last known state, for outages: its record (None once the store said it is
    unknown: revoked), and its spend in `period` as last seen plus what this replica let
    through since."""

    key: GatewayKey | None
    period: Period | None = None
    spent: Spend = NO_SPEND

    def spent_in(self, period: Period) -> Spend:
        """The known spend that still counts in `period`: a new day or month starts from 0."""
        if self.period is None:
            return NO_SPEND
        day = self.period.day == period.day
        month = self.period.month == period.month
        s = self.spent
        return (s[0] if day else 0, s[1] if month else 0, s[2] if day else 0, s[3] if month else 0)


class KeyMemory:
    def __init__(self, max_keys: int) -> None:
        self._known: BoundedDict[str, Known] = BoundedDict(max(1, max_keys))

    def get(self, key_digest: str) -> Known | None:
        return self._known.get(key_digest)

    def confirm(self, key_digest: str, key: GatewayKey) -> None:
        """The store knows the key: it is valid (again, if it was last seen revoked)."""
        known = self._known.get(key_digest)
        if known is None:
            self._known[key_digest] = Known(key)
        else:
            known.key = key

    def remember(
        self, key_digest: str, key: GatewayKey, period: Period | None, spent: Spend
    ) -> None:
        known = self._known.get(key_digest)
        if known is None:
            self._known[key_digest] = Known(key, period, spent)
        else:
            known.key, known.period, known.spent = key, period, spent

    def adjust(self, key_digest: str, period: Period, delta_nano: int) -> None:
        """Adds to the key's known spend in `period` (if that is the period it knows)."""
        known = self._known.get(key_digest)
        if known is not None and known.period == period:
            known.spent = plus(known.spent, delta_nano)


def plus(spent: Spend, nano: int) -> Spend:
    """`nano` added to each of the four counters (a key without a team has 0 limits there)."""
    return spent[0] + nano, spent[1] + nano, spent[2] + nano, spent[3] + nano
