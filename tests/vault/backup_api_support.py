"""Engines with a vault of either kind, and waiting helpers, for the backup API tests."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tablekeeper.vault.crypto import VaultKey
from tests.conftest import EngineProcess, start_engine
from tests.vault.conftest import REGION, MotoS3

VAULT_KINDS = ("folder", "s3")


def start_vault_engine(kind: str, root: Path, moto_s3: MotoS3 | None, *extra: str) -> EngineProcess:
    """An engine whose vault is the embedded default (folder) or a fresh prefix of moto's bucket (s3)."""
    data = root / "data"
    if kind == "folder":
        return start_engine(data, *extra)
    assert moto_s3 is not None
    key_file = root / "vault.key"
    if not key_file.exists():
        VaultKey.generate().save(key_file)
    prefix = f"engine-{uuid.uuid4().hex[:10]}"
    return start_engine(
        data,
        "--vault", f"s3://{moto_s3.bucket}/{prefix}",
        "--vault-endpoint-url", moto_s3.endpoint,
        "--vault-region", REGION,
        "--vault-key-file", str(key_file),
        *extra,
        env={"AWS_ACCESS_KEY_ID": moto_s3.access_key_id, "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key},
    )


def wait_backup(ddb: Any, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    """The backup's description once it is no longer CREATING."""
    deadline = time.monotonic() + timeout
    while True:
        description = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
        if description["BackupDetails"]["BackupStatus"] != "CREATING":
            return description
        if time.monotonic() > deadline:
            raise AssertionError(f"backup {arn} still CREATING after {timeout}s")
        time.sleep(0.05)


def backup(ddb: Any, table: str, name: str = "snap") -> str:
    """Take a backup and wait until it is AVAILABLE; returns its ARN."""
    arn = ddb.create_backup(TableName=table, BackupName=name)["BackupDetails"]["BackupArn"]
    status = wait_backup(ddb, arn)["BackupDetails"]["BackupStatus"]
    assert status == "AVAILABLE", status
    return arn


def wait_restored(ddb: Any, table: str, timeout: float = 60.0) -> dict[str, Any] | None:
    """The restored table's description once ACTIVE, or None once it is gone (a failed restore)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            description = ddb.describe_table(TableName=table)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            return None
        if description["TableStatus"] == "ACTIVE":
            return description
        if time.monotonic() > deadline:
            raise AssertionError(f"table {table} still {description['TableStatus']} after {timeout}s")
        time.sleep(0.05)


def scan_all(ddb: Any, table: str, **extra: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, **extra}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def by_key(items: list[dict[str, Any]], *names: str) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(str(item[name]) for name in names): item for item in items}
