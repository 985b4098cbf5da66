"""The operator's whole story in one run: a vault, a Table on it, backups on demand and on a plan, PITR,
restores from a backup and from points in time, and a deleted table brought back from its archive.

The real operator (``tablekeeper operator``) runs against kmock's in-memory fake of the Kubernetes API;
the test starts a real engine process for each Table in place of its StatefulSet's pod (see conftest.py;
a restore's target Table is a new Table, so a new engine: conftest's ``restored``) and
checks the data through boto3, as a client would.  The per-controller tests check each rule on its own;
this one checks that the controllers work together on one operator run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.controllers.conditions import format_time
from tablekeeper.controllers.naming import child_labels, run_now_child_name
from tablekeeper.controllers.plans import RUN_NOW_ANNOTATION
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.store import open_store
from tests.operator.conftest import (
    ITEMS,
    OPERATOR_PLURALS,
    FolderVault,
    OperatorHarness,
    VersionedEmulator,
    deletion_recorded,
    resource_body,
    restore_body,
    restored,
    table_on_vault,
)

# 35-45 s measured on 2 cores with other operator tests running beside it; the timeout leaves room.
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120), pytest.mark.kmock(cls=VersionedEmulator)]

PLURALS = (*OPERATOR_PLURALS, "backupplans", "restores")
SOURCE = "orders"  # the Table table_on_vault makes
FROM_BACKUP, AT_MIDPOINT, REVIVED = "orders-from-backup", "orders-at-midpoint", "orders-revived"
TOKEN = "first-run"
PLAN_CHILD = run_now_child_name("protect", "daily", TOKEN, SOURCE)

# The table's contents, {pk: v}, after each write phase.
PHASE_A = {item["pk"]["S"]: item["v"]["S"] for item in ITEMS}  # k0, k1, k2: before the backups
PHASE_B = {"k0": "b", "k2": PHASE_A["k2"], "k3": "b"}  # PITR on: k0 changed, k1 deleted, k3 added
PHASE_C = {"k0": "b", "k3": "b", "k4": "c"}  # later still: k2 deleted, k4 added


# --- helpers --------------------------------------------------------------------------------------


async def write(harness: OperatorHarness, table: str, before: dict[str, str], after: dict[str, str]) -> None:
    """Turn the table's contents from ``before`` into ``after``: puts for what changed, deletes for the
    rest."""
    for key, value in after.items():
        if before.get(key) != value:
            item = {"pk": {"S": key}, "v": {"S": value}}
            await harness.call(table, "put_item", TableName=table, Item=item)
    for key in before.keys() - after.keys():
        await harness.call(table, "delete_item", TableName=table, Key={"pk": {"S": key}})


async def contents(harness: OperatorHarness, table: str) -> dict[str, str]:
    """Every item of ``table`` read through its engine, as {pk: v} (a strongly consistent scan)."""
    answer = await harness.call(table, "scan", TableName=table, ConsistentRead=True)
    assert "LastEvaluatedKey" not in answer  # a handful of items: one page
    return {item["pk"]["S"]: item["v"]["S"] for item in answer["Items"]}


async def event_posted(harness: OperatorHarness, kind: str, name: str, type_: str, reason: str) -> None:
    """Wait for an event of ``type_`` and ``reason`` about one object (posted soon after the status)."""

    async def posted() -> bool:
        return any(
            (event["type"], event["reason"]) == (type_, reason)
            and event.get("involvedObject", {}).get("kind") == kind
            and event.get("involvedObject", {}).get("name") == name
            for event in harness.events()
        )

    await harness.wait_for(f"a {type_} {reason} event about {kind} {name}", posted)


def catalogue(vault: FolderVault) -> dict[str, str]:
    """{backup id: backup type} of what the vault holds, read straight from it (no engine, no API):
    USER backups, and the PITR archive's bases."""
    opened = Vault(open_store(vault.url), VaultKey.from_secret(vault.secret))
    return {backup.backup_id: backup.backup_type for backup in opened.list_backups()}


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


def backup_body(name: str) -> dict[str, Any]:
    return resource_body("Backup", name, {"tableRef": {"name": SOURCE}, "vaultRef": {"name": "primary"}})


