"""The catalog: a vault's backups, found, described, read and deleted with only the store and key.

``Vault(store, key)`` is the one entry point for everything about backups in
a vault; it keeps no state of its own, so any number of processes (engines,
the CLI, the operator) may hold a ``Vault`` of one store at once.  What a
backup is and how it is laid out is in ``tablekeeper.vault.format``;
writing one is ``tablekeeper.vault.backup.BackupWriter``; garbage
collection is ``tablekeeper.vault.gc``.

* ``list_backups()`` reads every manifest (``manifests/`` lists in id order,
  which is creation order).  A manifest that will not open is listed with
  status ``DAMAGED`` and the reason, not skipped; a wrong key raises
  ``WrongKey``.
* ``describe(id)`` is the manifest; ``BackupNotFound`` when there is none.
* ``read_items(id)`` yields the backup's (key, item) pairs in key order,
  authenticating each object before yielding anything from it;
  ``verify(id)`` checks every object and lists all problems.
* ``delete_backup(id)`` writes a tombstone listing what the backup
  referenced, then removes its manifest: the backup is gone at once, its
  data at the first garbage collection after the grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from tablekeeper.vault import format as fmt
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.errors import ObjectExists, ObjectNotFound, WrongKey
from tablekeeper.vault.format import BackupDamaged, BackupManifest, BackupNotFound
from tablekeeper.vault.store import ObjectStore

log = logging.getLogger(__name__)

# How long an unreferenced object (an interrupted backup's pack, a deleted
# backup's data) stays before garbage collection may remove it.  A backup
# writer must finish within half of it (the other half absorbs clock skew
# between writers, the store and the collector); see tablekeeper.vault.gc.
DEFAULT_GRACE: Final = 24 * 3600.0

AVAILABLE: Final = "AVAILABLE"
DAMAGED: Final = "DAMAGED"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a long operation is: ``done`` of ``total`` (None when unknown) ``unit``s."""

    done: int
    total: int | None
    unit: str


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """One line of ``list_backups``: a backup as its manifest says, or why it cannot be read."""

    backup_id: str
    status: str
    created: float
    name: str = ""
    backup_type: str = ""
    table_name: str = ""
    table_arn: str = ""
    table_id: str = ""
    sequence: int = 0
    item_count: int = 0
    item_bytes: int = 0
    stored_bytes: int = 0
    written_bytes: int = 0
    problem: str | None = None

    @classmethod
    def of(cls, manifest: BackupManifest) -> BackupSummary:
        return cls(
            backup_id=manifest.backup_id,
            status=AVAILABLE,
            created=manifest.created,
            name=manifest.name,
            backup_type=manifest.backup_type,
            table_name=manifest.table_name,
            table_arn=manifest.table_arn,
            table_id=manifest.table_id,
            sequence=manifest.sequence,
            item_count=manifest.item_count,
            item_bytes=manifest.item_bytes,
            stored_bytes=manifest.stored_bytes,
            written_bytes=manifest.written_bytes,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "BackupId": self.backup_id,
            "Status": self.status,
            "Created": self.created,
            "Name": self.name,
            "Type": self.backup_type,
            "TableName": self.table_name,
            "TableArn": self.table_arn,
            "TableId": self.table_id,
            "Sequence": self.sequence,
            "ItemCount": self.item_count,
            "ItemBytes": self.item_bytes,
            "StoredBytes": self.stored_bytes,
            "WrittenBytes": self.written_bytes,
            **({"Problem": self.problem} if self.problem else {}),
        }


