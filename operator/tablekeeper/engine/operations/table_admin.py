"""Table administration: UpdateTable, DescribeEndpoints, DescribeLimits.

UpdateTable runs in three phases, as DynamoDB does:

1. ``parse_update_table`` checks the request alone: member shapes, "at least
   one change", the one-concern-per-call rules and the shape of each concern.
   These fail before the table is looked up, so a malformed request on a
   missing table is a ValidationException, not a ResourceNotFoundException.
2. ``plan_update`` is pure: the current definition, the request and ``now``
   in, the new definition out, or DynamoDB's error for a change the table's
   state refuses (nothing changes, stream already on, decrease budget spent).
3. ``update_table`` looks the table up, plans, and replaces the catalog entry.

Changes apply at once.  The response says UPDATING for the changes DynamoDB
runs asynchronously (capacity, billing mode, stream, table class) and ACTIVE
for those it applies in place (deletion protection, encryption); the next
DescribeTable says ACTIVE.  Unlike DynamoDB, the response shows the new
settings, not the old ones.  GlobalSecondaryIndexUpdates are planned by
``index_updates``; a Create or Delete leaves the index CREATING or DELETING
and ``engine.index_builds`` finishes it in the background.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    LimitExceededException,
    ResourceNotFoundException,
    ValidationException,
)
from tablekeeper.engine.index_builds import start_index_work
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.operations.common import refuse_while_creating
from tablekeeper.engine.operations.index_updates import (
    IndexUpdate,
    check_index_updates,
    creates_or_deletes,
    parse_index_updates,
    plan_index_updates,
    show_index_updates,
)
from tablekeeper.engine.operations.tables import describe, parse_throughput
from tablekeeper.engine.shapes import Members
from tablekeeper.engine.streams import disabled_stream, enabled_stream, kept_past_streams
from tablekeeper.engine.tables import StreamSpec, TableDefinition, Throughput, new_stream_label

INVALID: Final = "One or more parameter values were invalid: "

# DynamoDB's default account quotas, as DescribeLimits reports them.
ACCOUNT_MAX_CAPACITY_UNITS: Final = 80_000
TABLE_MAX_CAPACITY_UNITS: Final = 40_000

# After this many decreases in a UTC day, one more each DECREASE_INTERVAL.
FREE_DECREASES_PER_DAY: Final = 4
DECREASE_INTERVAL_SECONDS: Final = 3600

ENDPOINT_CACHE_MINUTES: Final = 1440

BILLING_MODES: Final = ("PROVISIONED", "PAY_PER_REQUEST")
# The order DynamoDB lists them in its enum message.
STREAM_VIEW_TYPES: Final = ("OLD_IMAGE", "KEYS_ONLY", "NEW_AND_OLD_IMAGES", "NEW_IMAGE")
SSE_TYPES: Final = ("AES256", "KMS")
TABLE_CLASSES: Final = ("STANDARD", "STANDARD_INFREQUENT_ACCESS")

# The members DynamoDB names when an UpdateTable changes nothing, in its order.
# A member that was sent but changes nothing on its own is left out of the list.
_UPDATE_MEMBERS: Final = (
    "ProvisionedThroughput", "BillingMode", "UpdateStreamEnabled", "GlobalSecondaryIndexUpdates",
    "SSESpecification", "ReplicaUpdates", "MultiAccountReplicaReady", "ReplicaTransitRoleArn",
    "MultiRegionConsistency", "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput",
    "TableClass",
)
# Members that ask for a change on their own (an empty GlobalSecondaryIndexUpdates does not).
_CHANGE_MEMBERS: Final = frozenset(
    {
        "ProvisionedThroughput", "BillingMode", "StreamSpecification", "SSESpecification",
        "ReplicaUpdates", "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput",
        "TableClass",
    }
)
_NEVER_ALONE: Final = frozenset(
    {"MultiAccountReplicaReady", "ReplicaTransitRoleArn", "MultiRegionConsistency"}
)
# Members for what the engine does not do yet: refused rather than ignored.
_UNSUPPORTED: Final = {
    "ReplicaUpdates": "ReplicaUpdates are",
    "OnDemandThroughput": "OnDemandThroughput is",
    "WarmThroughput": "WarmThroughput is",
}


# --- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SSEChange:
    """An SSESpecification as sent: ``enabled`` is None when the member was left out."""

    enabled: bool | None
    sse_type: str | None
    kms_key_id: str | None

    @property
    def turns_on(self) -> bool:
        return self.enabled if self.enabled is not None else self.sse_type is not None


@dataclass(frozen=True)
class UpdateTableRequest:
    table_name: str
    billing_mode: str | None = None
    throughput: Throughput | None = None  # requested read/write only
    stream: StreamSpec | None = None  # requested enabled/view type only
    sse: SSEChange | None = None
    table_class: str | None = None
    deletion_protection: bool | None = None
    attribute_definitions: tuple[tuple[str, str], ...] | None = None  # for index Creates only
    index_updates: tuple[IndexUpdate, ...] | None = None

    @property
    def runs_async(self) -> bool:
        """Whether DynamoDB answers UPDATING (it applies DP and SSE in place)."""
        return creates_or_deletes(self.index_updates) or any(
            member is not None
            for member in (self.billing_mode, self.throughput, self.stream, self.table_class)
        )


def _parse_definitions(m: Members, value: list[Any] | None) -> tuple[tuple[str, str], ...] | None:
    if value is None:
        return None
    definitions = []
    for i, definition in enumerate(value):
        d = m.nested("AttributeDefinitions", definition, i)
        attr = d.string("AttributeName", required=True, min_len=1, max_len=255)
        kind = d.string("AttributeType", required=True, enum=("B", "N", "S"))
        definitions.append((attr or "", kind or ""))
    return tuple(definitions)


def parse_update_table(body: dict[str, Any]) -> UpdateTableRequest:
    m = Members(body)
    name = m.table_name()
    # Only a GSI Create uses them; for every other change DynamoDB ignores them.
    definitions = _parse_definitions(m, m.array("AttributeDefinitions"))
    billing = m.string("BillingMode", enum=BILLING_MODES)
    throughput = parse_throughput(m, "ProvisionedThroughput", m.mapping("ProvisionedThroughput"))
    stream = _parse_stream(m, m.mapping("StreamSpecification"))
    sse = _parse_sse(m, m.mapping("SSESpecification"))
    table_class = m.string("TableClass")
    protection = m.boolean("DeletionProtectionEnabled")
    index_updates = m.array("GlobalSecondaryIndexUpdates")
    updates = parse_index_updates(m, index_updates)
    m.array("ReplicaUpdates", min_len=1)
    m.mapping("OnDemandThroughput")
    m.mapping("WarmThroughput")
    m.done()
    assert name is not None
    if table_class is not None and table_class not in TABLE_CLASSES:
        raise ValidationException(
            "Invalid table-class parameter provided. Please try again with a valid table-class "
            f"value: [{', '.join(TABLE_CLASSES)}]."
        )
    _check_something_changes(body)
    if updates is not None and not updates:
        raise ValidationException(INVALID + "List of GlobalSecondaryIndexUpdates is empty")
    if updates:
        check_index_updates(updates)
    for member, subject in _UNSUPPORTED.items():
        if body.get(member) is not None:
            raise ValidationException(f"{subject} not supported by this engine version yet")
    request = UpdateTableRequest(
        table_name=name,
        billing_mode=billing,
        throughput=throughput,
        stream=stream,
        sse=sse,
        table_class=table_class,
        deletion_protection=protection,
        attribute_definitions=definitions,
        index_updates=updates or None,
    )
    check_one_concern(request)
    check_request(request)
    return request


def _parse_stream(m: Members, value: dict[str, Any] | None) -> StreamSpec | None:
    if value is None:
        return None
    s = m.nested("StreamSpecification", value)
    enabled = s.boolean("StreamEnabled", required=True)
    view = s.string("StreamViewType", enum=STREAM_VIEW_TYPES)
    return StreamSpec(bool(enabled), view)


def _parse_sse(m: Members, value: dict[str, Any] | None) -> SSEChange | None:
    if value is None:
        return None
    s = m.nested("SSESpecification", value)
    enabled = s.boolean("Enabled")
    sse_type = s.string("SSEType", enum=SSE_TYPES)
    key = s.string("KMSMasterKeyId", min_len=1, max_len=2048)
    return SSEChange(enabled, sse_type, key)


def _check_something_changes(body: dict[str, Any]) -> None:
    """DynamoDB's "At least one of ... is required" when no member asks for a change."""
    sent = {member for member, value in body.items() if value is not None}
    if sent & _CHANGE_MEMBERS or body.get("GlobalSecondaryIndexUpdates"):
        return
    # DynamoDB leaves out of its list the members that were sent but change nothing alone.
    named = [member for member in _UPDATE_MEMBERS if member not in sent & _NEVER_ALONE]
    raise ValidationException(f"At least one of {', '.join(named[:-1])} or {named[-1]} is required")


