"""Placeholders: ExpressionAttributeNames/Values validation and the unused check."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import SerializationException, ValidationException
from tablekeeper.engine.expressions import (
    ExpressionContext,
    check_expression_mix,
    decode_attribute_values,
    parse_condition,
    parse_projection,
    parse_update,
)


def _error(action) -> str:
    with pytest.raises(ValidationException) as caught:
        action()
    return caught.value.message


def test_empty_names_are_refused():
    assert (
        _error(lambda: ExpressionContext({}, None)) == "ExpressionAttributeNames must not be empty"
    )


def test_empty_values_are_refused():
    assert (
        _error(lambda: ExpressionContext(None, {})) == "ExpressionAttributeValues must not be empty"
    )


def test_name_key_without_hash_is_refused():
    assert _error(lambda: ExpressionContext({"a": "a"}, None)) == (
        'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"'
    )


def test_value_key_without_colon_is_refused():
    assert _error(lambda: ExpressionContext(None, {":b": "x", "b": "x"})) == (
        'ExpressionAttributeValues contains invalid key: Syntax error; key: "b"'
    )


def test_names_are_checked_before_values():
    assert "ExpressionAttributeNames" in _error(lambda: ExpressionContext.from_wire({}, {}))


def test_invalid_wire_value_names_its_key():
    assert _error(lambda: decode_attribute_values({":b": {"SS": []}})) == (
        "ExpressionAttributeValues contains invalid value: One or more parameter values were "
        "invalid: An string set  may not be empty for key :b"
    )


def test_wire_type_errors_stay_serialization_errors():
    with pytest.raises(SerializationException):
        decode_attribute_values({":b": {"S": 1}})


def test_unused_name_is_reported():
    ctx = ExpressionContext({"#a": "a", "#b": "b"}, {":v": Decimal(1)})
    parse_condition("#a = :v", ctx)
    assert _error(ctx.check_unused) == (
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
    )


def test_unused_value_is_reported():
    ctx = ExpressionContext(None, {":a": "a", ":b": "a", ":c": "a"})
    parse_update("remove a", ctx)
    parse_condition("a = :b", ctx)
    assert _error(ctx.check_unused) == (
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :c}"
    )


def test_names_used_by_any_expression_of_the_request_count():
    ctx = ExpressionContext({"#a": "a", "#b": "b"}, {":v": Decimal(1)})
    parse_condition("#a = :v", ctx)
    parse_projection("#b", ctx)
    ctx.check_unused()


def test_placeholders_of_an_abandoned_parse_branch_stay_used():
    # "(#a) = :v" first tries a condition group; the operand branch succeeds.
    ctx = ExpressionContext({"#a": "a"}, {":v": Decimal(1)})
    parse_condition("(#a) = :v", ctx)
    ctx.check_unused()


def test_mixing_expression_and_legacy_parameters_is_refused():
    request = {
        "Expected": {},
        "AttributeUpdates": {},
        "UpdateExpression": "",
        "ConditionExpression": "",
    }
    assert _error(
        lambda: check_expression_mix(
            request, ["UpdateExpression", "ConditionExpression"], ["AttributeUpdates", "Expected"]
        )
    ) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributeUpdates, Expected} "
        "Expression parameters: {UpdateExpression, ConditionExpression}"
    )


def test_names_without_an_expression_are_refused():
    request = {"Expected": {}, "ExpressionAttributeNames": {}, "ExpressionAttributeValues": {}}
    assert (
        _error(
            lambda: check_expression_mix(
                request, ["UpdateExpression", "ConditionExpression"], ["Expected"]
            )
        )
        == "ExpressionAttributeNames can only be specified when using expressions"
    )


def test_values_without_an_expression_name_the_missing_ones():
    request = {"Expected": {}, "ExpressionAttributeValues": {}}
    assert _error(
        lambda: check_expression_mix(
            request, ["UpdateExpression", "ConditionExpression"], ["Expected"]
        )
    ) == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "UpdateExpression and ConditionExpression are null"
    )


def test_values_need_an_expression_other_than_a_projection():
    request = {"ProjectionExpression": "a", "ExpressionAttributeValues": {":v": {"S": "x"}}}
    assert _error(
        lambda: check_expression_mix(
            request, ["ProjectionExpression", "FilterExpression"], ["AttributesToGet"]
        )
    ) == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "FilterExpression is null"
    )


def test_query_may_pair_key_conditions_with_a_filter_expression():
    request = {"KeyConditions": {}, "FilterExpression": "a = :v"}
    check_expression_mix(
        request,
        ["ProjectionExpression", "FilterExpression", "KeyConditionExpression"],
        ["AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"],
    )
