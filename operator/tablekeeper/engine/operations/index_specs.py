"""Secondary index definitions as CreateTable and UpdateTable receive them.

Two phases, as for every request: ``parse_index_specs`` checks the shape of
a GlobalSecondaryIndexes / LocalSecondaryIndexes list (or of one
GlobalSecondaryIndexUpdate.Create) with the request's other members, and the
``check_*`` / ``build_*`` functions then apply DynamoDB's rules, in its order
and with its wording, to produce ``tables.IndexDefinition``s:

1. attribute definitions: every key attribute defined, none left unused;
2. local indexes: the table has a sort key; per index its key schema, a sort
   key, the table's partition key, its projection; at most 5;
3. global indexes: per index its key schema, projection and throughput (as
   the billing mode wants); at most 20;
4. names unique across both kinds; at most 100 projected non-key attributes
   in all indexes together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tablekeeper.engine.errors import SerializationException, ValidationException
from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.tables import IndexDefinition, Projection, Throughput

INVALID: Final = "One or more parameter values were invalid: "
MAX_LOCAL: Final = 5
MAX_GLOBAL: Final = 20
MAX_PROJECTED: Final = 100
PROJECTION_TYPES: Final = ("ALL", "INCLUDE", "KEYS_ONLY")


@dataclass(frozen=True)
class IndexSpec:
    """One index as the request gives it, shape-checked but not yet validated."""

    name: str
    key_schema: tuple[tuple[str, str], ...]  # (attribute, HASH | RANGE)
    projection_type: str | None
    non_key_attributes: tuple[str, ...] | None
    throughput: Throughput | None

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.key_schema)


# --- shape ---------------------------------------------------------------------------------


def parse_index_spec(m: Members, member: str, wire: Any, index: int | None = None) -> IndexSpec:
    """One index structure (a list element when ``index`` is given)."""
    n = m.nested(member, wire, index)
    name = n.string("IndexName", required=True, min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
    key_schema = n.array("KeySchema", required=True, min_len=1, max_len=2)
    elements = []
    for i, element in enumerate(key_schema or []):
        k = n.nested("KeySchema", element, i)
        attr = k.string("AttributeName", required=True, min_len=1, max_len=255)
        kind = k.string("KeyType", required=True, enum=("HASH", "RANGE"))
        elements.append((attr or "", kind or ""))
    projection = n.mapping("Projection", required=True)
    projection_type, non_key = None, None
    if projection is not None:
        p = n.nested("Projection", projection)
        projection_type = p.string("ProjectionType", enum=PROJECTION_TYPES)
        non_key = p.array("NonKeyAttributes", min_len=1, max_len=20)
        if any(not isinstance(attr, str) for attr in non_key or ()):
            raise SerializationException("Unexpected value type in payload")
    throughput = _parse_throughput(n, n.mapping("ProvisionedThroughput"))
    return IndexSpec(
        name=name or "",
        key_schema=tuple(elements),
        projection_type=projection_type,
        non_key_attributes=None if non_key is None else tuple(non_key),
        throughput=throughput,
    )


def _parse_throughput(m: Members, value: dict[str, Any] | None) -> Throughput | None:
    if value is None:
        return None
    t = m.nested("ProvisionedThroughput", value)
    read = t.integer("ReadCapacityUnits", required=True, minimum=1)
    write = t.integer("WriteCapacityUnits", required=True, minimum=1)
    return Throughput(read or 0, write or 0)


def parse_index_specs(m: Members, member: str) -> tuple[IndexSpec, ...] | None:
    """A GlobalSecondaryIndexes or LocalSecondaryIndexes member (None when absent)."""
    value = m.array(member)
    if value is None:
        return None
    return tuple(parse_index_spec(m, member, wire, i) for i, wire in enumerate(value))


# --- rules shared by CreateTable and UpdateTable ---------------------------------------------


def index_key_schema(spec: IndexSpec, definitions: dict[str, str]) -> KeySchema:
    """The index's key schema, checked against the attribute definitions."""
    names = spec.key_names
    if any(name not in definitions for name in names):
        raise ValidationException(
            INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(names)}], AttributeDefinitions: [{', '.join(definitions)}]"
        )
    kinds = [kind for _, kind in spec.key_schema]
    if len(names) == 2 and names[0] == names[1]:
        raise ValidationException(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name"
        )
    if kinds[0] != "HASH":
        raise ValidationException("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(kinds) == 2 and kinds[1] != "RANGE":
        raise ValidationException(
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"
        )
    hash_attr = KeyAttribute(names[0], definitions[names[0]])
    range_attr = KeyAttribute(names[1], definitions[names[1]]) if len(names) == 2 else None
    return KeySchema(hash_attr, range_attr)


def index_projection(spec: IndexSpec) -> Projection:
    kind, non_key = spec.projection_type, spec.non_key_attributes
    if kind is None:
        raise ValidationException(INVALID + "Unknown ProjectionType: null")
    if kind != "INCLUDE" and non_key is not None:
        raise ValidationException(
            INVALID + f"ProjectionType is {kind}, but NonKeyAttributes is specified"
        )
    if kind == "INCLUDE" and non_key is None:
        raise ValidationException(
            INVALID + "ProjectionType is INCLUDE, but NonKeyAttributes is not specified"
        )
    seen: set[str] = set()
    for attr in non_key or ():
        if attr in seen:
            raise ValidationException(INVALID + f"Duplicate element in NonKeyAttributes: {attr}")
        seen.add(attr)
    return Projection(kind, non_key or ())


def check_projected_total(indexes: tuple[IndexDefinition, ...]) -> None:
    """At most 100 non-key attributes projected into all of a table's indexes together.

    DynamoDB's documented quota; an attribute projected into two indexes
    counts twice, ALL projections count nothing.
    """
    total = sum(len(index.projection.non_key_attributes) for index in indexes)
    if total > MAX_PROJECTED:
        raise ValidationException(
            INVALID + f"Number of projected attributes in all indexes exceeds limit of {MAX_PROJECTED}"
        )


# --- CreateTable -------------------------------------------------------------------------------


def _check_definitions_used(
    schema: KeySchema, specs: tuple[IndexSpec, ...], definitions: dict[str, str]
) -> None:
    used: list[str] = list(schema.names)
    for spec in specs:
        used += [name for name in spec.key_names if name not in used]
    if any(name not in used for name in definitions):
        raise ValidationException(
            INVALID + "Some AttributeDefinitions are not used. "
            f"AttributeDefinitions: [{', '.join(definitions)}], keys used: [{', '.join(used)}]"
        )


def _local_index(spec: IndexSpec, schema: KeySchema, definitions: dict[str, str]) -> IndexDefinition:
    key_schema = index_key_schema(spec, definitions)
    if key_schema.range is None:
        raise ValidationException(
            INVALID + f"Index KeySchema does not have a range key for index: {spec.name}"
        )
    if key_schema.hash.name != schema.hash.name:
        raise ValidationException(
            INVALID + "Index KeySchema does not have the same leading hash key as table "
            f"KeySchema for index: {spec.name}. index hash key: {key_schema.hash.name}, "
            f"table hash key: {schema.hash.name}"
        )
    return IndexDefinition(spec.name, key_schema, index_projection(spec), local=True)


def _global_throughput(spec: IndexSpec, billing_mode: str) -> Throughput:
    if billing_mode == "PAY_PER_REQUEST":
        if spec.throughput is not None:
            raise ValidationException(
                INVALID + f"ProvisionedThroughput should not be specified for index: {spec.name} "
                "when BillingMode is PAY_PER_REQUEST"
            )
        return Throughput()
    if spec.throughput is None:
        raise ValidationException(
            INVALID + f"ProvisionedThroughput is not specified for index: {spec.name}"
        )
    return spec.throughput


def _check_unique(name: str, seen: set[str]) -> None:
    if name in seen:
        raise ValidationException(INVALID + f"Duplicate index name: {name}")
    seen.add(name)


def build_create_indexes(
    schema: KeySchema,
    definitions: dict[str, str],
    local: tuple[IndexSpec, ...] | None,
    global_: tuple[IndexSpec, ...] | None,
    billing_mode: str,
) -> tuple[IndexDefinition, ...]:
    """CreateTable's indexes, validated in DynamoDB's order (see the module docstring)."""
    for member, specs in (("LocalSecondaryIndexes", local), ("GlobalSecondaryIndexes", global_)):
        if specs is not None and not specs:
            raise ValidationException(INVALID + f"List of {member} is empty")
    _check_definitions_used(schema, (*(local or ()), *(global_ or ())), definitions)
    seen: set[str] = set()
    indexes: list[IndexDefinition] = []
    if local:
        if schema.range is None:
            raise ValidationException(
                INVALID + "Table KeySchema does not have a range key, which is required when "
                "specifying a LocalSecondaryIndex"
            )
        for spec in local:
            indexes.append(_local_index(spec, schema, definitions))
            _check_unique(spec.name, seen)
        if len(local) > MAX_LOCAL:
            raise ValidationException(
                INVALID + f"Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LOCAL}"
            )
    for spec in global_ or ():
        key_schema = index_key_schema(spec, definitions)
        projection = index_projection(spec)
        throughput = _global_throughput(spec, billing_mode)
        _check_unique(spec.name, seen)
        indexes.append(IndexDefinition(spec.name, key_schema, projection, False, throughput))
    if global_ and len(global_) > MAX_GLOBAL:
        raise ValidationException(
            INVALID + f"GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GLOBAL}"
        )
    check_projected_total(tuple(indexes))
    return tuple(indexes)

