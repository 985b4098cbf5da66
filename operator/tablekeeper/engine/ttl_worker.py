"""The TTL worker: switches tables' expiry entries on and off, and deletes expired items.

Three jobs, each in bounded batches (one ``storage.write`` per batch) so that
foreground requests queue behind at most one small batch:

* **backfill** (ENABLING -> ENABLED): puts the expiry entry of every item the
  table already holds.  Each batch records how far it got in the same storage
  transaction as its entries, so a restart resumes where it stopped.
* **drop** (DISABLING -> DISABLED): deletes the table's expiry entries.
* **sweep**: deletes items whose expiry has passed, found through the
  entries, each through :func:`write_item` with origin ``"ttl"`` so index
  entries go with the item and the change log (and so Streams) records a
  REMOVE by the TTL service.  Inside the write the item is read again: one
  updated since the entry was read is left alone.

UpdateTimeToLive starts a backfill or drop at once (:func:`start_transition`);
:func:`run_ttl`, the background loop, resumes any that is not running (after
a restart, or after a failure) and sweeps every ``interval`` seconds.

Why a backfill misses no item: it starts with an empty storage write, which
returns only after every write queued before it has committed.  A write that
read the table's definition before TTL was switched on was queued before
that barrier (operations read the definition and queue their write without
waiting in between), so the scan that follows sees its item; every later
write keeps its own entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any, Final

from tablekeeper.engine.background import barrier, first_keys
from tablekeeper.engine.engine import Engine, parse_stored
from tablekeeper.engine.operations.common import Existing, write_item
from tablekeeper.engine.storage.base import StorageError, WriteTxn
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.ttl import (
    BACKFILL_SPACE,
    CURSOR_KEY,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    TTL_SPACE,
    entry_key,
    expiry_of,
    is_expired,
    split_entry,
    sweep_bounds,
    ttl_changes,
)

log = logging.getLogger(__name__)

# DynamoDB promises nothing sooner than "within a few days"; we sweep often
# enough that an item goes within a minute of its expiry.
DEFAULT_TTL_INTERVAL: Final = 30.0
SWEEP_BATCH: Final = 100
BACKFILL_BATCH: Final = 500
DROP_BATCH: Final = 1000

_TRANSITIONS: weakref.WeakKeyDictionary[Engine, dict[str, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


def _current(engine: Engine, name: str, table_id: str) -> TableDefinition | None:
    """The table as the catalog has it now, unless it was deleted (or replaced) meanwhile."""
    table = engine.catalog.get(name)
    return table if table is not None and table.table_id == table_id else None


def _finish(engine: Engine, name: str, table_id: str, expected: str, **changes: Any) -> None:
    table = _current(engine, name, table_id)
    if table is not None and table.ttl_status == expected:
        engine.catalog.put(table.replace(**changes))


# --- backfill and drop ----------------------------------------------------------------------


def _index_batch(table: TableDefinition, keys: list[bytes]) -> Callable[[WriteTxn], None]:
    def index(txn: WriteTxn) -> None:
        for key in keys:
            blob = txn.get(table.table_id, key)  # the item as it is now, not as scanned
            if blob is None:
                continue
            for space, entry, value, size in ttl_changes(table, key, None, parse_stored(blob)):
                assert value is not None
                txn.put(table.table_id, space, entry, value, size)
        txn.put(table.table_id, BACKFILL_SPACE, CURSOR_KEY, keys[-1])

    return index


async def backfill(engine: Engine, name: str, table_id: str, batch: int = BACKFILL_BATCH) -> None:
    """Index the expiry of every existing item, then mark the table's TTL ENABLED."""
    await barrier(engine)
    table = _current(engine, name, table_id)
    if table is None:
        return
    cursor = engine.reader(table).get(CURSOR_KEY, space=BACKFILL_SPACE)
    while True:
        table = _current(engine, name, table_id)
        if table is None or table.ttl_status != ENABLING:
            return  # deleted, or disabled meanwhile: the drop takes over
        keys = first_keys(engine.reader(table), cursor, None, batch, low_inclusive=cursor is None)
        if not keys:
            break
        await engine.storage.write(_index_batch(table, keys))
        cursor = keys[-1]
    await engine.storage.write(lambda txn: txn.delete(table_id, BACKFILL_SPACE, CURSOR_KEY))
    _finish(engine, name, table_id, ENABLING, ttl_status=ENABLED)


