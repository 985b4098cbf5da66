"""What to ask a Table's engine for: the table it should create, and the changes that bring it to the spec.

Pure: a ``TableSpec`` and the table as the engine describes it (``EngineTable``,
read from DescribeTable, DescribeTimeToLive and ListTagsOfResource) in; a
``Plan`` out.  The engine client carries it out one change at a time.

What a change of spec does:

* applied: adding and removing global secondary indexes, an index's or the
  table's provisioned throughput, the billing mode, the stream (on, off, or
  another view type: off first, then on), TTL (on, off, or another attribute:
  off first, then on; DynamoDB then allows the next change only an hour
  later), tags, deletion protection;
* refused (the object turns Degraded and nothing is applied): the key schema,
  local secondary indexes, and the key schema or projection of an existing
  global secondary index (add an index under another name and remove the old
  one instead).  Renaming the table is refused by the controller, which
  compares the name with the ARN it recorded.

DynamoDB changes one index at a time and refuses most changes while the table
or an index is CREATING, UPDATING or DELETING, so a plan against a busy table
is "wait" (``Plan.busy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tablekeeper.resources.table import (
    BillingMode,
    GlobalSecondaryIndex,
    KeySchema,
    Projection,
    ProvisionedThroughput,
    TableSpec,
)

ACTIVE: Final = "ACTIVE"
TTL_ON: Final = ("ENABLED", "ENABLING")

KeyWire = tuple[tuple[str, str, str], ...]
"""A key schema as comparable data: (attribute, HASH|RANGE, S|N|B) per key."""
ProjectionWire = tuple[str, tuple[str, ...]]
"""A projection as comparable data: its type and its sorted nonKeyAttributes."""


# --- the table as the engine has it ---------------------------------------------------------------


@dataclass(frozen=True)
class IndexState:
    name: str
    key: KeyWire
    projection: ProjectionWire
    status: str = ACTIVE
    throughput: tuple[int, int] | None = None


@dataclass(frozen=True)
class EngineTable:
    """The parts of DescribeTable, DescribeTimeToLive and ListTagsOfResource the operator compares."""

    name: str
    arn: str
    status: str
    key: KeyWire
    billing_mode: str
    throughput: tuple[int, int] | None
    item_count: int = 0
    size_bytes: int = 0
    gsis: Mapping[str, IndexState] = field(default_factory=dict)
    lsis: Mapping[str, IndexState] = field(default_factory=dict)
    stream_view_type: str | None = None  # None: no enabled stream
    deletion_protection: bool = False
    ttl_status: str = "DISABLED"
    ttl_attribute: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        """Whether the table or one of its indexes is in the middle of a change."""
        return self.status != ACTIVE or any(i.status != ACTIVE for i in self.gsis.values())

    @classmethod
    def from_wire(
        cls, description: Mapping[str, Any], ttl: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> EngineTable:
        """Read a TableDescription, a TimeToLiveDescription and the table's tags."""
        types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", ())}
        billing = description.get("BillingModeSummary", {}).get("BillingMode", BillingMode.PROVISIONED.value)
        stream = description.get("StreamSpecification") or {}
        return cls(
            name=description["TableName"],
            arn=description.get("TableArn", ""),
            status=description.get("TableStatus", ACTIVE),
            key=_key_from_wire(description.get("KeySchema", ()), types),
            billing_mode=billing,
            throughput=_throughput_from_wire(description.get("ProvisionedThroughput"), billing),
            item_count=int(description.get("ItemCount", 0)),
            size_bytes=int(description.get("TableSizeBytes", 0)),
            gsis=_indexes_from_wire(description.get("GlobalSecondaryIndexes", ()), types, billing),
            lsis=_indexes_from_wire(description.get("LocalSecondaryIndexes", ()), types, billing),
            stream_view_type=stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
            deletion_protection=bool(description.get("DeletionProtectionEnabled", False)),
            ttl_status=(ttl or {}).get("TimeToLiveStatus", "DISABLED"),
            ttl_attribute=(ttl or {}).get("AttributeName"),
            tags=dict(tags or {}),
        )


