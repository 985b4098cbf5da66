"""An index that projects ALL keeps a reference to each item, not a copy (engine/references.py).

In-process engine: what the index space holds, that reads always give the
item as it is now, that a copy left by an older engine is read the same way,
and that the counters and item collection sizes stay exact.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.indexes import collection_size, entry_key
from tablekeeper.engine.references import reference, referenced_key, referenced_size
from tablekeeper.engine.storage.base import StorageError, WriteTxn, index_space
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import decode_item, item_size
from tests.inprocess import call, run

START = 1_700_000_000.0
NAME = "orders"


async def make_table(engine: Engine) -> TableDefinition:
    """pk/sk with global indexes on ``city`` (ALL, INCLUDE ``note``, KEYS_ONLY) and a local ALL
    index on ``placed``."""
    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    await call(engine, "CreateTable", {
        "TableName": NAME, "BillingMode": "PAY_PER_REQUEST", "KeySchema": key,
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"}
                                 for n in ("pk", "sk", "city", "placed")],
        "GlobalSecondaryIndexes": [
            {"IndexName": "by-city", "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}]},
            {"IndexName": "by-city-note", "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}},
            {"IndexName": "by-city-keys", "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}]},
        ],
        "LocalSecondaryIndexes": [{"IndexName": "by-placed", "Projection": {"ProjectionType": "ALL"},
                                   "KeySchema": [key[0], {"AttributeName": "placed", "KeyType": "RANGE"}]}],
    })
    found = engine.catalog.get(NAME)
    assert found is not None
    return found


ITEM = {"pk": {"S": "p1"}, "sk": {"S": "s1"}, "city": {"S": "Oslo"}, "placed": {"S": "2026-11-27"},
        "note": {"S": "aaaa"}}


async def city_items(engine: Engine, index: str = "by-city") -> list[dict[str, Any]]:
    found = await call(engine, "Query", {
        "TableName": NAME, "IndexName": index, "KeyConditionExpression": "city = :c",
        "ExpressionAttributeValues": {":c": {"S": "Oslo"}},
    })
    scanned = await call(engine, "Scan", {"TableName": NAME, "IndexName": index})
    assert scanned["Items"] == found["Items"]
    return found["Items"]


async def set_note(engine: Engine, note: str) -> None:
    await call(engine, "UpdateItem", {
        "TableName": NAME, "Key": {"pk": ITEM["pk"], "sk": ITEM["sk"]},
        "UpdateExpression": "SET note = :n", "ExpressionAttributeValues": {":n": {"S": note}},
    })


def entries(engine: Engine, table: TableDefinition, index: str) -> list[tuple[bytes, bytes]]:
    return list(engine.reader(table).range(None, None, space=index_space(index)))


async def index_size(engine: Engine, index: str) -> tuple[int, int]:
    described = (await call(engine, "DescribeTable", {"TableName": NAME}))["Table"]
    every = described["GlobalSecondaryIndexes"] + described["LocalSecondaryIndexes"]
    found = next(i for i in every if i["IndexName"] == index)
    return found["ItemCount"], found["IndexSizeBytes"]


def test_an_all_index_entry_is_the_items_size_and_key_length_not_a_copy(engine: Engine) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        key = table.key_schema.encode(decode_item(ITEM))
        for index in ("by-city", "by-placed"):
            [(stored_key, value)] = entries(engine, table, index)
            assert value == reference(item_size(decode_item(ITEM)), key)
            assert referenced_key(stored_key, value) == key
            assert await index_size(engine, index) == (1, item_size(decode_item(ITEM)))

    run(scenario)


def test_an_item_changed_in_place_reads_back_changed_through_the_index(engine: Engine) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        before = entries(engine, table, "by-city")
        await set_note(engine, "bbbb")  # the same size: the reference stays as it was
        assert entries(engine, table, "by-city") == before
        assert [item["note"] for item in await city_items(engine)] == [{"S": "bbbb"}]
        await set_note(engine, "a longer note")  # a new size: the reference follows
        [(_, value)] = entries(engine, table, "by-city")
        assert referenced_size(value) == item_size(decode_item({**ITEM, "note": {"S": "a longer note"}}))
        assert [item["note"] for item in await city_items(engine)] == [{"S": "a longer note"}]

    run(scenario)


def test_a_projecting_index_keeps_a_copy_of_its_attributes_as_they_are_now(engine: Engine) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        keys = {name: ITEM[name] for name in ("pk", "sk", "city")}
        projected = {**keys, "note": ITEM["note"]}
        [(_, value)] = entries(engine, table, "by-city-note")
        assert orjson.loads(value) == projected  # a copy: small, and read without a lookup
        assert await index_size(engine, "by-city-keys") == (1, item_size(decode_item(keys)))
        await set_note(engine, "bbbb")
        assert await city_items(engine, "by-city-note") == [{**keys, "note": {"S": "bbbb"}}]
        assert await city_items(engine, "by-city-keys") == [keys]

    run(scenario)


def test_a_copy_written_by_an_older_engine_reads_as_the_current_item_and_counts_exactly(
    engine: Engine,
) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        [(stored_key, _)] = entries(engine, table, "by-city")
        copy = orjson.dumps(ITEM)  # how engines before references stored an ALL entry

        def put_copy(txn: WriteTxn) -> None:
            txn.put(table.table_id, index_space("by-city"), stored_key, copy)

        await engine.storage.write(put_copy)
        await set_note(engine, "bbbb")  # the same size: the copy stays, and is now stale
        assert entries(engine, table, "by-city") == [(stored_key, copy)]
        assert [item["note"] for item in await city_items(engine)] == [{"S": "bbbb"}]
        await set_note(engine, "a longer note")
        assert await index_size(engine, "by-city") == (
            1, item_size(decode_item({**ITEM, "note": {"S": "a longer note"}})))
        await call(engine, "DeleteItem", {"TableName": NAME, "Key": {"pk": ITEM["pk"], "sk": ITEM["sk"]}})
        assert await index_size(engine, "by-city") == (0, 0)
        assert await city_items(engine) == []

    run(scenario)


def test_an_entry_whose_item_is_gone_fails_the_read_instead_of_skipping_it(engine: Engine) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        key = table.key_schema.encode(decode_item(ITEM))
        await engine.storage.write(lambda txn: txn.delete(table.table_id, "items", key))
        with pytest.raises(StorageError, match="index by-city of table orders: an entry without its item"):
            await city_items(engine)

    run(scenario)


@pytest.mark.parametrize("damaged", [b"\x00\x00\x00\x05\xff\xff", b"\x00\x01", b'{"pk":{"S":"p1"}}'])
def test_an_entry_that_is_neither_reference_nor_copy_fails_the_read(engine: Engine, damaged: bytes) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        [(stored_key, _)] = entries(engine, table, "by-city")
        await engine.storage.write(
            lambda txn: txn.put(table.table_id, index_space("by-city"), stored_key, damaged))
        with pytest.raises(StorageError, match="read index by-city of table orders: "):
            await city_items(engine)

    run(scenario)


def test_an_item_collection_counts_each_all_entry_at_its_items_size(engine: Engine) -> None:
    async def scenario() -> None:
        table = await make_table(engine)
        await call(engine, "PutItem", {"TableName": NAME, "Item": ITEM})
        item = decode_item(ITEM)
        assert entry_key(table.indexes[1], table.key_schema.encode(item), item) is not None
        assert collection_size(engine.reader(table), table, item) == 2 * item_size(item)

    run(scenario)


def test_a_reference_refuses_what_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="sizes below 16 MB and keys below 64 KB"):
        reference(1 << 24, b"k")
    with pytest.raises(ValueError, match="not an index reference"):
        referenced_key(b"entry", b"{}")
    with pytest.raises(ValueError, match="5-byte entry key"):
        referenced_key(b"entry", reference(10, b"x" * 9))
