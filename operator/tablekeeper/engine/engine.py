"""The engine: one data directory, its catalog of tables and their storage.

Operations (``tablekeeper.engine.operations``) receive the engine and a typed
request; the engine gives them tables by name, storage, and the clock.  The
clock is injected so that tests and the PITR work can drive time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from tablekeeper.engine.catalog import Catalog
from tablekeeper.engine.errors import ResourceNotFoundException
from tablekeeper.engine.sizes import measure_entry
from tablekeeper.engine.storage.base import Reader
from tablekeeper.engine.storage.sqlite import Durability, SqliteStorage
from tablekeeper.engine.tables import DEFAULT_ACCOUNT, DEFAULT_REGION, TableDefinition
from tablekeeper.engine.values import Item, encode_item, load_item

log = logging.getLogger(__name__)


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
        self.catalog = Catalog(config.data_dir)
        self.storage = SqliteStorage(config.data_dir, config.durability, measure=measure_entry)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Drop table files whose catalog entry is gone (a crash during DeleteTable)."""
        known = {table.table_id for table in self.catalog.all()}
        for table_id in self.storage.tables():
            if table_id not in known:
                log.warning("removing files of deleted table %s", table_id)
                self.storage.forget_orphan(table_id)

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

    def reader(self, table: TableDefinition) -> Reader:
        return self.storage.reader(table.table_id)

    def close(self) -> None:
        self.storage.close()
        self.catalog.close()
