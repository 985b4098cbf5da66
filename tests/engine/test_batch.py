"""BatchGetItem and BatchWriteItem against a real engine, with DynamoDB's exact errors.

Expected messages are DynamoDB's own: the AWS API reference, dynalite's
validations, and captures from the service published with the
paritysuite/dynamodb-conformance suite.  ``raw`` skips botocore's client-side
checks so that the engine sees the malformed requests a careless client sends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_table, unique_name

Wire = dict[str, Any]

DUPLICATES = ("ValidationException", "Provided list of item keys contains duplicates")
SCHEMA_MISMATCH = ("ValidationException", "The provided key element does not match the schema")
NOT_FOUND = ("ResourceNotFoundException", "Requested resource not found")
ENUM_RCC = (
    "Value 'BOGUS' at 'returnConsumedCapacity' failed to satisfy constraint: "
    "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
)
ENUM_RICM = (
    "Value 'BOGUS2' at 'returnItemCollectionMetrics' failed to satisfy constraint: "
    "Member must satisfy enum value set: [SIZE, NONE]"
)
MAP_KEYS = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 255, "
    "Member must have length greater than or equal to 3, "
    "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]"
)


@pytest.fixture(scope="module")
def table(ddb) -> str:  # type: ignore[no-untyped-def]
    return create_table(ddb, unique_name("batch"))


@pytest.fixture(scope="module")
def other(ddb) -> str:  # type: ignore[no-untyped-def]
    """A second table, hash key pk (S) and range key sk (S)."""
    return create_table(ddb, unique_name("batch2"), range_key="sk")


def S(text: str) -> Wire:
    return {"S": text}


def key(pk: str | None = None) -> Wire:
    return {"pk": S(pk if pk is not None else uuid.uuid4().hex)}


def put_request(item: Wire) -> Wire:
    return {"PutRequest": {"Item": item}}


def delete_request(k: Wire) -> Wire:
    return {"DeleteRequest": {"Key": k}}


def error_of(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


def invalid(message: str) -> tuple[str, str]:
    return "ValidationException", message


def get(ddb, table: str, k: Wire) -> Wire | None:  # type: ignore[no-untyped-def]
    return ddb.get_item(TableName=table, Key=k, ConsistentRead=True).get("Item")  # type: ignore[no-any-return]


def sized_item(k: Wire, size: int) -> Wire:
    """An item of exactly ``size`` bytes."""
    used = sum(len(name) + len(value["S"]) for name, value in k.items())
    return {**k, "b": S("x" * (size - used - 1))}


# --- BatchWriteItem: what it writes ---------------------------------------------------


def test_batch_write_puts_and_deletes_across_tables(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    doomed = key()
    ddb.put_item(TableName=table, Item={**doomed, "v": S("old")})
    kept, ranged = key(), {**key(), "sk": S("1")}
    response = ddb.batch_write_item(RequestItems={
        table: [put_request({**kept, "v": S("new")}), delete_request(doomed)],
        other: [put_request({**ranged, "v": S("r")})],
    })
    assert response["UnprocessedItems"] == {}
    assert "ConsumedCapacity" not in response
    assert get(ddb, table, kept) == {**kept, "v": S("new")}
    assert get(ddb, table, doomed) is None
    assert get(ddb, other, ranged) == {**ranged, "v": S("r")}


def test_batch_write_put_replaces_the_whole_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item={**k, "a": S("1"), "b": S("2")})
    ddb.batch_write_item(RequestItems={table: [put_request({**k, "c": S("3")})]})
    assert get(ddb, table, k) == {**k, "c": S("3")}


def test_batch_write_delete_of_missing_item_succeeds(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.batch_write_item(RequestItems={table: [delete_request(key())]})
    assert response["UnprocessedItems"] == {}


def test_batch_write_reports_consumed_capacity_per_table(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    big = sized_item(key(), 2500)  # 3 write units
    response = ddb.batch_write_item(
        RequestItems={table: [put_request(big), put_request(key())],
                      other: [delete_request({**key(), "sk": S("x")})]},
        ReturnConsumedCapacity="TOTAL",
    )
    assert response["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 4.0},
        {"TableName": other, "CapacityUnits": 1.0},
    ]


def test_batch_write_consumed_capacity_indexes_adds_the_table_breakdown(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.batch_write_item(
        RequestItems={table: [put_request(key())]}, ReturnConsumedCapacity="INDEXES"
    )
    assert response["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}},
    ]


def test_batch_write_accepts_return_item_collection_metrics(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.batch_write_item(
        RequestItems={table: [put_request(key())]}, ReturnItemCollectionMetrics="SIZE"
    )
    assert response["UnprocessedItems"] == {}


def test_batch_write_of_25_items_is_accepted(ddb, table) -> None:  # type: ignore[no-untyped-def]
    keys = [key() for _ in range(25)]
    ddb.batch_write_item(RequestItems={table: [put_request(k) for k in keys]})
    assert all(get(ddb, table, k) == k for k in keys)


def test_batch_write_same_key_in_two_tables_is_not_a_duplicate(ddb, table) -> None:  # type: ignore[no-untyped-def]
    second = create_table(ddb, unique_name("batch3"))
    k = key()
    ddb.batch_write_item(RequestItems={table: [put_request(k)], second: [put_request(k)]})
    assert get(ddb, table, k) == k and get(ddb, second, k) == k


# --- BatchWriteItem: refusals ----------------------------------------------------------


def test_batch_write_over_25_requests_in_one_table_is_a_map_value_error(raw, table) -> None:  # type: ignore[no-untyped-def]
    code, message = error_of(lambda: raw.batch_write_item(
        RequestItems={table: [put_request(key()) for _ in range(26)]}))
    assert code == "ValidationException"
    assert re.fullmatch(
        rf"1 validation error detected: Value '\{{{re.escape(table)}=\[.+\]\}}' at 'requestItems' "
        r"failed to satisfy constraint: Map value must satisfy constraint: \[Member must have "
        r"length less than or equal to 25, Member must have length greater than or equal to 1\]",
        message,
    )


def test_batch_write_over_25_requests_across_tables_is_too_many(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_write_item(RequestItems={
        table: [put_request(key()) for _ in range(13)],
        other: [put_request({**key(), "sk": S("1")}) for _ in range(13)],
    })) == invalid("Too many items requested for the BatchWriteItem call")


def test_batch_write_empty_request_list_for_a_table_is_a_map_value_error(raw, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_write_item(RequestItems={table: []})) == invalid(
        f"1 validation error detected: Value '{{{table}=[]}}' at 'requestItems' failed to satisfy "
        "constraint: Map value must satisfy constraint: [Member must have length less than or "
        "equal to 25, Member must have length greater than or equal to 1]"
    )


def test_batch_write_empty_request_items_is_refused(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_write_item(RequestItems={})) == invalid(
        "The requestItems parameter is required for BatchWriteItem"
    )


def test_batch_write_malformed_table_name_is_a_map_keys_error(raw) -> None:  # type: ignore[no-untyped-def]
    code, message = error_of(lambda: raw.batch_write_item(
        RequestItems={"bad!name": [put_request(key())]}))
    assert code == "ValidationException"
    assert re.fullmatch(
        r"1 validation error detected: Value '\{bad!name=\[.+\]\}' at 'requestItems' failed to "
        rf"satisfy constraint: {re.escape(MAP_KEYS)}",
        message,
    )


def test_batch_write_unknown_enums_are_reported_together(raw, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: raw.batch_write_item(
        RequestItems={table: [put_request(k)]},
        ReturnConsumedCapacity="BOGUS", ReturnItemCollectionMetrics="BOGUS2",
    )) == invalid(f"2 validation errors detected: {ENUM_RCC}; {ENUM_RICM}")
    assert get(raw, table, k) is None


def test_batch_write_unknown_enum_is_reported_before_a_missing_table(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_write_item(
        RequestItems={unique_name("missing"): [put_request(key())]}, ReturnConsumedCapacity="BOGUS",
    )) == invalid(f"1 validation error detected: {ENUM_RCC}")


@pytest.mark.parametrize("requests", [
    pytest.param(lambda k: [put_request(k), delete_request(k)], id="put-and-delete"),
    pytest.param(lambda k: [put_request(k), put_request({**k, "v": S("2")})], id="two-puts"),
    pytest.param(lambda k: [delete_request(k), delete_request(k)], id="two-deletes"),
])
def test_batch_write_two_requests_on_one_item_are_duplicates(ddb, table, requests) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.batch_write_item(RequestItems={table: requests(k)})) == DUPLICATES
    assert get(ddb, table, k) is None


@pytest.mark.parametrize("request_", [
    pytest.param(put_request({"pk": {"N": "5"}}), id="put-wrong-type"),
    pytest.param(put_request({"pk": {"L": [S("x")]}}), id="put-non-scalar"),
    pytest.param(put_request({"other": S("x")}), id="put-without-key"),
    pytest.param(delete_request({"pk": {"N": "5"}}), id="delete-wrong-type"),
    pytest.param(delete_request({"other": S("x")}), id="delete-without-key"),
    pytest.param(delete_request({"pk": S("a"), "extra": S("b")}), id="delete-extra-attribute"),
])
def test_batch_write_key_of_the_wrong_shape_does_not_match_the_schema(ddb, table, request_) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_write_item(RequestItems={table: [request_]})) == SCHEMA_MISMATCH


def test_batch_write_empty_string_key_is_refused_with_the_empty_value_message(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_write_item(RequestItems={table: [put_request(key(""))]})) == invalid(
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk"
    )


def test_batch_write_item_over_400_kb_is_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    fits, over = sized_item(key(), 409_600), sized_item(key(), 409_601)
    ddb.batch_write_item(RequestItems={table: [put_request(fits)]})
    assert error_of(lambda: ddb.batch_write_item(RequestItems={table: [put_request(over)]})) == invalid(
        "Item size has exceeded the maximum allowed size"
    )


@pytest.mark.parametrize("request_", [
    pytest.param({}, id="neither"),
    pytest.param({**put_request(key()), **delete_request(key())}, id="both"),
])
def test_batch_write_request_must_hold_exactly_one_of_put_and_delete(raw, table, request_) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_write_item(RequestItems={table: [request_]})) == invalid(
        "Supplied AttributeValue has more than one datatypes set, "
        "must contain exactly one of the supported datatypes"
    )


def test_batch_write_put_request_without_item_names_the_member(raw, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_write_item(RequestItems={table: [{"PutRequest": {}}]})) == invalid(
        f"1 validation error detected: Value null at 'requestItems.{table}.member.1.member."
        "putRequest.item' failed to satisfy constraint: Member must not be null"
    )


def test_batch_write_to_a_missing_table_writes_nothing_anywhere(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.batch_write_item(RequestItems={
        table: [put_request(k)], unique_name("missing"): [put_request(key())],
    })) == NOT_FOUND
    assert get(ddb, table, k) is None


def test_batch_write_refused_for_a_later_request_writes_nothing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.batch_write_item(RequestItems={
        table: [put_request(k), put_request({"pk": {"N": "1"}})],
    })) == SCHEMA_MISMATCH
    assert get(ddb, table, k) is None


# --- BatchGetItem: what it reads ------------------------------------------------------


def test_batch_get_returns_found_items_of_every_table_and_omits_missing_ones(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    a, b, ranged = key(), key(), {**key(), "sk": S("s")}
    ddb.put_item(TableName=table, Item={**a, "v": S("a")})
    ddb.put_item(TableName=table, Item={**b, "v": S("b")})
    ddb.put_item(TableName=other, Item={**ranged, "v": S("r")})
    response = ddb.batch_get_item(RequestItems={
        table: {"Keys": [a, key(), b]},
        other: {"Keys": [ranged, {**key(), "sk": S("s")}]},
    })
    assert response["UnprocessedKeys"] == {}
    assert sorted(response["Responses"][table], key=lambda i: i["v"]["S"]) == [
        {**a, "v": S("a")}, {**b, "v": S("b")},
    ]
    assert response["Responses"][other] == [{**ranged, "v": S("r")}]


def test_batch_get_lists_a_table_with_no_items_found(ddb, table) -> None:  # type: ignore[no-untyped-def]
    response = ddb.batch_get_item(RequestItems={table: {"Keys": [key()]}})
    assert response["Responses"] == {table: []}


def test_batch_get_projection_expression_applies_per_table(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item={**k, "name": S("n"), "m": {"M": {"x": S("1"), "y": S("2")}}})
    response = ddb.batch_get_item(RequestItems={table: {
        "Keys": [k], "ProjectionExpression": "#n, m.x", "ExpressionAttributeNames": {"#n": "name"},
    }})
    assert response["Responses"][table] == [{"name": S("n"), "m": {"M": {"x": S("1")}}}]


def test_batch_get_attributes_to_get_applies_per_table(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item={**k, "a": S("1"), "b": S("2")})
    response = ddb.batch_get_item(RequestItems={table: {"Keys": [k], "AttributesToGet": ["b"]}})
    assert response["Responses"][table] == [{"b": S("2")}]


@pytest.mark.parametrize(("consistent", "units"), [(True, 2.0), (False, 1.0)])
def test_batch_get_consumed_capacity_charges_each_found_item(ddb, table, consistent, units) -> None:  # type: ignore[no-untyped-def]
    found = [key(), key()]
    for k in found:
        ddb.put_item(TableName=table, Item=k)
    response = ddb.batch_get_item(
        RequestItems={table: {"Keys": [*found, key()], "ConsistentRead": consistent}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert response["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": units},
    ]


def test_batch_get_over_16_mb_returns_the_rest_as_unprocessed_keys(ddb, table) -> None:  # type: ignore[no-untyped-def]
    keys = [key(f"big-{i:02d}-{uuid.uuid4().hex[:6]}") for i in range(45)]
    for start in range(0, len(keys), 25):
        ddb.batch_write_item(RequestItems={table: [
            put_request(sized_item(k, 400_000)) for k in keys[start:start + 25]
        ]})
    request = {"Keys": keys, "ProjectionExpression": "pk, b", "ConsistentRead": True}
    first = ddb.batch_get_item(RequestItems={table: request})
    left = first["UnprocessedKeys"][table]
    assert len(first["Responses"][table]) == 41  # 41 * 400,000 bytes fit in 16 MiB
    assert left == {"Keys": keys[41:], "ProjectionExpression": "pk, b", "ConsistentRead": True}
    second = ddb.batch_get_item(RequestItems={table: left})
    assert second["UnprocessedKeys"] == {}
    got = {item["pk"]["S"] for item in first["Responses"][table] + second["Responses"][table]}
    assert got == {k["pk"]["S"] for k in keys}


# --- BatchGetItem: refusals -----------------------------------------------------------


def test_batch_get_duplicate_keys_are_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.batch_get_item(RequestItems={table: {"Keys": [k, k]}})) == DUPLICATES


def test_batch_get_over_100_keys_in_one_table_names_the_member(raw, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_get_item(
        RequestItems={table: {"Keys": [key() for _ in range(101)]}})) == invalid(
        f"1 validation error detected: Value at 'RequestItems.{table}.member.Keys' failed to "
        "satisfy constraint: Member must have length less than or equal to 100"
    )


def test_batch_get_over_100_keys_across_tables_is_too_many(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_get_item(RequestItems={
        table: {"Keys": [key() for _ in range(60)]},
        other: {"Keys": [{**key(), "sk": S("1")} for _ in range(60)]},
    })) == invalid("Too many items requested for the BatchGetItem call")


def test_batch_get_empty_keys_names_the_member(raw, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_get_item(RequestItems={table: {"Keys": []}})) == invalid(
        f"1 validation error detected: Value at 'RequestItems.{table}.member.Keys' failed to "
        "satisfy constraint: Member must have length greater than or equal to 1"
    )


def test_batch_get_empty_request_items_is_refused(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_get_item(RequestItems={})) == invalid(
        "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_batch_get_malformed_table_name_echoes_the_request_with_the_enum_error(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.batch_get_item(
        RequestItems={"bad!name": {"Keys": [{"pk": S("a")}]}}, ReturnConsumedCapacity="BOGUS",
    )) == invalid(
        "2 validation errors detected: Value '{\"bad!name\":{\"Keys\":[{\"pk\":{\"S\":\"a\"}}]}}' "
        f"at 'requestItems' failed to satisfy constraint: {MAP_KEYS}; {ENUM_RCC}"
    )


def test_batch_get_projection_and_attributes_to_get_do_not_mix(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_get_item(RequestItems={table: {
        "Keys": [key()], "AttributesToGet": ["pk"], "ProjectionExpression": "pk",
    }})) == invalid(
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
    )


def test_batch_get_projection_in_one_table_and_attributes_to_get_in_another_do_not_mix(  # type: ignore[no-untyped-def]
    ddb, table, other
) -> None:
    code, _ = error_of(lambda: ddb.batch_get_item(RequestItems={
        table: {"Keys": [key()], "ProjectionExpression": "pk"},
        other: {"Keys": [{**key(), "sk": S("z")}], "AttributesToGet": ["pk"]},
    }))
    assert code == "ValidationException"


def test_batch_get_unused_attribute_name_is_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_get_item(RequestItems={table: {
        "Keys": [key()], "ProjectionExpression": "pk", "ExpressionAttributeNames": {"#x": "x"},
    }})) == invalid("Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}")


def test_batch_get_key_of_the_wrong_shape_does_not_match_the_schema(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_get_item(
        RequestItems={table: {"Keys": [{"other": S("x")}]}})) == SCHEMA_MISMATCH


def test_batch_get_from_a_missing_table_is_not_found(ddb) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.batch_get_item(
        RequestItems={unique_name("missing"): {"Keys": [key()]}})) == NOT_FOUND
