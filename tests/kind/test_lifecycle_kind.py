"""The whole lifecycle on a real Kubernetes (kind): the operator installed by its chart, engines in pods,
MinIO as the vault's store.  The path of the kmock tests in tests/operator (create, ready, backup,
scheduled backups, PITR, restore, delete), with a real API server, scheduler, volumes and garbage
collector; skipped, with the reason, where no kind cluster answers (see conftest.py).

The tests share one source table, built up by module fixtures in the order a user goes.  Each test
states one rule and asks for the state it needs, so any one also runs alone (``-k``).  Deleting the
source table is a fixture too, used only by the last tests in the file.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tablekeeper.controllers.builders import EngineNames, service_endpoint
from tablekeeper.controllers.conditions import format_time, parse_time
from tablekeeper.controllers.naming import PLAN_LABEL, run_now_child_name
from tablekeeper.controllers.plans import RUN_NOW_ANNOTATION
from tests.kind.conftest import VAULT, KindCluster, VaultStore, manifest, status_has, table_items

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]

SOURCE = "orders"
BACKUP = "orders-first"
PLAN, RULE = "nightly", "daily"
ITEMS = [{"pk": {"S": f"k{i}"}, "v": {"S": f"value {i}"}} for i in range(3)]
LATE = {"pk": {"S": "late"}, "v": {"S": "written after the restore point"}}


@dataclass(frozen=True)
class Taken:
    """A Backup that became Available, and the items its table held when it was made."""

    status: dict[str, Any]
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class Window:
    """PITR on the source table: its status, a restore point, the items as of it, and the items after
    one more write (which the archive holds too)."""

    status: dict[str, Any]
    point: datetime
    items_at_point: list[dict[str, Any]]
    items_after: list[dict[str, Any]]


@dataclass(frozen=True)
class Deleted:
    """The source table deleted, after a backup and with PITR on."""

    backup: Taken
    pitr: Window


# --- the source table and what is made of it ------------------------------------------------------


@pytest.fixture(scope="module")
def orders(kind: KindCluster, vault: VaultStore) -> str:
    """The Table "orders" on the vault, Active, holding ITEMS."""
    spec = {"keySchema": {"partitionKey": {"name": "pk", "type": "S"}}, "backupVaultRef": {"name": VAULT},
            "storage": {"size": "1Gi"}}  # fmt: skip
    kind.create("tables", manifest("Table", SOURCE, spec))
    kind.wait_for_status("tables", SOURCE, phase="Active", Ready="True")
    with kind.dynamodb(SOURCE) as ddb:
        for item in ITEMS:
            ddb.put_item(TableName=SOURCE, Item=item)
    return SOURCE


@pytest.fixture(scope="module")
def backup(kind: KindCluster, orders: str) -> Taken:
    """An on-demand Backup of the source table, Available."""
    with kind.dynamodb(orders) as ddb:
        held = table_items(ddb, SOURCE)
    spec = {"tableRef": {"name": orders}, "vaultRef": {"name": VAULT}}
    kind.create("backups", manifest("Backup", BACKUP, spec))
    return Taken(kind.wait_for_status("backups", BACKUP, phase="Available", Ready="True"), held)


@pytest.fixture(scope="module")
def pitr(kind: KindCluster, orders: str) -> Window:
    """PITR on the source table; a restore point after every write so far, then one more write (LATE),
    waited for until the archive holds it."""
    spec = {"tableRef": {"name": orders}, "recoveryPeriodInDays": 1, "vaultRef": {"name": VAULT}}
    kind.create("pitrconfigs", manifest("PitrConfig", orders, spec))
    status = kind.wait_for_status("pitrconfigs", orders, phase="Enabled", PITRReady="True")
    # Status times have second resolution: a whole second, inside the window, after every write so far.
    earliest = parse_time(status["earliestRestorableTime"])
    point = whole_second_after(max(datetime.now(UTC), earliest + timedelta(seconds=1)))
    sleep_until(point + timedelta(seconds=1))
    with kind.dynamodb(orders) as ddb:
        at_point = table_items(ddb, SOURCE)
        ddb.put_item(TableName=SOURCE, Item=LATE)
        written = datetime.now(UTC)
        after = table_items(ddb, SOURCE)
    status = kind.wait_for("the PITR archive to hold the late write",
                           lambda: archived_past(kind, orders, written))  # fmt: skip
    return Window(status, point, at_point, after)


@pytest.fixture(scope="module")
def deleted_source(kind: KindCluster, backup: Taken, pitr: Window) -> Deleted:
    """The source table deleted (its backup made and its archive current first)."""
    kind.delete("tables", SOURCE)
    kind.gone("tables", SOURCE)
    return Deleted(backup, pitr)


def whole_second_after(when: datetime) -> datetime:
    return when.replace(microsecond=0) + timedelta(seconds=1)


def sleep_until(when: datetime) -> None:
    time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))


def archived_past(kind: KindCluster, pitr_config: str, when: datetime) -> dict[str, Any] | None:
    """The PitrConfig's status once latestRestorableTime is past ``when`` (a second later, as it is
    written to the second), else None."""
    status = (kind.get("pitrconfigs", pitr_config) or {}).get("status") or {}
    latest = status.get("latestRestorableTime")
    return status if latest and parse_time(latest) >= when + timedelta(seconds=1) else None


def restore(
    kind: KindCluster, name: str, source: dict[str, Any], table_name: str
) -> tuple[dict[str, Any], str]:
    """Create Restore ``name`` into a new table ``table_name``; wait until it is Completed and its Table
    Active.  Its status and the restored Table's metadata.name."""
    spec = {"source": source, "target": {"tableName": table_name}}
    kind.create("restores", manifest("Restore", name, spec))
    status = kind.wait_for_status("restores", name, phase="Completed", Ready="True")
    table = kind.wait_for(f"the Table of {table_name}", lambda: table_named(kind, table_name))
    kind.wait_for_status("tables", table, phase="Active", Ready="True")
    return status, table


