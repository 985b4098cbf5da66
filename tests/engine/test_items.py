"""PutItem, GetItem, UpdateItem, DeleteItem against a real engine, DynamoDB-exact.

Every expected error code and message is DynamoDB's own, as measured against
the service (AWS API reference; dynalite's and ScyllaDB Alternator's suites,
which were run against DynamoDB).  Tests talk wire format through a boto3
low-level client; ``raw`` skips botocore's client-side checks so that the
engine sees the malformed requests a careless client would send.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, unique_name

Wire = dict[str, Any]

MAX_ITEM = 409_600
INVALID = "One or more parameter values were invalid: "
NOT_FOUND = ("ResourceNotFoundException", "Requested resource not found")
CHECK_FAILED = ("ConditionalCheckFailedException", "The conditional request failed")
SCHEMA_MISMATCH = ("ValidationException", "The provided key element does not match the schema")
TOO_BIG = ("ValidationException", "Item size has exceeded the maximum allowed size")
RETURN_VALUES_ENUM = "[ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"

CAPACITY_SPLIT = (
    "capacity.Consumed.to_wire adds ReadCapacityUnits/WriteCapacityUnits; DynamoDB "
    "reports only CapacityUnits (and Table.CapacityUnits) for single-item operations"
)
ENUM_ORDER = (
    "common.RETURN_VALUES lists the enum in model order; DynamoDB's message lists "
    + RETURN_VALUES_ENUM
)


# --- fixtures and helpers ------------------------------------------------------------


@pytest.fixture(scope="module")
def table(ddb) -> str:  # type: ignore[no-untyped-def]
    """Hash key pk (S)."""
    return create_table(ddb, unique_name("items"))


@pytest.fixture(scope="module")
def ranged(ddb) -> str:  # type: ignore[no-untyped-def]
    """Hash key pk (S), range key sk (S)."""
    return create_table(ddb, unique_name("ranged"), range_key="sk")


@pytest.fixture(scope="module")
def binary(ddb) -> str:  # type: ignore[no-untyped-def]
    """Hash key pk (B)."""
    return create_table(ddb, unique_name("binary"), hash_type="B")


@pytest.fixture(scope="module")
def missing() -> str:
    return unique_name("missing")


def S(text: str) -> Wire:
    return {"S": text}


def N(text: str) -> Wire:
    return {"N": text}


def new_key() -> Wire:
    return {"pk": S(uuid.uuid4().hex)}


def error_of(call: Callable[[], object]) -> tuple[str, str]:
    """The (code, message) of the error a call must raise."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


def invalid(message: str) -> tuple[str, str]:
    return "ValidationException", message


def one_error(value: str, member: str, constraint: str) -> tuple[str, str]:
    return invalid(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def put(ddb, table: str, item: Wire, **extra: Any) -> Wire:  # type: ignore[no-untyped-def]
    return ddb.put_item(TableName=table, Item=item, **extra)  # type: ignore[no-any-return]


def get(ddb, table: str, key: Wire) -> Wire | None:  # type: ignore[no-untyped-def]
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")  # type: ignore[no-any-return]


def round_trip(ddb, table: str, attributes: Wire) -> Wire | None:  # type: ignore[no-untyped-def]
    """Put the attributes under a fresh key; the stored item without its key."""
    key = new_key()
    put(ddb, table, {**key, **attributes})
    stored = get(ddb, table, key)
    assert stored is not None
    stored.pop("pk")
    return stored


def sized_item(key: Wire, size: int, name: str = "b") -> Wire:
    """An item of exactly ``size`` bytes (names and string values by UTF-8 length)."""
    used = sum(len(k.encode()) + len(v["S"].encode()) for k, v in key.items())
    return {**key, name: S("x" * (size - used - len(name.encode())))}


def deep(kind: str, levels: int) -> Wire:
    """A value nesting ``levels`` maps or lists around a string: the string is level levels+1."""
    value: Wire = S("leaf")
    for _ in range(levels):
        value = {"M": {"n": value}} if kind == "M" else {"L": [value]}
    return value


# --- every attribute type round-trips exactly --------------------------------------------


def test_string_round_trips_byte_for_byte_including_non_ascii(ddb, table) -> None:  # type: ignore[no-untyped-def]
    text = "grüße 東京 🚀 \u0000 \t\n"
    assert round_trip(ddb, table, {"a": S(text)}) == {"a": S(text)}


def test_empty_string_is_allowed_outside_keys(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert round_trip(ddb, table, {"a": S(""), "m": {"M": {"e": S("")}}}) == {
        "a": S(""), "m": {"M": {"e": S("")}},
    }


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("-1.2345678901234567890123456789012345678", "-1.2345678901234567890123456789012345678"),
        ("1E+125", "1" + "0" * 125),
        ("9.9999999999999999999999999999999999999E+125", "9" * 38 + "0" * 88),
        ("-1E-130", "-0." + "0" * 129 + "1"),
        ("0.0", "0"),
        ("-0", "0"),
        ("0E+10", "0"),
        ("01.50", "1.5"),
        ("100", "100"),
        ("-0015.789e6", "-15789000"),
    ],
)
def test_number_is_stored_normalized_in_plain_notation(ddb, table, sent: str, stored: str) -> None:  # type: ignore[no-untyped-def]
    assert round_trip(ddb, table, {"n": N(sent)}) == {"n": N(stored)}


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ("123456789012345678901234567890123456789",
         "Attempting to store more than 38 significant digits in a Number"),
        ("1E+126",
         "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("-1E+126",
         "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("1E-131",
         "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
        ("abc", "The parameter cannot be converted to a numeric value: abc"),
        ("", "The parameter cannot be converted to a numeric value"),
    ],
)
def test_number_out_of_range_or_malformed_is_rejected(ddb, table, sent: str, message: str) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, table, {**new_key(), "n": N(sent)})) == invalid(message)


def test_binary_round_trips_including_empty_and_all_byte_values(ddb, table) -> None:  # type: ignore[no-untyped-def]
    blob = bytes(range(256))
    assert round_trip(ddb, table, {"b": {"B": blob}, "e": {"B": b""}}) == {
        "b": {"B": blob}, "e": {"B": b""},
    }


def test_bool_and_null_round_trip(ddb, table) -> None:  # type: ignore[no-untyped-def]
    sent = {"t": {"BOOL": True}, "f": {"BOOL": False}, "z": {"NULL": True}}
    assert round_trip(ddb, table, sent) == sent


