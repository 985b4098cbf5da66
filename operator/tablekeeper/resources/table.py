"""Table: one DynamoDB-style table, served by an engine the operator runs for it.

Attribute definitions are derived, not declared: each key attribute (of the
table and of every index) states its type where it is used, and
``TableSpec.attribute_definitions()`` collects them for CreateTable.  The
same attribute named with two types is refused.  This keeps DynamoDB's rule
(every key attribute defined, nothing else) true by construction.

Where each rule is enforced:

* schema and CEL (admission) and pydantic alike: name patterns and lengths,
  at most 20 GSIs and 5 LSIs, distinct index names within each list,
  provisionedThroughput exactly with PROVISIONED (table and GSIs), LSIs only
  on a table with a sort key, INCLUDE exactly with nonKeyAttributes, a
  stream's view type when enabled, tag key rules, and immutability: the
  table name (spec.tableName, else metadata.name), keySchema, LSIs and the
  storage class;
* pydantic only (the operator reports the object Degraded): an index name
  used by both a GSI and an LSI, one attribute named with two types, more
  than 100 nonKeyAttributes summed over all indexes (DynamoDB's limit).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from tablekeeper.resources.common import (
    LIST_SET,
    ColumnType,
    LocalObjectReference,
    Model,
    PrinterColumn,
    Quantity,
    Resource,
    ResourceKind,
    Status,
    UniqueStrings,
    cel,
    immutable,
    list_map,
    unique_by,
    validations,
)

TABLE_NAME_PATTERN = r"^[a-zA-Z0-9_.-]+$"
TableName = Annotated[str, Field(min_length=3, max_length=255, pattern=TABLE_NAME_PATTERN)]
"""A DynamoDB table name: 3 to 255 of a-z, A-Z, 0-9, '_', '-', '.'."""
IndexName = Annotated[str, Field(min_length=3, max_length=255, pattern=TABLE_NAME_PATTERN)]
"""A DynamoDB index name: the same rules as a table name."""
AttributeName = Annotated[str, Field(min_length=1, max_length=255)]
"""A key attribute's name: 1 to 255 characters."""

MAX_GSIS = 20
MAX_LSIS = 5
MAX_NON_KEY_ATTRIBUTES = 100
MAX_TAGS = 50


class ScalarAttributeType(StrEnum):
    """A key attribute's type: S (string), N (number) or B (binary)."""

    S = "S"
    N = "N"
    B = "B"


class KeyAttribute(Model):
    """A key attribute: its name and its scalar type."""

    name: AttributeName
    """The attribute's name."""
    type: ScalarAttributeType
    """S (string), N (number) or B (binary)."""


class KeySchema(Model):
    """A primary key: a partition key and, for a composite key, a sort key."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.sortKey) || self.sortKey.name != self.partitionKey.name",
                "the sort key must be another attribute than the partition key",
            )
        )
    )

    partition_key: KeyAttribute
    """The partition (HASH) key."""
    sort_key: KeyAttribute | None = None
    """The sort (RANGE) key; leave out for a simple primary key."""

    @model_validator(mode="after")
    def _distinct_keys(self) -> Self:
        if self.sort_key is not None and self.sort_key.name == self.partition_key.name:
            raise ValueError("the sort key must be another attribute than the partition key")
        return self

    def attributes(self) -> tuple[KeyAttribute, ...]:
        return (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)


class ProjectionType(StrEnum):
    """Which attributes an index holds: ALL, KEYS_ONLY, or INCLUDE (keys plus nonKeyAttributes)."""

    ALL = "ALL"
    KEYS_ONLY = "KEYS_ONLY"
    INCLUDE = "INCLUDE"


class Projection(Model):
    """The attributes copied into an index besides its keys."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.projectionType) && self.projectionType == 'INCLUDE')"
                " == (has(self.nonKeyAttributes) && size(self.nonKeyAttributes) > 0)",
                "nonKeyAttributes must be given with projectionType INCLUDE, and only then",
            )
        )
    )

    projection_type: ProjectionType = ProjectionType.ALL
    """ALL (the default), KEYS_ONLY, or INCLUDE."""
    non_key_attributes: (
        Annotated[
            tuple[AttributeName, ...], Field(min_length=1, max_length=MAX_NON_KEY_ATTRIBUTES), UniqueStrings
        ]
        | None
    ) = Field(default=None, json_schema_extra=LIST_SET)
    """With INCLUDE: the attributes besides the keys that the index holds."""

    @model_validator(mode="after")
    def _include_has_attributes(self) -> Self:
        if (self.projection_type is ProjectionType.INCLUDE) != bool(self.non_key_attributes):
            raise ValueError("nonKeyAttributes must be given with projectionType INCLUDE, and only then")
        return self


