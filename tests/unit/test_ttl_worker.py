"""The TTL worker in-process, with a fake clock: backfill, drop, sweep, and what they leave behind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.storage.base import StorageError
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.ttl import BACKFILL_SPACE, CURSOR_KEY, TTL_SPACE
from tablekeeper.engine.ttl_worker import (
    backfill,
    expire_batch,
    run_ttl,
    settle,
    sweep_expired,
    sweep_table,
)
from tests.inprocess import call, run
from tests.unit.conftest import Clock

START = 1_700_000_000.0
HOUR = 3600.0
TABLE = "ttl-table"



async def make_table(engine: Engine, name: str = TABLE) -> None:
    await call(engine, "CreateTable", {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    })


async def put(engine: Engine, pk: str, exp: dict[str, Any] | None = None, name: str = TABLE) -> None:
    item: dict[str, Any] = {"pk": {"S": pk}}
    if exp is not None:
        item["exp"] = exp
    await call(engine, "PutItem", {"TableName": name, "Item": item})


async def set_ttl(engine: Engine, enabled: bool, name: str = TABLE) -> None:
    await call(engine, "UpdateTimeToLive", {
        "TableName": name, "TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": "exp"},
    })
    await settle(engine)


async def keys(engine: Engine, name: str = TABLE) -> list[str]:
    page = await call(engine, "Scan", {"TableName": name})
    return sorted(item["pk"]["S"] for item in page["Items"])


def table(engine: Engine, name: str = TABLE) -> TableDefinition:
    found = engine.catalog.get(name)
    assert found is not None
    return found


def entries(engine: Engine, space: str = TTL_SPACE) -> list[bytes]:
    return [key for key, _ in engine.reader(table(engine)).range(None, None, space=space)]


def at(seconds: float) -> dict[str, str]:
    return {"N": str(int(START + seconds))}


# --- the sweep ----------------------------------------------------------------------------------


def test_a_sweep_deletes_expired_items_and_keeps_the_rest(engine: Engine) -> None:
    async def scenario() -> list[str]:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "past", at(-10))
        await put(engine, "future", at(+10))
        await put(engine, "string", {"S": str(int(START - 10))})
        await put(engine, "none")
        assert await sweep_expired(engine) == 1
        return await keys(engine)

    assert run(scenario) == ["future", "none", "string"]


def test_an_expired_item_is_still_returned_until_a_sweep_deletes_it(
    engine: Engine, clock: Clock
) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "a", at(+1))
        clock.now += 60  # expired a minute ago; no sweep has run
        got = await call(engine, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": "a"}}})
        assert got["Item"]["pk"] == {"S": "a"}
        assert await keys(engine) == ["a"]
        await sweep_expired(engine)
        assert await call(engine, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": "a"}}}) == {}

    run(scenario)


def test_an_item_expires_when_the_clock_passes_its_ttl(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "a", at(+30))
        assert await sweep_expired(engine) == 0
        clock.now += 31
        assert await sweep_expired(engine) == 1

    run(scenario)


def test_a_ttl_delete_logs_a_remove_record_by_the_ttl_service(engine: Engine) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "a", at(-1))
        before = engine.reader(table(engine)).stats().last_sequence
        await sweep_expired(engine)
        [record] = engine.reader(table(engine)).log(before, 10)
        assert record.origin == "ttl"
        assert record.new is None
        assert orjson.loads(record.keys) == {"pk": {"S": "a"}}
        assert orjson.loads(record.old or b"") == {"pk": {"S": "a"}, "exp": at(-1)}

    run(scenario)


def test_updating_the_ttl_attribute_moves_the_expiry(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "later", at(+5))
        await put(engine, "sooner", at(+HOUR))
        await call(engine, "UpdateItem", {
            "TableName": TABLE, "Key": {"pk": {"S": "later"}},
            "UpdateExpression": "SET exp = :e", "ExpressionAttributeValues": {":e": at(+HOUR)},
        })
        await call(engine, "UpdateItem", {
            "TableName": TABLE, "Key": {"pk": {"S": "sooner"}},
            "UpdateExpression": "SET exp = :e", "ExpressionAttributeValues": {":e": at(+5)},
        })
        clock.now += 10
        await sweep_expired(engine)
        assert await keys(engine) == ["later"]
        assert len(entries(engine)) == 1

    run(scenario)


def test_removing_the_ttl_attribute_keeps_the_item_for_good(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "a", at(+5))
        await call(engine, "UpdateItem", {
            "TableName": TABLE, "Key": {"pk": {"S": "a"}}, "UpdateExpression": "REMOVE exp",
        })
        clock.now += HOUR
        assert await sweep_expired(engine) == 0
        assert entries(engine) == []

    run(scenario)


def test_an_item_updated_after_the_sweep_read_its_entry_is_kept(engine: Engine) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "a", at(-5))
        stale = entries(engine)
        await put(engine, "a", at(+HOUR))  # renewed between the sweep's read and its write
        deleted = await engine.storage.write(expire_batch(engine, table(engine), stale, START))
        assert deleted == 0
        assert await keys(engine) == ["a"]
        assert len(entries(engine)) == 1

    run(scenario)


def test_a_ttl_more_than_five_years_past_is_never_swept(engine: Engine) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "ancient", at(-6 * 365 * 24 * HOUR))
        assert await sweep_expired(engine) == 0
        assert await keys(engine) == ["ancient"]

    run(scenario)


def test_a_sweep_deletes_in_bounded_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[int, int]:
        await make_table(engine)
        await set_ttl(engine, True)
        for i in range(25):
            await put(engine, f"k{i:02}", at(-100 + i))
        writes = 0
        write = engine.storage.write

        def counting(fn: Any, **kwargs: Any) -> Any:
            nonlocal writes
            writes += 1
            return write(fn, **kwargs)

        monkeypatch.setattr(engine.storage, "write", counting)
        deleted = await sweep_table(engine, table(engine), START, batch=10)
        return deleted, writes

    assert run(scenario) == (25, 3)


# --- enabling and disabling ---------------------------------------------------------------------


def test_enabling_ttl_on_a_populated_table_backfills_then_is_enabled(engine: Engine) -> None:
    async def scenario() -> None:
        await make_table(engine)
        for i in range(30):
            await put(engine, f"p{i:02}", at(-10))
        await put(engine, "future", at(+HOUR))
        await put(engine, "string", {"S": "x"})
        await call(engine, "UpdateTimeToLive", {
            "TableName": TABLE, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"},
        })
        described = await call(engine, "DescribeTimeToLive", {"TableName": TABLE})
        assert described["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLING"
        await settle(engine)
        described = await call(engine, "DescribeTimeToLive", {"TableName": TABLE})
        assert described["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
        assert len(entries(engine)) == 31
        assert entries(engine, BACKFILL_SPACE) == []
        assert await sweep_expired(engine) == 30
        assert await keys(engine) == ["future", "string"]

    run(scenario)


def test_disabling_ttl_drops_the_entries_and_stops_expiry(engine: Engine, clock: Clock) -> None:
    async def scenario() -> None:
        await make_table(engine)
        await set_ttl(engine, True)
        await put(engine, "a", at(+10))
        clock.now += HOUR
        await set_ttl(engine, False)
        assert table(engine).ttl_status == "DISABLED"
        assert entries(engine) == []
        await put(engine, "b", at(-10))
        assert await sweep_expired(engine) == 0
        assert await keys(engine) == ["a", "b"]
        described = await call(engine, "DescribeTimeToLive", {"TableName": TABLE})
        assert described["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}

    run(scenario)


def test_a_backfill_interrupted_by_a_restart_resumes_where_it_stopped(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Engine(EngineConfig(tmp_path), clock=clock)

    async def interrupted() -> bytes | None:
        await make_table(first)
        for i in range(25):
            await put(first, f"k{i:02}", at(-10))
        await call(first, "UpdateTimeToLive", {
            "TableName": TABLE, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"},
        })
        await settle(first)  # let the started backfill finish; then replay an interrupted one
        t = table(first)
        first.catalog.put(t.replace(ttl_status="ENABLING"))
        indexed = entries(first)
        await first.storage.write(lambda txn: [txn.delete(t.table_id, TTL_SPACE, e) for e in indexed])
        write = first.storage.write
        calls = 0

        def failing(fn: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:  # the barrier and one batch went through
                raise StorageError("write: disk full")
            return write(fn, **kwargs)

        monkeypatch.setattr(first.storage, "write", failing)
        with pytest.raises(StorageError):
            await backfill(first, TABLE, t.table_id, batch=10)
        return first.reader(t).get(CURSOR_KEY, space=BACKFILL_SPACE)

    cursor = run(interrupted)
    assert len(entries(first)) == 10 and cursor is not None
    first.close()

    second = Engine(EngineConfig(tmp_path), clock=clock)

    async def restarted() -> int:
        write = second.storage.write
        writes = 0

        def counting(fn: Any, **kwargs: Any) -> Any:
            nonlocal writes
            writes += 1
            return write(fn, **kwargs)

        monkeypatch.setattr(second.storage, "write", counting)
        await backfill(second, TABLE, table(second).table_id, batch=10)
        return writes

    try:
        # The barrier, the 15 items after the cursor in two batches, clearing the cursor.
        assert run(restarted) == 4
        assert table(second).ttl_status == "ENABLED"
        assert len(entries(second)) == 25
        assert entries(second, BACKFILL_SPACE) == []
    finally:
        second.close()


def test_a_table_whose_ttl_is_enabling_at_startup_finishes_enabling(
    tmp_path: Path, clock: Clock
) -> None:
    first = Engine(EngineConfig(tmp_path), clock=clock)

    async def before_the_crash() -> None:
        await make_table(first)
        await put(first, "a", at(-10))
        first.catalog.put(table(first).replace(ttl_status="ENABLING", ttl_attribute="exp",
                                               ttl_enabled=True))

    run(before_the_crash)
    first.close()
    second = Engine(EngineConfig(tmp_path), clock=clock)

    async def restarted() -> int:
        task = asyncio.get_running_loop().create_task(run_ttl(second, interval=3600))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if table(second).ttl_status == "ENABLED":
                break
        task.cancel()
        await settle(second)
        return await sweep_expired(second)

    try:
        assert run(restarted) == 1
        assert table(second).ttl_status == "ENABLED"
    finally:
        second.close()