def check_one_concern(request: UpdateTableRequest) -> None:
    """DynamoDB changes one concern per UpdateTable; these pairs it refuses."""
    members = {
        "SSESpecification": request.sse,
        "TableClass": request.table_class,
        "DeletionProtectionEnabled": request.deletion_protection,
        "BillingMode": request.billing_mode,
        "ProvisionedThroughput": request.throughput,
        "StreamSpecification": request.stream,
        "GlobalSecondaryIndexUpdates": request.index_updates,
    }
    sent = {name for name, value in members.items() if value is not None}
    alone = (
        ("SSESpecification", "Server-Side Encryption modification"),
        ("TableClass", "TableClass modification"),
        ("DeletionProtectionEnabled", "DeletionProtection modification"),
    )
    for member, what in alone:
        if member in sent and len(sent) > 1:
            raise ValidationException(INVALID + f"{what} must be the only operation in the request")
    changes_iops = request.throughput is not None or request.billing_mode == "PROVISIONED"
    if request.stream is not None and changes_iops:
        raise ValidationException(
            INVALID + "You cannot modify stream status while updating table IOPS"
        )
    if creates_or_deletes(request.index_updates) and request.throughput is not None:
        raise ValidationException(
            INVALID + "You cannot create or delete index while updating table IOPS"
        )
    if creates_or_deletes(request.index_updates) and request.stream is not None:
        raise ValidationException(
            INVALID + "You cannot create or delete index while changing stream status"
        )


