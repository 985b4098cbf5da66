"""Time to live: UpdateTimeToLive and DescribeTimeToLive.

UpdateTimeToLive runs in three phases, as DynamoDB checks it:

1. ``parse_update_time_to_live``: the member shapes (TableName,
   TimeToLiveSpecification with Enabled and AttributeName of 1 to 255
   characters), all reported together.
2. the table: missing is ResourceNotFoundException, still being created is
   ResourceInUseException.
3. ``plan_ttl_update`` (pure): the request against the table's TTL state, in
   DynamoDB's order: first what contradicts the state ("already enabled",
   "already disabled", "active on a different AttributeName"), then the limit
   of one change per hour ("modified multiple times within a fixed
   interval").  DynamoDB documents the hour; it has been seen to let a change
   through after about half of it.

The response echoes the specification.  The change itself is a background
job (``tablekeeper.engine.ttl_worker``): ENABLING while existing items are
indexed, DISABLING while their entries are dropped; DescribeTimeToLive shows
those states and then ENABLED or DISABLED (with no AttributeName, as
DynamoDB forgets it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
)
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.shapes import Members
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.ttl import DISABLED, DISABLING, ENABLED, ENABLING
from tablekeeper.engine.ttl_worker import start_transition

MAX_ATTRIBUTE_NAME: Final = 255
CHANGE_INTERVAL_SECONDS: Final = 3600.0

ALREADY_ENABLED: Final = "TimeToLive is already enabled"
ALREADY_DISABLED: Final = "TimeToLive is already disabled"
DIFFERENT_ATTRIBUTE: Final = (
    "TimeToLive is active on a different AttributeName: current AttributeName is {}"
)
TOO_SOON: Final = "Time to live has been modified multiple times within a fixed interval"


def _not_found(engine: Engine, name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(
        f"Requested resource not found: Table: {engine.resolve_name(name)} not found"
    )


# --- UpdateTimeToLive -----------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateTimeToLiveRequest:
    table_name: str
    enabled: bool
    attribute_name: str


def parse_update_time_to_live(body: dict[str, Any]) -> UpdateTimeToLiveRequest:
    m = Members(body)
    name = m.table_name()
    spec = m.mapping("TimeToLiveSpecification", required=True)
    enabled = attribute = None
    if spec is not None:
        s = m.nested("TimeToLiveSpecification", spec)
        enabled = s.boolean("Enabled", required=True)
        attribute = s.string("AttributeName", required=True, min_len=1, max_len=MAX_ATTRIBUTE_NAME)
    m.done()
    assert name is not None and enabled is not None and attribute is not None
    return UpdateTimeToLiveRequest(name, enabled, attribute)


def plan_ttl_update(
    table: TableDefinition, enabled: bool, attribute: str, now: float
) -> TableDefinition:
    """The table with its TTL switched as asked, or DynamoDB's refusal."""
    active = table.ttl_status in (ENABLING, ENABLED)
    if active and table.ttl_attribute != attribute:
        raise ValidationException(DIFFERENT_ATTRIBUTE.format(table.ttl_attribute))
    if active and enabled:
        raise ValidationException(ALREADY_ENABLED)
    if not active and not enabled:
        raise ValidationException(ALREADY_DISABLED)
    if table.ttl_changed is not None and now - table.ttl_changed < CHANGE_INTERVAL_SECONDS:
        raise ValidationException(TOO_SOON)
    if enabled:
        return table.replace(ttl_status=ENABLING, ttl_attribute=attribute, ttl_enabled=True,
                             ttl_changed=now)
    return table.replace(ttl_status=DISABLING, ttl_enabled=False, ttl_changed=now)


async def update_time_to_live(engine: Engine, request: UpdateTimeToLiveRequest) -> WireResult:
    table = engine.find_table(request.table_name)
    if table is None or table.status == "DELETING":
        raise _not_found(engine, request.table_name)
    if table.status == "CREATING":
        raise ResourceInUseException(
            f"Attempt to change a resource which is still in use: Table {table.name} is being created"
        )
    updated = plan_ttl_update(table, request.enabled, request.attribute_name, engine.clock())
    engine.catalog.put(updated)
    start_transition(engine, updated)
    return WireResult({
        "TimeToLiveSpecification": {
            "Enabled": request.enabled,
            "AttributeName": request.attribute_name,
        }
    })


# --- DescribeTimeToLive ---------------------------------------------------------------------


@dataclass(frozen=True)
class DescribeTimeToLiveRequest:
    table_name: str


def parse_describe_time_to_live(body: dict[str, Any]) -> DescribeTimeToLiveRequest:
    m = Members(body)
    name = m.table_name()
    m.done()
    assert name is not None
    return DescribeTimeToLiveRequest(name)


def describe_ttl(table: TableDefinition) -> dict[str, Any]:
    """The TimeToLiveDescription structure."""
    wire: dict[str, Any] = {"TimeToLiveStatus": table.ttl_status}
    if table.ttl_status != DISABLED and table.ttl_attribute is not None:
        wire["AttributeName"] = table.ttl_attribute
    return wire


async def describe_time_to_live(engine: Engine, request: DescribeTimeToLiveRequest) -> WireResult:
    table = engine.find_table(request.table_name)
    if table is None:
        raise _not_found(engine, request.table_name)
    if table.status in ("CREATING", "DELETING"):
        raise ValidationException(
            f"Cannot describe time to live while table is in {table.status} state: "
            f"Current table state is {table.status}"
        )
    return WireResult({"TimeToLiveDescription": describe_ttl(table)})


OPERATIONS = {
    op.name: op
    for op in (
        Operation("UpdateTimeToLive", parse_update_time_to_live, update_time_to_live),
        Operation("DescribeTimeToLive", parse_describe_time_to_live, describe_time_to_live),
    )
}
