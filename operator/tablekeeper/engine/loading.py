"""Filling a new table from stored items: the engine's side of a restore.

A restore (from a backup, later from a point in time) lives above the
engine, in the vault layer; what it needs from the engine is here:

1. :func:`begin_restore` registers the target table, CREATING with a
   ``RestoreSummary`` in progress: DescribeTable shows it, ListTables lists
   it, and reads and writes get ResourceNotFoundException until it is done
   (``operations.common.table_for_items``), as in DynamoDB.
2. :func:`load_items` fills it from (stored key, stored item) pairs in key
   order, with each item's entries in every secondary index, on a worker
   thread (``Storage.bulk_load``): the event loop keeps serving other tables.
3. :func:`finish_restore` makes it ACTIVE; :func:`abandon_restore` removes a
   table whose load failed, so that a half-restored table never serves.

A restore that a crash interrupted finds its table still CREATING at the
next start: :func:`interrupted_restores` lists them so that the layer above
can start them again from nothing (``abandon_restore``, then again from 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import orjson

from tablekeeper.engine.engine import Engine, parse_stored
from tablekeeper.engine.indexes import backfill_changes, maintained
from tablekeeper.engine.sizes import stored_item_size
from tablekeeper.engine.storage.base import ITEMS, TableStats
from tablekeeper.engine.tables import RestoreSummary, TableDefinition


class TableExists(Exception):
    """The target name is taken (the caller answers with DynamoDB's own error)."""


def begin_restore(engine: Engine, table: TableDefinition, summary: RestoreSummary) -> TableDefinition:
    """Register ``table`` (a fresh id, the target name) as being restored; its files are empty."""
    if engine.catalog.get(table.name) is not None:
        raise TableExists(table.name)
    engine.check_table_quota()
    restoring = replace(table, status="CREATING", restore=replace(summary, in_progress=True))
    engine.storage.create_table(restoring.table_id)
    engine.catalog.put(restoring)
    return restoring


def _entries(
    table: TableDefinition, items: Iterable[tuple[bytes, bytes]]
) -> Iterator[tuple[str, bytes, bytes]]:
    indexes = tuple(maintained(table))
    for key, blob in items:
        yield ITEMS, key, blob
        if indexes:
            item = parse_stored(blob)
            for index in indexes:
                for space, entry_key, entry, _size in backfill_changes(table, index, key, item):
                    assert entry is not None
                    yield space, entry_key, entry


def _item_size(blob: bytes) -> int:
    return stored_item_size(orjson.loads(blob))


async def load_items(
    engine: Engine,
    table: TableDefinition,
    items: Iterable[tuple[bytes, bytes]],
    progress: Callable[[int], None] | None = None,
) -> TableStats:
    """Load the items (consumed on a worker thread) and their index entries into ``table``."""
    return await engine.storage.bulk_load(table.table_id, _entries(table, items), _item_size, progress)


def finish_restore(engine: Engine, table: TableDefinition) -> TableDefinition:
    """The restored table, ACTIVE, its summary no longer in progress."""
    current = engine.catalog.get(table.name)
    assert current is not None and current.table_id == table.table_id
    assert current.restore is not None
    done = replace(current, status="ACTIVE", restore=replace(current.restore, in_progress=False))
    engine.catalog.put(done)
    return done


async def abandon_restore(engine: Engine, table: TableDefinition) -> None:
    """Remove a table whose restore failed: catalog entry first, then its files."""
    current = engine.catalog.get(table.name)
    if current is not None and current.table_id == table.table_id:
        engine.catalog.remove(table.name)
    await engine.storage.drop_table(table.table_id)


def interrupted_restores(engine: Engine) -> list[TableDefinition]:
    """Tables a restore was filling when the engine stopped."""
    return [
        table for table in engine.catalog.all()
        if table.status == "CREATING" and table.restore is not None and table.restore.in_progress
    ]
