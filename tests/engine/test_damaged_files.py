"""A table file damaged or removed while the engine was down costs that table, never the others.

The engine starts, serves every other table, and answers the damaged table's requests with
InternalServerError (never ResourceNotFoundException, never an empty table) while its log says
which file and why. Deleting the damaged table works, and its name can be used again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, start_engine

ITEMS = 200
PAGE = 4096


def _garbage_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:16] = b"not a database!!"
    path.write_bytes(bytes(data))


def _overwritten_schema_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:PAGE] = b"\xab" * (PAGE - 100)  # the first page after the header: the schema's root
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: PAGE + 100])


def _removed(path: Path) -> None:
    path.rename(path.with_name(path.name + ".aside"))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage header": _garbage_header,
    "overwritten schema page": _overwritten_schema_page,
    "truncated": _truncated,
    "removed": _removed,
}


def _filled(engine: EngineProcess, name: str) -> str:
    client = engine.client()
    create_table(client, name)
    for first in range(0, ITEMS, 25):
        puts = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"S": "x" * 300}}}}
                for i in range(first, first + 25)]  # fmt: skip
        assert not client.batch_write_item(RequestItems={name: puts})["UnprocessedItems"]
    return str(client.describe_table(TableName=name)["Table"]["TableId"])


def _good_and_damaged(data: Path, setup: Callable[[Any], None] | None = None) -> str:
    """Tables "good" and "damaged" filled by an engine that then stops cleanly; the damaged one's id.
    ``setup`` gets a client for more before the stop."""
    engine = start_engine(data)
    try:
        _filled(engine, "good")
        bad_id = _filled(engine, "damaged")
        if setup is not None:
            setup(engine.client())
    finally:
        assert engine.stop() == 0  # a clean stop: the files are checkpointed, the WAL gone
    return bad_id


def _table_file(data: Path, table_id: str) -> Path:
    path = data / "tables" / f"{table_id.replace('-', '')}.db"
    assert path.exists(), sorted(p.name for p in (data / "tables").iterdir())
    return path


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_table_file_fails_that_table_alone(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    bad_id = _good_and_damaged(tmp_path)
    damage(_table_file(tmp_path, bad_id))

    restarted = start_engine(tmp_path)
    try:
        client = restarted.client()
        assert client.scan(TableName="good", Select="COUNT")["Count"] == ITEMS
        client.put_item(TableName="good", Item={"pk": {"S": "more"}})
        assert sorted(client.list_tables()["TableNames"]) == ["damaged", "good"]
        key = {"pk": {"S": "k1"}}
        assert _code(lambda: client.get_item(TableName="damaged", Key=key)) == "InternalServerError"
        assert _code(lambda: client.scan(TableName="damaged")) == "InternalServerError"
        assert _code(lambda: client.put_item(TableName="damaged", Item=key)) == "InternalServerError"
        assert _code(lambda: client.describe_table(TableName="damaged")) == "InternalServerError"
        said = "".join(restarted.recent)
        assert "table damaged cannot be used" in said and f"{bad_id.replace('-', '')}.db" in said

        deleted = client.delete_table(TableName="damaged")["TableDescription"]
        assert deleted["TableStatus"] == "DELETING"
        create_table(client, "damaged")
        client.put_item(TableName="damaged", Item=key)
        assert client.get_item(TableName="damaged", Key=key)["Item"] == key
        assert client.scan(TableName="good", Select="COUNT")["Count"] == ITEMS + 1
    finally:
        restarted.stop()


def test_a_damaged_file_put_back_serves_its_table_again(tmp_path: Path) -> None:
    engine = start_engine(tmp_path)
    try:
        bad_id = _filled(engine, "moved")
    finally:
        engine.stop()
    path = _table_file(tmp_path, bad_id)
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    restarted = start_engine(tmp_path)
    try:
        key = {"pk": {"S": "k7"}}
        client = restarted.client()
        assert _code(lambda: client.get_item(TableName="moved", Key=key)) == "InternalServerError"
    finally:
        restarted.stop()
    aside.rename(path)  # nothing of it was touched meanwhile
    again = start_engine(tmp_path)
    try:
        assert again.client().scan(TableName="moved", Select="COUNT")["Count"] == ITEMS
    finally:
        again.stop()


def test_a_corrupt_page_inside_a_table_fails_the_reads_that_reach_it(tmp_path: Path) -> None:
    path = _table_file(tmp_path, _good_and_damaged(tmp_path))
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * PAGE
    data[-3 * PAGE : -2 * PAGE] = b"\xab" * PAGE  # a page of items or log: found only when read
    path.write_bytes(bytes(data))

    restarted = start_engine(tmp_path)
    try:
        client = restarted.client()
        assert _code(lambda: client.scan(TableName="damaged")) == "InternalServerError"
        assert client.scan(TableName="good", Select="COUNT")["Count"] == ITEMS
        said = "".join(restarted.recent)
        assert "malformed" in said and "Traceback" not in said, "a StorageError, translated at the seam"
    finally:
        restarted.stop()


def test_background_work_leaves_a_damaged_table_alone(tmp_path: Path) -> None:
    def ttl_and_pitr_on(client: Any) -> None:
        ttl = {"Enabled": True, "AttributeName": "ttl"}
        client.update_time_to_live(TableName="damaged", TimeToLiveSpecification=ttl)
        pitr = {"PointInTimeRecoveryEnabled": True}
        client.update_continuous_backups(TableName="damaged", PointInTimeRecoverySpecification=pitr)

    bad_id = _good_and_damaged(tmp_path, ttl_and_pitr_on)
    _garbage_header(_table_file(tmp_path, bad_id))

    restarted = start_engine(tmp_path, "--ttl-interval", "0.1")
    try:
        client = restarted.client()
        time.sleep(2)  # some twenty TTL sweeps, and PITR rounds
        assert client.scan(TableName="good", Select="COUNT")["Count"] == ITEMS
        about = [line for line in restarted.recent if "damaged" in line or bad_id.replace("-", "") in line]
        assert len(about) == 1, about  # the startup's word, not a warning per round
    finally:
        restarted.stop()


@pytest.mark.parametrize("state", ["catalog.db", "redo.db", "backups.db", "pitr.db"])
def test_a_damaged_state_database_stops_the_engine_with_a_line_naming_it(tmp_path: Path, state: str) -> None:
    engine = start_engine(tmp_path)
    try:
        create_table(engine.client(), "kept")
    finally:
        engine.stop()
    _garbage_header(tmp_path / state)
    finished = subprocess.run(
        [sys.executable, "-m", "tablekeeper", "engine", "--data", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = finished.stdout + finished.stderr
    assert finished.returncode != 0
    assert f"tablekeeper engine: open {tmp_path / state}: file is not a database" in said
    assert "Traceback" not in said
