"""PitrConfig: continuous backups (point-in-time recovery) of one table into a vault.

The engine ships the table's change log to the vault in segments; any moment
between earliestRestorableTime and latestRestorableTime can be restored.
The tableRef is immutable (CEL and, in effect, the operator); one PitrConfig
per table is the operator's rule to keep, since admission sees one object.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from tablekeeper.resources.common import (
    ColumnType,
    LocalObjectReference,
    Model,
    PrinterColumn,
    Resource,
    ResourceKind,
    Status,
    immutable,
)

MIN_RECOVERY_DAYS = 1
MAX_RECOVERY_DAYS = 35


class PitrConfigSpec(Model):
    """Point-in-time recovery for one table: on or off, how far back, and into which vault."""

    IMMUTABLE = ("table_ref",)

    table_ref: Annotated[LocalObjectReference, Field(json_schema_extra=immutable("tableRef"))]
    """The Table (in this namespace) to protect. Immutable."""
    enabled: bool = True
    """Whether the change log is archived (true by default); false stops archiving and keeps what exists."""
    recovery_period_in_days: int = Field(
        default=MAX_RECOVERY_DAYS, ge=MIN_RECOVERY_DAYS, le=MAX_RECOVERY_DAYS
    )
    """How many days back the table can be restored: 1 to 35 (35 by default)."""
    vault_ref: LocalObjectReference
    """The BackupVault (in this namespace) the change log is archived into."""


class PitrPhase(StrEnum):
    """The short state of point-in-time recovery, for kubectl get."""

    PENDING = "Pending"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    FAILED = "Failed"


class PitrConfigStatus(Status):
    """The restorable window as the operator last saw it; the PITRReady condition says whether it grows."""

    phase: PitrPhase | None = None
    """Pending, Enabling, Enabled, Disabled or Failed."""
    earliest_restorable_time: AwareDatetime | None = None
    """The earliest moment a restore can go back to."""
    latest_restorable_time: AwareDatetime | None = None
    """The latest moment a restore can go back to: the end of the last archived log segment."""
    lag_seconds: float | None = Field(default=None, ge=0)
    """How far the archive trails the table's latest write, in seconds."""


class PitrConfig(Resource):
    """Point-in-time recovery of one table: its change log archived continuously into a vault."""

    kind: Literal["PitrConfig"] = "PitrConfig"
    spec: PitrConfigSpec
    status: PitrConfigStatus | None = None


PITR_CONFIG = ResourceKind(
    model=PitrConfig,
    spec=PitrConfigSpec,
    status=PitrConfigStatus,
    plural="pitrconfigs",
    short_names=("tkpitr",),
    columns=(
        PrinterColumn("Table", ".spec.tableRef.name", description="The protected Table"),
        PrinterColumn(
            "PITR", '.status.conditions[?(@.type=="PITRReady")].status', description="Whether PITRReady holds"
        ),
        PrinterColumn(
            "Latest-Restorable",
            ".status.latestRestorableTime",
            ColumnType.DATE,
            "The latest moment a restore can go back to",
        ),
        PrinterColumn(
            "Lag", ".status.lagSeconds", ColumnType.NUMBER, "Seconds the archive trails", priority=1
        ),
        PrinterColumn("Vault", ".spec.vaultRef.name", description="The vault", priority=1),
    ),
)
