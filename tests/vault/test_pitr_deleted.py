"""Deleted tables keep their PITR archive; `tablekeeper pitr` restores with no engine running."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, start_engine, unique_name
from tests.vault.backup_api_support import VAULT_KINDS, by_key, scan_all, start_vault_engine, wait_restored


@pytest.fixture(scope="module", params=VAULT_KINDS)
def vault_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    moto_s3 = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    process = start_vault_engine(request.param, tmp_path_factory.mktemp(request.param), moto_s3,
                                 "--pitr-interval", "0.1")
    yield process
    process.stop()


def _enable(ddb: Any, table: str) -> None:
    ddb.update_continuous_backups(TableName=table,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    deadline = time.monotonic() + 20
    while "LatestRestorableDateTime" not in ddb.describe_continuous_backups(
            TableName=table)["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]:
        assert time.monotonic() < deadline, "PITR never became restorable"
        time.sleep(0.05)


def _deleted_backup(ddb: Any, table: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in ddb.list_backups(TableName=table, BackupType="SYSTEM")["BackupSummaries"]
                 if s["BackupName"] == f"{table}$DeletedTableBackup"]
        if found and found[0]["BackupStatus"] == "AVAILABLE":
            return found[0]
        assert time.monotonic() < deadline, f"no AVAILABLE deleted-table backup of {table}"
        time.sleep(0.05)


def _fill(ddb: Any, table: str, count: int, tag: str) -> None:
    for i in range(count):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, "tag": {"S": tag}})


def test_deleting_a_pitr_table_lists_a_system_backup_that_restores_its_last_state(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    _enable(ddb, table)
    _fill(ddb, table, 30, "first")
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k0"}})
    _fill(ddb, table, 5, "last")  # written just before the delete: must be in the archive
    expected = by_key(scan_all(ddb, table), "pk")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.delete_table(TableName=table)
    summary = _deleted_backup(ddb, table)
    assert summary["BackupType"] == "SYSTEM"
    assert summary["TableArn"] == arn
    assert "BackupExpiryDateTime" in summary
    target = unique_name("undeleted")
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=summary["BackupArn"])
    assert wait_restored(ddb, target) is not None
    assert by_key(scan_all(ddb, target), "pk") == expected


def test_a_deleted_table_restores_to_a_point_in_time_by_its_arn(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    _enable(ddb, table)
    _fill(ddb, table, 10, "before")
    time.sleep(0.3)
    mark = time.time()
    expected = by_key(scan_all(ddb, table), "pk")
    time.sleep(0.3)
    _fill(ddb, table, 10, "after")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.delete_table(TableName=table)
    _deleted_backup(ddb, table)
    target = unique_name("then")
    ddb.restore_table_to_point_in_time(SourceTableArn=arn, TargetTableName=target, RestoreDateTime=mark)
    assert wait_restored(ddb, target) is not None
    assert by_key(scan_all(ddb, target), "pk") == expected


def test_deleting_the_system_backup_drops_the_archive(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    _enable(ddb, table)
    _fill(ddb, table, 3, "x")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.delete_table(TableName=table)
    summary = _deleted_backup(ddb, table)
    deleted = ddb.delete_backup(BackupArn=summary["BackupArn"])["BackupDescription"]["BackupDetails"]
    assert deleted["BackupStatus"] == "DELETED"
    assert ddb.list_backups(TableName=table, BackupType="ALL")["BackupSummaries"] == []
    with pytest.raises(ClientError) as error:
        ddb.restore_table_to_point_in_time(SourceTableArn=arn, TargetTableName=unique_name(),
                                           UseLatestRestorableTime=True)
    assert error.value.response["Error"]["Code"] == "TableNotFoundException"


def test_a_table_deleted_without_pitr_leaves_no_system_backup(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    _fill(ddb, table, 2, "x")
    ddb.delete_table(TableName=table)
    time.sleep(0.3)
    assert ddb.list_backups(TableName=table, BackupType="ALL")["BackupSummaries"] == []


@pytest.fixture(scope="module")
def ddb(vault_engine: EngineProcess) -> Any:
    return vault_engine.client()


# --- tablekeeper pitr, no engine ----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tablekeeper", *args], capture_output=True, text=True,
                          timeout=120)


def _engine_vault(data: Path) -> list[str]:
    """The vault options naming an engine's default vault (DATA/vault and its key DATA/vault.key)."""
    return ["--vault", "file://" + str(data / "vault"), "--vault-key-file", str(data / "vault.key")]


