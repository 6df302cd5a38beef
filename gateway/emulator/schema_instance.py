"""A deterministic instance of a JSON schema: what the emulated model answers for structured
outputs (and the arguments of the tool calls it makes).

Same schema → same instance, and the instance validates against the schema for the subset
structured outputs use: objects (every property, required ones first), strings (with
`format`, `minLength`, `maxLength`), numbers and integers within their bounds, booleans,
null, `enum` / `const` (the first value), arrays (`minItems` items, `prefixItems`), local
`$ref`s to `$defs` / `definitions`, and `anyOf` / `oneOf` (the first branch; past the depth
limit the first branch that ends the recursion, such as `null` or an empty array). `allOf`
merges its branches. Patterns are not followed.

Anthropic's structured outputs take fewer keywords: its SDKs move the others into the
description as `{minItems: 3}` / `{maxLength: 5, minLength: 5}`, which the model follows;
so does this generator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.emulator.errors import invalid_request

MAX_DEPTH = 24  # nested objects and $ref hops before recursive schemas are cut short
# A schema may ask for more than any reply should hold (minItems: 10**9, nested arrays):
# past these the request is refused rather than the emulator's memory spent.
MAX_VALUES = 10_000  # values in one instance
MAX_STRING_CHARS = 10_000  # characters in one string (minLength)
STRING_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
EXAMPLE_STRING = "example"
DESCRIBED_BOUNDS = frozenset(
    {"minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
     "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)  # fmt: skip
_DESCRIBED = re.compile(r"\{([^{}]*)\}\s*$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def schema_instance(schema: Any) -> Any:
    """An instance of `schema` (a JSON schema as parsed JSON; `true`/`{}` accept anything)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Generator(root).value(root, 0)


class _Generator:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.values = 0

    def value(self, schema: Any, depth: int) -> Any:
        self.values += 1
        if depth > 2 * MAX_DEPTH:
            raise invalid_request(
                "The JSON schema requires its instance to nest without end "
                "(a required recursive reference)."
            )
        if self.values > MAX_VALUES:
            raise invalid_request(
                f"The JSON schema asks for an instance of more than {MAX_VALUES} values, "
                "more than the emulator generates."
            )
        if not isinstance(schema, Mapping):
            return None if schema is False else EXAMPLE_STRING
        schema = _described_bounds(self._resolved(schema, depth))
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(self._branch(schema, key, branches, depth), depth + 1)
        kind = self._type(schema, depth)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return _string(schema)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return EXAMPLE_STRING

    def _resolved(self, schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        """The schema with its local `$ref` followed and its `allOf` merged in."""
        hops = 0
        while isinstance(ref := schema.get("$ref"), str) and hops <= MAX_DEPTH:
            target = self._lookup(ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings}
            hops += 1
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                if isinstance(part, Mapping) and depth < MAX_DEPTH:
                    part = self._resolved(part, depth + 1)
                    properties = {**part.get("properties", {}), **merged.get("properties", {})}
                    required = [*merged.get("required", []), *part.get("required", [])]
                    merged = {**part, **merged, "properties": properties, "required": required}
            schema = merged
        return schema

    def _lookup(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}  # remote references are not fetched: anything goes
        node: Any = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    def _branch(self, schema: Mapping[str, Any], key: str, branches: list[Any], depth: int) -> Any:
        rest = {k: v for k, v in schema.items() if k != key}
        if depth >= MAX_DEPTH:
            for branch in branches:
                if isinstance(branch, Mapping) and self._ends(branch, depth):
                    return {**rest, **branch}
        first = branches[0]
        return {**rest, **first} if isinstance(first, Mapping) else first

    def _ends(self, branch: Mapping[str, Any], depth: int) -> bool:
        """Whether a branch's instance needs no further nesting."""
        branch = self._resolved(branch, depth)
        kind = self._type(branch, depth)
        if kind == "object":
            return not branch.get("required")
        if kind == "array":
            return not branch.get("minItems")
        return True

    @staticmethod
    def _type(schema: Mapping[str, Any], depth: int) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if isinstance(k, str)]
            if depth >= MAX_DEPTH and "null" in kinds:
                return "null"
            return kinds[0] if kinds else None
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [name for name in schema.get("required") or () if isinstance(name, str)]
        names = [*required, *(name for name in properties if name not in required)]
        if depth >= MAX_DEPTH:
            names = required
        return {name: self.value(properties.get(name, {}), depth + 1) for name in names}

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        prefix = list(prefix) if isinstance(prefix, list) else []
        minimum = schema.get("minItems")
        count = max(minimum if isinstance(minimum, int) else 0, 0)
        if depth >= MAX_DEPTH and not count:
            return []
        count = max(count, len(prefix), 1)
        maximum = schema.get("maxItems")
        if isinstance(maximum, int):
            count = min(count, maximum)
        items = schema.get("items", {})
        return [
            self.value(prefix[index] if index < len(prefix) else items, depth + 1)
            for index in range(count)
        ]


def _string(schema: Mapping[str, Any]) -> str:
    text = STRING_FORMATS.get(str(schema.get("format")), EXAMPLE_STRING)
    minimum, maximum = schema.get("minLength"), schema.get("maxLength")
    if isinstance(minimum, int) and minimum > MAX_STRING_CHARS:
        raise invalid_request(
            f"The JSON schema asks for a string of at least {minimum} characters, more than "
            f"the emulator generates ({MAX_STRING_CHARS})."
        )
    if isinstance(minimum, int) and len(text) < minimum:
        text = text + "x" * (minimum - len(text))
    if isinstance(maximum, int) and len(text) > maximum:
        text = text[:maximum]
    return text


def _integer(schema: Mapping[str, Any]) -> int:
    low = _bound(schema, "minimum", "exclusiveMinimum", 1)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1)
    value = 1
    if low is not None and value < low:
        value = int(-(-low // 1))
    if high is not None and value > high:
        value = int(high // 1)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0 and value % step:
        value += step - value % step
    return value


def _number(schema: Mapping[str, Any]) -> float:
    low = _bound(schema, "minimum", "exclusiveMinimum", 1)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1)
    value = 1.0
    if low is not None and value < low:
        value = float(low)
    if high is not None and value > high:
        value = float(high)
    return value


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, step: int) -> float | None:
    """The tightest inclusive bound on one side (an exclusive bound moved one step inside)."""
    found: list[float] = []
    value = schema.get(inclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        found.append(value)
    value = schema.get(exclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        found.append(value + step)
    if not found:
        return None
    return max(found) if step > 0 else min(found)


def _described_bounds(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema with the bounds its description states as `{minItems: 3, ...}` added."""
    description = schema.get("description")
    if not isinstance(description, str) or not (found := _DESCRIBED.search(description)):
        return schema
    bounds: dict[str, Any] = {}
    for pair in found.group(1).split(","):
        key, _, raw = (part.strip() for part in pair.partition(":"))
        if key in DESCRIBED_BOUNDS and key not in schema and _NUMBER.match(raw):
            bounds[key] = float(raw) if "." in raw else int(raw)
    return {**schema, **bounds} if bounds else schema
