"""A body serialized from the bytes of the parts it shares with a parsed body.

`Pieces` maps the id of a parsed body's parts (each top-level value, each item of a
top-level list) to the object, its `orjson.dumps` bytes as an `orjson.Fragment` (written as
is by `orjson.dumps`) and its depth in that body; the entry holds the object, so its id
stays unique while it is held. Nothing mutates a parsed body (rewrite/request.py: copy on
write), so a body holding those very objects is written with their fragments in their place
and the rest dumped by orjson: `splice(body, pieces) == orjson.dumps(body)`, raising where it
raises (the unshared parts are dumped where they are; a piece is used no deeper than it was
dumped at).
"""

from __future__ import annotations

from typing import Any

import orjson

Piece = tuple[object, orjson.Fragment, int]
Pieces = dict[int, Piece]


def dumped(value: object, depth: int) -> bytes:
    """`value`'s JSON as written at `depth` in a body (a value of the top dict is at 1, an
    item of a top-level list at 2): orjson refuses 255 levels of nesting, and a body it would
    refuse whole must not be written from pieces it accepts alone."""
    if depth == 1:
        return orjson.dumps((value,))[1:-1]
    return orjson.dumps(((value,),))[2:-2]


def piece(value: object, json: bytes, depth: int) -> Piece:
    return value, orjson.Fragment(json), depth


def splice(body: dict[str, Any], pieces: Pieces) -> bytes:
    """`orjson.dumps(body)`, the parts that are the very objects of `pieces` (a top-level
    value, an item of a top-level list) written from their bytes. Nothing shared: one
    `orjson.dumps` and a walk of the top level and its lists' items (~4 us for 340 KB)."""
    get = pieces.get
    shadow: dict[str, Any] = {}
    for name, value in body.items():
        found = get(id(value))
        if found is not None and found[0] is value:
            shadow[name] = found[1]
        elif type(value) is list:
            shadow[name] = [
                found[1]
                if (found := get(id(item))) is not None and found[0] is item and found[2] == 2
                else item
                for item in value
            ]
        else:
            shadow[name] = value
    return orjson.dumps(shadow)
