"""Query and Scan: one page of a key range, read lazily.

Every stored key of a partition starts with ``schema.partition_prefix(hash)``
and, inside it, sorts by the sort key (keys.py), so a Query is one range scan:
each sort-key condition becomes a pair of bounds over ``prefix +
encode_scalar(value)``, and ScanIndexForward=false reads the same range
backwards.  A Scan reads the whole table, or one segment's contiguous range
of hash prefixes (``keys.segment_bounds``).  With IndexName both read the
index's entries instead, whose stored keys are the index key followed by the
item's key (``engine.indexes``): the same ranges, with every bound that is a
whole sort key widened or narrowed over that suffix, and pages whose
LastEvaluatedKey names both keys (``index_reads`` has the index rules).

A page is read as DynamoDB reads it: items are *evaluated* in key order until
Limit of them were evaluated or their summed size (``values.item_size``)
reaches 1 MB; only then does the filter decide which are returned.  So
ScannedCount counts what was evaluated and Count what passed the filter, and
LastEvaluatedKey is the key of the last item evaluated whenever the page
stopped early, whether or not anything follows (DynamoDB does not look ahead).

Validation follows DynamoDB's phases: request shape and Select (Query words
those inside "1 validation error detected: ", Scan bare), expressions; then,
knowing the table, the index, the start key, the key condition, and the
start key against the key condition.  Nothing is read before all of it holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from tablekeeper.engine import expressions as ex
from tablekeeper.engine.capacity import Consumed, read_units
from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.indexes import entry_items
from tablekeeper.engine.keys import KeySchema, encode_scalar, segment_bounds
from tablekeeper.engine.operations.base import Operation
from tablekeeper.engine.operations.common import RETURN_CONSUMED, table_for_items
from tablekeeper.engine.operations.index_reads import (
    KEY_MISMATCH,
    START_KEY_INVALID,
    Target,
    check_index_start_key,
    check_partition_key_type,
    check_select,
    index_target,
)
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.sizes import stored_item_size
from tablekeeper.engine.values import (
    Item,
    Value,
    decode_item,
    encode_item,
    load_item,
    type_of,
    values_equal,
)

PAGE_BYTES: Final = 1024 * 1024
MAX_TOTAL_SEGMENTS: Final = 1_000_000
SELECTS: Final = ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES")

_START_KEY_INVALID: Final = START_KEY_INVALID
_KEY_MISMATCH: Final = KEY_MISMATCH


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadSpec:
    """What Query and Scan share: the page, its filter and what it returns."""

    table_name: str
    index_name: str | None
    count_only: bool
    projection: ex.Projection | None
    filter: ex.Condition | None
    filter_source: str  # how messages name the filter: "Filter Expression" | "QueryFilter"
    limit: int | None
    consistent: bool
    return_consumed: str | None
    start_key: Item | None
    select: str | None = None  # as sent; None leaves it to the target (table or index)


@dataclass(frozen=True)
class QueryRequest:
    spec: ReadSpec
    key_condition_text: str | None  # KeyConditionExpression, syntax already checked
    key_conditions: dict[str, Any] | None  # legacy KeyConditions, as sent
    ctx: ex.ExpressionContext
    forward: bool


@dataclass(frozen=True)
class ScanRequest:
    spec: ReadSpec
    segment: int | None
    total_segments: int | None


# --- parsing: shape, Select, expressions -------------------------------------------------


def _select_problem(
    select: str | None, projection_expression: bool, attributes_to_get: bool, indexed: bool
) -> str | None:
    """The Select rule a request breaks, in DynamoDB's words, or None."""
    if select not in (None, "SPECIFIC_ATTRIBUTES"):
        chosen = "only the Count" if select == "COUNT" else select
        if projection_expression:
            return f"Cannot specify the ProjectionExpression when choosing to get {chosen}"
        if attributes_to_get:
            return f"Cannot specify the AttributesToGet when choosing to get {chosen}"
    if select == "SPECIFIC_ATTRIBUTES" and not (projection_expression or attributes_to_get):
        return (
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get "
            "SPECIFIC_ATTRIBUTES"
        )
    if select == "ALL_PROJECTED_ATTRIBUTES" and not indexed:
        return "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"
    return None


