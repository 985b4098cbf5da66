"""Restore: exactly one source, exactly one table and one moment for a point in time, valid overrides."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tablekeeper.resources import RestoreSourceType, RestoreSpec

VAULT = {"name": "primary"}
BACKUP_REF = {"backupRef": {"name": "orders-nightly"}}
VAULT_BACKUP = {"vaultBackup": {"vaultRef": VAULT, "backupId": "01J9ZV6K3Q"}}
POINT_IN_TIME = {"pointInTime": {"tableName": "Orders", "vaultRef": VAULT, "useLatestRestorableTime": True}}
TARGET = {"tableName": "Orders-restored"}


def restore(source: dict[str, Any], target: dict[str, Any] | None = None) -> RestoreSpec:
    return RestoreSpec.model_validate({"source": source, "target": target or TARGET})


def refusal(source: dict[str, Any], target: dict[str, Any] | None = None) -> str:
    with pytest.raises(ValidationError) as caught:
        restore(source, target)
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "type_"),
    [
        (BACKUP_REF, RestoreSourceType.BACKUP),
        (VAULT_BACKUP, RestoreSourceType.VAULT_BACKUP),
        (POINT_IN_TIME, RestoreSourceType.POINT_IN_TIME),
    ],
)
def test_each_single_source_is_accepted_and_named(source: dict[str, Any], type_: RestoreSourceType) -> None:
    assert restore(source).source.type is type_


@pytest.mark.parametrize(
    "source",
    [{**BACKUP_REF, **VAULT_BACKUP}, {**BACKUP_REF, **POINT_IN_TIME}, {**VAULT_BACKUP, **POINT_IN_TIME}, {}],
)
def test_two_sources_or_none_are_refused(source: dict[str, Any]) -> None:
    assert "source needs exactly one of backupRef, vaultBackup and pointInTime" in refusal(source)


@pytest.mark.parametrize(
    "ids", [{}, {"backupId": "x", "backupArn": "arn:aws:dynamodb:us-east-1:1:table/T/backup/x"}]
)
def test_a_vault_backup_needs_exactly_one_of_id_and_arn(ids: dict[str, str]) -> None:
    message = refusal({"vaultBackup": {"vaultRef": VAULT, **ids}})
    assert "vaultBackup needs exactly one of backupId and backupArn" in message


def test_a_backup_arn_must_look_like_a_dynamodb_arn() -> None:
    assert "backupArn" in refusal({"vaultBackup": {"vaultRef": VAULT, "backupArn": "s3://bucket/backup"}})


@pytest.mark.parametrize(
    "moment",
    [
        {},
        {"useLatestRestorableTime": False},
        {"restoreDateTime": "2025-11-20T14:05:00Z", "useLatestRestorableTime": True},
    ],
)
def test_a_point_in_time_needs_exactly_one_moment(moment: dict[str, Any]) -> None:
    source = {"pointInTime": {"tableName": "Orders", "vaultRef": VAULT, **moment}}
    assert "pointInTime needs exactly one of restoreDateTime and useLatestRestorableTime: true" in refusal(
        source
    )


def test_a_point_in_time_needs_exactly_one_of_table_name_and_arn() -> None:
    source = {"pointInTime": {"vaultRef": VAULT, "useLatestRestorableTime": True}}
    assert "pointInTime needs exactly one of tableName and tableArn" in refusal(source)


def test_a_point_in_time_of_a_table_known_by_arn_is_accepted() -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/Orders"
    source = {"pointInTime": {"tableArn": arn, "vaultRef": VAULT, "restoreDateTime": "2025-11-20T14:05:00Z"}}
    point = restore(source).source.point_in_time
    assert point is not None and point.table_arn == arn and point.restore_date_time is not None


def test_a_bad_target_table_name_is_refused() -> None:
    assert "target.tableName" in refusal(BACKUP_REF, {"tableName": "no spaces allowed"})


def test_throughput_override_with_on_demand_billing_is_refused() -> None:
    target = {**TARGET, "billingModeOverride": "PAY_PER_REQUEST",
              "provisionedThroughputOverride": {"readCapacityUnits": 1, "writeCapacityUnits": 1}}  # fmt: skip
    assert "provisionedThroughputOverride is refused with billingModeOverride PAY_PER_REQUEST" in refusal(
        BACKUP_REF, target
    )


def test_an_empty_gsi_override_means_no_indexes() -> None:
    spec = restore(BACKUP_REF, {**TARGET, "globalSecondaryIndexOverride": []})
    assert spec.target.global_secondary_index_override == ()
    assert restore(BACKUP_REF).target.global_secondary_index_override is None


def test_the_restore_spec_is_frozen() -> None:
    spec = restore(BACKUP_REF)
    with pytest.raises(ValidationError, match="frozen"):
        spec.target = spec.target  # type: ignore[misc]


def test_any_change_to_a_restore_is_refused() -> None:
    old = restore(BACKUP_REF)
    assert restore(VAULT_BACKUP).refused_changes(old) == ["source is immutable"]
    assert restore(BACKUP_REF, {"tableName": "Other"}).refused_changes(old) == ["target is immutable"]
    assert restore(BACKUP_REF).refused_changes(old) == []


def test_a_restore_time_without_a_time_zone_is_refused() -> None:
    naive = "2025-11-20T14:05:00"
    source = {"pointInTime": {"tableName": "Orders", "vaultRef": VAULT, "restoreDateTime": naive}}
    assert "timezone" in refusal(source).lower()
