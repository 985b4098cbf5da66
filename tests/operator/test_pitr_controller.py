"""The PitrConfig controller: point-in-time recovery turned on and off in the table's engine, and the
restorable window and its lag in the status.

End to end against the fake Kubernetes API and real engine processes (see conftest.py); the decisions
themselves without either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest

from tablekeeper.controllers.engine_client import EnginePitr
from tablekeeper.controllers.pitr import (
    PitrOutcome,
    holder,
    needs_update,
    pitr_status_after,
    timer_may_refresh,
    turned_on,
    window,
)
from tablekeeper.controllers.verdicts import Reporter
from tablekeeper.resources.pitr import PitrConfigSpec, PitrConfigStatus
from tests.operator.conftest import (
    FolderVault,
    OperatorHarness,
    VersionedEmulator,
    deletion_recorded,
    resource_body,
    table_on_vault,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ON = PitrConfigSpec.model_validate({"tableRef": {"name": "orders"}, "vaultRef": {"name": "primary"},
                                    "recoveryPeriodInDays": 7})  # fmt: skip
OFF = ON.model_copy(update={"enabled": False})


def engine(enabled: bool = True, latest: datetime | None = T0, period: int | None = 7) -> EnginePitr:
    earliest = None if latest is None else latest - timedelta(hours=1)
    return EnginePitr(enabled, period, earliest, latest)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


# --- decisions (pure) -----------------------------------------------------------------------------


def test_a_current_archive_is_pitr_ready_with_its_window_and_lag() -> None:
    found = window(ON, engine(), T0 + timedelta(seconds=2))
    assert (found.outcome, found.ready.status, found.ready.reason) == (
        PitrOutcome.ENABLED,
        "True",
        "ArchiveCurrent",
    )
    assert found.fields == {"earliestRestorableTime": "2026-03-01T11:00:00Z",
                            "latestRestorableTime": "2026-03-01T12:00:00Z", "lagSeconds": 2.0}  # fmt: skip


def test_an_archive_more_than_a_minute_behind_is_lagging_but_still_enabled() -> None:
    found = window(ON, engine(), T0 + timedelta(seconds=61))
    assert (found.outcome, found.ready.status, found.ready.reason) == (
        PitrOutcome.ENABLED,
        "False",
        "ArchiveLagging",
    )
    assert found.ready.message.startswith("the archive is 61s behind the table (more than 60s)")


def test_pitr_without_a_window_yet_is_enabling() -> None:
    found = window(ON, engine(latest=None), T0)
    assert (found.outcome, found.ready.reason, found.fields["lagSeconds"]) == (
        PitrOutcome.ENABLING,
        "Enabling",
        None,
    )


def test_pitr_off_in_the_engine_while_the_spec_has_it_on_is_not_ready() -> None:
    found = window(ON, engine(enabled=False, latest=None), T0)
    assert (found.outcome, found.ready.status, found.ready.reason) == (
        PitrOutcome.OFF_IN_ENGINE, "False", "PitrOffInEngine")  # fmt: skip
    status, _ = pitr_status_after(found.outcome, found.message, {}, 1, T0, found)
    assert status["phase"] == "Disabled" and conditions(status)["Degraded"] == ("True", "PitrOffInEngine")


def test_pitr_turned_off_by_the_spec_is_disabled_and_ready() -> None:
    found = window(OFF, engine(enabled=False, latest=None), T0)
    status, _ = pitr_status_after(found.outcome, found.message, {}, 2, T0, found)
    assert status["phase"] == "Disabled"
    assert conditions(status)["Ready"] == ("True", "PitrDisabled")
    assert conditions(status)["PITRReady"] == ("False", "Disabled")
    assert status["latestRestorableTime"] is None and status["lagSeconds"] is None  # cleared
    PitrConfigStatus.model_validate(status)


def test_pitr_ready_turning_false_is_one_transition_posted_as_a_warning() -> None:
    current = window(ON, engine(), T0)
    ready, _ = pitr_status_after(current.outcome, current.message, {}, 1, T0, current)
    lagging = window(ON, engine(), T0 + timedelta(minutes=5))
    status, changes = pitr_status_after(lagging.outcome, lagging.message, ready, 1, T0, lagging)
    assert [(t.type, t.new_status, t.reason) for t in changes] == [("PITRReady", "False", "ArchiveLagging")]
    reporter = Reporter("PitrConfig", kopf.Body({"metadata": {}}), kopf.Patch(), PitrConfigStatus, None,
                        readiness=frozenset({"PITRReady"}))  # fmt: skip
    assert reporter.event_type(changes[0]) == "Warning"
    assert status["phase"] == "Enabled" and status["lagSeconds"] == 300.0


def test_the_engine_is_changed_only_where_it_differs_from_the_spec() -> None:
    assert not needs_update(ON, engine())
    assert needs_update(ON, engine(period=35))
    assert needs_update(ON, engine(enabled=False))
    assert not needs_update(OFF, engine(enabled=False, period=None))
    assert needs_update(OFF, engine())


def test_the_timer_refreshes_only_pitr_that_is_or_should_be_on() -> None:
    def after(outcome: PitrOutcome, phase: str) -> dict[str, Any]:
        status, _ = pitr_status_after(outcome, "x", {"phase": phase}, 1, T0)
        return status

    assert timer_may_refresh(after(PitrOutcome.ENABLED, "Enabled"))
    assert timer_may_refresh(after(PitrOutcome.ENABLING, "Pending"))
    assert timer_may_refresh(after(PitrOutcome.OFF_IN_ENGINE, "Enabled"))
    assert not timer_may_refresh(after(PitrOutcome.DISABLED, "Disabled"))
    assert not timer_may_refresh(after(PitrOutcome.VAULT_MISMATCH, "Pending"))
    assert not timer_may_refresh({})
    assert turned_on({"phase": "Enabled"}) and not turned_on({"phase": "Failed"})


def config_object(name: str, table: str, created: str, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2026-03-02T00:00:00Z"
    return {"metadata": metadata, "spec": {"tableRef": {"name": table}}}


def test_the_oldest_pitr_config_of_a_table_holds_it_and_a_deleted_one_lets_go() -> None:
    configs = [
        config_object("second", "orders", "2026-03-01T10:00:00Z"),
        config_object("first", "orders", "2026-03-01T09:00:00Z"),
        config_object("other", "invoices", "2026-03-01T08:00:00Z"),
    ]
    assert holder(configs, "orders") == "first"
    assert holder(configs, "invoices") == "other"
    assert holder(configs, "refunds") is None
    configs[1] = config_object("first", "orders", "2026-03-01T09:00:00Z", deleting=True)
    assert holder(configs, "orders") == "second"
    # The same second: the name decides, so every pass of every PitrConfig agrees.
    same = "2026-03-01T09:00:00Z"
    tied = [config_object("b", "orders", same), config_object("a", "orders", same)]
    assert holder(tied, "orders") == "a"


# --- end to end -----------------------------------------------------------------------------------


def pitr_body(enabled: bool = True, vault: str = "primary") -> dict[str, Any]:
    spec = {
        "tableRef": {"name": "orders"},
        "enabled": enabled,
        "recoveryPeriodInDays": 7,
        "vaultRef": {"name": vault},
    }
    return resource_body("PitrConfig", "orders", spec)


async def engine_pitr(harness: OperatorHarness) -> dict[str, Any]:
    answer = await harness.call("orders", "describe_continuous_backups", TableName="orders")
    return answer["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]  # type: ignore[no-any-return]


async def enabled_pitr(harness: OperatorHarness, tmp_path: Path) -> tuple[FolderVault, dict[str, Any]]:
    vault = await table_on_vault(harness, tmp_path)
    await harness.create("pitrconfigs", pitr_body())
    status = await harness.wait_for_status("pitrconfigs", "orders", phase="Enabled", PITRReady="True")
    return vault, status


class TestEndToEnd:
    pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90), pytest.mark.kmock(cls=VersionedEmulator)]

    async def test_a_pitr_config_turns_pitr_on_and_shows_the_window(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault, status = await enabled_pitr(harness, tmp_path)
        described = await engine_pitr(harness)
        assert (described["PointInTimeRecoveryStatus"], described["RecoveryPeriodInDays"]) == ("ENABLED", 7)
        assert status["earliestRestorableTime"] <= status["latestRestorableTime"]
        assert 0 <= status["lagSeconds"] <= 60
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        assert any(vault.folder.rglob("*")), "the archive is in the Table's vault"
        assert await harness.posted("Normal", "ArchiveCurrent")

    async def test_disabling_turns_pitr_off_in_the_engine(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await enabled_pitr(harness, tmp_path)
        await harness.patch(
            "pitrconfigs", "orders", {"spec": {"enabled": False}, "metadata": {"generation": 2}}
        )
        status = await harness.wait_for_status("pitrconfigs", "orders", phase="Disabled",
                                               PITRReady=("False", "Disabled"))  # fmt: skip
        assert status["observedGeneration"] == 2
        assert (await engine_pitr(harness))["PointInTimeRecoveryStatus"] == "DISABLED"

    async def test_deleting_the_pitr_config_turns_pitr_off(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await enabled_pitr(harness, tmp_path)
        await harness.delete("pitrconfigs", "orders")
        await harness.gone("pitrconfigs", "orders")
        assert (await engine_pitr(harness))["PointInTimeRecoveryStatus"] == "DISABLED"

    async def test_a_second_pitr_config_for_the_same_table_is_refused_and_takes_over_later(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await enabled_pitr(harness, tmp_path)
        second = resource_body("PitrConfig", "orders-again", {
            "tableRef": {"name": "orders"}, "enabled": True, "recoveryPeriodInDays": 3,
            "vaultRef": {"name": "primary"}}, created=datetime.now(UTC) + timedelta(days=1))  # fmt: skip
        await harness.create("pitrconfigs", second)
        status = await harness.wait_for_status("pitrconfigs", "orders-again", phase="Failed",
                                               Degraded=("True", "TableClaimed"))  # fmt: skip
        message = next(c["message"] for c in status["conditions"] if c["type"] == "Degraded")
        assert "PitrConfig orders: one PitrConfig per table" in message
        assert (await engine_pitr(harness))["RecoveryPeriodInDays"] == 7, "the holder's period stays"
        await harness.delete("pitrconfigs", "orders")
        await harness.gone("pitrconfigs", "orders")
        await harness.wait_for_status("pitrconfigs", "orders-again", phase="Enabled", PITRReady="True")
        assert (await engine_pitr(harness))["RecoveryPeriodInDays"] == 3

    async def test_a_deletion_that_runs_again_after_the_table_was_handed_over_leaves_pitr_on(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await enabled_pitr(harness, tmp_path)
        holder = await harness.get("pitrconfigs", "orders")
        assert holder is not None and holder["metadata"].get("finalizers")
        second = resource_body("PitrConfig", "orders-again", {
            "tableRef": {"name": "orders"}, "enabled": True, "recoveryPeriodInDays": 3,
            "vaultRef": {"name": "primary"}}, created=datetime.now(UTC) + timedelta(days=1))  # fmt: skip
        await harness.create("pitrconfigs", second)
        await harness.wait_for_status("pitrconfigs", "orders-again", phase="Failed",
                                      Degraded=("True", "TableClaimed"))  # fmt: skip
        await harness.delete("pitrconfigs", "orders")
        await harness.gone("pitrconfigs", "orders")
        await harness.wait_for_status("pitrconfigs", "orders-again", phase="Enabled", PITRReady="True")
        # kopf runs a deletion at least once: a stale body of the deleted holder (a watch replay) runs
        # its handler again, after the new holder has turned PITR on with its own period.
        holder["metadata"]["deletionTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await harness.create("pitrconfigs", holder)
        await harness.gone("pitrconfigs", "orders")
        described = await engine_pitr(harness)
        seen = (described["PointInTimeRecoveryStatus"], described.get("RecoveryPeriodInDays"))
        assert seen == ("ENABLED", 3), "the new holder's setting stays"
        await harness.wait_for_status("pitrconfigs", "orders-again", phase="Enabled", PITRReady="True")

    async def test_deleting_a_pitr_table_keeps_its_engine_until_its_last_writes_are_archived(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault, _ = await enabled_pitr(harness, tmp_path)
        await harness.call("orders", "put_item", TableName="orders", Item={"pk": {"S": "last"}})
        await harness.delete("tables", "orders")
        await harness.gone("statefulsets", "orders-engine")
        # Only then may the engine stop: its archive already ends with the deletion.
        assert await deletion_recorded(vault)

    async def test_pitr_into_another_vault_is_refused(self, harness: OperatorHarness, tmp_path: Path) -> None:
        await table_on_vault(harness, tmp_path)
        await harness.create("pitrconfigs", pitr_body(vault="cold"))
        status = await harness.wait_for_status("pitrconfigs", "orders", phase="Failed",
                                               Degraded=("True", "VaultMismatch"))  # fmt: skip
        message = next(c["message"] for c in status["conditions"] if c["type"] == "Degraded")
        assert message.startswith("Table orders keeps its PITR archive in BackupVault primary")
        assert (await engine_pitr(harness))["PointInTimeRecoveryStatus"] == "DISABLED"
        # Deleting a PitrConfig that never turned PITR on leaves the engine alone.
        await harness.delete("pitrconfigs", "orders")
        await harness.gone("pitrconfigs", "orders")
