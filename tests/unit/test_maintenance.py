"""Change-log trimming keeps exactly the retention window."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.maintenance import trim_logs
from tablekeeper.engine.operations.items import parse_put_item, put_item
from tablekeeper.engine.operations.tables import create_table, parse_create_table


def test_log_records_older_than_the_retention_are_trimmed(tmp_path: Path) -> None:
    now = [1_000_000.0]
    engine = Engine(EngineConfig(tmp_path), clock=lambda: now[0])

    async def scenario() -> tuple[int, list[int]]:
        await create_table(engine, parse_create_table({
            "TableName": "logs",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }))
        for i in range(10):
            now[0] += 60
            await put_item(engine, parse_put_item({"TableName": "logs", "Item": {"pk": {"S": f"k{i}"}}}))
        now[0] = 1_000_000 + 5 * 60 + 30 + 3600  # writes 1..5 (at +60..+300 s) are over an hour old
        removed = await trim_logs(engine, retention_ms=3600 * 1000)
        table = engine.catalog.get("logs")
        assert table is not None
        return removed, [r.sequence for r in engine.reader(table).log(0, 100)]

    try:
        removed, left = asyncio.run(scenario())
    finally:
        engine.close()
    assert removed == 5
    assert left == [6, 7, 8, 9, 10]
