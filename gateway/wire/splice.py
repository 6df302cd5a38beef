"""A body serialized from the bytes of the parts it shares with a parsed body.

`Pieces` maps the id of a parsed body's parts (each top-level value, each item of a
top-level list) to the object and its `orjson.dumps` bytes; the entry holds the object, so
its id stays unique while it is held. Nothing mutates a parsed body (rewrite/request.py:
copy on write), so a body holding those very objects is written from their bytes, the rest
dumped: `splice(body, pieces) == orjson.dumps(body)`, raising where it raises.
"""

from __future__ import annotations

from typing import Any

import orjson

Pieces = dict[int, tuple[object, bytes | memoryview]]


def dumped(value: object, depth: int) -> bytes:
    """`value`'s JSON as written at `depth` in a body (a value of the top dict is at 1, an
    item of a top-level list at 2): orjson refuses 255 levels of nesting, and a body it would
    refuse whole must not be written from pieces it accepts alone."""
    if depth == 1:
        return orjson.dumps((value,))[1:-1]
    return orjson.dumps(((value,),))[2:-2]


def splice(body: dict[str, Any], pieces: Pieces) -> bytes:
    """`orjson.dumps(body)`, its parts that are the very objects of `pieces` written from
    their bytes (a top-level value, an item of a top-level list), the rest dumped."""
    out: list[bytes | memoryview] = []
    add = out.append
    sep = b"{"
    for name, value in body.items():
        add(sep + orjson.dumps(name) + b":")
        sep = b","
        found = pieces.get(id(value))
        if found is not None and found[0] is value:
            add(found[1])
        elif isinstance(value, list):
            inner = b"["
            for item in value:
                found = pieces.get(id(item))
                add(inner)
                add(found[1] if found is not None and found[0] is item else dumped(item, 2))
                inner = b","
            add(b"[]" if not value else b"]")
        else:
            add(dumped(value, 1))
    add(b"}" if body else b"{}")
    return b"".join(out)
