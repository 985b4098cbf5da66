"""Malformed requests get a client error (4xx), never an InternalServerError, and the engine goes on.

Besides the cases found so far, a seeded fuzzer takes valid requests of every kind and breaks
them: members dropped, added, or replaced by values of the wrong JSON type, malformed attribute
values and broken expressions. DynamoDB answers all of those with SerializationException or
ValidationException; a 500 here is a request the engine failed to check.
"""

from __future__ import annotations

import copy
import http.client
import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import EngineProcess

DYNAMODB = "DynamoDB_20120810."
STREAMS = "DynamoDBStreams_20120810."
ITEM: dict[str, Any] = {
    "pk": {"S": "a"}, "sk": {"N": "1"}, "g": {"S": "x"},
    "m": {"M": {"l": {"L": [{"N": "1"}, {"SS": ["a", "b"]}]}}},
    "b": {"B": "AAEC"}, "n": {"NULL": True}, "t": {"BOOL": True},
}  # fmt: skip
KEY = {"pk": {"S": "a"}, "sk": {"N": "1"}}
ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/ranged"

# One valid request of each kind, touching as many members as it can.
TEMPLATES: list[tuple[str, dict[str, Any]]] = [
    (DYNAMODB + "PutItem", {
        "TableName": "ranged", "Item": ITEM, "ReturnValues": "ALL_OLD",
        "ConditionExpression": "attribute_not_exists(#p) OR size(m.l[1]) > :v",
        "ExpressionAttributeNames": {"#p": "pk"}, "ExpressionAttributeValues": {":v": {"N": "1"}},
        "ReturnConsumedCapacity": "TOTAL", "ReturnItemCollectionMetrics": "SIZE"}),
    (DYNAMODB + "GetItem", {
        "TableName": "ranged", "Key": KEY, "ProjectionExpression": "m.l[0], #g",
        "ExpressionAttributeNames": {"#g": "g"}, "ConsistentRead": True}),
    (DYNAMODB + "UpdateItem", {
        "TableName": "ranged", "Key": KEY, "ReturnValues": "UPDATED_NEW",
        "UpdateExpression": "SET m.l[0] = m.l[0] + :one, c = if_not_exists(c, :one) REMOVE t "
                            "ADD s :ss DELETE s2 :ss",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":ss": {"SS": ["q"]}}}),
    (DYNAMODB + "UpdateItem", {
        "TableName": "ranged", "Key": KEY,
        "AttributeUpdates": {"c": {"Action": "ADD", "Value": {"N": "2"}}, "t": {"Action": "DELETE"}},
        "Expected": {"g": {"Exists": True, "Value": {"S": "x"}}}}),
    (DYNAMODB + "DeleteItem", {
        "TableName": "ranged", "Key": {"pk": {"S": "a"}, "sk": {"N": "3"}},
        "Expected": {"g": {"AttributeValueList": [{"S": "x"}], "ComparisonOperator": "EQ"},
                     "t": {"ComparisonOperator": "NOT_NULL"}},
        "ConditionalOperator": "AND"}),
    (DYNAMODB + "Query", {
        "TableName": "ranged", "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
        "FilterExpression": "contains(m.l, :v) OR attribute_type(g, :t)",
        "ExpressionAttributeValues": {":p": {"S": "a"}, ":a": {"N": "0"}, ":b": {"N": "9"},
                                      ":v": {"N": "1"}, ":t": {"S": "S"}},
        "Limit": 2, "ScanIndexForward": False, "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"N": "3"}},
        "Select": "ALL_ATTRIBUTES"}),
    (DYNAMODB + "Query", {
        "TableName": "ranged", "IndexName": "byG", "ConditionalOperator": "OR", "AttributesToGet": ["pk"],
        "KeyConditions": {"g": {"AttributeValueList": [{"S": "x"}], "ComparisonOperator": "EQ"}},
        "QueryFilter": {"sk": {"AttributeValueList": [{"N": "2"}], "ComparisonOperator": "GT"},
                        "t": {"ComparisonOperator": "NULL"}}}),
    (DYNAMODB + "Scan", {
        "TableName": "ranged", "IndexName": "byL", "Segment": 1, "TotalSegments": 3, "Select": "COUNT",
        "ScanFilter": {"g": {"ComparisonOperator": "NOT_NULL"}}}),
    (DYNAMODB + "BatchGetItem", {"RequestItems": {"ranged": {"Keys": [KEY], "ProjectionExpression": "pk"}}}),
    (DYNAMODB + "BatchWriteItem", {
        "RequestItems": {"ranged": [{"PutRequest": {"Item": ITEM}},
                                    {"DeleteRequest": {"Key": {"pk": {"S": "a"}, "sk": {"N": "4"}}}}]},
        "ReturnItemCollectionMetrics": "SIZE"}),
    (DYNAMODB + "TransactWriteItems", {
        "ClientRequestToken": "token-1",
        "TransactItems": [
            {"ConditionCheck": {"TableName": "simple", "Key": {"pk": {"S": "z"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": "ranged", "Key": KEY, "UpdateExpression": "SET #x = list_append(:l, :l)",
                        "ExpressionAttributeNames": {"#x": "x"},
                        "ExpressionAttributeValues": {":l": {"L": [{"S": "1"}]}}}}]}),
    (DYNAMODB + "TransactGetItems", {"TransactItems": [{"Get": {"TableName": "ranged", "Key": KEY}}]}),
    (DYNAMODB + "CreateTable", {
        "TableName": "fuzzed", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "B"}],
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        "Tags": [{"Key": "k", "Value": "v"}], "SSESpecification": {"Enabled": True}}),
    (DYNAMODB + "UpdateTable", {
        "TableName": "simple", "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": {
            "IndexName": "byH", "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["q"]}}}]}),
    (DYNAMODB + "DescribeTable", {"TableName": "ranged"}),
    (DYNAMODB + "ListTables", {"ExclusiveStartTableName": "aaa", "Limit": 5}),
    (DYNAMODB + "TagResource", {"ResourceArn": ARN, "Tags": [{"Key": "a", "Value": "b"}]}),
    (DYNAMODB + "ListTagsOfResource", {"ResourceArn": ARN}),
    (DYNAMODB + "UpdateTimeToLive", {
        "TableName": "ranged", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "ttl"}}),
    (DYNAMODB + "DescribeContinuousBackups", {"TableName": "ranged"}),
    (DYNAMODB + "ListBackups", {"TableName": "ranged", "Limit": 3}),
    (DYNAMODB + "DescribeLimits", {}),
    (STREAMS + "ListStreams", {"TableName": "ranged", "Limit": 2}),
    (STREAMS + "DescribeStream", {"StreamArn": ARN + "/stream/2026-01-01T00:00:00.000"}),
    (STREAMS + "GetShardIterator", {"StreamArn": ARN + "/stream/x", "ShardId": "s",
                                    "ShardIteratorType": "TRIM_HORIZON"}),
    (STREAMS + "GetRecords", {"ShardIterator": "abc", "Limit": 5}),
]  # fmt: skip

WRONG_VALUES: list[Any] = [
    None, True, 0, -1, 2**70, 1.5, "", "x" * 70_000, "\u0000", "😀", [], [None], {}, {"": None},
    {"S": ""}, {"N": "1e999"}, {"N": "abc"}, {"N": " 1"}, {"SS": []}, {"SS": ["a", "a"]}, {"SS": "a"},
    {"B": "!!!"}, {"M": None}, {"L": {}}, {"NULL": False}, {"S": "a", "N": "1"}, {"BOOL": "yes"},
    "SET a = :v", "REMOVE", "a = b", "size(a) > size(b)", "#a.#b[0]", "a.b[99999999999]", ":v IN (:v)",
    "x[", "ADD a :v, a :v", "NOT NOT a = :v", "SET a[0] = :v REMOVE a[0]",
]  # fmt: skip
EXTRA_MEMBERS = ["Extra", "Item", "Key", "Limit", "Select", "IndexName", "ExpressionAttributeValues",
                 "ExpressionAttributeNames", "ConditionExpression", "ReturnValues", "Exists"]  # fmt: skip


class Wire:
    """Raw JSON 1.0 requests over one keep-alive connection: what a broken client can send."""

    def __init__(self, engine: EngineProcess) -> None:
        url = urlparse(engine.endpoint)
        self._address = (str(url.hostname), int(url.port or 80))
        self._conn = http.client.HTTPConnection(*self._address, timeout=30)

    def send(self, target: str, body: Any) -> tuple[int, dict[str, Any]]:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"}
        self._conn.request("POST", "/", payload, headers)
        answer = self._conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")

    def close(self) -> None:
        self._conn.close()


@pytest.fixture(scope="module")
def wire(engine: EngineProcess) -> Iterator[Wire]:
    client = Wire(engine)
    tables = [
        {"TableName": "simple", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
         "BillingMode": "PAY_PER_REQUEST"},
        {"TableName": "ranged", "BillingMode": "PAY_PER_REQUEST",
         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "N"},
                                  {"AttributeName": "g", "AttributeType": "S"}],
         "GlobalSecondaryIndexes": [{"IndexName": "byG",
                                     "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "ALL"}}],
         "LocalSecondaryIndexes": [{"IndexName": "byL",
                                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                  {"AttributeName": "g", "KeyType": "RANGE"}],
                                    "Projection": {"ProjectionType": "KEYS_ONLY"}}],
         "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}},
    ]  # fmt: skip
    for table in tables:
        assert client.send(DYNAMODB + "CreateTable", table)[0] == 200
    for n in range(5):
        item = {**ITEM, "sk": {"N": str(n)}}
        assert client.send(DYNAMODB + "PutItem", {"TableName": "ranged", "Item": item})[0] == 200
    yield client
    client.close()


def _error(answer: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    status, body = answer
    return status, str(body.get("__type", "")).rsplit("#", 1)[-1]


def test_an_expression_attribute_name_that_is_not_a_string_is_a_serialization_error(wire: Wire) -> None:
    request = {"TableName": "ranged", "Key": KEY, "ProjectionExpression": "#g",
               "ExpressionAttributeNames": {"#g": {"S": "g"}}}  # fmt: skip
    assert _error(wire.send(DYNAMODB + "GetItem", request)) == (400, "SerializationException")


@pytest.mark.parametrize("values", [True, -1.5, "x", {"S": "x"}])
def test_a_legacy_attribute_value_list_that_is_not_a_list_is_a_serialization_error(
    wire: Wire, values: Any
) -> None:
    condition = {"AttributeValueList": values, "ComparisonOperator": "EQ"}
    request = {"TableName": "ranged", "IndexName": "byG", "KeyConditions": {"g": condition}}
    assert _error(wire.send(DYNAMODB + "Query", request)) == (400, "SerializationException")


def test_a_legacy_exists_that_is_not_a_boolean_is_a_serialization_error(wire: Wire) -> None:
    request = {"TableName": "ranged", "Key": KEY, "Expected": {"g": {"Exists": "false"}}}
    assert _error(wire.send(DYNAMODB + "DeleteItem", request)) == (400, "SerializationException")


def test_an_empty_expression_attribute_name_is_refused(wire: Wire) -> None:
    request = {"TableName": "ranged", "Key": KEY, "ProjectionExpression": "#g",
               "ExpressionAttributeNames": {"#g": ""}}  # fmt: skip
    status, answer = wire.send(DYNAMODB + "GetItem", request)
    assert (status, answer["message"]) == (
        400, "ExpressionAttributeNames contains invalid value: Empty attribute name for key #g")


UNUSED_VALUES = {"ExpressionAttributeValues": {":v": {"S": "x"}}}


@pytest.mark.parametrize(
    ("target", "request_body"),
    [
        ("GetItem", {"TableName": "ranged", "Key": KEY, **UNUSED_VALUES}),
        ("BatchGetItem", {"RequestItems": {"ranged": {"Keys": [KEY], **UNUSED_VALUES}}}),
        ("TransactGetItems",
         {"TransactItems": [{"Get": {"TableName": "ranged", "Key": KEY, **UNUSED_VALUES}}]}),
    ],
)
def test_a_read_ignores_expression_attribute_values_a_member_it_does_not_have(
    wire: Wire, target: str, request_body: dict[str, Any]
) -> None:
    assert wire.send(DYNAMODB + target, request_body)[0] == 200


def _nodes(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, (*at, index))


def _broken(body: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """``body`` with one to three members dropped, added or replaced by a wrong value."""
    body = copy.deepcopy(body)
    for _ in range(rnd.randrange(1, 4)):
        paths = [path for path in _nodes(body) if path]
        at = rnd.choice(paths) if paths else (rnd.choice(EXTRA_MEMBERS),)
        parent = body
        for step in at[:-1]:
            parent = parent[step]
        change = rnd.randrange(4)
        if change == 0 and isinstance(parent, dict):
            parent.pop(at[-1], None)
        elif change == 1 and isinstance(parent, dict):
            parent[rnd.choice(EXTRA_MEMBERS)] = copy.deepcopy(rnd.choice(WRONG_VALUES))
        else:
            parent[at[-1]] = copy.deepcopy(rnd.choice(WRONG_VALUES))
    return body


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_broken_requests_of_every_kind_get_client_errors_and_the_engine_goes_on(
    wire: Wire, seed: int
) -> None:
    rnd = random.Random(seed)
    failed: list[str] = []
    for _ in range(600):
        target, template = rnd.choice(TEMPLATES)
        body = _broken(template, rnd)
        status, answer = wire.send(target, body)
        if status >= 500:
            failed.append(f"{target} {json.dumps(body)[:400]} -> {status} {answer}")
    assert not failed, "\n".join(failed[:5])
    assert wire.send(DYNAMODB + "ListTables", {})[0] == 200


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a":' * 5000, b"{}" * 3])
def test_bodies_that_are_not_a_json_object_are_serialization_errors(wire: Wire, raw: bytes) -> None:
    status, kind = _error(wire.send(DYNAMODB + "GetItem", raw))
    assert status == 400 and kind in ("SerializationException", "ValidationException"), (status, kind)