def test_nested_maps_and_lists_of_every_type_round_trip(ddb, table) -> None:  # type: ignore[no-untyped-def]
    every = [S("a"), N("-56.789"), {"B": b"b"}, {"BOOL": True}, {"NULL": True},
             {"SS": ["a"]}, {"NS": ["-56.789"]}, {"BS": [b"b"]}, {"L": []}, {"M": {}}]
    sent = {"l": {"L": every}, "m": {"M": {str(i): v for i, v in enumerate(every)}}}
    assert round_trip(ddb, table, sent) == sent


@pytest.mark.parametrize("kind", ["M", "L"])
def test_value_nested_32_levels_deep_is_accepted(ddb, table, kind: str) -> None:  # type: ignore[no-untyped-def]
    value = deep(kind, 31)  # 31 documents, the string is level 32
    assert round_trip(ddb, table, {"d": value}) == {"d": value}


@pytest.mark.parametrize("kind", ["M", "L"])
def test_value_nested_33_levels_deep_is_rejected(ddb, table, kind: str) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "d": deep(kind, 32)}
    assert error_of(lambda: put(ddb, table, item)) == invalid(
        "Nesting Levels have exceeded supported limits")


def test_value_nested_far_too_deep_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "d": deep("M", 40)}
    assert error_of(lambda: put(ddb, table, item)) == invalid(
        "Nesting Levels have exceeded supported limits")


def test_sets_come_back_in_dynamodb_order(ddb, table) -> None:  # type: ignore[no-untyped-def]
    sent = {"ss": {"SS": ["b", "", "a", "é"]}, "ns": {"NS": ["10", "-1", "2.5"]},
            "bs": {"BS": [b"\xff", b"", b"\x00"]}}
    assert round_trip(ddb, table, sent) == {
        "ss": {"SS": ["", "a", "b", "é"]},
        "ns": {"NS": ["-1", "2.5", "10"]},
        "bs": {"BS": [b"", b"\x00", b"\xff"]},
    }


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("SS", "An string set  may not be empty"),
        ("NS", "An number set  may not be empty"),
        ("BS", "Binary sets should not be empty"),
    ],
)
def test_empty_set_is_rejected(raw, table, kind: str, message: str) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "s": {kind: []}}
    assert error_of(lambda: put(raw, table, item)) == invalid(INVALID + message)


def test_string_set_with_duplicates_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "s": {"SS": ["a", "a"]}}
    assert error_of(lambda: put(ddb, table, item)) == invalid(
        INVALID + "Input collection [a, a] contains duplicates.")


def test_binary_set_with_duplicates_is_rejected(raw, table) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "s": {"BS": [b"b", b"b"]}}
    assert error_of(lambda: put(raw, table, item)) == invalid(
        INVALID + "Input collection [Yg==, Yg==]of type BS contains duplicates.")


def test_numbers_equal_in_value_are_duplicates_in_a_number_set(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "s": {"NS": ["1", "1.0"]}}
    assert error_of(lambda: put(ddb, table, item)) == invalid("Input collection contains duplicates")


def test_attribute_value_without_a_type_is_rejected(raw, table) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "a": {}}
    assert error_of(lambda: put(raw, table, item)) == invalid(
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")


def test_attribute_value_with_two_types_is_rejected(raw, table) -> None:  # type: ignore[no-untyped-def]
    item = {**new_key(), "a": {"S": "a", "N": "1"}}
    assert error_of(lambda: put(raw, table, item)) == invalid(
        "Supplied AttributeValue has more than one datatypes set, "
        "must contain exactly one of the supported datatypes")


# --- key rules ----------------------------------------------------------------------------------


def test_put_without_the_hash_key_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, table, {"other": S("x")})) == invalid(
        INVALID + "Missing the key pk in the item")


def test_put_without_the_range_key_is_rejected(ddb, ranged) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, ranged, new_key())) == invalid(
        INVALID + "Missing the key sk in the item")


@pytest.mark.parametrize(
    ("value", "actual"),
    [(N("1"), "N"), ({"B": b"a"}, "B"), ({"SS": ["a"]}, "SS"), ({"BOOL": True}, "BOOL")],
)
def test_put_with_a_key_of_the_wrong_type_is_rejected(ddb, table, value: Wire, actual: str) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, table, {"pk": value})) == invalid(
        INVALID + f"Type mismatch for key pk expected: S actual: {actual}")


def test_put_with_an_empty_string_key_is_rejected(ddb, ranged) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, ranged, {"pk": S("a"), "sk": S("")})) == invalid(
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: sk")


def test_put_with_an_empty_binary_key_is_rejected(ddb, binary) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, binary, {"pk": {"B": b""}})) == invalid(
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty binary value. Key: pk")


def test_hash_key_of_2048_utf8_bytes_is_accepted(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = {"pk": S("é" * 1024)}
    put(ddb, table, key)
    assert get(ddb, table, key) == key


def test_hash_key_over_2048_utf8_bytes_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, table, {"pk": S("é" * 1024 + "a")})) == invalid(
        INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes")


def test_range_key_of_1024_bytes_is_accepted(ddb, ranged) -> None:  # type: ignore[no-untyped-def]
    key = {"pk": S("a"), "sk": S("s" * 1024)}
    put(ddb, ranged, key)
    assert get(ddb, ranged, key) == key


def test_range_key_over_1024_bytes_is_rejected(ddb, ranged) -> None:  # type: ignore[no-untyped-def]
    item = {"pk": S("a"), "sk": S("s" * 1025)}
    assert error_of(lambda: put(ddb, ranged, item)) == invalid(
        INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes")


def test_hash_key_size_limit_applies_to_key_parameters(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = {"pk": S("k" * 2049)}
    assert error_of(lambda: ddb.get_item(TableName=table, Key=key)) == invalid(
        INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes")


KEYED_OPERATIONS = ["get_item", "delete_item", "update_item"]


@pytest.mark.parametrize("operation", KEYED_OPERATIONS)
def test_key_with_an_extra_attribute_does_not_match_the_schema(ddb, table, operation: str) -> None:  # type: ignore[no-untyped-def]
    key = {**new_key(), "extra": S("x")}
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=table, Key=key)) == SCHEMA_MISMATCH


@pytest.mark.parametrize("operation", KEYED_OPERATIONS)
def test_key_of_the_wrong_type_does_not_match_the_schema(ddb, table, operation: str) -> None:  # type: ignore[no-untyped-def]
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=table, Key={"pk": N("1")})) == SCHEMA_MISMATCH


