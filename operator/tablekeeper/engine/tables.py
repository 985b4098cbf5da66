"""Table definitions: what a table is, persisted in the catalog, described on the wire."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tablekeeper.engine.keys import KeyAttribute, KeySchema

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"


@dataclass(frozen=True, slots=True)
class Throughput:
    read: int = 0
    write: int = 0
    last_increase: float | None = None
    last_decrease: float | None = None
    decreases_today: int = 0

    def describe(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "NumberOfDecreasesToday": self.decreases_today,
            "ReadCapacityUnits": self.read,
            "WriteCapacityUnits": self.write,
        }
        if self.last_increase is not None:
            wire["LastIncreaseDateTime"] = self.last_increase
        if self.last_decrease is not None:
            wire["LastDecreaseDateTime"] = self.last_decrease
        return wire


@dataclass(frozen=True, slots=True)
class Projection:
    type: str = "ALL"  # ALL | KEYS_ONLY | INCLUDE
    non_key_attributes: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"ProjectionType": self.type}
        if self.non_key_attributes:  # DynamoDB lists them sorted, whatever the order sent
            wire["NonKeyAttributes"] = sorted(self.non_key_attributes)
        return wire


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    name: str
    key_schema: KeySchema
    projection: Projection
    local: bool
    throughput: Throughput | None = None
    status: str = "ACTIVE"  # CREATING | ACTIVE | DELETING | UPDATING
    backfilling: bool = False


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream: one epoch of the table's change log (engine/streams.py).

    It covers the log records with ``first_sequence < sequence``, and once
    disabled those up to ``last_sequence`` as well.  The label is the UTC time
    it was enabled, so it also gives the stream's creation time.
    """

    enabled: bool
    view_type: str | None = None
    label: str | None = None  # LatestStreamLabel, set while enabled
    first_sequence: int = 0  # the table's last log sequence when the stream was enabled
    last_sequence: int | None = None  # set when disabled: the last record it covers
    disabled_at: float | None = None  # when disabled; listed for 24 h after


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    """Where a restored table came from (DescribeTable's RestoreSummary).

    ``in_progress`` is True while its items are being loaded; the table is
    CREATING meanwhile and serves no reads or writes.
    """

    restore_time: float
    in_progress: bool
    source_backup_arn: str | None = None
    source_table_arn: str | None = None

    def describe(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if self.source_backup_arn is not None:
            wire["SourceBackupArn"] = self.source_backup_arn
        if self.source_table_arn is not None:
            wire["SourceTableArn"] = self.source_table_arn
        wire["RestoreDateTime"] = self.restore_time
        wire["RestoreInProgress"] = self.in_progress
        return wire


@dataclass(frozen=True, slots=True)
class TableDefinition:
    """A table as the catalog keeps it.  Replaced whole on every change."""

    name: str
    table_id: str
    key_schema: KeySchema
    attribute_definitions: tuple[tuple[str, str], ...]
    created: float
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    billing_mode: str = "PROVISIONED"
    throughput: Throughput = field(default_factory=Throughput)
    billing_mode_changed: float | None = None
    status: str = "ACTIVE"
    indexes: tuple[IndexDefinition, ...] = ()
    stream: StreamSpec | None = None  # the latest stream, enabled or not
    past_streams: tuple[StreamSpec, ...] = ()  # disabled before ``stream``, newest first
    sse: tuple[tuple[str, Any], ...] = ()
    table_class: str = "STANDARD"
    deletion_protection: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    ttl_attribute: str | None = None  # set while ttl_status is not DISABLED
    ttl_enabled: bool = False  # ENABLING or ENABLED: what UpdateTimeToLive last asked for
    ttl_status: str = "DISABLED"  # ENABLING | ENABLED | DISABLING | DISABLED (engine/ttl.py)
    ttl_changed: float | None = None  # the last UpdateTimeToLive, for its one-hour limit
    restore: RestoreSummary | None = None  # set on a table restored from a backup or a point in time

    @property
    def arn(self) -> str:
        return table_arn(self.region, self.account, self.name)

    def replace(self, **changes: Any) -> TableDefinition:
        return dataclasses.replace(self, **changes)

    def index(self, name: str) -> IndexDefinition | None:
        return next((index for index in self.indexes if index.name == name), None)

    # --- persistence -----------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(_to_plain(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TableDefinition:
        return _from_plain(json.loads(text))


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def _key_schema_plain(schema: KeySchema) -> list[list[str]]:
    attrs = [schema.hash] if schema.range is None else [schema.hash, schema.range]
    return [[a.name, a.type] for a in attrs]


def _key_schema_from(plain: list[list[str]]) -> KeySchema:
    attrs = [KeyAttribute(name, kind) for name, kind in plain]
    return KeySchema(attrs[0], attrs[1] if len(attrs) > 1 else None)


def _to_plain(table: TableDefinition) -> dict[str, Any]:
    plain = {f.name: getattr(table, f.name) for f in dataclasses.fields(table)}
    plain["key_schema"] = _key_schema_plain(table.key_schema)
    plain["throughput"] = dataclasses.asdict(table.throughput)
    plain["indexes"] = [
        {
            **{f.name: getattr(index, f.name) for f in dataclasses.fields(index)},
            "key_schema": _key_schema_plain(index.key_schema),
            "projection": dataclasses.asdict(index.projection),
            "throughput": None if index.throughput is None else dataclasses.asdict(index.throughput),
        }
        for index in table.indexes
    ]
    plain["stream"] = None if table.stream is None else dataclasses.asdict(table.stream)
    plain["past_streams"] = [dataclasses.asdict(stream) for stream in table.past_streams]
    plain["restore"] = None if table.restore is None else dataclasses.asdict(table.restore)
    return plain


def _from_plain(plain: dict[str, Any]) -> TableDefinition:
    plain = dict(plain)
    plain["key_schema"] = _key_schema_from(plain["key_schema"])
    plain["attribute_definitions"] = tuple(tuple(pair) for pair in plain["attribute_definitions"])
    plain["throughput"] = Throughput(**plain["throughput"])
    plain["indexes"] = tuple(
        IndexDefinition(
            **{
                **index,
                "key_schema": _key_schema_from(index["key_schema"]),
                "projection": Projection(
                    index["projection"]["type"], tuple(index["projection"]["non_key_attributes"])
                ),
                "throughput": None if index["throughput"] is None else Throughput(**index["throughput"]),
            }
        )
        for index in plain["indexes"]
    )
    plain["stream"] = None if plain["stream"] is None else StreamSpec(**plain["stream"])
    plain["past_streams"] = tuple(StreamSpec(**stream) for stream in plain.get("past_streams", ()))
    plain["sse"] = tuple(tuple(pair) for pair in plain["sse"])
    plain["tags"] = tuple(tuple(pair) for pair in plain["tags"])
    restore = plain.get("restore")
    plain["restore"] = None if restore is None else RestoreSummary(**restore)
    return TableDefinition(**plain)


# --- stream labels ---


def new_stream_label(now: float, previous: str | None = None) -> str:
    """A stream label: the UTC start time to the millisecond, always after the previous label."""
    millis = int(now * 1000)
    label = stream_label(millis)
    if previous is not None and label <= previous:
        label = stream_label(_label_millis(previous) + 1)
    return label


def stream_label(millis: int) -> str:
    t = datetime.fromtimestamp(millis // 1000, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}"


def _label_millis(label: str) -> int:
    t = datetime.strptime(label, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


# --- DescribeTable -----------------------------------------------------------


def _key_schema_wire(schema: KeySchema) -> list[dict[str, str]]:
    wire = [{"AttributeName": schema.hash.name, "KeyType": "HASH"}]
    if schema.range is not None:
        wire.append({"AttributeName": schema.range.name, "KeyType": "RANGE"})
    return wire


def describe_table(
    table: TableDefinition,
    item_count: int,
    size_bytes: int,
    status: str | None = None,
    index_stats: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The TableDescription structure DynamoDB returns.

    ``index_stats`` gives each index's (ItemCount, IndexSizeBytes); a table
    described as CREATING shows its global indexes CREATING too.
    """
    wire: dict[str, Any] = {
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in table.attribute_definitions
        ],
        "TableName": table.name,
        "KeySchema": _key_schema_wire(table.key_schema),
        "TableStatus": status or table.status,
        "CreationDateTime": table.created,
        "ProvisionedThroughput": table.throughput.describe(),
        "TableSizeBytes": size_bytes,
        "ItemCount": item_count,
        "TableArn": table.arn,
        "TableId": _uuid_form(table.table_id),
        "DeletionProtectionEnabled": table.deletion_protection,
    }
    if table.billing_mode == "PAY_PER_REQUEST":
        wire["BillingModeSummary"] = {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": table.billing_mode_changed or table.created,
        }
    elif table.billing_mode_changed is not None:
        # Once a table has been on-demand, DynamoDB keeps reporting when it last was.
        wire["BillingModeSummary"] = {
            "BillingMode": "PROVISIONED",
            "LastUpdateToPayPerRequestDateTime": table.billing_mode_changed,
        }
    local = [index for index in table.indexes if index.local]
    global_ = [index for index in table.indexes if not index.local]
    stats = index_stats or {}
    creating = status == "CREATING"
    if local:
        wire["LocalSecondaryIndexes"] = [
            _describe_index(table, index, stats.get(index.name, (0, 0))) for index in local
        ]
    if global_:
        wire["GlobalSecondaryIndexes"] = [
            _describe_index(table, index, stats.get(index.name, (0, 0)), creating)
            for index in global_
        ]
    if table.stream is not None and table.stream.enabled:
        wire["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": table.stream.view_type,
        }
    if table.stream is not None and table.stream.label is not None:
        wire["LatestStreamLabel"] = table.stream.label
        wire["LatestStreamArn"] = f"{table.arn}/stream/{table.stream.label}"
    if table.sse:
        wire["SSEDescription"] = dict(table.sse)
    if table.table_class != "STANDARD":
        wire["TableClassSummary"] = {"TableClass": table.table_class}
    if table.restore is not None:
        wire["RestoreSummary"] = table.restore.describe()
    return wire


def _describe_index(
    table: TableDefinition, index: IndexDefinition, stats: tuple[int, int], creating: bool = False
) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "IndexName": index.name,
        "KeySchema": _key_schema_wire(index.key_schema),
        "Projection": index.projection.describe(),
        "IndexSizeBytes": stats[1],
        "ItemCount": stats[0],
        "IndexArn": f"{table.arn}/index/{index.name}",
    }
    if not index.local:
        wire["IndexStatus"] = "CREATING" if creating else index.status
        if index.backfilling:
            wire["Backfilling"] = True
        throughput = index.throughput or Throughput()
        wire["ProvisionedThroughput"] = throughput.describe()
    return wire


def _uuid_form(hex_id: str) -> str:
    h = hex_id
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

