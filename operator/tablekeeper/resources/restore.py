"""Restore: a new table from a backup or from a point in time.

The source is exactly one of: a Backup object (``backupRef``), a backup
found in a vault by id or ARN (``vaultBackup``; also one whose Backup object
or table is gone, also from another cluster's vault), or a moment of a
table's archived change log (``pointInTime``; also of a deleted table).
The target is a new table with the overrides DynamoDB's restore calls take.
The whole spec is immutable: a restore is a one-off act (CEL refuses
changes; the "exactly one" rules are checked by CEL and pydantic alike).

sseSpecificationOverride is accepted for DynamoDB compatibility and
recorded; encryption at rest of an engine's volume is its storage class's
job, and every vault object is encrypted regardless.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from tablekeeper.resources.common import (
    ColumnType,
    LocalObjectReference,
    Model,
    PrinterColumn,
    Resource,
    ResourceKind,
    Status,
    StatusModel,
    cel,
    list_map,
    unique_by,
    validations,
)
from tablekeeper.resources.table import (
    MAX_GSIS,
    MAX_LSIS,
    BillingMode,
    GlobalSecondaryIndex,
    LocalSecondaryIndex,
    ProvisionedThroughput,
    TableName,
)

ARN_PATTERN = r"^arn:[a-z0-9-]+:dynamodb:"

_ONE_BACKUP = "vaultBackup needs exactly one of backupId and backupArn"
_ONE_TABLE = "pointInTime needs exactly one of tableName and tableArn"
_ONE_TIME = "pointInTime needs exactly one of restoreDateTime and useLatestRestorableTime: true"
_ONE_SOURCE = "source needs exactly one of backupRef, vaultBackup and pointInTime"
_THROUGHPUT_NEEDS_PROVISIONED = (
    "provisionedThroughputOverride is refused with billingModeOverride PAY_PER_REQUEST"
)


class VaultBackupSource(Model):
    """A backup found in a vault by its id or ARN."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("has(self.backupId) != has(self.backupArn)", _ONE_BACKUP))
    )

    vault_ref: LocalObjectReference
    """The BackupVault (in this namespace) holding the backup."""
    backup_id: str | None = Field(default=None, min_length=1, max_length=255)
    """The backup's id in the vault."""
    backup_arn: str | None = Field(default=None, max_length=1024, pattern=ARN_PATTERN)
    """The backup's ARN."""

    @model_validator(mode="after")
    def _one_backup(self) -> Self:
        if (self.backup_id is None) == (self.backup_arn is None):
            raise ValueError(_ONE_BACKUP)
        return self


class PointInTimeSource(Model):
    """A moment of a table's archived change log (the table may since have been deleted)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.tableName) != has(self.tableArn)", _ONE_TABLE),
            cel(
                "has(self.restoreDateTime)"
                " != (has(self.useLatestRestorableTime) && self.useLatestRestorableTime)",
                _ONE_TIME,
            ),
        )
    )

    table_name: TableName | None = None
    """The source table's DynamoDB name."""
    table_arn: str | None = Field(default=None, max_length=1024, pattern=ARN_PATTERN)
    """The source table's ARN (tells apart tables that had the same name)."""
    vault_ref: LocalObjectReference
    """The BackupVault (in this namespace) holding the table's archived change log."""
    restore_date_time: AwareDatetime | None = None
    """The moment to restore to (RFC 3339), within the restorable window."""
    use_latest_restorable_time: bool | None = None
    """true: restore to the latest restorable moment instead of restoreDateTime."""

    @model_validator(mode="after")
    def _one_table_one_time(self) -> Self:
        if (self.table_name is None) == (self.table_arn is None):
            raise ValueError(_ONE_TABLE)
        if (self.restore_date_time is not None) == bool(self.use_latest_restorable_time):
            raise ValueError(_ONE_TIME)
        return self


class RestoreSourceType(StrEnum):
    """Which kind of source a restore reads."""

    BACKUP = "Backup"
    VAULT_BACKUP = "VaultBackup"
    POINT_IN_TIME = "PointInTime"


class RestoreSource(Model):
    """What to restore from: exactly one of backupRef, vaultBackup and pointInTime."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.backupRef) ? 1 : 0) + (has(self.vaultBackup) ? 1 : 0)"
                " + (has(self.pointInTime) ? 1 : 0) == 1",
                _ONE_SOURCE,
            )
        )
    )

    backup_ref: LocalObjectReference | None = None
    """A Backup object in this namespace."""
    vault_backup: VaultBackupSource | None = None
    """A backup in a vault, by id or ARN."""
    point_in_time: PointInTimeSource | None = None
    """A moment of a table's archived change log."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [s for s in (self.backup_ref, self.vault_backup, self.point_in_time) if s is not None]
        if len(given) != 1:
            raise ValueError(_ONE_SOURCE)
        return self

    @property
    def type(self) -> RestoreSourceType:
        """Which of the three sources this is."""
        if self.backup_ref is not None:
            return RestoreSourceType.BACKUP
        if self.vault_backup is not None:
            return RestoreSourceType.VAULT_BACKUP
        return RestoreSourceType.POINT_IN_TIME