@pytest.mark.parametrize("operation", KEYED_OPERATIONS)
def test_key_without_the_range_key_does_not_match_the_schema(ddb, ranged, operation: str) -> None:  # type: ignore[no-untyped-def]
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=ranged, Key=new_key())) == SCHEMA_MISMATCH


@pytest.mark.parametrize("operation", KEYED_OPERATIONS)
def test_key_with_an_empty_string_is_rejected(ddb, table, operation: str) -> None:  # type: ignore[no-untyped-def]
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=table, Key={"pk": S("")})) == invalid(
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk")


# --- item size: 400 KB, names included ------------------------------------------------------


def test_item_of_exactly_409600_bytes_is_accepted(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = sized_item(new_key(), MAX_ITEM)
    put(ddb, table, item)
    assert get(ddb, table, {"pk": item["pk"]}) == item


def test_item_of_409601_bytes_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = sized_item(new_key(), MAX_ITEM + 1)
    assert error_of(lambda: put(ddb, table, item)) == TOO_BIG


def test_attribute_names_count_toward_the_item_size(ddb, table) -> None:  # type: ignore[no-untyped-def]
    long_name = "n" * 255
    item = sized_item(new_key(), MAX_ITEM + 1, name=long_name)
    assert error_of(lambda: put(ddb, table, item)) == TOO_BIG
    item[long_name] = S(item[long_name]["S"][1:])
    put(ddb, table, item)


def test_item_size_counts_numbers_as_dynamodb_stores_them(ddb, table) -> None:  # type: ignore[no-untyped-def]
    # Seven significant digits at exponent 125 store as 5 bytes (base-100 digits
    # and an exponent byte), not as their 126 characters of text.
    number = "1111111" + "0" * 119
    key = new_key()
    used = 2 + len(key["pk"]["S"]) + (1 + 5) * 2 + 1
    item = {**key, "c": N(number), "d": N(number), "b": S("x" * (MAX_ITEM - used))}
    put(ddb, table, item)
    item["b"] = S(item["b"]["S"] + "x")
    assert error_of(lambda: put(ddb, table, item)) == TOO_BIG


def test_item_size_is_checked_before_the_table_is_looked_up(ddb, missing) -> None:  # type: ignore[no-untyped-def]
    item = sized_item(new_key(), MAX_ITEM + 1)
    assert error_of(lambda: put(ddb, missing, item)) == TOO_BIG


def test_update_may_grow_an_item_to_exactly_409600_bytes(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("small")})
    value = sized_item(key, MAX_ITEM, name="b")["b"]
    ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE a SET b = :v",
                    ExpressionAttributeValues={":v": value})
    assert get(ddb, table, key) == {**key, "b": value}


def test_update_growing_an_item_past_409600_bytes_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("small")})
    value = sized_item(key, MAX_ITEM + 1 - len("a") - len("small"), name="b")["b"]
    assert error_of(lambda: ddb.update_item(
        TableName=table, Key=key, UpdateExpression="SET b = :v",
        ExpressionAttributeValues={":v": value},
    )) == invalid("Item size to update has exceeded the maximum allowed size")
    assert get(ddb, table, key) == {**key, "a": S("small")}


# --- PutItem, GetItem, DeleteItem basics -------------------------------------------------------


def test_put_replaces_the_whole_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1"), "b": S("2")})
    put(ddb, table, {**key, "c": S("3")})
    assert get(ddb, table, key) == {**key, "c": S("3")}


def test_put_answers_an_empty_body(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = put(ddb, table, new_key())
    response.pop("ResponseMetadata")
    assert response == {}


def test_get_of_an_absent_item_returns_no_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.get_item(TableName=table, Key=new_key())
    assert "Item" not in response


def test_get_by_range_key_returns_only_that_item(ddb, ranged) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, ranged, {**key, "sk": S("a"), "v": S("first")})
    put(ddb, ranged, {**key, "sk": S("b"), "v": S("second")})
    assert get(ddb, ranged, {**key, "sk": S("a")}) == {**key, "sk": S("a"), "v": S("first")}


