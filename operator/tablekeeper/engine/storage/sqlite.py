"""SQLite storage: one WAL database per table, one writer thread, group commit.

Why this shape:

* One file per table keeps tables apart on disk (drop = delete a file, a
  backup reads one file's snapshot) and leaves room to split a table later.
* All writes run on one writer thread, one after another, so a conditional
  write's read-check-write is atomic without locks.  The thread takes every
  write queued while it was busy as one *batch*: one transaction per touched
  table, one commit (and so one fsync) per table per batch, however many
  clients wrote.  That is group commit: concurrent writers share the fsync.
* Each write function runs inside a SAVEPOINT so that its failure undoes only
  its own writes.  A write is acknowledged (its future resolved) only after
  every table it touched has committed.
* A write function that touches several tables (a transaction across tables)
  runs in a batch of its own and first records its physical writes in
  ``redo.db``; after a crash, recovery re-applies them to every table whose
  commit did not happen, so such a write is all-or-nothing across files.

Durability: ``POWER_LOSS`` (default) uses ``synchronous=FULL``: a commit is
fsynced before it is acknowledged.  ``PROCESS_CRASH`` uses ``synchronous=
NORMAL``: a commit reaches the OS before it is acknowledged, so it survives
the process being killed but not the machine losing power.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import functools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from tablekeeper.engine.storage import writeback
from tablekeeper.engine.storage.base import (
    ITEMS,
    LogRecord,
    Measure,
    SpaceStats,
    StorageError,
    StoredRecord,
    TableMissing,
    TableStats,
    TableUnreadable,
    measure_length,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, keys BLOB NOT NULL,
    old BLOB, new BLOB, origin TEXT);
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0), item_count INTEGER NOT NULL,
    item_bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL, last_batch INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES (0, 0, 0, 0, 0);
CREATE TABLE IF NOT EXISTS spaces (name TEXT PRIMARY KEY, tbl TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS space_stats (
    name TEXT PRIMARY KEY, entries INTEGER NOT NULL, bytes INTEGER NOT NULL);
"""

_REDO_SCHEMA = """
CREATE TABLE IF NOT EXISTS redo_ops (
    batch INTEGER NOT NULL, n INTEGER NOT NULL, tbl TEXT NOT NULL, space TEXT NOT NULL,
    k BLOB NOT NULL, v BLOB, PRIMARY KEY (batch, n));
CREATE TABLE IF NOT EXISTS redo_log (
    batch INTEGER NOT NULL, tbl TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
    keys BLOB NOT NULL, old BLOB, new BLOB, origin TEXT, PRIMARY KEY (batch, tbl, seq));
CREATE TABLE IF NOT EXISTS redo_meta (
    batch INTEGER NOT NULL, tbl TEXT NOT NULL, item_count INTEGER NOT NULL,
    item_bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL, PRIMARY KEY (batch, tbl));
"""


CHECKPOINT_EVERY = 100  # commits of a table between two WAL checkpoints
CHECKPOINT_PASSES = 4  # at most, in one background checkpoint
CHECKPOINT_FEW_FRAMES = 64  # a pass that copied fewer is the background's last
# Bytes a table's WAL file is cut back to when it starts over; a busy table's WAL is ~26 MB
# between checkpoints (docs/benchmarks.md), which this leaves alone.
WAL_SIZE_LIMIT = 64 * 2**20
_LOAD_BATCH = 20_000  # rows per transaction of a bulk load


class Durability(enum.Enum):
    POWER_LOSS = "power-loss"  # fsync before acknowledging
    PROCESS_CRASH = "process-crash"  # survives kill -9, not a power cut


@functools.cache
def _space_table(space: str) -> str:
    # Index names allow characters SQL identifiers do not; hex keeps them safe.
    return "items" if space == ITEMS else "s_" + space.encode().hex()


@functools.cache
def _entry_statements(space: str) -> tuple[str, str, str]:
    """Adding, reading and replacing an entry of an index space (built once: writes are hot)."""
    name = _space_table(space)
    return (
        f"INSERT INTO {name} VALUES (?, ?) ON CONFLICT (k) DO NOTHING",
        f"SELECT v FROM {name} WHERE k = ?",
        f"UPDATE {name} SET v = ? WHERE k = ?",
    )


_SELECT_ITEM = "SELECT v FROM items WHERE k = ?"
_NO_ENTRIES: Final = (0, 0)
# Keys per statement of Reader.get_many: far below SQLite's limit on bound parameters.
_MANY_AT_ONCE = 500


def _select_value(space: str) -> str:
    # Built once: point reads are the hot path.
    return _SELECT_ITEM if space == ITEMS else _entry_statements(space)[1]


@contextlib.contextmanager
def opening(path: Path) -> Iterator[None]:
    """Around the opening of one of the engine's own databases (the catalog, redo, backup and PITR
    records): a file SQLite cannot use becomes a StorageError naming it, and the engine stops with
    that one line instead of a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"open {path}: {exc} (the engine cannot start without it)") from exc


def connect_state(path: Path) -> sqlite3.Connection:
    """One of the engine's own small databases (catalog, backup and PITR records): WAL, and every
    change a synchronous, fsynced transaction."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _connect(path: Path, durability: Durability) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    sync = "FULL" if durability is Durability.POWER_LOSS else "NORMAL"
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("PRAGMA cache_size=-16384")
    conn.execute("PRAGMA mmap_size=268435456")
    # A write's savepoint journal stays in memory: past 64 KB (a BatchWriteItem of 25 items
    # reaches it) SQLite would spill it to a temporary file, a write per page. A request is at
    # most 16 MB, so the journal of one write stays within a few tens of MB.
    conn.execute("PRAGMA temp_store=MEMORY")
    # SQLite reuses a WAL file from its start and never shrinks it by itself: a WAL grown
    # while a long read (a backup's snapshot) held it back would keep its size for good.
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    return conn


