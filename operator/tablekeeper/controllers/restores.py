"""The Restore controller: a new Table whose own engine restores it from a backup or a table's archive.

Every Table has its own engine, so a restore's target is a new Table, and
that Table's engine does the restore through its DynamoDB API
(RestoreTableFromBackup, RestoreTableToPointInTime), reading the vault it
runs with: the source's.  The operator decides and tracks (``restore_plan``
decides); it never moves an item itself.

On create (and resume), while the phase is Pending:

1. resolve the source: a Backup object (waits while it is being made; a
   failed or missing one is refused), or a backup or a table's archive in a
   BackupVault (waits until the vault is Ready).  The operator reads the
   vault itself (the BackupVault's key and credentials) for the source
   table's definition: the backup's manifest, or the archive's base for the
   moment asked (a live table's, or a deleted one's);
2. create the target Table: the source's definition with the overrides,
   annotated and labelled with the Restore's name, without ownerReference
   (deleting the Restore keeps the table).  A Table of that name carrying
   the annotation is this Restore's (a pass before an operator restart);
   any other is refused (``TargetExists``).  The Table controller builds its
   engine and waits for the restore instead of creating the table;
3. once the target's engine answers, the restore call; unless the engine
   already has the table restored from this source (an earlier call, not
   yet recorded), which is taken as it is; a table of that name restored
   from anything else is refused.  The call recorded, the phase is
   Restoring.

A timer tracks a Restoring restore: DescribeTable's RestoreSummary and item
count give itemsRestored and progress; the moment a "latest" restore chose
goes into status.source.  Completed once the table is ACTIVE with every item
and the Table is Ready.  Failed when the engine refuses the restore or drops
the table (a restore that failed); the target Table, then empty, is deleted,
as DynamoDB leaves no table after a failed restore.  Completed and Failed are
final: nothing more is done.  Deleting a Restore does nothing to its table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import kopf
import pydantic

from tablekeeper.controllers import conditions
from tablekeeper.controllers.backups import BACKUPS
from tablekeeper.controllers.engine_client import (
    EngineBusy,
    EngineClient,
    EngineRefused,
    EngineRestore,
    EngineUnavailable,
)
from tablekeeper.controllers.kube import Kind, Kube, UsesKube
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.controllers.restore_plan import (
    BackupSource,
    RestoreOutcome,
    SourceNotReady,
    SourceRefused,
    SourceTable,
    backup_id_of_arn,
    backup_of_object,
    duration,
    is_final,
    made_by,
    phase_of,
    restore_overrides,
    restore_status_after,
    restored_fields,
    target_name,
    target_table,
    with_restore_time,
)
from tablekeeper.controllers.table_plan import EngineTable
from tablekeeper.controllers.tables import TABLES, TableSettings, engine_of, table_or_none, table_problem
from tablekeeper.controllers.vaults import (
    BACKUP_VAULTS,
    StoreOpener,
    VaultCheckFailed,
    open_vault,
    vault_problem,
)
from tablekeeper.controllers.verdicts import Clock, Reporter, problems, utc_now
from tablekeeper.resources.common import API_VERSION, GROUP, VERSION
from tablekeeper.resources.restore import (
    PointInTimeSource,
    Restore,
    RestorePhase,
    RestoreSourceType,
    RestoreStatus,
)
from tablekeeper.resources.table import Table
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.errors import StoreUnavailable, VaultError
from tablekeeper.vault.format import BackupNotFound, backup_arn
from tablekeeper.vault.store import open_store

if TYPE_CHECKING:
    from tablekeeper.vault.pitr_archive import ArchivedTable, PitrArchive
    from tablekeeper.vault.service import BackupView

KIND: Final = "Restore"
PLURAL: Final = "restores"
RESTORES: Final = Kind(API_VERSION, PLURAL)

logger = logging.getLogger(__name__)


# --- the source, read from the vault --------------------------------------------------------------


def engine_table(view: BackupView) -> EngineTable:
    """A backup's source table as DescribeTable would show it."""
    from tablekeeper.engine.tables import describe_table

    return EngineTable.from_wire(describe_table(view.table, view.item_count, view.size_bytes))


