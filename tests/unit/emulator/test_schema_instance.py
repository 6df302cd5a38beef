"""The structured-output instance generator: deterministic, and valid for the schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, Field

from gateway.emulator.errors import EmulatedError
from gateway.emulator.schema_instance import MAX_DEPTH, schema_instance


class Address(BaseModel):
    street: str
    zip_code: str = Field(min_length=5, max_length=5)


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=130)
    score: float = Field(gt=2.5)
    nickname: str | None = None
    tags: list[str] = Field(min_length=2)
    home: Address
    previous: list[Address]
    role: str = Field(json_schema_extra={"enum": ["admin", "user"]})


class Tree(BaseModel):
    label: str
    children: list[Tree]


SCHEMAS: list[dict[str, Any]] = [
    Person.model_json_schema(),
    Tree.model_json_schema(),
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}}},
    {"type": "array", "items": {"type": "integer", "multipleOf": 5, "minimum": 3}, "minItems": 3},
    {"type": ["null", "string"]},
    {"const": {"fixed": True}},
    {"anyOf": [{"type": "integer", "exclusiveMaximum": 0}, {"type": "string"}]},
    {
        "allOf": [
            {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    },
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "minItems": 2},
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_validates_and_is_deterministic(schema: dict[str, Any]) -> None:
    instance = schema_instance(schema)
    jsonschema.validate(instance, schema)
    assert schema_instance(schema) == instance


def test_objects_carry_every_property_and_arrays_their_minimum() -> None:
    person = schema_instance(Person.model_json_schema())
    assert set(person) == set(Person.model_fields)
    assert len(person["tags"]) == 2
    assert person["role"] == "admin"
    assert person["age"] == 18
    assert len(person["home"]["zip_code"]) == 5
    Person.model_validate(person)


def test_recursion_through_refs_ends_at_the_depth_limit() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
                "required": ["next"],
            }
        },
        "$ref": "#/$defs/Node",
    }
    instance = schema_instance(schema)
    jsonschema.validate(instance, schema)
    depth, node = 0, instance
    while node is not None:
        node, depth = node["next"], depth + 1
    assert depth <= MAX_DEPTH


def test_bounds_stated_in_the_description_are_followed() -> None:
    """Anthropic's SDK moves keywords its structured outputs lack into the description."""
    schema = {
        "type": "object",
        "properties": {
            "days": {"type": "array", "items": {"type": "integer"}, "description": "{minItems: 3}"},
            "zip": {"type": "string", "description": "Postal code {maxLength: 5, minLength: 5}"},
            "age": {"type": "integer", "description": "{minimum: 18}"},
        },
        "required": ["days", "zip", "age"],
    }
    assert schema_instance(schema) == {"days": [1, 1, 1], "zip": "examp", "age": 18}


@pytest.mark.parametrize(
    ("schema", "error"),
    [
        ({"type": "array", "items": {"type": "integer"}, "minItems": 10**9}, "more than 10000"),
        ({"type": "string", "minLength": 10**9}, "at least 1000000000 characters"),
        ({"$defs": {"A": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}},
                          "required": ["a"]}}, "$ref": "#/$defs/A"}, "nest without end"),
        ({"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"},
         "nest without end"),
        ({"$defs": {"A": {"allOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"}, None),
    ],
)  # fmt: skip
def test_schemas_asking_too_much_are_refused(schema: dict[str, Any], error: str | None) -> None:
    """A client's schema must not exhaust the emulator: a 400, never a crash or a huge reply."""
    if error is None:
        schema_instance(schema)  # self-referencing allOf: cut at the depth limit
        return
    with pytest.raises(EmulatedError, match=error):
        schema_instance(schema)
