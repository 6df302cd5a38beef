"""When models are deprecated and retire: the catalog's dates, refreshed from the provider.

The provider's `GET /v1/models` carries `lifecycle`, `deprecated_at` and `retires_at`
(docs/wire.md#anthropic-endpoints); `merge_models_list` reads that body (pure), and the gateway
calls it at start when the provider is reachable, so an alert can fire before the
provider turns a model off.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass

import orjson

from gateway.catalog import ModelCatalog

EPOCH = dt.date(1970, 1, 1)
MAX_REMEMBERED = 1024  # (model, day, window) answers kept; model names are the clients'


@dataclass(frozen=True, slots=True)
class Dates:
    deprecated_at: dt.date | None
    retires_at: dt.date | None


class Lifecycle:
    def __init__(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog
        self._dates = {
            spec.id: Dates(spec.deprecated_at, spec.retires_at) for spec in catalog.models
        }
        # Every call asks twice (the pin stage's finding, the retirement gauge): the answer
        # changes only with the day, the window or a merged models list.
        self._within: dict[tuple[str, dt.date, int], int | None] = {}

    def dates(self, model: str) -> Dates | None:
        spec = self._catalog.resolve(model)
        return self._dates.get(spec.id if spec is not None else model)

    def days_left(self, model: str, today: dt.date) -> int | None:
        """Days until the model retires (negative once it has); None: no date known."""
        dates = self.dates(model)
        if dates is None or dates.retires_at is None:
            return None
        return (dates.retires_at - today).days

    def retiring_within(self, model: str, today: dt.date, window_days: int) -> int | None:
        """Days left, if the model retires within the window (or already has)."""
        key = (model, today, window_days)
        try:
            return self._within[key]
        except KeyError:
            pass
        left = self.days_left(model, today)
        within = left if left is not None and left <= window_days else None
        if len(self._within) >= MAX_REMEMBERED:
            self._within.clear()  # a new day, or clients naming many models: start over
        self._within[key] = within
        return within

    def merge_models_list(self, body: bytes) -> int:
        """Takes the provider's dates from a `/v1/models` body; returns how many models it named."""
        try:
            listing = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 0
        entries = listing.get("data") if isinstance(listing, dict) else None
        merged = 0
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            self._dates[entry["id"]] = Dates(
                _date(entry.get("deprecated_at")), _date(entry.get("retires_at"))
            )
            merged += 1
        self._within.clear()
        return merged


def today() -> dt.date:
    """The UTC date, asked on every call: from the clock's day number, its date made once."""
    return _day(int(time.time() // 86_400))


@functools.lru_cache(maxsize=2)
def _day(number: int) -> dt.date:
    return EPOCH + dt.timedelta(days=number)


def _date(value: object) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
