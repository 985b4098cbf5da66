"""TransactWriteItems and TransactGetItems against a real engine.

Exact codes and messages are DynamoDB's (the AWS API reference, and captures
from the service published with the paritysuite/dynamodb-conformance suite).
The concurrency tests run many boto3 clients at once and check invariants
that only an atomic, isolated transaction keeps.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tablekeeper.engine.errors import IdempotentParameterMismatchException, TransactionInProgressException
from tablekeeper.engine.operations.transactions import TOKEN_TTL_SECONDS, TokenStore
from tests.conftest import EngineProcess, create_table, unique_name

Wire = dict[str, Any]

CANCELLED = "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]"
ONE_ITEM = ("ValidationException", "Transaction request cannot include multiple operations on one item")
NOT_FOUND = ("ResourceNotFoundException", "Requested resource not found")
CHECK_FAILED = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
NONE = {"Code": "None"}
SCHEMA_MISMATCH = "The provided key element does not match the schema"
THREADS = 16


@pytest.fixture(scope="module")
def table(ddb) -> str:  # type: ignore[no-untyped-def]
    return create_table(ddb, unique_name("tx"))


@pytest.fixture(scope="module")
def other(ddb) -> str:  # type: ignore[no-untyped-def]
    return create_table(ddb, unique_name("tx2"))


def S(text: str) -> Wire:
    return {"S": text}


def N(text: str) -> Wire:
    return {"N": text}


def key(pk: str | None = None) -> Wire:
    return {"pk": S(pk if pk is not None else uuid.uuid4().hex)}


def put(table: str, item: Wire, **extra: Any) -> Wire:
    return {"Put": {"TableName": table, "Item": item, **extra}}


def update(table: str, k: Wire, expression: str, **extra: Any) -> Wire:
    return {"Update": {"TableName": table, "Key": k, "UpdateExpression": expression, **extra}}


def delete(table: str, k: Wire, **extra: Any) -> Wire:
    return {"Delete": {"TableName": table, "Key": k, **extra}}


def check(table: str, k: Wire, condition: str, **extra: Any) -> Wire:
    return {"ConditionCheck": {"TableName": table, "Key": k, "ConditionExpression": condition, **extra}}


def get_action(table: str, k: Wire, **extra: Any) -> Wire:
    return {"Get": {"TableName": table, "Key": k, **extra}}


def error_of(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


def invalid(message: str) -> tuple[str, str]:
    return "ValidationException", message


def cancellation(call: Callable[[], object]) -> list[Wire]:
    """The CancellationReasons of a call that must be cancelled (message checked too)."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    reasons: list[Wire] = response["CancellationReasons"]
    codes = ", ".join(reason["Code"] for reason in reasons)
    assert response["Error"]["Message"] == CANCELLED.format(codes)
    return reasons


def get(ddb, table: str, k: Wire) -> Wire | None:  # type: ignore[no-untyped-def]
    return ddb.get_item(TableName=table, Key=k, ConsistentRead=True).get("Item")  # type: ignore[no-any-return]


def sized_item(k: Wire, size: int) -> Wire:
    used = sum(len(name) + len(value["S"]) for name, value in k.items())
    return {**k, "b": S("x" * (size - used - 1))}


# --- TransactWriteItems: what it does ---------------------------------------------------


