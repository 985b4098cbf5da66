"""Garbage collection: remove backup data no backup needs, never data a backup may still need.

``plan_gc`` is the decision, a pure function of listings, references, ``now``
and ``grace``; ``collect_garbage`` lists the vault, calls it, and deletes.

**The rule.**  A pack, map or index object is deleted when no manifest
refers to it, no tombstone younger than ``grace`` refers to it, and it was
written more than ``grace`` ago.  A tombstone older than ``grace`` is
deleted too.  Manifests are never deleted here (``Vault.delete_backup``
does that, leaving a tombstone).  Objects under other prefixes are not
looked at.  If a manifest, or a tombstone still in its grace, cannot be
read, nothing at all is deleted: what it refers to is unknown.

**Why that never deletes what a backup being written will refer to.**  A
writer started at ``t0`` refers to two kinds of objects:

* the ones it writes itself, after ``t0`` -- kept while younger than
  ``grace``, and the writer commits (writes its manifest) by
  ``t0 + grace/2`` or not at all (``BackupWriter`` refuses to finish later);
* packs it reuses, which it took only from manifests it read after ``t0``.
  While such a manifest exists it protects them; when it is deleted at
  ``td > t0`` its tombstone (written *before* the manifest is removed)
  protects them until ``td + grace > t0 + grace``, by which time the writer
  has committed, so its own manifest protects them, or given up.

The collector lists manifests *before* tombstones, so a backup deleted
between the two listings is seen through its tombstone; and it is given
``now`` from before it lists anything.  Clocks (the writer's, the store's
modification times, the collector's) must agree to well within
``grace / 2``, which is hours by default (``catalog.DEFAULT_GRACE``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tablekeeper.vault import format as fmt
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.errors import ObjectNotFound, VaultError
from tablekeeper.vault.format import BackupDamaged, BackupManifest
from tablekeeper.vault.store import ObjectInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deleted backup's tombstone: when it was written and what it referred to (None: unreadable)."""

    key: str
    modified: float
    references: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class GcPlan:
    """What to delete, and why the rest stays."""

    delete: tuple[str, ...]
    expired_tombstones: tuple[str, ...]
    bytes_freed: int
    kept_referenced: int
    kept_young: int
    refused: str | None = None


def plan_gc(
    *,
    objects: Iterable[ObjectInfo],
    referenced: frozenset[str] | set[str],
    tombstones: Sequence[Tombstone],
    unreadable_manifests: Sequence[str] = (),
    now: float,
    grace: float,
) -> GcPlan:
    """Decide which data objects and tombstones go; see the module docstring for the rule.

    ``objects`` are the data objects listed (maps, indexes, packs);
    ``referenced`` everything the live manifests refer to.
    """
    if grace <= 0:
        raise ValueError(f"plan garbage collection: grace must be positive, not {grace}")
    if unreadable_manifests:
        return _refuse(f"manifest {unreadable_manifests[0]} cannot be read, so what it refers to is unknown")
    protected = set(referenced)
    expired = []
    for tombstone in tombstones:
        if now - tombstone.modified >= grace:
            expired.append(tombstone.key)
        elif tombstone.references is None:
            return _refuse(f"tombstone {tombstone.key} cannot be read, so what it protects is unknown")
        else:
            protected |= tombstone.references
    delete = []
    freed = kept_referenced = kept_young = 0
    for info in objects:
        if info.key in protected:
            kept_referenced += 1
        elif now - info.modified < grace:
            kept_young += 1
        else:
            delete.append(info.key)
            freed += info.size
    return GcPlan(tuple(delete), tuple(expired), freed, kept_referenced, kept_young)


def _refuse(reason: str) -> GcPlan:
    return GcPlan((), (), 0, 0, 0, refused=f"{reason}; nothing deleted")


@dataclass(frozen=True, slots=True)
class GcReport:
    """What ``collect_garbage`` did: its plan, and which deletes failed (object, error)."""

    plan: GcPlan
    deleted: int
    failed: tuple[tuple[str, str], ...]
    dry_run: bool


def collect_garbage(
    vault: Vault, now: float, grace: float | None = None, *, dry_run: bool = False
) -> GcReport:
    """List the vault, plan, and delete (unless ``dry_run``).

    ``now`` is the current time, read by the caller before this call;
    ``grace`` defaults to the vault's and must not be shorter than the one
    its backup writers use.
    """
    grace = vault.grace if grace is None else grace
    referenced: set[str] = set()
    unreadable: list[str] = []
    for entry in vault.manifests():  # before the tombstones: see the module docstring
        if isinstance(entry, BackupManifest):
            referenced |= entry.references()
        else:
            log.warning("collect garbage: %s", entry)
            unreadable.append(entry.object_key)
    tombstones = [_tombstone(vault, info) for info in vault.store.list(fmt.TOMBSTONES)]
    objects = [info for prefix in fmt.DATA_PREFIXES for info in vault.store.list(prefix)]
    plan = plan_gc(objects=objects, referenced=referenced, tombstones=tombstones,
                   unreadable_manifests=unreadable, now=now, grace=grace)
    if plan.refused:
        log.warning("collect garbage in %s: %s", vault.url, plan.refused)
    if dry_run or plan.refused:
        return GcReport(plan, 0, (), dry_run)
    deleted = 0
    failed = []
    for key in (*plan.delete, *plan.expired_tombstones):
        try:
            vault.store.delete(key)
            deleted += 1
        except VaultError as error:
            failed.append((key, str(error)))
    return GcReport(plan, deleted, tuple(failed), dry_run)


def _tombstone(vault: Vault, info: ObjectInfo) -> Tombstone:
    backup_id = fmt.backup_id_of(info.key)
    if backup_id is None:
        return Tombstone(info.key, info.modified, None)
    try:
        body = vault.open(info.key, vault.store.get(info.key), kind=fmt.KIND_TOMBSTONE, backup_id=backup_id,
                          context=None)
        deleted = fmt.decode_tombstone(body, name=info.key, backup_id=backup_id)
        return Tombstone(info.key, info.modified, deleted.references())
    except ObjectNotFound:
        return Tombstone(info.key, info.modified, frozenset())  # removed meanwhile: protects nothing
    except BackupDamaged as error:
        log.warning("collect garbage: %s", error)
        return Tombstone(info.key, info.modified, None)