class ProvisionedThroughput(Model):
    """Provisioned capacity, for billingMode PROVISIONED."""

    read_capacity_units: int = Field(ge=1, le=40000)
    """Reads per second the table (or index) is provisioned for."""
    write_capacity_units: int = Field(ge=1, le=40000)
    """Writes per second the table (or index) is provisioned for."""


class GlobalSecondaryIndex(Model):
    """A global secondary index: its own keys over the whole table."""

    index_name: IndexName
    """The index's name, unique among the table's indexes."""
    key_schema: KeySchema
    """The index's partition key and optional sort key."""
    projection: Projection = Field(default_factory=Projection)
    """The attributes the index holds besides its keys; ALL when left out."""
    provisioned_throughput: ProvisionedThroughput | None = None
    """The index's capacity: required with billingMode PROVISIONED, refused otherwise."""


class LocalSecondaryIndex(Model):
    """A local secondary index: the table's partition key with another sort key."""

    index_name: IndexName
    """The index's name, unique among the table's indexes."""
    sort_key: KeyAttribute
    """The index's sort key (its partition key is the table's)."""
    projection: Projection = Field(default_factory=Projection)
    """The attributes the index holds besides its keys; ALL when left out."""


class StreamViewType(StrEnum):
    """What a stream record holds: the keys, the new image, the old image, or both images."""

    KEYS_ONLY = "KEYS_ONLY"
    NEW_IMAGE = "NEW_IMAGE"
    OLD_IMAGE = "OLD_IMAGE"
    NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"


class StreamSpec(Model):
    """The table's stream (DynamoDB Streams): every change, kept 24 hours."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.enabled) && !self.enabled) || has(self.viewType)",
                "viewType is required when the stream is enabled",
            )
        )
    )

    enabled: bool = True
    """Whether the table has a stream (true by default when a stream is given)."""
    view_type: StreamViewType | None = None
    """What each record holds: KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES."""

    @model_validator(mode="after")
    def _enabled_has_view_type(self) -> Self:
        if self.enabled and self.view_type is None:
            raise ValueError("viewType is required when the stream is enabled")
        return self


class TtlSpec(Model):
    """Time to live: items whose attribute holds a past epoch time (seconds) are deleted."""

    enabled: bool = True
    """Whether expired items are deleted (true by default when ttl is given)."""
    attribute_name: AttributeName
    """The attribute holding each item's expiry time, in epoch seconds."""


class BillingMode(StrEnum):
    """PAY_PER_REQUEST (on demand) or PROVISIONED (with provisionedThroughput)."""

    PAY_PER_REQUEST = "PAY_PER_REQUEST"
    PROVISIONED = "PROVISIONED"


class Durability(StrEnum):
    """When a write is acknowledged: after fsync (power-loss) or once the OS has it (process-crash)."""

    POWER_LOSS = "power-loss"
    PROCESS_CRASH = "process-crash"


class StorageSpec(Model):
    """The engine's volume."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.storageClassName) == has(oldSelf.storageClassName)",
                "storageClassName can only be set when the table is created",
            )
        )
    )

    size: Quantity = "1Gi"
    """The volume's size (a quantity, e.g. 10Gi); it may grow where the storage class allows, never shrink."""
    storage_class_name: str | None = Field(
        default=None, max_length=253, json_schema_extra=immutable("storageClassName")
    )
    """The volume's storage class; the cluster's default when left out."""


class ResourceList(Model):
    """CPU and memory quantities."""

    cpu: Quantity | None = None
    """CPU, e.g. 500m or 2."""
    memory: Quantity | None = None
    """Memory, e.g. 512Mi or 2Gi."""


class ResourceRequirements(Model):
    """The engine container's requests and limits."""

    requests: ResourceList | None = None
    """What the engine is guaranteed."""
    limits: ResourceList | None = None
    """What the engine may use at most."""


TagKey = Annotated[str, Field(min_length=1, max_length=128)]
TagValue = Annotated[str, Field(max_length=256)]

_PROVISIONED = "has(self.billingMode) && self.billingMode == 'PROVISIONED'"


