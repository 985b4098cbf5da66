"""PITR when the vault goes away: writes go on, the lag shows, archiving catches up with no gap."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.vault.crypto import VaultKey
from tests.conftest import EngineProcess, create_table, start_engine, unique_name
from tests.vault.backup_api_support import by_key, scan_all, wait_restored
from tests.vault.conftest import REGION, MotoS3


class Switch:
    """A TCP forwarder to the S3 server that the test turns off (connections refused) and on."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self.on()

    def on(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self) -> None:
        # shutdown() before close(): close() alone leaves a socket that another thread is blocked
        # on (accept, recv) working on Linux, and the vault would not really go away.
        assert self._listener is not None
        for sock in (self._listener, *self._connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._listener = None
        self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def switched_engine(tmp_path: Path, moto_s3: MotoS3) -> Iterator[tuple[EngineProcess, Switch]]:
    host, port = moto_s3.endpoint.removeprefix("http://").split(":")
    switch = Switch((host, int(port)))
    key_file = tmp_path / "vault.key"
    VaultKey.generate().save(key_file)
    process = start_engine(
        tmp_path / "data", "--pitr-interval", "0.1",
        "--vault", f"s3://{moto_s3.bucket}/switched-{uuid.uuid4().hex[:8]}",
        "--vault-endpoint-url", f"http://127.0.0.1:{switch.port}", "--vault-region", REGION,
        "--vault-key-file", str(key_file),
        env={"AWS_ACCESS_KEY_ID": moto_s3.access_key_id, "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key},
    )
    yield process, switch
    process.stop()


def _latest(ddb: Any, table: str) -> float | None:
    pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]
    latest = pitr.get("LatestRestorableDateTime")
    return None if latest is None else latest.timestamp()


def _wait_latest_after(ddb: Any, table: str, moment: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (_latest(ddb, table) or 0) < moment:
        assert time.monotonic() < deadline, "archiving did not catch up"
        time.sleep(0.1)


def test_an_unreachable_vault_delays_archiving_but_not_writes_and_leaves_no_gap(
    switched_engine: tuple[EngineProcess, Switch],
) -> None:
    process, switch = switched_engine
    ddb = process.client()
    table = create_table(ddb, unique_name())
    ddb.update_continuous_backups(TableName=table,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    for i in range(10):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"before{i}"}})
    _wait_latest_after(ddb, table, time.time())

    switch.off()
    for i in range(20):  # writes go on while the vault is away
        ddb.put_item(TableName=table, Item={"pk": {"S": f"during{i}"}})
    time.sleep(0.3)
    mark = time.time()
    expected = by_key(scan_all(ddb, table), "pk")
    time.sleep(1.5)
    stale = _latest(ddb, table)
    assert stale is not None and stale < mark  # the lag shows: nothing after the outage is restorable
    ddb.put_item(TableName=table, Item={"pk": {"S": "after-mark"}})

    switch.on()
    _wait_latest_after(ddb, table, time.time())
    target = unique_name("outage")
    ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target, RestoreDateTime=mark)
    assert wait_restored(ddb, target) is not None
    assert by_key(scan_all(ddb, target), "pk") == expected
