"""Batch operations: BatchGetItem and BatchWriteItem.

A batch is many independent single-item operations in one request, checked
in DynamoDB's order: the request's own members first (all constraint
violations reported together), then every value and expression, then the
tables, keys and duplicates; only a request that passes all of it reads or
writes anything.

BatchWriteItem writes each table's items in one storage write, so they
share one commit (and one fsync, with whatever else is being written);
tables are written concurrently.  Every item goes through the one write
path, ``common.write_item``, so each appends its change-log record.

BatchGetItem reads on the event-loop thread and stops at DynamoDB's 16 MB
response limit: the keys it did not read come back as ``UnprocessedKeys``,
shaped so that the client can send them again as they are.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tablekeeper.engine import expressions as ex
from tablekeeper.engine.capacity import Consumed, read_units, write_units
from tablekeeper.engine.engine import Engine, parse_stored
from tablekeeper.engine.errors import SerializationException, ValidationException
from tablekeeper.engine.keys import KeySchema
from tablekeeper.engine.operations.base import Operation
from tablekeeper.engine.operations.common import (
    RETURN_CONSUMED,
    RETURN_METRICS,
    check_item_size,
    projection_context,
    read_existing,
    table_for_items,
    write_item,
)
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.storage.base import StorageError, TableMissing, WriteTxn
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import Item, decode_item, encode_item, item_size

log = logging.getLogger(__name__)

MAX_BATCH_GET_KEYS = 100
MAX_BATCH_WRITES = 25
MAX_BATCH_GET_RESPONSE_BYTES = 16 * 1024 * 1024

DUPLICATE_KEYS = "Provided list of item keys contains duplicates"
KEY_SCHEMA_MISMATCH = "The provided key element does not match the schema"
_ONE_DATATYPE = (
    "Supplied AttributeValue has more than one datatypes set, "
    "must contain exactly one of the supported datatypes"
)
_MAP_KEYS_CONSTRAINT = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 255, "
    "Member must have length greater than or equal to 3, "
    f"Member must satisfy regular expression pattern: {TABLE_NAME_PATTERN}]"
)
# What KeySchema raises for a key of the wrong shape (as opposed to an empty
# or oversized key value, which DynamoDB words and reports differently).
_KEY_SHAPE_ERRORS = (
    KEY_SCHEMA_MISMATCH,
    "One or more parameter values were invalid: Missing the key ",
    "One or more parameter values were invalid: Type mismatch for key ",
)


# --- pieces shared with the transactions ---------------------------------------------


def java_echo(type_name: str, members: Sequence[Any]) -> str:
    """A list of request structures as DynamoDB's validator prints it:
    ``[com.amazonaws.dynamodb.v20120810.WriteRequest@1a2b3c4d, ...]``."""
    shown = (
        f"com.amazonaws.dynamodb.v20120810.{type_name}@"
        f"{zlib.crc32(orjson.dumps(member, option=orjson.OPT_SORT_KEYS)):x}"
        for member in members
    )
    return "[" + ", ".join(shown) + "]"


def is_key_shape_error(error: ValidationException) -> bool:
    """Whether a key was refused for its attributes or types (not its values)."""
    return (error.message or "").startswith(_KEY_SHAPE_ERRORS)


def valid_table_name(name: str) -> bool:
    """A RequestItems key: a table name, or a table ARN (up to 1024 characters)."""
    if name.startswith("arn:"):
        return len(name) <= 1024
    return 3 <= len(name) <= 255 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


def consumed_list(
    consumed: dict[str, Consumed], mode: str | None, *, split: bool = False
) -> list[dict[str, Any]] | None:
    """The ConsumedCapacity list of a multi-table request, one entry per table
    (``split``: with Read/WriteCapacityUnits, as transactions report them)."""
    if mode not in ("TOTAL", "INDEXES"):
        return None
    wires = (c.to_wire(mode, split=split) for c in consumed.values())
    return [wire for wire in wires if wire is not None]


# --- BatchGetItem ---------------------------------------------------------------------


@dataclass(frozen=True)
class TableGets:
    """One table's KeysAndAttributes."""

    table_name: str
    keys: tuple[Item, ...]
    keys_wire: tuple[dict[str, Any], ...]
    projection: ex.Projection | None
    consistent: bool
    options_wire: dict[str, Any]  # every member but Keys, echoed in UnprocessedKeys