def test_transact_write_applies_every_action_across_tables(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    added, updated, doomed, checked = key(), key(), key(), key()
    ddb.put_item(TableName=table, Item={**updated, "n": N("1")})
    ddb.put_item(TableName=other, Item={**doomed})
    ddb.put_item(TableName=other, Item={**checked, "ok": {"BOOL": True}})
    response = ddb.transact_write_items(TransactItems=[
        put(table, {**added, "v": S("new")}),
        update(table, updated, "SET n = n + :one", ExpressionAttributeValues={":one": N("1")}),
        delete(other, doomed),
        check(other, checked, "ok = :t", ExpressionAttributeValues={":t": {"BOOL": True}}),
    ])
    assert "ConsumedCapacity" not in response
    assert get(ddb, table, added) == {**added, "v": S("new")}
    assert get(ddb, table, updated) == {**updated, "n": N("2")}
    assert get(ddb, other, doomed) is None
    assert get(ddb, other, checked) == {**checked, "ok": {"BOOL": True}}


def test_transact_write_update_of_a_missing_item_creates_it(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.transact_write_items(TransactItems=[
        update(table, k, "SET v = :v", ExpressionAttributeValues={":v": S("x")}),
    ])
    assert get(ddb, table, k) == {**k, "v": S("x")}


def test_transact_write_failed_condition_cancels_every_action(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    fresh, taken = key(), key()
    ddb.put_item(TableName=other, Item={**taken, "v": S("old")})
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[
        put(table, fresh),
        put(other, {**taken, "v": S("new")}, ConditionExpression="attribute_not_exists(pk)"),
    ]))
    assert reasons == [NONE, CHECK_FAILED]
    assert get(ddb, table, fresh) is None
    assert get(ddb, other, taken) == {**taken, "v": S("old")}


def test_transact_write_reports_every_failed_condition_in_order(ddb, table) -> None:  # type: ignore[no-untyped-def]
    present = key()
    ddb.put_item(TableName=table, Item=present)
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[
        check(table, present, "attribute_not_exists(pk)"),
        put(table, key()),
        delete(table, key(), ConditionExpression="attribute_exists(pk)"),
    ]))
    assert reasons == [CHECK_FAILED, NONE, CHECK_FAILED]


def post(engine: EngineProcess, target: str, body: Wire) -> tuple[int, Wire]:
    """A raw request: the response body exactly as the engine wrote it."""
    endpoint = urlsplit(engine.endpoint)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    try:
        connection.request("POST", "/", body=json.dumps(body), headers={
            "X-Amz-Target": f"DynamoDB_20120810.{target}",
            "Content-Type": "application/x-amz-json-1.0",
        })
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_transact_write_cancellation_body_is_shaped_as_dynamodb_writes_it(engine, table) -> None:  # type: ignore[no-untyped-def]
    status, body = post(engine, "TransactWriteItems", {"TransactItems": [
        check(table, key(), "attribute_exists(pk)"),
    ]})
    assert status == 400
    assert body == {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "CancellationReasons": [CHECK_FAILED],
        "Message": CANCELLED.format("ConditionalCheckFailed"),
    }


def test_transact_write_failure_returns_the_old_item_when_asked(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item={**k, "v": S("old")})
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[
        check(table, k, "v = :x", ExpressionAttributeValues={":x": S("other")},
              ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        check(table, key(), "attribute_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
    ]))
    assert reasons == [{**CHECK_FAILED, "Item": {**k, "v": S("old")}}, CHECK_FAILED]


def test_transact_write_update_failing_at_run_time_is_a_validation_error_reason(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item=k)
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[
        put(table, key()),
        update(table, k, "SET n = absent + :one", ExpressionAttributeValues={":one": N("1")}),
    ]))
    assert reasons == [NONE, {
        "Code": "ValidationError",
        "Message": "The provided expression refers to an attribute that does not exist in the item",
    }]


def test_transact_write_update_growing_past_400_kb_is_a_validation_error_reason(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item=sized_item(k, 300_000))
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[
        update(table, k, "SET c = :v", ExpressionAttributeValues={":v": S("y" * 200_000)}),
    ]))
    assert reasons == [{
        "Code": "ValidationError", "Message": "Item size to update has exceeded the maximum allowed size",
    }]


