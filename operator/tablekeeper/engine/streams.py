"""DynamoDB Streams on the change log: streams, shards, sequence numbers, iterators, records.

A stream is an epoch of a table's change log (DESIGN.md, "The change log is
the truth").  Enabling a stream records the log's last sequence number; the
stream covers every record after it, and when it is disabled it records its
last one too.  Records are read straight from the committed log, so a write
is readable the moment it is acknowledged, and nothing is written twice.

Shard layout: one shard per stream.  DynamoDB splits a stream into shards
because its tables are spread over partitions and it rolls them every few
hours; here a table's log is one totally ordered sequence from one writer, so
one shard carries every record of the stream in commit order.  That makes
"each item's records in order" hold by construction, gives consumers one
iterator per stream, and needs no index of the log by time (which rolling by
the clock would).  The shard is open while the stream is enabled and closed,
with an EndingSequenceNumber, once it is disabled.

Sequence numbers are the log's sequence plus 10^20, as decimal strings: 21
digits that sort the same numerically and as text, and are stable across
restarts because the log's sequence is.

A shard iterator is ``<stream arn>|1|<base64>``: the base64 holds the log
position (records after it come next), the issue time in ms and an
HMAC-SHA256 over both and the ARN, keyed by the engine's secret
(``streams.key`` in the data directory).  A changed byte makes it invalid;
fifteen minutes after issue it has expired.

Everything here is pure, except :func:`iterator_key`, which reads (or creates
once) the engine's secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from tablekeeper.engine.errors import ExpiredIteratorException, ValidationException
from tablekeeper.engine.sizes import stored_item_size
from tablekeeper.engine.storage.base import StoredRecord
from tablekeeper.engine.tables import StreamSpec, TableDefinition

log = logging.getLogger(__name__)

SEQUENCE_BASE: Final = 10**20
RETENTION_SECONDS: Final = 24 * 60 * 60
ITERATOR_LIFETIME_MS: Final = 15 * 60 * 1000
MAX_RECORDS: Final = 1000  # GetRecords' Limit and default
MAX_RESPONSE_BYTES: Final = 1 << 20  # "a maximum of 1 MB of data or 1000 stream records"

EVENT_VERSION: Final = "1.1"
EVENT_SOURCE: Final = "aws:dynamodb"
TTL_ORIGIN: Final = "ttl"
TTL_IDENTITY: Final = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

NEW_VIEWS: Final = frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"})
OLD_VIEWS: Final = frozenset({"OLD_IMAGE", "NEW_AND_OLD_IMAGES"})

_ARN = re.compile(
    r"arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([a-zA-Z0-9_.-]{3,255})"
    r"/stream/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})"
)
_KEY_FILE: Final = "streams.key"
_KEY_BYTES: Final = 32
_MAC_BYTES: Final = 16
_PAYLOAD: Final = struct.Struct(">QQ")  # position, issued ms
_ITERATOR_VERSION: Final = "1"


# --- sequence numbers ---------------------------------------------------------------------


def sequence_number(sequence: int) -> str:
    """The Streams sequence number of a change-log record."""
    return str(SEQUENCE_BASE + sequence)


def parse_sequence_number(text: str) -> int | None:
    """The change-log sequence a sequence number names, or None when it names none."""
    if not text.isascii() or not text.isdigit():
        return None
    sequence = int(text) - SEQUENCE_BASE
    return sequence if sequence > 0 else None


# --- streams and their shard ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stream:
    """One stream of a table as the Streams API shows it."""

    table: TableDefinition
    spec: StreamSpec

    @property
    def label(self) -> str:
        assert self.spec.label is not None
        return self.spec.label

    @property
    def arn(self) -> str:
        return stream_arn(self.table, self.label)

    @property
    def view_type(self) -> str:
        return self.spec.view_type or "KEYS_ONLY"

    @property
    def first(self) -> int:
        """The log position the stream starts after."""
        return self.spec.first_sequence

    @property
    def end(self) -> int | None:
        """The last sequence of a closed stream (None while it is open)."""
        if self.spec.enabled:
            return None
        # A stream disabled before streams recorded their end: treat it as empty.
        return self.spec.last_sequence if self.spec.last_sequence is not None else self.first

    def top(self, last_committed: int) -> int:
        """The last sequence the shard holds now."""
        return self.end if self.end is not None else last_committed

    @property
    def shard_id(self) -> str:
        return shard_id(self.table.table_id, self.label)

    @property
    def created(self) -> float:
        return label_time(self.label)

    def sort_key(self) -> tuple[str, str]:
        return (self.table.name, self.label)


def stream_arn(table: TableDefinition, label: str) -> str:
    return f"{table.arn}/stream/{label}"


def parse_stream_arn(arn: str) -> tuple[str, str] | None:
    """(table name, label) of a stream ARN, or None when it is not one."""
    match = _ARN.fullmatch(arn)
    return None if match is None else (match.group(1), match.group(2))


def label_time(label: str) -> float:
    """The epoch time a stream label names (its creation time)."""
    t = datetime.strptime(label, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return round(t.timestamp(), 3)


def shard_id(table_id: str, label: str) -> str:
    """DynamoDB's shard id shape: creation time in ms (20 digits) and 8 hex digits."""
    millis = round(label_time(label) * 1000)
    digest = hashlib.sha256(f"{table_id}/{label}".encode()).hexdigest()[:8]
    return f"shardId-{millis:020d}-{digest}"


def is_listed(spec: StreamSpec, now: float) -> bool:
    """Whether a stream still exists: enabled, or disabled less than 24 h ago."""
    if spec.label is None:
        return False
    if spec.enabled or spec.disabled_at is None:
        return True
    return now - spec.disabled_at < RETENTION_SECONDS