def _sync(path: Path) -> None:
    """fsync a file or directory through a descriptor of our own (a sync is per file, not per descriptor).

    A table file's data is synced by ``writeback.flush``.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoint_in_passes(conn: sqlite3.Connection, path: Path) -> int:
    """Copy a table's WAL into its database file and sync that file, without blocking writers;
    returns the passes it took.

    A sync takes tens of ms under load, and the frames written meanwhile are left for the
    finishing pass (on the committer, while writes wait) to copy and sync.  So this passes
    again while its last pass copied many frames, and the finishing pass has few left.
    """
    copied = passes = 0
    while passes < CHECKPOINT_PASSES:
        passes += 1
        _, _, total = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        writeback.flush(path)
        # Fewer in all than before: the WAL started over after the last pass, so all are new.
        if (total - copied if total >= copied else total) < CHECKPOINT_FEW_FRAMES:
            break
        copied = total
    return passes


@dataclass
class _Counters:
    item_count: int
    item_bytes: int
    last_seq: int


@dataclass
class _TableFile:
    table: str
    path: Path
    writer: sqlite3.Connection
    reader: sqlite3.Connection
    counters: _Counters
    spaces: set[str]
    # Entries and measured bytes of each non-item space, as of the writes so far (plain
    # pairs: every index write replaces one); ``dirty_spaces`` are those whose row in
    # ``space_stats`` the next commit rewrites.
    space_stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    dirty_spaces: set[str] = field(default_factory=set)
    in_batch: bool = False
    dropped: bool = False
    # WAL checkpoints run apart from commits (see SqliteStorage._maybe_checkpoint).
    commits: int = 0
    checkpoint: asyncio.Future[None] | None = None
    checkpointer: sqlite3.Connection | None = None
    finish_checkpoint: bool = False

    def close(self) -> None:
        for conn in (self.writer, self.reader, self.checkpointer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()


@dataclass
class _Request:
    fn: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    solo: bool
    touched: set[str] = field(default_factory=set)


class _Txn:
    """The WriteTxn handed to one write function inside a batch."""

    def __init__(self, storage: SqliteStorage, request: _Request, batch: _Batch) -> None:
        self._storage = storage
        self._request = request
        self._batch = batch
        self._saved: dict[str, _Counters] = {}
        # Space state before this write first changed a table's spaces (see _keep_spaces).
        self._saved_spaces: dict[str, tuple[dict[str, tuple[int, int]], set[str]]] = {}
        self.redo: list[tuple[str, str, bytes, bytes | None]] | None = [] if request.solo else None
        self.redo_log: list[tuple[str, int, LogRecord]] = []

    def _file(self, table: str) -> _TableFile:
        tf = self._storage._files.get(table)
        if tf is None or tf.dropped:
            raise self._storage._not_open("write", table)
        if table not in self._saved:
            if not tf.in_batch:
                tf.writer.execute("BEGIN IMMEDIATE")
                tf.in_batch = True
                self._batch.files[table] = tf
            tf.writer.execute("SAVEPOINT w")
            c = tf.counters
            self._saved[table] = _Counters(c.item_count, c.item_bytes, c.last_seq)
            self._request.touched.add(table)
        return tf

    def get(self, table: str, key: bytes, space: str = ITEMS) -> bytes | None:
        tf = self._file(table)
        if space != ITEMS and space not in tf.spaces:
            return None
        row = tf.writer.execute(_select_value(space), (key,)).fetchone()
        return None if row is None else row[0]

    def put_item(
        self,
        table: str,
        key: bytes,
        value: bytes | None,
        record: LogRecord | None,
        count_delta: int,
        size_delta: int,
    ) -> int | None:
        tf = self._file(table)
        if value is None:
            tf.writer.execute("DELETE FROM items WHERE k = ?", (key,))
        else:
            tf.writer.execute("INSERT OR REPLACE INTO items VALUES (?, ?)", (key, value))
        if self.redo is not None:
            self.redo.append((table, ITEMS, key, value))
        counters = tf.counters
        counters.item_count += count_delta
        counters.item_bytes += size_delta
        if record is None:
            return None
        counters.last_seq += 1
        seq = counters.last_seq
        tf.writer.execute(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)",
            (seq, record.timestamp_ms, record.keys, record.old, record.new, record.origin),
        )
        if self.redo is not None:
            self.redo_log.append((table, seq, record))
        return seq

    def put(self, table: str, space: str, key: bytes, value: bytes, measured: int | None = None) -> None:
        tf = self._file(table)
        if space == ITEMS:
            tf.writer.execute("INSERT OR REPLACE INTO items VALUES (?, ?)", (key, value))
        else:
            self._keep_spaces(tf)
            self._storage._ensure_space(tf, space)
            add, select, update = _entry_statements(space)
            # Most puts add an entry: try that alone, and read the old value only if one is there.
            added = tf.writer.execute(add, (key, value)).rowcount
            old = None
            if not added:
                (old,) = tf.writer.execute(select, (key,)).fetchone()
                tf.writer.execute(update, (value, key))
            self._count(tf, space, value, old, measured)
        if self.redo is not None:
            self.redo.append((table, space, key, value))

    def delete(self, table: str, space: str, key: bytes) -> None:
        tf = self._file(table)
        if space == ITEMS:
            tf.writer.execute("DELETE FROM items WHERE k = ?", (key,))
        elif space not in tf.spaces:
            return
        else:
            self._keep_spaces(tf)
            rows = tf.writer.execute(
                f"DELETE FROM {_space_table(space)} WHERE k = ? RETURNING v", (key,)
            ).fetchall()
            if rows:
                self._count(tf, space, None, rows[0][0])
        if self.redo is not None:
            self.redo.append((table, space, key, None))

    def drop_space(self, table: str, space: str) -> None:
        tf = self._file(table)
        if space == ITEMS:
            raise StorageError(f"drop space {space} of table {table}: the items cannot be dropped")
        if self.redo is not None:
            raise StorageError(
                f"drop space {space} of table {table}: not allowed in a write to several tables"
            )
        if space not in tf.spaces:
            return
        self._keep_spaces(tf)
        tf.writer.execute(f"DROP TABLE IF EXISTS {_space_table(space)}")
        tf.writer.execute("DELETE FROM spaces WHERE name = ?", (space,))
        tf.spaces.discard(space)
        tf.space_stats.pop(space, None)
        tf.dirty_spaces.add(space)

    def _keep_spaces(self, tf: _TableFile) -> None:
        """Remember the table's space state once per write, to restore it if the write fails."""
        saved = self._saved_spaces
        if tf.table not in saved:
            saved[tf.table] = (tf.space_stats.copy(), tf.spaces.copy())

    def _count(
        self, tf: _TableFile, space: str, new: bytes | None, old: bytes | None, measured: int | None = None,
    ) -> None:
        measure = self._storage._measure
        entries, size = tf.space_stats.get(space, _NO_ENTRIES)
        if new is not None:
            entries += 1
            size += measure(space, new) if measured is None else measured
        if old is not None:
            entries -= 1
            size -= measure(space, old)
        tf.space_stats[space] = (entries, size)
        tf.dirty_spaces.add(space)

    def trim_log(self, table: str, before_ms: int, limit: int, keep_from: int | None = None) -> int:
        tf = self._file(table)
        rows = tf.writer.execute("SELECT seq, ts FROM log ORDER BY seq LIMIT ?", (limit,)).fetchall()
        last = None
        for seq, ts in rows:
            if ts >= before_ms or (keep_from is not None and seq >= keep_from):
                break
            last = seq
        if last is None:
            return 0
        return tf.writer.execute("DELETE FROM log WHERE seq <= ?", (last,)).rowcount

    def finish(self, ok: bool) -> None:
        for table, saved in self._saved.items():
            tf = self._storage._files[table]
            if not ok:
                tf.writer.execute("ROLLBACK TO w")
                tf.counters = saved
                if table in self._saved_spaces:
                    tf.space_stats, tf.spaces = self._saved_spaces[table]
            tf.writer.execute("RELEASE w")