class TableSpec(Model):
    """The table: keys, indexes, stream, TTL, tags, and where and how its engine runs."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"({_PROVISIONED}) == has(self.provisionedThroughput)",
                "provisionedThroughput is required with billingMode PROVISIONED and refused otherwise",
            ),
            cel(
                "!has(self.globalSecondaryIndexes) || self.globalSecondaryIndexes.all(i,"
                f" has(i.provisionedThroughput) == ({_PROVISIONED}))",
                "every global secondary index needs provisionedThroughput with billingMode PROVISIONED,"
                " and none may have it otherwise",
            ),
            cel(
                "!has(self.localSecondaryIndexes) || has(self.keySchema.sortKey)",
                "local secondary indexes need a table with a sort key",
            ),
            cel(
                "has(self.localSecondaryIndexes) == has(oldSelf.localSecondaryIndexes)",
                "localSecondaryIndexes can only be set when the table is created",
            ),
        )
    )

    IMMUTABLE = ("key_schema", "local_secondary_indexes", "storage.storage_class_name")

    table_name: TableName | None = None
    """The DynamoDB table name; metadata.name when left out. Immutable."""
    key_schema: Annotated[KeySchema, Field(json_schema_extra=immutable("keySchema"))]
    """The primary key. Immutable."""
    billing_mode: BillingMode = BillingMode.PAY_PER_REQUEST
    """PAY_PER_REQUEST (the default) or PROVISIONED."""
    provisioned_throughput: ProvisionedThroughput | None = None
    """The table's capacity: required with billingMode PROVISIONED, refused otherwise."""
    global_secondary_indexes: tuple[GlobalSecondaryIndex, ...] | None = Field(
        default=None, max_length=MAX_GSIS, json_schema_extra=list_map("indexName")
    )
    """Global secondary indexes (at most 20), by indexName; they may be added and removed."""
    local_secondary_indexes: tuple[LocalSecondaryIndex, ...] | None = Field(
        default=None,
        max_length=MAX_LSIS,
        json_schema_extra={**list_map("indexName"), **immutable("localSecondaryIndexes")},
    )
    """Local secondary indexes (at most 5), by indexName. Set only at creation."""
    stream: StreamSpec | None = None
    """The table's stream; none when left out."""
    ttl: TtlSpec | None = None
    """Time to live; off when left out."""
    tags: dict[TagKey, TagValue] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        json_schema_extra=validations(
            cel("self.all(k, size(k) >= 1 && size(k) <= 128)", "a tag key has 1 to 128 characters"),
            cel("self.all(k, !k.startsWith('aws:'))", "tag keys starting with aws: are reserved"),
        ),
    )
    """Tags (at most 50): keys of 1 to 128 characters, not starting with aws:, values of up to 256."""
    deletion_protection: bool = False
    """While true the table cannot be deleted: the operator keeps it and its data (DynamoDB's
    DeletionProtectionEnabled)."""
    storage: StorageSpec = Field(default_factory=StorageSpec)
    """The engine's volume; 1Gi of the default storage class when left out."""
    resources: ResourceRequirements | None = None
    """CPU and memory for the engine container."""
    durability: Durability = Durability.POWER_LOSS
    """power-loss (the default: fsync before acknowledging) or process-crash (faster; survives the
    engine being killed, not the machine losing power)."""
    backup_vault_ref: LocalObjectReference | None = None
    """The BackupVault (same namespace) this table's backups and PITR archive go to; without it, a
    folder vault on the table's own volume, which dies with the volume."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problem = self._billing_problem() or self._index_problem() or self._tag_problem()
        if problem:
            raise ValueError(problem)
        self.attribute_definitions()
        return self

    def _billing_problem(self) -> str | None:
        provisioned = self.billing_mode is BillingMode.PROVISIONED
        if provisioned != (self.provisioned_throughput is not None):
            return "provisionedThroughput is required with billingMode PROVISIONED and refused otherwise"
        gsis = self.global_secondary_indexes or ()
        if any((gsi.provisioned_throughput is not None) != provisioned for gsi in gsis):
            return (
                "every global secondary index needs provisionedThroughput with billingMode PROVISIONED,"
                " and none may have it otherwise"
            )
        return None

    def _index_problem(self) -> str | None:
        gsis, lsis = self.global_secondary_indexes or (), self.local_secondary_indexes or ()
        if lsis and self.key_schema.sort_key is None:
            return "local secondary indexes need a table with a sort key"
        try:
            unique_by(gsis, "index_name", "globalSecondaryIndexes")
            unique_by(lsis, "index_name", "localSecondaryIndexes")
            unique_by((*gsis, *lsis), "index_name", "secondary indexes")
        except ValueError as error:
            return str(error)
        projected = sum(len(i.projection.non_key_attributes or ()) for i in (*gsis, *lsis))
        if projected > MAX_NON_KEY_ATTRIBUTES:
            return (
                f"the indexes project {projected} nonKeyAttributes in all;"
                f" DynamoDB allows at most {MAX_NON_KEY_ATTRIBUTES}"
            )
        return None

    def _tag_problem(self) -> str | None:
        reserved = sorted(k for k in self.tags or {} if k.startswith("aws:"))
        return f"tag keys starting with aws: are reserved: {', '.join(reserved)}" if reserved else None

    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        """Every key attribute of the table and its indexes, in order of appearance."""
        found = list(self.key_schema.attributes())
        for gsi in self.global_secondary_indexes or ():
            found.extend(gsi.key_schema.attributes())
        found.extend(lsi.sort_key for lsi in self.local_secondary_indexes or ())
        return tuple(found)

    def attribute_definitions(self) -> dict[str, ScalarAttributeType]:
        """DynamoDB's AttributeDefinitions, derived: each key attribute's name and type, once.

        Raises ValueError when one attribute is given two types.
        """
        types: dict[str, ScalarAttributeType] = {}
        for attribute in self.key_attributes():
            known = types.setdefault(attribute.name, attribute.type)
            if known is not attribute.type:
                raise ValueError(
                    f"attribute {attribute.name!r} is a key with type {known.value} and with type"
                    f" {attribute.type.value}; one attribute has one type"
                )
        return types


class TablePhase(StrEnum):
    """The table's short state, for kubectl get."""

    PENDING = "Pending"
    CREATING = "Creating"
    ACTIVE = "Active"
    UPDATING = "Updating"
    DELETING = "Deleting"
    FAILED = "Failed"


