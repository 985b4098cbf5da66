"""Backups are incremental: a chunk the vault has (from any live backup) is not written again."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tablekeeper.vault import backup, reader
from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.format import BackupManifest, new_backup_id
from tablekeeper.vault.store import ObjectStore
from tests.vault.fakes import MemoryStore, definition_json, item_bytes, item_key, make_items, make_store

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


@pytest.fixture(params=["memory", "folder"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def vault(store: ObjectStore) -> Vault:
    return Vault(store, VaultKey.generate())


def write(vault: Vault, items: list[tuple[bytes, bytes]], at: float = T0) -> BackupManifest:
    with BackupWriter(vault, new_backup_id(at), definition_json(), 1, at) as writer:
        for key, item in items:
            writer.add(key, item)
        return writer.finish()


def test_a_second_identical_backup_writes_no_new_chunks(vault: Vault) -> None:
    items = make_items(20_000)
    first = write(vault, items, T0)
    packs_before = list(vault.store.list("packs/"))
    second = write(vault, items, T0 + 1)
    assert second.new_chunk_count == 0
    assert {p.name for p in second.packs} == {p.name for p in first.packs}
    assert second.written_bytes < first.written_bytes / 100  # its map alone
    assert list(vault.store.list("packs/")) == packs_before
    assert list(vault.read_items(second.backup_id)) == items


def test_changing_one_percent_of_100k_items_writes_under_a_tenth_of_the_first_backup() -> None:
    vault = Vault(MemoryStore(), VaultKey.generate())
    count = 100_000
    items = dict(make_items(count))
    first = write(vault, sorted(items.items()), T0)
    for i in random.Random(7).sample(range(count), count // 100):
        items[item_key(i)] = item_bytes(i, version=1)
    changed = sorted(items.items())
    second = write(vault, changed, T0 + 1)
    ratio = second.written_bytes / first.written_bytes
    assert ratio < 0.10, f"the incremental backup wrote {ratio:.1%} of the first"
    assert list(vault.read_items(second.backup_id)) == changed
    assert list(vault.read_items(first.backup_id)) != changed


def test_an_insert_rewrites_only_the_chunks_around_it(vault: Vault) -> None:
    items = make_items(20_000)
    first = write(vault, items, T0)
    middle = items[10_000][0]
    inserted = sorted([*items, (middle + b"\x00new", b'{"pk":{"S":"new"}}')])
    second = write(vault, inserted, T0 + 1)
    assert first.chunk_count > 2000
    assert second.new_chunk_count <= 3
    assert list(vault.read_items(second.backup_id)) == inserted


def test_a_delete_rewrites_only_the_chunks_around_it(vault: Vault) -> None:
    items = make_items(20_000)
    write(vault, items, T0)
    second = write(vault, items[:5000] + items[5001:], T0 + 1)
    assert second.new_chunk_count <= 3


def test_reuse_survives_deleting_the_backup_that_wrote_the_data(vault: Vault) -> None:
    items = make_items(10_000)
    first = write(vault, items, T0)
    second = write(vault, items, T0 + 1)
    vault.delete_backup(first.backup_id)
    third = write(vault, items, T0 + 2)
    assert third.new_chunk_count == 0
    assert list(vault.read_items(third.backup_id)) == items
    assert vault.verify(second.backup_id).ok


def test_chunks_of_an_unfinished_backup_are_not_reused(vault: Vault) -> None:
    items = make_items(10_000)
    crashed = BackupWriter(vault, new_backup_id(T0), definition_json(), 1, T0)
    for key, item in items:
        crashed.add(key, item)
    crashed._flush_pack()  # its packs reach the store, and then the process dies
    while crashed._pending:
        crashed._settle_oldest()
    assert list(vault.store.list("packs/"))
    later = write(vault, items, T0 + 1)
    assert later.new_chunk_count == later.chunk_count
    assert list(vault.read_items(later.backup_id)) == items


def test_a_backup_of_another_table_does_not_reuse_this_tables_chunks(vault: Vault) -> None:
    items = make_items(2000)
    write(vault, items, T0)
    with BackupWriter(vault, new_backup_id(T0 + 1), definition_json(name="other"), 1, T0 + 1) as writer:
        for key, item in items:
            writer.add(key, item)
        other = writer.finish()
    assert other.new_chunk_count == other.chunk_count


@pytest.mark.parametrize("read_ahead", [0, 3])
def test_an_incremental_backup_reads_back_exactly_with_almost_no_pack_cache(
    monkeypatch: pytest.MonkeyPatch, read_ahead: int
) -> None:
    vault = Vault(MemoryStore(), VaultKey.generate())
    monkeypatch.setattr(backup, "PACK_TARGET", 64 * 1024)
    items = dict(make_items(5000))
    first = write(vault, sorted(items.items()), T0)
    for i in random.Random(3).sample(range(5000), 100):
        items[item_key(i)] = item_bytes(i, version=1)
    second = write(vault, sorted(items.items()), T0 + 1)
    assert len(first.packs) >= 5 and len(second.packs) > len(first.packs)  # old and new packs interleave
    monkeypatch.setattr(reader, "CACHE_BYTES", 1)  # every pack is dropped as soon as another opens
    monkeypatch.setattr(reader, "READ_AHEAD", read_ahead)
    assert list(vault.read_items(second.backup_id)) == sorted(items.items())
