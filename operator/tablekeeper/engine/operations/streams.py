"""The DynamoDB Streams API: ListStreams, DescribeStream, GetShardIterator, GetRecords.

Served on the engine's port under ``X-Amz-Target: DynamoDBStreams_20120810.*``.
Streams, shards, sequence numbers, iterators and the record shape are in
``tablekeeper.engine.streams``; this module checks requests and reads the
change log.

Reading a shard never holds a snapshot: the table's last committed sequence
is read first and the log after it, so a record committed in between can only
make the answer newer, never make a gap look like trimming.  Records in the
log form one contiguous run of sequence numbers, so a gap right after a
position means the records there were trimmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    ResourceNotFoundException,
    TrimmedDataAccessException,
    ValidationException,
)
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.storage.base import Reader, StoredRecord
from tablekeeper.engine.streams import (
    MAX_RECORDS,
    MAX_RESPONSE_BYTES,
    ShardIterator,
    Stream,
    check_fresh,
    decode_iterator,
    encode_iterator,
    iterator_key,
    parse_sequence_number,
    parse_stream_arn,
    record_wire,
    sequence_number,
    streams_of,
    wire_bytes,
)

INVALID: Final = "One or more parameter values were invalid: "
MAX_STREAMS: Final = 100  # ListStreams' Limit and default
MAX_SHARDS: Final = 100  # DescribeStream's Limit and default
ITERATOR_TYPES: Final = (
    "TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP",
)
_BY_SEQUENCE: Final = ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")
STREAM_ARN_MIN, STREAM_ARN_MAX = 37, 1024
SHARD_ID_MIN, SHARD_ID_MAX = 28, 65
SEQUENCE_MIN, SEQUENCE_MAX = 21, 40
_READ_CHUNK: Final = 32  # log records read at a time (items can be 400 KB each)


# --- finding streams ---------------------------------------------------------------------------


def find_stream(engine: Engine, arn: str) -> Stream:
    """The stream an ARN names; ValidationException when it is no stream ARN at all."""
    parsed = parse_stream_arn(arn)
    if parsed is None:
        raise ValidationException("Invalid StreamArn")
    table = engine.catalog.get(parsed[0])
    if table is not None:
        for stream in streams_of(table, engine.clock()):
            if stream.arn == arn:
                return stream
    raise ResourceNotFoundException(f"Requested resource not found: Stream: {arn} not found")


def _key_schema(stream: Stream) -> list[dict[str, str]]:
    schema = stream.table.key_schema
    wire = [{"AttributeName": schema.hash.name, "KeyType": "HASH"}]
    if schema.range is not None:
        wire.append({"AttributeName": schema.range.name, "KeyType": "RANGE"})
    return wire


# --- ListStreams ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListStreamsRequest:
    table_name: str | None
    limit: int
    exclusive_start: tuple[str, str] | None  # (table name, label)


def parse_list_streams(body: dict[str, Any]) -> ListStreamsRequest:
    m = Members(body)
    name = m.string("TableName", min_len=3, max_len=255, pattern=TABLE_NAME_PATTERN)
    limit = m.integer("Limit", minimum=1)
    start = m.string("ExclusiveStartStreamArn", min_len=STREAM_ARN_MIN, max_len=STREAM_ARN_MAX)
    m.done()
    if limit is not None and limit > MAX_STREAMS:
        raise ValidationException(
            INVALID + f"Limit cannot be greater than the maximum allowed size: {MAX_STREAMS}"
        )
    exclusive_start = None
    if start is not None:
        exclusive_start = parse_stream_arn(start)
        if exclusive_start is None:
            raise ValidationException("Invalid ExclusiveStartStreamArn")
    return ListStreamsRequest(name, limit or MAX_STREAMS, exclusive_start)


async def list_streams(engine: Engine, request: ListStreamsRequest) -> WireResult:
    now = engine.clock()
    if request.table_name is not None:
        table = engine.catalog.get(request.table_name)
        if table is None:
            raise ResourceNotFoundException(
                f"Requested resource not found: Table: {request.table_name} not found"
            )
        tables = [table]
    else:
        tables = engine.catalog.all()
    streams = sorted(
        (stream for table in tables for stream in streams_of(table, now)), key=Stream.sort_key
    )
    if request.exclusive_start is not None:
        streams = [s for s in streams if s.sort_key() > request.exclusive_start]
    page = streams[: request.limit]
    body: dict[str, Any] = {
        "Streams": [
            {"StreamArn": s.arn, "TableName": s.table.name, "StreamLabel": s.label} for s in page
        ]
    }
    if len(streams) > request.limit:
        body["LastEvaluatedStreamArn"] = page[-1].arn
    return WireResult(body)


# --- DescribeStream --------------------------------------------------------------------------


@dataclass(frozen=True)
class DescribeStreamRequest:
    stream_arn: str
    limit: int
    exclusive_start_shard: str | None
    child_shards_of: str | None  # ShardFilter CHILD_SHARDS


def parse_describe_stream(body: dict[str, Any]) -> DescribeStreamRequest:
    m = Members(body)
    arn = m.string("StreamArn", required=True, min_len=STREAM_ARN_MIN, max_len=STREAM_ARN_MAX)
    limit = m.integer("Limit", minimum=1)
    start = m.string("ExclusiveStartShardId", min_len=SHARD_ID_MIN, max_len=SHARD_ID_MAX)
    shard_filter = m.mapping("ShardFilter")
    parent = None
    if shard_filter is not None:
        f = m.nested("ShardFilter", shard_filter)
        f.string("Type", required=True, enum=("CHILD_SHARDS",))
        parent = f.string("ShardId", required=True, min_len=SHARD_ID_MIN, max_len=SHARD_ID_MAX)
    m.done()
    if limit is not None and limit > MAX_SHARDS:
        raise ValidationException(INVALID + f"Limit cannot be greater than the maximum: {MAX_SHARDS}")
    assert arn is not None
    return DescribeStreamRequest(arn, limit or MAX_SHARDS, start, parent)


def describe_shard(stream: Stream) -> dict[str, Any]:
    """A stream's one shard; closed (with its ending sequence number) once disabled."""
    numbers = {"StartingSequenceNumber": sequence_number(stream.first + 1)}
    if stream.end is not None:
        numbers["EndingSequenceNumber"] = sequence_number(max(stream.end, stream.first + 1))
    return {"ShardId": stream.shard_id, "SequenceNumberRange": numbers}


