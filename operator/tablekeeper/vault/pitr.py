"""Point-in-time recovery of a running engine's tables: archiving, bases, window, restore.

**Enabling** pins the table's moment at once: it becomes the window's first
base (an ordinary backup of type PITR, written in the background) and its
sequence number is where archiving starts.  From then on the **archiver**
ships every table's new change-log records to the vault at least once per
``interval`` (a second by default), as immutable sealed segments
(``pitr_format``); records not yet shipped are held back from the log's
24-hour trim (``Engine.hold_log``).  LatestRestorableDateTime is the last
time the archive was seen complete.  A new base is taken every
``base_every`` seconds or ``base_records`` records, so a restore replays a
bounded amount of log; bases and segments that no restore inside the window
can need are pruned.

**Restoring** to T plans from a listing of the vault (``pitr_plan``): the
newest base taken at or before T and the segments after it; a gap is refused
before the new table exists.  The base's items, with the replayed records'
final images laid over them, are bulk-loaded into the new table.

**Disabling** drops the window: the archive and bases are deleted.  A vault
that cannot be reached only delays archiving: writes go on, records wait in
the log, and DescribeContinuousBackups shows the lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

from tablekeeper.engine.background import barrier
from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    InvalidRestoreTimeException,
    PointInTimeRecoveryUnavailableException,
    TableAlreadyExistsException,
    TableNotFoundException,
)
from tablekeeper.engine.loading import TableExists, begin_restore
from tablekeeper.engine.storage.base import StoredRecord
from tablekeeper.engine.tables import RestoreSummary, TableDefinition, describe_table, table_arn
from tablekeeper.vault import format as fmt
from tablekeeper.vault import pitr_format as pf
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.errors import ObjectExists, VaultError
from tablekeeper.vault.format import BackupManifest
from tablekeeper.vault.metrics import VaultMetrics
from tablekeeper.vault.pitr_archive import PitrArchive
from tablekeeper.vault.pitr_plan import (
    DAY_MS,
    RestorePlan,
    earliest_restorable,
    plan_prune,
)
from tablekeeper.vault.pitr_state import PitrState, TablePitr
from tablekeeper.vault.records import CREATING
from tablekeeper.vault.restore import Overrides, plan_target, run_restore
from tablekeeper.vault.service import AVAILABLE, BackupView
from tablekeeper.vault.snapshot import Pinned, SnapshotJob, Snapshots

log = logging.getLogger(__name__)

DEFAULT_PERIOD_DAYS = 35
SEGMENT_RECORDS = 10_000  # records per segment at most
BASE_EVERY = 6 * 3600.0  # seconds between bases of a table
BASE_RECORDS = 1_000_000  # or this many records since the last base, whichever first
PRUNE_EVERY = 60.0


class PitrService:
    """PITR for one engine's tables in one vault; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        state: PitrState,
        *,
        interval: float = 1.0,
        base_every: float = BASE_EVERY,
        base_records: int = BASE_RECORDS,
        snapshots: Snapshots | None = None,
        metrics: VaultMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics or VaultMetrics()
        self.vault = vault
        self.snapshots = snapshots or Snapshots(engine, vault, None)
        self.archive = PitrArchive(vault)
        self.state = state
        self.interval = interval
        self.base_every = base_every
        self.base_records = base_records
        self._stopping = threading.Event()
        self._bases: dict[str, asyncio.Task[None]] = {}  # table id -> the base being written
        self._restores: set[asyncio.Task[None]] = set()
        self._pruned: dict[str, float] = {}
        engine.hold_log("pitr", self._floor)
        engine.on_delete(self._on_delete)

    def _floor(self, table_id: str) -> int | None:
        record = self.state.get(table_id)
        if record is None or not record.enabled or record.deleted_ms is not None:
            return None
        return record.archived_seq + 1

    def _now_ms(self) -> int:
        return self.engine.now_ms()

    # --- the API ----------------------------------------------------------------------

    def _table(self, name: str) -> TableDefinition:
        table = self.engine.find_table(name)
        if table is None or table.status != "ACTIVE":
            raise TableNotFoundException(f"Table not found: {self.engine.resolve_name(name)}")
        return table

    def describe(self, table_name: str) -> dict[str, Any]:
        """DescribeContinuousBackups' ContinuousBackupsDescription."""
        table = self._table(table_name)
        record = self.state.get(table.table_id)
        if record is None or not record.enabled:
            return {"ContinuousBackupsStatus": "ENABLED",
                    "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
        pitr: dict[str, Any] = {"PointInTimeRecoveryStatus": "ENABLED",
                                "RecoveryPeriodInDays": record.period_days}
        earliest, latest = self._window(record)
        if latest is not None:
            pitr["EarliestRestorableDateTime"] = earliest / 1000
            pitr["LatestRestorableDateTime"] = latest / 1000
        return {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": pitr}

    def _window(self, record: TablePitr) -> tuple[int, int | None]:
        latest = record.latest_ms
        if record.deleted_ms is not None and not record.deletion_recorded:
            latest = None  # its last records are not in the vault yet
        earliest = earliest_restorable(record.window_start_ms, record.period_days, self._now_ms())
        if latest is not None:
            earliest = min(earliest, latest)
        return earliest, latest

    def lag_seconds(self, table_id: str) -> float | None:
        """How far the archive is behind now (None: PITR off or no base yet)."""
        record = self.state.get(table_id)
        if record is None or not record.enabled or record.latest_ms is None:
            return None
        return max(0.0, (self._now_ms() - record.latest_ms) / 1000)

    async def update(self, table_name: str, enabled: bool, period_days: int | None) -> dict[str, Any]:
        table = self._table(table_name)
        record = self.state.get(table.table_id)
        if not enabled:
            if record is not None and record.enabled:
                self.state.update(record.table_id, enabled=False)
                self._spawn(self._drop_archive(table.table_id, record))
            return self.describe(table_name)
        period = period_days or (record.period_days if record is not None and record.enabled
                                 else DEFAULT_PERIOD_DAYS)
        if record is not None and record.enabled:
            if period != record.period_days:
                self.state.update(record.table_id, period_days=period)
                self._pruned.pop(table.table_id, None)  # a shorter period trims at once
                await self._write_settings(table.table_id)
            return self.describe(table_name)
        self._start_window(table, period)
        return self.describe(table_name)

    def _start_window(self, table: TableDefinition, period: int) -> None:
        """A new window: the base as of now, and archiving from its sequence on."""
        now_ms = self._now_ms()
        pinned = self.snapshots.pin(table, f"pitr-base:{table.table_id}:{now_ms}")
        try:
            self.state.put(TablePitr(
                table_id=table.table_id, table_name=table.name, table_arn=table.arn, enabled=True,
                period_days=period, window_start_ms=now_ms, archived_seq=pinned.sequence,
                definition=table.to_json(),
            ))
        except BaseException:
            self.snapshots.release(pinned)
            raise
        self._start_base(pinned, now_ms, first=True)

    # --- bases ------------------------------------------------------------------------

    def _pin_base(self, table: TableDefinition, first: bool, now_ms: int | None = None) -> None:
        now_ms = self._now_ms() if now_ms is None else now_ms
        self._start_base(self.snapshots.pin(table, f"pitr-base:{table.table_id}:{now_ms}"), now_ms, first)

    def _start_base(self, pinned: Pinned, now_ms: int, first: bool) -> None:
        table = pinned.table
        job = self.snapshots.job(pinned, fmt.new_backup_id(now_ms / 1000), now_ms / 1000,
                                 f"{table.name}$PITR", pf.BASE_TYPE,
                                 {pf.BASE_TABLE_ANNOTATION: table.table_id,
                                  pf.BASE_WINDOW_ANNOTATION: str(self._window_start(table.table_id))})
        task = asyncio.get_running_loop().create_task(self._write_base(pinned, job, first))
        self._bases[table.table_id] = task

    async def _write_base(self, pinned: Pinned, job: SnapshotJob, first: bool) -> None:
        table_id = pinned.table.table_id
        try:
            manifest = await self.snapshots.write(pinned, job)
            self.metrics.backup(pf.BASE_TYPE, self.engine.clock() - job.created, manifest.written_bytes,
                                ok=True)
            if first:
                await self._write_settings(table_id)
        except Exception as error:
            self.metrics.backup(pf.BASE_TYPE, 0.0, 0, ok=False)
            log.error("PITR base of table %s failed (retrying): %s", pinned.table.name, error)
            self._note_problem(table_id, f"write base: {error}")
            return
        finally:
            self._bases.pop(table_id, None)
        current = self.state.get(table_id)
        if current is None or not current.enabled:
            return
        created_ms = int(job.created * 1000)
        latest = current.latest_ms if current.latest_ms is not None else created_ms
        self.state.update(table_id, base_seq=job.sequence, base_ms=created_ms, latest_ms=latest,
                          problem="")

    def _window_start(self, table_id: str) -> int:
        record = self.state.get(table_id)
        return 0 if record is None else record.window_start_ms

    def _note_problem(self, table_id: str, problem: str) -> None:
        current = self.state.get(table_id)
        if current is not None and current.problem != problem:
            self.state.update(table_id, problem=problem)

    async def _write_settings(self, table_id: str) -> None:
        record = self.state.get(table_id)
        if record is None:
            return
        settings = pf.Settings(record.table_id, record.table_name, record.table_arn, record.enabled,
                               record.period_days, record.window_start_ms, self._now_ms(), record.deleted_ms)
        await asyncio.to_thread(self.vault.put_object, settings.object_name(), settings.to_body(),
                                kind=pf.KIND_SETTINGS, backup_id="")

    # --- archiving --------------------------------------------------------------------

    async def run(self) -> None:
        """The archiver: ship, take bases, prune; every ``interval`` until cancelled."""
        while True:
            started = time.monotonic()
            for listed in self.state.all():
                # Read the row again right before tending it: tending the tables before it awaited,
                # and a row listed then may be stale now (its first base done and no longer in
                # ``_bases``, which a stale row would take for a failed one and restart the window).
                record = self.state.get(listed.table_id)
                if record is not None and record.enabled:
                    try:
                        await self._tend(record)
                    except Exception as error:  # the vault is away, a table went: go on with the rest
                        log.warning("PITR of table %s: %s", record.table_name, error)
                        self._note_problem(record.table_id, str(error))
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _tend(self, record: TablePitr) -> None:
        if record.deleted_ms is not None:
            await self._tend_deleted(record)
            return
        table = self.engine.catalog.get(record.table_name)
        if table is None or table.table_id != record.table_id:
            return  # deleted under our feet (no hook ran): nothing more to archive
        unusable = self.engine.storage.unreadable(table.table_id)
        if unusable is not None:  # its file is damaged or gone: nothing to ship until it is back
            self._note_problem(record.table_id, f"the table's file cannot be used: {unusable}")
            return
        if record.base_seq is None and record.table_id not in self._bases:
            # The first base failed or was cut short (a stop, a crash): the window starts again
            # with the one taken now, as no restore can reach a time before a base.
            now_ms = self._now_ms()
            self.state.update(record.table_id, window_start_ms=now_ms)
            self._pin_base(table, first=True, now_ms=now_ms)
            return
        await self.ship(table)
        current = self.state.get(record.table_id)
        assert current is not None
        if current.base_ms is not None and current.table_id not in self._bases and (
            self._now_ms() - current.base_ms >= self.base_every * 1000
            or current.archived_seq - (current.base_seq or 0) >= self.base_records
        ):
            self._pin_base(table, first=False)
        if time.monotonic() - self._pruned.get(table.table_id, 0.0) >= PRUNE_EVERY:
            await self.prune(current)
            self._pruned[table.table_id] = time.monotonic()

    async def ship(self, table: TableDefinition) -> None:
        """Ship the table's records not yet in the vault, then mark the archive complete as of now."""
        reader = self.engine.reader(table)
        # Complete as of the millisecond before this one: a write that runs later in this
        # millisecond, after the barrier below, carries this millisecond's timestamp.
        checked_ms = self._now_ms() - 1
        # Records timestamped by then may still be committing: wait for them, or the archive
        # would be called complete as of a time whose last records it lacks.
        await barrier(self.engine)
        last = reader.stats().last_sequence
        while True:
            record = self.state.get(table.table_id)
            assert record is not None
            if record.archived_seq >= last:
                break
            records = reader.log(record.archived_seq, SEGMENT_RECORDS)
            if not records or records[0].sequence != record.archived_seq + 1:
                raise VaultError(f"archive table {table.name}: log records after "
                                 f"{record.archived_seq} are gone from the log")
            await self._put_segment(table.table_id, records)
            self.state.update(table.table_id, archived_seq=records[-1].sequence)
        record = self.state.get(table.table_id)
        assert record is not None
        if record.base_seq is not None:
            self.state.update(table.table_id, latest_ms=checked_ms, problem="")

    async def _put_segment(self, table_id: str, records: list[StoredRecord]) -> None:
        name = pf.segment_name(table_id, records)
        body = pf.encode_segment(table_id, records)
        with contextlib.suppress(ObjectExists):  # shipped before a crash: same records, same name
            await asyncio.to_thread(self.vault.put_object, name, body, kind=pf.KIND_SEGMENT, backup_id="")

    # --- deleted tables ---------------------------------------------------------------

    async def _on_delete(self, table: TableDefinition) -> None:
        """DeleteTable of a PITR table: keep its unshipped log records; the archive stays."""
        record = self.state.get(table.table_id)
        if record is None or not record.enabled:
            return
        await barrier(self.engine)  # every write acknowledged before the delete is in the log
        # From here to the catalog's removal nothing awaits: no write can slip in between.
        record = self.state.get(table.table_id)  # as it is now: the archiver went on meanwhile
        if record is None or not record.enabled:
            return
        reader = self.engine.reader(table)
        stats = reader.stats()
        tail: list[StoredRecord] = []
        after = record.archived_seq
        while chunk := reader.log(after, SEGMENT_RECORDS):
            tail.extend(chunk)
            after = chunk[-1].sequence
        self.state.keep_tail(record.replace(
            deleted_ms=self._now_ms(), definition=table.to_json(), item_count=stats.item_count,
            size_bytes=stats.item_bytes,
        ), tail)
        log.info("table %s deleted with PITR on: its archive is kept for %d days (%d records to ship)",
                 table.name, record.period_days, len(tail))

    async def _tend_deleted(self, record: TablePitr) -> None:
        """Ship a deleted table's last records, record the deletion, and drop it after the period."""
        assert record.deleted_ms is not None
        if not record.deletion_recorded:
            after = record.archived_seq
            while tail := self.state.tail(record.table_id, after, SEGMENT_RECORDS):
                await self._put_segment(record.table_id, tail)
                after = tail[-1].sequence
                self.state.update(record.table_id, archived_seq=after)
            await self._write_settings(record.table_id)
            self.state.update(record.table_id, deletion_recorded=True, latest_ms=record.deleted_ms,
                              problem="")
            return
        if self._now_ms() >= record.deleted_ms + record.period_days * DAY_MS:
            await self._drop_archive(record.table_id)
            self.state.remove(record.table_id)

    def deleted_backups(self) -> list[BackupView]:
        """A ``<table>$DeletedTableBackup`` SYSTEM backup for each deleted table's archive."""
        views = []
        for record in self.state.all():
            if record.deleted_ms is None or not record.enabled:
                continue
            views.append(BackupView(
                backup_id=deleted_backup_id(record),
                status=AVAILABLE if record.deletion_recorded else CREATING,
                name=f"{record.table_name}$DeletedTableBackup", backup_type="SYSTEM",
                created=record.deleted_ms / 1000, table=TableDefinition.from_json(record.definition),
                item_count=record.item_count, size_bytes=record.size_bytes,
                expires=(record.deleted_ms + record.period_days * DAY_MS) / 1000,
            ))
        return views

    def _deleted_record(self, backup_id: str) -> TablePitr | None:
        return next((r for r in self.state.all() if r.deleted_ms is not None and r.enabled
                     and deleted_backup_id(r) == backup_id), None)

    def is_deleted_backup(self, backup_id: str) -> bool:
        return self._deleted_record(backup_id) is not None

    async def restore_deleted_backup(
        self, backup_id: str, target_name: str, overrides: Overrides
    ) -> dict[str, Any]:
        """RestoreTableFromBackup of ``<table>$DeletedTableBackup``: the table as it was deleted."""
        record = self._deleted_record(backup_id)
        assert record is not None and record.deleted_ms is not None
        return await self.restore_record(record, target_name, record.deleted_ms, overrides)

    async def delete_deleted_backup(self, backup_id: str) -> None:
        """DeleteBackup of a deleted table's SYSTEM backup: its archive goes now."""
        record = self._deleted_record(backup_id)
        if record is None:
            return
        self.state.update(record.table_id, enabled=False)
        await self._drop_archive(record.table_id)
        self.state.remove(record.table_id)

    # --- listing the archive ----------------------------------------------------------

    async def prune(self, record: TablePitr) -> None:
        earliest, _ = self._window(record)

        def prune() -> None:
            bases = [base for base, _ in self.archive.bases(record.table_id)]
            plan = plan_prune(bases, self.archive.segments(record.table_id), earliest)
            for base in plan.bases:
                self.vault.delete_backup(base.backup_id)
            for segment in plan.segments:
                self.vault.store.delete(segment.name)

        await asyncio.to_thread(prune)

    async def _drop_archive(self, table_id: str, window: TablePitr | None = None) -> None:
        """Drop a table's archive: all of it, or when ``window`` is given only that window's.

        Disabling drops the window it ends; a window enabled again meanwhile
        keeps its own bases (told apart by their window annotation), segments
        (after the old window's last archived record) and settings.
        """
        base = self._bases.get(table_id)
        if base is not None:
            await asyncio.gather(base, return_exceptions=True)
        cutoff_ms = self._now_ms()

        def old(manifest: BackupManifest) -> bool:
            return window is None or manifest.annotations.get(pf.BASE_WINDOW_ANNOTATION) == str(
                window.window_start_ms)

        def drop() -> None:
            for found, manifest in self.archive.bases(table_id):
                if old(manifest):
                    self.vault.delete_backup(found.backup_id)
            for ref in self.archive.segments(table_id):
                if window is None or ref.last <= window.archived_seq:
                    self.vault.store.delete(ref.name)
            for info in list(self.vault.store.list(pf.settings_prefix(table_id))):
                if window is None or pf.settings_time(info.key) <= cutoff_ms:
                    self.vault.store.delete(info.key)

        try:
            await asyncio.to_thread(drop)
        except VaultError as error:
            log.warning("PITR disabled for table %s; its archive stays for now: %s", table_id, error)

    # --- restore ----------------------------------------------------------------------

    async def restore(
        self, source: str, target_name: str, when_ms: int | None, overrides: Overrides
    ) -> dict[str, Any]:
        """RestoreTableToPointInTime: ``when_ms`` None means the latest restorable time.

        ``source`` is a live table's name or ARN, the ARN of a deleted
        table whose archive is still kept, or the name or ARN of a table
        archived in the vault by another engine (the newest such archive).
        """
        try:
            record = self._source(source)
        except TableNotFoundException:
            # Not this engine's table: another engine's archive in the same vault, or one
            # whose engine is gone (restores into a new engine, e.g. by the operator).
            record = await asyncio.to_thread(self._archived, source)
            if record is None:
                raise
        if record is None or not record.enabled:
            raise PointInTimeRecoveryUnavailableException(
                f"Point in time recovery is not enabled for table '{self.engine.resolve_name(source)}'"
            )
        return await self.restore_record(record, target_name, when_ms, overrides)

    def _source(self, source: str) -> TablePitr | None:
        table = self.engine.find_table(source)
        if table is not None and table.status == "ACTIVE":
            return self.state.get(table.table_id)
        if source.startswith("arn:"):
            deleted = [r for r in self.state.all() if r.table_arn == source and r.deleted_ms is not None]
            if deleted:
                return max(deleted, key=lambda r: r.deleted_ms or 0)
        raise TableNotFoundException(f"Table not found: {self.engine.resolve_name(source)}")

    def _archived(self, source: str) -> TablePitr | None:
        """The vault's newest archive of a table by ARN (or name), as a record to restore from."""
        config = self.engine.config
        arn = source if source.startswith("arn:") else table_arn(config.region, config.account, source)
        found: tuple[int, TablePitr] | None = None
        for table_id in self.archive.table_ids():
            archived = self.archive.describe(table_id)
            settings = archived.settings
            if settings is None or settings.table_arn != arn or not settings.enabled:
                continue
            latest = archived.latest_ms
            if latest is None or (found is not None and found[0] >= settings.changed_ms):
                continue
            found = (settings.changed_ms, TablePitr(
                table_id=table_id, table_name=settings.table_name, table_arn=settings.table_arn,
                enabled=True, period_days=settings.period_days, window_start_ms=settings.window_start_ms,
                archived_seq=0, latest_ms=latest, deleted_ms=settings.deleted_ms, deletion_recorded=True,
            ))
        return None if found is None else found[1]

    async def restore_record(
        self, record: TablePitr, target_name: str, when_ms: int | None, overrides: Overrides
    ) -> dict[str, Any]:
        earliest, latest = self._window(record)
        if latest is None:
            raise PointInTimeRecoveryUnavailableException(
                f"Point in time recovery of table '{record.table_name}' has no restorable time yet"
            )
        target_ms = latest if when_ms is None else when_ms
        if not earliest <= target_ms <= latest:
            raise InvalidRestoreTimeException(
                f"Restore time is outside the restorable window: earliest {earliest / 1000}, "
                f"latest {latest / 1000}, requested {target_ms / 1000}"
            )
        what = f"restore table {record.table_name} to {target_ms / 1000}"
        plan, manifest = await asyncio.to_thread(self._plan, record.table_id, target_ms, what)
        base_table = TableDefinition.from_json(manifest.definition)
        now = self.engine.clock()
        planned = plan_target(base_table, target_name, overrides, now=now, region=self.engine.config.region,
                              account=self.engine.config.account)
        summary = RestoreSummary(target_ms / 1000, True, source_table_arn=record.table_arn)
        try:
            restoring = begin_restore(self.engine, planned, summary)
        except TableExists:
            raise TableAlreadyExistsException(f"Table already exists: {target_name}") from None
        task = asyncio.get_running_loop().create_task(self._restore(restoring, plan, what))
        self._restores.add(task)
        task.add_done_callback(self._restores.discard)
        return describe_table(restoring, 0, 0)

    def _plan(self, table_id: str, target_ms: int, what: str) -> tuple[RestorePlan, BackupManifest]:
        try:
            return self.archive.plan(table_id, target_ms, what)
        except VaultError as error:  # a gap, or no base: refused before any table exists
            raise PointInTimeRecoveryUnavailableException(str(error)) from None

    async def _restore(self, table: TableDefinition, plan: RestorePlan, what: str) -> None:
        started = time.monotonic()
        try:
            await run_restore(self.engine, table, lambda: self.archive.items(table, plan), what,
                              stopping=self._stopping)
        except Exception:  # run_restore logged it and removed the table
            self.metrics.restore("pitr", 0.0, ok=False)
        else:
            self.metrics.restore("pitr", time.monotonic() - started, ok=True)

    def lags(self) -> dict[str, float]:
        """Each PITR table's archive lag in seconds, by table name (for the metrics)."""
        lags = {}
        for record in self.state.all():
            lag = self.lag_seconds(record.table_id) if record.deleted_ms is None else None
            if lag is not None:
                lags[record.table_name] = lag
        return lags

    async def wait_idle(self) -> None:
        while self._bases or self._restores:
            await asyncio.gather(*self._bases.values(), *self._restores, return_exceptions=True)

    def close(self) -> None:
        self._stopping.set()
        self.snapshots.close()
        for task in (*self._bases.values(), *self._restores):
            task.cancel()
        self.state.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._restores.add(task)
        task.add_done_callback(self._restores.discard)


def deleted_backup_id(record: TablePitr) -> str:
    """The stable id of a deleted table's SYSTEM backup: its deletion time and its table id."""
    assert record.deleted_ms is not None
    return deleted_table_backup_id(record.table_id, record.deleted_ms)


def deleted_table_backup_id(table_id: str, deleted_ms: int) -> str:
    """``deleted_backup_id`` from the archive's own settings (the table's id and deletion time)."""
    return fmt.new_backup_id(deleted_ms / 1000, nonce=table_id[:8])
