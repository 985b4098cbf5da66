"""The Restore controller: a new Table whose own engine restores a backup or a point in time of a table
(live or deleted) from the vault, tracked to Ready; refusals; an operator restart in the middle.

End to end against the fake Kubernetes API and real engine processes (see conftest.py): each target
Table's engine is started by the test, as its StatefulSet's pod would be.  The decisions themselves
are tested in tests/controllers/test_restore_decisions.py.
"""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.controllers.naming import RESTORE_ANNOTATION, RESTORE_LABEL, object_name
from tests.operator.conftest import (
    ITEMS,
    NAMESPACE,
    OPERATOR_PLURALS,
    OperatorHarness,
    VersionedEmulator,
    deleted_table_backup,
    deletion_recorded,
    resource_body,
    restore_body,
    restored,
    table_body,
    table_on_vault,
)

PLURALS = (*OPERATOR_PLURALS, "restores")
CHANGED = [  # what the test does to "orders" after the moment it restores to
    ("put_item", {"Item": {"pk": {"S": "k0"}, "v": {"S": "changed"}}}),
    ("delete_item", {"Key": {"pk": {"S": "k1"}}}),
    ("put_item", {"Item": {"pk": {"S": "k9"}, "v": {"S": "new"}}}),
]
FINAL = sorted([{"pk": {"S": "k0"}, "v": {"S": "changed"}}, ITEMS[2], {"pk": {"S": "k9"}, "v": {"S": "new"}}],
               key=lambda item: item["pk"]["S"])  # fmt: skip


def backup_body(name: str) -> dict[str, Any]:
    return resource_body("Backup", name, {"tableRef": {"name": "orders"}, "vaultRef": {"name": "primary"}})


def message(status: dict[str, Any], kind: str) -> str:
    return str(next(c["message"] for c in status["conditions"] if c["type"] == kind))


async def items(harness: OperatorHarness, table: str, table_name: str) -> list[dict[str, Any]]:
    """The table's items, read through its engine, in key order."""
    found = (await harness.call(table, "scan", TableName=table_name))["Items"]
    return sorted(found, key=lambda item: item["pk"]["S"])


async def pitr_on(harness: OperatorHarness) -> None:
    """Point-in-time recovery on for "orders" (through its engine), its first base in the vault."""
    spec = {"PointInTimeRecoveryEnabled": True}
    await harness.call("orders", "update_continuous_backups", TableName="orders",
                       PointInTimeRecoverySpecification=spec)  # fmt: skip
    await archived_past(harness, datetime.now(UTC))


async def archived_past(harness: OperatorHarness, moment: datetime) -> None:
    """Wait until the archive of "orders" holds every write up to ``moment``."""

    async def archived() -> bool:
        answer = await harness.call("orders", "describe_continuous_backups", TableName="orders")
        found = answer["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        latest = found.get("LatestRestorableDateTime")
        return latest is not None and latest >= moment

    await harness.wait_for(f"the archive of orders past {moment}", archived)


async def change_orders(harness: OperatorHarness) -> datetime:
    """Apply CHANGED to "orders", after a moment that the restores go back to; the moment."""
    await asyncio.sleep(0.05)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.05)
    for operation, request in CHANGED:
        await harness.call("orders", operation, TableName="orders", **request)
    await archived_past(harness, datetime.now(UTC))
    return moment


def engine_requests(harness: OperatorHarness, table: str, operation: str) -> int:
    """How many ``operation`` requests the engine of ``table`` has served (its /metrics)."""
    with urllib.request.urlopen(f"{harness.engines[table].endpoint}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    prefix = f'tablekeeper_engine_requests_total{{operation="{operation}"'
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith(prefix))