async def describe_stream(engine: Engine, request: DescribeStreamRequest) -> WireResult:
    stream = find_stream(engine, request.stream_arn)
    # One shard per stream, and it has no parent, so a CHILD_SHARDS filter finds none.
    shards = [] if request.child_shards_of is not None else [describe_shard(stream)]
    if request.exclusive_start_shard is not None:
        shards = [s for s in shards if s["ShardId"] > request.exclusive_start_shard]
    page = shards[: request.limit]
    description: dict[str, Any] = {
        "StreamArn": stream.arn,
        "StreamLabel": stream.label,
        "StreamStatus": "ENABLED" if stream.end is None else "DISABLED",
        "StreamViewType": stream.view_type,
        "CreationRequestDateTime": stream.created,
        "TableName": stream.table.name,
        "KeySchema": _key_schema(stream),
        "Shards": page,
    }
    if len(shards) > request.limit:
        description["LastEvaluatedShardId"] = page[-1]["ShardId"]
    return WireResult({"StreamDescription": description})


# --- GetShardIterator --------------------------------------------------------------------------


@dataclass(frozen=True)
class GetShardIteratorRequest:
    stream_arn: str
    shard_id: str
    iterator_type: str
    sequence: int | None  # the log sequence SequenceNumber names
    timestamp_ms: int | None  # AT_TIMESTAMP's Timestamp


def parse_get_shard_iterator(body: dict[str, Any]) -> GetShardIteratorRequest:
    m = Members(body)
    arn = m.string("StreamArn", required=True, min_len=STREAM_ARN_MIN, max_len=STREAM_ARN_MAX)
    shard = m.string("ShardId", required=True, min_len=SHARD_ID_MIN, max_len=SHARD_ID_MAX)
    kind = m.string("ShardIteratorType", required=True, enum=ITERATOR_TYPES)
    number = m.string("SequenceNumber", min_len=SEQUENCE_MIN, max_len=SEQUENCE_MAX)
    timestamp = body.get("Timestamp")
    m.done()
    assert arn is not None and shard is not None and kind is not None
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int | float)):
        raise ValidationException(INVALID + "Invalid Timestamp")
    _check_position_members(kind, number, timestamp)
    sequence = None
    if number is not None:
        sequence = parse_sequence_number(number)
        if sequence is None:
            raise ValidationException(INVALID + f"Invalid SequenceNumber: {number}")
    millis = None if timestamp is None else int(timestamp * 1000)
    return GetShardIteratorRequest(arn, shard, kind, sequence, millis)


def _check_position_members(kind: str, number: str | None, timestamp: Any) -> None:
    if kind in _BY_SEQUENCE and number is None:
        raise ValidationException(INVALID + "Invalid SequenceNumber")
    if kind not in _BY_SEQUENCE and number is not None:
        raise ValidationException(
            INVALID + "SequenceNumber should not be passed for this iterator type"
        )
    if kind == "AT_TIMESTAMP" and timestamp is None:
        raise ValidationException(INVALID + "Invalid Timestamp")
    if kind != "AT_TIMESTAMP" and timestamp is not None:
        raise ValidationException(INVALID + "Timestamp should not be passed for this iterator type")


def _retained_after(reader: Reader, position: int, last: int) -> int:
    """The first sequence after ``position`` still in the log (``last`` + 1 when none is)."""
    records = reader.log(position, 1)
    return records[0].sequence if records else last + 1


