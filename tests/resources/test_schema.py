"""Turning a pydantic model's JSON schema into a Kubernetes structural schema."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from pydantic import ConfigDict, Field

from tablekeeper.resources.common import Model, Quantity, cel, validations
from tablekeeper.resources.schema import SchemaError, structural


class Inner(Model):
    """An inner object."""

    model_config = ConfigDict(json_schema_extra=validations(cel("self.a > 0", "a is positive")))

    a: int = 1
    """A number."""


class Outer(Model):
    """An outer object."""

    inner: Annotated[
        Inner, Field(json_schema_extra=validations(cel("self == oldSelf", "inner is immutable")))
    ]
    """The inner object,
    described on two lines."""
    maybe: Inner | None = None
    """Perhaps an inner object."""
    size: Quantity | None = None
    """A quantity."""
    tags: dict[Annotated[str, Field(max_length=3)], str] = Field(default_factory=dict)
    """A map."""


def test_references_are_inlined_and_the_field_description_wins() -> None:
    inner = structural(Outer)["properties"]["inner"]
    assert inner["type"] == "object" and inner["properties"]["a"] == {
        "description": "A number.", "type": "integer", "default": 1
    }  # fmt: skip
    assert inner["description"] == "The inner object, described on two lines."


def test_model_and_field_rules_are_both_kept_model_first() -> None:
    inner = structural(Outer)["properties"]["inner"]
    assert inner["x-kubernetes-validations"] == [
        {"rule": "self.a > 0", "message": "a is positive"},
        {"rule": "self == oldSelf", "message": "inner is immutable"},
    ]


def test_optional_becomes_the_plain_type_and_not_required() -> None:
    schema = structural(Outer)
    assert schema["properties"]["maybe"]["type"] == "object"
    assert schema["required"] == ["inner"]
    assert "default" not in schema["properties"]["maybe"]


def test_a_quantity_is_kubernetes_int_or_string() -> None:
    size = structural(Outer)["properties"]["size"]
    assert size["x-kubernetes-int-or-string"] is True and "type" not in size
    assert size["anyOf"] == [{"type": "integer"}, {"type": "string"}]


def test_titles_forbid_flags_map_key_constraints_and_object_defaults_are_dropped() -> None:
    schema = structural(Outer)
    text = repr(schema)
    assert "title" not in text and "additionalProperties': False" not in text and "propertyNames" not in text
    assert "default" not in schema["properties"]["tags"]


def test_keys_come_in_a_fixed_readable_order() -> None:
    assert list(structural(Outer)) == ["description", "type", "required", "properties"]


def test_a_real_union_is_refused() -> None:
    class Union(Model):
        value: int | str
        """Either."""

    with pytest.raises(SchemaError, match=re.escape("Union.value: a union other than X | None")):
        structural(Union)


def test_a_constraint_on_the_wrong_type_is_refused() -> None:
    class Misplaced(Model):
        names: tuple[str, ...] = Field(default=(), json_schema_extra={"maxLength": 3})
        """Names."""

    with pytest.raises(SchemaError, match="maxLength do not apply to type array"):
        structural(Misplaced)
