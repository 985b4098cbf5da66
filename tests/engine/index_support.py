"""What the secondary index tests share: request builders, waits, readers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import unique_name

Wire = dict[str, Any]
Client = Any

INVALID = "One or more parameter values were invalid: "
START_INVALID = "The provided starting key is invalid"
KEY_MISMATCH = "The provided key element does not match the schema"


# --- helpers -----------------------------------------------------------------------------------


def S(text: str) -> Wire:
    return {"S": text}


def N(number: object) -> Wire:
    return {"N": str(number)}


def key_schema(hash_key: str, range_key: str | None = None) -> list[Wire]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def defs(**types: str) -> list[Wire]:
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


def gsi(name: str, hash_key: str, range_key: str | None = None, projection: str = "ALL",
        non_key: list[str] | None = None, **extra: Any) -> Wire:
    spec: Wire = {"ProjectionType": projection}
    if non_key is not None:
        spec["NonKeyAttributes"] = non_key
    return {"IndexName": name, "KeySchema": key_schema(hash_key, range_key), "Projection": spec,
            **extra}


lsi = gsi  # the same structure, without throughput


def error_of(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


def invalid(message: str) -> tuple[str, str]:
    return "ValidationException", message


def all_pages(call: Callable[..., Wire], **kwargs: Any) -> Iterator[Wire]:
    while True:
        page = call(**kwargs)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def put_all(ddb: Client, table: str, items: list[Wire]) -> None:
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
        assert not ddb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems")


def query_index(ddb: Client, table: str, index: str, condition: str, **values: Wire) -> list[Wire]:
    items: list[Wire] = []
    for page in all_pages(ddb.query, TableName=table, IndexName=index,
                          KeyConditionExpression=condition,
                          ExpressionAttributeValues={f":{k}": v for k, v in values.items()}):
        items.extend(page["Items"])
    return items


def scan_all(ddb: Client, table: str, **kwargs: Any) -> list[Wire]:
    return [item for page in all_pages(ddb.scan, TableName=table, **kwargs)
            for item in page["Items"]]


def index_of(ddb: Client, table: str, name: str) -> Wire:
    described = ddb.describe_table(TableName=table)["Table"]
    for index in described.get("GlobalSecondaryIndexes", []) + described.get(
        "LocalSecondaryIndexes", []
    ):
        if index["IndexName"] == name:
            return index  # type: ignore[no-any-return]
    raise AssertionError(f"no index {name}")


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def index_active(ddb: Client, table: str, name: str) -> bool:
    return index_of(ddb, table, name)["IndexStatus"] == "ACTIVE"


def index_gone(ddb: Client, table: str, name: str) -> bool:
    described = ddb.describe_table(TableName=table)["Table"]
    return all(i["IndexName"] != name for i in described.get("GlobalSecondaryIndexes", []))


def tag() -> str:
    return uuid.uuid4().hex[:10]


TWO_KEYS = {"KeySchema": key_schema("pk", "sk")}
HASH_ONLY = {"KeySchema": key_schema("pk")}
PPR = {"BillingMode": "PAY_PER_REQUEST"}
PROVISIONED = {"ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}
CAPACITY = {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}


def plain_table(ddb: Client, **extra: Any) -> str:
    name = unique_name("ix")
    ddb.create_table(TableName=name, KeySchema=key_schema("pk"), AttributeDefinitions=defs(pk="S"),
                     **(extra or PPR))
    return name


def create_index(ddb: Client, table: str, index: Wire, **types: str) -> Wire:
    return ddb.update_table(  # type: ignore[no-any-return]
        TableName=table, AttributeDefinitions=defs(**types),
        GlobalSecondaryIndexUpdates=[{"Create": index}],
    )["TableDescription"]


def expected_entries(ddb: Client, table: str) -> dict[str, str]:
    """pk -> g of every item a fresh index on g (type S) would hold."""
    return {item["pk"]["S"]: item["g"]["S"] for item in scan_all(ddb, table)
            if "S" in item.get("g", {})}