@dataclass(frozen=True)
class BatchGetItemRequest:
    tables: tuple[TableGets, ...]
    return_consumed: str | None


def _table_gets_shape(m: Members, name: str, wire: Any) -> dict[str, Any]:
    """Check one KeysAndAttributes' members; errors join the request's list."""
    t = Members(wire, f"requestItems.{name}.member.")
    t.errors = m.errors
    keys = t.array("Keys", required=True)
    t.array("AttributesToGet", min_len=1, max_len=255)
    t.boolean("ConsistentRead")
    t.string("ProjectionExpression")
    t.mapping("ExpressionAttributeNames")
    if keys is not None and not 1 <= len(keys) <= MAX_BATCH_GET_KEYS:
        bound = (
            "greater than or equal to 1" if not keys
            else f"less than or equal to {MAX_BATCH_GET_KEYS}"
        )
        m.errors.append(
            f"Value at 'RequestItems.{name}.member.Keys' failed to satisfy constraint: "
            f"Member must have length {bound}"
        )
    return t.body


def _table_gets(name: str, wire: dict[str, Any]) -> TableGets:
    """Decode one table's keys and parse its projection."""
    ex.check_expression_mix(wire, ["ProjectionExpression"], ["AttributesToGet"])
    ctx = projection_context(Members(wire))
    text = wire.get("ProjectionExpression")
    projection = None
    if text is not None:
        projection = ex.parse_projection(text, ctx)
    elif wire.get("AttributesToGet") is not None:
        projection = ex.attributes_to_get_to_projection(wire["AttributesToGet"])
    keys_wire = tuple(wire["Keys"])
    keys = tuple(decode_item(key) for key in keys_wire)
    ctx.check_unused()
    options = {member: value for member, value in wire.items() if member != "Keys"}
    return TableGets(name, keys, keys_wire, projection, bool(wire.get("ConsistentRead")), options)


def parse_batch_get_item(body: dict[str, Any]) -> BatchGetItemRequest:
    m = Members(body)
    request_items = m.mapping("RequestItems", required=True)
    if request_items is not None and any(not valid_table_name(name) for name in request_items):
        m.fail("RequestItems", orjson.dumps(request_items).decode(), _MAP_KEYS_CONSTRAINT)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    if request_items is not None and not request_items:
        m.errors.append(
            "Value at 'RequestItems' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    shapes = {name: _table_gets_shape(m, name, wire) for name, wire in (request_items or {}).items()}
    m.done()
    if sum(len(wire["Keys"]) for wire in shapes.values()) > MAX_BATCH_GET_KEYS:
        raise ValidationException("Too many items requested for the BatchGetItem call")
    tables = tuple(_table_gets(name, wire) for name, wire in shapes.items())
    # One table's ProjectionExpression and another's AttributesToGet mix the two as well.
    styles = ("ProjectionExpression", "AttributesToGet")
    ex.check_expression_mix(
        {style: True for style in styles if any(wire.get(style) is not None for wire in shapes.values())},
        ["ProjectionExpression"], ["AttributesToGet"],
    )
    return BatchGetItemRequest(tables, consumed)


@dataclass(frozen=True)
class BatchGetItemResult:
    responses: dict[str, list[Any]]  # per table: stored JSON fragments or projected items
    unprocessed: dict[str, dict[str, Any]]
    consumed: list[dict[str, Any]] | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"Responses": self.responses, "UnprocessedKeys": self.unprocessed}
        if self.consumed is not None:
            wire["ConsumedCapacity"] = self.consumed
        return wire


def _lookup_keys(engine: Engine, gets: TableGets) -> tuple[TableDefinition, list[bytes]]:
    """The table and its stored keys, refusing keys of the wrong shape and duplicates."""
    table = table_for_items(engine, gets.table_name)
    encoded: list[bytes] = []
    for key in gets.keys:
        table.key_schema.validate_key(key)
        encoded.append(table.key_schema.encode(key))
    if len(set(encoded)) != len(encoded):
        raise ValidationException(DUPLICATE_KEYS)
    return table, encoded