def test_get_projection_expression_returns_only_the_named_paths(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1"), "m": {"M": {"x": N("1"), "y": N("2")}}, "z": S("z")})
    response = ddb.get_item(TableName=table, Key=key, ProjectionExpression="a, #m.x",
                            ExpressionAttributeNames={"#m": "m"})
    assert response["Item"] == {"a": S("1"), "m": {"M": {"x": N("1")}}}


def test_get_attributes_to_get_returns_only_those_attributes(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1"), "b": S("2")})
    response = ddb.get_item(TableName=table, Key=key, AttributesToGet=["b", "nope"])
    assert response["Item"] == {"b": S("2")}


def test_get_projection_matching_nothing_returns_an_empty_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1")})
    response = ddb.get_item(TableName=table, Key=key, ProjectionExpression="absent")
    assert response["Item"] == {}


def test_delete_removes_the_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1")})
    ddb.delete_item(TableName=table, Key=key)
    assert get(ddb, table, key) is None


def test_delete_of_an_absent_item_succeeds(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.delete_item(TableName=table, Key=new_key(), ReturnValues="ALL_OLD")
    assert "Attributes" not in response


# --- ReturnValues -------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["put_item", "delete_item"])
def test_return_values_all_old_returns_the_replaced_item(ddb, table, operation: str) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    old = {**key, "a": N("-0015.789e6")}
    put(ddb, table, old)
    args = {"Item": {**key, "b": S("new")}} if operation == "put_item" else {"Key": key}
    response = getattr(ddb, operation)(TableName=table, ReturnValues="ALL_OLD", **args)
    assert response["Attributes"] == {**key, "a": N("-15789000")}


def test_put_return_values_all_old_of_a_new_item_returns_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = put(ddb, table, new_key(), ReturnValues="ALL_OLD")
    assert "Attributes" not in response


@pytest.mark.parametrize("operation", ["put_item", "delete_item", "update_item"])
def test_return_values_none_returns_nothing(ddb, table, operation: str) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1")})
    args = {"Item": {**key, "b": S("2")}} if operation == "put_item" else {"Key": key}
    response = getattr(ddb, operation)(TableName=table, ReturnValues="NONE", **args)
    assert "Attributes" not in response


@pytest.mark.parametrize("operation", ["put_item", "delete_item"])
@pytest.mark.parametrize("mode", ["UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"])
def test_put_and_delete_refuse_return_values_other_than_all_old(  # type: ignore[no-untyped-def]
    ddb, table, operation: str, mode: str
) -> None:
    key = new_key()
    args = {"Item": key} if operation == "put_item" else {"Key": key}
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=table, ReturnValues=mode, **args)) == invalid(
        "ReturnValues can only be ALL_OLD or NONE")


@pytest.mark.parametrize("operation", ["put_item", "delete_item", "update_item"])
def test_unknown_return_values_fails_the_enum_constraint(raw, table, operation: str) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    args = {"Item": key} if operation == "put_item" else {"Key": key}
    call = getattr(raw, operation)
    assert error_of(lambda: call(TableName=table, ReturnValues="none", **args)) == one_error(
        "none", "returnValues", f"Member must satisfy enum value set: {RETURN_VALUES_ENUM}")


def test_unknown_return_values_on_condition_check_failure_fails_the_enum_constraint(raw, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.put_item(
        TableName=table, Item=new_key(), ReturnValuesOnConditionCheckFailure="ALL_NEW",
    )) == one_error("ALL_NEW", "returnValuesOnConditionCheckFailure",
                    "Member must satisfy enum value set: [ALL_OLD, NONE]")


def _update(ddb, table: str, key: Wire, expression: str, mode: str, **values: Wire) -> Wire | None:  # type: ignore[no-untyped-def]
    args: dict[str, Any] = {"UpdateExpression": expression, "ReturnValues": mode}
    if values:
        args["ExpressionAttributeValues"] = {f":{name}": v for name, v in values.items()}
    return ddb.update_item(TableName=table, Key=key, **args).get("Attributes")  # type: ignore[no-any-return]


def test_update_all_old_returns_the_whole_old_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi"), "b": S("dog")})
    assert _update(ddb, table, key, "SET b = :v", "ALL_OLD", v=S("cat")) == {
        **key, "a": S("hi"), "b": S("dog")}


def test_update_all_old_of_a_new_item_returns_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert _update(ddb, table, new_key(), "SET b = :v", "ALL_OLD", v=S("cat")) is None


def test_update_all_new_returns_the_whole_new_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi"), "b": S("dog")})
    assert _update(ddb, table, key, "SET b = :v REMOVE a", "ALL_NEW", v=S("cat")) == {
        **key, "b": S("cat")}


def test_update_updated_old_returns_only_overwritten_attributes(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi"), "b": S("dog")})
    assert _update(ddb, table, key, "SET b = :v, c = :w", "UPDATED_OLD",
                   v=S("cat"), w=S("new")) == {"b": S("dog")}


def test_update_updated_old_of_only_new_attributes_returns_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi")})
    assert _update(ddb, table, key, "SET c = :v", "UPDATED_OLD", v=S("new")) is None


def test_update_updated_old_includes_removed_attributes(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi"), "b": S("dog")})
    assert _update(ddb, table, key, "REMOVE b", "UPDATED_OLD") == {"b": S("dog")}


def test_update_updated_new_returns_set_attributes_but_not_removed_ones(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi"), "b": S("dog"), "c": S("x")})
    assert _update(ddb, table, key, "SET a = :v, b = :w REMOVE c", "UPDATED_NEW",
                   v=S("1"), w=S("2")) == {"a": S("1"), "b": S("2")}


def test_update_updated_new_of_a_remove_returns_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("hi")})
    assert _update(ddb, table, key, "REMOVE a", "UPDATED_NEW") is None


def test_update_updated_new_returns_computed_values(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "n": N("1")})
    assert _update(ddb, table, key, "SET n = n + :one", "UPDATED_NEW", one=N("1")) == {
        "n": N("2")}


def test_update_updated_new_never_returns_the_key_of_a_created_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert _update(ddb, table, new_key(), "SET a = :v", "UPDATED_NEW", v=N("1")) == {"a": N("1")}


def test_update_updated_old_of_a_nested_path_returns_only_that_fragment(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": {"M": {"b": S("dog"), "c": {"L": [N("1"), N("2")]}}}})
    assert _update(ddb, table, key, "SET a.b = :v, a.c[1] = :w", "UPDATED_OLD",
                   v=S("cat"), w=N("7")) == {"a": {"M": {"b": S("dog"), "c": {"L": [N("2")]}}}}


def test_update_updated_new_of_a_nested_path_returns_only_that_fragment(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": {"M": {"b": S("dog"), "keep": S("k")}}})
    assert _update(ddb, table, key, "SET a.b = :v", "UPDATED_NEW", v=S("cat")) == {
        "a": {"M": {"b": S("cat")}}}


# --- ReturnValuesOnConditionCheckFailure -----------------------------------------------------


def _failing_put(ddb, table: str, key: Wire, mode: str) -> ClientError:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        put(ddb, table, {**key, "s": S("new")}, ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure=mode)
    return caught.value


def test_failed_condition_returns_the_item_with_all_old(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "s": S("old")})
    failure = _failing_put(ddb, table, key, "ALL_OLD")
    assert failure.response["Error"]["Code"] == CHECK_FAILED[0]
    assert failure.response["Item"] == {**key, "s": S("old")}


def test_failed_condition_returns_no_item_with_none(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "s": S("old")})
    assert "Item" not in _failing_put(ddb, table, key, "NONE").response


def test_failed_condition_on_an_absent_item_returns_no_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        ddb.delete_item(TableName=table, Key=new_key(), ConditionExpression="attribute_exists(pk)",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert "Item" not in caught.value.response


def test_failed_update_condition_returns_the_item_with_all_old(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "s": S("old")})
    with pytest.raises(ClientError) as caught:
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET s = :v",
                        ConditionExpression="s = :v", ExpressionAttributeValues={":v": S("x")},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert caught.value.response["Item"] == {**key, "s": S("old")}


# --- conditions: expressions and the legacy parameters -----------------------------------


def test_condition_that_holds_lets_the_write_happen(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": N("1")}, ConditionExpression="attribute_not_exists(pk)")
    assert get(ddb, table, key) == {**key, "v": N("1")}


def test_condition_that_fails_is_reported_and_writes_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": N("1")})
    assert error_of(lambda: put(ddb, table, {**key, "v": N("2")},
                                ConditionExpression="attribute_not_exists(pk)")) == CHECK_FAILED
    assert get(ddb, table, key) == {**key, "v": N("1")}


def test_failed_delete_condition_keeps_the_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": N("1")})
    assert error_of(lambda: ddb.delete_item(
        TableName=table, Key=key, ConditionExpression="v = :two",
        ExpressionAttributeValues={":two": N("2")})) == CHECK_FAILED
    assert get(ddb, table, key) == {**key, "v": N("1")}


def test_failed_update_condition_changes_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": N("1")})
    assert error_of(lambda: ddb.update_item(
        TableName=table, Key=key, UpdateExpression="SET v = :two", ConditionExpression="v = :two",
        ExpressionAttributeValues={":two": N("2")})) == CHECK_FAILED
    assert get(ddb, table, key) == {**key, "v": N("1")}


def test_legacy_expected_exists_false_refuses_to_overwrite(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, key, Expected={"pk": {"Exists": False}})
    assert error_of(lambda: put(ddb, table, key, Expected={"pk": {"Exists": False}})) == CHECK_FAILED


def test_legacy_expected_value_must_equal_the_stored_value(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": S("a")})
    put(ddb, table, {**key, "v": S("b")}, Expected={"v": {"Value": S("a")}})
    assert error_of(lambda: put(ddb, table, key, Expected={"v": {"Value": S("a")}})) == CHECK_FAILED


def test_legacy_conditional_operator_or_passes_when_one_condition_holds(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": S("a")})
    put(ddb, table, {**key, "v": S("b")}, ConditionalOperator="OR", Expected={
        "v": {"ComparisonOperator": "EQ", "AttributeValueList": [S("nope")]},
        "w": {"ComparisonOperator": "NULL"},
    })
    assert get(ddb, table, key) == {**key, "v": S("b")}


def test_legacy_conditions_are_anded_by_default(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "v": S("a")})
    assert error_of(lambda: put(ddb, table, key, Expected={
        "v": {"ComparisonOperator": "EQ", "AttributeValueList": [S("nope")]},
        "w": {"ComparisonOperator": "NULL"},
    })) == CHECK_FAILED


@pytest.mark.parametrize(
    ("operation", "args", "legacy", "modern"),
    [
        ("put_item", {"Item": {"pk": S("k")}, "ConditionExpression": "attribute_exists(pk)",
                      "Expected": {"pk": {"Exists": False}}}, "Expected", "ConditionExpression"),
        ("delete_item", {"Key": {"pk": S("k")}, "ConditionExpression": "attribute_exists(pk)",
                         "Expected": {"pk": {"Exists": False}}}, "Expected", "ConditionExpression"),
        ("update_item", {"Key": {"pk": S("k")}, "UpdateExpression": "REMOVE a",
                         "AttributeUpdates": {"a": {"Action": "DELETE"}}},
         "AttributeUpdates", "UpdateExpression"),
        ("get_item", {"Key": {"pk": S("k")}, "ProjectionExpression": "a",
                      "AttributesToGet": ["a"]}, "AttributesToGet", "ProjectionExpression"),
    ],
)
def test_expression_and_legacy_parameters_cannot_be_mixed(  # type: ignore[no-untyped-def]
    ddb, table, operation: str, args: Wire, legacy: str, modern: str
) -> None:
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=table, **args)) == invalid(
        "Can not use both expression and non-expression parameters in the same request: "
        f"Non-expression parameters: {{{legacy}}} Expression parameters: {{{modern}}}")


WITHOUT_CONDITIONS = "ConditionalOperator cannot be used without Filter or Expected"
ONE_CONDITION = "ConditionalOperator can only be used when Filter or Expected has two or more elements"
EQ_A = {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}


@pytest.mark.parametrize(
    ("operation", "args", "message"),
    [
        ("put_item", {"Item": {"pk": S("k")}}, WITHOUT_CONDITIONS),
        ("put_item", {"Item": {"pk": S("k")}, "Expected": {}}, WITHOUT_CONDITIONS),
        ("put_item", {"Item": {"pk": S("k")}, "Expected": {"v": EQ_A}}, ONE_CONDITION),
        ("delete_item", {"Key": {"pk": S("k")}}, WITHOUT_CONDITIONS),
        ("delete_item", {"Key": {"pk": S("k")}, "Expected": {"v": EQ_A}}, ONE_CONDITION),
        ("update_item", {"Key": {"pk": S("k")}}, WITHOUT_CONDITIONS),
        ("update_item", {"Key": {"pk": S("k")}, "AttributeUpdates": {"a": {"Value": S("v")}}},
         WITHOUT_CONDITIONS),
        ("update_item", {"Key": {"pk": S("k")}, "Expected": {"v": EQ_A}}, ONE_CONDITION),
    ],
)
def test_a_conditional_operator_needs_two_expected_conditions_to_join(  # type: ignore[no-untyped-def]
    ddb, table, operation: str, args: Wire, message: str
) -> None:
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=table, ConditionalOperator="AND", **args)) == invalid(message)


