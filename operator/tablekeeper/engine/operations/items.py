"""Single-item operations: PutItem, GetItem, UpdateItem, DeleteItem.

Each request is checked in DynamoDB's order, so that a request with several
faults gets the error DynamoDB would give:

1. the request shape (every member's type and constraints, reported together);
2. expression and legacy parameters not mixed, placeholders not orphaned;
3. the attribute values (item or key), then what the operation allows of
   ReturnValues, then the item size;
4. the legacy conditions (Expected, AttributeUpdates), then the expressions,
   then placeholders no expression used;
5. the table exists; the key or item against its schema;
6. in the writer: the condition against the current item, then the change,
   atomically.

Steps 1 to 4 need no table and happen in ``parse``; a too-large item is
refused even for a table that does not exist, as DynamoDB refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from tablekeeper.engine import expressions as ex
from tablekeeper.engine.capacity import Consumed, read_units, write_units
from tablekeeper.engine.engine import Engine, parse_stored
from tablekeeper.engine.errors import ConditionalCheckFailedException, ValidationException
from tablekeeper.engine.indexes import (
    check_index_keys,
    has_item_collections,
    index_write_units,
    item_collection_metrics,
)
from tablekeeper.engine.keys import KeySchema
from tablekeeper.engine.operations.base import Operation
from tablekeeper.engine.operations.common import (
    RETURN_CONSUMED,
    RETURN_METRICS,
    RETURN_ON_FAILURE,
    RETURN_VALUES,
    Existing,
    check_item_size,
    read_existing,
    table_for_items,
    write_item,
)
from tablekeeper.engine.shapes import Members, plain_request
from tablekeeper.engine.storage.base import WriteTxn
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import Item, decode_item, encode_item, item_size

CONDITIONAL_OPERATORS: Final = ("OR", "AND")
UPDATE_TOO_BIG: Final = "Item size to update has exceeded the maximum allowed size"


# --- request members shared by the operations -------------------------------------------


@dataclass(frozen=True)
class WriteOptions:
    return_values: str
    return_on_failure: str
    return_consumed: str | None
    return_metrics: str | None


@dataclass(frozen=True)
class ConditionMembers:
    """The raw condition members of a write: an expression, or legacy Expected."""

    expression: str | None
    expected: dict[str, Any] | None
    operator: str | None
    names: dict[str, Any] | None
    values: dict[str, Any] | None

    @classmethod
    def read(cls, m: Members) -> ConditionMembers:
        return cls(
            expression=m.string("ConditionExpression"),
            expected=m.mapping("Expected"),
            operator=m.string("ConditionalOperator", enum=CONDITIONAL_OPERATORS),
            names=m.mapping("ExpressionAttributeNames"),
            values=m.mapping("ExpressionAttributeValues"),
        )

    def legacy(self) -> ex.Condition | None:
        """Expected + ConditionalOperator, validated (None when absent or empty)."""
        return ex.expected_to_condition(self.expected, self.operator) if self.expected else None

    def context(self) -> ex.ExpressionContext:
        return ex.ExpressionContext.from_wire(self.names, self.values)

    def condition(self, ctx: ex.ExpressionContext, legacy: ex.Condition | None) -> ex.Condition | None:
        if self.expression is None:
            return legacy
        return ex.parse_condition(self.expression, ctx, "ConditionExpression")


def _only_condition(members: ConditionMembers) -> ex.Condition | None:
    """The whole step 4 for a write whose only expression is its condition."""
    legacy = members.legacy()
    ctx = members.context()
    condition = members.condition(ctx, legacy)
    ctx.check_unused()
    return condition


def _check_old_only(return_values: str) -> None:
    if return_values not in ("NONE", "ALL_OLD"):
        raise ValidationException("ReturnValues can only be ALL_OLD or NONE")


def _check_condition(condition: ex.Condition | None, options: WriteOptions, old: Existing) -> None:
    if condition is not None and not ex.evaluate(condition, old.item):
        item = old.item if options.return_on_failure == "ALL_OLD" else None
        raise ConditionalCheckFailedException(item=encode_item(item) if item else None)


@dataclass(frozen=True)
class WriteResult:
    attributes: Item | None
    consumed: dict[str, Any] | None
    metrics: dict[str, Any] | None = None  # ItemCollectionMetrics (tables with local indexes)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if self.attributes:
            wire["Attributes"] = encode_item(self.attributes)
        if self.consumed is not None:
            wire["ConsumedCapacity"] = self.consumed
        if self.metrics is not None:
            wire["ItemCollectionMetrics"] = self.metrics
        return wire


def _consumed(
    table: TableDefinition, options: WriteOptions, old: Item | None, new: Item | None
) -> dict[str, Any] | None:
    """A write charges the larger of the old and new item, per started kilobyte,
    and each index the entries it writes (``indexes.index_write_units``)."""
    if options.return_consumed not in ("TOTAL", "INDEXES"):
        return None
    used = Consumed(table.name, write=write_units(_size(old), _size(new)))
    for name, (local, units) in index_write_units(table, old, new).items():
        used.indexes[name] = (local, 0.0, units)
    return used.to_wire(options.return_consumed)


def _metrics(
    engine: Engine, table: TableDefinition, options: WriteOptions, key: Item
) -> dict[str, Any] | None:
    """ItemCollectionMetrics, when asked for and the table has item collections."""
    if options.return_metrics != "SIZE" or not has_item_collections(table):
        return None
    return item_collection_metrics(engine.reader(table), table, key)


def _size(item: Item | None) -> int:
    return 0 if item is None else item_size(item)


# --- PutItem ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PutItemRequest:
    table_name: str
    item: Item
    size: int
    condition: ex.Condition | None
    options: WriteOptions


_PLAIN_OPTIONS: Final = WriteOptions("NONE", "NONE", None, None)


def parse_put_item(body: dict[str, Any]) -> PutItemRequest:
    plain = plain_request(body, "Item")
    if plain is None:
        return _parse_put_item_members(body)
    # No options, no condition: steps 1, 2 and 4 have nothing to check.
    name, item_wire = plain
    item = decode_item(item_wire)
    return PutItemRequest(name, item, check_item_size(item), None, _PLAIN_OPTIONS)


def _parse_put_item_members(body: dict[str, Any]) -> PutItemRequest:
    m = Members(body)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    name = m.table_name()
    item_wire = m.mapping("Item", required=True)
    return_values = m.string("ReturnValues", enum=RETURN_VALUES) or "NONE"
    metrics = m.string("ReturnItemCollectionMetrics", enum=RETURN_METRICS)
    on_failure = m.string("ReturnValuesOnConditionCheckFailure", enum=RETURN_ON_FAILURE)
    conditions = ConditionMembers.read(m)
    m.done()
    ex.check_expression_mix(body, ["ConditionExpression"], ["Expected", "ConditionalOperator"])
    ex.check_conditional_operator(body, "Expected")
    item = decode_item(item_wire)
    _check_old_only(return_values)
    size = check_item_size(item)
    condition = _only_condition(conditions)
    assert name is not None
    options = WriteOptions(return_values, on_failure or "NONE", consumed, metrics)
    return PutItemRequest(name, item, size, condition, options)


async def put_item(engine: Engine, request: PutItemRequest) -> WriteResult:
    table = table_for_items(engine, request.table_name)
    schema = table.key_schema
    schema.validate_item_keys(request.item)
    check_index_keys(table, request.item)
    key = schema.encode(request.item)
    key_item = schema.key_of(request.item)

    def put(txn: WriteTxn) -> Item | None:
        old = read_existing(txn, table, key)
        _check_condition(request.condition, request.options, old)
        write_item(engine, txn, table, key, key_item, old, request.item, request.size,
                   index_keys_checked=True)
        return old.item

    old = await engine.storage.write(put)
    returned = old if request.options.return_values == "ALL_OLD" else None
    consumed = _consumed(table, request.options, old, request.item)
    return WriteResult(returned, consumed, _metrics(engine, table, request.options, key_item))


# --- DeleteItem --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeleteItemRequest:
    table_name: str
    key: Item
    condition: ex.Condition | None
    options: WriteOptions


def parse_delete_item(body: dict[str, Any]) -> DeleteItemRequest:
    m = Members(body)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    name = m.table_name()
    return_values = m.string("ReturnValues", enum=RETURN_VALUES) or "NONE"
    metrics = m.string("ReturnItemCollectionMetrics", enum=RETURN_METRICS)
    key_wire = m.mapping("Key", required=True)
    on_failure = m.string("ReturnValuesOnConditionCheckFailure", enum=RETURN_ON_FAILURE)
    conditions = ConditionMembers.read(m)
    m.done()
    ex.check_expression_mix(body, ["ConditionExpression"], ["Expected", "ConditionalOperator"])
    ex.check_conditional_operator(body, "Expected")
    key = decode_item(key_wire)
    _check_old_only(return_values)
    condition = _only_condition(conditions)
    assert name is not None
    options = WriteOptions(return_values, on_failure or "NONE", consumed, metrics)
    return DeleteItemRequest(name, key, condition, options)


async def delete_item(engine: Engine, request: DeleteItemRequest) -> WriteResult:
    table = table_for_items(engine, request.table_name)
    table.key_schema.validate_key(request.key)
    key = table.key_schema.encode(request.key)

    def delete(txn: WriteTxn) -> Item | None:
        old = read_existing(txn, table, key)
        _check_condition(request.condition, request.options, old)
        write_item(engine, txn, table, key, request.key, old, None)
        return old.item

    old = await engine.storage.write(delete)
    returned = old if request.options.return_values == "ALL_OLD" else None
    consumed = _consumed(table, request.options, old, None)
    return WriteResult(returned, consumed, _metrics(engine, table, request.options, request.key))


# --- UpdateItem --------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateItemRequest:
    table_name: str
    key: Item
    plan: ex.UpdatePlan | None  # from UpdateExpression or AttributeUpdates; None: no change
    condition: ex.Condition | None
    options: WriteOptions


def parse_update_item(body: dict[str, Any]) -> UpdateItemRequest:
    m = Members(body)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    name = m.table_name()
    metrics = m.string("ReturnItemCollectionMetrics", enum=RETURN_METRICS)
    return_values = m.string("ReturnValues", enum=RETURN_VALUES) or "NONE"
    key_wire = m.mapping("Key", required=True)
    on_failure = m.string("ReturnValuesOnConditionCheckFailure", enum=RETURN_ON_FAILURE)
    attribute_updates = m.mapping("AttributeUpdates")
    update_text = m.string("UpdateExpression")
    conditions = ConditionMembers.read(m)
    m.done()
    ex.check_expression_mix(
        body, ["UpdateExpression", "ConditionExpression"],
        ["AttributeUpdates", "Expected", "ConditionalOperator"],
    )
    ex.check_conditional_operator(body, "Expected")
    key = decode_item(key_wire)
    plan = None
    if attribute_updates is not None:
        # Key attributes are refused once the table (and so the key) is known.
        plan = ex.attribute_updates_to_plan(attribute_updates, set())
    legacy = conditions.legacy()
    ctx = conditions.context()
    if update_text is not None:
        plan = ex.parse_update(update_text, ctx)
    condition = conditions.condition(ctx, legacy)
    ctx.check_unused()
    assert name is not None
    options = WriteOptions(return_values, on_failure or "NONE", consumed, metrics)
    return UpdateItemRequest(name, key, plan, condition, options)


def _check_no_key_attribute(plan: ex.UpdatePlan | None, schema: KeySchema) -> None:
    for path in plan.paths if plan is not None else ():
        if path.top in schema.names:
            raise ValidationException(
                f"One or more parameter values were invalid: Cannot update attribute {path.top}. "
                "This attribute is part of the key"
            )


def _updated(plan: ex.UpdatePlan | None, item: Item | None) -> Item | None:
    """UPDATED_OLD / UPDATED_NEW: the paths the update wrote, as they are in ``item``.

    Only the written fragment of a nested path comes back (``a.b`` yields
    ``{"a": {"b": ...}}``), and paths absent from ``item`` are left out.
    """
    if plan is None or item is None:
        return None
    return ex.project(ex.Projection(plan.paths), item) or None


async def update_item(engine: Engine, request: UpdateItemRequest) -> WriteResult:
    table = table_for_items(engine, request.table_name)
    schema = table.key_schema
    schema.validate_key(request.key)
    _check_no_key_attribute(request.plan, schema)
    key = schema.encode(request.key)
    plan = request.plan

    def update(txn: WriteTxn) -> tuple[Item | None, Item | None]:
        old = read_existing(txn, table, key)
        _check_condition(request.condition, request.options, old)
        base = dict(request.key) if old.item is None else old.item
        new = base if plan is None else ex.apply_update(plan, base, exists=old.item is not None)
        if old.item is None and plan is not None and plan.actions and len(new) == len(base):
            return None, None  # it only removed: DynamoDB does not create the item
        size = check_item_size(new, UPDATE_TOO_BIG)
        write_item(engine, txn, table, key, request.key, old, new, size)
        return old.item, new

    old, new = await engine.storage.write(update)
    returned = _update_returns(request.options.return_values, plan, old, new)
    consumed = _consumed(table, request.options, old, new)
    return WriteResult(returned, consumed, _metrics(engine, table, request.options, request.key))


def _update_returns(
    mode: str, plan: ex.UpdatePlan | None, old: Item | None, new: Item | None
) -> Item | None:
    if mode == "ALL_OLD":
        return old
    if mode == "ALL_NEW":
        return new
    if mode == "UPDATED_OLD":
        return _updated(plan, old)
    if mode == "UPDATED_NEW":
        return _updated(plan, new)
    return None


# --- GetItem --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetItemRequest:
    table_name: str
    key: Item
    projection: ex.Projection | None
    consistent: bool
    return_consumed: str | None


def parse_get_item(body: dict[str, Any]) -> GetItemRequest:
    plain = plain_request(body, "Key")
    if plain is None:
        return _parse_get_item_members(body)
    name, key_wire = plain  # no options, no projection: nothing else to check
    return GetItemRequest(name, decode_item(key_wire), None, False, None)


def _parse_get_item_members(body: dict[str, Any]) -> GetItemRequest:
    m = Members(body)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    attributes = m.array("AttributesToGet", min_len=1)
    name = m.table_name()
    key_wire = m.mapping("Key", required=True)
    consistent = m.boolean("ConsistentRead")
    projection_text = m.string("ProjectionExpression")
    names = m.mapping("ExpressionAttributeNames")
    m.done()
    ex.check_expression_mix(body, ["ProjectionExpression"], ["AttributesToGet"])
    key = decode_item(key_wire)
    projection = None
    if attributes is not None:
        projection = ex.attributes_to_get_to_projection(attributes)
    ctx = ex.ExpressionContext.from_wire(names, None)
    if projection_text is not None:
        projection = ex.parse_projection(projection_text, ctx)
    ctx.check_unused()
    assert name is not None
    return GetItemRequest(name, key, projection, bool(consistent), consumed)


@dataclass(frozen=True)
class GetItemResult:
    item: Item | None
    raw: bytes | None  # the stored JSON, spliced unchanged when nothing is projected
    consumed: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if self.raw is not None:
            wire["Item"] = orjson.Fragment(self.raw)
        elif self.item is not None:  # {} when a projection matches nothing: DynamoDB's answer
            wire["Item"] = encode_item(self.item)
        if self.consumed is not None:
            wire["ConsumedCapacity"] = self.consumed
        return wire


async def get_item(engine: Engine, request: GetItemRequest) -> GetItemResult:
    table = table_for_items(engine, request.table_name)
    table.key_schema.validate_key(request.key)
    blob = engine.reader(table).get(table.key_schema.encode(request.key))
    wants_capacity = request.return_consumed in ("TOTAL", "INDEXES")
    item = None
    if blob is not None and (wants_capacity or request.projection is not None):
        item = parse_stored(blob)
    consumed = None
    if wants_capacity:
        # A read charges the whole item, per started 4 KB, whatever it projects.
        units = read_units(_size(item), request.consistent)
        consumed = Consumed(table.name, read=units).to_wire(request.return_consumed)
    if blob is None:
        return GetItemResult(None, None, consumed)
    if request.projection is None:
        return GetItemResult(None, blob, consumed)
    assert item is not None
    return GetItemResult(ex.project(request.projection, item), None, consumed)


OPERATIONS = {
    op.name: op
    for op in (
        Operation("PutItem", parse_put_item, put_item),
        Operation("GetItem", parse_get_item, get_item),
        Operation("UpdateItem", parse_update_item, update_item),
        Operation("DeleteItem", parse_delete_item, delete_item),
    )
}
