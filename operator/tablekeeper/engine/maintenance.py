"""Background upkeep of an engine's tables: trimming the change log.

The change log keeps 24 hours of records, DynamoDB Streams' retention; older
records are deleted in small batches so that trimming never holds the writer
for long.  A record someone still needs (``Engine.log_floor``: the PITR
archiver's records not yet in the vault) is never trimmed, however old.
"""

from __future__ import annotations

import asyncio
import logging

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.storage.base import StorageError, WriteTxn

log = logging.getLogger(__name__)

LOG_RETENTION_MS = 24 * 60 * 60 * 1000
TRIM_BATCH = 1000


async def trim_logs(engine: Engine, retention_ms: int = LOG_RETENTION_MS) -> int:
    """Trim every table's change log to the retention window; returns records removed."""
    cutoff = engine.now_ms() - retention_ms
    removed = 0
    for table in engine.usable_tables():
        floor = engine.log_floor(table.table_id)
        while True:
            def trim(txn: WriteTxn, table_id: str = table.table_id, keep: int | None = floor) -> int:
                return txn.trim_log(table_id, cutoff, TRIM_BATCH, keep_from=keep)

            try:
                count = await engine.storage.write(trim)
            except StorageError as exc:  # a deleted table, a full disk: try next round
                log.warning("trim log of table %s: %s", table.name, exc)
                break
            removed += count
            if count < TRIM_BATCH:
                break
    return removed


async def forget_tokens(engine: Engine) -> int:
    """Delete recorded transaction tokens past their ten minutes; returns how many."""
    from tablekeeper.engine.operations.transactions import TOKEN_SPACE, expired_tokens

    removed = 0
    for table in engine.usable_tables():
        try:
            expired = expired_tokens(engine.reader(table), engine.clock(), TRIM_BATCH)
        except StorageError:  # deleted meanwhile
            continue
        if not expired:
            continue

        def forget(txn: WriteTxn, table_id: str = table.table_id, keys: list[bytes] = expired) -> int:
            for key in keys:
                txn.delete(table_id, TOKEN_SPACE, key)
            return len(keys)

        try:
            removed += await engine.storage.write(forget)
        except StorageError as exc:
            log.warning("forget tokens of table %s: %s", table.name, exc)
    return removed


async def run_maintenance(engine: Engine, interval: float = 60.0) -> None:
    """Run upkeep every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await trim_logs(engine)
            await forget_tokens(engine)
        except Exception:  # upkeep must never take the engine down
            log.exception("maintenance round failed")
