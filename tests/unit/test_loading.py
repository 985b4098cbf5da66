"""The engine's side of a restore (engine/loading.py), in-process: a CREATING table that serves
nothing, a bulk load with exact counts and sizes, then ACTIVE, abandoned, or found after a restart."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.errors import ResourceInUseException, ResourceNotFoundException
from tablekeeper.engine.loading import (
    TableExists,
    abandon_restore,
    begin_restore,
    finish_restore,
    interrupted_restores,
    load_items,
)
from tablekeeper.engine.storage.base import ITEMS, SpaceStats, StorageError, index_space
from tablekeeper.engine.tables import RestoreSummary, TableDefinition
from tests.inprocess import call, run
from tests.unit.conftest import Clock

START = 1_700_000_000.0
SOURCE = "source"
TARGET = "restored"
BACKUP_ARN = f"arn:aws:dynamodb:us-east-1:000000000000:table/{SOURCE}/backup/01700000000000-abcdef12"
SUMMARY = RestoreSummary(START, True, source_backup_arn=BACKUP_ARN,
                         source_table_arn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{SOURCE}")


async def make_source(engine: Engine, count: int = 0) -> TableDefinition:
    """A table with an LSI (on ``placed``) and two sparse GSIs (on ``city``, one projecting ALL),
    with ``count`` items."""
    await call(engine, "CreateTable", {
        "TableName": SOURCE,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": kind}
                                 for name, kind in (("pk", "S"), ("sk", "N"), ("placed", "S"),
                                                    ("city", "S"))],
        "LocalSecondaryIndexes": [{"IndexName": "by-placed", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                 {"AttributeName": "placed", "KeyType": "RANGE"}]}],
        "GlobalSecondaryIndexes": [{"IndexName": "by-city",
                                    "Projection": {"ProjectionType": "INCLUDE",
                                                   "NonKeyAttributes": ["note"]},
                                    "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}]},
                                   {"IndexName": "by-city-all", "Projection": {"ProjectionType": "ALL"},
                                    "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"},
                                                  {"AttributeName": "sk", "KeyType": "RANGE"}]}],
        "BillingMode": "PAY_PER_REQUEST",
    })
    for i in range(count):
        await call(engine, "PutItem", {"TableName": SOURCE, "Item": sample_item(i)})
    return table(engine, SOURCE)


def sample_item(i: int) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": f"user-{i % 7}"}, "sk": {"N": str(i)},
                            "note": {"S": "n" * (i % 40)}, "tags": {"SS": [f"t{i % 3}", "x"]}}
    if i % 2 == 0:
        item["placed"] = {"S": f"2024-01-{i % 28 + 1:02d}"}
    if i % 3 == 0:
        item["city"] = {"S": f"city-{i % 5}"}
    return item


def table(engine: Engine, name: str) -> TableDefinition:
    found = engine.catalog.get(name)
    assert found is not None
    return found


def stored_items(engine: Engine, source: TableDefinition) -> list[tuple[bytes, bytes]]:
    return list(engine.reader(source).range(None, None, space=ITEMS))


def start_restore(engine: Engine, source: TableDefinition) -> TableDefinition:
    """The source's definition under the target name and a fresh id, registered as restoring."""
    return begin_restore(engine, source.replace(name=TARGET, table_id=uuid.uuid4().hex), SUMMARY)


async def restored(engine: Engine, count: int) -> tuple[TableDefinition, TableDefinition]:
    """(source filled by PutItem, target filled by load_items from the source's stored items)."""
    source = await make_source(engine, count)
    target = start_restore(engine, source)
    await load_items(engine, target, stored_items(engine, source))
    return source, target


def index_stats(engine: Engine, defined: TableDefinition) -> dict[str, SpaceStats]:
    reader = engine.reader(defined)
    return {index.name: reader.space_stats(index_space(index.name)) for index in defined.indexes}


# --- while it is being restored -----------------------------------------------------------------


def test_a_table_being_restored_is_described_creating_with_its_restore_in_progress(engine: Engine) -> None:
    async def scenario() -> None:
        start_restore(engine, await make_source(engine))
        described = (await call(engine, "DescribeTable", {"TableName": TARGET}))["Table"]
        assert described["TableStatus"] == "CREATING"
        assert described["RestoreSummary"] == {
            "SourceBackupArn": BACKUP_ARN, "SourceTableArn": SUMMARY.source_table_arn,
            "RestoreDateTime": START, "RestoreInProgress": True,
        }

    run(scenario)


def test_a_table_being_restored_is_listed(engine: Engine) -> None:
    async def scenario() -> None:
        start_restore(engine, await make_source(engine))
        assert (await call(engine, "ListTables", {}))["TableNames"] == [TARGET, SOURCE]

    run(scenario)