@dataclass(frozen=True)
class _Members:
    """The members Query and Scan have in common, shape-checked."""

    table_name: str
    index_name: str | None
    select: str | None
    attributes_to_get: list[Any] | None
    projection_text: str | None
    filter_text: str | None
    legacy_filter: dict[str, Any] | None
    conditional_operator: str | None
    limit: int | None
    consistent: bool
    return_consumed: str | None
    start_key_wire: dict[str, Any] | None


def _common_members(m: Members, filter_param: str) -> _Members:
    name = m.table_name()
    index_name = m.string("IndexName", min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
    return _Members(
        table_name=name or "",
        index_name=index_name,
        select=m.string("Select", enum=SELECTS),
        attributes_to_get=m.array("AttributesToGet", min_len=1),
        projection_text=m.string("ProjectionExpression"),
        filter_text=m.string("FilterExpression"),
        legacy_filter=m.mapping(filter_param),
        conditional_operator=m.string("ConditionalOperator", enum=("OR", "AND")),
        limit=m.integer("Limit", minimum=1),
        consistent=bool(m.boolean("ConsistentRead")),
        return_consumed=m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED),
        start_key_wire=m.mapping("ExclusiveStartKey"),
    )


def _select_check(members: _Members) -> str | None:
    if members.select is not None and members.select not in SELECTS:
        return None  # the shape check reports it
    return _select_problem(
        members.select,
        members.projection_text is not None,
        members.attributes_to_get is not None,
        members.index_name is not None,
    )


def _decode_start_key(wire: dict[str, Any] | None) -> Item | None:
    if wire is None:
        return None
    try:
        return decode_item(wire)
    except ValidationException as exc:
        raise ValidationException(f"{_START_KEY_INVALID}: {exc.message}") from None


@dataclass(frozen=True)
class _Legacy:
    """AttributesToGet and QueryFilter/ScanFilter, converted (the mix check keeps them
    apart from expressions, so at most one of each pair is ever set)."""

    projection: ex.Projection | None
    filter: ex.Condition | None


def _legacy_projection(members: _Members) -> ex.Projection | None:
    if members.attributes_to_get is None:
        return None
    return ex.attributes_to_get_to_projection(members.attributes_to_get)


def _legacy_filter(members: _Members, param: str) -> ex.Condition | None:
    if not members.legacy_filter:
        return None
    return ex.filter_to_condition(members.legacy_filter, members.conditional_operator, param)


def _context(m: Members) -> ex.ExpressionContext:
    """The request's placeholders, names checked before values as DynamoDB does."""
    names = m.mapping("ExpressionAttributeNames")
    values = m.mapping("ExpressionAttributeValues")
    return ex.ExpressionContext.from_wire(names, values)


def _spec(
    members: _Members,
    legacy: _Legacy,
    ctx: ex.ExpressionContext,
    param: str,
    start_key: Item | None,
) -> ReadSpec:
    """Parse FilterExpression then ProjectionExpression (DynamoDB's order) into the spec."""
    condition, source = legacy.filter, param
    if members.filter_text is not None:
        condition = ex.parse_condition(members.filter_text, ctx, "FilterExpression")
        source = "Filter Expression"
    projection = legacy.projection
    if members.projection_text is not None:
        projection = ex.parse_projection(members.projection_text, ctx)
    return ReadSpec(
        table_name=members.table_name,
        index_name=members.index_name,
        count_only=members.select == "COUNT",
        projection=projection,
        filter=condition,
        filter_source=source,
        limit=members.limit,
        consistent=members.consistent,
        return_consumed=members.return_consumed,
        start_key=start_key,
        select=members.select,
    )