def plan_body() -> dict[str, Any]:
    """A daily plan for the tables labelled tier=gold, asked to run now; itself labelled like them."""
    rule = {"name": "daily", "schedule": "0 3 * * *", "targetVaultRef": {"name": "primary"}}
    spec = {"rules": [rule], "selection": {"labelSelector": {"matchLabels": {"tier": "gold"}}}}
    body = resource_body("BackupPlan", "protect", spec)
    body["metadata"]["labels"] = {"tier": "gold"}
    body["metadata"]["annotations"] = {RUN_NOW_ANNOTATION: TOKEN}
    return body


def pitr_body() -> dict[str, Any]:
    spec = {"tableRef": {"name": SOURCE}, "vaultRef": {"name": "primary"}, "recoveryPeriodInDays": 7}
    return resource_body("PitrConfig", SOURCE, spec)


async def restorable_after(harness: OperatorHarness, moment: datetime) -> None:
    """Wait until the PitrConfig's status says the archive goes past ``moment`` (its times are whole
    seconds: a later second)."""

    async def past() -> bool:
        status = ((await harness.get("pitrconfigs", SOURCE)) or {}).get("status") or {}
        latest = status.get("latestRestorableTime")
        return latest is not None and str(latest) > format_time(moment)

    await harness.wait_for(f"PITR past {format_time(moment)}", past)


# --- the story ------------------------------------------------------------------------------------


