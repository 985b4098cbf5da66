"""The engine's own record of backups the vault cannot show: being written, or failed.

A backup is in the vault only once its manifest is written, last.  Until
then DescribeBackup and ListBackups must still show it (CREATING), and a
backup that failed (a full disk, an unreachable bucket) must show why.  The
engine keeps those in ``DATA/backups.db``: one row per such backup, removed
when the backup becomes AVAILABLE or is deleted.  A row still CREATING when
the engine starts belongs to a backup the engine's stop interrupted: it is
marked FAILED (its snapshot is gone; what it wrote, garbage collection
removes).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tablekeeper.engine.storage.base import StorageError
from tablekeeper.engine.storage.sqlite import connect_state, opening

CREATING: Final = "CREATING"
FAILED: Final = "FAILED"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backups (
    backup_id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL,
    name TEXT NOT NULL, backup_type TEXT NOT NULL, created REAL NOT NULL,
    definition TEXT NOT NULL, item_count INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    sequence INTEGER NOT NULL)
"""


@dataclass(frozen=True, slots=True)
class PendingBackup:
    """A backup not (yet) in the vault: CREATING, or FAILED with a reason."""

    backup_id: str
    status: str
    name: str
    backup_type: str
    created: float
    definition: str  # the source table's TableDefinition.to_json() at the call
    item_count: int  # the source table's, at the snapshot
    size_bytes: int  # the source table's DynamoDB size, at the snapshot
    sequence: int
    reason: str = ""


def _record(row: tuple) -> PendingBackup:  # type: ignore[type-arg]
    return PendingBackup(
        backup_id=row[0], status=row[1], reason=row[2], name=row[3], backup_type=row[4],
        created=row[5], definition=row[6], item_count=row[7], size_bytes=row[8], sequence=row[9],
    )


def read_pending(directory: Path) -> list[PendingBackup]:
    """An engine's CREATING and FAILED backups, read-only (the engine may be running)."""
    path = directory / "backups.db"
    if not path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return sorted((_record(row) for row in conn.execute("SELECT * FROM backups")),
                          key=lambda record: record.backup_id)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"read backups of {directory}: {exc}") from exc


class BackupRecords:
    """``DATA/backups.db``: each change is one small synchronous, fsynced transaction."""

    def __init__(self, directory: Path) -> None:
        with opening(directory / "backups.db"):
            self._conn = connect_state(directory / "backups.db")
            self._conn.execute(_SCHEMA)
            self._pending: dict[str, PendingBackup] = {
                row[0]: _record(row) for row in self._conn.execute("SELECT * FROM backups")
            }

    def interrupted(self, reason: str) -> list[PendingBackup]:
        """Mark every CREATING backup FAILED with ``reason`` (at startup); returns them."""
        stale = [record for record in self._pending.values() if record.status == CREATING]
        for record in stale:
            self.fail(record.backup_id, reason)
        return stale

    def all(self) -> list[PendingBackup]:
        return sorted(self._pending.values(), key=lambda record: record.backup_id)

    def get(self, backup_id: str) -> PendingBackup | None:
        return self._pending.get(backup_id)

    def add(self, record: PendingBackup) -> None:
        self._execute(
            "INSERT OR REPLACE INTO backups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.backup_id, record.status, record.reason, record.name, record.backup_type,
             record.created, record.definition, record.item_count, record.size_bytes, record.sequence),
            f"record backup {record.backup_id}",
        )
        self._pending[record.backup_id] = record

    def fail(self, backup_id: str, reason: str) -> None:
        record = self._pending.get(backup_id)
        if record is None:
            return
        self._execute("UPDATE backups SET status = ?, reason = ? WHERE backup_id = ?",
                      (FAILED, reason, backup_id), f"record backup {backup_id}")
        self._pending[backup_id] = PendingBackup(**{**_fields(record), "status": FAILED, "reason": reason})

    def remove(self, backup_id: str) -> None:
        self._execute("DELETE FROM backups WHERE backup_id = ?", (backup_id,), f"forget backup {backup_id}")
        self._pending.pop(backup_id, None)

    def _execute(self, sql: str, params: tuple[object, ...], what: str) -> None:
        try:
            self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"{what}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()


def _fields(record: PendingBackup) -> dict[str, object]:
    return {name: getattr(record, name) for name in PendingBackup.__slots__}