def parse_query(body: dict[str, Any]) -> QueryRequest:
    m = Members(body)
    members = _common_members(m, "QueryFilter")
    key_text = m.string("KeyConditionExpression")
    key_conditions = m.mapping("KeyConditions")
    forward = m.boolean("ScanIndexForward")
    problem = _select_check(members)
    if problem is not None:
        m.errors.append(problem)  # Query reports it inside the shape envelope
    m.done()
    ex.check_expression_mix(
        body,
        ["ProjectionExpression", "FilterExpression", "KeyConditionExpression"],
        ["AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"],
    )
    ex.check_conditional_operator(body, "QueryFilter")
    legacy_filter = _legacy_filter(members, "QueryFilter")
    legacy = _Legacy(_legacy_projection(members), legacy_filter)
    start_key = _decode_start_key(members.start_key_wire)
    if key_conditions is None and key_text is None:
        raise ValidationException(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified "
            "in the request."
        )
    ctx = _context(m)
    if key_text is not None:  # syntax and placeholders now; against the schema later
        ex.parse_condition(key_text, ctx, "KeyConditionExpression")
    spec = _spec(members, legacy, ctx, "QueryFilter", start_key)
    ctx.check_unused()
    return QueryRequest(spec, key_text, key_conditions, ctx, forward is not False)


def parse_scan(body: dict[str, Any]) -> ScanRequest:
    m = Members(body)
    members = _common_members(m, "ScanFilter")
    total = m.integer("TotalSegments", minimum=1, maximum=MAX_TOTAL_SEGMENTS)
    segment = m.integer("Segment", minimum=0, maximum=MAX_TOTAL_SEGMENTS - 1)
    m.done()
    problem = _select_check(members)
    if problem is not None:
        raise ValidationException(problem)
    ex.check_expression_mix(
        body,
        ["ProjectionExpression", "FilterExpression"],
        ["AttributesToGet", "ScanFilter", "ConditionalOperator"],
    )
    ex.check_conditional_operator(body, "ScanFilter")
    legacy_projection = _legacy_projection(members)
    legacy = _Legacy(legacy_projection, _legacy_filter(members, "ScanFilter"))
    start_key = _decode_start_key(members.start_key_wire)
    _check_segments(segment, total)
    ctx = _context(m)
    spec = _spec(members, legacy, ctx, "ScanFilter", start_key)
    ctx.check_unused()
    return ScanRequest(spec, segment, total)


def _check_segments(segment: int | None, total: int | None) -> None:
    if segment is not None and total is None:
        raise ValidationException(
            "The TotalSegments parameter is required but was not present in the request when "
            "Segment parameter is present"
        )
    if total is not None and segment is None:
        raise ValidationException(
            "The Segment parameter is required but was not present in the request when "
            "parameter TotalSegments is present"
        )
    if segment is not None and total is not None and segment >= total:
        raise ValidationException(
            "The Segment parameter is zero-based and must be less than parameter "
            f"TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
        )


# --- key ranges ------------------------------------------------------------------------------


