"""Streams read from the change log, in-process with a fake clock: expiry, trimming, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.errors import (
    ExpiredIteratorException,
    ResourceNotFoundException,
    TrimmedDataAccessException,
)
from tablekeeper.engine.maintenance import trim_logs
from tablekeeper.engine.operations import streams as ops
from tablekeeper.engine.operations.common import read_existing, write_item
from tablekeeper.engine.operations.items import parse_put_item, put_item
from tablekeeper.engine.operations.table_admin import parse_update_table, update_table
from tablekeeper.engine.operations.tables import create_table, parse_create_table
from tablekeeper.engine.storage.base import WriteTxn
from tablekeeper.engine.streams import ITERATOR_LIFETIME_MS, RETENTION_SECONDS
from tests.unit.conftest import Clock

T = TypeVar("T")
START = 1_800_000_000.0
HOUR = 3600.0



def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run a scenario on a fresh event loop (storage resolves writes on the caller's loop)."""

    async def main() -> T:
        return await scenario()

    return asyncio.run(main())


async def call(name: str, engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    operation = ops.OPERATIONS[name]
    result = await operation.execute(engine, operation.parse(body))
    return orjson.loads(orjson.dumps(result.to_wire()))


async def make_table(engine: Engine, view: str = "NEW_AND_OLD_IMAGES") -> str:
    await create_table(engine, parse_create_table({
        "TableName": "events",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": view},
    }))
    table = engine.catalog.get("events")
    assert table is not None and table.stream is not None
    return f"{table.arn}/stream/{table.stream.label}"


async def put(engine: Engine, key: str, **attributes: str) -> None:
    item = {"pk": {"S": key}, **{name: {"S": value} for name, value in attributes.items()}}
    await put_item(engine, parse_put_item({"TableName": "events", "Item": item}))


async def shard_iterator(engine: Engine, arn: str, kind: str = "TRIM_HORIZON", **extra: Any) -> str:
    description = await call("DescribeStream", engine, {"StreamArn": arn})
    shard = description["StreamDescription"]["Shards"][0]["ShardId"]
    body = {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind, **extra}
    return (await call("GetShardIterator", engine, body))["ShardIterator"]


async def records(engine: Engine, position: str, limit: int = 1000) -> dict[str, Any]:
    return await call("GetRecords", engine, {"ShardIterator": position, "Limit": limit})


def keys(page: dict[str, Any]) -> list[str]:
    return [record["dynamodb"]["Keys"]["pk"]["S"] for record in page["Records"]]


# --- expiry ------------------------------------------------------------------------------------


def test_an_iterator_used_within_15_minutes_reads(engine: Engine, clock: Clock) -> None:
    async def scenario() -> list[str]:
        arn = await make_table(engine)
        await put(engine, "a")
        position = await shard_iterator(engine, arn)
        clock.now += ITERATOR_LIFETIME_MS / 1000
        return keys(await records(engine, position))

    assert run(scenario) == ["a"]


def test_an_iterator_used_after_15_minutes_has_expired(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        arn = await make_table(engine)
        position = await shard_iterator(engine, arn)
        clock.now += ITERATOR_LIFETIME_MS / 1000 + 0.001
        with pytest.raises(ExpiredIteratorException) as caught:
            await records(engine, position)
        assert caught.value.body() == {
            "__type": "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException",
            "message": "The provided iterator exceeds the maximum age allowed.",
        }

    run(scenario)


def test_each_next_iterator_gets_15_minutes_of_its_own(engine: Engine, clock: Clock) -> None:
    async def scenario() -> list[str]:
        arn = await make_table(engine)
        position = await shard_iterator(engine, arn)
        for _ in range(3):  # 3 x 10 minutes: only each iterator's own age counts
            clock.now += 600
            position = (await records(engine, position))["NextShardIterator"]
        clock.now += 600
        await put(engine, "late")
        return keys(await records(engine, position))

    assert run(scenario) == ["late"]


# --- trimming ----------------------------------------------------------------------------------


async def write_then_trim(engine: Engine, clock: Clock, arn: str) -> None:
    """Writes a0..a2 now and b0..b2 two hours later, then trims everything older than 1 hour."""
    for i in range(3):
        await put(engine, f"a{i}")
    clock.now += 2 * HOUR
    for i in range(3):
        await put(engine, f"b{i}")
    assert await trim_logs(engine, retention_ms=int(HOUR * 1000)) == 3


def test_trim_horizon_starts_at_the_oldest_record_left(engine: Engine, clock: Clock) -> None:
    async def scenario() -> list[str]:
        arn = await make_table(engine)
        await write_then_trim(engine, clock, arn)
        return keys(await records(engine, await shard_iterator(engine, arn)))

    assert run(scenario) == ["b0", "b1", "b2"]


def test_an_iterator_whose_next_records_were_trimmed_fails(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        arn = await make_table(engine)
        position = await shard_iterator(engine, arn)
        await write_then_trim(engine, clock, arn)
        clock.now -= 2 * HOUR  # the iterator itself is still fresh
        with pytest.raises(TrimmedDataAccessException) as caught:
            await records(engine, position)
        assert caught.value.body()["message"] == "The data you are trying to access has been trimmed."

    run(scenario)


def test_an_iterator_whose_whole_shard_was_trimmed_fails(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        arn = await make_table(engine)
        position = await shard_iterator(engine, arn)
        await put(engine, "a")
        clock.now += 2 * HOUR
        await trim_logs(engine, retention_ms=int(HOUR * 1000))
        clock.now -= 2 * HOUR
        with pytest.raises(TrimmedDataAccessException):
            await records(engine, position)

    run(scenario)


def test_a_sequence_number_of_a_trimmed_record_fails(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        arn = await make_table(engine)
        await put(engine, "a0")
        first = (await records(engine, await shard_iterator(engine, arn)))["Records"][0]
        number = first["dynamodb"]["SequenceNumber"]
        await write_then_trim(engine, clock, arn)
        for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            with pytest.raises(TrimmedDataAccessException):
                await shard_iterator(engine, arn, kind, SequenceNumber=number)

    run(scenario)


def test_at_timestamp_before_the_trim_point_starts_at_the_oldest_record_left(
    engine: Engine, clock: Clock
) -> None:
    async def scenario() -> list[str]:
        arn = await make_table(engine)
        await write_then_trim(engine, clock, arn)
        position = await shard_iterator(engine, arn, "AT_TIMESTAMP", Timestamp=START - HOUR)
        return keys(await records(engine, position))

    assert run(scenario) == ["b0", "b1", "b2"]


# --- past streams ------------------------------------------------------------------------------


async def disable(engine: Engine) -> None:
    body = {"TableName": "events", "StreamSpecification": {"StreamEnabled": False}}
    await update_table(engine, parse_update_table(body))


def test_a_disabled_stream_exists_for_24_hours(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        arn = await make_table(engine)
        await disable(engine)
        clock.now += RETENTION_SECONDS - 1
        assert (await call("ListStreams", engine, {}))["Streams"][0]["StreamArn"] == arn
        clock.now += 1
        assert (await call("ListStreams", engine, {}))["Streams"] == []
        with pytest.raises(ResourceNotFoundException):
            await call("DescribeStream", engine, {"StreamArn": arn})

    run(scenario)


def test_streams_survive_a_catalog_reload(tmp_path: Path, clock: Clock) -> None:
    first = Engine(EngineConfig(tmp_path), clock=clock)

    async def before() -> str:
        arn = await make_table(first)
        await put(first, "a")
        await disable(first)
        return arn

    try:
        arn = asyncio.run(before())
    finally:
        first.close()
    second = Engine(EngineConfig(tmp_path), clock=clock)

    async def after() -> dict[str, Any]:
        return (await call("DescribeStream", second, {"StreamArn": arn}))["StreamDescription"]

    try:
        description = asyncio.run(after())
    finally:
        second.close()
    assert description["StreamStatus"] == "DISABLED"
    assert description["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"].endswith("1")


# --- limits and identities ----------------------------------------------------------------------


def test_get_records_stops_near_one_megabyte(engine: Engine) -> None:
    async def scenario() -> tuple[int, int]:
        arn = await make_table(engine, "NEW_IMAGE")
        for i in range(5):
            await put(engine, f"big{i}", blob="x" * 350_000)
        position = await shard_iterator(engine, arn)
        first = await records(engine, position)
        rest = await records(engine, first["NextShardIterator"])
        return len(first["Records"]), len(first["Records"]) + len(rest["Records"])

    assert run(scenario) == (2, 4)


def test_a_ttl_delete_carries_the_service_identity(engine: Engine) -> None:
    async def scenario() -> dict[str, Any]:
        arn = await make_table(engine)
        await put(engine, "old")
        table = engine.catalog.get("events")
        assert table is not None
        key_item = {"pk": "old"}
        key = table.key_schema.encode(key_item)

        def expire(txn: WriteTxn) -> None:
            write_item(engine, txn, table, key, key_item, read_existing(txn, table, key), None,
                       origin="ttl")

        await engine.storage.write(expire)
        return (await records(engine, await shard_iterator(engine, arn)))["Records"][-1]

    record = run(scenario)
    assert record["eventName"] == "REMOVE"
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_limit_holds_across_many_records(engine: Engine) -> None:
    async def scenario() -> list[int]:
        arn = await make_table(engine, "KEYS_ONLY")
        await asyncio.gather(*(put(engine, f"k{i:03d}") for i in range(70)))
        first = await records(engine, await shard_iterator(engine, arn), limit=40)
        rest = await records(engine, first["NextShardIterator"])
        end = await records(engine, rest["NextShardIterator"])
        return [len(first["Records"]), len(rest["Records"]), len(end["Records"])]

    assert run(scenario) == [40, 30, 0]