def test_transact_write_condition_check_does_not_change_the_item(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.put_item(TableName=table, Item={**k, "v": S("same")})
    ddb.transact_write_items(TransactItems=[check(table, k, "attribute_exists(pk)"), put(table, key())])
    assert get(ddb, table, k) == {**k, "v": S("same")}


def test_transact_write_capacity_is_twice_the_writes_per_table(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    response = ddb.transact_write_items(
        TransactItems=[put(table, sized_item(key(), 2500)), put(table, key()), put(other, key())],
        ReturnConsumedCapacity="TOTAL",
    )
    assert response["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 8.0, "WriteCapacityUnits": 8.0},
        {"TableName": other, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0},
    ]


def test_transact_write_same_key_in_two_tables_is_two_items(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    k = key()
    ddb.transact_write_items(TransactItems=[put(table, k), put(other, k)])
    assert get(ddb, table, k) == k and get(ddb, other, k) == k


# --- TransactWriteItems: refusals -------------------------------------------------------


@pytest.mark.parametrize("second", [
    pytest.param(lambda t, k: delete(t, k), id="put-and-delete"),
    pytest.param(lambda t, k: check(t, k, "attribute_exists(pk)"), id="put-and-check"),
    pytest.param(lambda t, k: put(t, k), id="two-puts"),
])
def test_transact_write_two_actions_on_one_item_are_refused(ddb, table, second) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.transact_write_items(
        TransactItems=[put(table, k), second(table, k)])) == ONE_ITEM
    assert get(ddb, table, k) is None


def test_transact_write_without_actions_is_refused(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.transact_write_items(TransactItems=[])) == invalid(
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_transact_write_over_100_actions_is_refused(raw, table) -> None:  # type: ignore[no-untyped-def]
    code, message = error_of(lambda: raw.transact_write_items(
        TransactItems=[put(table, key()) for _ in range(101)]))
    assert code == "ValidationException"
    assert re.fullmatch(
        r"1 validation error detected: Value '\[.+\]' at 'transactItems' failed to satisfy "
        r"constraint: Member must have length less than or equal to 100", message,
    )


def test_transact_write_of_100_actions_is_accepted(ddb, table) -> None:  # type: ignore[no-untyped-def]
    keys = [key() for _ in range(100)]
    ddb.transact_write_items(TransactItems=[put(table, k) for k in keys])
    assert get(ddb, table, keys[-1]) == keys[-1]


@pytest.mark.parametrize(("action", "message"), [
    pytest.param({}, "Invalid Request: TransactWriteRequest should contain Delete or Put or Update request",
                 id="none"),
    pytest.param({"Put": {"TableName": "t-x", "Item": {"pk": S("a")}},
                  "Delete": {"TableName": "t-x", "Key": {"pk": S("b")}}},
                 "TransactItems can only contain one of Check, Put, Update or Delete", id="two"),
])
def test_transact_write_action_holds_exactly_one_operation(raw, action, message) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.transact_write_items(TransactItems=[action])) == invalid(message)


def test_transact_write_condition_check_needs_a_condition(raw, table) -> None:  # type: ignore[no-untyped-def]
    action = {"ConditionCheck": {"TableName": table, "Key": key()}}
    assert error_of(lambda: raw.transact_write_items(TransactItems=[action])) == invalid(
        "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck."
        "conditionExpression' failed to satisfy constraint: Member must not be null"
    )


@pytest.mark.parametrize(("action", "message"), [
    pytest.param(lambda t: put(t, {"pk": N("5")}),
                 "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
                 id="put-wrong-type"),
    pytest.param(lambda t: put(t, {"other": S("x")}),
                 "One or more parameter values were invalid: Missing the key pk in the item",
                 id="put-without-key"),
    pytest.param(lambda t: delete(t, {"pk": N("5")}), SCHEMA_MISMATCH, id="delete-wrong-type"),
    pytest.param(lambda t: update(t, {"pk": {"L": [S("x")]}}, "SET a = :v",
                                  ExpressionAttributeValues={":v": S("x")}),
                 SCHEMA_MISMATCH, id="update-non-scalar"),
    pytest.param(lambda t: check(t, {"pk": N("5")}, "attribute_exists(pk)"), SCHEMA_MISMATCH,
                 id="check-wrong-type"),
])
def test_transact_write_key_of_the_wrong_type_is_a_validation_error_reason(  # type: ignore[no-untyped-def]
    ddb, table, action, message
) -> None:
    fresh = key()
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[put(table, fresh), action(table)]))
    assert reasons == [NONE, {"Code": "ValidationError", "Message": message}]
    assert get(ddb, table, fresh) is None


