"""The DynamoDB backup operations, served by the engine when it has a vault.

CreateBackup, DescribeBackup, ListBackups, DeleteBackup and
RestoreTableFromBackup: each parses its request with the engine's
``Members`` (DynamoDB's validation wording) into a frozen request, and runs
it on a :class:`~tablekeeper.vault.service.BackupService`.  The engine
serves them through its extension seam (:func:`backup_extension`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.extensions import Extension
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.metrics import VaultMetrics
from tablekeeper.vault.pitr import PitrService
from tablekeeper.vault.pitr_api import pitr_operations
from tablekeeper.vault.pitr_state import PitrState
from tablekeeper.vault.records import BackupRecords
from tablekeeper.vault.restore import Overrides
from tablekeeper.vault.service import BackupService
from tablekeeper.vault.snapshot import Snapshots, VaultSpec
from tablekeeper.vault.wire import parse_overrides, parse_time, vault_errors

BACKUP_TYPES = ("USER", "SYSTEM", "AWS_BACKUP", "ALL")


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateBackupRequest:
    table_name: str
    backup_name: str


@dataclass(frozen=True)
class BackupArnRequest:
    backup_arn: str


@dataclass(frozen=True)
class ListBackupsRequest:
    table_name: str | None
    limit: int | None
    lower: float | None
    upper: float | None
    start_arn: str | None
    backup_type: str


@dataclass(frozen=True)
class RestoreFromBackupRequest:
    target_table_name: str
    backup_arn: str
    overrides: Overrides


def _backup_arn(m: Members, name: str = "BackupArn", required: bool = True) -> str | None:
    return m.string(name, required=required, min_len=37, max_len=1024)


def parse_create_backup(body: dict[str, Any]) -> CreateBackupRequest:
    m = Members(body)
    table = m.table_name()
    name = m.string("BackupName", required=True, min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
    m.done()
    assert table is not None and name is not None
    return CreateBackupRequest(table, name)


def parse_backup_arn(body: dict[str, Any]) -> BackupArnRequest:
    m = Members(body)
    arn = _backup_arn(m)
    m.done()
    assert arn is not None
    return BackupArnRequest(arn)


def parse_list_backups(body: dict[str, Any]) -> ListBackupsRequest:
    m = Members(body)
    table = m.table_name(required=False)
    limit = m.integer("Limit", minimum=1, maximum=100)
    lower = parse_time(m, "TimeRangeLowerBound")
    upper = parse_time(m, "TimeRangeUpperBound")
    start = _backup_arn(m, "ExclusiveStartBackupArn", required=False)
    backup_type = m.string("BackupType", enum=BACKUP_TYPES)
    m.done()
    if lower is not None and upper is not None and lower > upper:
        raise ValidationException(
            "TimeRangeUpperBound provided must be greater than or equal to TimeRangeLowerBound"
        )
    return ListBackupsRequest(table, limit, lower, upper, start, backup_type or "USER")


def parse_restore_from_backup(body: dict[str, Any]) -> RestoreFromBackupRequest:
    m = Members(body)
    target = m.table_name("TargetTableName")
    arn = _backup_arn(m)
    overrides = parse_overrides(m)
    m.done()
    assert target is not None and arn is not None
    return RestoreFromBackupRequest(target, arn, overrides)


# --- execution -------------------------------------------------------------------------------


def _operations(service: BackupService) -> Mapping[str, Operation]:
    async def create_backup(engine: Engine, request: CreateBackupRequest) -> WireResult:
        view = await service.create(request.table_name, request.backup_name)
        return WireResult({"BackupDetails": view.details()})

    async def describe_backup(engine: Engine, request: BackupArnRequest) -> WireResult:
        view = await service.find(request.backup_arn)
        return WireResult({"BackupDescription": view.description()})

    async def delete_backup(engine: Engine, request: BackupArnRequest) -> WireResult:
        view = await service.delete(request.backup_arn)
        return WireResult({"BackupDescription": view.description()})

    async def list_backups(engine: Engine, request: ListBackupsRequest) -> WireResult:
        return WireResult(list_page(await service.all(), request, engine.resolve_name))

    async def restore_from_backup(engine: Engine, request: RestoreFromBackupRequest) -> WireResult:
        description = await service.restore(request.backup_arn, request.target_table_name, request.overrides)
        return WireResult({"TableDescription": description})

    served = (
        Operation("CreateBackup", parse_create_backup, create_backup),
        Operation("DescribeBackup", parse_backup_arn, describe_backup),
        Operation("DeleteBackup", parse_backup_arn, delete_backup),
        Operation("ListBackups", parse_list_backups, list_backups),
        Operation("RestoreTableFromBackup", parse_restore_from_backup, restore_from_backup),
    )
    return {op.name: Operation(op.name, op.parse, vault_errors(op.execute)) for op in served}


def list_page(views: list[Any], request: ListBackupsRequest, resolve: Callable[[str], str]) -> dict[str, Any]:
    """One ListBackups page over every backup, oldest first.

    TableName matches the source table's name (an ARN is reduced to it); the
    time range is on the creation time, lower bound inclusive, upper bound
    exclusive; BackupType ALL means USER and SYSTEM.
    """
    table = None if request.table_name is None else resolve(request.table_name)
    wanted = ("USER", "SYSTEM") if request.backup_type == "ALL" else (request.backup_type,)
    chosen = [
        view for view in views
        if (table is None or view.table.name == table)
        and view.backup_type in wanted
        and (request.lower is None or view.created >= request.lower)
        and (request.upper is None or view.created < request.upper)
    ]
    if request.start_arn is not None:
        after = next((i for i, view in enumerate(chosen) if view.arn == request.start_arn), None)
        chosen = chosen[after + 1:] if after is not None else []
    page = chosen if request.limit is None else chosen[:request.limit]
    wire: dict[str, Any] = {"BackupSummaries": [view.summary() for view in page]}
    if request.limit is not None and len(chosen) > request.limit:
        wire["LastEvaluatedBackupArn"] = page[-1].arn
    return wire


def backup_extension(
    vault: Vault, pitr_interval: float = 1.0, spec: VaultSpec | None = None
) -> Callable[[Engine], Extension]:
    """The extension factory that serves backups and point-in-time recovery on ``vault``.

    With ``spec`` (how to open the vault again) backups are written by worker
    processes, away from the event loop's interpreter lock.
    """

    def make(engine: Engine) -> Extension:
        snapshots = Snapshots(engine, vault, spec)
        metrics = VaultMetrics()
        pitr = PitrService(engine, vault, PitrState(engine.config.data_dir), interval=pitr_interval,
                           snapshots=snapshots, metrics=metrics)
        metrics.lags = pitr.lags
        service = BackupService(engine, vault, BackupRecords(engine.config.data_dir), system=pitr,
                                snapshots=snapshots, metrics=metrics)

        def close() -> None:
            service.close()
            pitr.close()

        return Extension(
            name=f"backups and point-in-time recovery in {vault.url}",
            operations={**_operations(service), **pitr_operations(pitr)},
            tasks=(service.resume_restores, pitr.run),
            close=close,
            collectors=(metrics,),
        )

    return make
