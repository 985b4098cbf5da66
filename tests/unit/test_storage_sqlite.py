"""The SQLite storage honours the storage seam's contract (storage/base.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.engine.storage import sqlite as sqlite_storage
from tablekeeper.engine.storage import writeback
from tablekeeper.engine.storage.base import ITEMS, LogRecord, StorageError, TableMissing, TableUnreadable
from tablekeeper.engine.storage.sqlite import Durability, SqliteStorage


def record(n: int) -> LogRecord:
    return LogRecord(timestamp_ms=1000 + n, keys=b"k%d" % n, old=None, new=b"v%d" % n)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    store.create_table("t2")
    yield store
    store.close()


def write(store: SqliteStorage, fn, **options):  # type: ignore[no-untyped-def]
    """Run one write from outside an event loop."""

    async def main():  # type: ignore[no-untyped-def]
        return await store.write(fn, **options)

    return asyncio.run(main())


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def put(key: bytes, value: bytes, n: int = 0, table: str = "t1"):  # type: ignore[no-untyped-def]
    def fn(txn):  # type: ignore[no-untyped-def]
        old = txn.get(table, key)
        return txn.put_item(table, key, value, record(n), 0 if old else 1, len(value))

    return fn


def test_a_write_is_visible_to_readers_once_acknowledged(storage: SqliteStorage) -> None:
    write(storage, put(b"a", b"1"))
    assert storage.reader("t1").get(b"a") == b"1"


def test_log_sequence_numbers_increase_by_one_per_logged_write(storage: SqliteStorage) -> None:
    async def main() -> list[int]:
        return list(
            await asyncio.gather(*(storage.write(put(b"k%d" % i, b"v", i)) for i in range(20)))
        )

    seqs = run(main())
    assert sorted(seqs) == list(range(1, 21))
    assert [r.sequence for r in storage.reader("t1").log(0, 100)] == list(range(1, 21))


def test_concurrent_writes_share_commits(storage: SqliteStorage) -> None:
    async def main() -> None:
        await asyncio.gather(*(storage.write(put(b"k%d" % i, b"v", i)) for i in range(200)))

    run(main())
    assert storage.reader("t1").stats().item_count == 200


def test_a_failing_write_undoes_only_its_own_changes(storage: SqliteStorage) -> None:
    def bad(txn):  # type: ignore[no-untyped-def]
        txn.put_item("t1", b"bad", b"x", record(1), 1, 1)
        raise ValueError("refused")

    async def main() -> None:
        good = storage.write(put(b"good", b"1"))
        failing = storage.write(bad)
        await good
        with pytest.raises(ValueError, match="refused"):
            await failing

    run(main())
    reader = storage.reader("t1")
    assert reader.get(b"good") == b"1"
    assert reader.get(b"bad") is None
    assert reader.stats().item_count == 1
    assert [r.keys for r in reader.log(0, 10)] == [b"k0"]


def test_a_write_without_a_record_logs_nothing(storage: SqliteStorage) -> None:
    write(storage, lambda txn: txn.put_item("t1", b"a", b"1", None, 1, 1))
    assert storage.reader("t1").log(0, 10) == []


def test_range_reads_in_key_order_both_ways(storage: SqliteStorage) -> None:
    for key in (b"b", b"a", b"d", b"c"):
        write(storage, put(key, key))
    reader = storage.reader("t1")
    assert [k for k, _ in reader.range(b"b", b"d")] == [b"b", b"c"]
    assert [k for k, _ in reader.range(b"b", b"d", reverse=True, high_inclusive=True)] == [
        b"d",
        b"c",
        b"b",
    ]
    assert [k for k, _ in reader.range(None, None, low_inclusive=False)] == [b"a", b"b", b"c", b"d"]


def test_many_point_reads_at_once_give_the_values_of_the_keys_that_exist(
    storage: SqliteStorage,
) -> None:
    keys = [b"%04d" % i for i in range(1200)]  # more than one statement's worth

    def fill(txn):  # type: ignore[no-untyped-def]
        for key in keys[::2]:
            txn.put_item("t1", key, key + b"!", record(0), 1, 5)

    write(storage, fill)
    reader = storage.reader("t1")
    assert reader.get_many(keys) == {key: key + b"!" for key in keys[::2]}
    assert reader.get_many([]) == {}
    assert reader.get_many(keys, space="index:none") == {}


def test_index_spaces_are_separate_from_items(storage: SqliteStorage) -> None:
    write(storage, lambda txn: txn.put("t1", "index:g", b"x", b"1"))
    reader = storage.reader("t1")
    assert reader.get(b"x", space="index:g") == b"1"
    assert reader.get(b"x", space=ITEMS) is None
    assert reader.get(b"x", space="index:other") is None


def test_a_snapshot_does_not_see_later_writes(storage: SqliteStorage) -> None:
    write(storage, put(b"a", b"1"))
    with storage.reader("t1").snapshot() as snap:
        write(storage, put(b"a", b"2"))
        assert snap.get(b"a") == b"1"
    assert storage.reader("t1").get(b"a") == b"2"


def test_data_and_counters_survive_reopening(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    write(store, put(b"a", b"12345"))
    store.close()
    store = SqliteStorage(tmp_path, Durability.PROCESS_CRASH)
    stats = store.reader("t1").stats()
    assert (stats.item_count, stats.item_bytes, stats.last_sequence) == (1, 5, 1)
    store.close()


def test_a_dropped_table_is_gone_for_reads_and_writes(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    async def drop() -> None:
        await storage.drop_table("t1")

    run(drop())
    with pytest.raises(TableMissing):
        storage.reader("t1")
    with pytest.raises(TableMissing):
        write(storage, put(b"a", b"1"))
    assert not (tmp_path / "tables" / "t1.db").exists()
    assert storage.tables() == ["t2"]


def test_creating_an_existing_table_is_an_error(storage: SqliteStorage) -> None:
    with pytest.raises(StorageError):
        storage.create_table("t1")


def test_a_multi_table_write_interrupted_before_every_commit_is_completed_on_restart(
    tmp_path: Path,
) -> None:
    """Crash between the commits of two table files: recovery re-applies the rest."""
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    store.create_table("t2")

    def both(txn):  # type: ignore[no-untyped-def]
        txn.put_item("t1", b"a", b"1", record(1), 1, 1)
        txn.put_item("t2", b"b", b"2", record(2), 1, 1)

    # Simulate the crash: record the redo entry and commit only t1, by making
    # t2's COMMIT fail once, then "crash" (close without cleanup).
    original = store._commit

    def crash_after_first(batch, redo):  # type: ignore[no-untyped-def]
        store._write_redo(batch, redo)
        tf1 = batch.files["t1"]
        tf1.writer.execute(
            "UPDATE meta SET item_count = 1, item_bytes = 1, last_seq = 1, last_batch = ?",
            (batch.number,),
        )
        tf1.writer.execute("COMMIT")
        tf1.in_batch = False
        batch.files["t2"].writer.execute("ROLLBACK")
        batch.files["t2"].in_batch = False
        return {"t2": StorageError("simulated crash")}

    store._commit = crash_after_first  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        write(store, both, tables=2)
    store._commit = original  # type: ignore[method-assign]
    store.close()

    assert sqlite3.connect(tmp_path / "tables" / "t2.db").execute(
        "SELECT count(*) FROM items"
    ).fetchone() == (0,)
    reopened = SqliteStorage(tmp_path)
    assert reopened.reader("t1").get(b"a") == b"1"
    assert reopened.reader("t2").get(b"b") == b"2"
    assert reopened.reader("t2").stats().item_count == 1
    assert [r.sequence for r in reopened.reader("t2").log(0, 10)] == [1]
    reopened.close()
    # Recovery ran once: the redo entry is gone.
    assert sqlite3.connect(tmp_path / "redo.db").execute(
        "SELECT count(*) FROM redo_meta"
    ).fetchone() == (0,)


def test_a_multi_table_write_commits_both_tables(storage: SqliteStorage) -> None:
    def both(txn):  # type: ignore[no-untyped-def]
        txn.put_item("t1", b"a", b"1", record(1), 1, 1)
        txn.put_item("t2", b"b", b"2", record(2), 1, 1)

    write(storage, both, tables=2)
    assert storage.reader("t1").get(b"a") == b"1"
    assert storage.reader("t2").get(b"b") == b"2"


def test_trimming_the_log_removes_only_the_old_prefix(storage: SqliteStorage) -> None:
    for n in range(5):  # timestamps 1000..1004
        write(storage, put(b"k%d" % n, b"v", n))
    removed = write(storage, lambda txn: txn.trim_log("t1", 1003, 100))
    assert removed == 3
    assert [r.sequence for r in storage.reader("t1").log(0, 10)] == [4, 5]
    assert storage.reader("t1").stats().last_sequence == 5


# --- space counters and dropping a space ---------------------------------------------------


def space_put(key: bytes, value: bytes, space: str = "index:g"):  # type: ignore[no-untyped-def]
    return lambda txn: txn.put("t1", space, key, value)


def space_delete(key: bytes, space: str = "index:g"):  # type: ignore[no-untyped-def]
    return lambda txn: txn.delete("t1", space, key)


def counters(store: SqliteStorage, space: str = "index:g") -> tuple[int, int]:
    stats = store.reader("t1").space_stats(space)
    return stats.entries, stats.bytes


def test_space_counters_count_entries_and_their_bytes(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))
    write(storage, space_put(b"b", b"12345"))
    assert counters(storage) == (2, 8)


def test_overwriting_an_entry_changes_only_its_bytes(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))
    write(storage, space_put(b"a", b"1"))
    assert counters(storage) == (1, 1)


def test_deleting_entries_takes_them_off_the_counters(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))
    write(storage, space_put(b"b", b"12"))
    write(storage, space_delete(b"a"))
    write(storage, space_delete(b"missing"))
    assert counters(storage) == (1, 2)


def test_a_space_never_written_has_zero_counters(storage: SqliteStorage) -> None:
    assert counters(storage, "index:none") == (0, 0)


def test_counters_of_a_failed_write_are_undone_with_its_entries(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))

    def bad(txn):  # type: ignore[no-untyped-def]
        txn.put("t1", "index:g", b"b", b"12345")
        txn.put("t1", "index:new", b"x", b"1")
        raise ValueError("refused")

    with pytest.raises(ValueError):
        write(storage, bad)
    write(storage, space_put(b"c", b"1"))
    assert counters(storage) == (2, 4)
    reader = storage.reader("t1")
    assert reader.get(b"b", space="index:g") is None
    assert reader.get(b"x", space="index:new") is None
    assert counters(storage, "index:new") == (0, 0)


def test_space_counters_survive_reopening(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    write(store, space_put(b"a", b"123"))
    store.close()
    store = SqliteStorage(tmp_path)
    assert counters(store) == (1, 3)
    write(store, space_put(b"b", b"1"))
    assert counters(store) == (2, 4)
    store.close()


def test_counters_missing_from_an_older_file_are_counted_on_open(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    write(store, space_put(b"a", b"123"))
    write(store, space_put(b"b", b"12"))
    store.close()
    conn = sqlite3.connect(tmp_path / "tables" / "t1.db")
    conn.execute("DELETE FROM space_stats")
    conn.commit()
    conn.close()
    store = SqliteStorage(tmp_path)
    assert counters(store) == (2, 5)
    store.close()


def test_the_store_measures_entries_with_the_function_it_was_given(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path, measure=lambda space, value: 10 if space == "index:g" else 1)
    store.create_table("t1")
    write(store, space_put(b"a", b"123"))
    write(store, space_put(b"a", b"123", space="ttl"))
    assert counters(store) == (1, 10)
    assert counters(store, "ttl") == (1, 1)
    store.close()


def test_a_put_counts_the_measure_its_writer_gives_and_measures_only_the_old_value_it_replaces(
    tmp_path: Path,
) -> None:
    measured: list[bytes] = []

    def measure(space: str, value: bytes) -> int:
        measured.append(value)
        return len(value) * 100

    store = SqliteStorage(tmp_path, measure=measure)
    store.create_table("t1")
    write(store, lambda txn: txn.put("t1", "index:g", b"a", b"123", 300))
    assert counters(store) == (1, 300)
    write(store, lambda txn: txn.put("t1", "index:g", b"a", b"12", 200))
    assert counters(store) == (1, 200)
    assert measured == [b"123"]  # the replaced value, read back; never the ones handed in
    store.close()


def test_dropping_a_space_removes_its_entries_and_counters(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))
    write(storage, space_put(b"k", b"1", space="index:other"))
    write(storage, lambda txn: txn.drop_space("t1", "index:g"))
    reader = storage.reader("t1")
    assert reader.get(b"a", space="index:g") is None
    assert list(reader.range(None, None, space="index:g")) == []
    assert counters(storage) == (0, 0)
    assert counters(storage, "index:other") == (1, 1)
    write(storage, space_put(b"b", b"12"))  # the space starts again from nothing
    assert counters(storage) == (1, 2)


def test_dropping_a_missing_space_is_not_an_error(storage: SqliteStorage) -> None:
    write(storage, lambda txn: txn.drop_space("t1", "index:none"))


def test_a_failed_write_undoes_its_drop_of_a_space(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))

    def bad(txn):  # type: ignore[no-untyped-def]
        txn.drop_space("t1", "index:g")
        raise ValueError("refused")

    with pytest.raises(ValueError):
        write(storage, bad)
    assert storage.reader("t1").get(b"a", space="index:g") == b"123"
    assert counters(storage) == (1, 3)


def test_a_dropped_space_stays_dropped_after_reopening(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    write(store, space_put(b"a", b"123"))
    write(store, lambda txn: txn.drop_space("t1", "index:g"))
    store.close()
    store = SqliteStorage(tmp_path)
    assert store.reader("t1").get(b"a", space="index:g") is None
    assert counters(store) == (0, 0)
    store.close()


def test_a_space_cannot_be_dropped_in_a_write_to_several_tables(storage: SqliteStorage) -> None:
    write(storage, space_put(b"a", b"123"))
    with pytest.raises(StorageError, match="several tables"):
        write(storage, lambda txn: txn.drop_space("t1", "index:g"), tables=2)
    assert counters(storage) == (1, 3)


def test_the_items_space_cannot_be_dropped(storage: SqliteStorage) -> None:
    with pytest.raises(StorageError):
        write(storage, lambda txn: txn.drop_space("t1", ITEMS))


def _crashed_between_commits(tmp_path: Path, second: Any = None) -> None:
    """A write to t1 and t2 (``second`` is its t2 part) of which only t1 committed, and the store
    closed as a crash would leave it: t2's part is in redo.db alone."""
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    store.create_table("t2")

    def both(txn):  # type: ignore[no-untyped-def]
        txn.put_item("t1", b"a", b"1", record(1), 1, 1)
        if second is None:
            txn.put_item("t2", b"b", b"2", record(2), 1, 1)
        else:
            second(txn)

    def crash_after_first(batch, redo):  # type: ignore[no-untyped-def]
        store._write_redo(batch, redo)
        tf1 = batch.files["t1"]
        tf1.writer.execute("UPDATE meta SET last_batch = ?", (batch.number,))
        tf1.writer.execute("COMMIT")
        tf1.in_batch = False
        batch.files["t2"].writer.execute("ROLLBACK")
        batch.files["t2"].in_batch = False
        return {"t2": StorageError("simulated crash")}

    store._commit = crash_after_first  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        write(store, both, tables=2)
    store.close()