def table_named(kind: KindCluster, table_name: str) -> str | None:
    """The metadata.name of the Table serving DynamoDB table ``table_name`` (spec.tableName, else its
    metadata.name), or None."""
    for table in kind.list("tables"):
        if (table["spec"].get("tableName") or table["metadata"]["name"]) == table_name:
            return str(table["metadata"]["name"])
    return None


# --- the rules ------------------------------------------------------------------------------------


def test_a_backup_vault_on_minio_is_ready_with_its_key(kind: KindCluster, vault: VaultStore) -> None:
    status = (kind.get("backupvaults", VAULT) or {})["status"]
    assert status_has(status, {"phase": "Ready", "ready": True, "Ready": "True", "Degraded": "False"})
    assert status["keyId"] == vault.key.key_id


def test_a_table_is_ready_with_an_endpoint_and_credentials_that_boto3_uses(
    kind: KindCluster, orders: str
) -> None:
    status = (kind.get("tables", orders) or {})["status"]
    assert status["endpoint"] == service_endpoint(kind.namespace, orders)
    assert status["credentialsSecret"] == EngineNames.of(orders).secret
    assert status["tableStatus"] == "ACTIVE"
    probe = {"pk": {"S": "probe"}, "v": {"S": "through the client Service"}}
    with kind.dynamodb(orders) as ddb:
        ddb.put_item(TableName=SOURCE, Item=probe)
        assert ddb.get_item(TableName=SOURCE, Key={"pk": probe["pk"]}, ConsistentRead=True)["Item"] == probe
        ddb.delete_item(TableName=SOURCE, Key={"pk": probe["pk"]})
        assert table_items(ddb, SOURCE) == ITEMS


def test_a_backup_becomes_available_in_the_vault_with_the_tables_items(
    kind: KindCluster, backup: Taken, vault: VaultStore
) -> None:
    assert backup.status["backupStatus"] == "AVAILABLE"
    assert backup.status["itemCount"] == len(backup.items) and backup.status["sizeBytes"] > 0
    with vault.opened(kind) as opened:
        assert backup.status["backupId"] in {b.backup_id for b in opened.list_backups()}