class TestEndToEnd:
    pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120), pytest.mark.kmock(cls=VersionedEmulator)]

    async def test_a_restore_of_a_backup_object_is_a_ready_table_with_the_backups_items(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        copy = object_name("Orders_Copy")  # not an object name as it is: the Table is named for it
        vault = await table_on_vault(harness, tmp_path, copy, plurals=PLURALS)
        await harness.create("backups", backup_body("orders-first"))
        backup = await harness.wait_for_status("backups", "orders-first", phase="Available")
        await harness.call("orders", "put_item", TableName="orders", Item={"pk": {"S": "after"}})
        throughput = {"readCapacityUnits": 5, "writeCapacityUnits": 4}
        await harness.create("restores", restore_body(
            "orders-back", {"backupRef": {"name": "orders-first"}}, "Orders_Copy",
            billingModeOverride="PROVISIONED", provisionedThroughputOverride=throughput))  # fmt: skip
        status = await restored(harness, vault, "orders-back", copy)
        assert status["source"] == {"type": "Backup", "vault": "primary", "backupId": backup["backupId"],
                                    "backupArn": backup["backupArn"]}  # fmt: skip
        assert (status["itemsRestored"], status["progress"]) == (3, 100)
        assert status["startedAt"] <= status["completedAt"]
        assert await items(harness, copy, "Orders_Copy") == ITEMS  # as backed up: without "after"
        described = (await harness.call(copy, "describe_table", TableName="Orders_Copy"))["Table"]
        assert described["RestoreSummary"]["SourceBackupArn"] == backup["backupArn"]
        assert described["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
        assert status["targetTableArn"] == described["TableArn"]
        table = await harness.get("tables", copy)
        assert table is not None and table["status"]["phase"] == "Active"
        assert table["metadata"]["annotations"][RESTORE_ANNOTATION] == "orders-back"
        assert table["metadata"]["labels"][RESTORE_LABEL] == "orders-back"
        assert "ownerReferences" not in table["metadata"]
        assert table["spec"]["billingMode"] == "PROVISIONED"
        assert table["spec"]["backupVaultRef"] == {"name": "primary"}
        assert await harness.posted("Normal", "RestoreCompleted")
        await harness.delete("restores", "orders-back")
        await harness.gone("restores", "orders-back")
        assert await harness.get("tables", copy) is not None  # deleting a Restore keeps its table

    async def test_a_restore_of_a_backup_named_in_the_vault_needs_no_backup_object(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path, "orders-copy", plurals=PLURALS)
        made = await harness.call("orders", "create_backup", TableName="orders", BackupName="by-hand")
        arn = made["BackupDetails"]["BackupArn"]
        backup_id = arn.rpartition("/backup/")[2]
        await harness.wait_for("the backup", lambda: backup_available(harness, arn))
        source = {"vaultBackup": {"vaultRef": {"name": "primary"}, "backupId": backup_id}}
        await harness.create("restores", restore_body("orders-copy", source, "orders-copy",
                                                      globalSecondaryIndexOverride=[]))  # fmt: skip
        status = await restored(harness, vault, "orders-copy", "orders-copy")
        assert status["source"] == {"type": "VaultBackup", "vault": "primary", "backupId": backup_id,
                                    "backupArn": arn}  # fmt: skip
        assert await items(harness, "orders-copy", "orders-copy") == ITEMS

    async def test_a_restore_to_a_point_in_time_has_the_tables_items_as_of_then_or_as_of_the_latest(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path, "orders-then", "orders-now", plurals=PLURALS)
        await pitr_on(harness)
        moment = await change_orders(harness)
        then = {"tableName": "orders", "vaultRef": {"name": "primary"}, "restoreDateTime": moment.isoformat()}
        latest = {"tableName": "orders", "vaultRef": {"name": "primary"}, "useLatestRestorableTime": True}
        await harness.create("restores", restore_body("orders-then", {"pointInTime": then}, "orders-then"))
        await harness.create("restores", restore_body("orders-now", {"pointInTime": latest}, "orders-now"))
        at_then = await restored(harness, vault, "orders-then", "orders-then")
        at_latest = await restored(harness, vault, "orders-now", "orders-now")
        assert await items(harness, "orders-then", "orders-then") == ITEMS
        assert await items(harness, "orders-now", "orders-now") == FINAL
        source = at_then["source"]
        assert (source["type"], source["vault"]) == ("PointInTime", "primary")
        assert datetime.fromisoformat(source["restoreDateTime"]) == moment.replace(
            microsecond=moment.microsecond // 1000 * 1000)  # fmt: skip
        # "latest" is recorded as the moment the engine chose: after the changes.
        assert datetime.fromisoformat(at_latest["source"]["restoreDateTime"]) > moment
        assert (at_latest["itemsRestored"], at_latest["progress"]) == (3, 100)

    async def test_a_deleted_tables_archive_restores_it_as_it_was_deleted(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path, "orders-revived", "orders-undeleted", plurals=PLURALS)
        await pitr_on(harness)
        await change_orders(harness)
        await harness.delete("tables", "orders")
        await harness.gone("tables", "orders")
        # The engine ships the deleted table's last records and its deletion to the vault.
        await harness.wait_for("the deletion in the vault", lambda: deletion_recorded(vault))
        await asyncio.to_thread(harness.engines.pop("orders").stop)  # the StatefulSet went with the Table
        latest = {"tableName": "orders", "vaultRef": {"name": "primary"}, "useLatestRestorableTime": True}
        await harness.create("restores", restore_body("orders-revived", {"pointInTime": latest},
                                                      "orders-revived"))  # fmt: skip
        # ListBackups showed the deleted table as orders$DeletedTableBackup: its id restores it too.
        backup_id, deleted_at = await asyncio.to_thread(deleted_table_backup, vault)
        by_id = {"vaultRef": {"name": "primary"}, "backupId": backup_id}
        await harness.create("restores", restore_body("orders-undeleted", {"vaultBackup": by_id},
                                                      "orders-undeleted"))  # fmt: skip
        status = await restored(harness, vault, "orders-revived", "orders-revived")
        assert await items(harness, "orders-revived", "orders-revived") == FINAL
        assert status["source"]["type"] == "PointInTime" and status["source"]["restoreDateTime"]
        status = await restored(harness, vault, "orders-undeleted", "orders-undeleted")
        assert await items(harness, "orders-undeleted", "orders-undeleted") == FINAL
        assert status["source"]["type"] == "PointInTime"
        assert datetime.fromisoformat(status["source"]["restoreDateTime"]) == deleted_at

    async def test_a_restore_whose_source_or_target_cannot_be_is_failed_and_says_why(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await table_on_vault(harness, tmp_path, plurals=PLURALS)
        await harness.create("backups", backup_body("orders-first"))
        await harness.wait_for_status("backups", "orders-first", phase="Available")
        await harness.create("tables", table_body("taken", NAMESPACE))  # someone else's Table
        unknown = "01795746124738-0badc0de"
        latest = {"tableName": "orders", "vaultRef": {"name": "primary"}, "useLatestRestorableTime": True}
        cases = {
            "no-backup": ({"backupRef": {"name": "nope"}}, "Backup nope does not exist"),
            "no-id": ({"vaultBackup": {"vaultRef": {"name": "primary"}, "backupId": unknown}},
                      f"restore backup {unknown}: not found"),
            "no-archive": ({"pointInTime": latest},
                           "BackupVault primary has no point-in-time recovery archive of orders"),
            "clash": ({"backupRef": {"name": "orders-first"}},
                      "a Table named taken exists and was not created by this Restore"),
        }  # fmt: skip
        for name, (source, _) in cases.items():
            await harness.create("restores", restore_body(name, source, "taken" if name == "clash" else name))
        for name, (_, wanted) in cases.items():
            status = await harness.wait_for_status("restores", name, phase="Failed")
            reason = "TargetExists" if name == "clash" else "SourceRefused"
            assert [c["reason"] for c in status["conditions"] if c["type"] == "Degraded"] == [reason]
            assert wanted in message(status, "Degraded"), message(status, "Degraded")
            assert status["completedAt"] and "startedAt" not in status
            if name != "clash":
                assert await harness.get("tables", name) is None  # refused before any Table was made
        taken = await harness.get("tables", "taken")
        assert taken is not None and RESTORE_ANNOTATION not in taken["metadata"].get("annotations", {})

    async def test_a_restore_the_engine_refuses_is_failed_and_its_empty_table_deleted(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path, "orders-later", plurals=PLURALS)
        await pitr_on(harness)
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()  # past the restorable window
        when = {"tableName": "orders", "vaultRef": {"name": "primary"}, "restoreDateTime": future}
        source = {"pointInTime": when}
        await harness.create("restores", restore_body("orders-later", source, "orders-later"))
        await harness.wait_for("Table orders-later", lambda: harness.get("tables", "orders-later"))
        await harness.start_engine("orders-later", *vault.engine_arguments())
        status = await harness.wait_for_status("restores", "orders-later", phase="Failed",
                                               Degraded=("True", "EngineRefused"))  # fmt: skip
        assert "InvalidRestoreTimeException" in message(status, "Degraded")
        await harness.gone("tables", "orders-later")
        listed = await harness.call("orders-later", "list_tables")
        assert listed["TableNames"] == []

    async def test_an_operator_restarted_after_the_restore_call_resumes_without_a_second_call(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = await table_on_vault(harness, tmp_path, "orders-copy", plurals=PLURALS)
        await harness.create("backups", backup_body("orders-first"))
        backup = await harness.wait_for_status("backups", "orders-first", phase="Available")
        await harness.create("restores", restore_body("orders-copy", {"backupRef": {"name": "orders-first"}},
                                                      "orders-copy"))  # fmt: skip
        await harness.wait_for_status("restores", "orders-copy", Progressing=("True", "TargetNotReady"))
        # The operator stops as its restore call reaches the engine, before it is recorded.
        await asyncio.to_thread(harness.stop_operator)
        await harness.start_engine("orders-copy", *vault.engine_arguments())
        await harness.call("orders-copy", "restore_table_from_backup", TargetTableName="orders-copy",
                           BackupArn=backup["backupArn"])  # fmt: skip
        harness.start_operator()
        status = await harness.wait_for_status("restores", "orders-copy", phase="Completed", Ready="True")
        assert await items(harness, "orders-copy", "orders-copy") == ITEMS
        assert engine_requests(harness, "orders-copy", "RestoreTableFromBackup") == 1
        assert status["source"]["backupArn"] == backup["backupArn"] and status["progress"] == 100

    async def test_a_table_made_by_a_restore_waits_for_it_instead_of_creating_the_table(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        harness.start_operator("waiting")
        await harness.operator_watching()
        body = table_body("waiting", NAMESPACE)
        body["metadata"]["annotations"] = {RESTORE_ANNOTATION: "some-restore"}
        await harness.create("tables", body)
        await harness.start_engine("waiting")
        status = await harness.wait_for_status("tables", "waiting", phase="Creating",
                                               Progressing=("True", "WaitingForRestore"))  # fmt: skip
        assert message(status, "Progressing") == "waiting for Restore some-restore to create table waiting"
        await asyncio.sleep(1.0)  # a few more passes
        assert (await harness.call("waiting", "list_tables"))["TableNames"] == []


async def backup_available(harness: OperatorHarness, arn: str) -> bool:
    described = await harness.call("orders", "describe_backup", BackupArn=arn)
    return bool(described["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE")