def read_backup(vault: Vault, backup: BackupSource, kind: RestoreSourceType) -> SourceTable:
    """The backup ``backup`` names, from its manifest; ``SourceRefused`` when it is not one to restore."""
    # Imported here: they bring the engine's modules, which only a restore needs.
    from tablekeeper.vault.pitr_format import BASE_TYPE
    from tablekeeper.vault.service import BackupView

    manifest = vault.load_manifest(backup.backup_id, "restore")
    if manifest.backup_type == BASE_TYPE:
        raise SourceRefused(
            f"backup {backup.backup_id} is a point-in-time recovery base, not a backup: restore a point in"
            " time of its table instead"
        )
    view = BackupView.of_manifest(manifest)
    if backup.backup_arn is not None and backup.backup_arn != view.arn:
        raise SourceRefused(f"backup {backup.backup_id} in BackupVault {backup.vault} is {view.arn},"
                            f" not {backup.backup_arn}")  # fmt: skip
    return SourceTable(
        type=kind, vault=backup.vault, table=engine_table(view), table_arn=view.table.arn,
        backup_id=view.backup_id, backup_arn=view.arn, item_count=view.item_count, size_bytes=view.size_bytes,
    )  # fmt: skip


def read_vault_backup(
    vault: Vault, vault_name: str, backup: BackupSource, kind: RestoreSourceType
) -> SourceTable:
    """A backup a Restore names by id or ARN: one with a manifest, or a deleted table's
    ``$DeletedTableBackup`` (``read_deleted_table_backup``); ``BackupNotFound`` when neither."""
    try:
        return read_backup(vault, backup, kind)
    except BackupNotFound:
        deleted = read_deleted_table_backup(vault, vault_name, backup)
        if deleted is None:
            raise
        return deleted


def read_archive(vault: Vault, vault_name: str, source: PointInTimeSource) -> SourceTable:
    """The archive of the table ``source`` names (the newest, as the engine picks it) and the table's
    definition at the moment asked (its base's); ``SourceRefused`` when there is none."""
    from tablekeeper.vault.pitr_archive import PitrArchive

    archive = PitrArchive(vault)
    which = source.table_arn or source.table_name
    newest: tuple[int, str, ArchivedTable] | None = None
    for table_id, archived in _archives(archive):
        settings = archived.settings
        assert settings is not None
        if which not in (settings.table_arn, settings.table_name):
            continue
        if newest is None or settings.changed_ms > newest[0]:
            newest = (settings.changed_ms, table_id, archived)
    if newest is None:
        raise SourceRefused(f"BackupVault {vault_name} has no point-in-time recovery archive of {which}")
    _, table_id, archived = newest
    return _archive_source(archive, vault_name, which, table_id, archived, source.restore_date_time)


def read_deleted_table_backup(vault: Vault, vault_name: str, backup: BackupSource) -> SourceTable | None:
    """The source a ``<table>$DeletedTableBackup`` names (ListBackups shows one per deleted table
    whose archive is kept): that table's archive as of its deletion; None when no archive is that."""
    from tablekeeper.vault.pitr import deleted_table_backup_id
    from tablekeeper.vault.pitr_archive import PitrArchive

    archive = PitrArchive(vault)
    for table_id, archived in _archives(archive):
        settings = archived.settings
        assert settings is not None
        deleted_ms = settings.deleted_ms
        if deleted_ms is None or deleted_table_backup_id(table_id, deleted_ms) != backup.backup_id:
            continue
        arn = backup_arn(settings.table_arn, backup.backup_id)  # as ListBackups showed it
        if backup.backup_arn is not None and backup.backup_arn != arn:
            raise SourceRefused(f"backup {backup.backup_id} in BackupVault {vault_name} is {arn},"
                                f" not {backup.backup_arn}")  # fmt: skip
        # Exactly that millisecond (no float round trip): the table's last writes are in it.
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=deleted_ms)
        return _archive_source(archive, vault_name, settings.table_arn, table_id, archived, when)
    return None


def _archives(archive: PitrArchive) -> Iterator[tuple[str, ArchivedTable]]:
    """The vault's restorable archives: PITR on, with a restorable time."""
    for table_id in archive.table_ids():
        archived = archive.describe(table_id)
        settings = archived.settings
        if settings is not None and settings.enabled and archived.latest_ms is not None:
            yield table_id, archived


def _archive_source(
    archive: PitrArchive, vault_name: str, which: str, table_id: str, archived: ArchivedTable,
    when: datetime | None,
) -> SourceTable:
    from tablekeeper.vault.service import BackupView

    assert archived.settings is not None and archived.latest_ms is not None
    target_ms = archived.latest_ms if when is None else int(when.timestamp() * 1000)
    _, manifest = archive.plan(table_id, target_ms, f"restore table {which}")
    view = BackupView.of_manifest(manifest)
    return SourceTable(
        type=RestoreSourceType.POINT_IN_TIME, vault=vault_name, table=engine_table(view),
        table_arn=archived.settings.table_arn, restore_time=when, size_bytes=view.size_bytes,
    )  # fmt: skip