class Vault:
    """The backups in one object store, sealed with one vault key."""

    def __init__(self, store: ObjectStore, key: VaultKey, *, grace: float = DEFAULT_GRACE) -> None:
        if grace <= 0:
            raise ValueError(f"open vault {store.url}: the grace period must be positive, not {grace}")
        self.store = store
        self.key = key
        self.grace = grace

    def __repr__(self) -> str:
        return f"Vault({self.store.url})"

    @property
    def url(self) -> str:
        return self.store.url

    @property
    def max_backup_seconds(self) -> float:
        """How long a backup writer may take before it must give up (half the grace period)."""
        return self.grace / 2

    # -- objects -----------------------------------------------------------

    def put_object(self, name: str, body: bytes, *, kind: bytes, backup_id: str) -> int:
        """Seal ``body`` and write it once under ``name``; returns the stored size."""
        data = fmt.seal_object(body, kind=kind, name=name, backup_id=backup_id, key=self.key)
        self.store.put(name, data, if_absent=True)
        return len(data)

    def get_object(self, name: str, *, kind: bytes, backup_id: str, context: str | None) -> bytes:
        """Read and open one object; a missing one is ``BackupDamaged`` (it was referenced)."""
        try:
            data = self.store.get(name)
        except ObjectNotFound:
            raise fmt.damaged(context, name, f"{fmt.KIND_NAMES[kind]} is missing") from None
        return self.open(name, data, kind=kind, backup_id=backup_id, context=context)

    def open(self, name: str, data: bytes, *, kind: bytes, backup_id: str, context: str | None) -> bytes:
        try:
            return fmt.open_object(data, kind=kind, name=name, backup_id=backup_id, key=self.key,
                                   context=context)
        except WrongKey as error:
            raise WrongKey(f"open {self.url}/{name}: {error}") from error

    # -- manifests ---------------------------------------------------------

    def load_manifest(self, backup_id: str, verb: str = "describe") -> BackupManifest:
        """The manifest of a backup: ``BackupNotFound``, ``BackupDamaged`` or ``WrongKey`` if not."""
        fmt.check_backup_id(backup_id)
        name = fmt.manifest_name(backup_id)
        try:
            data = self.store.get(name)
        except ObjectNotFound:
            raise BackupNotFound(f"{verb} backup {backup_id}: not found in {self.url}") from None
        body = self.open(name, data, kind=fmt.KIND_MANIFEST, backup_id=backup_id, context=backup_id)
        return fmt.decode_manifest(body, name=name, backup_id=backup_id)

    def manifests(self) -> Iterator[BackupManifest | BackupDamaged]:
        """Every backup's manifest in id order, or the error that keeps it from being read.

        A manifest deleted while listing is skipped; ``WrongKey`` is raised.
        """
        for info in self.store.list(fmt.MANIFESTS):
            backup_id = info.key[len(fmt.MANIFESTS):]
            if not fmt.BACKUP_ID.match(backup_id):
                yield fmt.damaged(None, info.key, "not a manifest name (stray object)")
                continue
            try:
                yield self.load_manifest(backup_id)
            except BackupNotFound:
                continue
            except BackupDamaged as error:
                yield error

    # -- the catalog -------------------------------------------------------

    def list_backups(self) -> list[BackupSummary]:
        """Every backup in the vault, oldest first; damaged ones with status DAMAGED."""
        summaries = []
        for entry in self.manifests():
            if isinstance(entry, BackupManifest):
                summaries.append(BackupSummary.of(entry))
            else:
                backup_id = fmt.backup_id_of(entry.object_key) or entry.object_key
                created = fmt.backup_id_time(backup_id) if fmt.BACKUP_ID.match(backup_id) else 0.0
                summaries.append(BackupSummary(backup_id, DAMAGED, created, problem=str(entry)))
        return summaries

    def describe(self, backup_id: str) -> BackupManifest:
        return self.load_manifest(backup_id)

    def read_items(
        self, backup_id: str, progress: ProgressCallback | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """The backup's (stored key, stored item) pairs in key order, each object verified first."""
        from tablekeeper.vault.reader import read_items

        return read_items(self, backup_id, progress)

    def verify(self, backup_id: str, progress: ProgressCallback | None = None) -> VerifyReport:
        """Check every object the backup needs; lists every problem rather than stopping at one."""
        from tablekeeper.vault.reader import verify

        return verify(self, backup_id, progress)

    def delete_backup(self, backup_id: str) -> None:
        """Remove a backup: a tombstone with its references, then its manifest goes.

        The tombstone keeps the backup's data from garbage collection for
        the grace period, for a backup being written that shares it.  A
        manifest that cannot be read is removed without a tombstone (no
        writer can have shared data through it).
        """
        try:
            manifest: BackupManifest | None = self.load_manifest(backup_id, "delete")
        except BackupDamaged as error:
            log.warning("delete backup %s: its manifest is unreadable, removing it: %s", backup_id, error)
            manifest = None
        if manifest is not None:
            name = fmt.tombstone_name(backup_id)
            body = fmt.encode_tombstone(manifest)
            try:
                self.put_object(name, body, kind=fmt.KIND_TOMBSTONE, backup_id=backup_id)
            except ObjectExists:
                # A delete that stopped half way: restart the tombstone's clock from now.
                self.store.delete(name)
                self.put_object(name, body, kind=fmt.KIND_TOMBSTONE, backup_id=backup_id)
        self.store.delete(fmt.manifest_name(backup_id))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a backup: the object and what is wrong with it."""

    object_key: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"Object": self.object_key, "Problem": self.message}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` found: ``ok`` when every object opened and everything added up."""

    backup_id: str
    problems: tuple[Problem, ...]
    objects_checked: int
    bytes_read: int
    item_count: int
    chunk_count: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "BackupId": self.backup_id,
            "Ok": self.ok,
            "ObjectsChecked": self.objects_checked,
            "BytesRead": self.bytes_read,
            "ItemCount": self.item_count,
            "ChunkCount": self.chunk_count,
            "Problems": [p.to_json() for p in self.problems],
        }