@pytest.mark.parametrize(
    ("args", "legacy"),
    [
        ({}, "ConditionalOperator"),
        ({"Expected": {"v": EQ_A, "w": EQ_A}}, "Expected, ConditionalOperator"),
    ],
)
def test_a_conditional_operator_counts_as_a_legacy_parameter(  # type: ignore[no-untyped-def]
    ddb, table, args: Wire, legacy: str
) -> None:
    assert error_of(lambda: put(ddb, table, {"pk": S("k")}, ConditionalOperator="OR",
                                ConditionExpression="attribute_exists(pk)", **args)) == invalid(
        "Can not use both expression and non-expression parameters in the same request: "
        f"Non-expression parameters: {{{legacy}}} Expression parameters: {{ConditionExpression}}")


def test_unused_expression_attribute_name_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.update_item(
        TableName=table, Key=new_key(), UpdateExpression="SET a = :v",
        ExpressionAttributeValues={":v": S("x")}, ExpressionAttributeNames={"#unused": "b"},
    )) == invalid("Value provided in ExpressionAttributeNames unused in expressions: "
                  "keys: {#unused}")


def test_unused_expression_attribute_value_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(
        ddb, table, new_key(), ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeValues={":unused": S("x")},
    )) == invalid("Value provided in ExpressionAttributeValues unused in expressions: "
                  "keys: {:unused}")


