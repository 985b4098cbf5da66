"""Writing a table as of a moment into a vault, in a worker process.

A backup (or a PITR base) is the table as of a change-log sequence number S,
read at the call.  :meth:`Snapshots.pin` notes S and holds the log records
after it from being trimmed; :meth:`Snapshots.write` then has a worker
process (``python -m tablekeeper.vault.snapshot``, at idle CPU and I/O priority) read the table file at
its current state and put back, from those log records, every item changed
since S (``engine.storage.sqlite.read_as_of``), and write the backup.

Why a process: cutting items into chunks is Python work, and in a thread it
would take the interpreter lock from the event loop for the whole backup;
the live table's write latency would suffer (docs/benchmarks.md measures
it).  A vault given without a :class:`VaultSpec` (tests with in-memory
stores) is written from a thread instead, by the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.storage.sqlite import read_as_of
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import load_item
from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.format import BackupAborted, BackupManifest


@dataclass(frozen=True)
class VaultSpec:
    """How to open a vault again in another process: its URL, key file and S3 settings.

    S3 credentials are not in it: the worker inherits the engine's environment.
    """

    url: str
    key_file: str
    endpoint_url: str | None = None
    region: str | None = None

    def open(self) -> Vault:
        from tablekeeper.vault.crypto import VaultKey
        from tablekeeper.vault.store import open_store

        store = open_store(self.url, endpoint_url=self.endpoint_url, region=self.region)
        return Vault(store, VaultKey.load(self.key_file))


@dataclass(frozen=True)
class SnapshotJob:
    """One backup to write: which table file, as of which sequence number, under which id."""

    table_file: str
    sequence: int
    backup_id: str
    definition: str  # the table's TableDefinition.to_json() at the call
    created: float
    name: str
    backup_type: str
    item_count: int
    annotations: Mapping[str, str]


def write_backup(
    vault: Vault, job: SnapshotJob, stopping: Callable[[], bool], clock: Callable[[], float] = time.time
) -> BackupManifest:
    """Write ``job``'s table as of its sequence number as a backup; gives up when ``stopping()``."""
    table = TableDefinition.from_json(job.definition)

    def key_of(keys: bytes) -> bytes:
        return table.key_schema.encode(load_item(orjson.loads(keys)))

    with BackupWriter(
        vault, job.backup_id, job.definition, job.sequence, job.created, name=job.name,
        backup_type=job.backup_type, annotations=dict(job.annotations), expected_items=job.item_count,
        clock=clock,
    ) as writer:
        for count, (key, item) in enumerate(read_as_of(Path(job.table_file), job.sequence, key_of)):
            if count % 1024 == 0 and stopping():
                raise BackupAborted(f"write backup {job.backup_id}: the engine is stopping")
            writer.add(key, item)
        return writer.finish()


@dataclass(frozen=True)
class Pinned:
    """A table's moment for a backup: its sequence number and counts then."""

    table: TableDefinition
    sequence: int
    item_count: int
    item_bytes: int
    hold: str


class Snapshots:
    """Pins moments of tables and writes them as backups; see the module docstring."""

    def __init__(self, engine: Engine, vault: Vault, spec: VaultSpec | None) -> None:
        self.engine = engine
        self.vault = vault
        self.spec = spec
        self._stopping = threading.Event()
        self._workers: set[asyncio.subprocess.Process] = set()
        self._held: dict[str, tuple[str, int]] = {}  # hold name -> (table id, first needed sequence)
        engine.hold_log(f"snapshots-{id(self)}", self._floor)

    def _floor(self, table_id: str) -> int | None:
        floors = [first for held, first in self._held.values() if held == table_id]
        return min(floors) if floors else None

    def pin(self, table: TableDefinition, hold: str) -> Pinned:
        """The table's committed state now; its later log records are held until ``write`` ends."""
        stats = self.engine.reader(table).stats()
        self._held[hold] = (table.table_id, stats.last_sequence + 1)
        return Pinned(table, stats.last_sequence, stats.item_count, stats.item_bytes, hold)

    def release(self, pinned: Pinned) -> None:
        """Give up a pinned moment without writing it."""
        self._held.pop(pinned.hold, None)

    async def write(self, pinned: Pinned, job: SnapshotJob) -> BackupManifest:
        """Write the pinned moment (``job``), then release its hold on the log."""
        try:
            if self.spec is None:
                return await asyncio.to_thread(write_backup, self.vault, job, self._stopping.is_set,
                                               self.engine.clock)
            return await self._in_worker(job)
        finally:
            self.release(pinned)

    def job(self, pinned: Pinned, backup_id: str, created: float, name: str, backup_type: str,
            annotations: Mapping[str, str]) -> SnapshotJob:
        return SnapshotJob(
            table_file=str(self.engine.storage.table_file(pinned.table.table_id)),
            sequence=pinned.sequence, backup_id=backup_id, definition=pinned.table.to_json(),
            created=created, name=name, backup_type=backup_type, item_count=pinned.item_count,
            annotations=dict(annotations),
        )

    async def _in_worker(self, job: SnapshotJob) -> BackupManifest:
        assert self.spec is not None
        request = json.dumps({"vault": dataclasses.asdict(self.spec), "job": dataclasses.asdict(job),
                              "parent": os.getpid()})
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tablekeeper.vault.snapshot",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        self._workers.add(worker)
        try:
            _, err = await worker.communicate(request.encode())
        finally:
            self._workers.discard(worker)
        if worker.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise VaultError(lines[-1] if lines else
                             f"write backup {job.backup_id}: the worker exited with {worker.returncode}")
        return await asyncio.to_thread(self.vault.load_manifest, job.backup_id, "write")

    def close(self) -> None:
        self._stopping.set()
        for worker in self._workers:
            if worker.returncode is None:
                worker.kill()


def _die_with_parent(parent: int | None) -> None:
    """On Linux, end with the engine (even a kill -9 of it): a backup it no longer waits for
    would otherwise go on and land in the vault unrecorded (its pieces are garbage, collected
    after the grace period; a finished one would be a stray backup)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:  # the engine died before the line above
        sys.exit(1)


# ioprio_set(2): the syscall's number by machine, and "idle class" for this process.
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}
_IOPRIO_WHO_PROCESS, _IOPRIO_CLASS_IDLE, _IOPRIO_CLASS_SHIFT = 1, 3, 13


def _yield_to_the_engine() -> None:
    """The live table's requests come first: a backup may take longer, not them.  The worker runs
    as SCHED_IDLE (CPU only when the engine leaves it; nice 19 where that is refused) and in the
    idle I/O class (its reads and writes wait for the engine's, where the disk's scheduler knows
    priorities).  Neither starves it outright: the kernel still gives idle work a trickle."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(19)
    number = _IOPRIO_SET.get(os.uname().machine)
    if number is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(number, _IOPRIO_WHO_PROCESS, 0, _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT)


def main() -> int:
    """The worker: a JSON request on stdin, the backup written, its id on stdout; an error on stderr."""
    request: dict[str, Any] = json.loads(sys.stdin.read())
    _die_with_parent(request.get("parent"))
    _yield_to_the_engine()
    try:
        vault = VaultSpec(**request["vault"]).open()
        job = SnapshotJob(**request["job"])
        manifest = write_backup(vault, job, lambda: False)
    except (VaultError, OSError) as error:
        print(str(error), file=sys.stderr)
        return 1
    except Exception as error:  # the storage's own errors: "read table ...: cause"
        print(f"write backup {request['job'].get('backup_id')}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"backup_id": manifest.backup_id}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