async def test_a_table_is_backed_up_protected_restored_and_revived_after_deletion(
    harness: OperatorHarness, tmp_path: Path
) -> None:
    # A vault, Ready, and a Table on it, Active once its engine (started in place of the pod) has it.
    vault = await table_on_vault(harness, tmp_path, FROM_BACKUP, AT_MIDPOINT, REVIVED, plurals=PLURALS)
    await harness.wait_for_status("backupvaults", "primary", phase="Ready", Ready=("True", "VaultReady"))
    await event_posted(harness, "BackupVault", "primary", "Normal", "VaultReady")
    source_arn = (await harness.wait_for_status("tables", SOURCE, phase="Active", Ready="True"))["tableArn"]
    await event_posted(harness, "Table", SOURCE, "Normal", "Active")
    assert await contents(harness, SOURCE) == PHASE_A

    # An on-demand Backup.
    await harness.create("backups", backup_body("orders-first"))
    backup = await harness.wait_for_status("backups", "orders-first", phase="Available",
                                           Ready=("True", "BackupAvailable"))  # fmt: skip
    assert (backup["backupStatus"], backup["itemCount"], backup["tableArn"]) == ("AVAILABLE", 3, source_arn)
    await event_posted(harness, "Backup", "orders-first", "Normal", "BackupAvailable")

    # A plan selecting the table by a label, asked to run now: a child Backup of the deterministic name,
    # the plan's, without the plan's labels.
    await harness.patch("tables", SOURCE, {"metadata": {"labels": {"tier": "gold"}}})
    await harness.create("backupplans", plan_body())
    child = await harness.wait_for_status("backups", PLAN_CHILD, phase="Available", Ready="True")
    assert child["itemCount"] == 3 and child["plan"] == {"name": "protect", "rule": "daily"}
    child_object = await harness.get("backups", PLAN_CHILD)
    plan = await harness.get("backupplans", "protect")
    assert child_object is not None and plan is not None
    assert child_object["metadata"]["labels"] == child_labels("protect", "daily", SOURCE)  # no tier=gold
    (owner,) = child_object["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("BackupPlan", "protect", plan["metadata"]["uid"])
    plan_status = await harness.wait_for_status("backupplans", "protect", phase="Active", handledRunNow=TOKEN)
    assert plan_status["nextRunTime"] is not None
    await event_posted(harness, "BackupPlan", "protect", "Normal", "BackupCreated")
    assert catalogue(vault) == {backup["backupId"]: "USER", child["backupId"]: "USER"}

    # PITR on: ready, with a restorable window.
    await harness.create("pitrconfigs", pitr_body())
    pitr = await harness.wait_for_status("pitrconfigs", SOURCE, phase="Enabled",
                                         PITRReady=("True", "ArchiveCurrent"))  # fmt: skip
    assert pitr["earliestRestorableTime"] <= pitr["latestRestorableTime"]
    await event_posted(harness, "PitrConfig", SOURCE, "Normal", "ArchiveCurrent")

    # More writes, in two phases with a moment between them to go back to.
    await write(harness, SOURCE, PHASE_A, PHASE_B)
    await asyncio.sleep(0.1)
    midpoint = datetime.now(UTC)
    await asyncio.sleep(0.1)
    await write(harness, SOURCE, PHASE_B, PHASE_C)
    assert await contents(harness, SOURCE) == PHASE_C
    await restorable_after(harness, midpoint)

    # Restores from the Backup and from the moment between the phases: each a new Table, whose engine the
    # test starts (all at once, as pods would start).  They need only the vault: meanwhile the source
    # Table is deleted, and then brought back from its archive as well.
    backup_source = {"backupRef": {"name": "orders-first"}}
    then = {"tableName": SOURCE, "vaultRef": {"name": "primary"}, "restoreDateTime": midpoint.isoformat()}
    latest = {"tableArn": source_arn, "vaultRef": {"name": "primary"}, "useLatestRestorableTime": True}
    async with asyncio.TaskGroup() as restores:
        await harness.create("restores", restore_body(FROM_BACKUP, backup_source, FROM_BACKUP))
        await harness.create("restores", restore_body(AT_MIDPOINT, {"pointInTime": then}, AT_MIDPOINT))
        tasks = [
            restores.create_task(restored(harness, vault, name, name)) for name in (FROM_BACKUP, AT_MIDPOINT)
        ]

        # Deleting the Table: its engine objects go; its Backups, the vault's backups and archive stay.
        await harness.delete("tables", SOURCE)
        await harness.gone("tables", SOURCE)
        await harness.wait_for("the deletion in the vault", lambda: deletion_recorded(vault))
        # The deleted table back from its archive, named by its ARN: as it was when deleted.
        await harness.create("restores", restore_body(REVIVED, {"pointInTime": latest}, REVIVED))
        tasks.append(restores.create_task(restored(harness, vault, REVIVED, REVIVED)))

        await asyncio.to_thread(harness.engines.pop(SOURCE).stop)  # the StatefulSet went, so would its pod
        engine_objects = [("statefulsets", "orders-engine"), ("services", "orders-engine"),
                          ("services", "orders-engine-headless"),
                          ("secrets", "orders-credentials")]  # fmt: skip
        for plural, name in engine_objects:
            assert await harness.get(plural, name) is None, f"{plural}/{name}"
        for name in ("orders-first", PLAN_CHILD):
            kept = await harness.get("backups", name)
            assert kept is not None and kept["status"]["phase"] == "Available", name
        kept_in_vault = catalogue(vault)
        user_backups = {backup_id for backup_id, kind in kept_in_vault.items() if kind == "USER"}
        assert user_backups == {backup["backupId"], child["backupId"]}
        assert "PITR" in kept_in_vault.values()  # the archive's base, which the restores read

    from_backup, at_midpoint, revived = (task.result() for task in tasks)
    assert from_backup["source"] == {"type": "Backup", "vault": "primary", "backupId": backup["backupId"],
                                     "backupArn": backup["backupArn"]}  # fmt: skip
    assert (from_backup["itemsRestored"], from_backup["progress"]) == (3, 100)
    assert await contents(harness, FROM_BACKUP) == PHASE_A  # as backed up
    assert at_midpoint["source"]["type"] == "PointInTime"
    to_the_ms = midpoint.replace(microsecond=midpoint.microsecond // 1000 * 1000)
    assert datetime.fromisoformat(at_midpoint["source"]["restoreDateTime"]) == to_the_ms
    assert await contents(harness, AT_MIDPOINT) == PHASE_B  # as it was between the phases
    assert revived["source"]["type"] == "PointInTime"
    assert datetime.fromisoformat(revived["source"]["restoreDateTime"]) > midpoint
    assert await contents(harness, REVIVED) == PHASE_C  # as it was when deleted
    for restore, status in ((FROM_BACKUP, from_backup), (AT_MIDPOINT, at_midpoint), (REVIVED, revived)):
        assert condition(status, "Ready") == ("True", "RestoreCompleted"), restore
        assert condition(status, "Degraded")[0] == "False", restore
        await event_posted(harness, "Restore", restore, "Normal", "RestoreCompleted")
        target = await harness.get("tables", restore)
        assert target is not None and target["status"]["phase"] == "Active", restore