def test_name_used_only_in_the_condition_counts_as_used(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET a = :v",
                    ConditionExpression="attribute_not_exists(#p)",
                    ExpressionAttributeNames={"#p": "pk"}, ExpressionAttributeValues={":v": S("x")})
    assert get(ddb, table, key) == {**key, "a": S("x")}


def test_expression_attribute_values_without_an_expression_are_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: put(ddb, table, new_key(),
                                ExpressionAttributeValues={":v": S("x")})) == invalid(
        "ExpressionAttributeValues can only be specified when using expressions: "
        "ConditionExpression is null")


def test_undefined_expression_attribute_value_is_rejected(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.update_item(
        TableName=table, Key=new_key(), UpdateExpression="SET a = :v",
    )) == invalid("Invalid UpdateExpression: An expression attribute value used in expression "
                  "is not defined; attribute value: :v")


# --- UpdateItem ------------------------------------------------------------------------------


def test_update_of_an_absent_item_creates_it(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET a = :v",
                    ExpressionAttributeValues={":v": S("x")})
    assert get(ddb, table, key) == {**key, "a": S("x")}


def test_update_with_only_a_key_creates_an_item_of_just_the_key(ddb, ranged) -> None:  # type: ignore[no-untyped-def]
    key = {**new_key(), "sk": S("s")}
    ddb.update_item(TableName=ranged, Key=key)
    assert get(ddb, ranged, key) == key


@pytest.mark.parametrize(
    ("expression", "values"),
    [("REMOVE a", None), ("REMOVE a.b[1], c", None), ("DELETE s :v", {":v": {"SS": ["x"]}})],
)
def test_update_that_only_removes_does_not_create_an_absent_item(  # type: ignore[no-untyped-def]
    ddb, table, expression: str, values: Wire | None
) -> None:
    key = new_key()
    args = {"ExpressionAttributeValues": values} if values else {}
    response = ddb.update_item(TableName=table, Key=key, UpdateExpression=expression,
                               ReturnValues="ALL_NEW", **args)
    assert "Attributes" not in response
    assert get(ddb, table, key) is None


def test_update_set_writes_values_paths_and_functions(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "n": N("10"), "l": {"L": [S("a")]}, "m": {"M": {}}})
    ddb.update_item(
        TableName=table, Key=key,
        UpdateExpression="SET n = n - :one, l = list_append(l, :more), m.x = :s, "
                         "c = if_not_exists(c, n), head = l[0]",
        ExpressionAttributeValues={":one": N("1"), ":more": {"L": [S("b")]}, ":s": S("deep")},
    )
    assert get(ddb, table, key) == {
        **key, "n": N("9"), "l": {"L": [S("a"), S("b")]}, "m": {"M": {"x": S("deep")}},
        "c": N("10"), "head": S("a"),
    }


def test_update_remove_deletes_attributes_and_nested_elements(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("1"), "l": {"L": [N("1"), N("2"), N("3")]},
                     "m": {"M": {"x": S("x"), "y": S("y")}}})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE a, l[1], m.x, ghost")
    assert get(ddb, table, key) == {**key, "l": {"L": [N("1"), N("3")]}, "m": {"M": {"y": S("y")}}}


def test_update_add_increments_numbers_and_creates_them(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "n": N("10")})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="ADD n :v, fresh :v",
                    ExpressionAttributeValues={":v": N("-2.5")})
    assert get(ddb, table, key) == {**key, "n": N("7.5"), "fresh": N("-2.5")}


def test_update_add_unions_sets(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "s": {"SS": ["a", "b"]}})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="ADD s :v",
                    ExpressionAttributeValues={":v": {"SS": ["b", "c"]}})
    assert get(ddb, table, key) == {**key, "s": {"SS": ["a", "b", "c"]}}


def test_update_delete_removes_set_members(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "s": {"NS": ["1", "2", "3"]}})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="DELETE s :v",
                    ExpressionAttributeValues={":v": {"NS": ["2.0", "9"]}})
    assert get(ddb, table, key) == {**key, "s": {"NS": ["1", "3"]}}


def test_update_delete_of_every_member_removes_the_attribute(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "s": {"SS": ["a", "b"]}})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="DELETE s :v",
                    ExpressionAttributeValues={":v": {"SS": ["a", "b"]}})
    assert get(ddb, table, key) == key


def test_update_evaluates_every_operand_against_the_old_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "a": S("OLD")})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET a = :v, b = a",
                    ExpressionAttributeValues={":v": S("NEW")})
    assert get(ddb, table, key) == {**key, "a": S("NEW"), "b": S("OLD")}


def test_legacy_attribute_updates_put_add_and_delete(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    put(ddb, table, {**key, "gone": S("x"), "n": N("1"), "s": {"SS": ["a", "b"]}})
    ddb.update_item(TableName=table, Key=key, AttributeUpdates={
        "p": {"Action": "PUT", "Value": S("put")},
        "n": {"Action": "ADD", "Value": N("2")},
        "s": {"Action": "DELETE", "Value": {"SS": ["a"]}},
        "gone": {"Action": "DELETE"},
    })
    assert get(ddb, table, key) == {**key, "p": S("put"), "n": N("3"), "s": {"SS": ["b"]}}


@pytest.mark.parametrize(
    ("table_fixture", "args", "attribute"),
    [
        ("table", {"UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": S("x")}},
         "pk"),
        ("table", {"UpdateExpression": "REMOVE pk"}, "pk"),
        ("ranged", {"UpdateExpression": "SET sk = :v", "ExpressionAttributeValues": {":v": S("x")}},
         "sk"),
        ("table", {"AttributeUpdates": {"pk": {"Action": "PUT", "Value": S("x")}}}, "pk"),
    ],
)
def test_update_of_a_key_attribute_is_rejected(  # type: ignore[no-untyped-def]
    ddb, request: pytest.FixtureRequest, table_fixture: str, args: Wire, attribute: str
) -> None:
    name = request.getfixturevalue(table_fixture)
    key = new_key() if table_fixture == "table" else {**new_key(), "sk": S("s")}
    assert error_of(lambda: ddb.update_item(TableName=name, Key=key, **args)) == invalid(
        INVALID + f"Cannot update attribute {attribute}. This attribute is part of the key")
    assert get(ddb, name, key) is None


# --- ReturnConsumedCapacity -------------------------------------------------------------------