async def batch_get_item(engine: Engine, request: BatchGetItemRequest) -> BatchGetItemResult:
    plans = [(gets, *_lookup_keys(engine, gets)) for gets in request.tables]
    responses: dict[str, list[Any]] = {}
    unprocessed: dict[str, dict[str, Any]] = {}
    consumed: dict[str, Consumed] = {}
    budget = MAX_BATCH_GET_RESPONSE_BYTES
    for gets, table, keys in plans:
        reader = engine.reader(table)
        found = responses.setdefault(gets.table_name, [])
        units = consumed.setdefault(gets.table_name, Consumed(table.name))
        for index, key in enumerate(keys):
            blob = reader.get(key) if budget > 0 else None
            item = parse_stored(blob) if blob is not None else None
            size = item_size(item) if item is not None else 0
            if budget <= 0 or size > budget:
                budget = 0  # this key and every later one is left for the client to resend
                left = unprocessed.setdefault(gets.table_name, {**gets.options_wire, "Keys": []})
                left["Keys"].append(gets.keys_wire[index])
                continue
            if item is None:
                continue
            budget -= size
            units.read += read_units(size, gets.consistent)
            if gets.projection is None:
                found.append(orjson.Fragment(blob))
            else:
                found.append(encode_item(ex.project(gets.projection, item)))
    return BatchGetItemResult(responses, unprocessed, consumed_list(consumed, request.return_consumed))


# --- BatchWriteItem -------------------------------------------------------------------


@dataclass(frozen=True)
class BatchWrite:
    """One WriteRequest: a put (``item``) or a delete (``key``)."""

    item: Item | None
    key: Item | None


@dataclass(frozen=True)
class TableWrites:
    table_name: str
    writes: tuple[BatchWrite, ...]


@dataclass(frozen=True)
class BatchWriteItemRequest:
    tables: tuple[TableWrites, ...]
    return_consumed: str | None
    return_metrics: str | None


def _check_request_items(m: Members, request_items: dict[str, Any]) -> None:
    """RequestItems' map constraints: table names, and 1 to 25 requests per table."""
    for requests in request_items.values():
        if not isinstance(requests, list):
            raise SerializationException("Unexpected value type for member 'RequestItems': expected List")
    echo = "{" + ", ".join(
        f"{name}={java_echo('WriteRequest', requests)}" for name, requests in request_items.items()
    ) + "}"
    if any(not valid_table_name(name) for name in request_items):
        m.fail("RequestItems", echo, _MAP_KEYS_CONSTRAINT)
    if any(not 1 <= len(requests) <= MAX_BATCH_WRITES for requests in request_items.values()):
        m.fail(
            "RequestItems", echo,
            "Map value must satisfy constraint: [Member must have length less than or equal to "
            f"{MAX_BATCH_WRITES}, Member must have length greater than or equal to 1]",
        )


def _write_shape(m: Members, where: str, wire: Any) -> tuple[str, dict[str, Any] | None]:
    """One WriteRequest's members: ("put", Item) or ("delete", Key)."""
    r = Members(wire, where)
    r.errors = m.errors
    put = r.mapping("PutRequest")
    delete = r.mapping("DeleteRequest")
    if (put is None) == (delete is None):
        raise ValidationException(_ONE_DATATYPE)
    kind, member, inner = ("put", "Item", put) if put is not None else ("delete", "Key", delete)
    nested = Members(inner, f"{where}{'putRequest' if kind == 'put' else 'deleteRequest'}.")
    nested.errors = m.errors
    return kind, nested.mapping(member, required=True)


def _decode_write(kind: str, wire: dict[str, Any]) -> BatchWrite:
    if kind == "put":
        item = decode_item(wire)
        check_item_size(item)
        return BatchWrite(item, None)
    return BatchWrite(None, decode_item(wire))