@pytest.mark.parametrize("operation, body", [
    ("GetItem", {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}),
    ("PutItem", {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}}}),
    ("DeleteItem", {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}),
    ("UpdateItem", {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": "1"}}}),
    ("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}),
    ("Scan", {}),
])
def test_reads_and_writes_of_a_table_being_restored_are_resource_not_found(
    engine: Engine, operation: str, body: dict[str, Any]
) -> None:
    async def scenario() -> None:
        start_restore(engine, await make_source(engine))
        with pytest.raises(ResourceNotFoundException):
            await call(engine, operation, {"TableName": TARGET, **body})

    run(scenario)


@pytest.mark.parametrize("operation, body", [
    ("DeleteTable", {}),
    ("UpdateTable", {"BillingMode": "PROVISIONED",
                     "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}),
])
def test_changing_a_table_being_restored_is_resource_in_use(
    engine: Engine, operation: str, body: dict[str, Any]
) -> None:
    async def scenario() -> None:
        start_restore(engine, await make_source(engine))
        with pytest.raises(ResourceInUseException) as error:
            await call(engine, operation, {"TableName": TARGET, **body})
        assert error.value.message == (
            f"Attempt to change a resource which is still in use: Table {TARGET} is being created"
        )
        assert table(engine, TARGET).status == "CREATING"

    run(scenario)


def test_a_restore_into_a_name_already_taken_is_refused_and_creates_nothing(engine: Engine) -> None:
    async def scenario() -> None:
        source = await make_source(engine, 3)
        with pytest.raises(TableExists):
            begin_restore(engine, source.replace(table_id=uuid.uuid4().hex), SUMMARY)
        assert engine.storage.tables() == [source.table_id]
        assert table(engine, SOURCE) == source

    run(scenario)


# --- the load -------------------------------------------------------------------------------------


def test_a_load_counts_every_item_and_each_index_its_own_entries(engine: Engine) -> None:
    async def scenario() -> None:
        _, target = await restored(engine, 60)
        assert engine.reader(target).stats().item_count == 60
        assert {name: stats.entries for name, stats in index_stats(engine, target).items()} == {
            "by-placed": 30, "by-city": 20, "by-city-all": 20,
        }

    run(scenario)


def test_a_loaded_table_has_the_sizes_put_item_gives_the_same_items(engine: Engine) -> None:
    async def scenario() -> None:
        source, target = await restored(engine, 60)
        assert engine.reader(target).stats().item_bytes == engine.reader(source).stats().item_bytes
        assert index_stats(engine, target) == index_stats(engine, source)

    run(scenario)


def test_a_loaded_table_holds_the_same_items_and_index_entries_as_its_source(engine: Engine) -> None:
    async def scenario() -> None:
        source, target = await restored(engine, 40)
        assert stored_items(engine, target) == stored_items(engine, source)
        for index in source.indexes:
            space = index_space(index.name)
            assert list(engine.reader(target).range(None, None, space=space)) == list(
                engine.reader(source).range(None, None, space=space))

    run(scenario)


def test_a_load_writes_nothing_to_the_change_log(engine: Engine) -> None:
    async def scenario() -> None:
        _, target = await restored(engine, 10)
        assert engine.reader(target).log(0, 100) == []
        assert engine.reader(target).stats().last_sequence == 0

    run(scenario)


def test_a_load_returns_the_loaded_tables_stats_and_reports_progress(engine: Engine) -> None:
    async def scenario() -> None:
        source = await make_source(engine, 25)
        target = start_restore(engine, source)
        seen: list[int] = []
        stats = await load_items(engine, target, stored_items(engine, source), seen.append)
        assert (stats.item_count, stats.item_bytes) == (25, engine.reader(source).stats().item_bytes)
        assert seen and seen[-1] >= 25  # entries: items and their index entries

    run(scenario)


# --- the end of a restore -------------------------------------------------------------------------


def test_a_finished_restore_is_active_and_serves_its_items(engine: Engine) -> None:
    async def scenario() -> None:
        _, target = await restored(engine, 10)
        done = finish_restore(engine, target)
        assert done.status == "ACTIVE"
        assert done.restore == RestoreSummary(START, False, BACKUP_ARN, SUMMARY.source_table_arn)
        described = (await call(engine, "DescribeTable", {"TableName": TARGET}))["Table"]
        assert described["TableStatus"] == "ACTIVE"
        assert described["RestoreSummary"]["RestoreInProgress"] is False
        assert described["ItemCount"] == 10
        got = await call(engine, "GetItem", {"TableName": TARGET, "Key": {"pk": {"S": "user-3"},
                                                                        "sk": {"N": "3"}}})
        assert got["Item"] == sample_item(3)
        query = await call(engine, "Query", {
            "TableName": TARGET, "IndexName": "by-city", "KeyConditionExpression": "city = :c",
            "ExpressionAttributeValues": {":c": {"S": "city-0"}},
        })
        assert sorted(int(item["sk"]["N"]) for item in query["Items"]) == [0]

    run(scenario)


def test_an_abandoned_restore_leaves_neither_catalog_entry_nor_files(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        _, target = await restored(engine, 10)
        await abandon_restore(engine, target)
        assert engine.catalog.get(TARGET) is None
        assert target.table_id not in engine.storage.tables()
        assert list((tmp_path / "tables").glob(f"{target.table_id}*")) == []

    run(scenario)


def test_abandoning_keeps_a_table_that_took_the_name_since(engine: Engine) -> None:
    async def scenario() -> None:
        source = await make_source(engine)
        stale = source.replace(table_id=uuid.uuid4().hex)  # an earlier restore under the same name
        await abandon_restore(engine, stale)
        assert table(engine, SOURCE) == source

    run(scenario)


def test_an_interrupted_restore_is_found_after_the_engine_restarts(tmp_path: Path, clock: Clock) -> None:
    first = Engine(EngineConfig(tmp_path), clock=clock)
    try:
        async def scenario() -> TableDefinition:
            source = await make_source(first, 5)
            target = start_restore(first, source)
            await load_items(first, target, stored_items(first, source)[:2])  # stopped midway
            return target

        target = run(scenario)
    finally:
        first.close()
    second = Engine(EngineConfig(tmp_path), clock=clock)
    try:
        assert interrupted_restores(second) == [target]
    finally:
        second.close()


def test_neither_ordinary_nor_finished_restored_tables_count_as_interrupted(engine: Engine) -> None:
    async def scenario() -> None:
        _, target = await restored(engine, 3)
        assert interrupted_restores(engine) == [target]
        finish_restore(engine, target)
        assert interrupted_restores(engine) == []

    run(scenario)


def test_a_second_engine_on_the_same_data_directory_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="another engine is using it"):
        Engine(EngineConfig(tmp_path))
