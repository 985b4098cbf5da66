"""Reading and verifying a backup: its manifest, its map, and the packs the map points into.

``read_items`` follows the map run by run and yields every item of every
chunk in key order.  Packs are fetched and opened by a few threads ahead of
use (in order of first use) and kept, opened, until their last run; when
the open packs outgrow ``CACHE_BYTES`` the one needed again last is dropped
and fetched again when its turn comes.  Nothing is yielded from a pack before
the whole pack has been authenticated (``BackupDamaged`` names the object and
the backup); a chunk's framing and its keys' order are checked before its
items are yielded; at the end the item count, bytes and the digest of the
chunks must equal the manifest's.

``verify`` reads every object the backup needs once, in manifest order, and
collects every problem it finds -- a missing, truncated, altered or swapped
object, a chunk id that differs from its index, framing that does not add
up, counts or a digest that differ from the manifest -- instead of stopping
at the first.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tablekeeper.vault import crypto
from tablekeeper.vault import format as fmt
from tablekeeper.vault.catalog import Problem, Progress, ProgressCallback, VerifyReport
from tablekeeper.vault.chunks import ChunkError, check_chunk, chunk_lengths, pack_offsets
from tablekeeper.vault.errors import ObjectNotFound
from tablekeeper.vault.format import BackupDamaged, BackupManifest, PackIndex, PackRef, Run

if TYPE_CHECKING:
    from tablekeeper.vault.catalog import Vault

READ_AHEAD: Final = 3
CACHE_BYTES: Final = 512 * 1024 * 1024
PROGRESS_EVERY: Final = 1 << 14


@dataclass(frozen=True, slots=True)
class OpenPack:
    """A pack's authenticated plaintext and where its chunks start (``len(offsets)`` = chunks + 1)."""

    plaintext: bytes
    offsets: list[int]

    @property
    def chunk_count(self) -> int:
        return len(self.offsets) - 1


def open_pack(vault: Vault, ref: PackRef, context: str) -> OpenPack:
    body = vault.get_object(ref.name, kind=fmt.KIND_PACK, backup_id="", context=context)
    try:
        return OpenPack(body, pack_offsets(body))
    except ChunkError as error:
        raise fmt.damaged(context, ref.name, f"malformed pack ({error})") from error


def load_map(vault: Vault, manifest: BackupManifest) -> list[Run]:
    body = vault.get_object(manifest.map, kind=fmt.KIND_MAP, backup_id=manifest.backup_id,
                            context=manifest.backup_id)
    return fmt.decode_map(body, name=manifest.map, backup_id=manifest.backup_id, packs=len(manifest.packs))


def chunk_id(chunk: bytes, key: crypto.VaultKey) -> bytes:
    return bytes.fromhex(crypto.content_id(chunk, key)[: 2 * fmt.CHUNK_ID_BYTES])


# -- reading -------------------------------------------------------------


