"""BackupService in-process, on a folder vault: snapshots, conflicts, and what a restart leaves behind.

The vault's store is a FolderStore behind a gate a test can close: a backup
whose puts wait at the gate stays CREATING, a restore whose gets wait stays
in progress, for exactly as long as the test needs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.errors import BackupInUseException
from tablekeeper.engine.loading import begin_restore
from tablekeeper.engine.storage.base import ITEMS
from tablekeeper.engine.storage.sqlite import Durability
from tablekeeper.engine.tables import RestoreSummary, TableDefinition
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.records import CREATING, FAILED, BackupRecords, PendingBackup
from tablekeeper.vault.restore import Overrides, plan_target
from tablekeeper.vault.service import AVAILABLE, BackupService
from tests.inprocess import call, run

pytestmark = pytest.mark.timeout(60)

NOW = 1_700_000_000.0
TABLE = "orders"
GATE_TIMEOUT = 30.0
IN_USE = ("There is another ongoing conflicting backup control plane operation on the table. "
          "The backup is either being created, deleted or restored to a table.")


@dataclass
class GatedStore:
    """A FolderStore whose puts and gets wait while their gate is closed (a fake slow store)."""

    inner: FolderStore
    puts: threading.Event = field(default_factory=threading.Event)
    gets: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.url = self.inner.url
        self.puts.set()
        self.gets.set()

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        assert self.puts.wait(GATE_TIMEOUT), "the test never opened the put gate"
        self.inner.put(key, data, if_absent=if_absent)

    def get(self, key: str) -> bytes:
        assert self.gets.wait(GATE_TIMEOUT), "the test never opened the get gate"
        return self.inner.get(key)

    def __getattr__(self, name: str) -> Any:  # head, list, delete
        return getattr(self.inner, name)


@dataclass
class Setup:
    """One engine run: its engine, gated store, vault and service (closed together)."""

    data: Path
    store: GatedStore
    key: VaultKey
    engine: Engine = field(init=False)
    service: BackupService = field(init=False)

    def __post_init__(self) -> None:
        self.engine = Engine(EngineConfig(self.data, durability=Durability.PROCESS_CRASH),
                             clock=lambda: NOW)
        self.service = BackupService(self.engine, Vault(self.store, self.key), BackupRecords(self.data))

    def restart(self) -> None:
        """Stop this run and start the next on the same data directory and vault."""
        self.close()
        self.__post_init__()

    def close(self) -> None:
        self.store.puts.set()
        self.store.gets.set()
        self.service.close()
        self.engine.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    current = Setup(tmp_path / "data", GatedStore(FolderStore(tmp_path / "vault")), VaultKey.generate())
    yield current
    current.close()


async def make_table(engine: Engine, count: int) -> TableDefinition:
    await call(engine, "CreateTable", {
        "TableName": TABLE,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    })
    for i in range(count):
        await put(engine, f"k{i:03d}", "original")
    found = engine.catalog.get(TABLE)
    assert found is not None
    return found


async def put(engine: Engine, pk: str, value: str, name: str = TABLE) -> None:
    await call(engine, "PutItem", {"TableName": name, "Item": {"pk": {"S": pk}, "v": {"S": value}}})


def stored(engine: Engine, name: str) -> list[tuple[bytes, bytes]]:
    table = engine.catalog.get(name)
    assert table is not None
    return list(engine.reader(table).range(None, None, space=ITEMS))


def pending(table: TableDefinition, backup_id: str = "01700000000000-0badcafe") -> PendingBackup:
    return PendingBackup(backup_id=backup_id, status=CREATING, name="left-behind", backup_type="USER",
                         created=NOW, definition=table.to_json(), item_count=0, size_bytes=0, sequence=0)


# --- what a previous run left behind ------------------------------------------------------------


def test_a_backup_left_creating_by_a_previous_run_is_failed_as_interrupted(setup: Setup) -> None:
    table = run(lambda: make_table(setup.engine, 0))
    setup.service.records.add(pending(table))
    setup.restart()
    record = setup.service.records.get("01700000000000-0badcafe")
    assert record is not None
    assert (record.status, record.reason) == (FAILED, "the engine stopped before the backup finished")


def test_an_interrupted_backup_shows_failed_with_its_reason_through_describe(setup: Setup) -> None:
    table = run(lambda: make_table(setup.engine, 0))
    setup.service.records.add(pending(table))
    setup.restart()
    view = run(lambda: setup.service.find(f"{table.arn}/backup/01700000000000-0badcafe"))
    assert view.details()["BackupStatus"] == FAILED
    assert view.details()["BackupStatusReason"] == "the engine stopped before the backup finished"


def test_an_interrupted_restore_starts_again_after_a_restart_with_a_new_table_id(setup: Setup) -> None:
    async def back_up() -> tuple[RestoreSummary, TableDefinition]:
        source = await make_table(setup.engine, 30)
        view = await setup.service.create(TABLE, "before")
        await setup.service.wait_idle()
        target = plan_target(source, "copy", Overrides(), now=NOW, region="us-east-1",
                             account="000000000000")
        summary = RestoreSummary(NOW, True, source_backup_arn=view.arn, source_table_arn=source.arn)
        return summary, begin_restore(setup.engine, target, summary)  # and the engine stops

    summary, interrupted = run(back_up)
    expected = stored(setup.engine, TABLE)
    setup.restart()

    async def resume() -> None:
        await setup.service.resume_restores()
        await setup.service.wait_idle()

    run(resume)
    restored = setup.engine.catalog.get("copy")
    assert restored is not None
    assert restored.status == "ACTIVE"
    assert restored.restore == replace(summary, in_progress=False)
    assert restored.table_id != interrupted.table_id
    assert interrupted.table_id not in setup.engine.storage.tables()
    assert stored(setup.engine, "copy") == expected


# --- conflicts ----------------------------------------------------------------------------------


def test_deleting_a_backup_still_being_created_is_backup_in_use(setup: Setup) -> None:
    async def scenario() -> None:
        await make_table(setup.engine, 5)
        setup.store.puts.clear()
        view = await setup.service.create(TABLE, "slow")
        with pytest.raises(BackupInUseException) as error:
            await setup.service.delete(view.arn)
        assert error.value.message == IN_USE
        setup.store.puts.set()
        await setup.service.wait_idle()
        assert (await setup.service.find(view.arn)).status == AVAILABLE

    run(scenario)


def test_a_second_backup_of_a_table_while_one_is_being_created_is_backup_in_use(setup: Setup) -> None:
    async def scenario() -> None:
        await make_table(setup.engine, 5)
        setup.store.puts.clear()
        await setup.service.create(TABLE, "first")
        with pytest.raises(BackupInUseException) as error:
            await setup.service.create(TABLE, "second")
        assert error.value.message == IN_USE
        setup.store.puts.set()
        await setup.service.wait_idle()
        await setup.service.create(TABLE, "third")  # once the first is done, the next may start
        await setup.service.wait_idle()
        assert sorted(view.name for view in await setup.service.all()) == ["first", "third"]

    run(scenario)


def test_restoring_a_backup_still_being_created_is_backup_in_use(setup: Setup) -> None:
    async def scenario() -> None:
        await make_table(setup.engine, 5)
        setup.store.puts.clear()
        view = await setup.service.create(TABLE, "slow")
        with pytest.raises(BackupInUseException):
            await setup.service.restore(view.arn, "copy", Overrides())
        assert setup.engine.catalog.get("copy") is None
        setup.store.puts.set()
        await setup.service.wait_idle()

    run(scenario)


def test_deleting_a_backup_being_restored_is_backup_in_use(setup: Setup) -> None:
    async def scenario() -> None:
        await make_table(setup.engine, 5)
        view = await setup.service.create(TABLE, "source")
        await setup.service.wait_idle()
        setup.store.gets.clear()
        await setup.service.restore(view.arn, "copy", Overrides())
        with pytest.raises(BackupInUseException):
            await setup.service.delete(view.arn)
        setup.store.gets.set()
        await setup.service.wait_idle()
        assert setup.engine.catalog.get("copy") is not None
        await setup.service.delete(view.arn)  # the restore is done: now it may go

    run(scenario)


# --- the snapshot -------------------------------------------------------------------------------


def test_a_backup_holds_the_table_exactly_as_of_the_call(setup: Setup) -> None:
    async def scenario() -> None:
        await make_table(setup.engine, 20)
        before = stored(setup.engine, TABLE)
        setup.store.puts.clear()  # the backup is written only after the writes below
        view = await setup.service.create(TABLE, "moment")
        await put(setup.engine, "k000", "changed")
        await put(setup.engine, "new", "added")
        await call(setup.engine, "DeleteItem", {"TableName": TABLE, "Key": {"pk": {"S": "k005"}}})
        setup.store.puts.set()
        await setup.service.wait_idle()
        assert list(setup.service.vault.read_items(view.backup_id)) == before
        assert stored(setup.engine, TABLE) != before

    run(scenario)


def test_a_backup_records_the_change_log_sequence_of_the_call(setup: Setup) -> None:
    async def scenario() -> None:
        table = await make_table(setup.engine, 7)
        sequence = setup.engine.reader(table).stats().last_sequence
        setup.store.puts.clear()
        view = await setup.service.create(TABLE, "moment")
        await put(setup.engine, "later", "x")
        setup.store.puts.set()
        await setup.service.wait_idle()
        manifest = setup.service.vault.load_manifest(view.backup_id)
        assert (manifest.sequence, manifest.item_count) == (sequence, 7)

    run(scenario)