@dataclass
class _Batch:
    number: int
    files: dict[str, _TableFile] = field(default_factory=dict)


_Outcome = tuple[dict[str, StorageError] | None, BaseException | None]


class _Committer:
    """The thread that commits batches, handing each outcome straight back to the loop.

    Lighter than an executor (no futures to chain): the loop learns of a commit
    in its next iteration, and the thread needs the interpreter lock only to
    start the COMMIT and to hand back its outcome.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="storage-commit", daemon=True)
        self._thread.start()

    def submit(
        self,
        loop: asyncio.AbstractEventLoop,
        commit: Callable[[], dict[str, StorageError]],
        done: Callable[[_Outcome], None],
    ) -> None:
        self._jobs.put((loop, commit, done))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, commit, done = job
            try:
                outcome: _Outcome = (commit(), None)
            except BaseException as exc:  # handed to the loop, which fails the batch
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(done, outcome)

    def shutdown(self) -> None:
        """Stop after the commit in flight, if any."""
        self._jobs.put(None)
        self._thread.join()


class _Reader:
    """Reads of one table on the event-loop thread (see base.Reader)."""

    def __init__(self, storage: SqliteStorage, tf: _TableFile, conn: sqlite3.Connection) -> None:
        self._storage = storage
        self._tf = tf
        self._conn = conn

    def get(self, key: bytes, space: str = ITEMS) -> bytes | None:
        if space != ITEMS and space not in self._tf.spaces:
            return None
        try:
            row = self._conn.execute(_select_value(space), (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"read table {self._tf.table}: {exc}") from exc
        return None if row is None else row[0]

    def get_many(self, keys: Sequence[bytes], space: str = ITEMS) -> dict[bytes, bytes]:
        if not keys or (space != ITEMS and space not in self._tf.spaces):
            return {}
        found: dict[bytes, bytes] = {}
        table = _space_table(space)
        try:
            for start in range(0, len(keys), _MANY_AT_ONCE):
                chunk = keys[start:start + _MANY_AT_ONCE]
                marks = ",".join("?" * len(chunk))
                found.update(self._conn.execute(f"SELECT k, v FROM {table} WHERE k IN ({marks})", chunk))
        except sqlite3.Error as exc:
            raise StorageError(f"read table {self._tf.table}: {exc}") from exc
        return found

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
        if space != ITEMS and space not in self._tf.spaces:
            return iter(())
        where, params = [], []
        if low is not None:
            where.append("k >= ?" if low_inclusive else "k > ?")
            params.append(low)
        if high is not None:
            where.append("k <= ?" if high_inclusive else "k < ?")
            params.append(high)
        sql = f"SELECT k, v FROM {_space_table(space)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY k DESC" if reverse else " ORDER BY k"
        try:
            return self._rows(self._conn.execute(sql, params))
        except sqlite3.Error as exc:
            raise StorageError(f"read table {self._tf.table}: {exc}") from exc

    def _rows(self, cursor: sqlite3.Cursor) -> Iterator[tuple[bytes, bytes]]:
        # A damaged page shows only when the scan reaches it: still a StorageError, as promised.
        try:
            yield from cursor
        except sqlite3.Error as exc:
            raise StorageError(f"read table {self._tf.table}: {exc}") from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[_Reader]:
        # A dedicated connection, so that a long snapshot neither blocks nor is
        # disturbed by the loop's other reads.
        conn = sqlite3.connect(self._tf.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM meta").fetchone()  # pins the snapshot now
            yield _Reader(self._storage, self._tf, conn)
        finally:
            conn.close()

    def log(self, after: int, limit: int) -> list[StoredRecord]:
        try:
            rows = self._conn.execute(
                "SELECT seq, ts, keys, old, new, origin FROM log WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"read log of table {self._tf.table}: {exc}") from exc
        return [StoredRecord(*row) for row in rows]

    def stats(self) -> TableStats:
        try:
            row = self._conn.execute("SELECT item_count, item_bytes, last_seq FROM meta").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"read table {self._tf.table}: {exc}") from exc
        return TableStats(*row)

    def space_stats(self, space: str) -> SpaceStats:
        try:
            row = self._conn.execute(
                "SELECT entries, bytes FROM space_stats WHERE name = ?", (space,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"read table {self._tf.table}: {exc}") from exc
        return SpaceStats(0, 0) if row is None else SpaceStats(*row)


class SqliteStorage:
    """See the module docstring; implements storage.base.Storage."""

    def __init__(
        self,
        directory: Path,
        durability: Durability = Durability.POWER_LOSS,
        measure: Measure = measure_length,
    ) -> None:
        self._dir = Path(directory)
        self._measure = measure
        self._tables_dir = self._dir / "tables"
        self._tables_dir.mkdir(parents=True, exist_ok=True)
        self._durability = durability
        self._files: dict[str, _TableFile] = {}
        self._queue: list[_Request] = []
        self._committing = False
        self._pump_scheduled = False
        self._stopping = False
        with opening(self._dir / "redo.db"):
            self._redo = _connect(self._dir / "redo.db", Durability.POWER_LOSS)
            self._redo.executescript(_REDO_SCHEMA)
        # Table files that cannot be opened, and why: one bad file must not take the others down.
        self._unreadable: dict[str, str] = {}
        for path in sorted(self._tables_dir.glob("*.db")):
            try:
                self._open_file(path.stem)
            except (sqlite3.Error, OSError) as exc:
                self._unreadable[path.stem] = f"{path}: {exc}"
        self._batch_number = self._recover()
        # Only commits (the fsync) leave the event loop's thread: see _pump.
        self._committer = _Committer()
        self._checkpointer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="storage-checkpoint"
        )

    # --- tables ------------------------------------------------------------

    def _not_open(self, verb: str, table: str) -> StorageError:
        cause = self._unreadable.get(table)
        if cause is not None:
            return TableUnreadable(f"{verb} table {table}: {cause}")
        return TableMissing(f"{verb} table {table}: not open")

    def unreadable(self, table: str) -> str | None:
        return self._unreadable.get(table)

    def expect_tables(self, tables: Iterable[str]) -> None:
        for table in tables:
            if table not in self._files and table not in self._unreadable:
                self._unreadable[table] = f"{self._tables_dir / f'{table}.db'}: no such file"

    def _open_file(self, table: str) -> _TableFile:
        path = self._tables_dir / f"{table}.db"
        writer = _connect(path, self._durability)
        try:
            return self._read_file(table, path, writer)
        except BaseException:
            writer.close()
            raise

    def _read_file(self, table: str, path: Path, writer: sqlite3.Connection) -> _TableFile:
        # Checkpoints would otherwise run inside a COMMIT and stall every write
        # waiting for that commit; they run on their own thread instead.
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.executescript(_SCHEMA)
        count, size, seq = writer.execute(
            "SELECT item_count, item_bytes, last_seq FROM meta"
        ).fetchone()
        spaces = {row[0] for row in writer.execute("SELECT name FROM spaces")}
        space_stats = self._load_space_stats(writer)
        for space in spaces - space_stats.keys():  # a file from before space_stats
            space_stats[space] = self._recount(writer, space)
        reader = _connect(path, self._durability)
        tf = _TableFile(table, path, writer, reader, _Counters(count, size, seq), spaces)
        tf.space_stats = space_stats
        self._files[table] = tf
        return tf

    @staticmethod
    def _load_space_stats(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
        rows = conn.execute("SELECT name, entries, bytes FROM space_stats").fetchall()
        return {name: (entries, size) for name, entries, size in rows}

    def _recount(self, conn: sqlite3.Connection, space: str) -> tuple[int, int]:
        """Count a space's entries and bytes from its rows, and record them (outside a batch)."""
        entries = size = 0
        for (value,) in conn.execute(f"SELECT v FROM {_space_table(space)}"):
            entries += 1
            size += self._measure(space, value)
        conn.execute("INSERT OR REPLACE INTO space_stats VALUES (?, ?, ?)", (space, entries, size))
        return entries, size

    def create_table(self, table: str) -> None:
        if table in self._files:
            raise StorageError(f"create table {table}: already exists")
        try:
            self._open_file(table)
            _sync(self._tables_dir)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"create table {table}: {exc}") from exc

    def forget_orphan(self, table: str) -> None:
        """Delete a table's files at startup, before any write (see Engine)."""
        tf = self._files.pop(table, None)
        if tf is not None:
            tf.close()
        elif self._unreadable.pop(table, None) is None:
            return
        self._unlink(table)

    def _unlink(self, table: str) -> None:
        path = self._tables_dir / f"{table}.db"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        # What recovery kept for the table while its file could not be opened (see _recover); at
        # startup or on the committer's thread, as every use of redo.db.
        for name in ("redo_ops", "redo_log", "redo_meta"):
            self._redo.execute(f"DELETE FROM {name} WHERE tbl = ?", (table,))

    def tables(self) -> list[str]:
        """The tables with a file: open ones, and those whose file could not be opened."""
        opened = [name for name, tf in self._files.items() if not tf.dropped]
        return opened + [name for name in self._unreadable if (self._tables_dir / f"{name}.db").exists()]

    async def drop_table(self, table: str) -> None:
        tf = self._files.get(table)
        if tf is None:
            if self._unreadable.pop(table, None) is not None:
                # On the committer, the thread that uses redo.db once the engine runs.
                await self._submit(lambda _txn: self._unlink(table), solo=True)
            return
        tf.dropped = True  # from now on reads and new writes see TableMissing
        if tf.checkpoint is not None:
            with contextlib.suppress(Exception):
                await tf.checkpoint
        with contextlib.suppress(sqlite3.Error):
            tf.reader.close()  # the reader belongs to this (the loop's) thread

        def drop(_txn: Any) -> None:
            self._files.pop(table, None)
            tf.close()
            self._unlink(table)

        # Solo: no other write of the batch may hold the table's connection.
        await self._submit(drop, solo=True)

    def reader(self, table: str) -> _Reader:
        tf = self._files.get(table)
        if tf is None or tf.dropped:
            raise self._not_open("read", table)
        return _Reader(self, tf, tf.reader)

    def _ensure_space(self, tf: _TableFile, space: str) -> None:
        if space == ITEMS or space in tf.spaces:
            return
        name = _space_table(space)
        tf.writer.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
        )
        tf.writer.execute("INSERT OR IGNORE INTO spaces VALUES (?, ?)", (space, name))
        tf.spaces.add(space)

    # --- writes --------------------------------------------------------------

    def write(self, fn: Callable[[Any], T], *, tables: int = 1) -> asyncio.Future[T]:
        return self._submit(fn, solo=tables > 1)

    def _submit(self, fn: Callable[[Any], T], *, solo: bool) -> asyncio.Future[T]:
        if self._stopping:
            raise StorageError("write: storage is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Request(fn, future, loop, solo=solo))
        self._schedule_pump(loop)
        return future

    def _schedule_pump(self, loop: asyncio.AbstractEventLoop) -> None:
        # call_soon rather than pumping at once: requests that arrive in the
        # same loop iteration join the batch.
        if self._queue and not self._committing and not self._pump_scheduled:
            self._pump_scheduled = True
            loop.call_soon(self._pump, loop)

    def _take_batch(self) -> list[_Request]:
        first = self._queue[0]
        if first.solo:
            return [self._queue.pop(0)]
        cut = next((i for i, r in enumerate(self._queue) if r.solo), len(self._queue))
        batch, self._queue = self._queue[:cut], self._queue[cut:]
        return batch

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        """Execute the queued writes on the loop's thread, then commit them on the committer.

        Write functions run on the event loop's thread, one after another: no
        locks, no interpreter-lock ping-pong with another thread.  Writes
        that arrive while a commit is in flight wait for it and then form the
        next batch: that is the group commit.
        """
        self._pump_scheduled = False
        if self._committing or not self._queue:
            return
        requests = self._take_batch()
        self._batch_number += 1
        batch = _Batch(self._batch_number)
        try:
            outcomes, redo = self._execute(batch, requests)
        except BaseException as exc:  # a bug here must not leave callers waiting
            log.exception("storage: executing a batch failed")
            for tf in batch.files.values():
                self._abort(tf)
            error = StorageError(f"write: {exc}")
            self._finish([(request, None, error) for request in requests], {})
            self._schedule_pump(loop)
            return
        staged = self._stage_counters(batch, redo)
        if not batch.files:
            self._finish(outcomes, staged)
            self._schedule_pump(loop)
            return
        self._committing = True
        self._committer.submit(
            loop,
            lambda: self._commit(batch, redo),
            lambda outcome: self._committed(loop, batch, outcomes, staged, outcome),
        )

    def _committed(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: _Batch,
        outcomes: list[tuple[_Request, Any, BaseException | None]],
        staged: dict[str, StorageError],
        outcome: _Outcome,
    ) -> None:
        self._committing = False
        failed, error = outcome
        if failed is None:
            log.error("storage: commit failed", exc_info=error)
            failed = {table: StorageError(f"commit: {error}") for table in batch.files}
        self._finish(outcomes, {**staged, **failed})
        self._schedule_pump(loop)
        for tf in batch.files.values():
            self._maybe_checkpoint(loop, tf)

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop, tf: _TableFile) -> None:
        """Every CHECKPOINT_EVERY commits, copy the table's WAL into its database file.

        A PASSIVE checkpoint from a connection of its own, on a thread of its
        own: it never blocks the writer, so writes go on while it runs.  SQLite
        syncs the database file only in a checkpoint that copies the whole WAL
        (the one that lets the WAL start over), and that one runs on the
        committer (see _commit) while writes wait: it would have to flush every
        page the background pass copied (8-20 ms here, each time).  So the
        background syncs the database file after its pass, and the finishing
        pass flushes only the few pages it copies itself.  It syncs a step at a
        time (see writeback), so that commits' syncs of the WAL meanwhile do not
        wait behind all the pages it copied.
        """
        tf.commits += 1
        if tf.commits < CHECKPOINT_EVERY or tf.checkpoint is not None or tf.dropped:
            return
        tf.commits = 0

        def checkpoint() -> None:
            if tf.checkpointer is None:
                tf.checkpointer = sqlite3.connect(tf.path, isolation_level=None,
                                                  check_same_thread=False)
            _checkpoint_in_passes(tf.checkpointer, tf.path)

        def done(future: asyncio.Future[None]) -> None:
            tf.checkpoint = None
            if not future.cancelled() and future.exception() is not None:
                # Not finished either: the WAL keeps every frame until a later checkpoint succeeds.
                log.warning("checkpoint table %s: %s", tf.table, future.exception())
                return
            tf.finish_checkpoint = True

        tf.checkpoint = loop.run_in_executor(self._checkpointer, checkpoint)
        tf.checkpoint.add_done_callback(done)

    def _execute(
        self, batch: _Batch, requests: list[_Request]
    ) -> tuple[list[tuple[_Request, Any, BaseException | None]], _Txn | None]:
        outcomes: list[tuple[_Request, Any, BaseException | None]] = []
        redo: _Txn | None = None
        for request in requests:
            txn = _Txn(self, request, batch)
            try:
                result = request.fn(txn)
            except BaseException as failure:  # handed to the caller, not swallowed
                outcomes.append((request, None, self._undo(txn, failure)))
                continue
            try:
                txn.finish(ok=True)
            except sqlite3.Error as exc:
                outcomes.append((request, None, StorageError(f"write: {exc}")))
                continue
            outcomes.append((request, result, None))
            if request.solo:
                redo = txn
        return outcomes, redo

    @staticmethod
    def _finish(
        outcomes: list[tuple[_Request, Any, BaseException | None]],
        failed: dict[str, StorageError],
    ) -> None:
        """Resolve each write: acknowledged only if every table it touched committed."""
        for request, result, error in outcomes:
            if error is None:
                bad = request.touched & failed.keys()
                if bad:
                    error = failed[next(iter(bad))]
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is request.loop:
                _resolve([(request, result, error)])
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    request.loop.call_soon_threadsafe(_resolve, [(request, result, error)])

    @staticmethod
    def _undo(txn: _Txn, failure: BaseException) -> BaseException:
        """Roll back a failed write function; the error its caller gets."""
        try:
            txn.finish(ok=False)
        except sqlite3.Error as exc:
            return StorageError(f"write: roll back: {exc}")
        return failure

    def _commit(self, batch: _Batch, redo: _Txn | None) -> dict[str, StorageError]:
        """Commit every table the batch touched; returns the tables that failed."""
        failed: dict[str, StorageError] = {}
        if redo is not None and len(batch.files) > 1:
            try:
                self._write_redo(batch, redo)
            except sqlite3.Error as exc:
                error = StorageError(f"commit transaction: {exc}")
                for table, tf in batch.files.items():
                    self._abort(tf)
                    failed[table] = error
                return failed
        for table, tf in batch.files.items():
            try:
                tf.writer.execute("COMMIT")
                tf.in_batch = False
                if tf.finish_checkpoint:
                    # The concurrent checkpoint copied most of the WAL; copying the
                    # few frames written since, with no writer running, completes it,
                    # so the next write starts the WAL over instead of growing it.
                    tf.finish_checkpoint = False
                    tf.writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.error("commit table %s failed: %s", table, exc)
                self._abort(tf)
                failed[table] = StorageError(f"commit table {table}: {exc}")
        if redo is not None and len(batch.files) > 1 and not failed:
            with contextlib.suppress(sqlite3.Error):
                self._redo.execute("PRAGMA synchronous=OFF")  # losing this delete is harmless
                for name in ("redo_ops", "redo_log", "redo_meta"):
                    self._redo.execute(f"DELETE FROM {name} WHERE batch = ?", (batch.number,))
                self._redo.execute("PRAGMA synchronous=FULL")
        return failed

    def _stage_counters(self, batch: _Batch, redo: _Txn | None) -> dict[str, StorageError]:
        """Write the counters of each table into its transaction, on the loop's thread.

        Done here rather than by the committer, so that the committer's only
        statement is the COMMIT.  A table that fails is rolled back and left out
        of the batch (every table of a write to several tables: all or nothing).
        """
        failed: dict[str, StorageError] = {}
        for table, tf in batch.files.items():
            c = tf.counters
            try:
                tf.writer.execute(
                    "UPDATE meta SET item_count = ?, item_bytes = ?, last_seq = ?, last_batch = ?",
                    (c.item_count, c.item_bytes, c.last_seq, batch.number),
                )
                self._write_space_stats(tf)
                tf.dirty_spaces.clear()
            except sqlite3.Error as exc:
                log.error("commit table %s failed: %s", table, exc)
                failed[table] = StorageError(f"commit table {table}: {exc}")
        if failed and redo is not None:
            failed.update({table: next(iter(failed.values())) for table in batch.files})
        for table in failed:
            self._abort(batch.files.pop(table))
        return failed

    @staticmethod
    def _write_space_stats(tf: _TableFile) -> None:
        for space in tf.dirty_spaces:
            stats = tf.space_stats.get(space)
            if stats is None:
                tf.writer.execute("DELETE FROM space_stats WHERE name = ?", (space,))
            else:
                tf.writer.execute("INSERT OR REPLACE INTO space_stats VALUES (?, ?, ?)", (space, *stats))

    def _abort(self, tf: _TableFile) -> None:
        with contextlib.suppress(sqlite3.Error):
            tf.writer.execute("ROLLBACK")
        tf.in_batch = False
        row = tf.writer.execute("SELECT item_count, item_bytes, last_seq FROM meta").fetchone()
        tf.counters = _Counters(*row)
        tf.spaces = {row[0] for row in tf.writer.execute("SELECT name FROM spaces")}
        tf.space_stats = self._load_space_stats(tf.writer)
        tf.dirty_spaces.clear()

    def _write_redo(self, batch: _Batch, txn: _Txn) -> None:
        assert txn.redo is not None
        conn = self._redo
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO redo_ops VALUES (?, ?, ?, ?, ?, ?)",
                [(batch.number, n, t, s, k, v) for n, (t, s, k, v) in enumerate(txn.redo)],
            )
            conn.executemany(
                "INSERT INTO redo_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (batch.number, t, seq, r.timestamp_ms, r.keys, r.old, r.new, r.origin)
                    for t, seq, r in txn.redo_log
                ],
            )
            conn.executemany(
                "INSERT INTO redo_meta VALUES (?, ?, ?, ?, ?)",
                [
                    (batch.number, t, tf.counters.item_count, tf.counters.item_bytes,
                     tf.counters.last_seq)
                    for t, tf in batch.files.items()
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _recover(self) -> int:
        """Finish multi-table writes a crash interrupted; returns the last batch number."""
        last = max((self._last_batch(tf) for tf in self._files.values()), default=0)
        batches = [row[0] for row in self._redo.execute("SELECT DISTINCT batch FROM redo_meta")]
        for number in sorted(batches):
            last = max(last, number)
            kept = False
            for (table,) in self._redo.execute(
                "SELECT tbl FROM redo_meta WHERE batch = ?", (number,)
            ).fetchall():
                tf = self._files.get(table)
                if tf is None:
                    # Its file is damaged or gone: kept for a start where it is back (its part may
                    # not have committed), until the table is dropped.
                    log.warning("transaction %d: table %s cannot be recovered now", number, table)
                    kept = True
                    continue
                if self._last_batch(tf) >= number:
                    continue
                log.warning("recovering table %s: re-applying transaction %d", table, number)
                self._reapply(tf, number)
            if not kept:
                for name in ("redo_ops", "redo_log", "redo_meta"):
                    self._redo.execute(f"DELETE FROM {name} WHERE batch = ?", (number,))
        return last

    @staticmethod
    def _last_batch(tf: _TableFile) -> int:
        return tf.writer.execute("SELECT last_batch FROM meta").fetchone()[0]

    def _reapply(self, tf: _TableFile, number: int) -> None:
        conn = self._redo
        w = tf.writer
        w.execute("BEGIN IMMEDIATE")
        touched: set[str] = set()
        for space, key, value in conn.execute(
            "SELECT space, k, v FROM redo_ops WHERE batch = ? AND tbl = ? ORDER BY n",
            (number, tf.table),
        ).fetchall():
            self._ensure_space(tf, space)
            if space != ITEMS:
                touched.add(space)
            name = _space_table(space)
            if value is None:
                w.execute(f"DELETE FROM {name} WHERE k = ?", (key,))
            else:
                w.execute(f"INSERT OR REPLACE INTO {name} VALUES (?, ?)", (key, value))
        w.executemany(
            "INSERT OR IGNORE INTO log VALUES (?, ?, ?, ?, ?, ?)",
            conn.execute(
                "SELECT seq, ts, keys, old, new, origin FROM redo_log WHERE batch = ? AND tbl = ?",
                (number, tf.table),
            ).fetchall(),
        )
        count, size, seq = conn.execute(
            "SELECT item_count, item_bytes, last_seq FROM redo_meta WHERE batch = ? AND tbl = ?",
            (number, tf.table),
        ).fetchone()
        w.execute(
            "UPDATE meta SET item_count = ?, item_bytes = ?, last_seq = ?, last_batch = ?",
            (count, size, seq, number),
        )
        for space in touched:  # the redo log keeps no space counters: count them again
            tf.space_stats[space] = self._recount(w, space)
        w.execute("COMMIT")
        tf.counters = _Counters(count, size, seq)

    # --- bulk load (restores): the lead's block; see base.Storage.bulk_load -------------

    def table_file(self, table: str) -> Path:
        """The table's database file, for ``read_as_of`` in a backup's worker process."""
        tf = self._files.get(table)
        if tf is None or tf.dropped:
            raise self._not_open("read", table)
        return tf.path

    async def bulk_load(
        self,
        table: str,
        entries: Iterable[tuple[str, bytes, bytes]],
        item_size: Callable[[bytes], int],
        progress: Callable[[int], None] | None = None,
    ) -> TableStats:
        tf = self._files.get(table)
        if tf is None or tf.dropped:
            raise self._not_open("load", table)
        # Its own connection on a worker thread: the loop's writer never touches a table
        # that is being loaded (the engine refuses writes to it), so nothing contends.
        await asyncio.to_thread(self._load, tf, entries, item_size, progress)
        self._refresh(tf)
        return TableStats(tf.counters.item_count, tf.counters.item_bytes, tf.counters.last_seq)

    def _load(
        self,
        tf: _TableFile,
        entries: Iterable[tuple[str, bytes, bytes]],
        item_size: Callable[[bytes], int],
        progress: Callable[[int], None] | None,
    ) -> None:
        # NORMAL while loading (a crash restarts the whole load anyway); the last
        # commit is FULL and the checkpoint after it syncs the database file.
        conn = _connect(tf.path, Durability.PROCESS_CRASH)
        try:
            count = size = loaded = 0
            stats: dict[str, list[int]] = {}
            pending: dict[str, list[tuple[bytes, bytes]]] = {ITEMS: []}
            measure = self._measure
            for space, key, value in entries:
                rows = pending.get(space)
                if rows is None:
                    rows = pending[space] = []
                    stats[space] = [0, 0]
                rows.append((key, value))
                if space == ITEMS:
                    count += 1
                    size += item_size(value)
                else:
                    counted = stats[space]
                    counted[0] += 1
                    counted[1] += measure(space, value)
                loaded += 1
                if loaded % _LOAD_BATCH == 0:
                    self._load_rows(conn, pending)  # one executemany per space: far fewer Python calls
                    if progress is not None:
                        progress(loaded)
            self._load_rows(conn, pending)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE meta SET item_count = ?, item_bytes = ?", (count, size))
            conn.executemany(
                "INSERT OR REPLACE INTO space_stats VALUES (?, ?, ?)",
                [(space, entries_, size_) for space, (entries_, size_) in stats.items()],
            )
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if progress is not None:
                progress(loaded)
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StorageError(f"load table {tf.table}: {exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def _load_rows(conn: sqlite3.Connection, pending: dict[str, list[tuple[bytes, bytes]]]) -> None:
        """Insert and commit the rows gathered so far, creating the spaces they need."""
        conn.execute("BEGIN IMMEDIATE")
        for space, rows in pending.items():
            if not rows:
                continue
            name = _space_table(space)
            if space != ITEMS:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (k BLOB PRIMARY KEY, v BLOB NOT NULL) "
                             "WITHOUT ROWID")
                conn.execute("INSERT OR IGNORE INTO spaces VALUES (?, ?)", (space, name))
            conn.executemany(f"INSERT INTO {name} VALUES (?, ?)", rows)
            rows.clear()
        conn.execute("COMMIT")

    def _refresh(self, tf: _TableFile) -> None:
        """Re-read what another connection changed in the file: counters and spaces."""
        count, size, seq = tf.writer.execute(
            "SELECT item_count, item_bytes, last_seq FROM meta"
        ).fetchone()
        tf.counters = _Counters(count, size, seq)
        tf.spaces = {row[0] for row in tf.writer.execute("SELECT name FROM spaces")}
        tf.space_stats = self._load_space_stats(tf.writer)

    def close(self) -> None:
        self._stopping = True
        self._committer.shutdown()  # a commit in flight finishes first
        self._checkpointer.shutdown(wait=True)
        error = StorageError("write: storage is closed")
        self._finish([(request, None, error) for request in self._queue], {})
        self._queue.clear()
        for tf in self._files.values():
            tf.close()
        self._files.clear()
        with contextlib.suppress(sqlite3.Error):
            self._redo.close()


def _resolve(items: list[tuple[_Request, Any, BaseException | None]]) -> None:
    for request, result, error in items:
        if request.future.done():
            continue
        if error is None:
            request.future.set_result(result)
        else:
            request.future.set_exception(error)


# --- reading a table as of a sequence number, from any thread or process (backups) -------


def read_as_of(
    path: Path, sequence: int, key_of: Callable[[bytes], bytes]
) -> Iterator[tuple[bytes, bytes]]:
    """A table file's items as they were right after its log record ``sequence``, in key order.

    Opens its own read-only connection, so it runs in any thread or process
    (a backup's worker process: it must not share the engine's interpreter
    lock).  It pins a read transaction at the file's current state S2 >=
    ``sequence`` and puts back, for every key the log records in
    (``sequence``, S2] touched, its image before the first of them.  Those
    records must still be in the log (``Engine.hold_log`` keeps them).
    ``key_of`` maps a record's ``keys`` to the item's stored key.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        (last,) = conn.execute("SELECT last_seq FROM meta").fetchone()
        before: dict[bytes, bytes | None] = {}
        expected = sequence + 1
        for seq, keys, old in conn.execute(
            "SELECT seq, keys, old FROM log WHERE seq > ? ORDER BY seq", (sequence,)
        ):
            if seq != expected:
                raise StorageError(f"read table {path.stem} as of {sequence}: log record {expected} is gone")
            expected += 1
            before.setdefault(key_of(keys), old)
        if expected != last + 1:
            raise StorageError(f"read table {path.stem} as of {sequence}: log records up to {last} are gone")
        restored = sorted(before.items())
        position = 0
        for key, value in conn.execute("SELECT k, v FROM items ORDER BY k"):
            while position < len(restored) and restored[position][0] < key:
                if restored[position][1] is not None:
                    yield restored[position]  # type: ignore[misc]
                position += 1
            if key in before:
                old = before[key]
                if old is not None:
                    yield key, old
                if position < len(restored) and restored[position][0] == key:
                    position += 1
            else:
                yield key, value
        for key, old in restored[position:]:
            if old is not None:
                yield key, old
    except sqlite3.Error as exc:
        raise StorageError(f"read table {path.stem} as of {sequence}: {exc}") from exc
    finally:
        conn.close()