def _described(vault: list[str]) -> list[dict[str, Any]]:
    """``tablekeeper pitr describe``'s tables, with no engine running."""
    described = _cli("pitr", "describe", *vault, "--output", "json")
    assert described.returncode == 0, described.stderr
    return json.loads(described.stdout)["Tables"]  # type: ignore[no-any-return]


def test_pitr_commands_describe_and_restore_with_no_engine(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "source", "--pitr-interval", "0.1")
    try:
        ddb = process.client()
        table = create_table(ddb, unique_name())
        _enable(ddb, table)
        _fill(ddb, table, 20, "one")
        time.sleep(0.3)
        mark = time.time()
        expected = sorted(map(repr, scan_all(ddb, table)))
        time.sleep(0.3)
        _fill(ddb, table, 20, "two")
        time.sleep(0.5)  # shipped
    finally:
        process.stop()
    vault = _engine_vault(tmp_path / "source")
    (archived,) = _described(vault)
    assert archived["TableName"] == table
    assert archived["EarliestRestorableDateTime"] <= mark <= archived["LatestRestorableDateTime"]
    restored = _cli("pitr", "restore", *vault, "--source", table, "--time", str(mark),
                    "--data", str(tmp_path / "target"), "--table", "as-of-mark")
    assert restored.returncode == 0, restored.stderr
    outside = _cli("pitr", "restore", *vault, "--source", table, "--time", "2001-01-01T00:00:00",
                   "--data", str(tmp_path / "target"), "--table", "too-early")
    assert outside.returncode == 2 and "outside the restorable window" in outside.stderr
    process = start_engine(tmp_path / "target")
    try:
        assert sorted(map(repr, scan_all(process.client(), "as-of-mark"))) == expected
    finally:
        process.stop()


def test_another_engine_on_the_same_vault_restores_a_table_from_its_archive(tmp_path: Path) -> None:
    first = start_engine(tmp_path / "first", "--pitr-interval", "0.1")
    try:
        ddb = first.client()
        table = create_table(ddb, unique_name())
        _enable(ddb, table)
        _fill(ddb, table, 15, "shared")
        expected = by_key(scan_all(ddb, table), "pk")
        time.sleep(0.5)  # shipped
    finally:
        first.stop()
    vault = _engine_vault(tmp_path / "first")
    second = start_engine(tmp_path / "second", *vault)
    try:
        ddb = second.client()
        target = unique_name("elsewhere")
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                           UseLatestRestorableTime=True)
        assert wait_restored(ddb, target) is not None
        assert by_key(scan_all(ddb, target), "pk") == expected
    finally:
        second.stop()


def test_the_vault_records_a_deleted_tables_deletion_for_describe_with_no_engine(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "source", "--pitr-interval", "0.1")
    try:
        ddb = process.client()
        table = create_table(ddb, unique_name())
        _enable(ddb, table)
        _fill(ddb, table, 5, "one")
        before = time.time()
        ddb.delete_table(TableName=table)
        assert _deleted_backup(ddb, table)["BackupStatus"] == "AVAILABLE"
    finally:
        process.stop()
    vault = _engine_vault(tmp_path / "source")
    (archived,) = _described(vault)
    assert archived["TableName"] == table
    assert before <= archived["Deleted"] <= time.time()