def _item_of(size: int) -> Wire:
    """dynalite's capacity item, padded to ``size`` bytes: N '12.3456' stores as 4 bytes."""
    key = new_key()
    members = [b"\x01\x02", b"\x02", b"\x01"]
    fixed = len("pkbcde") + len(key["pk"]["S"]) + 4 + 2 + 4
    return {**key, "b": S("b" * (size - fixed)), "c": N("12.3456"), "d": {"B": b"\x01\x02"},
            "e": {"BS": members}}


def _units(response: Wire) -> float:
    return response["ConsumedCapacity"]["CapacityUnits"]  # type: ignore[no-any-return]


def test_write_capacity_total_reports_table_name_and_units_only(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = put(ddb, table, new_key(), ReturnConsumedCapacity="TOTAL")
    assert response["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 1.0}


def test_write_capacity_indexes_adds_the_table_units(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = put(ddb, table, new_key(), ReturnConsumedCapacity="INDEXES")
    assert response["ConsumedCapacity"] == {
        "TableName": table, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}


def test_read_capacity_total_reports_table_name_and_units_only(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.get_item(TableName=table, Key=new_key(), ReturnConsumedCapacity="TOTAL")
    assert response["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 0.5}


def test_capacity_is_not_reported_unless_asked(ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    responses = [put(ddb, table, key, ReturnConsumedCapacity="NONE"), put(ddb, table, key),
                 ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="NONE")]
    assert all("ConsumedCapacity" not in response for response in responses)


@pytest.mark.parametrize(("size", "units"), [(1024, 1.0), (1025, 2.0)])
@pytest.mark.parametrize("mode", ["TOTAL", "INDEXES"])
def test_put_charges_one_write_unit_per_kilobyte(ddb, table, size: int, units: float, mode: str) -> None:  # type: ignore[no-untyped-def]
    response = put(ddb, table, _item_of(size), ReturnConsumedCapacity=mode)
    assert _units(response) == units
    if mode == "INDEXES":
        assert response["ConsumedCapacity"]["Table"]["CapacityUnits"] == units


def test_put_over_a_larger_item_charges_the_larger_size(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = _item_of(1025)
    put(ddb, table, item)
    key = {"pk": item["pk"]}
    assert _units(put(ddb, table, key, ReturnConsumedCapacity="TOTAL")) == 2.0
    assert _units(put(ddb, table, key, ReturnConsumedCapacity="TOTAL")) == 1.0


def test_delete_charges_the_deleted_item_size(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = _item_of(2049)
    put(ddb, table, item)
    key = {"pk": item["pk"]}
    assert _units(ddb.delete_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")) == 3.0
    assert _units(ddb.delete_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")) == 1.0


def test_update_charges_the_larger_of_old_and_new(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = _item_of(1025)
    put(ddb, table, item)
    response = ddb.update_item(TableName=table, Key={"pk": item["pk"]}, UpdateExpression="REMOVE b",
                               ReturnConsumedCapacity="TOTAL")
    assert _units(response) == 2.0


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [(4096, False, 0.5), (4096, True, 1.0), (4097, False, 1.0), (4097, True, 2.0)],
)
def test_get_charges_per_4_kilobytes_and_half_for_eventual_reads(  # type: ignore[no-untyped-def]
    ddb, table, size: int, consistent: bool, units: float
) -> None:
    item = _item_of(size)
    put(ddb, table, item)
    response = ddb.get_item(TableName=table, Key={"pk": item["pk"]}, ConsistentRead=consistent,
                            ReturnConsumedCapacity="TOTAL")
    assert _units(response) == units


@pytest.mark.parametrize(("consistent", "units"), [(False, 0.5), (True, 1.0)])
def test_get_of_an_absent_item_still_charges_one_read(ddb, table, consistent: bool, units: float) -> None:  # type: ignore[no-untyped-def]
    response = ddb.get_item(TableName=table, Key=new_key(), ConsistentRead=consistent,
                            ReturnConsumedCapacity="INDEXES")
    assert _units(response) == units
    assert response["ConsumedCapacity"]["Table"]["CapacityUnits"] == units


def test_get_with_a_projection_charges_the_whole_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    item = _item_of(4097)
    put(ddb, table, item)
    response = ddb.get_item(TableName=table, Key={"pk": item["pk"]}, ProjectionExpression="c",
                            ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert response["Item"] == {"c": N("12.3456")}
    assert _units(response) == 2.0


# --- missing tables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("put_item", {"Item": {"pk": S("k")}}),
        ("get_item", {"Key": {"pk": S("k")}}),
        ("update_item", {"Key": {"pk": S("k")}, "UpdateExpression": "SET a = :v",
                         "ExpressionAttributeValues": {":v": S("x")}}),
        ("delete_item", {"Key": {"pk": S("k")}}),
    ],
)
def test_operation_on_a_missing_table_is_resource_not_found(  # type: ignore[no-untyped-def]
    ddb, missing, operation: str, args: Wire
) -> None:
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=missing, **args)) == NOT_FOUND


@pytest.mark.parametrize(
    ("operation", "args", "message"),
    [
        ("put_item", {"Item": {"pk": S("k")}, "ReturnValues": "ALL_NEW"},
         "ReturnValues can only be ALL_OLD or NONE"),
        ("put_item", {"Item": {"pk": S("k"), "n": N("1E+126")}},
         "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("update_item", {"Key": {"pk": S("k")}, "UpdateExpression": "SET a = :v"},
         "Invalid UpdateExpression: An expression attribute value used in expression is not "
         "defined; attribute value: :v"),
        ("delete_item", {"Key": {"pk": S("k")}, "Expected": {"a": {"Exists": True}}},
         INVALID + "Value must be provided when Exists is true for Attribute: a"),
        ("get_item", {"Key": {"pk": S("k")}, "AttributesToGet": ["a", "a"]},
         INVALID + "Duplicate value in attribute name: a"),
    ],
    ids=["return-values", "number", "expression", "expected", "attributes-to-get"],
)
def test_request_errors_are_reported_before_the_table_is_looked_up(  # type: ignore[no-untyped-def]
    ddb, missing, operation: str, args: Wire, message: str
) -> None:
    call = getattr(ddb, operation)
    assert error_of(lambda: call(TableName=missing, **args)) == invalid(message)


@pytest.mark.parametrize(
    ("operation", "member"),
    [("put_item", "item"), ("get_item", "key"), ("update_item", "key"), ("delete_item", "key")],
)
def test_missing_required_members_are_reported_together(raw, operation: str, member: str) -> None:  # type: ignore[no-untyped-def]
    call = getattr(raw, operation)
    assert error_of(lambda: call()) == invalid(
        "2 validation errors detected: Value null at 'tableName' failed to satisfy constraint: "
        f"Member must not be null; Value null at '{member}' failed to satisfy constraint: "
        "Member must not be null")


def test_missing_table_is_reported_even_for_a_key_it_could_not_match(ddb, missing) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.get_item(TableName=missing, Key={})) == NOT_FOUND


# --- no bad request wedges the server ---------------------------------------------------------


BAD_REQUESTS: list[tuple[str, str, Wire]] = [
    ("put an item that is not a map", "PutItem", {"TableName": "{t}", "Item": "x"}),
    ("put a value of the wrong JSON type", "PutItem", {"TableName": "{t}", "Item": {"pk": {"S": 1}}}),
    ("put an invalid base64 binary", "PutItem", {"TableName": "{t}", "Item": {"pk": {"B": "***"}}}),
    ("put a number set of strings", "PutItem",
     {"TableName": "{t}", "Item": {"pk": {"S": "k"}, "n": {"NS": ["a"]}}}),
    ("put without a table name", "PutItem", {"Item": {"pk": {"S": "k"}}}),
    ("put a value nested three hundred deep", "PutItem",
     {"TableName": "{t}", "Item": {"pk": {"S": "k"}, "d": "{deep}"}}),
    ("get with a key that is a list", "GetItem", {"TableName": "{t}", "Key": []}),
    ("get with a broken projection", "GetItem",
     {"TableName": "{t}", "Key": {"pk": {"S": "k"}}, "ProjectionExpression": "a..b"}),
    ("update with a broken expression", "UpdateItem",
     {"TableName": "{t}", "Key": {"pk": {"S": "k"}}, "UpdateExpression": "SET"}),
    ("update adding a string", "UpdateItem",
     {"TableName": "{t}", "Key": {"pk": {"S": "k"}}, "UpdateExpression": "ADD a :v",
      "ExpressionAttributeValues": {":v": {"S": "x"}}}),
    ("update with a legacy action that does not exist", "UpdateItem",
     {"TableName": "{t}", "Key": {"pk": {"S": "k"}},
      "AttributeUpdates": {"a": {"Action": "EXPLODE", "Value": {"S": "x"}}}}),
    ("delete with a broken condition", "DeleteItem",
     {"TableName": "{t}", "Key": {"pk": {"S": "k"}}, "ConditionExpression": "((("}),
    ("delete with a legacy condition missing its value", "DeleteItem",
     {"TableName": "{t}", "Key": {"pk": {"S": "k"}}, "Expected": {"a": {"Exists": True}}}),
]


def _post(engine: EngineProcess, target: str, body: bytes) -> tuple[int, Wire]:
    endpoint = urlsplit(engine.endpoint)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    try:
        connection.request("POST", "/", body=body, headers={
            "X-Amz-Target": f"DynamoDB_20120810.{target}",
            "Content-Type": "application/x-amz-json-1.0",
        })
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def canary(ddb, table) -> Iterator[Wire]:  # type: ignore[no-untyped-def]
    """An item that a healthy engine serves after every bad request."""
    key = new_key()
    put(ddb, table, {**key, "alive": {"BOOL": True}})
    yield key


def _assert_serves(engine: EngineProcess, table: str, canary: Wire) -> None:
    status, body = _post(engine, "GetItem", json.dumps(
        {"TableName": table, "Key": canary, "ConsistentRead": True}).encode())
    assert (status, body) == (200, {"Item": {**canary, "alive": {"BOOL": True}}})


@pytest.mark.parametrize(("target", "body"), [(t, b) for _, t, b in BAD_REQUESTS],
                         ids=[name for name, _, _ in BAD_REQUESTS])
def test_bad_request_is_refused_and_the_next_request_is_served(  # type: ignore[no-untyped-def]
    engine, table, canary, target: str, body: Wire
) -> None:
    # Placeholders keep the parameters small: pytest shows them when a test fails.
    text = json.dumps(body).replace('"{t}"', json.dumps(table))
    text = text.replace('"{deep}"', json.dumps(deep("L", 300)))
    status, answer = _post(engine, target, text.encode())
    assert status == 400, answer
    assert answer["__type"].rsplit("#", 1)[1] in ("ValidationException", "SerializationException")
    _assert_serves(engine, table, canary)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"TableName": ', b"[" * 5000 + b"]" * 5000, b"\xff\xfe"],
    ids=["empty", "not-json", "a-list", "truncated", "deeply-nested-json", "not-utf8"],
)
def test_undecodable_body_is_refused_and_the_next_request_is_served(  # type: ignore[no-untyped-def]
    engine, table, canary, body: bytes
) -> None:
    status, answer = _post(engine, "PutItem", body)
    assert status == 400, answer
    _assert_serves(engine, table, canary)


# --- concurrency ---------------------------------------------------------------------------------


THREADS = 16


def _in_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_conditional_claims_have_exactly_one_winner_per_key(engine, ddb, table) -> None:  # type: ignore[no-untyped-def]
    keys = [new_key() for _ in range(8)]
    wins: dict[str, list[int]] = {key["pk"]["S"]: [] for key in keys}
    lock = threading.Lock()

    def claim(thread: int) -> None:
        client = engine.client()
        for key in keys:
            try:
                client.put_item(TableName=table, Item={**key, "owner": N(str(thread))},
                                ConditionExpression="attribute_not_exists(pk)")
            except ClientError as error:
                assert error.response["Error"]["Code"] == CHECK_FAILED[0]
                continue
            with lock:
                wins[key["pk"]["S"]].append(thread)

    _in_threads(claim)
    for key in keys:
        winners = wins[key["pk"]["S"]]
        assert len(winners) == 1, winners
        assert get(ddb, table, key) == {**key, "owner": N(str(winners[0]))}


def test_concurrent_add_increments_are_never_lost(engine, ddb, table) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    increments = 50

    def add(_: int) -> None:
        client = engine.client()
        for _ in range(increments):
            client.update_item(TableName=table, Key=key, UpdateExpression="ADD n :one",
                               ExpressionAttributeValues={":one": N("1")})

    _in_threads(add)
    assert get(ddb, table, key) == {**key, "n": N(str(THREADS * increments))}