# --- the controller -------------------------------------------------------------------------------


class RestorePass:
    """One handler call on one Restore: its body, the clock, and what it reports."""

    def __init__(self, body: kopf.Body, patch: kopf.Patch, metrics: Metrics | None, now: datetime) -> None:
        self.body, self.now, self.metrics = body, now, metrics
        self.namespace, self.name = str(body.metadata.namespace), str(body.metadata.name)
        self.generation: int | None = body.metadata.get("generation")
        self.reporter = Reporter(KIND, body, patch, RestoreStatus, metrics)
        self.source_type = "Unknown"  # for the metrics, once the spec is read

    def report(self, outcome: RestoreOutcome, message: str, fields: Mapping[str, Any] | None = None) -> None:
        previous = dict(self.reporter.status)  # the reporter's is updated in place
        status, changed = restore_status_after(outcome, message, previous, self.generation, self.now, fields)
        self.reporter.write(outcome.value, status, changed)
        if self.metrics is not None and is_final(status) and not is_final(previous):
            done = phase_of(status) is RestorePhase.COMPLETED
            seconds = duration({**previous, **status}) if done else None
            self.metrics.restore_finished(self.source_type, status["phase"], seconds)

    def refuse(self, outcome: RestoreOutcome, message: str) -> kopf.PermanentError:
        self.report(outcome, message)
        return kopf.PermanentError(message)

    def wait(self, outcome: RestoreOutcome, message: str, delay: float) -> kopf.TemporaryError:
        self.report(outcome, f"waiting: {message}")
        return kopf.TemporaryError(message, delay=delay)