class SseType(StrEnum):
    """The server-side encryption type: AES256 or KMS."""

    AES256 = "AES256"
    KMS = "KMS"


class SseSpecification(Model):
    """Server-side encryption settings, as DynamoDB's SSESpecification."""

    enabled: bool = True
    """Whether server-side encryption is on."""
    sse_type: SseType | None = None
    """AES256 or KMS."""
    kms_master_key_id: str | None = Field(default=None, max_length=2048)
    """The KMS key, with sseType KMS."""


class RestoreTarget(Model):
    """The new table: its name and what differs from the source's definition."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.billingModeOverride) && self.billingModeOverride == 'PAY_PER_REQUEST'"
                " && has(self.provisionedThroughputOverride))",
                _THROUGHPUT_NEEDS_PROVISIONED,
            )
        )
    )

    table_name: TableName
    """The new table's DynamoDB name; no table of that name may exist."""
    billing_mode_override: BillingMode | None = None
    """The new table's billing mode, instead of the source's."""
    provisioned_throughput_override: ProvisionedThroughput | None = None
    """The new table's capacity, instead of the source's."""
    global_secondary_index_override: tuple[GlobalSecondaryIndex, ...] | None = Field(
        default=None, max_length=MAX_GSIS, json_schema_extra=list_map("indexName")
    )
    """The new table's global secondary indexes, instead of the source's (an empty list: none)."""
    local_secondary_index_override: tuple[LocalSecondaryIndex, ...] | None = Field(
        default=None, max_length=MAX_LSIS, json_schema_extra=list_map("indexName")
    )
    """The new table's local secondary indexes, instead of the source's (an empty list: none)."""
    sse_specification_override: SseSpecification | None = None
    """Server-side encryption settings, instead of the source's."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.billing_mode_override is BillingMode.PAY_PER_REQUEST and self.provisioned_throughput_override:
            raise ValueError(_THROUGHPUT_NEEDS_PROVISIONED)
        unique_by(self.global_secondary_index_override or (), "index_name", "globalSecondaryIndexOverride")
        unique_by(self.local_secondary_index_override or (), "index_name", "localSecondaryIndexOverride")
        return self


class RestoreSpec(Model):
    """Where to restore from and to. Immutable."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self == oldSelf", "a Restore's spec is immutable: create another Restore")
        )
    )

    IMMUTABLE = ("source", "target")

    source: RestoreSource
    """What to restore from: exactly one of backupRef, vaultBackup and pointInTime."""
    target: RestoreTarget
    """The new table."""


class RestorePhase(StrEnum):
    """The restore's short state, for kubectl get."""

    PENDING = "Pending"
    RESTORING = "Restoring"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ChosenSource(StatusModel):
    """The source the restore resolved to."""

    type: RestoreSourceType
    """Backup, VaultBackup or PointInTime."""
    vault: str | None = None
    """The BackupVault read from."""
    backup_id: str | None = None
    """The backup restored, when restoring a backup."""
    backup_arn: str | None = None
    """The ARN of the backup restored, when restoring a backup."""
    restore_date_time: AwareDatetime | None = None
    """The moment restored to, when restoring a point in time (useLatestRestorableTime resolved)."""


class RestoreStatus(Status):
    """The restore's progress."""

    phase: RestorePhase | None = None
    """Pending, Restoring, Completed or Failed."""
    source: ChosenSource | None = None
    """The source the restore resolved to."""
    target_table_arn: str | None = None
    """The new table's ARN."""
    items_restored: int | None = Field(default=None, ge=0)
    """How many items have been written to the new table."""
    progress: int | None = Field(default=None, ge=0, le=100)
    """Percent done, 0 to 100."""
    started_at: AwareDatetime | None = None
    """When the restore started."""
    completed_at: AwareDatetime | None = None
    """When the restore completed or failed."""


class Restore(Resource):
    """A new table from a backup or from a point in time."""

    kind: Literal["Restore"] = "Restore"
    spec: RestoreSpec
    status: RestoreStatus | None = None


RESTORE = ResourceKind(
    model=Restore,
    spec=RestoreSpec,
    status=RestoreStatus,
    plural="restores",
    short_names=("tkr",),
    columns=(
        PrinterColumn("Target", ".spec.target.tableName", description="The new table's name"),
        PrinterColumn("Progress", ".status.progress", ColumnType.INTEGER, "Percent done"),
        PrinterColumn("Source", ".status.source.type", description="The kind of source", priority=1),
        PrinterColumn("Items", ".status.itemsRestored", ColumnType.INTEGER, "Items restored", priority=1),
    ),
)