@pytest.mark.parametrize("action", [
    pytest.param(lambda t: put(t, key("")), id="put"),
    pytest.param(lambda t: delete(t, key("")), id="delete"),
    pytest.param(lambda t: check(t, key(""), "attribute_not_exists(pk)"), id="check"),
])
def test_transact_write_empty_key_value_is_refused_up_front(ddb, table, action) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.transact_write_items(TransactItems=[action(table)])) == invalid(
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk"
    )


def test_transact_write_put_over_400_kb_is_refused_up_front(ddb, table) -> None:  # type: ignore[no-untyped-def]
    ddb.transact_write_items(TransactItems=[put(table, sized_item(key(), 409_600))])
    assert error_of(lambda: ddb.transact_write_items(
        TransactItems=[put(table, sized_item(key(), 409_601))])) == invalid(
        "Item size has exceeded the maximum allowed size"
    )


def test_transact_write_over_4_mb_of_items_is_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    keys = [key() for _ in range(11)]  # 11 * 390,000 bytes > 4 MiB
    assert error_of(lambda: ddb.transact_write_items(
        TransactItems=[put(table, sized_item(k, 390_000)) for k in keys])) == invalid(
        "Transaction request cannot be larger than 4 MB"
    )
    assert get(ddb, table, keys[0]) is None


def test_transact_write_to_a_missing_table_is_not_found(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.transact_write_items(
        TransactItems=[put(table, k), put(unique_name("missing"), key())])) == NOT_FOUND
    assert get(ddb, table, k) is None


def test_transact_write_update_of_a_key_attribute_is_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.transact_write_items(TransactItems=[
        update(table, key(), "SET pk = :v", ExpressionAttributeValues={":v": S("x")}),
    ])) == invalid(
        "One or more parameter values were invalid: Cannot update attribute pk. "
        "This attribute is part of the key"
    )


def test_transact_write_malformed_condition_is_refused_before_a_missing_table(ddb, table) -> None:  # type: ignore[no-untyped-def]
    code, message = error_of(lambda: ddb.transact_write_items(TransactItems=[
        put(unique_name("missing"), key()),
        check(table, key(), "attribute_not_exists("),
    ]))
    assert code == "ValidationException"
    assert message.startswith("Invalid ConditionExpression: Syntax error;")


def test_transact_write_unused_value_is_refused_before_a_duplicate_target(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.transact_write_items(TransactItems=[
        put(table, k),
        check(table, k, "attribute_not_exists(pk)", ExpressionAttributeValues={":v": S("x")}),
    ])) == invalid("Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}")


def test_transact_write_unknown_enums_are_reported_with_the_long_token_first(raw, table) -> None:  # type: ignore[no-untyped-def]
    token = "x" * 37
    assert error_of(lambda: raw.transact_write_items(
        TransactItems=[put(table, key())], ClientRequestToken=token, ReturnConsumedCapacity="BOGUS",
    )) == invalid(
        f"2 validation errors detected: Value '{token}' at 'clientRequestToken' failed to satisfy "
        "constraint: Member must have length less than or equal to 36; Value 'BOGUS' at "
        "'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value "
        "set: [INDEXES, TOTAL, NONE]"
    )


# --- ClientRequestToken ---------------------------------------------------------------


def counter_transaction(table: str, k: Wire) -> list[Wire]:
    return [update(table, k, "ADD n :one", ExpressionAttributeValues={":one": N("1")})]