def test_recovery_of_a_multi_table_write_recounts_the_spaces_it_replays(tmp_path: Path) -> None:
    _crashed_between_commits(tmp_path, lambda txn: txn.put("t2", "index:g", b"e", b"123"))
    reopened = SqliteStorage(tmp_path)
    assert reopened.reader("t2").get(b"e", space="index:g") == b"123"
    stats = reopened.reader("t2").space_stats("index:g")
    assert (stats.entries, stats.bytes) == (1, 3)
    reopened.close()


def test_a_commit_that_fails_fails_its_writes_and_the_next_write_commits(
    storage: SqliteStorage,
) -> None:
    original = storage._commit

    def broken(batch, redo):  # type: ignore[no-untyped-def]
        for tf in batch.files.values():
            storage._abort(tf)
        raise OSError("disk gone")

    storage._commit = broken  # type: ignore[method-assign]
    with pytest.raises(StorageError, match="disk gone"):
        write(storage, put(b"a", b"1", 1))
    storage._commit = original  # type: ignore[method-assign]
    write(storage, put(b"b", b"2", 1))
    assert storage.reader("t1").get(b"a") is None
    assert storage.reader("t1").get(b"b") == b"2"
    assert storage.reader("t1").stats().last_sequence == 1


# --- WAL checkpoints -------------------------------------------------------------------


def wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts over."""
    return int.from_bytes(wal.read_bytes()[12:16], "big") if wal.exists() else 0


def steady_writes(store: SqliteStorage, first: int, count: int) -> list[int]:
    """``count`` writes of a 3 KB value one after another (one commit each); the restart count after each."""
    wal = store.table_file("t1").with_name("t1.db-wal")

    async def main() -> list[int]:
        seen = []
        for n in range(first, first + count):
            await store.write(put(b"k%d" % n, b"x" * 3000, n))
            seen.append(wal_restarts(wal))
        pending = store._files["t1"].checkpoint
        if pending is not None:
            await asyncio.wait([pending])
        return seen

    return run(main())


@pytest.fixture
def quick_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_storage, "CHECKPOINT_EVERY", 5)


@pytest.mark.usefixtures("quick_checkpoints")
def test_under_steady_writes_the_wal_starts_over_instead_of_growing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real_flush = writeback.flush

    def recording(path: Path) -> None:
        synced.append(path)
        real_flush(path)

    monkeypatch.setattr(writeback, "flush", recording)
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    restarts = steady_writes(store, 0, 300)
    wal = store.table_file("t1").with_name("t1.db-wal")
    # 300 commits of two or more 4 KB pages each: 2.4 MB if the WAL never started over.
    assert restarts[-1] - restarts[0] >= 10
    assert wal.stat().st_size < 1_000_000
    # The background checkpoint syncs the database file itself, so that the pass that lets
    # the WAL start over (on the committer, while writes wait) has little left to flush.
    assert store.table_file("t1") in synced
    store.close()
    reopened = SqliteStorage(tmp_path)
    assert reopened.reader("t1").stats().item_count == 300
    reopened.close()


@pytest.mark.usefixtures("quick_checkpoints")
def test_a_background_checkpoint_that_cannot_sync_loses_nothing_and_fails_no_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    steady_writes(store, 0, 20)

    def failing(path: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writeback, "flush", failing)
    restarts = steady_writes(store, 20, 100)  # every write is still acknowledged
    assert "checkpoint table t1" in caplog.text and "Input/output error" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(sqlite_storage, "CHECKPOINT_EVERY", 5)
    after = steady_writes(store, 120, 60)
    assert after[-1] > restarts[-1]  # checkpoints that sync let the WAL start over again
    store.close()
    reopened = SqliteStorage(tmp_path)
    reader = reopened.reader("t1")
    assert reader.stats().item_count == 180
    assert all(reader.get(b"k%d" % n) == b"x" * 3000 for n in range(180))
    reopened.close()


@pytest.mark.usefixtures("quick_checkpoints")
def test_a_wal_grown_behind_a_long_read_is_cut_back_once_it_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_storage, "WAL_SIZE_LIMIT", 256 * 1024)
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    wal = store.table_file("t1").with_name("t1.db-wal")
    reading = sqlite3.connect(store.table_file("t1"), isolation_level=None)
    reading.execute("BEGIN")
    reading.execute("SELECT count(*) FROM items").fetchone()  # holds its snapshot, and the WAL
    steady_writes(store, 0, 300)
    assert wal.stat().st_size > 2_000_000  # 300 commits of two or more 4 KB pages
    reading.execute("COMMIT")
    reading.close()
    steady_writes(store, 300, 60)
    assert wal.stat().st_size < 1_000_000
    store.close()
    reopened = SqliteStorage(tmp_path)
    assert reopened.reader("t1").stats().item_count == 360
    reopened.close()


def test_a_checkpoint_passes_again_over_what_was_written_while_it_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_storage, "CHECKPOINT_EVERY", 10**9)  # none in the background
    store = SqliteStorage(tmp_path)
    store.create_table("t1")
    steady_writes(store, 0, 50)
    path = store.table_file("t1")
    other = sqlite3.connect(path, isolation_level=None)
    real_flush = writeback.flush
    flushes = 0

    def writing_meanwhile(flushed: Path) -> None:
        nonlocal flushes
        flushes += 1
        if flushes == 1:  # 40 commits of a 3 KB item land while the first pass syncs
            for n in range(40):
                other.execute("INSERT INTO items VALUES (?, ?)", (b"m%d" % n, b"y" * 3000))
        real_flush(flushed)

    monkeypatch.setattr(writeback, "flush", writing_meanwhile)
    checkpointer = sqlite3.connect(path, isolation_level=None)
    # The second pass copies those 40 commits' frames, the third finds none left.
    assert sqlite_storage._checkpoint_in_passes(checkpointer, path) == 3
    busy, frames, copied = checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, frames) == (0, copied)
    # Nothing written since: the second pass copies nothing and is the last.
    assert sqlite_storage._checkpoint_in_passes(checkpointer, path) == 2
    for conn in (checkpointer, other):
        conn.close()
    store.close()


def test_a_table_file_that_cannot_be_opened_fails_its_table_alone(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path)
    for table in ("t1", "t2"):
        store.create_table(table)
        write(store, lambda txn, t=table: txn.put_item(t, b"a", b"1", record(1), 1, 1))
    store.close()
    (tmp_path / "tables" / "t2.db").write_bytes(b"not a database" * 300)
    reopened = SqliteStorage(tmp_path)
    reopened.expect_tables(["t1", "t2", "t3"])  # t3: in the catalog, its file gone
    assert reopened.reader("t1").get(b"a") == b"1"
    assert "t2.db: file is not a database" in (reopened.unreadable("t2") or "")
    assert "t3.db: no such file" in (reopened.unreadable("t3") or "")
    with pytest.raises(TableUnreadable, match="file is not a database"):
        reopened.reader("t2")
    with pytest.raises(TableUnreadable, match="no such file"):
        write(reopened, lambda txn: txn.put_item("t3", b"a", b"1", record(1), 1, 1))
    assert sorted(reopened.tables()) == ["t1", "t2"]  # the tables with a file
    asyncio.run(reopened.drop_table("t2"))
    assert not (tmp_path / "tables" / "t2.db").exists() and reopened.unreadable("t2") is None
    reopened.close()


def test_a_multi_table_write_waits_for_a_table_file_that_cannot_be_opened(tmp_path: Path) -> None:
    _crashed_between_commits(tmp_path)
    t2 = tmp_path / "tables" / "t2.db"
    t2.rename(tmp_path / "t2.aside")
    without = SqliteStorage(tmp_path)  # t2's part cannot be replayed now: kept for later
    assert without.reader("t1").get(b"a") == b"1"
    without.close()
    (tmp_path / "t2.aside").rename(t2)
    again = SqliteStorage(tmp_path)
    assert again.reader("t2").get(b"b") == b"2", "replayed once its file was back"
    again.close()


def test_dropping_a_table_whose_file_is_gone_forgets_what_recovery_kept_for_it(tmp_path: Path) -> None:
    _crashed_between_commits(tmp_path)
    (tmp_path / "tables" / "t2.db").unlink()
    reopened = SqliteStorage(tmp_path)
    reopened.expect_tables(["t1", "t2"])
    asyncio.run(reopened.drop_table("t2"))
    reopened.close()
    redo = sqlite3.connect(tmp_path / "redo.db")
    assert redo.execute("SELECT count(*) FROM redo_meta WHERE tbl = 't2'").fetchone() == (0,)
    SqliteStorage(tmp_path).close()  # t1's part committed long ago: the batch goes
    assert redo.execute("SELECT count(*) FROM redo_meta").fetchone() == (0,)
