"""The DynamoDB point-in-time-recovery operations, served by an engine with a vault.

UpdateContinuousBackups, DescribeContinuousBackups and
RestoreTableToPointInTime, parsed with the engine's ``Members`` (DynamoDB's
validation wording) and run on a :class:`~tablekeeper.vault.pitr.PitrService`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.shapes import Members
from tablekeeper.vault.pitr import PitrService
from tablekeeper.vault.restore import Overrides
from tablekeeper.vault.wire import parse_overrides, parse_time, vault_errors


@dataclass(frozen=True)
class UpdateRequest:
    table_name: str
    enabled: bool
    period_days: int | None


@dataclass(frozen=True)
class DescribeRequest:
    table_name: str


@dataclass(frozen=True)
class RestoreToPointRequest:
    source: str  # a table name or ARN
    target_table_name: str
    restore_ms: int | None  # None: the latest restorable time
    overrides: Overrides


def parse_update(body: dict[str, Any]) -> UpdateRequest:
    m = Members(body)
    name = m.table_name()
    spec_wire = m.mapping("PointInTimeRecoverySpecification", required=True)
    enabled = period = None
    if spec_wire is not None:
        spec = m.nested("PointInTimeRecoverySpecification", spec_wire)
        enabled = spec.boolean("PointInTimeRecoveryEnabled", required=True)
        period = spec.integer("RecoveryPeriodInDays", minimum=1, maximum=35)
    m.done()
    assert name is not None and enabled is not None
    return UpdateRequest(name, enabled, period)


def parse_describe(body: dict[str, Any]) -> DescribeRequest:
    m = Members(body)
    name = m.table_name()
    m.done()
    assert name is not None
    return DescribeRequest(name)


def parse_restore(body: dict[str, Any]) -> RestoreToPointRequest:
    m = Members(body)
    source_arn = m.table_name("SourceTableArn", required=False)
    source_name = m.table_name("SourceTableName", required=False)
    target = m.table_name("TargetTableName")
    latest = m.boolean("UseLatestRestorableTime")
    when = parse_time(m, "RestoreDateTime")
    overrides = parse_overrides(m)
    m.done()
    assert target is not None
    if (source_arn is None) == (source_name is None):
        raise ValidationException("Exactly one of SourceTableArn and SourceTableName must be specified")
    if latest and when is not None:
        raise ValidationException(
            "Only one of RestoreDateTime and UseLatestRestorableTime can be specified"
        )
    if not latest and when is None:
        raise ValidationException("Either RestoreDateTime or UseLatestRestorableTime must be specified")
    source = source_arn if source_arn is not None else source_name
    assert source is not None
    return RestoreToPointRequest(source, target, None if when is None else int(when * 1000), overrides)


def pitr_operations(service: PitrService) -> Mapping[str, Operation]:
    async def update(engine: Engine, request: UpdateRequest) -> WireResult:
        described = await service.update(request.table_name, request.enabled, request.period_days)
        return WireResult({"ContinuousBackupsDescription": described})

    async def describe(engine: Engine, request: DescribeRequest) -> WireResult:
        return WireResult({"ContinuousBackupsDescription": service.describe(request.table_name)})

    async def restore(engine: Engine, request: RestoreToPointRequest) -> WireResult:
        described = await service.restore(request.source, request.target_table_name, request.restore_ms,
                                          request.overrides)
        return WireResult({"TableDescription": described})

    served = (
        Operation("UpdateContinuousBackups", parse_update, update),
        Operation("DescribeContinuousBackups", parse_describe, describe),
        Operation("RestoreTableToPointInTime", parse_restore, restore),
    )
    return {op.name: Operation(op.name, op.parse, vault_errors(op.execute)) for op in served}
