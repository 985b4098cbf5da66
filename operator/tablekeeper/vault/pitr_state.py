"""The engine's own record of point-in-time recovery: ``DATA/pitr.db``, one row per table.

The vault holds the archive; this holds what the archiver needs to go on
after a restart without asking the vault first: whether PITR is on, the
window, the last change-log sequence number safely in the vault (records
after it are held back from the log's trim), when the archive was last
known complete (LatestRestorableDateTime), and the last base.  Each change
is one small fsynced transaction, written only after the vault has what it
says: after a crash the archiver re-ships at most one segment (the same
records under the same name: harmless) and never skips one.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tablekeeper.engine.storage.base import StorageError, StoredRecord
from tablekeeper.engine.storage.sqlite import connect_state, opening

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pitr (
    table_id TEXT PRIMARY KEY, table_name TEXT NOT NULL, table_arn TEXT NOT NULL,
    enabled INTEGER NOT NULL, period_days INTEGER NOT NULL, window_start_ms INTEGER NOT NULL,
    archived_seq INTEGER NOT NULL, latest_ms INTEGER, base_seq INTEGER, base_ms INTEGER,
    problem TEXT NOT NULL DEFAULT '', definition TEXT NOT NULL DEFAULT '', deleted_ms INTEGER,
    deletion_recorded INTEGER NOT NULL DEFAULT 0, item_count INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tails (
    table_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, keys BLOB NOT NULL,
    old BLOB, new BLOB, origin TEXT, PRIMARY KEY (table_id, seq));
"""


@dataclass(frozen=True, slots=True)
class TablePitr:
    table_id: str
    table_name: str
    table_arn: str
    enabled: bool
    period_days: int
    window_start_ms: int
    archived_seq: int  # every record up to here is in the vault
    latest_ms: int | None = None  # the archive was complete as of this time (None: no base yet)
    base_seq: int | None = None  # the last base written, as of this sequence number
    base_ms: int | None = None
    problem: str = ""  # why archiving is behind, for DescribeContinuousBackups and the logs
    definition: str = ""  # the table's TableDefinition.to_json(), as of enabling or deletion
    deleted_ms: int | None = None  # DeleteTable: the archive is kept for the period after
    deletion_recorded: bool = False  # the deletion's last records and settings are in the vault
    item_count: int = 0  # at deletion, for the <table>$DeletedTableBackup listing
    size_bytes: int = 0

    def replace(self, **changes: object) -> TablePitr:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_FIELDS = [field.name for field in dataclasses.fields(TablePitr)]


class PitrState:
    def __init__(self, directory: Path) -> None:
        with opening(directory / "pitr.db"):
            self._conn = connect_state(directory / "pitr.db")
            self._conn.executescript(_SCHEMA)
            self._rows: dict[str, TablePitr] = {}
            for row in self._conn.execute(f"SELECT {', '.join(_FIELDS)} FROM pitr"):
                record = TablePitr(*row)
                self._rows[record.table_id] = record.replace(
                    enabled=bool(record.enabled), deletion_recorded=bool(record.deletion_recorded)
                )

    def get(self, table_id: str) -> TablePitr | None:
        return self._rows.get(table_id)

    def all(self) -> list[TablePitr]:
        return list(self._rows.values())

    def put(self, record: TablePitr) -> None:
        values = [getattr(record, name) for name in _FIELDS]
        try:
            self._conn.execute(
                f"INSERT OR REPLACE INTO pitr ({', '.join(_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(_FIELDS))})",
                values,
            )
        except sqlite3.Error as exc:
            raise StorageError(f"record PITR of table {record.table_name}: {exc}") from exc
        self._rows[record.table_id] = record

    def update(self, table_id: str, **changes: object) -> TablePitr | None:
        """Change some fields of the row as it is now (None if there is none).

        The archiver, DeleteTable's hook and the API interleave at every await: a
        whole row read before an await and put back after it would undo what the
        others wrote meanwhile (a deletion, a disable).  Updating only the named
        fields of the current row cannot.
        """
        current = self._rows.get(table_id)
        if current is None:
            return None
        updated = current.replace(**changes)
        self.put(updated)
        return updated

    def keep_tail(self, record: TablePitr, tail: list[StoredRecord]) -> None:
        """At DeleteTable: the log records not yet in the vault, with the row, in one transaction."""
        values = [getattr(record, name) for name in _FIELDS]
        try:
            with self._conn:
                self._conn.execute("BEGIN")
                self._conn.executemany(
                    "INSERT OR REPLACE INTO tails VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(record.table_id, r.sequence, r.timestamp_ms, r.keys, r.old, r.new, r.origin)
                     for r in tail],
                )
                self._conn.execute(
                    f"INSERT OR REPLACE INTO pitr ({', '.join(_FIELDS)}) "
                    f"VALUES ({', '.join('?' * len(_FIELDS))})",
                    values,
                )
        except sqlite3.Error as exc:
            raise StorageError(f"keep the last log records of table {record.table_name}: {exc}") from exc
        self._rows[record.table_id] = record

    def tail(self, table_id: str, after: int, limit: int) -> list[StoredRecord]:
        rows = self._conn.execute(
            "SELECT seq, ts, keys, old, new, origin FROM tails WHERE table_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?", (table_id, after, limit),
        ).fetchall()
        return [StoredRecord(*row) for row in rows]

    def remove(self, table_id: str) -> None:
        try:
            self._conn.execute("DELETE FROM tails WHERE table_id = ?", (table_id,))
            self._conn.execute("DELETE FROM pitr WHERE table_id = ?", (table_id,))
        except sqlite3.Error as exc:
            raise StorageError(f"forget PITR of table {table_id}: {exc}") from exc
        self._rows.pop(table_id, None)

    def close(self) -> None:
        self._conn.close()
