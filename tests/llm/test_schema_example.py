"""Values made from JSON schemas validate against the models that wrote the schemas."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from app.llm.scripted import example_for_schema


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Node(BaseModel):
    name: str
    children: list[Node]


class Base(BaseModel):
    id: uuid.UUID


class Child(Base):
    kind: Literal["child"]
    colour: Colour
    at: datetime.datetime
    tags: list[str] = Field(min_length=2)
    code: str = Field(min_length=12, max_length=14)
    step: int = Field(multiple_of=5, ge=7)
    below: int = Field(lt=0)
    pair: tuple[int, str]
    maybe: int | None
    mapping: dict[str, float]


@pytest.mark.parametrize("model", [Node, Child], ids=lambda m: m.__name__)
def test_examples_validate(model: type[BaseModel]) -> None:
    example = example_for_schema(model.model_json_schema())
    model.model_validate(example)


def test_recursion_stops_and_hints_fill_strings() -> None:
    example = example_for_schema(Node.model_json_schema(), {"name": "APPROVED"})
    depth, node = 0, example
    while node["children"]:
        depth, node = depth + 1, node["children"][0]
    assert 0 < depth < 10 and example["name"] == "APPROVED"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"const": 3}, 3),
        ({"type": ["null", "boolean"]}, True),
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, 0.5),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 3}, [1, 1, 1]),
        (
            {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {"const": "x"}}}]},
            {"a": 1, "b": "x"},
        ),
        ({"type": "string", "format": "email"}, "demo@example.com"),
    ],
)
def test_schema_keywords(schema: dict[str, Any], expected: Any) -> None:
    assert example_for_schema(schema) == expected
