"""Background work on global secondary indexes: backfilling new ones, dropping deleted ones.

UpdateTable only changes the catalog: a created index is CREATING (and
backfilling), a deleted one DELETING; :func:`start_index_work` then starts a
task per such index, and :func:`run_index_work`, the engine's background
loop, starts any that is not running (after a restart, or a failure).

* **backfill** (CREATING -> ACTIVE) puts the entry of every item the table
  already holds, in bounded batches (one ``storage.write`` each, so
  foreground requests queue behind at most one small batch).  Each batch
  reads its items again inside its write, so it indexes them as they are
  now, not as they were scanned; and it records how far it got (the stored
  key of its last item) in the same transaction, so a restart resumes there.
  Meanwhile every write maintains the CREATING index itself
  (``indexes.index_changes``), so the index is right when the scan ends.
  A backfill that finds no progress recorded starts by dropping whatever an
  earlier index of the same name left behind.
* **drop** (DELETING -> gone) drops the index's space and then removes the
  index from the catalog, with the attribute definitions only it used.
  Deleting a CREATING index cancels its backfill first.

Both start with an empty storage write, which returns only after every write
queued before it has committed: a write that read the table's definition
before the index changed was queued before that barrier (operations read the
definition and queue their write without waiting in between), so the scan
that follows sees its item.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from tablekeeper.engine.background import barrier, first_keys
from tablekeeper.engine.engine import Engine, parse_stored
from tablekeeper.engine.indexes import backfill_changes
from tablekeeper.engine.storage.base import ITEMS, StorageError, WriteTxn, index_space
from tablekeeper.engine.tables import IndexDefinition, TableDefinition

log = logging.getLogger(__name__)

BACKFILL_BATCH: Final = 256
RETRY_SECONDS: Final = 5.0
# One entry per backfilling index, keyed by its name: the stored key of the
# last item the backfill indexed.
PROGRESS_SPACE: Final = "index-backfill"

_Work = dict[tuple[str, str], tuple[str, "asyncio.Task[None]"]]  # (table id, index) -> (kind, task)
_RUNNING: weakref.WeakKeyDictionary[Engine, _Work] = weakref.WeakKeyDictionary()


def _current(engine: Engine, name: str, table_id: str) -> TableDefinition | None:
    """The table as the catalog has it now, unless it was deleted (or replaced) meanwhile."""
    table = engine.catalog.get(name)
    return table if table is not None and table.table_id == table_id else None


# --- backfill ---------------------------------------------------------------------------------


def _index_batch(
    table: TableDefinition, index: IndexDefinition, keys: list[bytes]
) -> Callable[[WriteTxn], None]:
    def put_entries(txn: WriteTxn) -> None:
        for key in keys:
            blob = txn.get(table.table_id, key, ITEMS)  # the item as it is now
            if blob is None:
                continue
            for space, entry, value, size in backfill_changes(table, index, key, parse_stored(blob)):
                assert value is not None
                txn.put(table.table_id, space, entry, value, size)
        txn.put(table.table_id, PROGRESS_SPACE, index.name.encode(), keys[-1])

    return put_entries


async def backfill(
    engine: Engine, name: str, table_id: str, index_name: str, batch: int = BACKFILL_BATCH
) -> None:
    """Index every existing item, then mark the index ACTIVE."""
    await barrier(engine)
    table = _current(engine, name, table_id)
    if table is None:
        return
    progress = index_name.encode()
    cursor = engine.reader(table).get(progress, space=PROGRESS_SPACE)
    if cursor is None:  # a fresh start: nothing of an older index of this name may remain
        await engine.storage.write(lambda txn: txn.drop_space(table_id, index_space(index_name)))
    while True:
        table = _current(engine, name, table_id)
        index = None if table is None else table.index(index_name)
        if table is None or index is None or index.status != "CREATING":
            return  # the table went, or the index is being deleted: the drop takes over
        keys = first_keys(engine.reader(table), cursor, None, batch, low_inclusive=cursor is None)
        if not keys:
            break
        await engine.storage.write(_index_batch(table, index, keys))
        cursor = keys[-1]
    await engine.storage.write(lambda txn: txn.delete(table_id, PROGRESS_SPACE, progress))
    table = _current(engine, name, table_id)
    index = None if table is None else table.index(index_name)
    if table is not None and index is not None and index.status == "CREATING":
        done = replace(index, status="ACTIVE", backfilling=False)
        engine.catalog.put(table.replace(indexes=_replaced(table, done)))
        log.info("index %s of table %s is ACTIVE", index_name, name)


def _replaced(table: TableDefinition, index: IndexDefinition) -> tuple[IndexDefinition, ...]:
    return tuple(index if i.name == index.name else i for i in table.indexes)


# --- drop -------------------------------------------------------------------------------------


def prune_attribute_definitions(table: TableDefinition) -> tuple[tuple[str, str], ...]:
    """The attribute definitions some key still uses (DynamoDB drops the rest)."""
    used = set(table.key_schema.names)
    for index in table.indexes:
        used.update(index.key_schema.names)
    return tuple((name, kind) for name, kind in table.attribute_definitions if name in used)


async def drop(engine: Engine, name: str, table_id: str, index_name: str) -> None:
    """Drop a DELETING index's entries, then remove it from the table."""
    await barrier(engine)

    def drop_entries(txn: WriteTxn) -> None:
        txn.drop_space(table_id, index_space(index_name))
        txn.delete(table_id, PROGRESS_SPACE, index_name.encode())

    await engine.storage.write(drop_entries)
    table = _current(engine, name, table_id)
    index = None if table is None else table.index(index_name)
    if table is None or index is None or index.status != "DELETING":
        return
    remaining = table.replace(indexes=tuple(i for i in table.indexes if i.name != index_name))
    engine.catalog.put(remaining.replace(attribute_definitions=prune_attribute_definitions(remaining)))
    log.info("index %s of table %s is deleted", index_name, name)


