#!/usr/bin/env python3
"""What one index entry costs a write in bare sqlite3, written in place or appended and merged.

The engine writes a global index entry into its own B-tree in the item's transaction; with random
index keys every entry dirties a randomly placed page (docs/benchmarks.md, "What an index and a
stream cost a write"). This asks whether an index store that appends entries in the write's
transaction and merges them into the index in sorted batches would cost a write less, without
building one. Each write has the engine's shape: a savepoint, a read of the old item, the item,
a change log row; 8 writes per commit; one table file in WAL mode at ``synchronous=NORMAL``.

  plain      no index
  direct     + an INSERT of the entry into the index (what the engine does)
  append     + an INSERT of an entry whose key sorts after every other (appended at the index's end)
  deltaN     + an append of the entry to a delta table; every N commits one transaction moves the
             delta into the index in key order (a store built so would also need reads to merge
             the two, which this does not count)

CPU is the process's user + system time per write, merges included. ``--no-savepoints`` drops the
per-write savepoint, ``--autocheckpoint 0`` the WAL's checkpoints, to see what each costs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

REFERENCE = b"\x00\x00\x01\x00\x00\x14"  # an ALL index entry's value: a reference to the item
WRITES_PER_COMMIT = 8


def item_key(i: int) -> bytes:
    return hashlib.blake2b(str(i).encode(), digest_size=4).digest() + b"pk%08d" % i


def index_key(i: int, group: int) -> bytes:
    return hashlib.blake2b(b"g%d" % group, digest_size=4).digest() + b"g%05d" % group + item_key(i)


def appended_key(i: int) -> bytes:
    return b"\xff" * 5 + b"%010d" % i


def open_file(path: Path, autocheckpoint: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-16384", "mmap_size=268435456",
                   "temp_store=MEMORY", f"wal_autocheckpoint={autocheckpoint}"):  # fmt: skip
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE items (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("CREATE TABLE idx (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TABLE delta (seq INTEGER PRIMARY KEY, k BLOB NOT NULL, v BLOB)")
    return conn


def run(mode: str, merge_every: int, preload: int, writes: int, folder: Path,
        savepoints: bool = True, autocheckpoint: int = 1000) -> str:
    path = folder / f"{mode}{merge_every}.db"
    conn = open_file(path, autocheckpoint)
    value, groups = b"x" * 200, random.Random(1)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO items VALUES (?, ?)", ((item_key(i), value) for i in range(preload)))
    if mode != "plain":
        entries = ((index_key(i, groups.randrange(20_000)), REFERENCE) for i in range(preload))
        conn.executemany("INSERT INTO idx VALUES (?, ?)", entries)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before, started = os.times(), time.perf_counter()
    for commits, first in enumerate(range(preload, preload + writes, WRITES_PER_COMMIT), start=1):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(first, first + WRITES_PER_COMMIT):
            key = item_key(i)
            if savepoints:
                conn.execute("SAVEPOINT w")
            conn.execute("SELECT v FROM items WHERE k = ?", (key,)).fetchone()
            conn.execute("INSERT OR REPLACE INTO items VALUES (?, ?)", (key, value))
            conn.execute("INSERT INTO log VALUES (?, ?)", (i, value))
            entry = (index_key(i, groups.randrange(20_000)), REFERENCE)
            if mode == "direct":
                conn.execute("INSERT INTO idx VALUES (?, ?)", entry)
            elif mode == "append":
                conn.execute("INSERT INTO idx VALUES (?, ?)", (appended_key(i), REFERENCE))
            elif mode == "delta":
                conn.execute("INSERT INTO delta (k, v) VALUES (?, ?)", entry)
            if savepoints:
                conn.execute("RELEASE w")
        conn.execute("COMMIT")
        if mode == "delta" and commits % merge_every == 0:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO idx SELECT k, v FROM delta ORDER BY k")
            conn.execute("DELETE FROM delta")
            conn.execute("COMMIT")
    after, wall = os.times(), time.perf_counter() - started
    conn.close()
    system = (after.system - before.system) / writes * 1e6
    cpu = (after.user - before.user) / writes * 1e6 + system
    label = f"delta{merge_every}" if mode == "delta" else mode
    per_write = wall / writes * 1e6
    return f"{label:10s} CPU {cpu:6.1f} us/write (system {system:5.1f})  wall {per_write:6.1f} us/write"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modes", nargs="*", default=["plain", "direct", "delta64"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preload", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=40_000)
    parser.add_argument("--no-savepoints", dest="savepoints", action="store_false")
    parser.add_argument("--autocheckpoint", type=int, default=1000, help="wal_autocheckpoint (0: none)")
    args = parser.parse_args()
    for _ in range(args.rounds):
        for name in args.modes:
            mode = "delta" if name.startswith("delta") else name
            if mode not in ("plain", "direct", "append", "delta"):
                parser.error(f"unknown mode {name}: plain, direct, append or deltaN")
            with tempfile.TemporaryDirectory() as folder:
                print(run(mode, int(name[5:] or 64) if mode == "delta" else 0, args.preload, args.writes,
                          Path(folder), args.savepoints, args.autocheckpoint), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
