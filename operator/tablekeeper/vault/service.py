"""On-demand backups of a running engine's tables: create, list, describe, delete, restore.

**CreateBackup** pins a read snapshot of the table on the event loop, at
once: the backup is the table exactly as of that snapshot's change-log
sequence number.  A worker thread then streams the snapshot's items into a
:class:`~tablekeeper.vault.backup.BackupWriter` while writes go on; the
backup is AVAILABLE when its manifest is in the vault.  Until then, and if
it fails, the engine's own records (``vault.records``) show it: CREATING,
or FAILED with the reason (DynamoDB has no FAILED status; we report one
rather than let a failure vanish).

The catalog of AVAILABLE backups is the vault's: manifests, which never
change, cached by id.  Backups therefore outlive their table: DeleteTable
does not touch them, and they list and restore after it.

Vault I/O never runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    BackupInUseException,
    BackupNotFoundException,
    TableAlreadyExistsException,
    TableNotFoundException,
)
from tablekeeper.engine.loading import TableExists, abandon_restore, begin_restore, interrupted_restores
from tablekeeper.engine.tables import RestoreSummary, TableDefinition, describe_table
from tablekeeper.vault import format as fmt
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.format import BackupDamaged, BackupManifest, BackupNotFound
from tablekeeper.vault.metrics import VaultMetrics
from tablekeeper.vault.pitr_format import BASE_TYPE
from tablekeeper.vault.records import CREATING, FAILED, BackupRecords, PendingBackup
from tablekeeper.vault.restore import Overrides, backup_items, plan_target, run_restore
from tablekeeper.vault.snapshot import Pinned, Snapshots

log = logging.getLogger(__name__)

AVAILABLE = "AVAILABLE"
DELETED = "DELETED"
TABLE_SIZE_ANNOTATION = "table-size-bytes"


@dataclass(frozen=True)
class BackupView:
    """One backup as the DynamoDB API shows it, wherever it is recorded."""

    backup_id: str
    status: str  # CREATING | AVAILABLE | DELETED | FAILED
    name: str
    backup_type: str
    created: float
    table: TableDefinition  # the source table at the backup
    item_count: int
    size_bytes: int
    reason: str = ""
    expires: float | None = None

    @property
    def arn(self) -> str:
        return fmt.backup_arn(self.table.arn, self.backup_id)

    @classmethod
    def of_manifest(cls, manifest: BackupManifest) -> BackupView:
        size = manifest.annotations.get(TABLE_SIZE_ANNOTATION)
        expires = manifest.annotations.get("expires")
        return cls(
            backup_id=manifest.backup_id, status=AVAILABLE, name=manifest.name,
            backup_type=manifest.backup_type, created=manifest.created,
            table=TableDefinition.from_json(manifest.definition), item_count=manifest.item_count,
            size_bytes=int(size) if size is not None else manifest.item_bytes,
            expires=float(expires) if expires is not None else None,
        )

    @classmethod
    def of_pending(cls, record: PendingBackup) -> BackupView:
        return cls(
            backup_id=record.backup_id, status=record.status, name=record.name,
            backup_type=record.backup_type, created=record.created,
            table=TableDefinition.from_json(record.definition), item_count=record.item_count,
            size_bytes=record.size_bytes, reason=record.reason,
        )

    def details(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "BackupArn": self.arn,
            "BackupName": self.name,
            "BackupSizeBytes": self.size_bytes,
            "BackupStatus": self.status,
            "BackupType": self.backup_type,
            "BackupCreationDateTime": self.created,
        }
        if self.expires is not None:
            wire["BackupExpiryDateTime"] = self.expires
        if self.reason:
            wire["BackupStatusReason"] = self.reason  # ours: why a backup FAILED
        return wire

    def summary(self) -> dict[str, Any]:
        return {
            "TableName": self.table.name,
            "TableId": describe_table(self.table, 0, 0)["TableId"],
            "TableArn": self.table.arn,
            **{k: v for k, v in self.details().items() if k != "BackupStatusReason"},
        }

    def description(self) -> dict[str, Any]:
        table = describe_table(self.table, self.item_count, self.size_bytes)
        source: dict[str, Any] = {
            "TableName": table["TableName"],
            "TableId": table["TableId"],
            "TableArn": table["TableArn"],
            "TableSizeBytes": self.size_bytes,
            "KeySchema": table["KeySchema"],
            "TableCreationDateTime": table["CreationDateTime"],
            "ProvisionedThroughput": _throughput(table["ProvisionedThroughput"]),
            "ItemCount": self.item_count,
            "BillingMode": self.table.billing_mode,
        }
        features: dict[str, Any] = {}
        for member in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            if member in table:
                features[member] = [
                    {k: v for k, v in index.items() if k in _INDEX_INFO} for index in table[member]
                ]
                for index in features[member]:
                    if "ProvisionedThroughput" in index:
                        index["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
        if "StreamSpecification" in table:
            features["StreamDescription"] = table["StreamSpecification"]
        if self.table.ttl_attribute is not None:
            features["TimeToLiveDescription"] = {
                "TimeToLiveStatus": self.table.ttl_status, "AttributeName": self.table.ttl_attribute,
            }
        if "SSEDescription" in table:
            features["SSEDescription"] = table["SSEDescription"]
        return {"BackupDetails": self.details(), "SourceTableDetails": source,
                "SourceTableFeatureDetails": features}


_INDEX_INFO = frozenset({"IndexName", "KeySchema", "Projection", "ProvisionedThroughput"})


def _throughput(described: dict[str, Any]) -> dict[str, Any]:
    return {"ReadCapacityUnits": described["ReadCapacityUnits"],
            "WriteCapacityUnits": described["WriteCapacityUnits"]}


class SystemBackups(Protocol):
    """The SYSTEM backups someone else keeps: a deleted table's PITR archive (``vault.pitr``)."""

    def deleted_backups(self) -> list[BackupView]: ...

    def is_deleted_backup(self, backup_id: str) -> bool: ...

    async def restore_deleted_backup(
        self, backup_id: str, target_name: str, overrides: Overrides
    ) -> dict[str, Any]: ...

    async def delete_deleted_backup(self, backup_id: str) -> None: ...


