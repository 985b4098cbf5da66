"""ClientRequestToken idempotency survives the engine being killed after it committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.maintenance import forget_tokens
from tablekeeper.engine.operations import OPERATIONS
from tests.conftest import create_table, start_engine, unique_name


def _increment(table: str, other: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        {"Update": {"TableName": table, "Key": {"pk": {"S": "counter"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": other, "Item": {"pk": {"S": "marker"}}}},
    ]


def test_a_retried_token_after_kill_9_does_not_apply_the_transaction_twice(tmp_path: Path) -> None:
    engine = start_engine(tmp_path)
    try:
        ddb = engine.client()
        table = create_table(ddb, unique_name("tok"))
        other = create_table(ddb, unique_name("tok2"))
        ddb.transact_write_items(TransactItems=_increment(table, other), ClientRequestToken="retry-me")
        engine.kill()  # as if the reply was lost with the process
    finally:
        engine.stop()
    restarted = start_engine(tmp_path)
    try:
        ddb = restarted.client()
        ddb.transact_write_items(TransactItems=_increment(table, other), ClientRequestToken="retry-me")
        item = ddb.get_item(TableName=table, Key={"pk": {"S": "counter"}})["Item"]
        assert item["n"] == {"N": "1"}
        with pytest.raises(ClientError) as info:
            ddb.transact_write_items(TransactItems=_increment(other, table),
                                     ClientRequestToken="retry-me")
        assert info.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    finally:
        restarted.stop()


def test_recorded_tokens_are_forgotten_after_ten_minutes(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    engine = Engine(EngineConfig(tmp_path), clock=lambda: now[0])

    async def call(operation: str, body: dict) -> None:  # type: ignore[type-arg]
        op = OPERATIONS[operation]
        await op.execute(engine, op.parse(body))

    async def scenario() -> tuple[int, int]:
        for name in ("tokens-a", "tokens-b"):
            await call("CreateTable", {
                "TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            })
        await call("TransactWriteItems", {"TransactItems": _increment("tokens-a", "tokens-b"),
                                          "ClientRequestToken": "t1"})
        now[0] += 599
        early = await forget_tokens(engine)
        now[0] += 2
        late = await forget_tokens(engine)
        return early, late

    try:
        early, late = asyncio.run(scenario())
    finally:
        engine.close()
    assert (early, late) == (0, 1)
