"""Global secondary indexes created and deleted on live tables, against a real engine.

A new index is backfilled in the background while writes go on; the tests
compare what it ends up holding with what a fresh index over the final
table would hold, also across a crash and restart.  States a live engine
passes through too quickly to catch (an index still backfilling) are tested
in-process, on an engine whose background index work is switched off.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from tablekeeper.engine import index_builds
from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.errors import DynamoDBError
from tablekeeper.engine.operations import OPERATIONS, table_admin
from tablekeeper.engine.storage.base import StorageError, index_space
from tablekeeper.engine.tables import TableDefinition
from tests.conftest import EngineProcess, start_engine, unique_name
from tests.engine.index_support import (
    CAPACITY,
    INVALID,
    Client,
    S,
    Wire,
    create_index,
    defs,
    error_of,
    expected_entries,
    gsi,
    index_active,
    index_gone,
    index_of,
    invalid,
    key_schema,
    plain_table,
    put_all,
    query_index,
    scan_all,
    wait_until,
)


@pytest.fixture(scope="module")
def raw(engine: EngineProcess) -> Client:
    """A client that sends whatever it is given (no botocore parameter validation)."""
    return engine.client(config=Config(parameter_validation=False, retries={"max_attempts": 1}))


# --- UpdateTable: create and delete global indexes ----------------------------------------------------


def test_a_new_index_is_created_backfilled_and_then_active(ddb: Client) -> None:
    table = plain_table(ddb)
    put_all(ddb, table, [{"pk": S(f"p{i}"), "g": S(f"g{i % 3}")} for i in range(30)])
    answer = create_index(ddb, table, gsi("byG", "g"), g="S")
    assert answer["TableStatus"] == "UPDATING"
    (created,) = answer["GlobalSecondaryIndexes"]
    assert (created["IndexStatus"], created["Backfilling"]) == ("CREATING", False)
    assert answer["AttributeDefinitions"] == defs(pk="S", g="S")
    wait_until(lambda: index_active(ddb, table, "byG"))
    assert "Backfilling" not in index_of(ddb, table, "byG")
    assert len(query_index(ddb, table, "byG", "g = :g", g=S("g1"))) == 10
    assert index_of(ddb, table, "byG")["ItemCount"] == 30


def test_a_backfill_leaves_out_items_that_violate_the_new_index_key(ddb: Client) -> None:
    """DynamoDB's index key violations: another type, empty, or past the size limit. Such items
    stay in the table, the index leaves them out, and a write keeping the violation is refused."""
    table = plain_table(ddb)
    violations = [{"pk": S("number"), "g": {"N": "1"}}, {"pk": S("empty"), "g": S("")},
                  {"pk": S("long"), "g": S("x" * 2049)}]
    put_all(ddb, table, [{"pk": S("fits"), "g": S("x" * 2048)}, *violations])
    create_index(ddb, table, gsi("byG", "g"), g="S")
    wait_until(lambda: index_active(ddb, table, "byG"))
    assert index_of(ddb, table, "byG")["ItemCount"] == 1
    assert [item["pk"] for item in scan_all(ddb, table, IndexName="byG")] == [S("fits")]
    assert len(scan_all(ddb, table)) == 4
    assert error_of(
        ddb.update_item, TableName=table, Key={"pk": S("long")}, UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": S("1")},
    ) == invalid(INVALID + "Size limit exceeded for Index Key g Actual Size: 2049 bytes Max Size: "
                 "2048 bytes IndexName: byG")


def test_a_backfill_under_concurrent_writes_ends_equal_to_a_fresh_index(ddb: Client) -> None:
    table = plain_table(ddb)
    put_all(ddb, table, [{"pk": S(f"p{i}"), "g": S(f"g{i % 5}")} for i in range(4000)])
    stop, backfilling = threading.Event(), threading.Event()
    during = [0] * 4  # writes each writer made while the index was backfilling

    def churn(seed: int) -> None:
        rng, client = random.Random(seed), ddb
        while not stop.is_set():
            key = {"pk": S(f"p{rng.randrange(4200)}")}
            choice = rng.random()
            if choice < 0.5:
                client.put_item(TableName=table, Item={**key, "g": S(f"g{rng.randrange(5)}")})
            elif choice < 0.8:
                client.update_item(TableName=table, Key=key, UpdateExpression="REMOVE g")
            else:
                client.delete_item(TableName=table, Key=key)
            during[seed] += backfilling.is_set()

    writers = [threading.Thread(target=churn, args=(seed,)) for seed in range(4)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(0.1)
        backfilling.set()
        create_index(ddb, table, gsi("byG", "g", None, "KEYS_ONLY"), g="S")
        wait_until(lambda: index_active(ddb, table, "byG"))
        backfilling.clear()
        time.sleep(0.1)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert sum(during) > 0
    indexed = {item["pk"]["S"]: item["g"]["S"] for item in scan_all(ddb, table, IndexName="byG")}
    assert indexed == expected_entries(ddb, table)
    assert index_of(ddb, table, "byG")["ItemCount"] == len(indexed)


def test_a_deleted_index_is_deleting_and_then_gone(ddb: Client) -> None:
    table = plain_table(ddb)
    create_index(ddb, table, gsi("byG", "g"), g="S")
    ddb.put_item(TableName=table, Item={"pk": S("a"), "g": S("b")})
    wait_until(lambda: index_active(ddb, table, "byG"))
    answer = ddb.update_table(TableName=table,
                              GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byG"}}])
    assert answer["TableDescription"]["TableStatus"] == "UPDATING"
    assert answer["TableDescription"]["GlobalSecondaryIndexes"][0]["IndexStatus"] == "DELETING"
    wait_until(lambda: index_gone(ddb, table, "byG"))
    described = ddb.describe_table(TableName=table)["Table"]
    assert described["AttributeDefinitions"] == defs(pk="S")
    assert "GlobalSecondaryIndexes" not in described
    assert error_of(ddb.scan, TableName=table, IndexName="byG") == invalid(
        "The table does not have the specified index: byG"
    )


def test_an_index_created_again_under_a_deleted_name_starts_empty(ddb: Client) -> None:
    table = plain_table(ddb)
    create_index(ddb, table, gsi("byG", "g"), g="S")
    ddb.put_item(TableName=table, Item={"pk": S("a"), "g": S("old")})
    wait_until(lambda: index_active(ddb, table, "byG"))
    ddb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byG"}}])
    wait_until(lambda: index_gone(ddb, table, "byG"))
    ddb.delete_item(TableName=table, Key={"pk": S("a")})
    create_index(ddb, table, gsi("byG", "g"), g="S")
    wait_until(lambda: index_active(ddb, table, "byG"))
    assert scan_all(ddb, table, IndexName="byG") == []


def test_updating_index_throughput_shows_it_updating(ddb: Client) -> None:
    name = unique_name("ix")
    ddb.create_table(
        TableName=name, KeySchema=key_schema("pk"), AttributeDefinitions=defs(pk="S", g="S"),
        ProvisionedThroughput=CAPACITY,
        GlobalSecondaryIndexes=[gsi("byG", "g", ProvisionedThroughput=CAPACITY)],
    )
    answer = ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
        "IndexName": "byG", "ProvisionedThroughput": {"ReadCapacityUnits": 2,
                                                      "WriteCapacityUnits": 3}}}])
    assert answer["TableDescription"]["TableStatus"] == "ACTIVE"
    assert answer["TableDescription"]["GlobalSecondaryIndexes"][0]["IndexStatus"] == "UPDATING"
    throughput = index_of(ddb, name, "byG")["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (2, 3)


UPDATE_ERRORS: list[tuple[str, list[Wire], Wire, tuple[str, str]]] = [
    ("empty update", [{}], {},
     invalid(INVALID + "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate"
             ".Create, GlobalSecondaryIndexUpdate.Delete must not be null")),
    ("two actions in one update", [{"Delete": {"IndexName": "byG"},
                                    "Update": {"IndexName": "byG"}}], {},
     invalid(INVALID + "Only one global secondary index action is allowed per "
             "GlobalSecondaryIndexUpdate object")),
    ("one index twice", [{"Delete": {"IndexName": "byG"}}, {"Create": gsi("byG", "g")}], {},
     invalid(INVALID + "Only one global secondary index update per index is allowed "
             "simultaneously. Index: byG")),
    ("two creates", [{"Create": gsi("one", "g")}, {"Create": gsi("two", "g")}],
     {"AttributeDefinitions": defs(g="S")},
     ("LimitExceededException", "Subscriber limit exceeded: Only 1 online index can be created "
      "or deleted simultaneously per table")),
    ("create an existing index", [{"Create": gsi("byG", "g")}],
     {"AttributeDefinitions": defs(g="S")},
     invalid("Attempting to create an index which already exists")),
    ("create without definitions", [{"Create": gsi("new", "g")}], {},
     invalid(INVALID + "AttributeDefinitions is not specified for index: new")),
    ("create with an undefined key", [{"Create": gsi("new", "q")}],
     {"AttributeDefinitions": defs(g="S")},
     invalid(INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
             "Keys: [q], AttributeDefinitions: [g, pk]")),
    ("create with throughput on demand", [{"Create": gsi("new", "g", ProvisionedThroughput=CAPACITY)}],
     {"AttributeDefinitions": defs(g="S")},
     invalid(INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified for "
             "index: new when BillingMode is PAY_PER_REQUEST")),
    ("update on demand", [{"Update": {"IndexName": "byG", "ProvisionedThroughput": CAPACITY}}], {},
     invalid(INVALID + "The only Updates for index: byG when TableThroughputMode is "
             "PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput")),
    ("delete a missing index", [{"Delete": {"IndexName": "nope"}}], {},
     ("ResourceNotFoundException", "Requested resource not found: Index nope for table {table}")),
    ("create beside deletion protection", [{"Create": gsi("new", "g")}],
     {"AttributeDefinitions": defs(g="S"), "DeletionProtectionEnabled": True},
     invalid(INVALID + "DeletionProtection modification must be the only operation in the "
             "request")),
    ("create beside a stream change", [{"Create": gsi("new", "g")}],
     {"AttributeDefinitions": defs(g="S"),
      "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}},
     invalid(INVALID + "You cannot create or delete index while changing stream status")),
]


@pytest.fixture(scope="module")
def indexed(ddb: Client) -> str:
    """An on-demand pk table with global index byG on g."""
    name = unique_name("ix")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
                     AttributeDefinitions=defs(pk="S", g="S"),
                     GlobalSecondaryIndexes=[gsi("byG", "g")])
    return name


@pytest.mark.parametrize(("case", "updates", "extra", "error"), UPDATE_ERRORS,
                         ids=[case for case, _, _, _ in UPDATE_ERRORS])
def test_update_table_refuses_a_bad_index_update(
    raw: Client, indexed: str, case: str, updates: list[Wire], extra: Wire,
    error: tuple[str, str],
) -> None:
    got = error_of(raw.update_table, TableName=indexed, GlobalSecondaryIndexUpdates=updates,
                   **extra)
    assert got == (error[0], error[1].format(table=indexed))
    assert [i["IndexName"] for i in ddb_indexes(raw, indexed)] == ["byG"]


def ddb_indexes(client: Client, table: str) -> list[Wire]:
    return client.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"]  # type: ignore[no-any-return]


def test_a_local_index_cannot_be_deleted(raw: Client) -> None:
    name = unique_name("ix")
    raw.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk", "sk"),
                     AttributeDefinitions=defs(pk="S", sk="S", l="S"),
                     LocalSecondaryIndexes=[gsi("byL", "pk", "l")])
    assert error_of(raw.update_table, TableName=name,
                    GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byL"}}]) == invalid(
        "Cannot delete an index that is not a GlobalSecondaryIndex: byL"
    )


def test_a_provisioned_index_needs_throughput_to_be_created(raw: Client) -> None:
    table = plain_table(raw, ProvisionedThroughput=CAPACITY)
    assert error_of(raw.update_table, TableName=table, AttributeDefinitions=defs(g="S"),
                    GlobalSecondaryIndexUpdates=[{"Create": gsi("byG", "g")}]) == invalid(
        INVALID + "Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: byG"
    )


def test_an_unchanged_index_throughput_is_refused(raw: Client) -> None:
    name = unique_name("ix")
    raw.create_table(TableName=name, KeySchema=key_schema("pk"),
                     AttributeDefinitions=defs(pk="S", g="S"), ProvisionedThroughput=CAPACITY,
                     GlobalSecondaryIndexes=[gsi("byG", "g", ProvisionedThroughput=CAPACITY)])
    assert error_of(raw.update_table, TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "byG", "ProvisionedThroughput": CAPACITY}}]) == invalid(
        "The provisioned throughput for the index byG will not change. The requested value "
        "equals the current value. Current ReadCapacityUnits provisioned for index byG: 1. "
        "Requested ReadCapacityUnits: 1. Current WriteCapacityUnits provisioned for index byG: "
        "1. Requested WriteCapacityUnits: 1. Refer to the Amazon DynamoDB Developer Guide for "
        "current limits and how to request higher limits."
    )


def test_switching_to_provisioned_needs_throughput_for_every_index(
    raw: Client, indexed: str
) -> None:
    assert error_of(raw.update_table, TableName=indexed, BillingMode="PROVISIONED",
                    ProvisionedThroughput=CAPACITY) == invalid(
        INVALID + "ProvisionedThroughput must be specified for index: byG"
    )


def test_a_twenty_first_global_index_exceeds_the_limit(raw: Client) -> None:
    name = unique_name("ix")
    raw.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
                     AttributeDefinitions=defs(pk="S", g="S"),
                     GlobalSecondaryIndexes=[gsi(f"byG{i}", "g") for i in range(20)])
    assert error_of(raw.update_table, TableName=name, AttributeDefinitions=defs(g="S"),
                    GlobalSecondaryIndexUpdates=[{"Create": gsi("one-more", "g")}]) == (
        "LimitExceededException",
        "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table limit "
        "of 20",
    )


# --- restarts --------------------------------------------------------------------------------------


def test_a_backfill_cut_short_by_a_crash_finishes_after_a_restart(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "data")
    ddb = engine.client()
    try:
        table = plain_table(ddb)
        put_all(ddb, table, [{"pk": S(f"p{i}"), "g": S(f"g{i % 4}")} for i in range(3000)])
        create_index(ddb, table, gsi("byG", "g", None, "KEYS_ONLY"), g="S")
        engine.kill()
        engine = start_engine(tmp_path / "data")
        ddb = engine.client()
        wait_until(lambda: index_active(ddb, table, "byG"))
        indexed = {i["pk"]["S"]: i["g"]["S"] for i in scan_all(ddb, table, IndexName="byG")}
        assert indexed == expected_entries(ddb, table)
        assert index_of(ddb, table, "byG")["ItemCount"] == 3000
    finally:
        engine.stop()


# --- in-process: states a live engine passes through too fast to catch -----------------------------


async def call(engine: Engine, operation: str, body: Wire) -> Wire:
    op = OPERATIONS[operation]
    return (await op.execute(engine, op.parse(body))).to_wire()  # type: ignore[no-any-return]


async def refusal(engine: Engine, operation: str, body: Wire) -> tuple[str, str | None]:
    with pytest.raises(DynamoDBError) as caught:
        await call(engine, operation, body)
    return caught.value.code, caught.value.message


@pytest.fixture
def no_index_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """UpdateTable starts no backfill or drop: indexes stay CREATING or DELETING."""
    monkeypatch.setattr(table_admin, "start_index_work", lambda *_: None)


async def table_with_items(engine: Engine, count: int) -> TableDefinition:
    await call(engine, "CreateTable", {"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
                                       "KeySchema": key_schema("pk"),
                                       "AttributeDefinitions": defs(pk="S")})
    for i in range(count):
        await call(engine, "PutItem", {"TableName": "tbl", "Item": {"pk": S(f"p{i}"), "g": S("x")}})
    table = engine.catalog.get("tbl")
    assert table is not None
    return table


CREATE_BY_G = {"TableName": "tbl", "AttributeDefinitions": defs(g="S", h="S"),
               "GlobalSecondaryIndexUpdates": [{"Create": gsi("byG", "g")}]}
CREATE_BY_H = {**CREATE_BY_G, "GlobalSecondaryIndexUpdates": [{"Create": gsi("byH", "h")}]}


def test_a_backfilling_index_refuses_reads(tmp_path: Path, no_index_work: None) -> None:
    async def main() -> None:
        engine = Engine(EngineConfig(tmp_path))
        await table_with_items(engine, 1)
        await call(engine, "UpdateTable", CREATE_BY_G)
        described = (await call(engine, "DescribeTable", {"TableName": "tbl"}))["Table"]
        (index,) = described["GlobalSecondaryIndexes"]
        assert (index["IndexStatus"], index["Backfilling"]) == ("CREATING", True)
        for operation, extra in (("Scan", {}), ("Query", {
                "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": S("x")}})):
            assert await refusal(engine, operation, {"TableName": "tbl", "IndexName": "byG",
                                                     **extra}) == (
                "ValidationException", "Cannot read from backfilling global secondary index: byG"
            )
        engine.close()

    asyncio.run(main())


def test_a_second_index_cannot_start_while_one_is_being_created(
    tmp_path: Path, no_index_work: None
) -> None:
    async def main() -> None:
        engine = Engine(EngineConfig(tmp_path))
        await table_with_items(engine, 0)
        await call(engine, "UpdateTable", CREATE_BY_G)
        assert await refusal(engine, "UpdateTable", CREATE_BY_H) == (
            "LimitExceededException", "Subscriber limit exceeded: Only 1 online index can be "
            "created or deleted simultaneously per table",
        )
        engine.close()

    asyncio.run(main())


def test_deleting_an_index_being_created_cancels_it(tmp_path: Path, no_index_work: None) -> None:
    async def main() -> None:
        engine = Engine(EngineConfig(tmp_path))
        await table_with_items(engine, 0)
        await call(engine, "UpdateTable", CREATE_BY_G)
        answer = await call(engine, "UpdateTable", {
            "TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byG"}}]})
        assert answer["TableDescription"]["GlobalSecondaryIndexes"][0]["IndexStatus"] == "DELETING"
        engine.close()

    asyncio.run(main())


def test_a_table_cannot_be_deleted_while_an_index_is_being_created(
    tmp_path: Path, no_index_work: None
) -> None:
    async def main() -> None:
        engine = Engine(EngineConfig(tmp_path))
        await table_with_items(engine, 0)
        await call(engine, "UpdateTable", CREATE_BY_G)
        assert await refusal(engine, "DeleteTable", {"TableName": "tbl"}) == (
            "ResourceInUseException", "Attempt to change a resource which is still in use: "
            "Cannot delete table while indexes are being created, updated, or deleted.",
        )
        engine.close()

    asyncio.run(main())


def test_a_backfill_resumes_where_its_last_batch_ended(
    tmp_path: Path, no_index_work: None
) -> None:
    """The backfill stops (as in a crash) after two batches; the next one goes on from there."""

    async def first_life() -> None:
        engine = Engine(EngineConfig(tmp_path))
        table = await table_with_items(engine, 50)
        await call(engine, "UpdateTable", CREATE_BY_G)
        writes, real_write = 0, engine.storage.write

        def crashing_write(fn: Any, **options: Any) -> Any:
            nonlocal writes
            writes += 1
            if writes > 4:  # the barrier, the fresh start's drop, then two batches
                raise StorageError("simulated crash")
            return real_write(fn, **options)

        engine.storage.write = crashing_write  # type: ignore[method-assign]
        with pytest.raises(StorageError):
            await index_builds.backfill(engine, "tbl", table.table_id, "byG", batch=10)
        engine.storage.write = real_write  # type: ignore[method-assign]
        assert engine.reader(table).space_stats(index_space("byG")).entries == 20
        engine.close()

    async def second_life() -> None:
        engine = Engine(EngineConfig(tmp_path))
        table = engine.catalog.get("tbl")
        assert table is not None
        writes, real_write = 0, engine.storage.write

        def counting_write(fn: Any, **options: Any) -> Any:
            nonlocal writes
            writes += 1
            return real_write(fn, **options)

        engine.storage.write = counting_write  # type: ignore[method-assign]
        await index_builds.backfill(engine, "tbl", table.table_id, "byG", batch=10)
        assert writes == 5  # the barrier, the 3 batches left, clearing the progress mark
        table = engine.catalog.get("tbl")
        assert table is not None and table.index("byG") is not None
        assert table.index("byG").status == "ACTIVE"  # type: ignore[union-attr]
        assert engine.reader(table).space_stats(index_space("byG")).entries == 50
        engine.close()

    asyncio.run(first_life())
    asyncio.run(second_life())
