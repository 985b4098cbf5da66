"""The Backup controller: a backup made by the table's engine into the table's vault, tracked to the end,
and deleted (or kept) with its object.

End to end against the fake Kubernetes API and real engine processes (see conftest.py); the decisions
themselves without either.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.exceptions
import pytest

from tablekeeper.controllers.backups import (
    BackupOutcome,
    adoptable,
    backup_fields,
    backup_name,
    backup_status_after,
    deletion_policy,
    may_have_made,
)
from tablekeeper.controllers.engine_client import EngineBackup, _keep_backup_status_reason
from tablekeeper.controllers.tables import table_problem, vault_mismatch
from tablekeeper.resources.backup import Backup, BackupStatus, DeletionPolicy
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.store import open_store
from tests.operator.conftest import (
    FolderVault,
    OperatorHarness,
    VersionedEmulator,
    resource_body,
    table_model,
    table_on_vault,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Orders/backup/01HZX0000000000000000000AB"


def made(status: str = "CREATING", created: datetime = T0, **fields: Any) -> EngineBackup:
    return EngineBackup(arn=ARN, name="nightly", status=status, created=created, **fields)


def backup_model(**spec: Any) -> Backup:
    spec = {"tableRef": {"name": "orders"}, "vaultRef": {"name": "primary"}, **spec}
    return Backup.model_validate(resource_body("Backup", "orders-nightly", spec))


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


# --- decisions (pure) -----------------------------------------------------------------------------


def test_the_backup_name_is_spec_backup_name_else_the_object_name() -> None:
    assert backup_name(backup_model()) == "orders-nightly"
    assert backup_name(backup_model(backupName="Orders_v2.1")) == "Orders_v2.1"
    short = backup_model().model_copy(
        update={"metadata": backup_model().metadata.model_copy(update={"name": "ab"})}
    )
    with pytest.raises(ValueError, match="must be 3 to 255 characters"):
        backup_name(short)


def test_a_backup_must_name_the_vault_its_tables_engine_runs_on() -> None:
    assert (
        vault_mismatch(table_model("orders", "shop", backupVaultRef={"name": "primary"}), "primary") is None
    )
    other = vault_mismatch(table_model("orders", "shop", backupVaultRef={"name": "primary"}), "cold")
    assert other == (
        "Table orders keeps its backups in BackupVault primary, not in BackupVault cold:"
        " a table's engine has one vault, its spec.backupVaultRef"
    )
    assert "the folder vault on its own volume" in str(
        vault_mismatch(table_model("orders", "shop"), "primary")
    )


def test_only_an_active_ready_table_is_backed_up() -> None:
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Active",
        "lastTransitionTime": "2026-03-01T12:00:00Z",
    }
    active = {"metadata": {}, "status": {"phase": "Active", "conditions": [ready]}}
    assert table_problem(active, "orders") is None
    assert table_problem(None, "orders") == "Table orders does not exist"
    assert (
        table_problem({"status": {"phase": "Creating"}}, "orders") == "Table orders is Creating, not Active"
    )
    deleting = {**active, "metadata": {"deletionTimestamp": "2026-03-01T12:00:00Z"}}
    assert table_problem(deleting, "orders") == "Table orders is being deleted"


def test_a_backup_made_before_a_crash_is_adopted_but_an_older_namesake_is_not() -> None:
    created = T0 + timedelta(minutes=10)
    mine = made(created=created + timedelta(seconds=1))
    older = made(created=T0)
    assert adoptable([older, mine], created) is mine
    assert adoptable([older], created) is None
    assert adoptable([made(status="DELETED", created=created + timedelta(seconds=2))], created) is None
    assert adoptable([older], None) is older  # no creation time known: any age


def test_status_mirrors_the_engine_and_completion_is_stamped_once() -> None:
    creating, _ = backup_status_after(BackupOutcome.CREATING, "started", {}, 1, T0, made())
    assert (creating["phase"], creating["backupStatus"], creating["backupId"]) == (
        "Creating", "CREATING", "01HZX0000000000000000000AB")  # fmt: skip
    assert creating["startedAt"] == "2026-03-01T12:00:00Z" and "completedAt" not in creating
    done = made("AVAILABLE", size_bytes=2048, item_count=3, table_arn="arn:table")
    available, changes = backup_status_after(
        BackupOutcome.AVAILABLE, "done", creating, 1, T0 + timedelta(1), done
    )
    assert (available["phase"], available["sizeBytes"], available["itemCount"]) == ("Available", 2048, 3)
    assert available["completedAt"] == "2026-03-02T12:00:00Z"
    assert condition(available, "Ready") == ("True", "BackupAvailable")
    assert ("Ready", "Normal") in {(t.type, t.event_type) for t in changes}
    later = backup_fields(done, available, T0 + timedelta(days=5))
    assert "completedAt" not in later  # the first time seen done stays
    BackupStatus.model_validate(available)


def test_the_engines_reason_for_a_failed_backup_survives_botocore() -> None:
    # botocore's model has no BackupStatusReason: the client puts it back from the raw answer.
    raw = {
        "BackupDescription": {"BackupDetails": {"BackupStatus": "FAILED", "BackupStatusReason": "disk full"}}
    }
    answer = SimpleNamespace(status_code=200, content=json.dumps(raw).encode())
    parsed: dict[str, Any] = {
        "BackupDescription": {
            "BackupDetails": {
                "BackupArn": ARN,
                "BackupName": "nightly",
                "BackupStatus": "FAILED",
                "BackupCreationDateTime": T0,
            }
        }
    }
    _keep_backup_status_reason(answer, parsed)
    backup = EngineBackup.from_description(parsed["BackupDescription"])
    assert (backup.status, backup.reason, backup.backup_id) == (
        "FAILED",
        "disk full",
        "01HZX0000000000000000000AB",
    )


def test_a_failed_backup_is_degraded_with_the_engines_reason() -> None:
    failed, changes = backup_status_after(BackupOutcome.FAILED, "backup x is FAILED: disk full", {}, 1, T0,
                                          made("FAILED", reason="disk full"))  # fmt: skip
    assert failed["phase"] == "Failed" and condition(failed, "Degraded") == ("True", "BackupFailed")
    assert ("Degraded", "Warning") in {(t.type, t.event_type) for t in changes}


def test_waiting_for_the_table_keeps_the_backup_pending() -> None:
    status, _ = backup_status_after(BackupOutcome.TABLE_NOT_READY, "waiting", {}, 1, T0)
    assert status["phase"] == "Pending" and condition(status, "Progressing") == ("True", "TableNotReady")


def test_a_refused_backup_never_claims_a_namesake_on_deletion() -> None:
    refused, _ = backup_status_after(BackupOutcome.VAULT_MISMATCH, "other vault", {}, 1, T0)
    waiting, _ = backup_status_after(BackupOutcome.ENGINE_UNAVAILABLE, "no engine", {}, 1, T0)
    assert not may_have_made(refused)
    assert may_have_made(waiting) and may_have_made({})


def test_an_unreadable_deletion_policy_keeps_the_backup() -> None:
    assert deletion_policy({"spec": {}}) is DeletionPolicy.DELETE
    assert deletion_policy({"spec": {"deletionPolicy": "Retain"}}) is DeletionPolicy.RETAIN
    assert deletion_policy({"spec": {"deletionPolicy": "Shred"}}) is DeletionPolicy.RETAIN


# --- end to end -----------------------------------------------------------------------------------


def backup_body(name: str, vault: str = "primary", **spec: Any) -> dict[str, Any]:
    return resource_body(
        "Backup", name, {"tableRef": {"name": "orders"}, "vaultRef": {"name": vault}, **spec}
    )


def in_vault(vault: FolderVault) -> list[str]:
    """The backup ids in the vault, read straight from it."""
    opened = Vault(open_store(vault.url), VaultKey.from_secret(vault.secret))
    return [b.backup_id for b in opened.list_backups()]


class TestEndToEnd:
    pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90), pytest.mark.kmock(cls=VersionedEmulator)]

    async def test_a_backup_becomes_available_in_the_engine_and_the_vault(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path)
        await harness.create("backups", backup_body("orders-first"))
        status = await harness.wait_for_status("backups", "orders-first", phase="Available", Ready="True")
        assert status["itemCount"] == 3 and status["sizeBytes"] > 0
        assert status["startedAt"] <= status["completedAt"]
        described = await harness.call("orders", "describe_backup", BackupArn=status["backupArn"])
        details = described["BackupDescription"]["BackupDetails"]
        assert (details["BackupName"], details["BackupStatus"]) == ("orders-first", "AVAILABLE")
        assert status["backupArn"].endswith(f"/backup/{status['backupId']}")
        assert status["tableArn"] == described["BackupDescription"]["SourceTableDetails"]["TableArn"]
        assert in_vault(vault) == [status["backupId"]]
        assert await harness.posted("Normal", "BackupAvailable")

    async def test_deleting_a_backup_deletes_it_from_the_vault_unless_retained(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path)
        await harness.create("backups", backup_body("orders-gone"))
        await harness.create("backups", backup_body("orders-kept", deletionPolicy="Retain"))
        gone = await harness.wait_for_status("backups", "orders-gone", phase="Available")
        kept = await harness.wait_for_status("backups", "orders-kept", phase="Available")
        await harness.delete("backups", "orders-gone")
        await harness.delete("backups", "orders-kept")
        await harness.gone("backups", "orders-gone")
        await harness.gone("backups", "orders-kept")
        with pytest.raises(botocore.exceptions.ClientError, match="BackupNotFoundException"):
            await harness.call("orders", "describe_backup", BackupArn=gone["backupArn"])
        described = await harness.call("orders", "describe_backup", BackupArn=kept["backupArn"])
        assert described["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE"
        assert in_vault(vault) == [kept["backupId"]]

    async def test_a_backup_naming_another_vault_is_refused(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await table_on_vault(harness, tmp_path)
        await harness.create("backups", backup_body("orders-elsewhere", vault="cold"))
        status = await harness.wait_for_status("backups", "orders-elsewhere", phase="Failed",
                                               Degraded=("True", "VaultMismatch"))  # fmt: skip
        message = next(c["message"] for c in status["conditions"] if c["type"] == "Degraded")
        assert message.startswith(
            "Table orders keeps its backups in BackupVault primary, not in BackupVault cold"
        )
        assert "backupArn" not in status
        listed = await harness.call("orders", "list_backups", TableName="orders")
        assert listed["BackupSummaries"] == []

    async def test_a_backup_made_before_its_object_was_recorded_is_not_made_twice(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        # As after an operator stopped between CreateBackup and the status patch.
        await table_on_vault(harness, tmp_path)
        created = datetime.now(UTC) - timedelta(seconds=1)
        first = await harness.call("orders", "create_backup", TableName="orders", BackupName="nightly")
        await harness.create("backups", resource_body("Backup", "orders-nightly", {
            "tableRef": {"name": "orders"}, "vaultRef": {"name": "primary"}, "backupName": "nightly"},
            created=created))  # fmt: skip
        status = await harness.wait_for_status("backups", "orders-nightly", phase="Available")
        assert status["backupArn"] == first["BackupDetails"]["BackupArn"]
        listed = await harness.call("orders", "list_backups", TableName="orders")
        assert len(listed["BackupSummaries"]) == 1

    async def test_a_backup_whose_table_is_gone_is_deleted_from_the_vault_directly(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path)
        await harness.create("backups", backup_body("orders-orphan"))
        status = await harness.wait_for_status("backups", "orders-orphan", phase="Available")
        await harness.delete("tables", "orders")
        await harness.gone("tables", "orders")
        await asyncio.to_thread(harness.engines.pop("orders").stop)  # the StatefulSet went with it
        assert in_vault(vault) == [status["backupId"]]  # a backup outlives its table
        await harness.delete("backups", "orders-orphan")
        await harness.gone("backups", "orders-orphan")
        assert in_vault(vault) == []