def successor(prefix: bytes) -> bytes | None:
    """The least key greater than every key that starts with ``prefix`` (None: no such key)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def open_prefix(value: Value) -> bytes:
    """The encoding every S or B value that begins with ``value`` starts with.

    ``encode_scalar`` escapes 0x00 as 0x00 0xFF and ends with 0x00 0x01.  The
    escaping works byte by byte, so ``escape(p + r) == escape(p) + escape(r)``
    and a value begins with ``p`` exactly when its encoding begins with the
    encoding of ``p`` *without* the terminator: the terminator of ``p`` (0x00
    0x01) is not what follows ``p`` inside a longer value.  ``escape(p)`` never
    ends inside an escape pair, so nothing else starts with those bytes.
    """
    return encode_scalar(value)[:-2]


@dataclass(frozen=True)
class KeyRange:
    """Stored keys between two bounds; a None bound is open."""

    low: bytes | None
    high: bytes | None
    low_inclusive: bool = True
    high_inclusive: bool = False

    def contains(self, key: bytes) -> bool:
        if self.low is not None and (
            key < self.low or (key == self.low and not self.low_inclusive)
        ):
            return False
        return self.high is None or key < self.high or (key == self.high and self.high_inclusive)

    def after(self, start: bytes, forward: bool) -> KeyRange:
        """The part of the range past ``start`` in reading order (ExclusiveStartKey)."""
        if forward:
            return replace(self, low=start, low_inclusive=False)
        return replace(self, high=start, high_inclusive=False)


def partition_range(
    prefix: bytes, condition: ex.KeyCondition, suffixed: bool = False
) -> KeyRange:
    """The stored keys of one partition that satisfy the sort-key condition.

    ``suffixed`` stored keys continue past the sort key (index entries end
    with the item's key), so a bound that is a whole sort-key encoding must
    take in, or leave out, every key that starts with it.
    """
    keys = _sort_key_range(prefix, condition)
    if not suffixed:
        return keys
    low, high = keys.low, keys.high
    if low is not None and not keys.low_inclusive:
        low = successor(low)
    if high is not None and keys.high_inclusive:
        high = successor(high)
    return KeyRange(low, high, True, False)


def _sort_key_range(prefix: bytes, condition: ex.KeyCondition) -> KeyRange:
    op, values = condition.range_op, condition.range_values
    end = successor(prefix)
    if op is None:
        return KeyRange(prefix, end)
    if op == "BEGINS_WITH":
        start = prefix + open_prefix(values[0])
        return KeyRange(start, successor(start))
    bound = prefix + encode_scalar(values[0])
    if op == "EQ":
        return KeyRange(bound, bound, True, True)
    if op in ("LT", "LE"):
        return KeyRange(prefix, bound, True, op == "LE")
    if op in ("GT", "GE"):
        return KeyRange(bound, end, op == "GE", False)
    assert op == "BETWEEN", op
    return KeyRange(bound, prefix + encode_scalar(values[1]), True, True)


# --- validation against the table ----------------------------------------------------------


def _check_query_start_key(schema: KeySchema, start: Item) -> None:
    """DynamoDB's Query wording: no prefix, except for the count."""
    if len(start) != len(schema.names):
        raise ValidationException(_START_KEY_INVALID)
    for attr in (schema.hash, schema.range):
        if attr is None:
            continue
        if attr.name not in start:
            raise ValidationException(_START_KEY_INVALID)
        if type_of(start[attr.name]) != attr.type:
            raise ValidationException(_KEY_MISMATCH)
    schema.validate_key(start)  # what is left: empty values, key sizes


def _check_scan_start_key(schema: KeySchema, start: Item) -> None:
    """DynamoDB's Scan wording: every problem prefixed."""
    if len(start) != len(schema.names):
        raise ValidationException(f"{_START_KEY_INVALID}: {_KEY_MISMATCH}")
    try:
        schema.validate_key(start)
    except ValidationException as exc:
        raise ValidationException(f"{_START_KEY_INVALID}: {exc.message}") from None


def _key_condition(request: QueryRequest, schema: KeySchema) -> ex.KeyCondition:
    range_name = schema.range.name if schema.range is not None else None
    if request.key_condition_text is not None:
        condition = ex.parse_key_condition(
            request.key_condition_text, request.ctx, schema.hash.name, range_name
        )
    else:
        assert request.key_conditions is not None
        condition = ex.key_conditions_to_key_condition(
            request.key_conditions, schema.hash.name, range_name
        )
    typed = [(schema.hash.type, condition.hash_value)]
    if schema.range is not None:
        typed += [(schema.range.type, value) for value in condition.range_values]
    if any(type_of(value) != expected for expected, value in typed):
        raise ValidationException(
            "One or more parameter values were invalid: "
            "Condition parameter type does not match schema type"
        )
    KeySchema(schema.hash).validate_key({schema.hash.name: condition.hash_value})
    return condition


def _check_start_in_query(
    target: Target, start: Item, condition: ex.KeyCondition, keys: KeyRange, prefix: bytes
) -> None:
    schema = target.schema
    if condition.range_op is not None:
        assert schema.range is not None
        point = prefix + encode_scalar(start[schema.range.name]) + target.item_suffix(start)
        if not keys.contains(point):
            raise ValidationException(
                "The provided starting key does not match the range key predicate"
            )
    if not values_equal(start[schema.hash.name], condition.hash_value):
        if condition.range_op is not None:
            raise ValidationException(
                "The query can return at most one row and cannot be restarted"
            )
        raise ValidationException(
            "The provided starting key is outside query boundaries based on provided conditions"
        )


def _check_paths(target: Target, spec: ReadSpec, query: bool) -> None:
    """Key attributes are scalars; a Query's filter may not name those of its key at all."""
    names = target.key_names
    if query and spec.filter is not None:
        used = spec.filter.top_level_names()
        for name in target.schema.names:
            if name in used:
                raise ValidationException(
                    f"{spec.filter_source} can only contain non-primary key attributes: "
                    f"Primary key attribute: {name}"
                )
    nodes: list[Any] = list(spec.projection.paths) if spec.projection is not None else []
    if spec.filter is not None:
        nodes += [node for node in spec.filter.walk() if isinstance(node, ex.Path)]
    for node in nodes:
        if len(node.elements) > 1 and node.top in names:
            raise ValidationException(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' "
                f"are not allowed: Key: {node.top}"
            )


# --- reading a page --------------------------------------------------------------------------


Fetch = Callable[[dict[str, Any]], bytes | None]


@dataclass
class Page:
    items: list[Any] | None  # wire items (or spliced stored JSON); None for Select COUNT
    count: int = 0
    scanned: int = 0
    size: int = 0  # of what was evaluated: items, or index entries
    last_key: dict[str, Any] | None = None
    fetched: float = 0.0  # read units of the table items a local index read fetched


def read_page(
    rows: Iterable[tuple[bytes, bytes]],
    schema: KeySchema,
    spec: ReadSpec,
    *,
    names: tuple[str, ...] | None = None,
    fetch: Fetch | None = None,
) -> Page:
    """Evaluate stored items in order until the page is full; see the module docstring.

    ``names`` are the LastEvaluatedKey's attributes (the schema's by default);
    ``fetch`` gives the table item behind an index entry, which then stands
    in for the entry.
    """
    page = Page(items=None if spec.count_only else [])
    wants_item = spec.filter is not None or spec.projection is not None
    for _key, blob in rows:
        wire = orjson.loads(blob)
        page.scanned += 1
        page.size += stored_item_size(wire)
        if page.scanned == spec.limit or page.size >= PAGE_BYTES:
            page.last_key = {name: wire[name] for name in names or schema.names}
        if fetch is not None:
            blob, wire = _fetched(fetch, blob, wire, page, spec.consistent)
        item = load_item(wire) if wants_item else None
        if spec.filter is None or ex.evaluate(spec.filter, item):
            page.count += 1
            if page.items is not None:
                page.items.append(_returned(blob, item, spec.projection))
        if page.last_key is not None:
            break
    return page


def _fetched(
    fetch: Fetch, blob: bytes, wire: dict[str, Any], page: Page, consistent: bool
) -> tuple[bytes, dict[str, Any]]:
    """The table item behind an index entry, charged like a GetItem of it."""
    found = fetch(wire)
    if found is None:  # cannot happen in one snapshot; keep the entry rather than fail
        return blob, wire
    item_wire = orjson.loads(found)
    page.fetched += read_units(stored_item_size(item_wire), consistent)
    return found, item_wire


def _returned(blob: bytes, item: Item | None, projection: ex.Projection | None) -> Any:
    if projection is None:
        return orjson.Fragment(blob)  # the stored JSON is the wire item: splice it
    assert item is not None
    return encode_item(ex.project(projection, item))


@contextlib.contextmanager
def _closing(rows: Iterator[tuple[bytes, bytes]]) -> Iterator[Iterator[tuple[bytes, bytes]]]:
    """Close a storage iterator however the page ends (Reader.range's contract)."""
    try:
        yield rows
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _read(engine: Engine, target: Target, keys: KeyRange, forward: bool, spec: ReadSpec) -> Page:
    reader = engine.reader(target.table)
    rows = reader.range(
        keys.low,
        keys.high,
        space=target.space,
        reverse=not forward,
        low_inclusive=keys.low_inclusive,
        high_inclusive=keys.high_inclusive,
    )
    fetch = None
    if target.fetch:
        table_schema = target.table.key_schema

        def fetch(wire: dict[str, Any]) -> bytes | None:
            return reader.get(table_schema.encode_stored(wire))

    with _closing(rows):
        items = rows if target.index is None else entry_items(reader, target.table, target.index, rows)
        return read_page(items, target.schema, spec, names=target.key_names, fetch=fetch)


@dataclass
class ReadResult:
    page: Page
    consumed: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if self.page.items is not None:
            wire["Items"] = self.page.items
        wire["Count"] = self.page.count
        wire["ScannedCount"] = self.page.scanned
        if self.page.last_key is not None:
            wire["LastEvaluatedKey"] = self.page.last_key
        if self.consumed is not None:
            wire["ConsumedCapacity"] = self.consumed
        return wire


def _result(target: Target, spec: ReadSpec, page: Page) -> ReadResult:
    """The page and, if asked, its capacity: on the index it read, and on fetched items."""
    consumed = None
    if spec.return_consumed in ("TOTAL", "INDEXES"):
        units = read_units(page.size, spec.consistent)
        used = Consumed(target.table.name, read=units)
        if target.index is not None:
            index = target.index
            used = Consumed(target.table.name, read=page.fetched)
            used.indexes[index.name] = (index.local, units, 0.0)
        consumed = used.to_wire(spec.return_consumed)
    return ReadResult(page, consumed)


# --- the operations -------------------------------------------------------------------------


def _target(engine: Engine, spec: ReadSpec, scan: bool) -> Target:
    table = table_for_items(engine, spec.table_name)
    if spec.index_name is None:
        return Target(table)
    return index_target(table, spec, scan)


async def query(engine: Engine, request: QueryRequest) -> ReadResult:
    spec = request.spec
    target = _target(engine, spec, scan=False)
    schema, start = target.schema, spec.start_key
    if start is not None and target.index is None:
        _check_query_start_key(schema, start)
    elif start is not None:
        check_partition_key_type(target, start)
    condition = _key_condition(request, schema)
    if start is not None and target.index is not None:
        check_index_start_key(target, spec, start)
    check_select(target, spec)
    prefix = schema.partition_prefix(condition.hash_value)
    keys = partition_range(prefix, condition, target.suffixed)
    if start is not None:
        _check_start_in_query(target, start, condition, keys, prefix)
    _check_paths(target, spec, query=True)
    if start is not None:
        keys = keys.after(target.encode(start), request.forward)
    return _result(target, spec, _read(engine, target, keys, request.forward, spec))


async def scan(engine: Engine, request: ScanRequest) -> ReadResult:
    spec = request.spec
    target = _target(engine, spec, scan=True)
    keys = KeyRange(None, None)
    if request.segment is not None and request.total_segments is not None:
        keys = KeyRange(*segment_bounds(request.segment, request.total_segments))
    if spec.start_key is not None:
        if target.index is None:
            _check_scan_start_key(target.schema, spec.start_key)
        else:
            check_index_start_key(target, spec, spec.start_key)
        start = target.encode(spec.start_key)
        if not keys.contains(start):
            raise ValidationException(
                f"{_START_KEY_INVALID}: Invalid ExclusiveStartKey. Please use ExclusiveStartKey "
                f"with correct Segment. TotalSegments: {request.total_segments} "
                f"Segment: {request.segment}"
            )
        keys = keys.after(start, forward=True)
    check_select(target, spec)
    _check_paths(target, spec, query=False)
    return _result(target, spec, _read(engine, target, keys, True, spec))


OPERATIONS = {
    op.name: op
    for op in (
        Operation("Query", parse_query, query),
        Operation("Scan", parse_scan, scan),
    )
}
