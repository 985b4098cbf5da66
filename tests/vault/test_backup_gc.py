"""Garbage collection removes only what no backup needs, never data a backup may still need.

The decision (``plan_gc``) is tested with plain values; the executor against
the in-memory fake (whose clock the tests drive) and a FolderStore.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.format import BackupManifest, manifest_name, new_backup_id
from tablekeeper.vault.gc import Tombstone, collect_garbage, plan_gc
from tablekeeper.vault.store import ObjectInfo
from tests.vault.fakes import Clock, MemoryStore, definition_json, make_items

pytestmark = pytest.mark.timeout(60)

NOW = 1_700_100_000.0
GRACE = 3600.0
HOUR = 3600.0


def info(key: str, age: float, size: int = 100) -> ObjectInfo:
    return ObjectInfo(key, size, NOW - age)


# -- the decision ----------------------------------------------------------------


def test_an_unreferenced_object_older_than_grace_is_deleted() -> None:
    plan = plan_gc(objects=[info("packs/aa/1", 2 * HOUR, 7)], referenced=set(), tombstones=[], now=NOW,
                   grace=GRACE)
    assert plan.delete == ("packs/aa/1",) and plan.bytes_freed == 7


def test_a_referenced_object_is_kept_however_old() -> None:
    plan = plan_gc(objects=[info("packs/aa/1", 1000 * HOUR)], referenced={"packs/aa/1"}, tombstones=[],
                   now=NOW, grace=GRACE)
    assert plan.delete == () and plan.kept_referenced == 1


def test_an_unreferenced_object_younger_than_grace_is_kept() -> None:
    plan = plan_gc(objects=[info("packs/aa/1", GRACE - 1)], referenced=set(), tombstones=[], now=NOW,
                   grace=GRACE)
    assert plan.delete == () and plan.kept_young == 1


def test_an_object_exactly_grace_old_is_deleted() -> None:
    plan = plan_gc(objects=[info("maps/x", GRACE)], referenced=set(), tombstones=[], now=NOW, grace=GRACE)
    assert plan.delete == ("maps/x",)


def test_an_object_from_the_future_is_kept() -> None:
    plan = plan_gc(objects=[info("packs/aa/1", -HOUR)], referenced=set(), tombstones=[], now=NOW, grace=GRACE)
    assert plan.delete == ()


def test_a_young_tombstone_protects_what_its_backup_referenced() -> None:
    tombstone = Tombstone("tombstones/b", NOW - GRACE / 2, frozenset({"packs/aa/1"}))
    plan = plan_gc(objects=[info("packs/aa/1", 100 * HOUR), info("packs/aa/2", 100 * HOUR)], referenced=set(),
                   tombstones=[tombstone], now=NOW, grace=GRACE)
    assert plan.delete == ("packs/aa/2",) and plan.expired_tombstones == ()


def test_an_old_tombstone_protects_nothing_and_is_deleted() -> None:
    tombstone = Tombstone("tombstones/b", NOW - GRACE, frozenset({"packs/aa/1"}))
    plan = plan_gc(objects=[info("packs/aa/1", 100 * HOUR)], referenced=set(), tombstones=[tombstone],
                   now=NOW, grace=GRACE)
    assert plan.delete == ("packs/aa/1",) and plan.expired_tombstones == ("tombstones/b",)


def test_an_unreadable_manifest_stops_all_deletes() -> None:
    plan = plan_gc(objects=[info("packs/aa/1", 100 * HOUR)], referenced=set(), tombstones=[],
                   unreadable_manifests=["manifests/x"], now=NOW, grace=GRACE)
    assert plan.delete == () and "manifests/x" in (plan.refused or "")


def test_an_unreadable_young_tombstone_stops_all_deletes_but_an_old_one_expires() -> None:
    young = Tombstone("tombstones/y", NOW - 1, None)
    old = Tombstone("tombstones/o", NOW - 2 * GRACE, None)
    objects = [info("packs/aa/1", 100 * HOUR)]
    assert plan_gc(objects=objects, referenced=set(), tombstones=[young], now=NOW, grace=GRACE).refused
    plan = plan_gc(objects=objects, referenced=set(), tombstones=[old], now=NOW, grace=GRACE)
    assert plan.delete == ("packs/aa/1",) and plan.expired_tombstones == ("tombstones/o",)


# -- the executor ------------------------------------------------------------------


def write(
    vault: Vault, items: list[tuple[bytes, bytes]], at: float, clock: Clock | None = None
) -> BackupManifest:
    with BackupWriter(vault, new_backup_id(at), definition_json(), 1, at,
                      clock=clock or (lambda: at)) as writer:
        for key, item in items:
            writer.add(key, item)
        return writer.finish()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(now=clock)


@pytest.fixture
def vault(store: MemoryStore) -> Vault:
    return Vault(store, VaultKey.generate(), grace=GRACE)


def test_gc_never_deletes_an_object_a_listed_backup_needs(vault: Vault, clock: Clock) -> None:
    first = write(vault, make_items(20_000), clock.now)
    clock.advance(HOUR)
    second = write(vault, make_items(20_000, version=1)[:15_000], clock.now)
    clock.advance(100 * GRACE)
    report = collect_garbage(vault, clock.now)
    assert report.plan.delete == () and report.deleted == 0
    assert vault.verify(first.backup_id).ok and vault.verify(second.backup_id).ok


def test_delete_then_gc_frees_the_space(vault: Vault, store: MemoryStore, clock: Clock) -> None:
    keep = write(vault, make_items(20_000), clock.now)
    drop = write(vault, make_items(20_000, version=1), clock.now + 1)
    before = sum(i.size for i in store.list())
    vault.delete_backup(drop.backup_id)
    assert [s.backup_id for s in vault.list_backups()] == [keep.backup_id]
    assert collect_garbage(vault, clock.now).plan.delete == ()  # the tombstone is young
    clock.advance(GRACE)
    report = collect_garbage(vault, clock.now)
    assert report.plan.bytes_freed > drop.written_bytes * 0.9
    assert set(report.plan.delete) == drop.references() - keep.references()
    assert store.keys("tombstones/") == []
    after = sum(i.size for i in store.list())
    assert after < before - drop.written_bytes * 0.9
    assert vault.verify(keep.backup_id).ok


def test_gc_removes_an_interrupted_backups_leftovers_after_the_grace(
    vault: Vault, store: MemoryStore, clock: Clock
) -> None:
    writer = BackupWriter(vault, new_backup_id(clock.now), definition_json(), 1, clock.now)
    for key, item in make_items(20_000):
        writer.add(key, item)
    writer._flush_pack()  # then the process dies
    while writer._pending:
        writer._settle_oldest()
    leftovers = store.keys("packs/")
    assert leftovers
    assert collect_garbage(vault, clock.now + GRACE - 1).plan.delete == ()
    assert set(collect_garbage(vault, clock.now + GRACE).plan.delete) == set(leftovers)
    assert store.keys() == []


def test_gc_spares_the_packs_of_a_backup_being_written(vault: Vault, clock: Clock) -> None:
    items = make_items(20_000)
    writer = BackupWriter(vault, new_backup_id(clock.now), definition_json(), 1, clock.now, clock=clock)
    for key, item in items[:10_000]:
        writer.add(key, item)
    writer._flush_pack()
    clock.advance(vault.max_backup_seconds - 1)
    collect_garbage(vault, clock.now)  # it sees packs no manifest refers to yet
    for key, item in items[10_000:]:
        writer.add(key, item)
    manifest = writer.finish()
    assert list(vault.read_items(manifest.backup_id)) == items


def test_gc_spares_reused_data_of_a_backup_deleted_while_another_is_written(
    vault: Vault, store: MemoryStore, clock: Clock
) -> None:
    items = make_items(20_000)
    old = write(vault, items, clock.now)
    clock.advance(100 * GRACE)  # its packs are long past any grace
    writer = BackupWriter(vault, new_backup_id(clock.now), definition_json(), 1, clock.now, clock=clock)
    for key, item in items[:10_000]:
        writer.add(key, item)  # reusing the old backup's chunks
    vault.delete_backup(old.backup_id)
    clock.advance(vault.max_backup_seconds - 1)
    collect_garbage(vault, clock.now)  # the tombstone protects the old packs
    for key, item in items[10_000:]:
        writer.add(key, item)
    manifest = writer.finish()
    assert manifest.new_chunk_count == 0
    clock.advance(GRACE)
    collect_garbage(vault, clock.now)  # the tombstone is gone; the new manifest protects them now
    assert store.keys("tombstones/") == []
    assert vault.verify(manifest.backup_id).ok
    assert list(vault.read_items(manifest.backup_id)) == items


def test_gc_deletes_nothing_while_a_manifest_cannot_be_read(
    vault: Vault, store: MemoryStore, clock: Clock
) -> None:
    first = write(vault, make_items(1000), clock.now)
    vault.delete_backup(first.backup_id)
    second = write(vault, make_items(1000, version=2), clock.now)
    store.replace(manifest_name(second.backup_id), b"garbage")
    clock.advance(10 * GRACE)
    report = collect_garbage(vault, clock.now)
    assert report.deleted == 0 and manifest_name(second.backup_id) in (report.plan.refused or "")


def test_gc_leaves_objects_outside_its_prefixes_alone(vault: Vault, store: MemoryStore, clock: Clock) -> None:
    store.put("pitr/segment-1", b"x")
    store.put("_probe/abc", b"x")
    clock.advance(10 * GRACE)
    collect_garbage(vault, clock.now)
    assert store.keys() == ["_probe/abc", "pitr/segment-1"]


def test_a_dry_run_deletes_nothing(vault: Vault, store: MemoryStore, clock: Clock) -> None:
    manifest = write(vault, make_items(1000), clock.now)
    vault.delete_backup(manifest.backup_id)
    clock.advance(2 * GRACE)
    report = collect_garbage(vault, clock.now, dry_run=True)
    assert report.plan.delete and report.deleted == 0
    assert set(store.keys()) >= set(report.plan.delete)


def test_delete_then_gc_frees_the_space_in_a_folder_vault(tmp_path: Path) -> None:
    vault = Vault(FolderStore(tmp_path / "v"), VaultKey.generate(), grace=GRACE)
    now = time.time()
    manifest = write(vault, make_items(5000), now)
    vault.delete_backup(manifest.backup_id)
    assert collect_garbage(vault, time.time()).deleted == 0
    report = collect_garbage(vault, time.time() + GRACE + 60)
    assert report.deleted == len(manifest.references()) + 1  # and the tombstone
    assert list(vault.store.list()) == []
