"""Writing a backup: items in, chunks and packs out, the manifest last.

::

    with BackupWriter(vault, backup_id, definition_json, sequence, created) as writer:
        for key, item in snapshot:            # stored key bytes ascending
            writer.add(key, item)
        manifest = writer.finish()

The writer cuts items into content-defined chunks (``tablekeeper.vault.chunks``),
looks each chunk's id up in the vault's chunk index, and packs only chunks the
vault does not have yet; full packs are sealed and written by background
threads while items keep coming.  ``finish`` writes the index of the new
packs, the backup's map and, last, its manifest (``if_absent``): only then is
the backup visible.  ``abort`` (or leaving the ``with`` block with an
exception) removes what was written; a writer that dies instead leaves packs
no manifest refers to, which nothing lists or reads and which garbage
collection removes after the grace period.

**Which chunks count as present.**  The writer reuses only chunks in packs
that a manifest of the same table (by ARN) referred to when it started (read
from those manifests and their index objects), never a pack of an unfinished
or interrupted backup.  That, a tombstone for every deleted backup, and
finishing within ``vault.max_backup_seconds`` of its start are what let
garbage collection run at any time without removing a pack this writer will
refer to (``tablekeeper.vault.gc`` has the argument).  A writer past that
deadline refuses to finish (``BackupAborted``): retry the backup.

**Failures.**  An error while writing (``StoreFull``, ``StoreUnavailable``,
...) aborts the writer and is raised from ``add`` or ``finish``; nothing
becomes visible.  The one exception is the manifest's own write: if it fails
in a way that leaves its fate unknown (a timeout), the writer keeps
everything, and ``Vault.describe(backup_id)`` tells whether the backup
exists.  Constructing a writer reads the vault (the known chunks), so do it
off any latency-sensitive path.  A writer is used from one thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import zlib
from array import array
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Final

from tablekeeper.engine.tables import TableDefinition
from tablekeeper.vault import crypto
from tablekeeper.vault import format as fmt
from tablekeeper.vault.catalog import Progress, ProgressCallback, Vault
from tablekeeper.vault.chunks import (
    BOUNDARY_SCALE,
    CHUNK_MAX,
    CHUNK_MIN,
    PACK_TARGET,
    PackBuilder,
    encode_chunk,
)
from tablekeeper.vault.errors import ObjectExists, VaultError
from tablekeeper.vault.format import BackupAborted, BackupDamaged, BackupExists, BackupManifest, PackRef

log = logging.getLogger(__name__)

UPLOAD_THREADS: Final = 2
MAX_PENDING_PACKS: Final = 4  # sealed-but-unwritten packs held in memory at most
PROGRESS_EVERY: Final = 1 << 14  # items between progress calls

_ORDINAL_BITS: Final = 32
_ORDINAL_MASK: Final = (1 << _ORDINAL_BITS) - 1


class KnownChunks:
    """The chunks a new backup may reuse: chunk id -> (pack, ordinal), from live manifests."""

    def __init__(self) -> None:
        self.packs: list[PackRef] = []
        self.locations: dict[bytes, int] = {}  # id -> pack number << 32 | ordinal
        self.index_sizes: dict[str, int] = {}

    @classmethod
    def load(cls, vault: Vault, table_arn: str) -> KnownChunks:
        """Every chunk of every pack that a readable manifest of the table refers to.

        Only the table's own backups are read (items rarely repeat across
        tables, and this keeps the index the size of one table's data).  An
        unreadable manifest or index only means less reuse: it is logged and
        skipped (``verify`` is where damage is reported).
        """
        known = cls()
        numbers: dict[str, int] = {}
        for entry in vault.manifests():
            if isinstance(entry, BackupDamaged):
                log.warning("backup: not reusing data of %s: %s", entry.object_key, entry)
                continue
            if entry.table_arn != table_arn:
                continue
            known.index_sizes.update(entry.indexes)
            for pack in entry.packs:
                if pack.name not in numbers:
                    numbers[pack.name] = len(known.packs)
                    known.packs.append(pack)
        for index in sorted({pack.index for pack in known.packs}):
            try:
                body = vault.get_object(index, kind=fmt.KIND_INDEX, backup_id=fmt.backup_id_of(index) or "",
                                        context=None)
                entries = fmt.decode_index(body, name=index, context=None)
            except BackupDamaged as error:
                log.warning("backup: not reusing chunks listed in %s: %s", index, error)
                continue
            for pack_index in entries:
                number = numbers.get(pack_index.pack)
                if number is None:
                    continue  # a pack no live backup needs: garbage collection may be removing it
                ids = pack_index.ids
                step = fmt.CHUNK_ID_BYTES
                base = number << _ORDINAL_BITS
                for ordinal in range(pack_index.count):
                    known.locations.setdefault(ids[ordinal * step:(ordinal + 1) * step], base | ordinal)
        return known


class BackupWriter:
    """Writes one backup of one table snapshot into a vault; see the module docstring.

    ``table_definition_json`` is ``TableDefinition.to_json()`` of the source
    table, ``sequence`` the change-log sequence number of the snapshot and
    ``created`` the backup's creation time (epoch seconds).  ``name``,
    ``backup_type`` and ``annotations`` are kept in the manifest for the
    catalog.  ``progress`` is called every ``PROGRESS_EVERY`` items with the
    items added (of ``expected_items`` when given).  ``clock`` is read at the
    start and at ``finish`` only, for the deadline.
    """

    def __init__(
        self,
        vault: Vault,
        backup_id: str,
        table_definition_json: str,
        sequence: int,
        created: float,
        *,
        name: str = "",
        backup_type: str = "USER",
        annotations: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        expected_items: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        fmt.check_backup_id(backup_id)
        try:
            table = TableDefinition.from_json(table_definition_json)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise VaultError(
                f"write backup {backup_id}: the table definition does not parse: {error}"
            ) from None
        self.vault = vault
        self.backup_id = backup_id
        self._table = table
        self._definition = table_definition_json
        self._sequence = sequence
        self._created = created
        self._name = name
        self._type = backup_type
        self._annotations = dict(annotations or {})
        self._progress = progress
        self._expected = expected_items
        self._clock = clock
        self._deadline = clock() + vault.max_backup_seconds
        if vault.store.head(fmt.manifest_name(backup_id)) is not None:
            raise BackupExists(f"write backup {backup_id}: it already exists in {vault.url}")

        known = KnownChunks.load(vault, table.arn)
        self._packs: list[PackRef | None] = list(known.packs)  # by pack number; None: new, unwritten
        self._locations = known.locations
        self._index_sizes = known.index_sizes
        self._numbers: dict[int, int] = {}  # pack number -> its number in this backup's manifest
        self._referenced: list[int] = []  # pack numbers in manifest order
        self._index_name = fmt.new_index_name(backup_id)

        self._parts: list[bytes] = []  # the open chunk's keys and items, interleaved
        self._chunk_bytes = 0
        self._last_key = b""
        self._items = 0
        self._item_bytes = 0
        self._key_bytes = 0
        self._chunks = 0
        self._new_chunks = 0
        self._digest = hashlib.sha256()
        self._runs = array("I")
        self._run = [0, 0, 0]  # pack (manifest number), first ordinal, count
        self._pack = self._new_pack()

        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[tuple[int, PackBuilder, Future[int]]] = []
        self._written: list[tuple[str, int]] = []  # objects this writer wrote, with sizes
        self._new_packs: list[PackBuilder] = []
        self._state = "open"  # open | finishing | finished | aborted
        self._open = True  # _state == "open", for add()

    # -- items -------------------------------------------------------------

    def add(self, key: bytes, item: bytes) -> None:
        """Add one item; keys must arrive strictly ascending."""
        if key <= self._last_key or not self._open:
            self._refuse_add(key)
        self._last_key = key
        self._parts += (key, item)
        size = len(key) + len(item)
        chunk_bytes = self._chunk_bytes + size
        if chunk_bytes >= CHUNK_MIN and (zlib.crc32(key) < size * BOUNDARY_SCALE or chunk_bytes >= CHUNK_MAX):
            self._cut()
        else:
            self._chunk_bytes = chunk_bytes

    def _refuse_add(self, key: bytes) -> None:
        if not self._open:
            raise BackupAborted(f"write backup {self.backup_id}: the writer is {self._state}")
        raise ValueError(f"write backup {self.backup_id}: key {key!r} does not follow {self._last_key!r}")

    def _cut(self) -> None:
        parts = self._parts
        chunk = encode_chunk(parts)
        self._parts = []
        self._key_bytes += sum(map(len, parts[0::2]))
        self._item_bytes += sum(map(len, parts[1::2]))
        self._chunk_bytes = 0
        count = len(parts) // 2
        before = self._items
        self._items += count
        chunk_id = bytes.fromhex(crypto.content_id(chunk, self.vault.key)[: 2 * fmt.CHUNK_ID_BYTES])
        self._digest.update(hashlib.sha256(chunk).digest())
        self._chunks += 1
        location = self._locations.get(chunk_id)
        if location is None:
            number = len(self._packs) - 1  # the open pack is always the last
            ordinal = self._pack.add(chunk, chunk_id)
            self._locations[chunk_id] = number << _ORDINAL_BITS | ordinal
            self._new_chunks += 1
        else:
            number = location >> _ORDINAL_BITS
            ordinal = location & _ORDINAL_MASK
        ref = self._numbers.get(number)
        if ref is None:
            ref = self._numbers[number] = len(self._referenced)
            self._referenced.append(number)
        run = self._run
        if run[2] and run[0] == ref and run[1] + run[2] == ordinal:
            run[2] += 1
        else:
            if run[2]:
                self._runs.extend(run)
            self._run = [ref, ordinal, 1]
        if self._pack.size >= PACK_TARGET:
            self._flush_pack()
        if self._progress is not None and self._items // PROGRESS_EVERY != before // PROGRESS_EVERY:
            self._progress(Progress(self._items, self._expected, "items"))

    # -- packs -------------------------------------------------------------

    def _new_pack(self) -> PackBuilder:
        self._packs.append(None)
        return PackBuilder(fmt.new_pack_name())

    def _flush_pack(self) -> None:
        pack = self._pack
        number = len(self._packs) - 1
        self._pack = self._new_pack()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix=f"backup-{self.backup_id}")
        self._pending.append((number, pack, self._executor.submit(self._write_pack, pack)))
        while len(self._pending) > MAX_PENDING_PACKS or (self._pending and self._pending[0][2].done()):
            try:
                self._settle_oldest()
            except BaseException:
                if self._state == "open":
                    self.abort()
                raise

    def _write_pack(self, pack: PackBuilder) -> int:
        return self.vault.put_object(pack.name, pack.plaintext(), kind=fmt.KIND_PACK, backup_id="")

    def _settle_oldest(self) -> None:
        number, pack, future = self._pending.pop(0)
        size = future.result()
        self._written.append((pack.name, size))
        self._packs[number] = PackRef(pack.name, self._index_name, size)
        pack.chunks = []  # keep the ids for the index, free the data
        self._new_packs.append(pack)

    # -- the end -----------------------------------------------------------

    def finish(self) -> BackupManifest:
        """Write what is left, the index, the map and the manifest; the backup is then visible."""
        if self._state != "open":
            raise BackupAborted(f"finish backup {self.backup_id}: the writer is {self._state}")
        self._state = "finishing"
        self._open = False
        try:
            if self._parts:
                self._cut()
            if self._pack.chunks:
                self._flush_pack()
            while self._pending:
                self._settle_oldest()
            if self._run[2]:
                self._runs.extend(self._run)
            manifest = self._write_catalog_objects()
        except BaseException:
            self.abort()
            raise
        self._state = "finished"
        self._shutdown()
        if self._progress is not None:
            self._progress(Progress(self._items, self._items, "items"))
        return manifest

    def _write_catalog_objects(self) -> BackupManifest:
        backup_id = self.backup_id
        if self._new_packs:
            body = fmt.encode_index([fmt.PackIndex(p.name, b"".join(p.ids)) for p in self._new_packs])
            size = self.vault.put_object(self._index_name, body, kind=fmt.KIND_INDEX, backup_id=backup_id)
            self._written.append((self._index_name, size))
            self._index_sizes[self._index_name] = size
        map_name = fmt.new_map_name(backup_id)
        map_size = self.vault.put_object(map_name, fmt.encode_map(self._runs), kind=fmt.KIND_MAP,
                                         backup_id=backup_id)
        self._written.append((map_name, map_size))
        packs: list[PackRef] = []
        for number in self._referenced:
            pack = self._packs[number]
            assert pack is not None, "every referenced pack is written before the map"
            packs.append(pack)
        indexes = sorted({(p.index, self._index_sizes.get(p.index, 0)) for p in packs})
        manifest = BackupManifest(
            backup_id=backup_id,
            name=self._name,
            backup_type=self._type,
            created=self._created,
            sequence=self._sequence,
            table_name=self._table.name,
            table_arn=self._table.arn,
            table_id=self._table.table_id,
            definition=self._definition,
            annotations=self._annotations,
            item_count=self._items,
            item_bytes=self._item_bytes,
            key_bytes=self._key_bytes,
            chunk_count=self._chunks,
            new_chunk_count=self._new_chunks,
            digest=self._digest.hexdigest(),
            map=map_name,
            map_size=map_size,
            packs=tuple(packs),
            indexes=tuple(indexes),
            written_bytes=sum(size for _, size in self._written),
        )
        if self._clock() > self._deadline:
            raise BackupAborted(
                f"finish backup {backup_id}: it took longer than {self.vault.max_backup_seconds:.0f} s "
                "(half the vault's garbage-collection grace period), so data it reuses may be gone; "
                "take the backup again"
            )
        name = fmt.manifest_name(backup_id)
        body = fmt.encode_manifest(manifest)
        try:
            self.vault.put_object(name, body, kind=fmt.KIND_MANIFEST, backup_id=backup_id)
        except ObjectExists:
            raise BackupExists(f"write backup {backup_id}: it already exists in {self.vault.url}") from None
        except BaseException:
            self._state = "finished"  # the manifest may have been written: keep everything
            raise
        return manifest

    def abort(self) -> None:
        """Stop and remove what this writer wrote (best effort); nothing becomes visible."""
        if self._state in ("aborted", "finished"):
            self._shutdown()
            return
        self._state = "aborted"
        self._open = False
        for _number, pack, future in self._pending:
            with contextlib.suppress(BaseException):  # a pack that failed to write needs no removing
                self._written.append((pack.name, future.result()))
        self._pending = []
        self._shutdown()
        for name, _size in self._written:
            try:
                self.vault.store.delete(name)
            except VaultError as error:
                log.warning("abort backup %s: could not remove %s (garbage collection will): %s",
                            self.backup_id, name, error)
        self._written = []

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._state != "finished":
            self.abort()