def test_repeated_token_and_request_succeeds_without_writing_again(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k, token = key(), uuid.uuid4().hex
    for _ in range(3):
        ddb.transact_write_items(TransactItems=counter_transaction(table, k), ClientRequestToken=token)
    assert get(ddb, table, k) == {**k, "n": N("1")}


def test_repeated_token_reports_reading_instead_of_writing(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k, token = key(), uuid.uuid4().hex
    first = ddb.transact_write_items(
        TransactItems=counter_transaction(table, k), ClientRequestToken=token, ReturnConsumedCapacity="TOTAL")
    again = ddb.transact_write_items(
        TransactItems=counter_transaction(table, k), ClientRequestToken=token, ReturnConsumedCapacity="TOTAL")
    assert first["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}]
    assert again["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}]


def test_repeated_token_with_a_different_request_is_a_mismatch(ddb, table) -> None:  # type: ignore[no-untyped-def]
    token = uuid.uuid4().hex
    ddb.transact_write_items(TransactItems=[put(table, key())], ClientRequestToken=token)
    code, _ = error_of(lambda: ddb.transact_write_items(
        TransactItems=[put(table, key())], ClientRequestToken=token))
    assert code == "IdempotentParameterMismatchException"


def test_a_retry_matches_on_its_actions_alone(engine, ddb, table) -> None:  # type: ignore[no-untyped-def]
    k, token = key(), uuid.uuid4().hex
    first = {"TransactItems": counter_transaction(table, k), "ClientRequestToken": token}
    assert post(engine, "TransactWriteItems", first)[0] == 200
    # Members that shape the answer, and members DynamoDB's parser ignores, may differ.
    shaped = {**first, "ReturnConsumedCapacity": "TOTAL", "Unknown": [1]}
    assert post(engine, "TransactWriteItems", shaped)[0] == 200
    extra = [{"Update": {**counter_transaction(table, k)[0]["Update"], "Unknown": True}}]
    assert post(engine, "TransactWriteItems", {**first, "TransactItems": extra})[0] == 200
    assert get(ddb, table, k) == {**k, "n": N("1")}, "the retries wrote nothing"
    other = {**first, "TransactItems": counter_transaction(table, key())}
    status, answer = post(engine, "TransactWriteItems", other)
    assert (status, answer["__type"].rsplit("#", 1)[-1]) == (400, "IdempotentParameterMismatchException")


def test_token_of_a_cancelled_transaction_may_be_used_again(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k, token = key(), uuid.uuid4().hex
    guarded = [put(table, k, ConditionExpression="attribute_exists(pk)")]
    cancellation(lambda: ddb.transact_write_items(TransactItems=guarded, ClientRequestToken=token))
    ddb.transact_write_items(TransactItems=[put(table, k)], ClientRequestToken=token)
    assert get(ddb, table, k) == k


def test_token_store_replays_within_ten_minutes_of_completion() -> None:
    store = TokenStore()
    assert store.claim("t", b"request", now=1000.0)
    store.complete("t", now=1000.0)
    assert not store.claim("t", b"request", now=1000.0 + TOKEN_TTL_SECONDS - 1)


def test_token_store_forgets_a_token_ten_minutes_after_completion() -> None:
    store = TokenStore()
    store.claim("t", b"request", now=0.0)
    store.complete("t", now=5.0)
    assert store.claim("t", b"another request", now=5.0 + TOKEN_TTL_SECONDS)
    assert len(store) == 1


def test_token_store_refuses_another_request_under_a_live_token() -> None:
    store = TokenStore()
    store.claim("t", b"request", now=0.0)
    store.complete("t", now=0.0)
    with pytest.raises(IdempotentParameterMismatchException):
        store.claim("t", b"another request", now=1.0)


def test_token_store_says_in_progress_while_the_first_request_runs() -> None:
    store = TokenStore()
    store.claim("t", b"request", now=0.0)
    with pytest.raises(TransactionInProgressException):
        store.claim("t", b"request", now=0.1)


def test_token_store_releases_a_token_whose_transaction_failed() -> None:
    store = TokenStore()
    store.claim("t", b"request", now=0.0)
    store.release("t")
    assert store.claim("t", b"another request", now=0.1)


# --- TransactGetItems ------------------------------------------------------------------


def test_transact_get_returns_items_in_request_order_with_empty_for_missing(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    a, b = key(), key()
    ddb.put_item(TableName=table, Item={**a, "v": S("a")})
    ddb.put_item(TableName=other, Item={**b, "v": S("b")})
    response = ddb.transact_get_items(TransactItems=[
        get_action(other, b), get_action(table, key()), get_action(table, a),
    ])
    assert response["Responses"] == [{"Item": {**b, "v": S("b")}}, {}, {"Item": {**a, "v": S("a")}}]
    assert "ConsumedCapacity" not in response


def test_transact_get_projection_applies_per_action(ddb, table) -> None:  # type: ignore[no-untyped-def]
    a, b = key(), key()
    for k in (a, b):
        ddb.put_item(TableName=table, Item={**k, "name": S("n"), "x": S("x")})
    response = ddb.transact_get_items(TransactItems=[
        get_action(table, a, ProjectionExpression="#n", ExpressionAttributeNames={"#n": "name"}),
        get_action(table, b),
    ])
    assert response["Responses"] == [
        {"Item": {"name": S("n")}}, {"Item": {**b, "name": S("n"), "x": S("x")}},
    ]


def test_transact_get_capacity_is_twice_a_consistent_read_per_table(ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    big = key()
    ddb.put_item(TableName=table, Item=sized_item(big, 5000))  # 2 read units
    response = ddb.transact_get_items(
        TransactItems=[get_action(table, big), get_action(other, key())], ReturnConsumedCapacity="TOTAL",
    )
    assert response["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0},
        {"TableName": other, "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0},
    ]


def test_transact_get_two_reads_of_one_item_are_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert error_of(lambda: ddb.transact_get_items(
        TransactItems=[get_action(table, k), get_action(table, k)])) == ONE_ITEM


def test_transact_get_without_actions_is_refused(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.transact_get_items(TransactItems=[])) == invalid(
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_transact_get_over_100_actions_is_refused(raw, table) -> None:  # type: ignore[no-untyped-def]
    code, message = error_of(lambda: raw.transact_get_items(
        TransactItems=[get_action(table, key()) for _ in range(101)]))
    assert code == "ValidationException"
    assert re.fullmatch(
        r"1 validation error detected: Value '\[.+\]' at 'transactItems' failed to satisfy "
        r"constraint: Member must have length less than or equal to 100", message,
    )


def test_transact_get_action_without_get_names_the_member(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.transact_get_items(TransactItems=[{}])) == invalid(
        "1 validation error detected: Value null at 'transactItems.1.member.get' failed to "
        "satisfy constraint: Member must not be null"
    )


@pytest.mark.parametrize("bad_key", [
    pytest.param({}, id="empty"), pytest.param({"pk": N("1")}, id="wrong-type"),
])
def test_transact_get_key_of_the_wrong_shape_is_a_validation_error_reason(ddb, table, bad_key) -> None:  # type: ignore[no-untyped-def]
    reasons = cancellation(lambda: ddb.transact_get_items(
        TransactItems=[get_action(table, key()), get_action(table, bad_key)]))
    assert reasons == [NONE, {"Code": "ValidationError", "Message": SCHEMA_MISMATCH}]


def test_transact_get_malformed_projection_is_refused(ddb, table) -> None:  # type: ignore[no-untyped-def]
    code, message = error_of(lambda: ddb.transact_get_items(
        TransactItems=[get_action(table, key(), ProjectionExpression="!!!")]))
    assert code == "ValidationException"
    assert message.startswith("Invalid ProjectionExpression: Syntax error;")


def test_transact_get_from_a_missing_table_is_not_found(ddb) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: ddb.transact_get_items(
        TransactItems=[get_action(unique_name("missing"), key())])) == NOT_FOUND


# --- many clients at once ------------------------------------------------------------


def run_clients(engine: EngineProcess, work: Callable[[Any, int], None]) -> None:
    """``work(client, index)`` on THREADS threads, each with its own boto3 client, started together."""
    clients = [engine.client() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        start.wait()
        work(clients[index], index)

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(run, i) for i in range(THREADS)]:
            future.result()


def balances(client, accounts: list[tuple[str, Wire]]) -> list[int]:  # type: ignore[no-untyped-def]
    response = client.transact_get_items(TransactItems=[get_action(t, k) for t, k in accounts])
    return [int(r["Item"]["balance"]["N"]) for r in response["Responses"]]


def transfer(client, source: tuple[str, Wire], target: tuple[str, Wire], amount: int) -> bool:  # type: ignore[no-untyped-def]
    value = {":a": N(str(amount))}
    try:
        client.transact_write_items(TransactItems=[
            update(*source, "SET balance = balance - :a", ConditionExpression="balance >= :a",
                   ExpressionAttributeValues=value),
            update(*target, "SET balance = balance + :a", ExpressionAttributeValues=value),
        ])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "TransactionCanceledException"
        return False
    return True


def test_concurrent_transfers_keep_the_total_and_every_snapshot_consistent(engine, ddb, table, other) -> None:  # type: ignore[no-untyped-def]
    accounts = [(table if i % 2 else other, key(f"acct-{i}-{uuid.uuid4().hex}")) for i in range(8)]
    for t, k in accounts:
        ddb.put_item(TableName=t, Item={**k, "balance": N("100")})
    done: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def work(client, index: int) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(index)
        for _ in range(12):
            if index % 4 == 0:  # a quarter of the clients audit instead
                assert sum(balances(client, accounts)) == 800
                continue
            source, target = rng.sample(range(len(accounts)), 2)
            amount = rng.randint(1, 60)
            if transfer(client, accounts[source], accounts[target], amount):
                with lock:
                    done.append((source, target, amount))

    run_clients(engine, work)
    expected = [100] * len(accounts)
    for source, target, amount in done:
        expected[source] -= amount
        expected[target] += amount
    assert balances(ddb, accounts) == expected
    assert min(expected) >= 0 and done


def test_concurrent_claims_each_succeed_exactly_once(engine, ddb, table) -> None:  # type: ignore[no-untyped-def]
    tickets = [key(f"ticket-{i}-{uuid.uuid4().hex}") for i in range(20)]
    winners: dict[str, list[int]] = {k["pk"]["S"]: [] for k in tickets}
    lock = threading.Lock()

    def claim(client, k: Wire, index: int) -> bool:  # type: ignore[no-untyped-def]
        item = {**k, "owner": N(str(index))}
        try:
            if index % 2:
                client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
            else:
                client.transact_write_items(TransactItems=[
                    put(table, item, ConditionExpression="attribute_not_exists(pk)"),
                ])
        except ClientError as error:
            code = error.response["Error"]["Code"]
            assert code in ("ConditionalCheckFailedException", "TransactionCanceledException")
            return False
        return True

    def work(client, index: int) -> None:  # type: ignore[no-untyped-def]
        for k in random.Random(index).sample(tickets, len(tickets)):
            if claim(client, k, index):
                with lock:
                    winners[k["pk"]["S"]].append(index)

    run_clients(engine, work)
    assert all(len(claimed) == 1 for claimed in winners.values()), winners
    for k in tickets:
        assert get(ddb, table, k) == {**k, "owner": N(str(winners[k["pk"]["S"]][0]))}


def test_concurrent_retries_with_one_token_apply_once(engine, ddb, table) -> None:  # type: ignore[no-untyped-def]
    k, token = key(), uuid.uuid4().hex
    succeeded: list[int] = []

    def work(client, index: int) -> None:  # type: ignore[no-untyped-def]
        try:
            client.transact_write_items(TransactItems=counter_transaction(table, k), ClientRequestToken=token)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TransactionInProgressException"
            return
        succeeded.append(index)

    run_clients(engine, work)
    assert succeeded
    assert get(ddb, table, k) == {**k, "n": N("1")}
