"""KeyConditionExpression and legacy KeyConditions: what a Query can index."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import (
    ExpressionContext,
    KeyCondition,
    key_conditions_to_key_condition,
    parse_key_condition,
)

D = Decimal
VALUES = {":v": "x", ":a": D(1), ":b": D(2), ":p": "pre"}


def _key(text: str, values: dict | None = None, hash_key: str = "a", range_key: str | None = "b"):
    return parse_key_condition(text, ExpressionContext(None, values or VALUES), hash_key, range_key)


def _error(text: str, values: dict | None = None, range_key: str | None = "b") -> str:
    with pytest.raises(ValidationException) as caught:
        _key(text, values, range_key=range_key)
    return caught.value.message


def test_hash_equality_alone():
    assert _key("a = :v") == KeyCondition("x", None, ())


@pytest.mark.parametrize(
    "text, op",
    [("b = :a", "EQ"), ("b < :a", "LT"), ("b <= :a", "LE"), ("b > :a", "GT"), ("b >= :a", "GE")],
)
def test_range_comparisons_map_to_operator_names(text, op):
    assert _key(f"a = :v AND {text}") == KeyCondition("x", op, (D(1),))


def test_value_on_the_left_mirrors_the_operator():
    assert _key(":a < b AND a = :v") == KeyCondition("x", "GT", (D(1),))


def test_between_on_the_range_key():
    assert _key("a = :v AND b BETWEEN :a AND :b") == KeyCondition("x", "BETWEEN", (D(1), D(2)))


def test_begins_with_on_the_range_key():
    assert _key("a = :v AND begins_with(b, :p)") == KeyCondition("x", "BEGINS_WITH", ("pre",))


def test_condition_errors_come_first_with_the_kind_prefix():
    assert _error("a = :v AND begins_with(b, :a)") == (
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: begins_with, operand type: N"
    )


@pytest.mark.parametrize(
    "text, word",
    [
        ("a > b and size(b) > c or a > c", "OR"),
        ("a in (b, size(c), d)", "IN"),
        ("attribute_exists(a)", "attribute_exists"),
        ("attribute_not_exists(a)", "attribute_not_exists"),
        ("contains(a.d, b)", "contains"),
        ("attribute_type(a, :v)", "attribute_type"),
        ("not a > b", "NOT"),
        ("a <> b", "<>"),
    ],
)
def test_operators_a_key_condition_cannot_use(text, word):
    assert _error(text, {":v": "S"}) == f"Invalid operator used in KeyConditionExpression: {word}"


@pytest.mark.parametrize(
    "text, word",
    [
        (":a between size(b) and size(a) and b > :b", "BETWEEN"),
        ("begins_with(:p, b) and a > :b", "begins_with"),
    ],
)
def test_key_attribute_must_come_first_in_between_and_begins_with(text, word):
    assert _error(text) == (
        f"Invalid condition in KeyConditionExpression: {word} operator must have the key "
        "attribute as its first operand"
    )


@pytest.mark.parametrize(
    "text", ["size(b) > a AND a.b > b AND b > c", "a > size(b.d)", "a between size(b) and size(a)"]
)
def test_key_condition_cannot_use_size(text):
    assert _error(text) == "KeyConditionExpressions cannot contain nested operations"


@pytest.mark.parametrize("text", ["b > a.b", "b between c[1] and d", "begins_with(a, b)"])
def test_one_condition_names_one_attribute(text):
    assert _error(text) == (
        "Invalid condition in KeyConditionExpression: "
        "Multiple attribute names used in one condition"
    )


@pytest.mark.parametrize("text", ["b.d > a AND c.d > e.f", "a.d > c", "b[0] > a"])
def test_key_condition_cannot_name_nested_attributes(text):
    assert _error(text) == "KeyConditionExpressions cannot have conditions on nested attributes"


def test_a_condition_must_name_a_key_attribute():
    assert _error(":b > :a AND a < :b") == (
        "Invalid condition in KeyConditionExpression: No key attribute specified"
    )


def test_each_key_may_have_one_condition():
    assert _error("(a > :a and b > :a) and (b > :a and c > :a)") == (
        "KeyConditionExpressions must only contain one condition per key"
    )


def test_at_most_two_conditions():
    assert _error("a = :v and b > :a and c = :a") == "Conditions can be of length 1 or 2 only"


def test_missing_hash_key_is_named():
    assert _error("b = :v") == "Query condition missed key schema element: a"


def test_second_condition_must_be_on_the_range_key():
    assert _error("a = :v and c = :v") == "Query condition missed key schema element: b"


def test_hash_key_needs_equality():
    assert _error("a > :v") == "Query key condition not supported"


def test_hash_only_schema_takes_one_condition():
    assert _error("a = :v and b = :v", range_key=None) == "Query key condition not supported"


# --- legacy KeyConditions ------------------------------------------------------------


def _legacy(conditions: dict, range_key: str | None = "b") -> KeyCondition:
    return key_conditions_to_key_condition(conditions, "a", range_key)


def _legacy_error(conditions: dict, range_key: str | None = "b") -> str:
    with pytest.raises(ValidationException) as caught:
        _legacy(conditions, range_key)
    return caught.value.message


def test_legacy_key_conditions_convert():
    conditions = {
        "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
        "b": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "2"}]},
    }
    assert _legacy(conditions) == KeyCondition("x", "BETWEEN", (D(1), D(2)))


def test_legacy_argument_count_is_checked():
    assert _legacy_error({"a": {"ComparisonOperator": "EQ"}}) == (
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ "
        "ComparisonOperator"
    )


def test_legacy_condition_count_is_checked():
    assert _legacy_error({}) == "Conditions can be of length 1 or 2 only"


def test_legacy_non_indexable_operator_is_refused():
    conditions = {
        "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
        "b": {"ComparisonOperator": "NOT_NULL"},
    }
    assert _legacy_error(conditions) == (
        "Attempted conditional constraint is not an indexable operation"
    )


def test_legacy_hash_range_operator_is_not_supported():
    conditions = {"a": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "x"}]}}
    assert _legacy_error(conditions) == "Query key condition not supported"


def test_legacy_missing_hash_key_is_named():
    conditions = {"b": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]}}
    assert _legacy_error(conditions) == "Query condition missed key schema element: a"
