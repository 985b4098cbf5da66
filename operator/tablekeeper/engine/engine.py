"""The engine: one data directory, its catalog of tables and their storage.

Operations (``tablekeeper.engine.operations``) receive the engine and a typed
request; the engine gives them tables by name, storage, and the clock.  The
clock is injected so that tests and the PITR work can drive time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from tablekeeper.engine.catalog import Catalog
from tablekeeper.engine.errors import LimitExceededException, ResourceNotFoundException
from tablekeeper.engine.sizes import measure_entry
from tablekeeper.engine.storage.base import Reader, StorageError
from tablekeeper.engine.storage.sqlite import Durability, SqliteStorage
from tablekeeper.engine.tables import DEFAULT_ACCOUNT, DEFAULT_REGION, TableDefinition
from tablekeeper.engine.values import Item, encode_item, load_item

log = logging.getLogger(__name__)

MAX_TABLES = 2500  # DynamoDB's default quota of tables per account and region


@dataclass(frozen=True)
class EngineConfig:
    data_dir: Path
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    durability: Durability = Durability.POWER_LOSS


def dump_item(item: Item) -> bytes:
    """The stored form of an item: its wire JSON, so reads can splice it unchanged."""
    return orjson.dumps(encode_item(item))


def parse_stored(blob: bytes) -> Item:
    return load_item(orjson.loads(blob))


class Engine:
    def __init__(self, config: EngineConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        config.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(config.data_dir, 0o700)
        self._lock = _lock_data_dir(config.data_dir)
        self.catalog = Catalog(config.data_dir)
        self.storage = SqliteStorage(config.data_dir, config.durability, measure=measure_entry)
        self._match_files_to_catalog()
        # name -> (table id -> the lowest log sequence number it still needs, or None)
        self._log_holds: dict[str, Callable[[str], int | None]] = {}
        self._delete_hooks: list[Callable[[TableDefinition], Awaitable[None]]] = []

    def _match_files_to_catalog(self) -> None:
        """Drop table files whose catalog entry is gone (a crash during DeleteTable); a table whose
        file is gone (removed from outside) fails its requests, never passes for an empty one."""
        known = {table.table_id for table in self.catalog.all()}
        for table_id in self.storage.tables():
            if table_id not in known:
                log.warning("removing files of deleted table %s", table_id)
                self.storage.forget_orphan(table_id)
        self.storage.expect_tables(known)
        for table in self.catalog.all():
            cause = self.storage.unreadable(table.table_id)
            if cause is not None:
                log.error("table %s cannot be used (%s): it fails every request until its file is put "
                          "back, or it is deleted (a backup can then be restored under its name)",
                          table.name, cause)  # fmt: skip

    def usable_tables(self) -> list[TableDefinition]:
        """The catalog's tables but those whose file cannot be used: background work skips them (their
        requests fail, and the engine said why when it started)."""
        return [table for table in self.catalog.all() if self.storage.unreadable(table.table_id) is None]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def resolve_name(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            _, _, rest = name_or_arn.partition(":table/")
            return rest.split("/", 1)[0]
        return name_or_arn

    def find_table(self, name_or_arn: str) -> TableDefinition | None:
        return self.catalog.get(self.resolve_name(name_or_arn))

    def table(self, name_or_arn: str, message: str | None = None) -> TableDefinition:
        """The table, or DynamoDB's ResourceNotFoundException."""
        table = self.find_table(name_or_arn)
        if table is None:
            raise ResourceNotFoundException(message)
        return table

    def hold_log(self, name: str, floor: Callable[[str], int | None]) -> None:
        """Keep log records that ``floor(table_id)`` says are still needed from being trimmed."""
        self._log_holds[name] = floor

    def log_floor(self, table_id: str) -> int | None:
        """The lowest sequence number any holder still needs for the table, or None."""
        floors = [f for f in (hold(table_id) for hold in self._log_holds.values()) if f is not None]
        return min(floors) if floors else None

    def on_delete(self, hook: Callable[[TableDefinition], Awaitable[None]]) -> None:
        """Run ``hook(table)`` in DeleteTable before the table's data goes (its log is still readable)."""
        self._delete_hooks.append(hook)

    async def before_delete(self, table: TableDefinition) -> None:
        for hook in self._delete_hooks:
            await hook(table)

    def check_table_quota(self) -> None:
        """DynamoDB's refusal of one table more than the account's quota."""
        if len(self.catalog.names()) >= MAX_TABLES:
            raise LimitExceededException(
                f"Subscriber limit exceeded: Only {MAX_TABLES} tables can be created per account"
            )

    def reader(self, table: TableDefinition) -> Reader:
        return self.storage.reader(table.table_id)

    def close(self) -> None:
        self.storage.close()
        self.catalog.close()
        os.close(self._lock)  # releases the data directory


def _lock_data_dir(data_dir: Path) -> int:
    """Hold DATA/lock for the engine's life: two engines (or an engine and an offline
    restore) on one data directory would corrupt each other's view of the catalog."""
    fd = os.open(data_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StorageError(f"open data directory {data_dir}: another engine is using it") from None
    return fd
