"""Reading a table file as of a sequence number (storage.sqlite.read_as_of), as backup workers do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.operations import OPERATIONS
from tablekeeper.engine.storage.base import ITEMS, StorageError, WriteTxn
from tablekeeper.engine.storage.sqlite import read_as_of
from tablekeeper.engine.values import load_item

START = 1_700_000_000.0


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())  # type: ignore[arg-type]


async def call(engine: Engine, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    op = OPERATIONS[operation]
    return (await op.execute(engine, op.parse(body))).to_wire()


async def _table(engine: Engine) -> None:
    await call(engine, "CreateTable", {
        "TableName": "moments", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    })


async def _put(engine: Engine, key: str, value: str) -> None:
    await call(engine, "PutItem", {"TableName": "moments", "Item": {"pk": {"S": key}, "v": {"S": value}}})


async def _delete(engine: Engine, key: str) -> None:
    await call(engine, "DeleteItem", {"TableName": "moments", "Key": {"pk": {"S": key}}})


def _as_of(engine: Engine, sequence: int) -> list[tuple[bytes, bytes]]:
    table = engine.table("moments")

    def key_of(keys: bytes) -> bytes:
        return table.key_schema.encode(load_item(orjson.loads(keys)))

    return list(read_as_of(engine.storage.table_file(table.table_id), sequence, key_of))


def _now(engine: Engine) -> tuple[int, list[tuple[bytes, bytes]]]:
    reader = engine.reader(engine.table("moments"))
    return reader.stats().last_sequence, list(reader.range(None, None, space=ITEMS))


def test_items_put_updated_and_deleted_later_read_as_they_were(engine: Engine) -> None:
    async def scenario() -> None:
        await _table(engine)
        for i in range(20):
            await _put(engine, f"k{i:02d}", "before")
        sequence, expected = _now(engine)
        await _put(engine, "k03", "after")  # updated
        await _delete(engine, "k05")  # deleted
        await _put(engine, "k05x", "new")  # created
        await _put(engine, "k07", "after")
        await _put(engine, "k07", "again")  # changed twice: the first record's old image counts
        await _delete(engine, "k99")  # nothing there: no record
        assert _as_of(engine, sequence) == expected

    run(scenario)


def test_the_latest_sequence_reads_the_table_as_it_is(engine: Engine) -> None:
    async def scenario() -> None:
        await _table(engine)
        for i in range(5):
            await _put(engine, f"k{i}", "x")
        sequence, expected = _now(engine)
        assert _as_of(engine, sequence) == expected

    run(scenario)


def test_a_trimmed_log_is_an_error_not_a_wrong_table(engine: Engine) -> None:
    async def scenario() -> None:
        await _table(engine)
        await _put(engine, "a", "1")
        sequence, _ = _now(engine)
        await _put(engine, "a", "2")
        await _put(engine, "a", "3")
        table = engine.table("moments")

        def trim(txn: WriteTxn) -> int:
            return txn.trim_log(table.table_id, 2**62, 2)  # records 1 and 2: 2 came after

        assert await engine.storage.write(trim) == 2
        with pytest.raises(StorageError, match="is gone"):
            _as_of(engine, sequence)

    run(scenario)