def _key_from_wire(schema: Any, types: Mapping[str, str]) -> KeyWire:
    return tuple((k["AttributeName"], k["KeyType"], types.get(k["AttributeName"], "?")) for k in schema)


def _throughput_from_wire(wire: Mapping[str, Any] | None, billing: str) -> tuple[int, int] | None:
    if billing != BillingMode.PROVISIONED.value or not wire:
        return None
    return int(wire.get("ReadCapacityUnits", 0)), int(wire.get("WriteCapacityUnits", 0))


def _indexes_from_wire(indexes: Any, types: Mapping[str, str], billing: str) -> dict[str, IndexState]:
    found = {}
    for index in indexes:
        projection = index.get("Projection", {})
        found[index["IndexName"]] = IndexState(
            name=index["IndexName"],
            key=_key_from_wire(index.get("KeySchema", ()), types),
            projection=(
                projection.get("ProjectionType", "ALL"), tuple(sorted(projection.get("NonKeyAttributes", ())))
            ),
            status=index.get("IndexStatus", ACTIVE),
            throughput=_throughput_from_wire(index.get("ProvisionedThroughput"), billing),
        )
    return found


# --- the spec as wire data ------------------------------------------------------------------------


def key_wire(schema: KeySchema) -> list[dict[str, str]]:
    wire = [{"AttributeName": schema.partition_key.name, "KeyType": "HASH"}]
    if schema.sort_key is not None:
        wire.append({"AttributeName": schema.sort_key.name, "KeyType": "RANGE"})
    return wire


def projection_wire(projection: Projection) -> dict[str, Any]:
    wire: dict[str, Any] = {"ProjectionType": projection.projection_type.value}
    if projection.non_key_attributes:
        wire["NonKeyAttributes"] = list(projection.non_key_attributes)
    return wire


def throughput_wire(throughput: ProvisionedThroughput) -> dict[str, int]:
    return {"ReadCapacityUnits": throughput.read_capacity_units,
            "WriteCapacityUnits": throughput.write_capacity_units}  # fmt: skip


def attribute_definitions_wire(spec: TableSpec) -> list[dict[str, str]]:
    return [{"AttributeName": n, "AttributeType": t.value} for n, t in spec.attribute_definitions().items()]


def gsi_wire(gsi: GlobalSecondaryIndex) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "IndexName": gsi.index_name,
        "KeySchema": key_wire(gsi.key_schema),
        "Projection": projection_wire(gsi.projection),
    }
    if gsi.provisioned_throughput is not None:
        wire["ProvisionedThroughput"] = throughput_wire(gsi.provisioned_throughput)
    return wire


def create_table_request(spec: TableSpec, table_name: str) -> dict[str, Any]:
    """The CreateTable request for ``spec``: everything but TTL, which DynamoDB sets only afterwards."""
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": key_wire(spec.key_schema),
        "AttributeDefinitions": attribute_definitions_wire(spec),
        "BillingMode": spec.billing_mode.value,
        "DeletionProtectionEnabled": spec.deletion_protection,
    }
    if spec.provisioned_throughput is not None:
        request["ProvisionedThroughput"] = throughput_wire(spec.provisioned_throughput)
    if spec.global_secondary_indexes:
        request["GlobalSecondaryIndexes"] = [gsi_wire(g) for g in spec.global_secondary_indexes]
    if spec.local_secondary_indexes:
        request["LocalSecondaryIndexes"] = [
            {
                "IndexName": lsi.index_name,
                "KeySchema": [
                    *key_wire(spec.key_schema)[:1], {"AttributeName": lsi.sort_key.name, "KeyType": "RANGE"}
                ],
                "Projection": projection_wire(lsi.projection),
            }
            for lsi in spec.local_secondary_indexes
        ]
    if spec.stream is not None and spec.stream.enabled and spec.stream.view_type is not None:
        view_type = spec.stream.view_type.value
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    if spec.tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in spec.tags.items()]
    return request


