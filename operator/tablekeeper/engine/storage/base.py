"""The storage seam: what the engine needs from an embedded store.

Everything above this module speaks in opaque byte keys and values; storage
trusts its inputs (validation happened at the edge) and promises only:

* ``write(fn)`` runs ``fn(txn)`` serially with every other write, atomically:
  either all of fn's writes happen or none do.  When the awaitable returns,
  the writes are durable to the level the store was opened with.  An
  exception raised by ``fn`` undoes fn's writes and is re-raised to the
  caller; other writers are not affected.
* the change-log record of an item write is appended in the same transaction
  as the item, and gets the table's next sequence number (strictly
  increasing, never reused, even after a crash).
* ``reader(table)`` reads committed data; ``snapshot()`` pins one consistent
  point for several reads while writers go on.

Missing things are ``None`` (never an exception); a table id that is not open
raises ``TableMissing``, and one whose file could not be opened (``unreadable``)
``TableUnreadable``.  Any other failure of the store (disk full, I/O
error, corruption) raises ``StorageError`` with the cause.

Spaces name the keyed collections inside a table: ``ITEMS`` for the items
themselves and one space per secondary index (``index:<name>``).  A space
exists from its first ``put`` until ``drop_space``.  For every other space
than ``ITEMS`` storage keeps two counters in the same transaction as the
entries, read with ``Reader.space_stats``: how many entries the space holds
and the sum of ``measure(space, value)`` over them, where ``measure`` is the
function the store was opened with (by default the value's length).  Storage
reads the old value of an entry it overwrites or deletes to keep them exact,
so callers never say whether an entry existed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")

ITEMS = "items"


def index_space(index_name: str) -> str:
    return f"index:{index_name}"


# How storage sizes an entry of a space for SpaceStats.bytes: (space, value) -> bytes.
Measure = Callable[[str, bytes], int]


def measure_length(space: str, value: bytes) -> int:
    """The default Measure: the stored value's length."""
    return len(value)


class StorageError(Exception):
    """The store failed (I/O error, disk full, corruption): "verb object: cause"."""


class TableMissing(StorageError):
    """The table id is not open in this store."""


class TableUnreadable(StorageError):
    """The table's file could not be opened at startup (corrupt, or gone from outside the engine).

    Every read and write of it fails with this until the file is put back or the table dropped;
    the store's other tables go on.
    """


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One change-log record as the engine hands it to storage.

    ``keys``, ``old`` and ``new`` are the engine's serialized key and images
    (``None`` when there was no item before / after).  ``origin`` says who
    wrote: ``None`` for a client, ``"ttl"`` for expiry, ``"region:<name>"``
    for a replicated write.
    """

    timestamp_ms: int
    keys: bytes
    old: bytes | None
    new: bytes | None
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A change-log record as read back, with its sequence number."""

    sequence: int
    timestamp_ms: int
    keys: bytes
    old: bytes | None
    new: bytes | None
    origin: str | None


@dataclass(frozen=True, slots=True)
class TableStats:
    item_count: int
    item_bytes: int
    last_sequence: int


@dataclass(frozen=True, slots=True)
class SpaceStats:
    """A non-item space's counters: its entries and their measured size (see Measure)."""

    entries: int
    bytes: int