def start_position(
    reader: Reader, stream: Stream, request: GetShardIteratorRequest, now_ms: int
) -> int:
    """Where a new iterator starts: the records after the returned sequence come next."""
    last = reader.stats().last_sequence  # before any log read: see the module docstring
    top = stream.top(last)
    kind = request.iterator_type
    if kind == "LATEST":
        return top
    if kind in ("TRIM_HORIZON", "AT_TIMESTAMP"):
        # The oldest record still in the log, or the shard's end when all are trimmed.
        horizon = min(top, max(stream.first, _retained_after(reader, stream.first, last) - 1))
        if kind == "TRIM_HORIZON":
            return horizon
        assert request.timestamp_ms is not None
        if request.timestamp_ms > now_ms:
            raise ValidationException(INVALID + "Timestamp cannot be in the future")
        return _first_at_or_after(reader, horizon, top, request.timestamp_ms) - 1
    sequence = request.sequence
    assert sequence is not None
    if not stream.first < sequence <= top:
        raise ValidationException(
            INVALID + f"Invalid SequenceNumber {sequence_number(sequence)} for shard "
            f"{stream.shard_id}"
        )
    if _retained_after(reader, sequence - 1, last) > sequence:
        raise TrimmedDataAccessException()
    return sequence - 1 if kind == "AT_SEQUENCE_NUMBER" else sequence


def _first_at_or_after(reader: Reader, position: int, top: int, millis: int) -> int:
    """The first sequence in (position, top] written at or after ``millis`` (top + 1 if none).

    Binary search: the log's timestamps grow with its sequence numbers.
    """
    low, high = position + 1, top + 1
    while low < high:
        middle = (low + high) // 2
        records = reader.log(middle - 1, 1)
        if records and records[0].timestamp_ms < millis:
            low = records[0].sequence + 1
        else:
            high = middle
    return low


async def get_shard_iterator(engine: Engine, request: GetShardIteratorRequest) -> WireResult:
    stream = find_stream(engine, request.stream_arn)
    if request.shard_id != stream.shard_id:
        raise ResourceNotFoundException("Requested resource not found: Shard does not exist")
    now_ms = engine.now_ms()
    position = start_position(engine.reader(stream.table), stream, request, now_ms)
    iterator = ShardIterator(stream.arn, position, now_ms)
    key = iterator_key(engine.config.data_dir)
    return WireResult({"ShardIterator": encode_iterator(key, iterator)})


# --- GetRecords --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetRecordsRequest:
    shard_iterator: str
    limit: int


def parse_get_records(body: dict[str, Any]) -> GetRecordsRequest:
    m = Members(body)
    iterator = m.string("ShardIterator", required=True, min_len=1, max_len=2048)
    limit = m.integer("Limit", minimum=1)
    m.done()
    if limit is not None and limit > MAX_RECORDS:
        raise ValidationException(INVALID + f"Limit should be less than or equal to {MAX_RECORDS}")
    assert iterator is not None
    return GetRecordsRequest(iterator, limit or MAX_RECORDS)


def read_shard(reader: Reader, stream: Stream, position: int, limit: int) -> list[StoredRecord]:
    """The records after ``position``: at most ``limit`` and about 1 MB of them.

    TrimmedDataAccessException when the next records were trimmed.  The log is
    read a few records at a time, so that large items never load more than
    the answer needs.
    """
    last = reader.stats().last_sequence  # before the log read: see the module docstring
    end = stream.end
    if end is not None and position >= end:
        return []
    records = reader.log(position, min(limit, _READ_CHUNK))
    if position < (last if end is None else end):
        first = records[0].sequence if records else last + 1
        if first > position + 1:
            raise TrimmedDataAccessException()
    taken: list[StoredRecord] = []
    budget = MAX_RESPONSE_BYTES
    while records:
        for record in records:
            budget -= wire_bytes(record, stream.view_type)
            if (end is not None and record.sequence > end) or (budget < 0 and taken):
                return taken
            taken.append(record)
        if len(taken) >= limit or len(records) < _READ_CHUNK:
            return taken
        records = reader.log(taken[-1].sequence, min(limit - len(taken), _READ_CHUNK))
    return taken


async def get_records(engine: Engine, request: GetRecordsRequest) -> WireResult:
    key = iterator_key(engine.config.data_dir)
    iterator = decode_iterator(key, request.shard_iterator)
    now_ms = engine.now_ms()
    check_fresh(iterator, now_ms)
    stream = find_stream(engine, iterator.arn)
    stored = read_shard(engine.reader(stream.table), stream, iterator.position, request.limit)
    table = stream.table
    records = [record_wire(r, stream.view_type, table.region, table.table_id) for r in stored]
    position = stored[-1].sequence if stored else iterator.position
    body: dict[str, Any] = {"Records": records}
    if stream.end is None or position < stream.end:
        next_iterator = ShardIterator(stream.arn, position, now_ms)
        body["NextShardIterator"] = encode_iterator(key, next_iterator)
    return WireResult(body)


OPERATIONS = {
    op.name: op
    for op in (
        Operation("ListStreams", parse_list_streams, list_streams),
        Operation("DescribeStream", parse_describe_stream, describe_stream),
        Operation("GetShardIterator", parse_get_shard_iterator, get_shard_iterator),
        Operation("GetRecords", parse_get_records, get_records),
    )
}
