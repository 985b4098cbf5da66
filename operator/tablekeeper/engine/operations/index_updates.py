"""UpdateTable's GlobalSecondaryIndexUpdates: Create, Update and Delete of global indexes.

``parse_index_updates`` checks the shape with the request's other members;
``check_index_updates`` the rules the request breaks on its own; and
``plan_index_updates`` is pure: the table, the updates, the billing mode the
table will have and ``now`` in, the new index list (and attribute
definitions) out, or DynamoDB's refusal.  A Create leaves the index CREATING
and backfilling, a Delete leaves it DELETING; ``index_builds`` does the rest
in the background.

DynamoDB admits one online index Create or Delete per table at a time, in a
request or across requests ("Only 1 online index ..."); Updates of other
indexes may go along.  Deleting a CREATING index cancels its creation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from tablekeeper.engine.errors import (
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
)
from tablekeeper.engine.operations.index_specs import (
    INVALID,
    MAX_GLOBAL,
    IndexSpec,
    check_projected_total,
    index_key_schema,
    index_projection,
    parse_index_spec,
)
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.tables import IndexDefinition, TableDefinition, Throughput

ONE_ONLINE: Final = (
    "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously "
    "per table"
)
MAX_INDEX_CAPACITY_UNITS: Final = 40_000
ACTIONS: Final = ("Create", "Update", "Delete")

# table_admin.plan_throughput: (current, requested, now) -> new, with DynamoDB's bookkeeping.
ThroughputPlanner = Callable[[Throughput, Throughput, float], Throughput]


@dataclass(frozen=True)
class IndexUpdate:
    """One GlobalSecondaryIndexUpdate; ``actions`` lists the members it set."""

    actions: tuple[str, ...]
    name: str = ""
    spec: IndexSpec | None = None  # Create
    throughput: Throughput | None = None  # Update

    @property
    def action(self) -> str:
        return self.actions[0]


# --- shape and request-only rules -------------------------------------------------------------


def _parse_one(m: Members, wire: Any, i: int) -> IndexUpdate:
    u = m.nested("GlobalSecondaryIndexUpdates", wire, i)
    create, update, delete = u.mapping("Create"), u.mapping("Update"), u.mapping("Delete")
    actions = tuple(a for a, v in zip(ACTIONS, (create, update, delete), strict=True) if v is not None)
    if create is not None:
        spec = parse_index_spec(u, "Create", create)
        return IndexUpdate(actions, spec.name, spec=spec)
    if update is not None:
        n = u.nested("Update", update)
        name = n.string("IndexName", required=True, min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
        value = n.mapping("ProvisionedThroughput")
        throughput = None
        if value is not None:
            t = n.nested("ProvisionedThroughput", value)
            read = t.integer("ReadCapacityUnits", required=True, minimum=1)
            write = t.integer("WriteCapacityUnits", required=True, minimum=1)
            throughput = Throughput(read or 0, write or 0)
        return IndexUpdate(actions, name or "", throughput=throughput)
    if delete is not None:
        n = u.nested("Delete", delete)
        name = n.string("IndexName", required=True, min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
        return IndexUpdate(actions, name or "")
    return IndexUpdate(actions)


def parse_index_updates(m: Members, value: list[Any] | None) -> tuple[IndexUpdate, ...] | None:
    if value is None:
        return None
    return tuple(_parse_one(m, wire, i) for i, wire in enumerate(value))


def check_index_updates(updates: tuple[IndexUpdate, ...]) -> None:
    """The rules a list of index updates breaks on its own, before the table is known."""
    seen: set[str] = set()
    for update in updates:
        if not update.actions:
            raise ValidationException(
                INVALID + "One of GlobalSecondaryIndexUpdate.Update, "
                "GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Delete must not "
                "be null"
            )
        if len(update.actions) > 1:
            raise ValidationException(
                INVALID + "Only one global secondary index action is allowed per "
                "GlobalSecondaryIndexUpdate object"
            )
        if update.name in seen:
            raise ValidationException(
                INVALID + "Only one global secondary index update per index is allowed "
                f"simultaneously. Index: {update.name}"
            )
        seen.add(update.name)


def creates_or_deletes(updates: tuple[IndexUpdate, ...] | None) -> bool:
    return any(update.action != "Update" for update in updates or ())


# --- the plan --------------------------------------------------------------------------------


def _existing(table: TableDefinition, name: str, verb: str) -> IndexDefinition:
    index = table.index(name)
    if index is None:
        raise ResourceNotFoundException(
            f"Requested resource not found: Index {name} for table {table.name}"
        )
    if index.local:
        raise ValidationException(f"Cannot {verb} an index that is not a GlobalSecondaryIndex: {name}")
    if index.status == "DELETING":
        raise ResourceInUseException(
            "Attempt to change a resource which is still in use: Index is being deleted. "
            f"Table: {table.name} Index: {name}"
        )
    return index


def _check_one_online(table: TableDefinition, except_name: str | None = None) -> None:
    busy = [i for i in table.indexes if i.status in ("CREATING", "DELETING") and i.name != except_name]
    if busy:
        raise LimitExceededException(ONE_ONLINE)


def _check_index_maximum(name: str, throughput: Throughput, region: str) -> None:
    for member, units in (("ReadCapacityUnits", throughput.read), ("WriteCapacityUnits", throughput.write)):
        if units > MAX_INDEX_CAPACITY_UNITS:
            raise LimitExceededException(
                f"The requested {member} for index {name}, {units}, is above the per index "
                f"maximum for the account in {region}. Per table maximum: "
                f"{MAX_INDEX_CAPACITY_UNITS}. Refer to the Amazon DynamoDB Developer Guide for "
                "current limits and how to request higher limits."
            )


def _planned_create(
    table: TableDefinition,
    spec: IndexSpec,
    definitions: tuple[tuple[str, str], ...] | None,
    billing_mode: str,
) -> tuple[IndexDefinition, dict[str, str]]:
    """The new index and the attribute definitions the table then has."""
    if definitions is None:
        raise ValidationException(
            INVALID + f"AttributeDefinitions is not specified for index: {spec.name}"
        )
    if table.index(spec.name) is not None:
        raise ValidationException("Attempting to create an index which already exists")
    _check_one_online(table)
    merged = dict(definitions)
    merged.update(table.attribute_definitions)  # the table's own definitions win
    key_schema = index_key_schema(spec, merged)
    projection = index_projection(spec)
    if billing_mode == "PAY_PER_REQUEST":
        if spec.throughput is not None:
            raise ValidationException(
                INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified for "
                f"index: {spec.name} when BillingMode is PAY_PER_REQUEST"
            )
        throughput = Throughput()
    elif spec.throughput is None:
        raise ValidationException(
            INVALID + "Both ReadCapacityUnits and WriteCapacityUnits must be specified for "
            f"index: {spec.name}"
        )
    else:
        throughput = spec.throughput
        _check_index_maximum(spec.name, throughput, table.region)
    if sum(1 for i in table.indexes if not i.local) >= MAX_GLOBAL:
        raise LimitExceededException(
            "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table "
            f"limit of {MAX_GLOBAL}"
        )
    index = IndexDefinition(
        spec.name, key_schema, projection, False, throughput, status="CREATING", backfilling=True
    )
    attributes = dict(table.attribute_definitions)
    for attr in (key_schema.hash, key_schema.range):
        if attr is not None:
            attributes.setdefault(attr.name, attr.type)
    return index, attributes


def _planned_throughput(
    table: TableDefinition,
    index: IndexDefinition,
    requested: Throughput | None,
    billing_mode: str,
    now: float,
    plan_throughput: ThroughputPlanner,
) -> Throughput:
    name = index.name
    if billing_mode == "PAY_PER_REQUEST":
        raise ValidationException(
            INVALID + f"The only Updates for index: {name} when TableThroughputMode is "
            "PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput"
        )
    if requested is None:
        raise ValidationException(
            INVALID + f"Both ReadCapacityUnits and WriteCapacityUnits must be specified for "
            f"index: {name}"
        )
    _check_index_maximum(name, requested, table.region)
    current = index.throughput or Throughput()
    if table.billing_mode == "PAY_PER_REQUEST":  # switching to PROVISIONED: a first setting
        return replace(current, read=requested.read, write=requested.write)
    if (requested.read, requested.write) == (current.read, current.write):
        raise ValidationException(
            f"The provisioned throughput for the index {name} will not change. The requested "
            "value equals the current value. "
            f"Current ReadCapacityUnits provisioned for index {name}: {current.read}. "
            f"Requested ReadCapacityUnits: {requested.read}. "
            f"Current WriteCapacityUnits provisioned for index {name}: {current.write}. "
            f"Requested WriteCapacityUnits: {requested.write}. "
            "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request "
            "higher limits."
        )
    return plan_throughput(current, requested, now)


def _apply(
    table: TableDefinition,
    indexes: list[IndexDefinition],
    update: IndexUpdate,
    billing_mode: str,
    now: float,
    plan_throughput: ThroughputPlanner,
) -> None:
    """Apply one Update or Delete to ``indexes`` (in place)."""
    verb = "delete" if update.action == "Delete" else "update"
    index = _existing(table, update.name, verb)
    position = indexes.index(index)
    if update.action == "Delete":
        _check_one_online(table, except_name=index.name)
        indexes[position] = replace(index, status="DELETING", backfilling=False)
        return
    throughput = _planned_throughput(
        table, index, update.throughput, billing_mode, now, plan_throughput
    )
    indexes[position] = replace(index, throughput=throughput)


def plan_index_updates(
    table: TableDefinition,
    updates: tuple[IndexUpdate, ...],
    definitions: tuple[tuple[str, str], ...] | None,
    billing_mode: str,
    now: float,
    plan_throughput: ThroughputPlanner,
) -> dict[str, Any]:
    """The table's new ``indexes`` (and ``attribute_definitions``), or DynamoDB's refusal."""
    if sum(1 for update in updates if update.action != "Update") > 1:
        raise LimitExceededException(ONE_ONLINE)
    indexes = list(table.indexes)
    changes: dict[str, Any] = {}
    for update in updates:
        if update.action == "Create":
            assert update.spec is not None
            index, attributes = _planned_create(table, update.spec, definitions, billing_mode)
            indexes.append(index)
            changes["attribute_definitions"] = tuple(attributes.items())
        else:
            _apply(table, indexes, update, billing_mode, now, plan_throughput)
    _plan_billing_switch(table, indexes, updates, billing_mode)
    check_projected_total(tuple(indexes))
    changes["indexes"] = tuple(indexes)
    return changes


def _plan_billing_switch(
    table: TableDefinition,
    indexes: list[IndexDefinition],
    updates: tuple[IndexUpdate, ...],
    billing_mode: str,
) -> None:
    """A table switching billing mode switches its global indexes with it."""
    if billing_mode == table.billing_mode:
        return
    updated = {update.name for update in updates if update.action == "Update"}
    for position, index in enumerate(indexes):
        if index.local or index.status == "DELETING":
            continue
        if billing_mode == "PAY_PER_REQUEST":
            current = index.throughput or Throughput()
            indexes[position] = replace(index, throughput=replace(current, read=0, write=0))
        elif index.name not in updated and index.status != "CREATING":
            raise ValidationException(
                INVALID + f"ProvisionedThroughput must be specified for index: {index.name}"
            )


def show_index_updates(description: dict[str, Any], updates: tuple[IndexUpdate, ...]) -> None:
    """The UpdateTable response's view of the indexes it changed.

    As DynamoDB answers: an updated index is UPDATING, and a new one is still
    allocating its resources (Backfilling false) when the response is sent.
    """
    by_name = {update.name: update.action for update in updates}
    for wire in description.get("GlobalSecondaryIndexes", ()):
        action = by_name.get(wire["IndexName"])
        if action == "Update":
            wire["IndexStatus"] = "UPDATING"
        elif action == "Create":
            wire["IndexStatus"] = "CREATING"
            wire["Backfilling"] = False