def test_run_now_on_a_backup_plan_makes_a_child_backup_that_becomes_available(
    kind: KindCluster, orders: str
) -> None:
    rule = {"name": RULE, "schedule": "0 3 * * *", "targetVaultRef": {"name": VAULT}}
    spec = {"rules": [rule], "selection": {"tableNames": [orders]}}
    kind.create("backupplans", manifest("BackupPlan", PLAN, spec))
    kind.wait_for_status("backupplans", PLAN, phase="Active")
    token = f"e2e-{secrets.token_hex(4)}"
    kind.patch("backupplans", PLAN, {"metadata": {"annotations": {RUN_NOW_ANNOTATION: token}}})
    child = run_now_child_name(PLAN, RULE, token, orders)
    status = kind.wait_for_status("backups", child, phase="Available", Ready="True",
                                  plan={"name": PLAN, "rule": RULE})  # fmt: skip
    assert status["backupStatus"] == "AVAILABLE"
    body = kind.get("backups", child) or {}
    assert body["metadata"]["labels"][PLAN_LABEL] == PLAN
    assert body["spec"]["tableRef"] == {"name": orders}
    kind.wait_for_status("backupplans", PLAN, handledRunNow=token)


def test_a_pitr_config_is_pitr_ready_with_a_growing_restorable_window(pitr: Window) -> None:
    assert status_has(pitr.status, {"phase": "Enabled", "PITRReady": "True"})
    earliest = parse_time(pitr.status["earliestRestorableTime"])
    latest = parse_time(pitr.status["latestRestorableTime"])
    assert earliest <= pitr.point < latest
    assert pitr.status["lagSeconds"] >= 0


def test_a_restore_from_the_backup_is_a_ready_table_with_the_backups_items(
    kind: KindCluster, backup: Taken
) -> None:
    status, table = restore(kind, "from-backup", {"backupRef": {"name": BACKUP}}, "orders-from-backup")
    assert status["source"]["type"] == "Backup"
    assert status["source"]["backupId"] == backup.status["backupId"]
    assert status["itemsRestored"] == len(backup.items)
    with kind.dynamodb(table) as ddb:
        assert table_items(ddb, "orders-from-backup") == backup.items


def test_a_restore_to_a_point_in_time_has_the_items_of_that_moment(kind: KindCluster, pitr: Window) -> None:
    source = {"pointInTime": {"tableName": SOURCE, "vaultRef": {"name": VAULT},
                              "restoreDateTime": format_time(pitr.point)}}  # fmt: skip
    status, table = restore(kind, "to-point", source, "orders-at-point")
    assert status["source"]["type"] == "PointInTime"
    assert parse_time(status["source"]["restoreDateTime"]) == pitr.point
    with kind.dynamodb(table) as ddb:
        restored = table_items(ddb, "orders-at-point")
    assert restored == pitr.items_at_point
    assert LATE not in restored  # written after the point


def test_deleting_a_table_removes_its_engine_objects_and_keeps_its_backups(
    kind: KindCluster, deleted_source: Deleted, vault: VaultStore
) -> None:
    names = EngineNames.of(SOURCE)
    for plural, name in (("statefulsets", names.statefulset), ("services", names.service),
                         ("services", names.headless_service), ("secrets", names.secret),
                         ("pods", f"{names.statefulset}-0")):  # fmt: skip
        kind.gone(plural, name)
    backup_id = deleted_source.backup.status["backupId"]
    assert ((kind.get("backups", BACKUP) or {}).get("status") or {}).get("phase") == "Available"
    with vault.opened(kind) as opened:
        assert backup_id in {b.backup_id for b in opened.list_backups()}


def test_a_deleted_table_is_restored_from_its_archive_with_every_item(
    kind: KindCluster, deleted_source: Deleted
) -> None:
    source = {"pointInTime": {"tableName": SOURCE, "vaultRef": {"name": VAULT},
                              "useLatestRestorableTime": True}}  # fmt: skip
    status, table = restore(kind, "revive-deleted", source, "orders-revived")
    assert status["source"]["type"] == "PointInTime"
    with kind.dynamodb(table) as ddb:
        assert table_items(ddb, "orders-revived") == deleted_source.pitr.items_after
