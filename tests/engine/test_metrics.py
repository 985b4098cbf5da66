"""The engine's /metrics: request counts and latency, backups, restores and PITR lag."""

from __future__ import annotations

import contextlib
import time
import urllib.request

from tests.conftest import EngineProcess, create_table, start_engine, unique_name
from tests.vault.backup_api_support import backup, wait_restored


def _scrape(engine: EngineProcess) -> dict[str, float]:
    text = urllib.request.urlopen(f"{engine.endpoint}/metrics", timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_requests_are_counted_by_operation_and_outcome_with_latency(  # type: ignore[no-untyped-def]
    ddb, engine: EngineProcess
) -> None:
    table = create_table(ddb, unique_name())
    before = _scrape(engine)
    for i in range(3):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
        ddb.get_item(TableName="no-such-table", Key={"pk": {"S": "x"}})
    after = _scrape(engine)
    puts = 'tablekeeper_engine_requests_total{operation="PutItem",outcome="ok"}'
    missing = 'tablekeeper_engine_requests_total{operation="GetItem",outcome="ResourceNotFoundException"}'
    assert after[puts] - before.get(puts, 0) == 3
    assert after[missing] - before.get(missing, 0) == 1
    count = 'tablekeeper_engine_request_duration_seconds_count{operation="PutItem"}'
    assert after[count] - before.get(count, 0) == 3


def test_backups_restores_and_pitr_lag_are_measured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = start_engine(tmp_path / "data", "--pitr-interval", "0.1")
    try:
        ddb = engine.client()
        table = create_table(ddb, unique_name())
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
        target = unique_name("copy")
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=backup(ddb, table))
        assert wait_restored(ddb, target) is not None
        ddb.update_continuous_backups(TableName=table,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        deadline = time.monotonic() + 20
        lag = f'tablekeeper_pitr_lag_seconds{{table="{table}"}}'
        while lag not in (samples := _scrape(engine)):
            assert time.monotonic() < deadline, "no PITR lag metric"
            time.sleep(0.1)
        assert 0 <= samples[lag] < 5
        assert samples['tablekeeper_backups_total{result="ok",type="USER"}'] == 1
        assert samples['tablekeeper_restores_total{result="ok",source="backup"}'] == 1
        assert samples['tablekeeper_backup_duration_seconds_count{type="USER"}'] == 1
    finally:
        engine.stop()
