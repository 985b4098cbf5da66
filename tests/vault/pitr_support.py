"""Helpers for PITR tests against real engines: enabling, the window, marks, restores, restarts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3

from tests.conftest import EngineProcess, start_engine, unique_name
from tests.vault.backup_api_support import scan_all, wait_restored
from tests.vault.conftest import REGION, MotoS3

MARGIN = 0.003  # seconds kept clear of writes on each side of a mark (record times are whole ms)
ENGINE_ARGS_START = 8  # EngineProcess.args: python -m tablekeeper engine --data DIR --port N, then extras

Content = dict[tuple[str, ...], dict[str, Any]]


def pitr_description(ddb: Any, table: str) -> dict[str, Any]:
    described = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    return described["PointInTimeRecoveryDescription"]  # type: ignore[no-any-return]


def latest(ddb: Any, table: str) -> float | None:
    found: datetime | None = pitr_description(ddb, table).get("LatestRestorableDateTime")
    return None if found is None else found.timestamp()


def earliest(ddb: Any, table: str) -> float | None:
    found: datetime | None = pitr_description(ddb, table).get("EarliestRestorableDateTime")
    return None if found is None else found.timestamp()


def wait_latest_after(ddb: Any, table: str, moment: float, timeout: float = 30.0) -> float:
    """The LatestRestorableDateTime once it is at or after ``moment``."""
    deadline = time.monotonic() + timeout
    while True:
        found = latest(ddb, table)
        if found is not None and found >= moment:
            return found
        assert time.monotonic() < deadline, f"archive of {table} not restorable to {moment} (latest {found})"
        time.sleep(0.03)


def enable(ddb: Any, table: str, period_days: int | None = None) -> dict[str, Any]:
    """Turn PITR on and wait for the first base; returns UpdateContinuousBackups' description."""
    spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
    if period_days is not None:
        spec["RecoveryPeriodInDays"] = period_days
    answer = ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification=spec)
    wait_latest_after(ddb, table, 0)
    return answer["ContinuousBackupsDescription"]  # type: ignore[no-any-return]


def disable(ddb: Any, table: str) -> dict[str, Any]:
    answer = ddb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    return answer["ContinuousBackupsDescription"]  # type: ignore[no-any-return]


def content(ddb: Any, table: str, *keys: str) -> Content:
    """The table's items by key: each key attribute's plain value (``("k1",)``, ``("p0", "3")``)."""
    return {tuple(next(iter(item[name].values())) for name in keys or ("pk",)): item
            for item in scan_all(ddb, table, ConsistentRead=True)}


@dataclass
class Marks:
    """Times between a single writer's steps, each with the table's full content at that time."""

    ddb: Any
    table: str
    keys: tuple[str, ...] = ("pk",)
    taken: list[tuple[float, Content]] = field(default_factory=list)

    def mark(self) -> float:
        """Now, kept clear of the writes before and after it; records the table as it is."""
        time.sleep(MARGIN)
        moment = time.time()
        self.taken.append((moment, content(self.ddb, self.table, *self.keys)))
        time.sleep(MARGIN)
        return moment


def restore_many(ddb: Any, source: str, whens: list[float | None], keys: tuple[str, ...] = ("pk",)
                 ) -> list[Content]:
    """Restore ``source`` as of each time (None: the latest restorable), all at once; their contents."""
    targets = []
    for when in whens:
        target = unique_name("pitr")
        chosen: dict[str, Any] = ({"UseLatestRestorableTime": True} if when is None
                                  else {"RestoreDateTime": when})
        ddb.restore_table_to_point_in_time(SourceTableName=source, TargetTableName=target, **chosen)
        targets.append(target)
    restored = []
    for when, target in zip(whens, targets, strict=True):
        assert wait_restored(ddb, target) is not None, f"restore of {source} to {when} failed"
        restored.append(content(ddb, target, *keys))
        ddb.delete_table(TableName=target)
    return restored


def restore_at(ddb: Any, source: str, when: float | None, keys: tuple[str, ...] = ("pk",)) -> Content:
    """Restore ``source`` as of ``when`` (None: the latest restorable time) and return its content."""
    return restore_many(ddb, source, [when], keys)[0]


def check_marks(marks: Marks, keys: tuple[str, ...] = ("pk",)) -> None:
    """Every mark restores to exactly the content recorded at it."""
    wait_latest_after(marks.ddb, marks.table, marks.taken[-1][0])
    restored = restore_many(marks.ddb, marks.table, [moment for moment, _ in marks.taken], keys)
    for (moment, expected), got in zip(marks.taken, restored, strict=True):
        assert got == expected, f"restore to {moment}"


def restart(process: EngineProcess, moto_s3: MotoS3 | None) -> EngineProcess:
    """The same engine again: same data directory, same arguments (and S3 credentials)."""
    env = None
    if moto_s3 is not None:
        env = {"AWS_ACCESS_KEY_ID": moto_s3.access_key_id, "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key}
    return start_engine(process.data_dir, *process.args[ENGINE_ARGS_START:], env=env)


def archive_keys(process: EngineProcess, moto_s3: MotoS3 | None, table_id: str) -> list[str]:
    """The vault objects of one table's PITR archive (segments and settings)."""
    part = f"pitr/{table_id}/"
    if moto_s3 is None:
        folder = process.data_dir / "vault" / part  # os.walk: objects may go while it looks
        return sorted(os.path.join(where, name) for where, _, names in os.walk(folder) for name in names)
    url = process.args[process.args.index("--vault") + 1]
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name=REGION,
                      aws_access_key_id=moto_s3.access_key_id,
                      aws_secret_access_key=moto_s3.secret_access_key)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ())
                  if part in entry["Key"])


def internal_table_id(ddb: Any, table: str) -> str:
    return ddb.describe_table(TableName=table)["Table"]["TableId"].replace("-", "")  # type: ignore[no-any-return]


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
