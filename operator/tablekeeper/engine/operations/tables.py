"""Table lifecycle: CreateTable, DescribeTable, ListTables, DeleteTable.

Tables are created synchronously (the data file exists before the reply), so
CreateTable answers CREATING as DynamoDB does and DescribeTable answers
ACTIVE from then on; the table accepts reads and writes at once.  DeleteTable
answers DELETING and the table is gone when the reply is sent.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
)
from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.operations.common import refuse_while_creating
from tablekeeper.engine.operations.index_specs import (
    IndexSpec,
    build_create_indexes,
    parse_index_specs,
)
from tablekeeper.engine.operations.tags import check_tags
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.storage.base import index_space
from tablekeeper.engine.tables import (
    IndexDefinition,
    StreamSpec,
    TableDefinition,
    Throughput,
    describe_table,
    new_stream_label,
)

_INVALID = "One or more parameter values were invalid: "
STREAM_VIEW_TYPES = ("OLD_IMAGE", "KEYS_ONLY", "NEW_AND_OLD_IMAGES", "NEW_IMAGE")

log = logging.getLogger(__name__)


# --- shared parsing pieces ------------------------------------------------------------


def parse_key_schema(members: Members, name: str, value: list[Any]) -> list[tuple[str, str]]:
    elements = []
    for i, element in enumerate(value):
        m = members.nested(name, element, i)
        attr = m.string("AttributeName", required=True, min_len=1, max_len=255)
        kind = m.string("KeyType", required=True, enum=("HASH", "RANGE"))
        elements.append((attr or "", kind or ""))
    return elements


def parse_throughput(members: Members, name: str, value: dict[str, Any] | None) -> Throughput | None:
    if value is None:
        return None
    m = members.nested(name, value)
    read = m.integer("ReadCapacityUnits", required=True, minimum=1)
    write = m.integer("WriteCapacityUnits", required=True, minimum=1)
    return Throughput(read or 0, write or 0)


def build_key_schema(
    elements: list[tuple[str, str]], definitions: dict[str, str]
) -> KeySchema:
    if elements[0][1] != "HASH":
        raise ValidationException("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(elements) == 2:
        if elements[1][1] != "RANGE":
            raise ValidationException(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"
            )
        if elements[0][0] == elements[1][0]:
            raise ValidationException(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name"
            )
    missing = [name for name, _ in elements if name not in definitions]
    if missing and (not definitions or len(elements) == 2):
        raise ValidationException("Invalid KeySchema: Some index key attribute have no definition")
    if missing:
        raise ValidationException(
            _INVALID
            + "Some index key attributes are not defined in AttributeDefinitions. Keys: ["
            + ", ".join(name for name, _ in elements)
            + "], AttributeDefinitions: ["
            + ", ".join(definitions)
            + "]"
        )
    hash_attr = KeyAttribute(elements[0][0], definitions[elements[0][0]])
    range_attr = (
        KeyAttribute(elements[1][0], definitions[elements[1][0]]) if len(elements) == 2 else None
    )
    return KeySchema(hash_attr, range_attr)


# --- CreateTable ---------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTableRequest:
    table_name: str
    attribute_definitions: tuple[tuple[str, str], ...]
    key_schema: tuple[tuple[str, str], ...]
    billing_mode: str
    throughput: Throughput | None
    stream: StreamSpec | None
    has_indexes: bool
    tags: tuple[tuple[str, str], ...]
    table_class: str
    deletion_protection: bool
    sse: tuple[tuple[str, Any], ...]
    local_indexes: tuple[IndexSpec, ...] | None = None
    global_indexes: tuple[IndexSpec, ...] | None = None


def parse_create_table(body: dict[str, Any]) -> CreateTableRequest:
    m = Members(body)
    name = m.table_name()
    definitions = m.array("AttributeDefinitions", required=True)
    key_schema = m.array("KeySchema", required=True, min_len=1, max_len=2)
    billing = m.string("BillingMode", enum=("PROVISIONED", "PAY_PER_REQUEST"))
    throughput_wire = m.mapping("ProvisionedThroughput")
    stream_wire = m.mapping("StreamSpecification")
    tags_wire = m.array("Tags")
    table_class = m.string("TableClass", enum=("STANDARD", "STANDARD_INFREQUENT_ACCESS"))
    protection = m.boolean("DeletionProtectionEnabled")
    sse_wire = m.mapping("SSESpecification")
    local_indexes = parse_index_specs(m, "LocalSecondaryIndexes")
    global_indexes = parse_index_specs(m, "GlobalSecondaryIndexes")
    has_indexes = local_indexes is not None or global_indexes is not None
    attrs: list[tuple[str, str]] = []
    for i, definition in enumerate(definitions or []):
        d = m.nested("AttributeDefinitions", definition, i)
        attr = d.string("AttributeName", required=True, min_len=1, max_len=255)
        kind = d.string("AttributeType", required=True, enum=("B", "N", "S"))
        attrs.append((attr or "", kind or ""))
    elements = parse_key_schema(m, "KeySchema", key_schema or [])
    throughput = parse_throughput(m, "ProvisionedThroughput", throughput_wire)
    stream = parse_stream_spec(m, stream_wire)
    tags = parse_tags(m, tags_wire)
    m.done()
    checked_tags = check_tags(tags) if tags else ()
    assert name is not None
    return CreateTableRequest(
        table_name=name,
        attribute_definitions=tuple(attrs),
        key_schema=tuple(elements),
        billing_mode=billing or "PROVISIONED",
        throughput=throughput,
        stream=stream,
        has_indexes=has_indexes,
        tags=checked_tags,
        table_class=table_class or "STANDARD",
        deletion_protection=bool(protection),
        sse=parse_sse(sse_wire),
        local_indexes=local_indexes,
        global_indexes=global_indexes,
    )


def parse_stream_spec(m: Members, value: dict[str, Any] | None) -> StreamSpec | None:
    if value is None:
        return None
    s = m.nested("StreamSpecification", value)
    enabled = s.boolean("StreamEnabled", required=True)
    view = s.string("StreamViewType", enum=STREAM_VIEW_TYPES)
    return StreamSpec(bool(enabled), view)


def parse_tags(m: Members, value: list[Any] | None) -> list[tuple[str | None, str | None]]:
    """Tags as given; checked with TagResource's rules once the shape is known good."""
    tags = []
    for i, tag in enumerate(value or []):
        t = m.nested("Tags", tag, i)
        tags.append((t.string("Key", required=True), t.string("Value", required=True)))
    return tags


