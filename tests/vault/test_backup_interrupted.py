"""A backup is visible only once its manifest is written; anything less lists, reads and blocks nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.errors import StoreFull
from tablekeeper.vault.format import KIND_MANIFEST, BackupAborted, BackupNotFound, new_backup_id
from tablekeeper.vault.store import ObjectStore
from tests.vault.fakes import MemoryStore, definition_json, make_items, make_store

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


@pytest.fixture(params=["memory", "folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def vault(store: ObjectStore) -> Vault:
    return Vault(store, VaultKey.generate())


class Crash(BaseException):
    """The process dies: nothing after this point runs, no cleanup either."""


def crash_midway(vault: Vault, backup_id: str, items: list[tuple[bytes, bytes]]) -> None:
    """A writer whose packs, index and map reach the store, and whose process dies before the manifest."""
    writer = BackupWriter(vault, backup_id, definition_json(), 1, T0)
    for key, item in items:
        writer.add(key, item)
    real_put = vault.put_object

    def put_until_the_manifest(name: str, body: bytes, *, kind: bytes, backup_id: str) -> int:
        if kind == KIND_MANIFEST:
            raise Crash
        return real_put(name, body, kind=kind, backup_id=backup_id)

    vault.put_object = put_until_the_manifest  # type: ignore[method-assign]
    writer.abort = lambda: None  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            writer.finish()
    finally:
        del vault.put_object
    assert list(vault.store.list("maps/")) and list(vault.store.list("indexes/"))


def test_an_interrupted_backup_is_neither_listed_nor_readable(vault: Vault) -> None:
    backup_id = new_backup_id(T0)
    crash_midway(vault, backup_id, make_items(3000))
    assert list(vault.store.list("packs/"))  # its data is there...
    assert vault.list_backups() == []  # ...and nothing shows it
    with pytest.raises(BackupNotFound):
        vault.describe(backup_id)
    with pytest.raises(BackupNotFound):
        vault.read_items(backup_id)
    with pytest.raises(BackupNotFound):
        vault.verify(backup_id)


def test_an_interrupted_backup_does_not_block_the_next_one(vault: Vault) -> None:
    items = make_items(3000)
    crash_midway(vault, new_backup_id(T0), items)
    retry = BackupWriter(vault, new_backup_id(T0 + 1), definition_json(), 1, T0 + 1)
    for key, item in items:
        retry.add(key, item)
    manifest = retry.finish()
    assert [s.backup_id for s in vault.list_backups()] == [manifest.backup_id]
    assert list(vault.read_items(manifest.backup_id)) == items


def test_the_same_backup_id_can_be_retried_after_a_crash(vault: Vault) -> None:
    backup_id = new_backup_id(T0)
    items = make_items(2000)
    crash_midway(vault, backup_id, items)
    retry = BackupWriter(vault, backup_id, definition_json(), 1, T0)
    for key, item in items:
        retry.add(key, item)
    retry.finish()
    assert list(vault.read_items(backup_id)) == items


def test_abort_removes_everything_the_writer_wrote(vault: Vault) -> None:
    writer = BackupWriter(vault, new_backup_id(T0), definition_json(), 1, T0)
    for key, item in make_items(30_000):
        writer.add(key, item)
    writer.abort()
    assert list(vault.store.list("")) == []


def test_an_exception_inside_the_with_block_aborts_the_backup(vault: Vault) -> None:
    writer = BackupWriter(vault, new_backup_id(T0), definition_json(), 1, T0)
    with pytest.raises(RuntimeError), writer:
        for key, item in make_items(30_000):
            writer.add(key, item)
        raise RuntimeError("the snapshot read failed")
    assert list(vault.store.list("")) == []


def test_a_full_store_fails_the_backup_and_leaves_nothing_visible() -> None:
    store = MemoryStore(fail_puts_after=2)
    vault = Vault(store, VaultKey.generate())
    with pytest.raises(StoreFull, match="disk full"), \
            BackupWriter(vault, new_backup_id(T0), definition_json(), 1, T0) as writer:
        for key, item in make_items(60_000):
            writer.add(key, item)
        writer.finish()
    assert vault.list_backups() == []
    assert store.keys() == []  # what did get written was removed again
    store.fail_puts_after = None
    manifest = BackupWriter(vault, new_backup_id(T0 + 1), definition_json(), 1, T0 + 1).finish()
    assert [s.backup_id for s in vault.list_backups()] == [manifest.backup_id]


def test_a_failed_pack_write_aborts_the_writer_even_outside_a_with_block() -> None:
    store = MemoryStore(fail_puts_after=0)
    vault = Vault(store, VaultKey.generate())
    writer = BackupWriter(vault, new_backup_id(T0), definition_json(), 1, T0)
    with pytest.raises(StoreFull):  # by the time MAX_PENDING_PACKS more packs are cut
        for key, item in make_items(100_000):
            writer.add(key, item)
    assert store.keys() == []
    with pytest.raises(BackupAborted, match="aborted"):
        writer.add(b"\xff", b"{}")
    with pytest.raises(BackupAborted, match="aborted"):
        writer.finish()