def streams_of(table: TableDefinition, now: float) -> list[Stream]:
    """The table's streams that still exist, oldest first."""
    specs = [*reversed(table.past_streams)]
    if table.stream is not None:
        specs.append(table.stream)
    return [Stream(table, spec) for spec in specs if is_listed(spec, now)]


def kept_past_streams(table: TableDefinition, latest: StreamSpec, now: float) -> tuple[StreamSpec, ...]:
    """The table's past streams once ``latest`` replaces its latest stream: those still listed."""
    kept = table.past_streams
    previous = table.stream
    if previous is not None and previous.label is not None and previous.label != latest.label:
        kept = (previous, *kept)
    return tuple(spec for spec in kept if is_listed(spec, now))


def enabled_stream(view_type: str | None, label: str, last_sequence: int) -> StreamSpec:
    """A stream enabled now: it covers the records after the log's ``last_sequence``."""
    return StreamSpec(True, view_type, label, first_sequence=last_sequence)


def disabled_stream(current: StreamSpec, last_sequence: int, now: float) -> StreamSpec:
    """``current`` disabled now: it ends at the log's ``last_sequence``."""
    return StreamSpec(
        False, current.view_type, current.label, current.first_sequence,
        last_sequence=max(last_sequence, current.first_sequence), disabled_at=now,
    )


# --- shard iterators --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardIterator:
    """A position in a stream's shard: the records after ``position`` come next."""

    arn: str
    position: int
    issued_ms: int


def _mac(key: bytes, arn: str, payload: bytes) -> bytes:
    return hmac.new(key, arn.encode() + b"|" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_iterator(key: bytes, iterator: ShardIterator) -> str:
    payload = _PAYLOAD.pack(iterator.position, iterator.issued_ms)
    token = base64.b64encode(payload + _mac(key, iterator.arn, payload)).decode()
    return f"{iterator.arn}|{_ITERATOR_VERSION}|{token}"


def decode_iterator(key: bytes, text: str) -> ShardIterator:
    """The iterator ``text`` encodes, or ValidationException when it is not one of ours."""
    arn, _, rest = text.partition("|")
    version, _, token = rest.partition("|")
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if (
        version != _ITERATOR_VERSION
        or len(raw) != _PAYLOAD.size + _MAC_BYTES
        or not hmac.compare_digest(mac, _mac(key, arn, payload))
    ):
        raise ValidationException("Invalid ShardIterator")
    position, issued_ms = _PAYLOAD.unpack(payload)
    return ShardIterator(arn, position, issued_ms)


def check_fresh(iterator: ShardIterator, now_ms: int) -> None:
    """ExpiredIteratorException once the iterator is more than 15 minutes old."""
    if now_ms - iterator.issued_ms > ITERATOR_LIFETIME_MS:
        raise ExpiredIteratorException()


def iterator_key(data_dir: Path) -> bytes:
    """The engine's iterator secret, created on first use (temp file, fsync, rename)."""
    path = data_dir / _KEY_FILE
    key = _keys.get(path)
    if key is None:
        key = _keys[path] = _load_or_make_key(path)
    return key


_keys: dict[Path, bytes] = {}  # read once per data directory and process


def _load_or_make_key(path: Path) -> bytes:
    data_dir = path.parent
    try:
        key = path.read_bytes()
        if len(key) == _KEY_BYTES:
            return key
        log.warning("%s has the wrong length; making a new one (older iterators stop working)", path)
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(_KEY_BYTES)
    temp = path.with_name(f".{_KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return key


# --- records ------------------------------------------------------------------------------


def event_name(record: StoredRecord) -> str:
    if record.old is None:
        return "INSERT"
    if record.new is None:
        return "REMOVE"
    return "MODIFY"


def event_id(table_id: str, sequence: int) -> str:
    """A record's eventID: unique, and the same every time the record is read."""
    return hashlib.blake2b(f"{table_id}/{sequence}".encode(), digest_size=16).hexdigest()


def stored_size(blob: bytes) -> int:
    """DynamoDB's size of a stored item or key (values.item_size), read from its wire JSON."""
    return stored_item_size(orjson.loads(blob))


def record_wire(record: StoredRecord, view_type: str, region: str, table_id: str) -> dict[str, Any]:
    """A change-log record as a Streams record; the stored images are spliced, not re-encoded."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": record.timestamp_ms // 1000,
        "Keys": orjson.Fragment(record.keys),
    }
    size = stored_size(record.keys)
    if record.new is not None and view_type in NEW_VIEWS:
        body["NewImage"] = orjson.Fragment(record.new)
        size += stored_size(record.new)
    if record.old is not None and view_type in OLD_VIEWS:
        body["OldImage"] = orjson.Fragment(record.old)
        size += stored_size(record.old)
    body["SequenceNumber"] = sequence_number(record.sequence)
    body["SizeBytes"] = size
    body["StreamViewType"] = view_type
    wire: dict[str, Any] = {
        "eventID": event_id(table_id, record.sequence),
        "eventName": event_name(record),
        "eventVersion": EVENT_VERSION,
        "eventSource": EVENT_SOURCE,
        "awsRegion": region,
        "dynamodb": body,
    }
    if record.origin == TTL_ORIGIN:
        wire["userIdentity"] = dict(TTL_IDENTITY)
    return wire


def wire_bytes(record: StoredRecord, view_type: str) -> int:
    """About how many bytes a record adds to a GetRecords response (for its 1 MB limit)."""
    size = 300 + len(record.keys)
    if record.new is not None and view_type in NEW_VIEWS:
        size += len(record.new)
    if record.old is not None and view_type in OLD_VIEWS:
        size += len(record.old)
    return size