class WriteTxn(Protocol):
    """What a write function may do; valid only inside ``Storage.write``."""

    def get(self, table: str, key: bytes, space: str = ITEMS) -> bytes | None: ...

    def put_item(
        self,
        table: str,
        key: bytes,
        value: bytes | None,
        record: LogRecord | None,
        count_delta: int,
        size_delta: int,
    ) -> int | None:
        """Set (or, with value None, delete) an item and append its log record.

        Returns the record's sequence number (None when ``record`` is None:
        a write that changed nothing logs nothing).  The deltas keep the
        table's item count and size for DescribeTable.
        """
        ...

    def put(self, table: str, space: str, key: bytes, value: bytes, measured: int | None = None) -> None:
        """Set an entry of a non-item space (an index entry), creating the space if need be.

        ``measured``: the value's ``measure``, when the caller has it at hand
        (it just built the value); storage measures the value otherwise.
        """
        ...

    def delete(self, table: str, space: str, key: bytes) -> None:
        """Delete an entry; a missing entry or space is not an error."""
        ...

    def drop_space(self, table: str, space: str) -> None:
        """Remove a non-item space with all its entries and counters at once.

        A missing space is not an error.  Only in a write to one table (a
        write with ``tables`` > 1 raises StorageError): recovery of
        cross-table writes replays entries, not drops.
        """
        ...

    def trim_log(self, table: str, before_ms: int, limit: int, keep_from: int | None = None) -> int:
        """Delete up to ``limit`` of the oldest log records timestamped before ``before_ms``.

        Stops at the first record that is not old enough, or whose sequence
        number is ``keep_from`` or more (someone still needs it), so the log
        always stays a contiguous run of sequence numbers.  Returns how many went.
        """
        ...


class Reader(Protocol):
    """Reads of one table's committed data."""

    def get(self, key: bytes, space: str = ITEMS) -> bytes | None: ...

    def get_many(self, keys: Sequence[bytes], space: str = ITEMS) -> dict[bytes, bytes]:
        """The values of those ``keys`` that exist, read together (one round for many point reads)."""
        ...

    def range(
        self,
        low: bytes | None,
        high: bytes | None,
        *,
        space: str = ITEMS,
        reverse: bool = False,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with low <= key < high (bounds as flagged), in key order.

        ``None`` bounds are open.  The iterator reads lazily and must be
        exhausted or closed before the next write on the loop thread.
        """
        ...

    def snapshot(self) -> AbstractContextManager[Reader]:
        """A reader pinned to one consistent point until the context exits."""
        ...

    def log(self, after: int, limit: int) -> list[StoredRecord]:
        """Change-log records with sequence > after, oldest first."""
        ...

    def stats(self) -> TableStats: ...

    def space_stats(self, space: str) -> SpaceStats:
        """The committed counters of a space; SpaceStats(0, 0) when it does not exist."""
        ...


class Storage(Protocol):
    def create_table(self, table: str) -> None:
        """Create an empty table; an existing one with that id is an error."""
        ...

    def drop_table(self, table: str) -> Awaitable[None]:
        """Remove a table and its data after pending writes to it finish."""
        ...

    def tables(self) -> list[str]: ...

    def unreadable(self, table: str) -> str | None:
        """Why the table's file could not be opened, or None when it is open (or unknown)."""
        ...

    def expect_tables(self, tables: Iterable[str]) -> None:
        """At startup: ``tables`` should all have files; those without become unreadable."""
        ...

    def write(self, fn: Callable[[WriteTxn], T], *, tables: int = 1) -> Awaitable[T]:
        """Run ``fn`` atomically and durably; ``tables`` > 1 when fn writes several."""
        ...

    def reader(self, table: str) -> Reader: ...

    def bulk_load(
        self,
        table: str,
        entries: Iterable[tuple[str, bytes, bytes]],
        item_size: Callable[[bytes], int],
        progress: Callable[[int], None] | None = None,
    ) -> Awaitable[TableStats]:
        """Fill a new, empty table that no write touches meanwhile (a restore).

        ``entries`` yields (space, key, value) and is consumed on a worker
        thread, so it may be slow (read a vault).  Items count toward the
        table's item count and ``item_size(value)`` toward its size; other
        spaces are counted as writes count them.  Nothing goes into the change
        log.  ``progress`` gets the entries loaded so far, from that thread.
        Returns the table's stats once everything is durable.  If it raises
        (the entries' own error, or StorageError), the table holds a part:
        drop it.
        """
        ...

    def close(self) -> None: ...