# --- tasks ------------------------------------------------------------------------------------


async def _run(
    engine: Engine, kind: str, table: TableDefinition, index_name: str,
    previous: asyncio.Task[None] | None,
) -> None:
    key = (table.table_id, index_name)
    try:
        if previous is not None:  # a drop first stops the backfill it replaces
            previous.cancel()
            await asyncio.wait([previous])
        job = backfill if kind == "backfill" else drop
        await job(engine, table.name, table.table_id, index_name)
    except StorageError as exc:  # a deleted table, a full disk: the next round retries
        log.warning("%s index %s of table %s: %s", kind, index_name, table.name, exc)
    except Exception:
        log.exception("%s index %s of table %s failed", kind, index_name, table.name)
    finally:
        running = _RUNNING.get(engine, {})
        if running.get(key, ("", None))[1] is asyncio.current_task():
            del running[key]


def start_index_work(engine: Engine, table: TableDefinition) -> None:
    """Start the backfill or drop each index of the table calls for, unless it is running."""
    running = _RUNNING.setdefault(engine, {})
    for index in table.indexes:
        kind = {"CREATING": "backfill", "DELETING": "drop"}.get(index.status)
        if kind is None:
            continue
        key = (table.table_id, index.name)
        current_kind, task = running.get(key, ("", None))
        if task is not None and not task.done() and current_kind == kind:
            continue
        previous = task if task is not None and not task.done() else None
        running[key] = (kind, asyncio.get_running_loop().create_task(
            _run(engine, kind, table, index.name, previous)
        ))


async def settle(engine: Engine) -> None:
    """Wait for every running backfill and drop to finish."""
    while running := [task for _, task in _RUNNING.get(engine, {}).values() if not task.done()]:
        await asyncio.gather(*running, return_exceptions=True)


async def run_index_work(engine: Engine, interval: float = RETRY_SECONDS) -> None:
    """Start pending index work now and every ``interval`` seconds, until cancelled."""
    try:
        while True:
            for table in engine.usable_tables():
                with contextlib.suppress(StorageError):
                    start_index_work(engine, table)
            await asyncio.sleep(interval)
    finally:
        for _, task in _RUNNING.pop(engine, {}).values():
            task.cancel()
