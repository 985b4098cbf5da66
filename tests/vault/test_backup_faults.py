"""Bad vaults and bad objects: a clear error, a removed half-restore, a live table that goes on."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tablekeeper.vault import format as fmt
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.store import ObjectStore, open_store
from tests.conftest import EngineProcess, create_table, start_engine, unique_name
from tests.vault.backup_api_support import (
    VAULT_KINDS,
    backup,
    scan_all,
    start_vault_engine,
    wait_backup,
    wait_restored,
)
from tests.vault.conftest import REGION, MotoS3


@pytest.fixture(params=VAULT_KINDS)
def vault_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EngineProcess, ObjectStore]]:
    """An engine and, beside it, the same vault's store as a test can reach it."""
    moto_s3: MotoS3 | None = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    process = start_vault_engine(request.param, tmp_path, moto_s3)
    if moto_s3 is None:
        store = open_store("file://" + str(tmp_path / "data" / "vault"))
    else:
        url = process.args[process.args.index("--vault") + 1]
        store = open_store(url, endpoint_url=moto_s3.endpoint, region=REGION,
                           access_key_id=moto_s3.access_key_id, secret_access_key=moto_s3.secret_access_key)
    yield process, store
    process.stop()


def _table_with_items(ddb: Any, count: int) -> str:
    name = create_table(ddb, unique_name())
    for start in range(0, count, 25):
        ddb.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"S": "z" * 30}}}}
            for i in range(start, min(start + 25, count))
        ]})
    return name


def test_a_corrupted_pack_fails_the_restore_and_removes_the_half_restored_table(
    vault_engine: tuple[EngineProcess, ObjectStore],
) -> None:
    process, store = vault_engine
    ddb = process.client()
    arn = backup(ddb, _table_with_items(ddb, 100))
    pack = next(info.key for info in store.list(fmt.PACKS))
    body = bytearray(store.get(pack))
    body[len(body) // 2] ^= 0xFF
    store.delete(pack)
    store.put(pack, bytes(body))
    target = unique_name("broken")
    answer = ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)["TableDescription"]
    assert answer["TableStatus"] == "CREATING"
    assert wait_restored(ddb, target) is None  # removed, never ACTIVE
    assert target not in ddb.list_tables()["TableNames"]


def test_a_missing_pack_fails_the_restore_and_removes_the_table(
    vault_engine: tuple[EngineProcess, ObjectStore],
) -> None:
    process, store = vault_engine
    ddb = process.client()
    arn = backup(ddb, _table_with_items(ddb, 40))
    for info in list(store.list(fmt.PACKS)):
        store.delete(info.key)
    target = unique_name("missing")
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    assert wait_restored(ddb, target) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_bucket_fails_the_backup_with_its_reason_and_never_the_table(tmp_path: Path) -> None:
    key_file = tmp_path / "vault.key"
    VaultKey.generate().save(key_file)
    process = start_engine(
        tmp_path / "data", "--vault", "s3://nowhere/backups",
        "--vault-endpoint-url", f"http://127.0.0.1:{_closed_port()}", "--vault-region", REGION,
        "--vault-key-file", str(key_file),
        env={"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"},
    )
    try:
        ddb = process.client()
        table = _table_with_items(ddb, 10)
        details = ddb.create_backup(TableName=table, BackupName="doomed")["BackupDetails"]
        assert details["BackupStatus"] == "CREATING"
        ddb.put_item(TableName=table, Item={"pk": {"S": "during"}})
        described = wait_backup(ddb, details["BackupArn"], timeout=120)
        assert described["BackupDetails"]["BackupStatus"] == "FAILED"
        raw = process.client()
        raw.meta.events.register("after-call.dynamodb.DescribeBackup", _keep_raw)
        raw_details = raw.describe_backup(BackupArn=details["BackupArn"])["raw"]["BackupDetails"]
        assert "could not connect" in raw_details["BackupStatusReason"]
        ddb.put_item(TableName=table, Item={"pk": {"S": "after"}})
        assert len(scan_all(ddb, table)) == 12
        with pytest.raises(ClientError) as error:  # a listing without the vault's part would mislead
            ddb.list_backups(TableName=table)
        assert "could not connect" in error.value.response["Error"]["Message"]
        listed = _cli("backup", "list", "--vault", "file://" + str(tmp_path / "elsewhere"),
                      "--vault-key-file", str(key_file), "--data", str(tmp_path / "data"), "--output", "json")
        assert listed.returncode == 0, listed.stderr
        (failed,) = json.loads(listed.stdout)["Backups"]
        assert failed["Status"] == "FAILED" and "could not connect" in failed["Problem"]
        deleted = ddb.delete_backup(BackupArn=details["BackupArn"])  # a failed backup can be cleared
        assert deleted["BackupDescription"]["BackupDetails"]["BackupStatus"] == "DELETED"
    finally:
        process.stop()


