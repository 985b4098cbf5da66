"""Backup: one on-demand backup of a table into a vault.

What is backed up and where is fixed once the object exists (tableRef,
vaultRef and backupName: CEL refuses a change).  deletionPolicy stays
mutable on purpose: switching it to Retain just before deleting the object
is what the field is for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

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
    validations,
)

BACKUP_NAME_PATTERN = r"^[a-zA-Z0-9_.-]+$"


class DeletionPolicy(StrEnum):
    """What deleting the object does to the backup in the vault: Delete it, or Retain it."""

    DELETE = "Delete"
    RETAIN = "Retain"


class BackupSpec(Model):
    """Which table to back up, into which vault, and what happens to the backup when this object goes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.tableRef == oldSelf.tableRef && self.vaultRef == oldSelf.vaultRef"
                " && has(self.backupName) == has(oldSelf.backupName)"
                " && (!has(self.backupName) || self.backupName == oldSelf.backupName)",
                "tableRef, vaultRef and backupName are immutable: create another Backup",
            )
        )
    )

    IMMUTABLE = ("table_ref", "vault_ref", "backup_name")

    table_ref: LocalObjectReference
    """The Table (in this namespace) to back up. Immutable."""
    vault_ref: LocalObjectReference
    """The BackupVault (in this namespace) to write the backup into. Immutable."""
    backup_name: str | None = Field(default=None, min_length=3, max_length=255, pattern=BACKUP_NAME_PATTERN)
    """The backup's name in the vault (DynamoDB's BackupName); metadata.name when left out. Immutable."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """Delete (the default) removes the backup from the vault when this object is deleted; Retain keeps it."""


class BackupPhase(StrEnum):
    """The backup's short state, for kubectl get."""

    PENDING = "Pending"
    CREATING = "Creating"
    AVAILABLE = "Available"
    DELETING = "Deleting"
    FAILED = "Failed"


class BackupState(StrEnum):
    """The backup's status as DescribeBackup reports it."""

    CREATING = "CREATING"
    AVAILABLE = "AVAILABLE"
    DELETED = "DELETED"
    FAILED = "FAILED"


class PlanInfo(StatusModel):
    """The BackupPlan rule that made this backup."""

    name: str
    """The BackupPlan's name."""
    rule: str
    """The rule's name within the plan."""


class BackupStatus(Status):
    """The backup as the operator last saw it."""

    phase: BackupPhase | None = None
    """Pending, Creating, Available, Deleting or Failed."""
    backup_id: str | None = None
    """The backup's id in the vault."""
    backup_arn: str | None = None
    """The backup's ARN, as RestoreTableFromBackup takes it."""
    backup_status: BackupState | None = None
    """CREATING, AVAILABLE, DELETED or FAILED."""
    table_arn: str | None = None
    """The ARN of the table that was backed up."""
    size_bytes: int | None = Field(default=None, ge=0)
    """The backup's size in bytes."""
    item_count: int | None = Field(default=None, ge=0)
    """How many items the backup holds."""
    started_at: AwareDatetime | None = None
    """When the backup started; its snapshot is of this moment."""
    completed_at: AwareDatetime | None = None
    """When the backup became AVAILABLE (or FAILED)."""
    expires_at: AwareDatetime | None = None
    """When the backup is deleted by its plan's lifecycle; none for an on-demand backup."""
    plan: PlanInfo | None = None
    """The BackupPlan rule that made this backup; none for an on-demand backup."""


class Backup(Resource):
    """One on-demand backup of a table into a vault."""

    kind: Literal["Backup"] = "Backup"
    spec: BackupSpec
    status: BackupStatus | None = None


BACKUP = ResourceKind(
    model=Backup,
    spec=BackupSpec,
    status=BackupStatus,
    plural="backups",
    short_names=("tkb",),
    columns=(
        PrinterColumn("Table", ".spec.tableRef.name", description="The backed-up Table"),
        PrinterColumn("Vault", ".spec.vaultRef.name", description="The vault holding the backup"),
        PrinterColumn("Size", ".status.sizeBytes", ColumnType.INTEGER, "The backup's size in bytes"),
        PrinterColumn("Items", ".status.itemCount", ColumnType.INTEGER, "Items in the backup", priority=1),
        PrinterColumn(
            "Backup-ID", ".status.backupId", description="The backup's id in the vault", priority=1
        ),
    ),
)
