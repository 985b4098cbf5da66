"""What a Restore does, decided without a cluster or an engine: its source, its Table, its status.

A restore reads one of three sources (``RestoreSource``) and writes a new
table, served by a new engine: the target Table this module builds.  Pure:
the objects as the API returns them, the source as the vault describes it
(``SourceTable``) and ``now`` in; decisions out.  ``restores`` reads the
objects and the vault, and talks to the engines.

* **The source.**  A Backup object must be Available (wait while it is
  being made; refused when it failed or is gone).  A backup in a vault is
  named by id or ARN.  A point in time names a table whose archive is in
  the vault (live or deleted); ``useLatestRestorableTime`` is left to the
  target engine, which says in its RestoreSummary which moment it chose.
* **The target Table** has the source table's definition (keys, indexes,
  billing mode and capacity, from the backup's manifest or the archive's
  base), the target's overrides applied, spec.tableName the target's name,
  and the source's vault as its backupVaultRef, so its engine can read the
  backup.  As DynamoDB carries no stream, TTL, tags, PITR or deletion
  protection over, the Table has none.  It carries the Restore's name as an
  annotation (the Table controller then waits for the restore instead of
  creating the table) and a label, and no ownerReference: deleting the
  Restore keeps the table, as in DynamoDB.
* **Progress** is the items loaded against the backup's item count (when
  known), 100 once the engine's table is ACTIVE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import pydantic

from tablekeeper.controllers import conditions, naming
from tablekeeper.controllers.conditions import Transition
from tablekeeper.controllers.engine_client import EngineRestore
from tablekeeper.controllers.table_plan import (
    EngineTable,
    KeyWire,
    gsi_wire,
    projection_wire,
    throughput_wire,
)
from tablekeeper.controllers.verdicts import FALSE, TRUE, Verdict, apply_verdict
from tablekeeper.resources.backup import BackupPhase
from tablekeeper.resources.common import API_VERSION
from tablekeeper.resources.restore import Restore, RestorePhase, RestoreSourceType, RestoreTarget
from tablekeeper.resources.table import BillingMode, TableSpec
from tablekeeper.vault import format as fmt

GIB: Final = 1 << 30
MIN_VOLUME_GIB: Final = 1  # a Table's default volume
VOLUME_HEADROOM: Final = 2  # the volume holds the items, their index entries and the database's slack
FINAL: Final = frozenset({RestorePhase.COMPLETED, RestorePhase.FAILED})


class SourceNotReady(Exception):
    """The source cannot be read yet (a Backup being made, a vault not Ready): come back later."""


class SourceRefused(Exception):
    """The restore cannot be made as specified: the message says why."""


# --- the source -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupSource:
    """A backup to restore, as a Backup object or the spec names it."""

    vault: str
    backup_id: str
    backup_arn: str | None = None  # None: the manifest's


@dataclass(frozen=True)
class SourceTable:
    """The source as the vault describes it: what the target engine is asked, and the table it held."""

    type: RestoreSourceType
    vault: str
    table: EngineTable  # the source table's definition
    table_arn: str  # the source table's ARN
    backup_id: str | None = None  # restoring a backup
    backup_arn: str | None = None
    restore_time: datetime | None = None  # restoring a point in time; None: the latest restorable
    item_count: int | None = None  # the backup's items (progress); None: not known ahead
    size_bytes: int | None = None

    def chosen(self) -> dict[str, Any]:
        """status.source (a "latest" restore's moment comes later, from the engine: ``with_restore_time``)."""
        chosen: dict[str, Any] = {"type": self.type.value, "vault": self.vault}
        if self.backup_id is not None:
            chosen.update(backupId=self.backup_id, backupArn=self.backup_arn)
        if self.restore_time is not None:
            chosen["restoreDateTime"] = precise_time(self.restore_time)
        return chosen

    def made(self, found: EngineRestore) -> bool:
        """Whether the engine's table is the restore of this source (an earlier pass's call)."""
        if found.in_progress is None:
            return False
        if self.backup_arn is not None:
            return found.source_backup_arn == self.backup_arn
        return found.source_backup_arn is None and found.source_table_arn == self.table_arn


def backup_of_object(found: Mapping[str, Any] | None, name: str) -> BackupSource:
    """The backup a Backup object (as the API returns it) made; ``SourceNotReady`` while it is
    being made, ``SourceRefused`` when it failed or is gone."""
    if found is None:
        raise SourceRefused(f"Backup {name} does not exist")
    if (found.get("metadata") or {}).get("deletionTimestamp"):
        raise SourceRefused(f"Backup {name} is being deleted")
    status = found.get("status") or {}
    phase = status.get("phase")
    if phase == BackupPhase.FAILED:
        degraded = conditions.find(conditions.conditions_from(status.get("conditions")), conditions.DEGRADED)
        why = f": {degraded.message}" if degraded is not None and degraded.message else ""
        raise SourceRefused(f"Backup {name} failed{why}")
    backup_id, arn = status.get("backupId"), status.get("backupArn")
    if phase != BackupPhase.AVAILABLE or not backup_id or not arn:
        raise SourceNotReady(f"Backup {name} is {phase or 'not reported yet'}, not Available")
    vault = ((found.get("spec") or {}).get("vaultRef") or {}).get("name", "")
    return BackupSource(vault, str(backup_id), str(arn))


def backup_id_of_arn(arn: str) -> str:
    """The backup id an ARN names (``<table ARN>/backup/<id>``); ``SourceRefused`` if none."""
    backup_id = fmt.backup_id_of_arn(arn)
    if backup_id is None:
        raise SourceRefused(f"the backup ARN {arn} names no backup (<table ARN>/backup/<backup id>)")
    return backup_id


# --- the target Table -----------------------------------------------------------------------------


def spec_of_table(table: EngineTable) -> dict[str, Any]:
    """The Table spec (wire form) of a table's definition: keys, billing, capacity, indexes."""
    spec: dict[str, Any] = {"keySchema": _key_schema(table.key), "billingMode": table.billing_mode}
    if table.throughput is not None:
        spec["provisionedThroughput"] = _throughput(table.throughput)
    gsis = [gsi for gsi in table.gsis.values() if gsi.status != "DELETING"]
    if gsis:
        spec["globalSecondaryIndexes"] = [
            {"indexName": gsi.name, "keySchema": _key_schema(gsi.key),
             "projection": _projection(gsi.projection),
             **({"provisionedThroughput": _throughput(gsi.throughput)} if gsi.throughput else {})}
            for gsi in gsis
        ]  # fmt: skip
    if table.lsis:
        spec["localSecondaryIndexes"] = [
            {"indexName": lsi.name, "sortKey": _key_schema(lsi.key)["sortKey"],
             "projection": _projection(lsi.projection)}
            for lsi in table.lsis.values()
        ]  # fmt: skip
    return spec


def _key_schema(key: KeyWire) -> dict[str, Any]:
    roles = {"HASH": "partitionKey", "RANGE": "sortKey"}
    return {roles[role]: {"name": name, "type": kind} for name, role, kind in key}


def _projection(projection: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
    kind, attributes = projection
    return {"projectionType": kind, **({"nonKeyAttributes": list(attributes)} if attributes else {})}


def _throughput(pair: tuple[int, int]) -> dict[str, int]:
    return {"readCapacityUnits": pair[0], "writeCapacityUnits": pair[1]}


def volume_size(size_bytes: int | None) -> str:
    """The new engine's volume: twice the source's bytes in whole GiB, at least the default 1Gi."""
    wanted = math.ceil(VOLUME_HEADROOM * (size_bytes or 0) / GIB)
    return f"{max(MIN_VOLUME_GIB, wanted)}Gi"


def target_spec(source: SourceTable, target: RestoreTarget) -> TableSpec:
    """The target Table's spec: the source's definition with ``target``'s overrides, on the source's
    vault; ``SourceRefused`` when the overrides make a table DynamoDB would refuse."""
    spec = spec_of_table(source.table)
    if target.billing_mode_override is not None:
        spec["billingMode"] = target.billing_mode_override.value
    if target.provisioned_throughput_override is not None:
        spec["provisionedThroughput"] = _dump(target.provisioned_throughput_override)
    for field, override in (("globalSecondaryIndexes", target.global_secondary_index_override),
                            ("localSecondaryIndexes", target.local_secondary_index_override)):  # fmt: skip
        if override is not None:
            spec.pop(field, None)
            if override:  # an empty override: none
                spec[field] = [_dump(index) for index in override]
    if spec["billingMode"] == BillingMode.PAY_PER_REQUEST:
        # On demand: the source's capacity does not come along (an override's is refused below).
        if target.provisioned_throughput_override is None:
            spec.pop("provisionedThroughput", None)
        if target.global_secondary_index_override is None:
            for gsi in spec.get("globalSecondaryIndexes", ()):
                gsi.pop("provisionedThroughput", None)
    spec.update(tableName=target.table_name, backupVaultRef={"name": source.vault},
                storage={"size": volume_size(source.size_bytes)})  # fmt: skip
    try:
        return TableSpec.model_validate(spec)
    except pydantic.ValidationError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise SourceRefused(f"the restored table {target.table_name} would be invalid: {problems}") from None


def _dump(model: pydantic.BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def target_name(restore: Restore) -> str:
    """The target Table's metadata.name: the target table name, as an object name."""
    return naming.object_name(restore.spec.target.table_name)


def target_table(restore: Restore, source: SourceTable) -> dict[str, Any]:
    """The target Table as the API takes it (see the module docstring)."""
    name = str(restore.metadata.name)
    spec = target_spec(source, restore.spec.target)
    labels = {naming.MANAGED_BY_LABEL: naming.MANAGED_BY, naming.RESTORE_LABEL: naming.label_value(name)}
    return {
        "apiVersion": API_VERSION,
        "kind": "Table",
        "metadata": {
            "name": target_name(restore),
            "namespace": restore.metadata.namespace,
            "labels": labels,
            "annotations": {naming.RESTORE_ANNOTATION: name},
        },
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }  # fmt: skip


def made_by(table: Mapping[str, Any], restore_name: str) -> bool:
    """Whether a Table (as the API returns it) is the one the Restore ``restore_name`` created."""
    annotations = (table.get("metadata") or {}).get("annotations") or {}
    return annotations.get(naming.RESTORE_ANNOTATION) == restore_name


def restore_overrides(target: RestoreTarget, table: EngineTable) -> dict[str, Any]:
    """The overrides of a restore of ``table`` into ``target``, as RestoreTableFromBackup and
    RestoreTableToPointInTime take them (an LSI's partition key is the table's)."""
    overrides: dict[str, Any] = {}
    if target.billing_mode_override is not None:
        overrides["BillingModeOverride"] = target.billing_mode_override.value
    if target.provisioned_throughput_override is not None:
        overrides["ProvisionedThroughputOverride"] = throughput_wire(target.provisioned_throughput_override)
    gsis = target.global_secondary_index_override
    if gsis is not None:
        overrides["GlobalSecondaryIndexOverride"] = [gsi_wire(gsi) for gsi in gsis]
    if target.local_secondary_index_override is not None:
        partition = next(name for name, role, _ in table.key if role == "HASH")
        overrides["LocalSecondaryIndexOverride"] = [
            {"IndexName": lsi.index_name, "Projection": projection_wire(lsi.projection),
             "KeySchema": [{"AttributeName": partition, "KeyType": "HASH"},
                           {"AttributeName": lsi.sort_key.name, "KeyType": "RANGE"}]}
            for lsi in target.local_secondary_index_override
        ]  # fmt: skip
    if target.sse_specification_override is not None:
        sse = target.sse_specification_override
        overrides["SSESpecificationOverride"] = {
            "Enabled": sse.enabled,
            **({"SSEType": sse.sse_type.value} if sse.sse_type else {}),
            **({"KMSMasterKeyId": sse.kms_master_key_id} if sse.kms_master_key_id else {}),
        }
    return overrides


# --- progress and status --------------------------------------------------------------------------


def progress(found: EngineRestore, expected_items: int | None) -> int:
    """Percent done: 100 once restored, else the items loaded against the backup's (99 at most)."""
    if found.restored:
        return 100
    if not expected_items:
        return 0
    return min(99, found.item_count * 100 // expected_items)


def with_restore_time(chosen: Mapping[str, Any], found: EngineRestore) -> dict[str, Any]:
    """status.source with the moment a point-in-time restore restored to, where the spec left it to
    the engine (useLatestRestorableTime): its RestoreSummary says."""
    chosen = dict(chosen)
    pitr = chosen.get("type") == RestoreSourceType.POINT_IN_TIME
    if pitr and not chosen.get("restoreDateTime") and found.restore_time is not None:
        chosen["restoreDateTime"] = precise_time(found.restore_time)
    return chosen


def precise_time(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: a restore's moment is exact to the millisecond."""
    if value.tzinfo is None:
        raise ValueError(f"format time: must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RestoreOutcome(StrEnum):
    """How a pass on a Restore ended; each is a reason word on the conditions."""

    INVALID_SPEC = "InvalidSpec"
    SOURCE_NOT_READY = "SourceNotReady"
    SOURCE_REFUSED = "SourceRefused"
    TARGET_EXISTS = "TargetExists"
    TARGET_NOT_READY = "TargetNotReady"
    ENGINE_UNAVAILABLE = "EngineUnavailable"
    ENGINE_REFUSED = "EngineRefused"
    RESTORING = "Restoring"
    TABLE_NOT_READY = "TableNotReady"
    COMPLETED = "RestoreCompleted"
    FAILED = "RestoreFailed"


# The phase an outcome sets besides the conditions; None keeps the phase (Pending at first).
VERDICTS: Final[Mapping[RestoreOutcome, tuple[Verdict, RestorePhase | None]]] = {
    RestoreOutcome.INVALID_SPEC: (Verdict(FALSE, FALSE, TRUE), RestorePhase.FAILED),
    RestoreOutcome.SOURCE_NOT_READY: (Verdict(FALSE, TRUE, FALSE), None),
    RestoreOutcome.SOURCE_REFUSED: (Verdict(FALSE, FALSE, TRUE), RestorePhase.FAILED),
    RestoreOutcome.TARGET_EXISTS: (Verdict(FALSE, FALSE, TRUE), RestorePhase.FAILED),
    RestoreOutcome.TARGET_NOT_READY: (Verdict(FALSE, TRUE, FALSE), None),
    RestoreOutcome.ENGINE_UNAVAILABLE: (Verdict(FALSE, TRUE, FALSE), None),
    RestoreOutcome.ENGINE_REFUSED: (Verdict(FALSE, FALSE, TRUE), RestorePhase.FAILED),
    RestoreOutcome.RESTORING: (Verdict(FALSE, TRUE, FALSE), RestorePhase.RESTORING),
    # The items are in; the Table controller is still bringing the Table to Ready.
    RestoreOutcome.TABLE_NOT_READY: (Verdict(FALSE, TRUE, FALSE), RestorePhase.RESTORING),
    RestoreOutcome.COMPLETED: (Verdict(TRUE, FALSE, FALSE), RestorePhase.COMPLETED),
    RestoreOutcome.FAILED: (Verdict(FALSE, FALSE, TRUE), RestorePhase.FAILED),
}


def phase_of(status: Mapping[str, Any]) -> RestorePhase:
    try:
        return RestorePhase(status.get("phase"))
    except ValueError:
        return RestorePhase.PENDING


def is_final(status: Mapping[str, Any]) -> bool:
    """Completed and Failed are final: nothing more is done for the Restore."""
    return phase_of(status) in FINAL


def restore_status_after(
    outcome: RestoreOutcome, message: str, previous: Mapping[str, Any], generation: int | None, now: datetime,
    fields: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], tuple[Transition, ...]]:  # fmt: skip
    """The status fields ``outcome`` sets on top of ``previous`` (with ``fields``: the source, the
    counts), and the condition transitions; the first final phase stamps completedAt."""
    verdict, wanted = VERDICTS[outcome]
    old = conditions.conditions_from(previous.get("conditions"))
    new = apply_verdict(old, outcome.value, message, verdict, generation, now)
    phase = wanted or phase_of(previous)
    status = conditions.status_fields(generation, new, phase.value)
    status.update(fields or {})
    if phase in FINAL and not previous.get("completedAt"):
        status["completedAt"] = conditions.format_time(now)
    return status, conditions.transitions(old, new)


def restored_fields(found: EngineRestore, expected_items: int | None) -> dict[str, Any]:
    """The status fields a look at the target engine's table gives."""
    return {"targetTableArn": found.arn, "itemsRestored": found.item_count,
            "progress": progress(found, expected_items)}  # fmt: skip


def duration(status: Mapping[str, Any]) -> float | None:
    """Seconds from startedAt to completedAt, when both are known."""
    started, completed = status.get("startedAt"), status.get("completedAt")
    if not started or not completed:
        return None
    return (conditions.parse_time(completed) - conditions.parse_time(started)).total_seconds()
