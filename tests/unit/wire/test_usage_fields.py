"""`usage_from_fields` with its counts read inline against the former one that read each
by a call of `_count`: the same Usage for every mix of absent, damaged and valid fields."""

from __future__ import annotations

import itertools
from typing import Any

from gateway.wire.anthropic_usage import usage_from_fields
from gateway.wire.usage import Usage


def _count(fields: dict[str, Any], name: str) -> int:
    value = fields.get(name)
    return value if type(value) is int and value > 0 else 0


def former(fields: dict[str, Any]) -> Usage:
    written = _count(fields, "cache_creation_input_tokens")
    split = fields.get("cache_creation")
    split = split if isinstance(split, dict) else {}
    write_1h = _count(split, "ephemeral_1h_input_tokens")
    if "ephemeral_5m_input_tokens" in split:
        write_5m = _count(split, "ephemeral_5m_input_tokens")
    else:
        write_5m = max(0, written - write_1h)
    return Usage(
        input=_count(fields, "input_tokens"),
        output=_count(fields, "output_tokens"),
        cache_read=_count(fields, "cache_read_input_tokens"),
        cache_write_5m=write_5m,
        cache_write_1h=write_1h,
    )


class Sub(dict[str, Any]):
    """A dict subclass: isinstance says dict, as the former test did."""


ABSENT = object()
VALUES: list[Any] = [ABSENT, 0, 7, 300, -5, True, False, 2.0, "9", None, [1], {"a": 1}]


def with_values(names: tuple[str, ...], values: tuple[Any, ...]) -> dict[str, Any]:
    return {name: value for name, value in zip(names, values, strict=True) if value is not ABSENT}


def test_top_level_counts_as_the_former_reading() -> None:
    names = ("input_tokens", "output_tokens", "cache_read_input_tokens")
    for values in itertools.product(VALUES, repeat=3):
        fields = with_values(names, values)
        assert usage_from_fields(fields) == former(fields), fields


def test_cache_writes_and_their_split_as_the_former_reading() -> None:
    split_names = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
    splits: list[Any] = [ABSENT, None, "x", [], 5]
    for values in itertools.product(VALUES, repeat=2):
        split = with_values(split_names, values)
        splits += [split, Sub(split)]
    for written, split in itertools.product(VALUES, splits):
        fields = with_values(("cache_creation_input_tokens", "cache_creation"), (written, split))
        got, expected = usage_from_fields(fields), former(fields)
        assert got == expected, fields
        assert all(type(count) is int for _, count in got.pairs()), fields
