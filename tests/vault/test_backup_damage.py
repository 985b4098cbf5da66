"""Damage is found, named and never read as data: verify lists it, read_items stops before it.

Every object kind is corrupted (a flipped byte), truncated, removed or swapped
for another object of its kind; ``verify`` must name the object and the
backup, ``read_items`` must raise ``BackupDamaged`` having yielded only true
items.  A wrong vault key is ``WrongKey`` everywhere, never garbage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import DAMAGED, Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.errors import IntegrityError, WrongKey
from tablekeeper.vault.format import BackupDamaged, BackupManifest, manifest_name, new_backup_id
from tablekeeper.vault.store import ObjectStore
from tests.vault.fakes import definition_json, make_items, make_store

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0
ITEMS = make_items(30_000)  # 2 packs at least


@pytest.fixture(params=["memory", "folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def vault(store: ObjectStore) -> Vault:
    return Vault(store, VaultKey.generate())


def write(vault: Vault, items: list[tuple[bytes, bytes]], at: float) -> BackupManifest:
    with BackupWriter(vault, new_backup_id(at), definition_json(), 1, at) as writer:
        for key, item in items:
            writer.add(key, item)
        return writer.finish()


def flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def truncate(data: bytes) -> bytes:
    return data[: len(data) - 100]


Damage = Callable[[ObjectStore, str, str], None]  # (store, the object, another of its kind)


def corrupt(store: ObjectStore, name: str, other: str) -> None:
    store.put(name, flip(store.get(name)))


def cut_short(store: ObjectStore, name: str, other: str) -> None:
    store.put(name, truncate(store.get(name)))


def remove(store: ObjectStore, name: str, other: str) -> None:
    store.delete(name)


def swap(store: ObjectStore, name: str, other: str) -> None:
    store.put(name, store.get(other))


DAMAGES = [corrupt, cut_short, remove, swap]


def read_until_damage(vault: Vault, backup_id: str) -> tuple[list[tuple[bytes, bytes]], BackupDamaged]:
    yielded: list[tuple[bytes, bytes]] = []
    with pytest.raises(BackupDamaged) as caught:
        for pair in vault.read_items(backup_id):
            yielded.append(pair)
    return yielded, caught.value


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_pack_is_named_by_verify_and_stops_read_items_before_wrong_data(
    vault: Vault, damage: Damage
) -> None:
    manifest = write(vault, ITEMS, T0)
    assert len(manifest.packs) >= 2
    victim, other = manifest.packs[-1].name, manifest.packs[0].name
    damage(vault.store, victim, other)

    report = vault.verify(manifest.backup_id)
    assert not report.ok
    assert victim in {p.object_key for p in report.problems}

    yielded, error = read_until_damage(vault, manifest.backup_id)
    assert error.object_key == victim and error.backup_id == manifest.backup_id
    assert victim in str(error) and manifest.backup_id in str(error)
    assert yielded == ITEMS[: len(yielded)]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_manifest_is_reported_and_listed_as_damaged(vault: Vault, damage: Damage) -> None:
    first = write(vault, ITEMS[:100], T0)
    second = write(vault, ITEMS[:200], T0 + 1)
    victim = manifest_name(second.backup_id)
    damage(vault.store, victim, manifest_name(first.backup_id))

    report = vault.verify(second.backup_id) if damage is not remove else None
    if report is not None:
        assert [p.object_key for p in report.problems] == [victim]
        listed = {s.backup_id: s for s in vault.list_backups()}
        assert listed[second.backup_id].status == DAMAGED
        assert victim in (listed[second.backup_id].problem or "")
        with pytest.raises(BackupDamaged) as caught:
            vault.read_items(second.backup_id)
        assert caught.value.object_key == victim and second.backup_id in str(caught.value)
    assert list(vault.read_items(first.backup_id)) == ITEMS[:100]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_map_is_named_by_verify_and_read_items(vault: Vault, damage: Damage) -> None:
    first = write(vault, ITEMS[:100], T0)
    second = write(vault, ITEMS[:300], T0 + 1)
    damage(vault.store, second.map, first.map)
    assert second.map in {p.object_key for p in vault.verify(second.backup_id).problems}
    with pytest.raises(BackupDamaged) as caught:
        vault.read_items(second.backup_id)
    assert caught.value.object_key == second.map


def test_a_damaged_index_is_reported_but_does_not_stop_a_restore(vault: Vault) -> None:
    manifest = write(vault, ITEMS[:5000], T0)
    index = manifest.indexes[0][0]
    corrupt(vault.store, index, "")
    report = vault.verify(manifest.backup_id)
    assert [p.object_key for p in report.problems] == [index]
    assert "restores are not affected" in report.problems[0].message
    assert list(vault.read_items(manifest.backup_id)) == ITEMS[:5000]


def test_verify_lists_every_problem_not_only_the_first(vault: Vault) -> None:
    manifest = write(vault, ITEMS, T0)
    remove(vault.store, manifest.packs[0].name, "")
    corrupt(vault.store, manifest.packs[1].name, "")
    report = vault.verify(manifest.backup_id)
    assert {p.object_key for p in report.problems} >= {manifest.packs[0].name, manifest.packs[1].name}


def test_a_sound_backup_verifies_clean(vault: Vault) -> None:
    write(vault, ITEMS[:1000], T0)
    manifest = write(vault, ITEMS, T0 + 1)
    report = vault.verify(manifest.backup_id)
    assert report.ok, report.problems
    assert (report.item_count, report.chunk_count) == (len(ITEMS), manifest.chunk_count)
    assert report.objects_checked == 2 + len(manifest.packs) + len(manifest.indexes)


def test_a_damaged_shared_pack_damages_every_backup_that_uses_it(vault: Vault) -> None:
    first = write(vault, ITEMS, T0)
    second = write(vault, ITEMS, T0 + 1)
    corrupt(vault.store, first.packs[0].name, "")
    assert not vault.verify(first.backup_id).ok
    assert not vault.verify(second.backup_id).ok


def test_a_manifest_copied_to_another_backups_name_does_not_open(vault: Vault) -> None:
    first = write(vault, ITEMS[:10], T0)
    second = write(vault, ITEMS[:20], T0 + 1)
    swap(vault.store, manifest_name(second.backup_id), manifest_name(first.backup_id))
    with pytest.raises(BackupDamaged, match="does not open"):
        vault.describe(second.backup_id)
    assert isinstance(BackupDamaged("x", object_key="", backup_id=None), IntegrityError)


def test_a_wrong_vault_key_is_wrong_key_everywhere(vault: Vault) -> None:
    manifest = write(vault, ITEMS[:1000], T0)
    stranger = Vault(vault.store, VaultKey.generate())
    for attempt in (
        stranger.list_backups,
        lambda: stranger.describe(manifest.backup_id),
        lambda: list(stranger.read_items(manifest.backup_id)),
        lambda: stranger.verify(manifest.backup_id),
    ):
        with pytest.raises(WrongKey, match=f"key id {vault.key.key_id[:16]}"):
            attempt()


def test_a_backup_whose_manifest_is_damaged_can_still_be_deleted(vault: Vault) -> None:
    manifest = write(vault, ITEMS[:100], T0)
    corrupt(vault.store, manifest_name(manifest.backup_id), "")
    vault.delete_backup(manifest.backup_id)
    assert vault.list_backups() == []
    assert list(vault.store.list("tombstones/")) == []  # its references are unknown: nothing to protect
