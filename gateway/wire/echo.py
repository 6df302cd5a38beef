"""A value the gateway put in a request, taken out of what the provider echoes back.

OpenAI's Responses API echoes the request's `prompt_cache_key` in the response object (a
JSON body, and the `response.created` / `response.in_progress` / `response.completed`
events of a stream). When the key is the gateway's own (rewrite/prompt_cache.py), the
client, which sent none, gets `null` in its place, as the API answers a request without one.

The key is a JSON string of its own (`"tollgate-<hex>"`), so it is found as bytes, without
parsing: one `bytes.replace` over a JSON body, one substring search per stream chunk. A
chunk is held back only by the length of a tail that could be the start of the key (never
an event's end, which is a line break), so a stream's events are not delayed.
"""

from __future__ import annotations


def unecho(body: bytes, needle: bytes, replacement: bytes) -> bytes:
    return body.replace(needle, replacement) if needle in body else body


class EchoFilter:
    """Feed a stream's chunks in any chunking; get them back with `needle` replaced."""

    __slots__ = ("_held", "_in_needle", "_needle", "_replacement")

    def __init__(self, needle: bytes, replacement: bytes) -> None:
        assert needle, "an empty needle matches everywhere"
        self._needle = needle
        self._replacement = replacement
        self._held = b""
        self._in_needle = frozenset(needle)  # a chunk ending in another byte holds nothing

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk if self._held else chunk
        if self._needle in data:
            data = data.replace(self._needle, self._replacement)
        if not data or data[-1] not in self._in_needle:
            self._held = b""
            return data  # an event's end (a line break) is never part of the key
        keep = _partial_tail(data, self._needle)
        self._held = data[len(data) - keep :] if keep else b""
        return data[: len(data) - keep] if keep else data

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


def _partial_tail(data: bytes, needle: bytes) -> int:
    """The length of the longest tail of `data` that is a proper prefix of `needle`."""
    first = needle[0]
    start = max(0, len(data) - len(needle) + 1)
    index = data.find(first, start)
    while index != -1:
        if needle.startswith(data[index:]):
            return len(data) - index
        index = data.find(first, index + 1)
    return 0
