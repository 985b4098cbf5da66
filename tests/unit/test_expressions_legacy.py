"""Expected, QueryFilter/ScanFilter and AttributeUpdates, converted into the one AST."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import (
    attribute_updates_to_plan,
    evaluate,
    expected_to_condition,
    filter_to_condition,
)
from tablekeeper.engine.expressions.ast import (
    AttributeNotExists,
    Compare,
    Literal,
    Path,
    RemoveAction,
    SetAction,
)

INVALID = "One or more parameter values were invalid: "
ITEM = {
    "a": "hello",
    "b": frozenset({Decimal(2), Decimal(4)}),
    "c": [Decimal(2), Decimal(4)],
    "n": Decimal(3),
}


def _error(action) -> str:
    with pytest.raises(ValidationException) as caught:
        action()
    return caught.value.message


def _holds(expected: dict, operator: str | None = None, item: dict = ITEM) -> bool:
    return evaluate(expected_to_condition(expected, operator), item)


def _op(op: str, *values: dict) -> dict:
    return {"ComparisonOperator": op, "AttributeValueList": list(values)}


def test_value_alone_means_equality():
    assert expected_to_condition({"a": {"Value": {"S": "x"}}}, None) == Compare(
        "=", Path(("a",)), Literal("x")
    )


def test_exists_false_means_attribute_not_exists():
    assert expected_to_condition({"a": {"Exists": False}}, None) == AttributeNotExists(Path(("a",)))


def test_attribute_names_are_taken_literally():
    assert _holds({"a.b": {"Exists": False}}, item={"a": {"b": "x"}})


def test_empty_expected_is_no_condition():
    assert expected_to_condition({}, None) is None


def test_conditions_combine_with_and_by_default():
    expected = {"a": {"Value": {"S": "hello"}}, "n": {"Value": {"N": "4"}}}
    assert not _holds(expected)


def test_conditional_operator_or_combines_with_or():
    expected = {"a": {"Value": {"S": "hello"}}, "n": {"Value": {"N": "4"}}}
    assert _holds(expected, "OR")


def test_ne_holds_for_a_missing_attribute():
    assert _holds({"q": _op("NE", {"N": "1"})})


def test_not_contains_is_false_for_a_missing_attribute():
    assert not _holds({"q": _op("NOT_CONTAINS", {"N": "1"})})


@pytest.mark.parametrize(
    "name, value, holds",
    [
        ("a", {"S": "ell"}, False),
        ("a", {"S": "dog"}, True),
        ("b", {"N": "4"}, False),
        ("b", {"N": "1"}, True),
        ("c", {"N": "4"}, False),
    ],
)
def test_not_contains_negates_contains(name, value, holds):
    assert _holds({name: _op("NOT_CONTAINS", value)}) is holds


def test_in_checks_the_attribute_against_the_list():
    assert _holds({"n": _op("IN", {"N": "2"}, {"N": "3"})})
    assert not _holds({"b": _op("IN", {"N": "2"})})


def test_null_and_not_null_test_existence():
    assert _holds({"q": _op("NULL"), "a": _op("NOT_NULL")})


def test_between_and_begins_with():
    assert _holds(
        {"n": _op("BETWEEN", {"N": "1"}, {"N": "3"}), "a": _op("BEGINS_WITH", {"S": "he"})}
    )


def test_value_and_attribute_value_list_together_are_refused():
    spec = {
        "a": {"Value": {"S": "x"}, "AttributeValueList": [{"S": "x"}], "ComparisonOperator": "EQ"}
    }
    assert _error(lambda: expected_to_condition(spec, None)) == (
        INVALID + "Value and AttributeValueList cannot be used together for Attribute: a"
    )


def test_exists_with_comparison_operator_is_refused():
    spec = {"a": {"Exists": True, **_op("EQ", {"S": "x"})}}
    assert _error(lambda: expected_to_condition(spec, None)) == (
        INVALID + "Exists and ComparisonOperator cannot be used together for Attribute: a"
    )


def test_comparison_operator_needs_values():
    assert _error(lambda: expected_to_condition({"a": {"ComparisonOperator": "EQ"}}, None)) == (
        INVALID + "Value or AttributeValueList must be used with ComparisonOperator: EQ "
        "for Attribute: a"
    )


def test_attribute_value_list_needs_a_comparison_operator():
    spec = {"a": {"AttributeValueList": [{"S": "x"}]}}
    assert _error(lambda: expected_to_condition(spec, None)) == (
        INVALID + "AttributeValueList can only be used with a ComparisonOperator for Attribute: a"
    )


@pytest.mark.parametrize("spec, shown", [({}, "null"), ({"Exists": True}, "true")])
def test_value_is_required_unless_exists_is_false(spec, shown):
    assert _error(lambda: expected_to_condition({"a": spec}, None)) == (
        INVALID + f"Value must be provided when Exists is {shown} for Attribute: a"
    )


def test_value_with_exists_false_is_refused():
    spec = {"a": {"Exists": False, "Value": {"S": "a"}}}
    assert _error(lambda: expected_to_condition(spec, None)) == (
        INVALID + "Value cannot be used when Exists is false for Attribute: a"
    )


def test_wrong_argument_count_is_refused():
    assert _error(
        lambda: filter_to_condition({"a": _op("BETWEEN", {"N": "1"})}, None, "ScanFilter")
    ) == (INVALID + "Invalid number of argument(s) for the BETWEEN ComparisonOperator")


def test_values_of_mixed_types_are_refused():
    assert _error(
        lambda: filter_to_condition({"a": _op("IN", {"S": "b"}, {"N": "1"})}, None, "QueryFilter")
    ) == (INVALID + "AttributeValues inside AttributeValueList must be of same type")


@pytest.mark.parametrize(
    "op, value, shown",
    [
        ("LT", {"BOOL": True}, "BOOL"),
        ("IN", {"L": []}, "L"),
        ("CONTAINS", {"SS": ["a"]}, "SS"),
        ("BEGINS_WITH", {"N": "1"}, "N"),
        ("GE", {"NULL": True}, "NULL"),
    ],
)
def test_operator_refuses_value_types_it_cannot_compare(op, value, shown):
    assert _error(lambda: filter_to_condition({"a": _op(op, value)}, None, "QueryFilter")) == (
        INVALID + f"ComparisonOperator {op} is not valid for {shown} AttributeValue type"
    )


def test_reversed_between_is_refused():
    assert _error(
        lambda: filter_to_condition(
            {"a": _op("BETWEEN", {"S": "b"}, {"S": "a"})}, None, "QueryFilter"
        )
    ) == (
        "The BETWEEN condition was provided a range where the lower bound is greater than the "
        "upper bound"
    )


def test_unknown_comparison_operator_is_an_enum_error():
    assert _error(
        lambda: filter_to_condition({"a": {"ComparisonOperator": "LIKE"}}, None, "ScanFilter")
    ) == (
        "1 validation error detected: Value 'LIKE' at 'scanFilter.a.member.comparisonOperator' "
        "failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, "
        "LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
    )


def test_empty_filter_is_no_condition():
    assert filter_to_condition({}, None, "QueryFilter") is None


def test_attribute_updates_become_set_and_remove():
    plan = attribute_updates_to_plan({"b": {"Value": {"S": "x"}}, "c": {"Action": "DELETE"}}, {"a"})
    assert plan.actions == (SetAction(Path(("b",)), Literal("x")), RemoveAction(Path(("c",))))


def test_attribute_update_without_value_must_be_delete():
    assert _error(lambda: attribute_updates_to_plan({"a": {"Action": "PUT"}}, set())) == (
        INVALID + "Only DELETE action is allowed when no attribute value is specified"
    )


@pytest.mark.parametrize("value", [{"S": "1"}, {"N": "1"}, {"M": {}}, {"L": []}])
def test_attribute_update_delete_takes_only_sets(value):
    kind = next(iter(value))
    assert _error(
        lambda: attribute_updates_to_plan({"a": {"Action": "DELETE", "Value": value}}, set())
    ) == (INVALID + f"DELETE action with value is not supported for the type {kind}")


@pytest.mark.parametrize(
    "value", [{"S": "1"}, {"B": "Yg=="}, {"NULL": True}, {"BOOL": True}, {"M": {}}]
)
def test_attribute_update_add_takes_numbers_sets_and_lists(value):
    kind = next(iter(value))
    assert _error(
        lambda: attribute_updates_to_plan({"a": {"Action": "ADD", "Value": value}}, set())
    ) == (INVALID + f"ADD action is not supported for the type {kind}")


def test_attribute_update_of_a_key_is_refused():
    assert _error(lambda: attribute_updates_to_plan({"id": {"Value": {"S": "x"}}}, {"id"})) == (
        INVALID + "Cannot update attribute id. This attribute is part of the key"
    )