async def drop_entries(engine: Engine, name: str, table_id: str, batch: int = DROP_BATCH) -> None:
    """Delete every expiry entry of the table, then mark its TTL DISABLED."""
    await barrier(engine)
    while True:
        table = _current(engine, name, table_id)
        if table is None or table.ttl_status != DISABLING:
            return
        entries = first_keys(engine.reader(table), None, None, batch, space=TTL_SPACE)

        def drop(txn: WriteTxn, entries: list[bytes] = entries) -> None:
            for entry in entries:
                txn.delete(table_id, TTL_SPACE, entry)
            txn.delete(table_id, BACKFILL_SPACE, CURSOR_KEY)

        await engine.storage.write(drop)
        if len(entries) < batch:
            break
    _finish(engine, name, table_id, DISABLING, ttl_status=DISABLED, ttl_attribute=None,
            ttl_enabled=False)


async def _transition(engine: Engine, name: str, table_id: str) -> None:
    try:
        table = _current(engine, name, table_id)
        if table is not None and table.ttl_status == ENABLING:
            await backfill(engine, name, table_id)
        elif table is not None and table.ttl_status == DISABLING:
            await drop_entries(engine, name, table_id)
    except StorageError as exc:  # a deleted table, a full disk: the next TTL round retries
        log.warning("switch TTL of table %s: %s", name, exc)
    except Exception:
        log.exception("switch TTL of table %s failed", name)
    finally:
        running = _TRANSITIONS.get(engine, {})
        if running.get(table_id) is asyncio.current_task():
            del running[table_id]


def start_transition(engine: Engine, table: TableDefinition) -> None:
    """Start the backfill or drop a table's TTL state calls for, unless it is running."""
    if table.ttl_status not in (ENABLING, DISABLING):
        return
    running = _TRANSITIONS.setdefault(engine, {})
    task = running.get(table.table_id)
    if task is not None and not task.done():
        return
    running[table.table_id] = asyncio.get_running_loop().create_task(
        _transition(engine, table.name, table.table_id)
    )


async def settle(engine: Engine) -> None:
    """Wait for every running backfill and drop to finish."""
    while running := [t for t in _TRANSITIONS.get(engine, {}).values() if not t.done()]:
        await asyncio.gather(*running, return_exceptions=True)


def _cancel_transitions(engine: Engine) -> None:
    for task in _TRANSITIONS.pop(engine, {}).values():
        task.cancel()


# --- the sweep ------------------------------------------------------------------------------


def expire_batch(
    engine: Engine, table: TableDefinition, entries: list[bytes], now: float
) -> Callable[[WriteTxn], int]:
    def expire(txn: WriteTxn) -> int:
        deleted = 0
        for entry in entries:
            _, key = split_entry(entry)
            blob = txn.get(table.table_id, key)
            item = None if blob is None else parse_stored(blob)
            if entry_key(table, key, item) != entry:  # no such item or expiry now: a stale entry
                txn.delete(table.table_id, TTL_SPACE, entry)
                continue
            value = expiry_of(table, item)
            if item is None or value is None or not is_expired(value, now):
                continue  # expires later within this second
            key_item = table.key_schema.key_of(item)
            write_item(engine, txn, table, key, key_item, Existing(blob, item), None, origin="ttl")
            deleted += 1
        return deleted

    return expire


async def sweep_table(
    engine: Engine, table: TableDefinition, now: float, batch: int = SWEEP_BATCH
) -> int:
    """Delete the table's items expired at ``now``, ``batch`` per storage write; returns how many."""
    low, high = sweep_bounds(now)
    inclusive = True
    deleted = 0
    while True:
        current = _current(engine, table.name, table.table_id)
        if current is None or current.ttl_status not in (ENABLING, ENABLED):
            return deleted
        entries = first_keys(engine.reader(current), low, high, batch, space=TTL_SPACE,
                             low_inclusive=inclusive)
        if not entries:
            return deleted
        deleted += await engine.storage.write(expire_batch(engine, current, entries, now))
        if len(entries) < batch:
            return deleted
        low, inclusive = entries[-1], False


async def sweep_expired(engine: Engine, batch: int = SWEEP_BATCH) -> int:
    """One sweep of every table with TTL on; returns how many items it deleted."""
    now = engine.clock()
    deleted = 0
    for table in engine.usable_tables():
        if table.ttl_status not in (ENABLING, ENABLED):
            continue
        try:
            deleted += await sweep_table(engine, table, now, batch)
        except StorageError as exc:  # deleted meanwhile, disk full: the next round retries
            log.warning("sweep expired items of table %s: %s", table.name, exc)
    return deleted


async def run_ttl(engine: Engine, interval: float = DEFAULT_TTL_INTERVAL) -> None:
    """Resume TTL switches and sweep expired items every ``interval`` seconds until cancelled."""
    try:
        while True:
            try:
                for table in engine.usable_tables():
                    start_transition(engine, table)
                await sweep_expired(engine)
            except Exception:  # TTL must never take the engine down
                log.exception("TTL round failed")
            await asyncio.sleep(interval)
    finally:
        with contextlib.suppress(Exception):
            _cancel_transitions(engine)