def parse_batch_write_item(body: dict[str, Any]) -> BatchWriteItemRequest:
    m = Members(body)
    request_items = m.mapping("RequestItems", required=True)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    metrics = m.string("ReturnItemCollectionMetrics", enum=RETURN_METRICS)
    m.done()  # DynamoDB reports these alone, ahead of RequestItems' own constraints
    assert request_items is not None
    if not request_items:
        raise ValidationException("The requestItems parameter is required for BatchWriteItem")
    _check_request_items(m, request_items)
    m.done()
    if sum(len(requests) for requests in request_items.values()) > MAX_BATCH_WRITES:
        raise ValidationException("Too many items requested for the BatchWriteItem call")
    shapes = {
        name: [
            _write_shape(m, f"requestItems.{name}.member.{i + 1}.member.", wire)
            for i, wire in enumerate(requests)
        ]
        for name, requests in request_items.items()
    }
    m.done()
    tables = tuple(
        TableWrites(name, tuple(_decode_write(kind, wire) for kind, wire in writes if wire is not None))
        for name, writes in shapes.items()
    )
    return BatchWriteItemRequest(tables, consumed, metrics)


@dataclass(frozen=True)
class BatchWriteItemResult:
    unprocessed: dict[str, list[dict[str, Any]]]
    consumed: list[dict[str, Any]] | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"UnprocessedItems": self.unprocessed}
        if self.consumed is not None:
            wire["ConsumedCapacity"] = self.consumed
        return wire


@dataclass(frozen=True)
class _PlannedWrite:
    key: bytes
    key_item: Item
    item: Item | None  # None deletes
    size: int


def _check_key(schema: KeySchema, write: BatchWrite) -> None:
    """Refuse a key of the wrong shape with BatchWriteItem's one wording."""
    try:
        if write.item is not None:
            schema.validate_item_keys(write.item)
        else:
            assert write.key is not None
            schema.validate_key(write.key)
    except ValidationException as error:
        if is_key_shape_error(error):
            raise ValidationException(KEY_SCHEMA_MISMATCH) from None
        raise


def _plan_table(engine: Engine, writes: TableWrites) -> tuple[TableDefinition, list[_PlannedWrite]]:
    table = table_for_items(engine, writes.table_name)
    schema = table.key_schema
    planned: list[_PlannedWrite] = []
    for write in writes.writes:
        _check_key(schema, write)
        source = write.item if write.item is not None else write.key
        assert source is not None
        size = item_size(write.item) if write.item is not None else 0
        planned.append(_PlannedWrite(schema.encode(source), schema.key_of(source), write.item, size))
    if len({p.key for p in planned}) != len(planned):
        raise ValidationException(DUPLICATE_KEYS)
    return table, planned


async def _write_table(engine: Engine, table: TableDefinition, planned: list[_PlannedWrite]) -> float:
    """Every write of one table in one storage write; returns the write units consumed."""

    def apply(txn: WriteTxn) -> float:
        units = 0.0
        for p in planned:
            old = read_existing(txn, table, p.key)
            write_item(engine, txn, table, p.key, p.key_item, old, p.item, p.size)
            units += write_units(p.size, old.size)
        return units

    return await engine.storage.write(apply)


async def batch_write_item(engine: Engine, request: BatchWriteItemRequest) -> BatchWriteItemResult:
    plans = [(writes, *_plan_table(engine, writes)) for writes in request.tables]
    outcomes = await asyncio.gather(
        *(_write_table(engine, table, planned) for _, table, planned in plans),
        return_exceptions=True,
    )
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    consumed: dict[str, Consumed] = {}
    for (writes, table, _), outcome in zip(plans, outcomes, strict=True):
        if isinstance(outcome, StorageError) and not isinstance(outcome, TableMissing):
            # The other tables' writes stand; these are the client's to retry.
            log.warning("BatchWriteItem: table %s not written: %s", table.name, outcome)
            unprocessed[writes.table_name] = [_write_wire(write) for write in writes.writes]
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        consumed[writes.table_name] = Consumed(table.name, write=outcome)
    return BatchWriteItemResult(unprocessed, consumed_list(consumed, request.return_consumed))


def _write_wire(write: BatchWrite) -> dict[str, Any]:
    if write.item is not None:
        return {"PutRequest": {"Item": encode_item(write.item)}}
    assert write.key is not None
    return {"DeleteRequest": {"Key": encode_item(write.key)}}


OPERATIONS = {
    op.name: op
    for op in (
        Operation("BatchGetItem", parse_batch_get_item, batch_get_item),
        Operation("BatchWriteItem", parse_batch_write_item, batch_write_item),
    )
}
