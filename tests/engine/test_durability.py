"""Acknowledged writes are durable: kill -9 of the engine loses none of them."""

from __future__ import annotations

import resource
import signal
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import create_table, start_engine, unique_name
from tests.engine.index_support import scan_all

WRITERS = 8


def _write_until_killed(endpoint_client, table: str, writer: int, acked: list[tuple[str, str]],  # type: ignore[no-untyped-def]
                        stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        key = f"w{writer}-{n}"
        value = f"value-{n}"
        try:
            endpoint_client.put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": value}})
        except (BotoCoreError, ClientError):
            return  # the engine is gone; this write was never acknowledged
        acked.append((key, value))
        n += 1


@pytest.mark.parametrize("durability", ["power-loss", "process-crash"])
def test_every_acknowledged_write_survives_kill_9(tmp_path: Path, durability: str) -> None:
    engine = start_engine(tmp_path, "--durability", durability)
    try:
        table = create_table(engine.client(), unique_name())
        acked: list[list[tuple[str, str]]] = [[] for _ in range(WRITERS)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_write_until_killed,
                             args=(engine.client(), table, i, acked[i], stop))
            for i in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        engine.kill()  # mid-flight: writers are blocked in requests right now
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        engine.stop()

    restarted = start_engine(tmp_path, "--durability", durability)
    try:
        client = restarted.client()
        written = [pair for pairs in acked for pair in pairs]
        assert len(written) > 100, "the writers should have been acknowledged many times"
        for key, value in written:
            item = client.get_item(TableName=table, Key={"pk": {"S": key}}).get("Item")
            assert item == {"pk": {"S": key}, "v": {"S": value}}, key
        count = client.describe_table(TableName=table)["Table"]["ItemCount"]
        # Writes in flight at the kill may or may not have landed; none acked is lost.
        assert len(written) <= count <= len(written) + WRITERS
    finally:
        restarted.stop()


def test_sigterm_stops_the_engine_cleanly(tmp_path: Path) -> None:
    engine = start_engine(tmp_path)
    create_table(engine.client(), unique_name())
    assert engine.stop() == 0


def test_a_restarted_engine_serves_the_same_items(tmp_path: Path) -> None:
    engine = start_engine(tmp_path)
    table = create_table(engine.client(), unique_name(), range_key="sk", range_type="N")
    client = engine.client()
    for i in range(50):
        client.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}})
    engine.stop()
    restarted = start_engine(tmp_path)
    try:
        items = restarted.client().query(
            TableName=table, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
        )["Items"]
        assert [int(item["sk"]["N"]) for item in items] == list(range(50))
    finally:
        restarted.stop()


def _ignore_file_size_signal() -> None:
    # Past RLIMIT_FSIZE a write then fails (EFBIG, or short) instead of killing the process: what a
    # full disk does to SQLite's writes, without a filesystem of our own to fill.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_writes_that_cannot_reach_the_disk_fail_cleanly_and_lose_nothing(tmp_path: Path) -> None:
    engine = start_engine(tmp_path, preexec=_ignore_file_size_signal)
    try:
        client = engine.client()
        table = create_table(client, unique_name())
        filler = "x" * 1000
        acked = [f"before-{i}" for i in range(20)]
        for key in acked:
            client.put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": filler}})
        largest = max(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
        # The soft limit alone: the test may lift it again without privileges.
        resource.prlimit(engine.process.pid, resource.RLIMIT_FSIZE, (largest, resource.RLIM_INFINITY))
        refused: list[str] = []
        for i in range(500):
            key = f"full-{i}"
            try:
                client.put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": filler}})
            except ClientError as error:
                answer = error.response
                assert answer["ResponseMetadata"]["HTTPStatusCode"] == 500
                assert answer["Error"]["Code"] == "InternalServerError"
                refused.append(key)
                if len(refused) == 5:
                    break
            else:
                acked.append(key)
        assert len(refused) == 5, "the writes should have run into the file size limit"
        # Reads go on while writes cannot land.
        assert client.get_item(TableName=table, Key={"pk": {"S": "before-3"}})["Item"]["v"]["S"] == filler
        resource.prlimit(engine.process.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # fmt: skip
        client.put_item(TableName=table, Item={"pk": {"S": "after"}, "v": {"S": filler}})
        acked.append("after")
        assert any("failed" in line and "disk I/O error" in line for line in engine.recent)
        engine.kill()
    finally:
        engine.stop()

    restarted = start_engine(tmp_path)
    try:
        client = restarted.client()
        stored = {item["pk"]["S"] for item in scan_all(client, table)}
        assert stored == set(acked), "every acknowledged write and no refused one"
    finally:
        restarted.stop()