def _desired_key(schema: KeySchema) -> KeyWire:
    keys = [(schema.partition_key, "HASH"), *([(schema.sort_key, "RANGE")] if schema.sort_key else [])]
    return tuple((attr.name, kind, attr.type.value) for attr, kind in keys)


def _desired_lsis(spec: TableSpec) -> dict[str, tuple[KeyWire, ProjectionWire]]:
    partition = _desired_key(spec.key_schema)[:1]
    return {
        lsi.index_name: (
            (*partition, (lsi.sort_key.name, "RANGE", lsi.sort_key.type.value)),
            _desired_projection(lsi.projection),
        )
        for lsi in spec.local_secondary_indexes or ()
    }


def _desired_projection(projection: Projection) -> ProjectionWire:
    return projection.projection_type.value, tuple(sorted(projection.non_key_attributes or ()))


def _pair(throughput: ProvisionedThroughput | None) -> tuple[int, int] | None:
    if throughput is None:
        return None
    return throughput.read_capacity_units, throughput.write_capacity_units


# --- changes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One engine call; ``operation`` and ``request`` are the DynamoDB API's (the table's name and
    ARN are filled in by the client).  ``starts_work`` is true for a change the table is busy after."""

    operation: str
    request: Mapping[str, Any]
    summary: str
    starts_work: bool = False


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = ()
    refused: tuple[str, ...] = ()
    busy: bool = False

    @property
    def done(self) -> bool:
        return not (self.changes or self.refused or self.busy)


def plan_changes(spec: TableSpec, actual: EngineTable) -> Plan:
    """The changes that bring ``actual`` to ``spec``: refusals first, then "wait" while busy."""
    refused = refusals(spec, actual)
    if refused:
        return Plan(refused=refused)
    if actual.busy:
        return Plan(busy=True)
    changes = (
        *_index_changes(spec, actual),
        *_capacity_changes(spec, actual),
        *_stream_changes(spec, actual),
        *_protection_changes(spec, actual),
        *_ttl_changes(spec, actual),
        *_tag_changes(spec, actual),
    )
    return Plan(changes=changes)


def refusals(spec: TableSpec, actual: EngineTable) -> tuple[str, ...]:
    """What of ``spec`` the table cannot become, in the words the messages use."""
    refused = []
    if _desired_key(spec.key_schema) != actual.key:
        refused.append("keySchema is immutable: the table's key differs from the spec's")
    lsis = {name: (i.key, i.projection) for name, i in actual.lsis.items()}
    if _desired_lsis(spec) != lsis:
        refused.append("localSecondaryIndexes is immutable: the table's differ from the spec's")
    for gsi in spec.global_secondary_indexes or ():
        existing = actual.gsis.get(gsi.index_name)
        if existing is None:
            continue
        wanted = (_desired_key(gsi.key_schema), _desired_projection(gsi.projection))
        if (existing.key, existing.projection) != wanted:
            refused.append(
                f"globalSecondaryIndexes[{gsi.index_name}]: the keySchema and projection of an index cannot"
                " change; add an index under another name and remove this one"
            )
    return tuple(refused)


def _index_changes(spec: TableSpec, actual: EngineTable) -> list[Change]:
    wanted = {g.index_name: g for g in spec.global_secondary_indexes or ()}
    changes = [
        Change("UpdateTable", {"GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": name}}]},
               f"remove index {name}", starts_work=True)
        for name in actual.gsis if name not in wanted
    ]  # fmt: skip
    for name, gsi in wanted.items():
        if name not in actual.gsis:
            request = {
                "AttributeDefinitions": attribute_definitions_wire(spec),
                "GlobalSecondaryIndexUpdates": [{"Create": gsi_wire(gsi)}],
            }
            changes.append(Change("UpdateTable", request, f"add index {name}", starts_work=True))
        elif gsi.provisioned_throughput is not None and spec.billing_mode is BillingMode.PROVISIONED and (
            actual.billing_mode == BillingMode.PROVISIONED.value
            and actual.gsis[name].throughput != _pair(gsi.provisioned_throughput)
        ):
            update = {"IndexName": name, "ProvisionedThroughput": throughput_wire(gsi.provisioned_throughput)}
            changes.append(Change("UpdateTable", {"GlobalSecondaryIndexUpdates": [{"Update": update}]},
                                  f"set the throughput of index {name}", starts_work=True))
    return changes


def _capacity_changes(spec: TableSpec, actual: EngineTable) -> list[Change]:
    mode = spec.billing_mode.value
    if mode == actual.billing_mode and (mode != BillingMode.PROVISIONED.value or
                                         _pair(spec.provisioned_throughput) == actual.throughput):
        return []
    request: dict[str, Any] = {"BillingMode": mode}
    if spec.provisioned_throughput is not None:
        request["ProvisionedThroughput"] = throughput_wire(spec.provisioned_throughput)
    if mode != actual.billing_mode and mode == BillingMode.PROVISIONED.value:
        # Switching to provisioned capacity sets every existing index's capacity in the same call.
        request["GlobalSecondaryIndexUpdates"] = [
            {"Update": {"IndexName": g.index_name,
                        "ProvisionedThroughput": throughput_wire(g.provisioned_throughput)}}
            for g in spec.global_secondary_indexes or ()
            if g.provisioned_throughput is not None and g.index_name in actual.gsis
        ]
        if not request["GlobalSecondaryIndexUpdates"]:
            del request["GlobalSecondaryIndexUpdates"]
    return [Change("UpdateTable", request, f"set billing mode {mode}", starts_work=True)]


def _stream_changes(spec: TableSpec, actual: EngineTable) -> list[Change]:
    stream = spec.stream
    wanted = stream.view_type.value if stream and stream.enabled and stream.view_type else None
    if wanted == actual.stream_view_type:
        return []
    if actual.stream_view_type is not None:  # off first; a new view type needs a new stream
        return [Change("UpdateTable", {"StreamSpecification": {"StreamEnabled": False}}, "disable the stream",
                       starts_work=True)]
    return [Change("UpdateTable", {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": wanted}},
                   f"enable the stream ({wanted})", starts_work=True)]


def _protection_changes(spec: TableSpec, actual: EngineTable) -> list[Change]:
    if spec.deletion_protection == actual.deletion_protection:
        return []
    verb = "enable" if spec.deletion_protection else "disable"
    return [Change("UpdateTable", {"DeletionProtectionEnabled": spec.deletion_protection},
                   f"{verb} deletion protection")]


def _ttl_changes(spec: TableSpec, actual: EngineTable) -> list[Change]:
    ttl = spec.ttl
    wanted = ttl.attribute_name if ttl is not None and ttl.enabled else None
    on = actual.ttl_status in TTL_ON
    current = actual.ttl_attribute if on else None
    if wanted == current:
        return []
    if on:  # off first: DynamoDB keeps one TTL attribute at a time
        spec_off = {"Enabled": False, "AttributeName": actual.ttl_attribute or ""}
        return [Change("UpdateTimeToLive", {"TimeToLiveSpecification": spec_off}, "disable TTL")]
    spec_on = {"Enabled": True, "AttributeName": wanted}
    return [Change("UpdateTimeToLive", {"TimeToLiveSpecification": spec_on}, f"enable TTL on {wanted}")]


def _tag_changes(spec: TableSpec, actual: EngineTable) -> list[Change]:
    wanted = dict(spec.tags or {})
    changes = []
    stale = sorted(k for k in actual.tags if k not in wanted)
    if stale:
        changes.append(Change("UntagResource", {"TagKeys": stale}, f"remove tags {', '.join(stale)}"))
    new = {k: v for k, v in wanted.items() if actual.tags.get(k) != v}
    if new:
        changes.append(Change("TagResource", {"Tags": [{"Key": k, "Value": v} for k, v in new.items()]},
                              f"set tags {', '.join(sorted(new))}"))
    return changes
