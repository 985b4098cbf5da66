"""BackupPlan: scheduled backups of selected tables, kept for a while, as AWS Backup plans do.

A schedule is a standard 5-field cron expression (minute hour day-of-month
month day-of-week; ranges, steps, lists and names such as MON-FRI) read in
the rule's timeZone.  The CRD checks its shape with a pattern; the pydantic
validator checks it for real with croniter (e.g. minute 61), as does the
operator before it trusts a rule.  A timeZone is checked against the IANA
database by pydantic only.

Cold storage (lifecycle.moveToColdAfterDays), copies to other vaults
(copyActions) and recovery-point tags are left out until something does
them; ``lifecycle`` and each rule are objects, so they can be added without
breaking anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, model_validator

from tablekeeper.resources.common import (
    LIST_SET,
    ColumnType,
    DnsLabel,
    LabelSelector,
    LocalObjectReference,
    Model,
    ObjectName,
    PrinterColumn,
    Resource,
    ResourceKind,
    Status,
    StatusModel,
    UniqueStrings,
    cel,
    list_map,
    unique_by,
    validations,
)

_CRON_ITEM = r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?"
_CRON_FIELD = rf"{_CRON_ITEM}(,{_CRON_ITEM})*"
CRON_PATTERN = rf"^\s*{_CRON_FIELD}(\s+{_CRON_FIELD}){{4}}\s*$"
"""The shape of a 5-field cron expression; croniter checks the values."""

TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+\-/]+$"
MIN_START_WINDOW_MINUTES = 60
DEFAULT_COMPLETION_WINDOW_MINUTES = 7 * 24 * 60


def check_schedule(schedule: str) -> str:
    """Return ``schedule`` if it is a valid 5-field cron expression, else raise ValueError saying why."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule {schedule!r}: a cron schedule has 5 fields"
            f" (minute hour day-of-month month day-of-week), not {len(fields)}"
        )
    try:
        croniter(schedule, datetime(2000, 1, 1))
    except (CroniterError, ValueError, KeyError) as error:
        raise ValueError(f"schedule {schedule!r} is not a valid cron expression: {error}") from None
    return schedule


def check_time_zone(name: str) -> str:
    """Return ``name`` if it names an IANA time zone, else raise ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timeZone {name!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin)"
        ) from None
    return name


Schedule = Annotated[
    str, Field(max_length=256, json_schema_extra={"pattern": CRON_PATTERN}), AfterValidator(check_schedule)
]
TimeZone = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": TIME_ZONE_PATTERN}),
    AfterValidator(check_time_zone),
]


class Lifecycle(Model):
    """How long a rule's backups are kept."""

    delete_after_days: int = Field(ge=1, le=36500)
    """Days after its creation that a backup is deleted."""


class BackupRule(Model):
    """One schedule of the plan: when, into which vault, and for how long."""

    name: DnsLabel
    """The rule's name, unique in the plan (it labels the Backups the rule makes)."""
    schedule: Schedule
    """When to back up: a 5-field cron expression, e.g. "0 3 * * *" (daily at 03:00)."""
    time_zone: TimeZone = "UTC"
    """The IANA time zone the schedule is read in (UTC by default)."""
    start_window_minutes: int = Field(
        default=MIN_START_WINDOW_MINUTES, ge=MIN_START_WINDOW_MINUTES, le=100000
    )
    """Minutes after the scheduled time within which the backup must start, or is skipped (at least 60)."""
    completion_window_minutes: int = Field(default=DEFAULT_COMPLETION_WINDOW_MINUTES, ge=60, le=1000000)
    """Minutes after it starts within which the backup must complete, or is failed (7 days by default)."""
    target_vault_ref: LocalObjectReference
    """The BackupVault (in this namespace) the rule's backups go to."""
    lifecycle: Lifecycle | None = None
    """How long the rule's backups are kept; for ever (or by keepLast) when left out."""
    keep_last: int | None = Field(default=None, ge=1, le=10000)
    """Keep at most this many of the rule's backups per table, deleting the oldest."""


_SELECT_SOMETHING = "selection needs tableNames or a labelSelector"


class TableSelection(Model):
    """Which tables the plan backs up: those named, and those the selector matches."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.tableNames) || has(self.labelSelector)", _SELECT_SOMETHING),
        )
    )

    table_names: (
        Annotated[tuple[ObjectName, ...], Field(min_length=1, max_length=1000), UniqueStrings] | None
    ) = Field(default=None, json_schema_extra=LIST_SET)
    """Names of Table objects in this namespace."""
    label_selector: LabelSelector | None = None
    """Selects Table objects in this namespace by their labels."""

    @model_validator(mode="after")
    def _selects_something(self) -> Self:
        if self.table_names is None and self.label_selector is None:
            raise ValueError(_SELECT_SOMETHING)
        return self

    def selects(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether the Table object called ``name`` with ``labels`` is selected."""
        if name in (self.table_names or ()):
            return True
        return self.label_selector is not None and self.label_selector.matches(labels)


class BackupPlanSpec(Model):
    """Backup rules and the tables they apply to."""

    rules: tuple[BackupRule, ...] = Field(min_length=1, max_length=20, json_schema_extra=list_map("name"))
    """The plan's rules (1 to 20), by name."""
    selection: TableSelection
    """The tables the rules back up."""
    suspend: bool = False
    """While true no new backups start; running ones finish and lifecycles still apply."""

    @model_validator(mode="after")
    def _distinct_rules(self) -> Self:
        unique_by(self.rules, "name", "rules")
        return self


class PlanPhase(StrEnum):
    """The plan's short state, for kubectl get."""

    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    FAILED = "Failed"


class RuleStatus(StatusModel):
    """When one rule last ran and runs next."""

    name: str
    """The rule's name."""
    last_run_time: AwareDatetime | None = None
    """The scheduled time of the rule's last run."""
    next_run_time: AwareDatetime | None = None
    """The scheduled time of the rule's next run."""
    last_backup: str | None = None
    """The name of the last Backup object the rule made (one per selected table and run; the last)."""


class BackupPlanStatus(Status):
    """The plan's schedule as the operator keeps it."""

    phase: PlanPhase | None = None
    """Active, Suspended or Failed."""
    rules: tuple[RuleStatus, ...] = Field(default=(), json_schema_extra=list_map("name"))
    """Each rule's last and next run, by name."""
    next_run_time: AwareDatetime | None = None
    """The earliest next run of any rule."""
    handled_run_now: str | None = Field(default=None, max_length=253)
    """The last tablekeeper.io/run-now annotation acted on; a different value starts another run."""

    def rule(self, name: str) -> RuleStatus | None:
        """The status of the rule called ``name``, or None before its first schedule."""
        return next((r for r in self.rules if r.name == name), None)


class BackupPlan(Resource):
    """Scheduled backups of selected tables, with how long to keep them."""

    kind: Literal["BackupPlan"] = "BackupPlan"
    spec: BackupPlanSpec
    status: BackupPlanStatus | None = None


BACKUP_PLAN = ResourceKind(
    model=BackupPlan,
    spec=BackupPlanSpec,
    status=BackupPlanStatus,
    plural="backupplans",
    short_names=("tkbp",),
    columns=(
        PrinterColumn("Suspend", ".spec.suspend", ColumnType.BOOLEAN, "Whether new backups are held back"),
        PrinterColumn("Next-Run", ".status.nextRunTime", description="The earliest next run of any rule"),
    ),
)
