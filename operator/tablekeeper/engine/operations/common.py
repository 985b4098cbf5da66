"""Pieces shared by the item operations: request members, the item write path.

The write path is the one place where an item changes: it serializes the new
image, appends the change-log record in the same storage transaction, and
keeps the table's counters.  Every writer (PutItem, UpdateItem, DeleteItem,
BatchWriteItem, TransactWriteItems, and later TTL and replication) goes
through :func:`write_item`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tablekeeper.engine.engine import Engine, dump_item, parse_stored
from tablekeeper.engine.errors import ResourceInUseException, ResourceNotFoundException, ValidationException
from tablekeeper.engine.expressions import ExpressionContext
from tablekeeper.engine.indexes import index_changes
from tablekeeper.engine.shapes import Members
from tablekeeper.engine.storage.base import LogRecord, WriteTxn
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.ttl import ttl_changes
from tablekeeper.engine.values import (
    MAX_ITEM_SIZE,
    Item,
    encode_item,
    item_size,
    items_equal,
)

RETURN_CONSUMED = ("INDEXES", "TOTAL", "NONE")
RETURN_METRICS = ("SIZE", "NONE")
RETURN_VALUES = ("ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW")  # DynamoDB's order
RETURN_ON_FAILURE = ("ALL_OLD", "NONE")


def expression_context(m: Members) -> ExpressionContext:
    """ExpressionAttributeNames / ExpressionAttributeValues of a request, checked and decoded."""
    return ExpressionContext.from_wire(
        m.mapping("ExpressionAttributeNames"), m.mapping("ExpressionAttributeValues")
    )


def projection_context(m: Members) -> ExpressionContext:
    """The placeholders of a read that has only a ProjectionExpression (BatchGetItem's and
    TransactGetItems' gets; GetItem reads its names itself): names alone. Those reads have no
    ExpressionAttributeValues member, so one sent anyway is ignored, as DynamoDB's parser ignores
    members it does not know."""
    return ExpressionContext.from_wire(m.mapping("ExpressionAttributeNames"), None)


def table_for_items(engine: Engine, name: str) -> TableDefinition:
    table = engine.find_table(name)
    # A table being restored (CREATING) is not there yet for reads and writes, as in DynamoDB.
    if table is None or table.status != "ACTIVE":
        raise ResourceNotFoundException()
    return table


def refuse_while_creating(table: TableDefinition) -> None:
    """DynamoDB's refusal to change a table that is still being created (a restore)."""
    if table.status == "CREATING":
        raise ResourceInUseException(
            f"Attempt to change a resource which is still in use: Table {table.name} is being created"
        )


def check_item_size(item: Item, message: str = "Item size has exceeded the maximum allowed size") -> int:
    size = item_size(item)
    if size > MAX_ITEM_SIZE:
        raise ValidationException(message)
    return size


@dataclass(frozen=True, slots=True)
class Existing:
    """An item as read inside a write: its stored bytes and decoded form."""

    blob: bytes | None
    item: Item | None

    @property
    def size(self) -> int:
        return 0 if self.item is None else item_size(self.item)


def read_existing(txn: WriteTxn, table: TableDefinition, key: bytes) -> Existing:
    blob = txn.get(table.table_id, key)
    return Existing(blob, None if blob is None else parse_stored(blob))


def write_item(
    engine: Engine,
    txn: WriteTxn,
    table: TableDefinition,
    key: bytes,
    key_item: Item,
    old: Existing,
    new: Item | None,
    new_size: int | None = None,
    origin: str | None = None,
    index_keys_checked: bool = False,
) -> bool:
    """Replace ``old`` by ``new`` (None deletes); returns whether anything changed.

    A write that changes nothing writes and logs nothing (Streams emit no
    record for it). ``index_keys_checked``: the caller has already run
    ``indexes.check_index_keys`` on ``new`` against this ``table``.
    """
    if new is None:
        if old.item is None:
            return False
        blob, size, count_delta = None, 0, -1
    else:
        if old.item is not None and items_equal(old.item, new):
            return False
        blob = dump_item(new)
        size = item_size(new) if new_size is None else new_size
        count_delta = 0 if old.item is not None else 1
    old_size = old.size
    size_delta = size - old_size
    record = LogRecord(
        timestamp_ms=engine.now_ms(),
        keys=orjson.dumps(encode_item(key_item)),
        old=old.blob,
        new=blob,
        origin=origin,
    )
    txn.put_item(table.table_id, key, blob, record, count_delta, size_delta)
    derived = (
        *index_changes(table, key, old.item, new, checked=index_keys_checked,
                       old_size=old_size, new_size=size),
        *ttl_changes(table, key, old.item, new),
    )
    for space, entry_key, entry, entry_size in derived:
        if entry is None:
            txn.delete(table.table_id, space, entry_key)
        else:
            txn.put(table.table_id, space, entry_key, entry, entry_size)
    return True