def _keep_raw(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    """botocore drops members its model does not know; keep the raw body for the test."""
    parsed["raw"] = json.loads(http_response.content)["BackupDescription"]


def test_the_default_vault_key_is_generated_readable_only_by_its_owner(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "data")
    try:
        key_file = tmp_path / "data" / "vault.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert not str(key_file).startswith(str(tmp_path / "data" / "vault") + os.sep)
        ddb = process.client()
        backup(ddb, _table_with_items(ddb, 3))
    finally:
        process.stop()


def test_backups_list_and_restore_after_an_engine_restart(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "data")
    try:
        ddb = process.client()
        table = _table_with_items(ddb, 30)
        arn = backup(ddb, table)
    finally:
        process.stop()
    process = start_engine(tmp_path / "data")
    try:
        ddb = process.client()
        assert [s["BackupArn"] for s in ddb.list_backups()["BackupSummaries"]] == [arn]
        target = unique_name("after-restart")
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
        restored = wait_restored(ddb, target)
        assert restored is not None and restored["ItemCount"] == 30
    finally:
        process.stop()


def test_an_engine_with_the_wrong_vault_key_answers_a_clear_error(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "data")
    try:
        ddb = process.client()
        backup(ddb, _table_with_items(ddb, 3))
    finally:
        process.stop()
    other_key = tmp_path / "other.key"
    VaultKey.generate().save(other_key)
    vault = "file://" + str(tmp_path / "data" / "vault")
    process = start_engine(tmp_path / "data", "--vault", vault, "--vault-key-file", str(other_key))
    try:
        from botocore.config import Config

        ddb = process.client(config=Config(retries={"max_attempts": 0}))
        with pytest.raises(ClientError) as error:
            ddb.list_backups()
        assert error.value.response["Error"]["Code"] == "InternalServerError"
        assert "key" in error.value.response["Error"]["Message"]
    finally:
        process.stop()


# --- tablekeeper restore (no engine) ----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tablekeeper", *args], capture_output=True, text=True,
                          timeout=120)


def test_restore_command_fills_a_data_directory_that_an_engine_then_serves(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "source")
    try:
        ddb = process.client()
        table = _table_with_items(ddb, 80)
        backup_id = backup(ddb, table).rsplit("/", 1)[1]
        expected = sorted(map(repr, scan_all(ddb, table)))
    finally:
        process.stop()
    vault = "file://" + str(tmp_path / "source" / "vault")
    key = str(tmp_path / "source" / "vault.key")
    done = _cli("restore", "--vault", vault, "--vault-key-file", key, "--backup", backup_id,
                "--data", str(tmp_path / "target"), "--table", "recovered", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert '"ItemCount": 80' in done.stdout
    process = start_engine(tmp_path / "target")
    try:
        ddb = process.client()
        assert ddb.describe_table(TableName="recovered")["Table"]["TableStatus"] == "ACTIVE"
        assert sorted(map(repr, scan_all(ddb, "recovered"))) == expected
    finally:
        process.stop()


def test_restore_command_refuses_a_data_directory_an_engine_is_using(tmp_path: Path) -> None:
    process = start_engine(tmp_path / "data")
    try:
        ddb = process.client()
        backup_id = backup(ddb, _table_with_items(ddb, 2)).rsplit("/", 1)[1]
        done = _cli("restore", "--vault", "file://" + str(tmp_path / "data" / "vault"),
                    "--vault-key-file", str(tmp_path / "data" / "vault.key"), "--backup", backup_id,
                    "--data", str(tmp_path / "data"), "--table", "second")
        assert done.returncode == 2
        assert "another engine is using it" in done.stderr
    finally:
        process.stop()