@dataclass
class RestoreController(UsesKube):
    settings: TableSettings
    kube_factory: Callable[[], Kube]
    metrics: Metrics | None = None
    clock: Clock = utc_now
    opener: StoreOpener = open_store
    # Sources resolved, by Restore uid: passes waiting for the target's engine do not read the vault again.
    _sources: dict[str, SourceTable] = field(default_factory=dict)

    @property
    def poll_interval(self) -> float:
        return self.settings.poll_delay

    def reconcile(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """Resolve the source, create the target Table, and start the restore (once)."""
        if is_final(body.status) or phase_of(body.status) is RestorePhase.RESTORING:
            return  # done, or started: the timer tracks it
        run = RestorePass(body, patch, self.metrics, self.clock())
        try:
            restore = Restore.model_validate(dict(body))
        except pydantic.ValidationError as error:
            raise run.refuse(RestoreOutcome.INVALID_SPEC, f"read Restore: {problems(error)}") from None
        run.source_type = restore.spec.source.type.value
        try:
            self.begin(run, restore)
        finally:
            if phase_of(run.reporter.status) is not RestorePhase.PENDING:  # started, or final
                self._sources.pop(str(body.metadata.uid), None)

    def begin(self, run: RestorePass, restore: Restore) -> None:
        source = self.source(run, restore)
        found_table, table = self.target(run, restore, source)
        client = self.engine(run, table)
        calling = False
        try:
            found = client.describe_restore()
            if found is not None and not source.made(found):
                raise run.refuse(RestoreOutcome.TARGET_EXISTS, (
                    f"the engine of Table {table.metadata.name} already has a table {found.name} that this"
                    " Restore did not restore"))  # fmt: skip
            started = run.reporter.status.get("startedAt") or conditions.format_time(run.now)
            if found is None:
                calling = True
                found = self.start(client, restore, source)
                logger.info("Restore %s/%s: started restoring %s into table %s", run.namespace, run.name,
                            source.backup_arn or source.table_arn, found.name)  # fmt: skip
        except (EngineUnavailable, EngineBusy) as error:
            raise run.wait(RestoreOutcome.TARGET_NOT_READY, f"the engine of the target table: {error}",
                           self.settings.retry_delay) from None  # fmt: skip
        except EngineRefused as error:
            run.report(RestoreOutcome.ENGINE_REFUSED, str(error))
            if calling:  # the engine refused the restore: it has no table, the Table is empty
                self.discard_target(run, restore)
            raise
        fields = {"startedAt": started, "source": source.chosen()}
        self.report_restore(run, found_table, found, source.item_count, fields)

    def source(self, run: RestorePass, restore: Restore) -> SourceTable:
        """The source, resolved (once per Restore while this operator runs)."""
        key = str(run.body.metadata.uid)
        if key in self._sources:
            return self._sources[key]
        try:
            source = self.read_source(run.namespace, restore)
        except SourceNotReady as waiting:
            raise run.wait(RestoreOutcome.SOURCE_NOT_READY, str(waiting), self.settings.retry_delay) from None
        except SourceRefused as refused:
            raise run.refuse(RestoreOutcome.SOURCE_REFUSED, str(refused)) from None
        self._sources[key] = source
        return source

    def read_source(self, namespace: str, restore: Restore) -> SourceTable:
        spec = restore.spec.source
        backup: BackupSource | None = None
        if spec.backup_ref is not None:
            name = spec.backup_ref.name
            backup = backup_of_object(self.kube.get(BACKUPS, namespace, name), name)
        elif spec.vault_backup is not None:
            named = spec.vault_backup
            backup_id = named.backup_id or backup_id_of_arn(str(named.backup_arn))
            backup = BackupSource(named.vault_ref.name, backup_id, named.backup_arn)
        point = spec.point_in_time
        vault_name = backup.vault if backup is not None else point.vault_ref.name if point else ""
        vault = self.open_vault(namespace, vault_name)
        try:
            if spec.vault_backup is not None and backup is not None:
                return read_vault_backup(vault, vault_name, backup, spec.type)
            if backup is not None:
                return read_backup(vault, backup, spec.type)
            assert point is not None  # exactly one source: the model's rule
            return read_archive(vault, vault_name, point)
        except BackupNotFound as error:
            raise SourceRefused(f"{error} (BackupVault {vault_name})") from None
        except StoreUnavailable as error:
            raise SourceNotReady(f"read BackupVault {vault_name}: {error}") from None
        except VaultError as error:  # damaged, a wrong key, a gap in an archive: not for a retry to mend
            raise SourceRefused(str(error)) from None

    def open_vault(self, namespace: str, name: str) -> Vault:
        problem = vault_problem(self.kube.get(BACKUP_VAULTS, namespace, name), name)
        if problem is not None:
            raise SourceNotReady(problem)
        try:
            vault = open_vault(self.kube, namespace, name, self.opener)
        except VaultCheckFailed as failure:
            raise SourceNotReady(f"open BackupVault {name}: {failure.message}") from None
        if vault is None:
            raise SourceNotReady(f"BackupVault {name} does not exist")
        return vault

    def target(self, run: RestorePass, restore: Restore, source: SourceTable) -> tuple[dict[str, Any], Table]:
        """The target Table, created unless this Restore created it before; as the API has it, and read."""
        name = target_name(restore)
        try:
            body = target_table(restore, source)
        except SourceRefused as refused:
            raise run.refuse(RestoreOutcome.SOURCE_REFUSED, str(refused)) from None
        if not self.kube.create(TABLES, body):
            found = self.kube.get(TABLES, run.namespace, name)
            if found is None:  # deleted since: create it again on the next pass
                raise kopf.TemporaryError(f"create Table {name}: it went meanwhile", delay=1)
            if not made_by(found, run.name):
                raise run.refuse(RestoreOutcome.TARGET_EXISTS, (
                    f"a Table named {name} exists and was not created by this Restore: restore into another"
                    " target.tableName, or delete that Table"))  # fmt: skip
            if (found.get("metadata") or {}).get("deletionTimestamp"):
                raise run.refuse(RestoreOutcome.FAILED, f"Table {name} is being deleted")
            body = found
        return body, Table.model_validate(body)

    def engine(self, run: RestorePass, table: Table) -> EngineClient:
        try:
            return engine_of(self.kube, self.settings, table)
        except kopf.TemporaryError as error:  # no credentials yet: the Table controller is building it
            message = f"the engine of Table {table.metadata.name}: {error}"
            raise run.wait(RestoreOutcome.TARGET_NOT_READY, message, self.settings.retry_delay) from None

    def start(self, client: EngineClient, restore: Restore, source: SourceTable) -> EngineRestore:
        overrides = restore_overrides(restore.spec.target, source.table)
        if source.backup_arn is not None:
            return client.restore_from_backup(source.backup_arn, overrides)
        return client.restore_to_point_in_time(source.table_arn, source.restore_time, overrides)

    def track(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """While Restoring: how far the target engine is, and whether the target Table is Ready."""
        if phase_of(body.status) is not RestorePhase.RESTORING:
            return
        run = RestorePass(body, patch, self.metrics, self.clock())
        try:
            restore = Restore.model_validate(dict(body))
        except pydantic.ValidationError:
            return  # a spec that was valid when the restore started: immutable, so not ours to judge
        run.source_type = restore.spec.source.type.value
        name = target_name(restore)
        found_table = self.kube.get(TABLES, run.namespace, name)
        if found_table is None or (found_table.get("metadata") or {}).get("deletionTimestamp"):
            run.report(RestoreOutcome.FAILED, f"Table {name} was deleted during the restore")
            return
        table = table_or_none(found_table)
        try:
            if table is None:
                raise kopf.TemporaryError(f"Table {name} is invalid")
            client = engine_of(self.kube, self.settings, table)
            found = client.describe_restore()
            expected = self.expected_items(client, found, body.status)
        except (kopf.TemporaryError, kopf.PermanentError) as error:
            run.report(RestoreOutcome.ENGINE_UNAVAILABLE, f"cannot reach the engine of Table {name}: {error}")
            return
        if found is None:
            run.report(RestoreOutcome.FAILED, (
                f"the engine of Table {name} has no table {restore.spec.target.table_name} any more: the"
                " restore failed (the engine's log says why)"))  # fmt: skip
            self.discard_target(run, restore)
            return
        self.report_restore(run, found_table, found, expected, {})

    @staticmethod
    def expected_items(
        client: EngineClient, found: EngineRestore | None, status: Mapping[str, Any]
    ) -> int | None:
        """The backup's item count, while a restore of a backup is loading (the engine knows it)."""
        arn = (status.get("source") or {}).get("backupArn")
        if found is None or found.restored or not arn:
            return None
        described = client.describe_backup(arn)
        return None if described is None else described.item_count

    def report_restore(
        self, run: RestorePass, found_table: Mapping[str, Any], found: EngineRestore, expected: int | None,
        fields: Mapping[str, Any],
    ) -> None:  # fmt: skip
        """Report the engine's table: Restoring while it loads, then Completed once the Table is Ready."""
        name = str((found_table.get("metadata") or {}).get("name"))
        status = {**restored_fields(found, expected), **fields}
        chosen = status.get("source") or run.reporter.status.get("source")
        if chosen:
            status["source"] = with_restore_time(chosen, found)
        counted = f"table {found.name}: {found.item_count} items"
        if not found.restored:
            run.report(RestoreOutcome.RESTORING, f"restoring {counted} so far", status)
            return
        problem = table_problem(found_table, name)
        if problem is not None:
            run.report(RestoreOutcome.TABLE_NOT_READY, f"restored {counted}; waiting: {problem}", status)
        else:
            run.report(RestoreOutcome.COMPLETED, f"restored {counted}; Table {name} is Ready", status)

    def discard_target(self, run: RestorePass, restore: Restore) -> None:
        """Delete the target Table this Restore created; only when its engine has no table (nothing
        was restored)."""
        name = target_name(restore)
        found = self.kube.get(TABLES, run.namespace, name)
        if found is not None and made_by(found, run.name):
            self.kube.delete(TABLES, run.namespace, name)
            logger.info("Restore %s/%s failed: its empty Table %s is deleted", run.namespace, run.name, name)

    def forget(self, body: kopf.Body, patch: kopf.Patch) -> None:
        self._sources.pop(str(body.metadata.uid), None)
        Reporter(KIND, body, patch, RestoreStatus, self.metrics).forget()


def register(registry: kopf.OperatorRegistry, controller: RestoreController) -> None:
    """Register the Restore handlers in ``registry``."""
    on: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.resume(**on)
    @kopf.on.create(**on)
    def start_restore(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.reconcile(body, patch)

    def restoring(body: kopf.Body, **_: Any) -> bool:
        # kopf runs the timer only while this holds: finished restores cost nothing.
        return body.status.get("phase") == RestorePhase.RESTORING

    interval = controller.poll_interval

    @kopf.timer(**on, interval=interval, initial_delay=interval, when=restoring)
    def track_restore(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.track(body, patch)

    @kopf.on.delete(**on, optional=True)  # no finalizer: deleting a Restore keeps its table
    def forget_restore(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.forget(body, patch)