def check_request(request: UpdateTableRequest) -> None:
    """The rules each concern's members must satisfy on their own."""
    if request.billing_mode == "PROVISIONED" and request.throughput is None:
        raise ValidationException(
            INVALID + "ProvisionedThroughput must be specified when BillingMode is PROVISIONED"
        )
    if request.billing_mode == "PAY_PER_REQUEST" and request.throughput is not None:
        raise ValidationException(
            INVALID
            + "ProvisionedThroughput cannot be specified when BillingMode is PAY_PER_REQUEST"
        )
    stream = request.stream
    if stream is not None and stream.enabled and stream.view_type is None:
        raise ValidationException(
            INVALID + "If stream is being enabled then UpdateViewType is required"
        )
    if stream is not None and not stream.enabled and stream.view_type is not None:
        raise ValidationException(
            INVALID + "If stream is being disabled, then UpdateViewType must not be specified"
        )
    if request.sse is not None:
        _check_sse(request.sse)


def check_table_maximum(throughput: Throughput, region: str) -> None:
    requested = (("ReadCapacityUnits", throughput.read), ("WriteCapacityUnits", throughput.write))
    for name, units in requested:
        if units > TABLE_MAX_CAPACITY_UNITS:
            raise LimitExceededException(
                f"The requested {name}, {units}, is above the per table maximum for the account "
                f"in {region}. Per table maximum: {TABLE_MAX_CAPACITY_UNITS}."
            )


def _check_sse(sse: SSEChange) -> None:
    if sse.enabled is False and sse.sse_type is not None:
        raise ValidationException(INVALID + "SSEType can not be specified if Enabled is false")
    if sse.enabled is False and sse.kms_key_id is not None:
        raise ValidationException(
            INVALID + "KMSMasterKeyId can not be specified if Enabled is false"
        )
    if sse.sse_type == "AES256":
        raise ValidationException(INVALID + "SSEType AES256 is not supported")
    if sse.kms_key_id is not None and sse.sse_type != "KMS":
        raise ValidationException(
            INVALID + "SSEType KMS is required if KMSMasterKeyId is specified"
        )


# --- the plan: pure, given the table and now ---------------------------------------------------


def plan_update(
    table: TableDefinition, request: UpdateTableRequest, now: float, last_sequence: int = 0
) -> TableDefinition:
    """The table after the update, or DynamoDB's refusal.  Nothing here reads the clock.

    ``last_sequence`` is the table's last change-log sequence: where a stream
    enabled or disabled now starts or ends.
    """
    changes: dict[str, Any] = {}
    if request.billing_mode is not None or request.throughput is not None:
        changes.update(_plan_capacity(table, request, now))
    billing_mode = changes.get("billing_mode", table.billing_mode)
    if request.index_updates or billing_mode != table.billing_mode:
        changes.update(plan_index_updates(
            table, request.index_updates or (), request.attribute_definitions, billing_mode, now,
            plan_throughput,
        ))
    if request.stream is not None:
        changes["stream"] = plan_stream(table, request.stream, now, last_sequence)
        changes["past_streams"] = kept_past_streams(table, changes["stream"], now)
    if request.sse is not None:
        changes["sse"] = plan_sse(table, request.sse)
    if request.table_class is not None:
        changes["table_class"] = request.table_class
    if request.deletion_protection is not None:
        changes["deletion_protection"] = request.deletion_protection
    return table.replace(**changes)