class DynamoDBTableStatus(StrEnum):
    """The table's status as DescribeTable reports it."""

    CREATING = "CREATING"
    UPDATING = "UPDATING"
    DELETING = "DELETING"
    ACTIVE = "ACTIVE"


class TableStatus(Status):
    """The table as the operator last saw it."""

    phase: TablePhase | None = None
    """Pending, Creating, Active, Updating, Deleting or Failed."""
    endpoint: str | None = None
    """The DynamoDB endpoint URL clients use, e.g. http://orders.shop.svc:8000."""
    credentials_secret: str | None = None
    """The Secret holding the access key id and secret access key for the endpoint."""
    table_status: DynamoDBTableStatus | None = None
    """The engine's TableStatus: CREATING, UPDATING, DELETING or ACTIVE."""
    table_arn: str | None = None
    """The table's ARN."""
    item_count: int | None = Field(default=None, ge=0)
    """The number of items (approximate, as DynamoDB's ItemCount)."""
    size_bytes: int | None = Field(default=None, ge=0)
    """The table's size in bytes (approximate, as DynamoDB's TableSizeBytes)."""


class Table(Resource):
    """A DynamoDB-style table, served by an engine the operator runs for it."""

    kind: Literal["Table"] = "Table"
    spec: TableSpec
    status: TableStatus | None = None

    @property
    def table_name(self) -> str:
        """The DynamoDB name: spec.tableName, else metadata.name."""
        name = self.spec.table_name or self.metadata.name
        if name is None:
            raise ValueError("a Table needs spec.tableName or metadata.name")
        return name

    def refused_changes(self, old: Self) -> list[str]:
        refused = self.spec.refused_changes(old.spec)
        if self.table_name != old.table_name:
            refused.insert(0, "the table name is immutable")
        return refused

    @model_validator(mode="after")
    def _name_is_a_table_name(self) -> Self:
        if self.spec.table_name is None and self.metadata.name is not None and len(self.metadata.name) < 3:
            raise ValueError(_SHORT_NAME)
        return self


_SHORT_NAME = (
    "metadata.name is the table name when spec.tableName is left out,"
    " and a table name has at least 3 characters"
)
_EFFECTIVE_NAME = "(has(self.spec.tableName) ? self.spec.tableName : self.metadata.name)"

TABLE = ResourceKind(
    model=Table,
    spec=TableSpec,
    status=TableStatus,
    plural="tables",
    short_names=("tkt",),
    columns=(
        PrinterColumn(
            "Table", ".spec.tableName", description="The DynamoDB table name, when not metadata.name"
        ),
        PrinterColumn("Items", ".status.itemCount", ColumnType.INTEGER, "Approximate item count"),
        PrinterColumn("Endpoint", ".status.endpoint", description="The DynamoDB endpoint", priority=1),
    ),
    root_rules=(
        cel("has(self.spec.tableName) || size(self.metadata.name) >= 3", _SHORT_NAME),
        cel(
            f"{_EFFECTIVE_NAME} == {_EFFECTIVE_NAME.replace('self.', 'oldSelf.')}",
            "the table name is immutable",
        ),
    ),
)
