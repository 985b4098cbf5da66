"""The catalog: which tables exist, persisted in ``DATA/catalog.db``.

Definitions change rarely (CreateTable, UpdateTable, tags) and are small, so
each change is one synchronous, fsynced SQLite transaction on the caller's
thread.  Table data lives apart, in storage, under the table's id: a table
deleted and created again under the same name gets a new id and new files.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tablekeeper.engine.storage.base import StorageError
from tablekeeper.engine.storage.sqlite import connect_state, opening
from tablekeeper.engine.tables import TableDefinition


class Catalog:
    def __init__(self, directory: Path) -> None:
        with opening(directory / "catalog.db"):
            self._conn = connect_state(directory / "catalog.db")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS tables (name TEXT PRIMARY KEY, definition TEXT NOT NULL)"
            )
            self._tables: dict[str, TableDefinition] = {
                name: TableDefinition.from_json(text)
                for name, text in self._conn.execute("SELECT name, definition FROM tables")
            }

    def get(self, name: str) -> TableDefinition | None:
        return self._tables.get(name)

    def names(self) -> list[str]:
        return sorted(self._tables)

    def all(self) -> list[TableDefinition]:
        return [self._tables[name] for name in self.names()]

    def put(self, table: TableDefinition) -> None:
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO tables VALUES (?, ?)", (table.name, table.to_json())
            )
        except sqlite3.Error as exc:
            raise StorageError(f"save table {table.name}: {exc}") from exc
        self._tables[table.name] = table

    def remove(self, name: str) -> None:
        try:
            self._conn.execute("DELETE FROM tables WHERE name = ?", (name,))
        except sqlite3.Error as exc:
            raise StorageError(f"delete table {name}: {exc}") from exc
        self._tables.pop(name, None)

    def close(self) -> None:
        self._conn.close()