def _plan_capacity(
    table: TableDefinition, request: UpdateTableRequest, now: float
) -> dict[str, Any]:
    current = table.throughput
    if request.billing_mode == "PAY_PER_REQUEST":
        if table.billing_mode == "PAY_PER_REQUEST":
            return {}  # a re-send: DynamoDB accepts it and changes nothing
        return {
            "billing_mode": "PAY_PER_REQUEST",
            "billing_mode_changed": now,
            "throughput": Throughput(
                0, 0, current.last_increase, current.last_decrease, current.decreases_today
            ),
        }
    requested = request.throughput
    assert requested is not None  # check_request: PROVISIONED needs ProvisionedThroughput
    if table.billing_mode == "PAY_PER_REQUEST":
        if request.billing_mode is None:
            raise ValidationException(
                INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                "BillingMode is PAY_PER_REQUEST"
            )
        check_table_maximum(requested, table.region)
        return {
            "billing_mode": "PROVISIONED",
            "throughput": Throughput(
                requested.read, requested.write,
                current.last_increase, current.last_decrease, current.decreases_today,
            ),
        }
    check_table_maximum(requested, table.region)
    return {"throughput": plan_throughput(current, requested, now)}


def plan_throughput(current: Throughput, requested: Throughput, now: float) -> Throughput:
    """New provisioned capacity, keeping DynamoDB's increase/decrease bookkeeping."""
    if (requested.read, requested.write) == (current.read, current.write):
        raise ValidationException(
            "The provisioned throughput for the table will not change. The requested value "
            "equals the current value. "
            f"Current ReadCapacityUnits provisioned for the table: {current.read}. "
            f"Requested ReadCapacityUnits: {requested.read}. "
            f"Current WriteCapacityUnits provisioned for the table: {current.write}. "
            f"Requested WriteCapacityUnits: {requested.write}. "
            "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request "
            "higher limits."
        )
    increases = requested.read > current.read or requested.write > current.write
    decreases = requested.read < current.read or requested.write < current.write
    decreases_today = decreases_on_day_of(current, now)
    last_decrease = current.last_decrease
    if decreases:
        check_decrease_allowed(current, now)
        decreases_today += 1
        last_decrease = now
    return Throughput(
        read=requested.read,
        write=requested.write,
        last_increase=now if increases else current.last_increase,
        last_decrease=last_decrease,
        decreases_today=decreases_today,
    )


def decreases_on_day_of(throughput: Throughput, now: float) -> int:
    """Decreases made in the UTC day of ``now``: the counter starts again at midnight UTC."""
    last = throughput.last_decrease
    if last is None or _utc(last).date() != _utc(now).date():
        return 0
    return throughput.decreases_today


def check_decrease_allowed(throughput: Throughput, now: float) -> None:
    count = decreases_on_day_of(throughput, now)
    last = throughput.last_decrease
    if count < FREE_DECREASES_PER_DAY or last is None:
        return
    if now - last >= DECREASE_INTERVAL_SECONDS:
        return
    raise LimitExceededException(
        "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given "
        f"UTC day. After the first {FREE_DECREASES_PER_DAY} decreases, each subsequent decrease "
        "in the same UTC day can be performed at most once every "
        f"{DECREASE_INTERVAL_SECONDS} seconds. "
        f"Number of decreases today: {count}. Last decrease at {long_utc_time(last)}. "
        f"Next decrease can be made at {long_utc_time(last + DECREASE_INTERVAL_SECONDS)}"
    )


def long_utc_time(epoch: float) -> str:
    """A time as DynamoDB spells it in limit messages.

    For example 'Friday, October 9, 2026 at 1:21:34 AM Coordinated Universal Time'.
    """
    t = _utc(epoch)
    hour = t.hour % 12 or 12
    half = "AM" if t.hour < 12 else "PM"
    return (
        f"{t.strftime('%A')}, {t.strftime('%B')} {t.day}, {t.year} at "
        f"{hour}:{t.minute:02d}:{t.second:02d} {half} Coordinated Universal Time"
    )


