"""A backup gives back exactly what was written: items, definition, sequence, catalog entry.

Runs on the in-memory fake, a FolderStore in tmp_path and S3 (moto on loopback).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tablekeeper.engine.tables import TableDefinition
from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import AVAILABLE, Progress, Vault
from tablekeeper.vault.chunks import CHUNK_MAX
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.format import (
    BackupAborted,
    BackupExists,
    BackupNotFound,
    backup_id_time,
    new_backup_id,
)
from tablekeeper.vault.store import ObjectStore
from tests.vault.fakes import Clock, definition_json, make_items, make_store

pytestmark = pytest.mark.timeout(60)

CREATED = 1_700_000_123.25


@pytest.fixture(params=["memory", "folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def vault(store: ObjectStore) -> Vault:
    return Vault(store, VaultKey.generate())


def write(vault: Vault, items: list[tuple[bytes, bytes]], backup_id: str | None = None, **options: object):  # type: ignore[no-untyped-def]
    backup_id = backup_id or new_backup_id(CREATED)
    with BackupWriter(vault, backup_id, definition_json(), 4711, CREATED, **options) as writer:  # type: ignore[arg-type]
        for key, item in items:
            writer.add(key, item)
        return writer.finish()


def test_items_come_back_exactly_in_key_order(vault: Vault) -> None:
    items = make_items(5000)
    manifest = write(vault, items)
    assert list(vault.read_items(manifest.backup_id)) == items


def test_the_manifest_keeps_definition_sequence_and_counts(vault: Vault) -> None:
    items = make_items(1000)
    manifest = write(vault, items, name="nightly", backup_type="SYSTEM", annotations={"plan": "p1"})
    described = vault.describe(manifest.backup_id)
    assert described == manifest
    assert described.definition == definition_json()
    assert TableDefinition.from_json(described.definition).indexes[0].name == "by-gk"
    assert (described.sequence, described.created) == (4711, CREATED)
    assert (described.table_name, described.table_id) == ("orders", "0f0e0d0c-0000-4000-8000-000000000001")
    assert described.table_arn == "arn:aws:dynamodb:us-east-1:000000000000:table/orders"
    assert described.backup_arn == f"{described.table_arn}/backup/{manifest.backup_id}"
    assert (described.name, described.backup_type, dict(described.annotations)) == ("nightly", "SYSTEM",
                                                                                     {"plan": "p1"})
    assert described.item_count == 1000
    assert described.item_bytes == sum(len(item) for _, item in items)
    assert described.key_bytes == sum(len(key) for key, _ in items)


def test_an_empty_table_backs_up_and_reads_back_empty(vault: Vault) -> None:
    manifest = write(vault, [])
    assert manifest.item_count == 0 and manifest.packs == ()
    assert list(vault.read_items(manifest.backup_id)) == []
    assert vault.verify(manifest.backup_id).ok


def test_items_larger_than_a_chunk_round_trip(vault: Vault) -> None:
    items = [*make_items(40, size=300_000), (b"\xff" * 8 + b"small", b"{}")]
    assert len(items[0][1]) > CHUNK_MAX
    manifest = write(vault, items)
    assert list(vault.read_items(manifest.backup_id)) == items


def test_a_vault_lists_its_backups_with_nothing_but_store_and_key(tmp_path: Path) -> None:
    key = VaultKey.generate()
    writer_vault = Vault(FolderStore(tmp_path / "v"), key)
    first = write(writer_vault, make_items(300), new_backup_id(CREATED))
    second = write(writer_vault, make_items(400), new_backup_id(CREATED + 60))
    fresh = Vault(FolderStore(tmp_path / "v", create=False), key)  # a new process, no engine
    listed = fresh.list_backups()
    assert [s.backup_id for s in listed] == [first.backup_id, second.backup_id]
    assert [s.item_count for s in listed] == [300, 400]
    assert all(s.status == AVAILABLE and s.table_name == "orders" for s in listed)
    assert listed[1].stored_bytes >= listed[1].written_bytes > 0


def test_backup_ids_sort_by_creation_time() -> None:
    ids = [new_backup_id(t) for t in (1_700_000_000.0, 1_700_000_000.001, 1_800_000_000.0)]
    assert ids == sorted(ids)
    assert ids[0].startswith("01700000000000-") and len(ids[0]) == 23
    assert backup_id_time(ids[2]) == 1_800_000_000.0


def test_describing_an_unknown_backup_is_backup_not_found(vault: Vault) -> None:
    with pytest.raises(BackupNotFound, match="01700000000000-00000000: not found"):
        vault.describe("01700000000000-00000000")
    with pytest.raises(BackupNotFound):
        vault.read_items("01700000000000-00000000")


def test_a_malformed_backup_id_is_refused(vault: Vault) -> None:
    with pytest.raises(VaultError, match="not a backup id"):
        vault.describe("../manifests/x")


def test_a_backup_id_cannot_be_written_twice(vault: Vault) -> None:
    manifest = write(vault, make_items(10))
    with pytest.raises(BackupExists):
        write(vault, make_items(20), manifest.backup_id)
    assert list(vault.read_items(manifest.backup_id)) == make_items(10)


def test_keys_must_arrive_strictly_ascending(vault: Vault) -> None:
    writer = BackupWriter(vault, new_backup_id(CREATED), definition_json(), 1, CREATED)
    writer.add(b"b", b"{}")
    with pytest.raises(ValueError, match="does not follow"):
        writer.add(b"a", b"{}")
    with pytest.raises(ValueError, match="does not follow"):
        writer.add(b"b", b"{}")
    writer.abort()


def test_a_finished_writer_takes_no_more_items(vault: Vault) -> None:
    writer = BackupWriter(vault, new_backup_id(CREATED), definition_json(), 1, CREATED)
    writer.add(b"a", b"{}")
    writer.finish()
    with pytest.raises(BackupAborted, match="finished"):
        writer.add(b"b", b"{}")


def test_a_definition_that_does_not_parse_is_refused(vault: Vault) -> None:
    with pytest.raises(VaultError, match="table definition does not parse"):
        BackupWriter(vault, new_backup_id(CREATED), "{}", 1, CREATED)


def test_progress_reports_items_written_and_read(tmp_path: Path) -> None:
    vault = Vault(FolderStore(tmp_path / "v"), VaultKey.generate())
    seen: list[Progress] = []
    manifest = write(vault, make_items(40_000), progress=seen.append, expected_items=40_000)
    assert seen[-1] == Progress(40_000, 40_000, "items")
    assert [p.done for p in seen] == sorted(p.done for p in seen) and len(seen) > 2
    read: list[Progress] = []
    assert sum(1 for _ in vault.read_items(manifest.backup_id, read.append)) == 40_000
    assert read[-1] == Progress(40_000, 40_000, "items")


def test_a_writer_past_its_deadline_leaves_nothing_visible(vault: Vault) -> None:
    clock = Clock()
    writer = BackupWriter(vault, new_backup_id(CREATED), definition_json(), 1, CREATED, clock=clock)
    for key, item in make_items(100):
        writer.add(key, item)
    clock.advance(vault.max_backup_seconds + 1)
    with pytest.raises(BackupAborted, match="took longer than"):
        writer.finish()
    assert vault.list_backups() == []
    assert list(vault.store.list("packs/")) == []