def parse_sse(value: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """An SSESpecification as the table keeps it (DescribeTable's SSEDescription); () if off."""
    if not value or not value.get("Enabled"):
        return ()
    sse: dict[str, Any] = {"Status": "ENABLED", "SSEType": value.get("SSEType", "KMS")}
    if value.get("KMSMasterKeyId"):
        sse["KMSMasterKeyArn"] = value["KMSMasterKeyId"]
    return tuple(sse.items())


def _check_billing(billing_mode: str, throughput: Throughput | None) -> Throughput:
    if billing_mode == "PAY_PER_REQUEST":
        if throughput is not None:
            raise ValidationException(
                _INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified "
                "when BillingMode is PAY_PER_REQUEST"
            )
        return Throughput()
    if throughput is None:
        raise ValidationException(
            _INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
            "BillingMode is PROVISIONED"
        )
    return throughput


async def create_table(engine: Engine, request: CreateTableRequest) -> WireResult:
    definitions: dict[str, str] = {}
    for attr, kind in request.attribute_definitions:
        if attr in definitions:
            raise ValidationException(f"Attribute Name is duplicated: {attr}")
        definitions[attr] = kind
    schema = build_key_schema(list(request.key_schema), definitions)
    indexes: tuple[IndexDefinition, ...] = ()
    if request.has_indexes:
        indexes = build_create_indexes(
            schema, definitions, request.local_indexes, request.global_indexes,
            request.billing_mode,
        )
    elif len(definitions) != len(schema.names):
        raise ValidationException(
            _INVALID + "Number of attributes in KeySchema does not exactly match number of "
            "attributes defined in AttributeDefinitions"
        )
    throughput = _check_billing(request.billing_mode, request.throughput)
    stream = request.stream
    if stream is not None:
        if stream.enabled and stream.view_type is None:
            raise ValidationException(
                _INVALID + "StreamViewType must be specified when StreamEnabled is true"
            )
        if not stream.enabled:
            stream = None
    name = engine.resolve_name(request.table_name)
    if engine.catalog.get(name) is not None:
        raise ResourceInUseException(f"Table already exists: {name}")
    engine.check_table_quota()
    now = engine.clock()
    if stream is not None:
        stream = StreamSpec(True, stream.view_type, new_stream_label(now))
    table = TableDefinition(
        name=name,
        table_id=uuid.uuid4().hex,
        key_schema=schema,
        attribute_definitions=request.attribute_definitions,
        created=now,
        region=engine.config.region,
        account=engine.config.account,
        billing_mode=request.billing_mode,
        throughput=throughput,
        billing_mode_changed=now if request.billing_mode == "PAY_PER_REQUEST" else None,
        stream=stream,
        sse=request.sse,
        table_class=request.table_class,
        deletion_protection=request.deletion_protection,
        tags=request.tags,
        indexes=indexes,
    )
    engine.storage.create_table(table.table_id)
    engine.catalog.put(table)
    return WireResult({"TableDescription": describe_table(table, 0, 0, status="CREATING")})


# --- DescribeTable ----------------------------------------------------------------------


@dataclass(frozen=True)
class TableNameRequest:
    table_name: str


def parse_table_name_request(body: dict[str, Any]) -> TableNameRequest:
    m = Members(body)
    name = m.table_name()
    m.done()
    assert name is not None
    return TableNameRequest(name)


def describe(engine: Engine, table: TableDefinition, status: str | None = None) -> dict[str, Any]:
    reader = engine.reader(table)
    stats = reader.stats()
    index_stats = {}
    for index in table.indexes:
        counted = reader.space_stats(index_space(index.name))
        index_stats[index.name] = (counted.entries, counted.bytes)
    return describe_table(table, stats.item_count, stats.item_bytes, status, index_stats)


async def describe_table_op(engine: Engine, request: TableNameRequest) -> WireResult:
    table = engine.find_table(request.table_name)
    if table is None:
        raise ResourceNotFoundException(
            f"Requested resource not found: Table: {engine.resolve_name(request.table_name)} not found"
        )
    return WireResult({"Table": describe(engine, table)})


# --- DeleteTable -------------------------------------------------------------------------


async def delete_table(engine: Engine, request: TableNameRequest) -> WireResult:
    table = engine.find_table(request.table_name)
    if table is None:
        raise ResourceNotFoundException(
            f"Requested resource not found: Table: {engine.resolve_name(request.table_name)} not found"
        )
    refuse_while_creating(table)
    if table.deletion_protection:
        raise ValidationException(
            "Resource cannot be deleted as it is currently protected against deletion. "
            "Disable deletion protection first."
        )
    if any(index.status != "ACTIVE" for index in table.indexes):
        raise ResourceInUseException(
            "Attempt to change a resource which is still in use: Cannot delete table while "
            "indexes are being created, updated, or deleted."
        )
    if engine.storage.unreadable(table.table_id) is None:
        await engine.before_delete(table)  # e.g. PITR keeps what it must of the table's log
        description = describe(engine, table, status="DELETING")
    else:  # its file cannot be read: nothing of it is left to keep or count
        log.warning("deleting table %s, whose file cannot be used", table.name)
        description = describe_table(table, 0, 0, status="DELETING")
    # Catalog first: once it is gone the table is gone for every request; the
    # files are removed after, and a crash in between leaves only orphan files
    # that the next start removes.
    engine.catalog.remove(table.name)
    await engine.storage.drop_table(table.table_id)
    return WireResult({"TableDescription": description})


# --- ListTables -----------------------------------------------------------------------


@dataclass(frozen=True)
class ListTablesRequest:
    exclusive_start: str | None
    limit: int


def parse_list_tables(body: dict[str, Any]) -> ListTablesRequest:
    m = Members(body)
    start = m.string("ExclusiveStartTableName", min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
    limit = m.integer("Limit", minimum=1, maximum=100)
    m.done()
    return ListTablesRequest(start, limit or 100)


async def list_tables(engine: Engine, request: ListTablesRequest) -> WireResult:
    names = engine.catalog.names()
    if request.exclusive_start is not None:
        names = [name for name in names if name > request.exclusive_start]
    page = names[: request.limit]
    body: dict[str, Any] = {"TableNames": page}
    if len(names) > request.limit:
        body["LastEvaluatedTableName"] = page[-1]
    return WireResult(body)


OPERATIONS = {
    op.name: op
    for op in (
        Operation("CreateTable", parse_create_table, create_table),
        Operation("DescribeTable", parse_table_name_request, describe_table_op),
        Operation("DeleteTable", parse_table_name_request, delete_table),
        Operation("ListTables", parse_list_tables, list_tables),
    )
}