def plan_stream(
    table: TableDefinition, requested: StreamSpec, now: float, last_sequence: int = 0
) -> StreamSpec:
    current = table.stream
    enabled = current is not None and current.enabled
    if requested.enabled:
        if enabled:
            raise ValidationException(
                f"Table already has an enabled stream: TableName: {table.name}"
            )
        previous = current.label if current is not None else None
        label = new_stream_label(now, previous)
        return enabled_stream(requested.view_type, label, last_sequence)
    if not enabled:
        raise ValidationException(f"Table has no stream to disable: TableName: {table.name}")
    assert current is not None
    # The stream ends; its ARN and label stay on the table as the latest stream's.
    return disabled_stream(current, last_sequence, now)


def plan_sse(table: TableDefinition, sse: SSEChange) -> tuple[tuple[str, Any], ...]:
    current = dict(table.sse)
    if not sse.turns_on:
        if not current:
            raise ValidationException(INVALID + "Table is already encrypted by default")
        return ()
    if sse.kms_key_id is None:
        return (("Status", "ENABLED"), ("SSEType", "KMS"))
    if current and sse.kms_key_id == current.get("KMSMasterKeyArn"):
        raise ValidationException(
            INVALID + "Table is already encrypted with given KMSMasterKeyId. Use KMSMasterKeyId "
            "parameter if you want to change Master Key"
        )
    arn = kms_key_arn(sse.kms_key_id, table.region, table.account)
    return (("Status", "ENABLED"), ("SSEType", "KMS"), ("KMSMasterKeyArn", arn))


def kms_key_arn(key_id: str, region: str, account: str) -> str:
    """The ARN of a KMS key given as an ARN, a key id or an alias name."""
    if key_id.startswith("arn:"):
        return key_id
    if key_id.startswith("alias/"):
        return f"arn:aws:kms:{region}:{account}:{key_id}"
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# --- execution -----------------------------------------------------------------------------------


async def update_table(engine: Engine, request: UpdateTableRequest) -> WireResult:
    table = engine.find_table(request.table_name)
    if table is None:
        raise ResourceNotFoundException(
            "Requested resource not found: "
            f"Table: {engine.resolve_name(request.table_name)} not found"
        )
    refuse_while_creating(table)
    last_sequence = engine.reader(table).stats().last_sequence if request.stream else 0
    updated = plan_update(table, request, engine.clock(), last_sequence)
    if updated != table:
        engine.catalog.put(updated)
    status = "UPDATING" if request.runs_async else updated.status
    description = describe(engine, updated, status=status)
    if request.index_updates:
        show_index_updates(description, request.index_updates)
        start_index_work(engine, updated)
    return WireResult({"TableDescription": description})


# --- DescribeEndpoints, DescribeLimits -----------------------------------------------------------


@dataclass(frozen=True)
class NoMembersRequest:
    """DescribeEndpoints and DescribeLimits take no members."""


def parse_no_members(body: dict[str, Any]) -> NoMembersRequest:
    Members(body).done()
    return NoMembersRequest()


async def describe_endpoints(engine: Engine, request: NoMembersRequest) -> WireResult:
    # The operation layer does not see the Host header the client used, so
    # this names the regional endpoint, as DynamoDB does.
    address = f"dynamodb.{engine.config.region}.amazonaws.com"
    return WireResult(
        {"Endpoints": [{"Address": address, "CachePeriodInMinutes": ENDPOINT_CACHE_MINUTES}]}
    )


async def describe_limits(engine: Engine, request: NoMembersRequest) -> WireResult:
    return WireResult(
        {
            "AccountMaxReadCapacityUnits": ACCOUNT_MAX_CAPACITY_UNITS,
            "AccountMaxWriteCapacityUnits": ACCOUNT_MAX_CAPACITY_UNITS,
            "TableMaxReadCapacityUnits": TABLE_MAX_CAPACITY_UNITS,
            "TableMaxWriteCapacityUnits": TABLE_MAX_CAPACITY_UNITS,
        }
    )


OPERATIONS = {
    op.name: op
    for op in (
        Operation("UpdateTable", parse_update_table, update_table),
        Operation("DescribeEndpoints", parse_no_members, describe_endpoints),
        Operation("DescribeLimits", parse_no_members, describe_limits),
    )
}