def read_items(
    vault: Vault, backup_id: str, progress: ProgressCallback | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """The backup's items in key order; the manifest and map are read before this returns."""
    manifest = vault.load_manifest(backup_id, "read")
    runs = load_map(vault, manifest)
    return _read(vault, manifest, runs, progress)


def _read(
    vault: Vault, manifest: BackupManifest, runs: list[Run], progress: ProgressCallback | None
) -> Iterator[tuple[bytes, bytes]]:
    backup_id = manifest.backup_id
    packs = _PackCache(vault, manifest, runs)
    digest = hashlib.sha256()
    sha256 = hashlib.sha256
    items = item_bytes = chunks = 0
    last = b""
    try:
        for position, run in enumerate(runs):
            pack = packs.get(run.pack)
            if run.first + run.count > pack.chunk_count:
                raise fmt.damaged(backup_id, manifest.map, f"refers to chunk {run.first + run.count - 1} "
                                  f"of {manifest.packs[run.pack].name}, which has {pack.chunk_count}")
            plain = pack.plaintext
            view = memoryview(plain)
            offsets = pack.offsets
            for ordinal in range(run.first, run.first + run.count):
                start = offsets[ordinal]
                end = offsets[ordinal + 1]
                try:
                    lengths = chunk_lengths(plain, start, end)
                except ChunkError as error:
                    raise fmt.damaged(backup_id, manifest.packs[run.pack].name,
                                      f"chunk {ordinal}: {error}") from None
                digest.update(sha256(view[start:end]).digest())
                pos = start + 4 + 4 * len(lengths)
                for i in range(0, len(lengths), 2):
                    key_end = pos + lengths[i]
                    item_end = key_end + lengths[i + 1]
                    item_key = plain[pos:key_end]
                    if item_key <= last:
                        raise fmt.damaged(backup_id, manifest.packs[run.pack].name,
                                          f"chunk {ordinal} breaks key order")
                    last = item_key
                    yield item_key, plain[key_end:item_end]
                    pos = item_end
                count = len(lengths) // 2
                items += count
                item_bytes += sum(lengths[1::2])
                chunks += 1
                if progress is not None and items // PROGRESS_EVERY != (items - count) // PROGRESS_EVERY:
                    progress(Progress(items, manifest.item_count, "items"))
            view.release()
            packs.done(run.pack, position)
    finally:
        packs.close()
    found = (items, item_bytes, chunks, digest.hexdigest())
    expected = (manifest.item_count, manifest.item_bytes, manifest.chunk_count, manifest.digest)
    if found != expected:
        raise fmt.damaged(backup_id, fmt.manifest_name(backup_id),
                          f"read {items} items ({item_bytes} bytes, {chunks} chunks) that do not add up "
                          f"to the manifest's {manifest.item_count} ({manifest.item_bytes} bytes, "
                          f"{manifest.chunk_count} chunks) or its digest")
    if progress is not None:
        progress(Progress(items, manifest.item_count, "items"))


class _PackCache:
    """Opened packs for one read: fetched ahead by threads, kept until their last run."""

    def __init__(self, vault: Vault, manifest: BackupManifest, runs: list[Run]) -> None:
        self.vault = vault
        self.manifest = manifest
        self.budget = CACHE_BYTES
        self.read_ahead = read_ahead = READ_AHEAD
        self.uses: dict[int, deque[int]] = {}
        for position, run in enumerate(runs):
            self.uses.setdefault(run.pack, deque()).append(position)
        self.order = list(self.uses)  # packs in order of first use
        self.next = 0
        self.open: dict[int, OpenPack] = {}
        self.open_bytes = 0
        self.ahead: dict[int, Future[OpenPack]] = {}
        self.executor = (
            ThreadPoolExecutor(read_ahead, thread_name_prefix="backup-read") if read_ahead else None
        )

    def _load(self, number: int) -> OpenPack:
        return open_pack(self.vault, self.manifest.packs[number], self.manifest.backup_id)

    def get(self, number: int) -> OpenPack:
        self._fetch_ahead()
        pack = self.open.get(number)
        if pack is None:
            future = self.ahead.pop(number, None)
            pack = future.result() if future is not None else self._load(number)
            self.open[number] = pack
            self.open_bytes += len(pack.plaintext)
            self._evict(keep=number)
        return pack

    def done(self, number: int, position: int) -> None:
        uses = self.uses[number]
        assert uses[0] == position
        uses.popleft()
        if not uses:
            self._drop(number)

    def _fetch_ahead(self) -> None:
        if self.executor is None:
            return
        while len(self.ahead) < self.read_ahead and self.next < len(self.order):
            number = self.order[self.next]
            self.next += 1
            if number not in self.open:
                self.ahead[number] = self.executor.submit(self._load, number)

    def _evict(self, keep: int) -> None:
        while self.open_bytes > self.budget and len(self.open) > 1:
            victim = max((n for n in self.open if n != keep), key=lambda n: self.uses[n][0])
            self._drop(victim)

    def _drop(self, number: int) -> None:
        pack = self.open.pop(number, None)
        if pack is not None:
            self.open_bytes -= len(pack.plaintext)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
        self.open.clear()
        self.ahead.clear()


# -- verifying -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ChunkFacts:
    digest: bytes
    items: int
    item_bytes: int
    first: bytes
    last: bytes


class _Verification:
    def __init__(self, vault: Vault, manifest: BackupManifest, progress: ProgressCallback | None) -> None:
        self.vault = vault
        self.manifest = manifest
        self.backup_id = manifest.backup_id
        self.progress = progress
        self.problems: list[Problem] = []
        self.objects = 1  # the manifest
        self.bytes_read = 0
        self.total = sum(p.size for p in manifest.packs)
        self.facts: dict[tuple[int, int], _ChunkFacts] = {}
        self.indexes_read: set[str] = set()

    def problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))

    def damage(self, error: BackupDamaged) -> None:
        self.problem(error.object_key, error.cause)

    def run(self) -> VerifyReport:
        try:
            runs: list[Run] | None = load_map(self.vault, self.manifest)
            self.objects += 1
        except BackupDamaged as error:
            self.damage(error)
            runs = None
        indexes = self._indexes()
        used: dict[int, set[int]] = {}
        for run in runs or ():
            used.setdefault(run.pack, set()).update(range(run.first, run.first + run.count))
        for number, ref in enumerate(self.manifest.packs):
            self._pack(number, ref, indexes, used.get(number, set()))
        items = chunks = 0
        if runs is not None:
            items, chunks = self._walk(runs)
        return VerifyReport(self.backup_id, tuple(self.problems), self.objects, self.bytes_read, items,
                            chunks)

    def _indexes(self) -> dict[str, PackIndex]:
        found: dict[str, PackIndex] = {}
        for name, _size in self.manifest.indexes:
            try:
                body = self.vault.get_object(name, kind=fmt.KIND_INDEX,
                                             backup_id=fmt.backup_id_of(name) or "", context=self.backup_id)
                for entry in fmt.decode_index(body, name=name, context=self.backup_id):
                    found[entry.pack] = entry
                self.objects += 1
                self.indexes_read.add(name)
            except BackupDamaged as error:
                self.problem(name, f"{error.cause} (restores are not affected; new backups will not "
                             "reuse the chunks it lists)")
        return found

    def _pack(self, number: int, ref: PackRef, indexes: dict[str, PackIndex], used: set[int]) -> None:
        try:
            data = self.vault.store.get(ref.name)
        except ObjectNotFound:
            self.problem(ref.name, "pack is missing")
            return
        self.bytes_read += len(data)
        try:
            body = self.vault.open(ref.name, data, kind=fmt.KIND_PACK, backup_id="", context=self.backup_id)
            offsets = pack_offsets(body)
        except BackupDamaged as error:
            self.damage(error)
            return
        except ChunkError as error:
            self.problem(ref.name, f"malformed pack ({error})")
            return
        finally:
            if self.progress is not None:
                self.progress(Progress(self.bytes_read, self.total, "bytes"))
        self.objects += 1
        if len(data) != ref.size:
            self.problem(ref.name, f"pack is {len(data)} bytes, the manifest says {ref.size}")
        index = indexes.get(ref.name)
        chunk_count = len(offsets) - 1
        if index is None and ref.index in self.indexes_read:
            self.problem(ref.name, f"pack is not listed in its index {ref.index}")
        if index is not None and index.count != chunk_count:
            self.problem(ref.name, f"pack has {chunk_count} chunks, its index {ref.index} lists "
                         f"{index.count}")
            index = None
        mismatched = 0
        for ordinal in sorted(used):
            if ordinal >= chunk_count:
                self.problem(self.manifest.map, f"refers to chunk {ordinal} of {ref.name}, "
                             f"which has {chunk_count}")
                break
            chunk = body[offsets[ordinal]:offsets[ordinal + 1]]
            cid = chunk_id(chunk, self.vault.key)
            if index is not None and index.id_at(ordinal) != cid:
                mismatched += 1
            try:
                count, item_bytes, _key_bytes, first, last = check_chunk(chunk, 0, len(chunk))
            except ChunkError as error:
                self.problem(ref.name, f"chunk {ordinal}: {error}")
                continue
            self.facts[number, ordinal] = _ChunkFacts(hashlib.sha256(chunk).digest(), count, item_bytes,
                                                      first, last)
        if mismatched:
            self.problem(ref.name, f"{mismatched} chunk ids differ from its index {ref.index}")

    def _walk(self, runs: list[Run]) -> tuple[int, int]:
        manifest = self.manifest
        digest = hashlib.sha256()
        items = item_bytes = chunks = 0
        complete = True
        last = b""
        out_of_order = False
        for run in runs:
            for ordinal in range(run.first, run.first + run.count):
                facts = self.facts.get((run.pack, ordinal))
                if facts is None:
                    complete = False
                    continue
                digest.update(facts.digest)
                items += facts.items
                item_bytes += facts.item_bytes
                chunks += 1
                if facts.first <= last and not out_of_order:
                    out_of_order = True
                    self.problem(manifest.map, f"chunk {ordinal} of {manifest.packs[run.pack].name} "
                                 "breaks key order")
                last = facts.last
        if complete:
            found = (items, item_bytes, chunks, digest.hexdigest())
            expected = (manifest.item_count, manifest.item_bytes, manifest.chunk_count, manifest.digest)
            if found != expected:
                self.problem(fmt.manifest_name(self.backup_id),
                             f"the backup holds {items} items ({item_bytes} bytes, {chunks} chunks); "
                             f"the manifest says {manifest.item_count} ({manifest.item_bytes} bytes, "
                             f"{manifest.chunk_count} chunks), or the digest differs")
        return items, chunks


def verify(vault: Vault, backup_id: str, progress: ProgressCallback | None = None) -> VerifyReport:
    """Check everything a backup needs; ``BackupNotFound`` / ``WrongKey`` raise, damage is reported."""
    try:
        manifest = vault.load_manifest(backup_id, "verify")
    except BackupDamaged as error:
        return VerifyReport(backup_id, (Problem(error.object_key, error.cause),), 0, 0, 0, 0)
    return _Verification(vault, manifest, progress).run()