class BackupService:
    """The engine's backups in one vault; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        records: BackupRecords,
        system: SystemBackups | None = None,
        snapshots: Snapshots | None = None,
        metrics: VaultMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics or VaultMetrics()
        self.system = system
        self.snapshots = snapshots or Snapshots(engine, vault, None)
        self.vault = vault
        self.records = records
        self._manifests: dict[str, BackupManifest] = {}
        self._writing: dict[str, asyncio.Task[None]] = {}
        self._restoring: dict[str, asyncio.Task[None]] = {}
        self._stopping = threading.Event()  # tells worker threads to give up at shutdown
        for record in records.interrupted("the engine stopped before the backup finished"):
            log.warning("backup %s of table %s was interrupted by the engine's stop: marked FAILED",
                        record.backup_id, record.name)

    # --- create -------------------------------------------------------------------------

    async def create(self, table_name: str, backup_name: str, backup_type: str = "USER") -> BackupView:
        engine = self.engine
        table = engine.find_table(table_name)
        if table is None or table.status != "ACTIVE":
            raise TableNotFoundException(f"Table not found: {engine.resolve_name(table_name)}")
        if any(record.status == CREATING and TableDefinition.from_json(record.definition).table_id
               == table.table_id for record in self.records.all()):
            raise BackupInUseException(
                "There is another ongoing conflicting backup control plane operation on the table. "
                "The backup is either being created, deleted or restored to a table."
            )
        now = engine.clock()
        backup_id = fmt.new_backup_id(now)
        pinned = self.snapshots.pin(table, f"backup:{backup_id}")  # the backup's moment
        record = PendingBackup(
            backup_id=backup_id, status=CREATING, name=backup_name,
            backup_type=backup_type, created=now, definition=table.to_json(),
            item_count=pinned.item_count, size_bytes=pinned.item_bytes, sequence=pinned.sequence,
        )
        try:
            self.records.add(record)
        except BaseException:
            self.snapshots.release(pinned)
            raise
        task = asyncio.get_running_loop().create_task(self._write(record, pinned))
        self._writing[record.backup_id] = task
        return BackupView.of_pending(record)

    async def _write(self, record: PendingBackup, pinned: Pinned) -> None:
        try:
            job = self.snapshots.job(pinned, record.backup_id, record.created, record.name,
                                     record.backup_type, {TABLE_SIZE_ANNOTATION: str(record.size_bytes)})
            manifest = await self.snapshots.write(pinned, job)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reason = str(error)
            if not isinstance(error, VaultError):  # vault errors already read "verb object: cause"
                reason = f"write backup {record.backup_id}: {error}"
            log.error("backup %s of table %s failed: %s", record.backup_id, record.name, reason)
            self.records.fail(record.backup_id, reason)
            self.metrics.backup(record.backup_type, 0.0, 0, ok=False)
        else:
            self.metrics.backup(record.backup_type, self.engine.clock() - record.created,
                                manifest.written_bytes, ok=True)
            self._manifests[manifest.backup_id] = manifest
            self.records.remove(record.backup_id)
            log.info("backup %s available: %d items", record.backup_id, manifest.item_count)
        finally:
            self._writing.pop(record.backup_id, None)

    # --- read ---------------------------------------------------------------------------

    async def find(self, arn: str) -> BackupView:
        """The backup an ARN names, or BackupNotFoundException."""
        backup_id = fmt.backup_id_of_arn(arn)
        if backup_id is not None:
            record = self.records.get(backup_id)
            if record is not None:
                view = BackupView.of_pending(record)
            else:
                manifest = await self._manifest(backup_id)
                view = None if manifest is None else BackupView.of_manifest(manifest)
            if view is None and self.system is not None:
                view = next((v for v in self.system.deleted_backups() if v.backup_id == backup_id), None)
            # A PITR base is the archive's, not a backup anyone lists or restores by ARN.
            if view is not None and view.arn == arn and view.backup_type != BASE_TYPE:
                return view
        raise BackupNotFoundException(f"Backup not found: {arn}")

    async def _manifest(self, backup_id: str) -> BackupManifest | None:
        manifest = self._manifests.get(backup_id)
        if manifest is None:
            try:
                manifest = await asyncio.to_thread(self.vault.load_manifest, backup_id)
            except BackupNotFound:
                return None
            self._manifests[backup_id] = manifest
        return manifest

    async def all(self) -> list[BackupView]:
        """Every backup, the vault's and the engine's pending ones, oldest first."""
        views = [BackupView.of_manifest(m) for m in await asyncio.to_thread(self._list_manifests)]
        views += [BackupView.of_pending(record) for record in self.records.all()]
        if self.system is not None:
            views += self.system.deleted_backups()
        views.sort(key=lambda view: (view.created, view.backup_id))
        return views

    def _list_manifests(self) -> list[BackupManifest]:
        names = [info.key[len(fmt.MANIFESTS):] for info in self.vault.store.list(fmt.MANIFESTS)]
        present = []
        for backup_id in names:
            if not fmt.BACKUP_ID.match(backup_id):
                continue
            manifest = self._manifests.get(backup_id)
            if manifest is None:
                try:
                    manifest = self.vault.load_manifest(backup_id, "list")
                except BackupNotFound:
                    continue
                except BackupDamaged as error:  # `tablekeeper backup verify` reports it
                    log.warning("list backups: skipping %s: %s", backup_id, error)
                    continue
                self._manifests[backup_id] = manifest
            present.append(manifest)
        for gone in self._manifests.keys() - set(names):
            del self._manifests[gone]
        return present

    # --- delete -------------------------------------------------------------------------

    async def delete(self, arn: str) -> BackupView:
        view = await self.find(arn)
        if view.status == CREATING:
            raise BackupInUseException(
                "There is another ongoing conflicting backup control plane operation on the table. "
                "The backup is either being created, deleted or restored to a table."
            )
        if any(key.partition("|")[0] == arn for key in self._restoring):  # keys: "<arn>|<table id>"
            raise BackupInUseException(f"Backup is being restored to a table: {arn}")
        if view.status == FAILED:
            self.records.remove(view.backup_id)
        elif self.system is not None and self.system.is_deleted_backup(view.backup_id):
            await self.system.delete_deleted_backup(view.backup_id)
        else:
            await asyncio.to_thread(self.vault.delete_backup, view.backup_id)
            self._manifests.pop(view.backup_id, None)
        return replace(view, status=DELETED, reason="")

    # --- restore ------------------------------------------------------------------------

    async def restore(self, arn: str, target_name: str, overrides: Overrides) -> dict[str, Any]:
        view = await self.find(arn)
        if view.status == CREATING:
            raise BackupInUseException(f"Backup is being created: {arn}")
        if view.status != AVAILABLE:
            raise BackupNotFoundException(f"Backup not found: {arn}")
        if self.system is not None and self.system.is_deleted_backup(view.backup_id):
            return await self.system.restore_deleted_backup(view.backup_id, target_name, overrides)
        engine = self.engine
        manifest = await self._manifest(view.backup_id)
        assert manifest is not None
        now = engine.clock()
        target = plan_target(view.table, target_name, overrides, now=now, region=engine.config.region,
                             account=engine.config.account)
        summary = RestoreSummary(now, True, source_backup_arn=arn, source_table_arn=view.table.arn)
        try:
            table = begin_restore(engine, target, summary)
        except TableExists:
            raise TableAlreadyExistsException(f"Table already exists: {target_name}") from None
        self._start_restore(table, manifest)
        return describe_table(table, 0, 0)

    def _start_restore(self, table: TableDefinition, manifest: BackupManifest) -> None:
        task = asyncio.get_running_loop().create_task(self._restore(table, manifest))
        self._restoring[f"{manifest.backup_arn}|{table.table_id}"] = task

    async def _restore(self, table: TableDefinition, manifest: BackupManifest) -> None:
        key = f"{manifest.backup_arn}|{table.table_id}"
        started = time.monotonic()
        try:
            await run_restore(self.engine, table, backup_items(self.vault, manifest),
                              f"restore backup {manifest.backup_id}", expected_items=manifest.item_count,
                              stopping=self._stopping)
        except Exception:  # run_restore logged it and removed the table
            self.metrics.restore("backup", 0.0, ok=False)
        else:
            self.metrics.restore("backup", time.monotonic() - started, ok=True)
        finally:
            self._restoring.pop(key, None)

    async def resume_restores(self) -> None:
        """Start again, from nothing, the restores the engine's last stop interrupted."""
        for table in interrupted_restores(self.engine):
            assert table.restore is not None
            await abandon_restore(self.engine, table)
            arn = table.restore.source_backup_arn or ""
            backup_id = fmt.backup_id_of_arn(arn)
            manifest = None if backup_id is None else await self._manifest(backup_id)
            if manifest is None:
                log.error("restore into table %s cannot resume: backup %s is gone", table.name, arn)
                continue
            log.info("resuming the restore of backup %s into table %s", arn, table.name)
            fresh = begin_restore(self.engine, table.replace(table_id=uuid.uuid4().hex), table.restore)
            self._start_restore(fresh, manifest)

    async def wait_idle(self) -> None:
        """Wait for every running backup and restore (tests; shutdown)."""
        while self._writing or self._restoring:
            await asyncio.gather(*self._writing.values(), *self._restoring.values(),
                                 return_exceptions=True)

    def close(self) -> None:
        self._stopping.set()
        self.snapshots.close()
        for task in (*self._writing.values(), *self._restoring.values()):
            task.cancel()
        self.records.close()

