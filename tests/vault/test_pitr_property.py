"""Point-in-time recovery on random workloads: a restore to any time between steps is the table then.

A seeded random workload (puts, SET/ADD/REMOVE updates, deletes,
TransactWriteItems, cancelled transactions, BatchWriteItem and TTL expiries)
runs against a real engine on each vault kind.  After each step the table's
full content is scanned; the next step starts a few milliseconds later.  Then
tables are restored to random times inside those quiet gaps (record times are
whole milliseconds: a time is chosen as a whole millisecond plus a half, at
or after the last write of the gap's step and before the first of the next)
and each restore must equal the content scanned in its gap.  The seed is in
every failure message; ``TK_PITR_SEED`` picks another workload.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, unique_name
from tests.vault.backup_api_support import VAULT_KINDS, start_vault_engine, wait_restored
from tests.vault.pitr_support import Content, content, enable, eventually, wait_latest_after

KEYS = [f"k{i}" for i in range(8)]
STEPS = 50
RESTORES = 16
GAP = 0.004  # seconds of quiet after each step's scan
SEED = os.environ.get("TK_PITR_SEED", "pitr-property-1")  # another seed, another workload


@pytest.fixture(scope="module", params=VAULT_KINDS)
def ddb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    moto_s3 = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    process: EngineProcess = start_vault_engine(
        request.param, tmp_path_factory.mktemp(request.param), moto_s3,
        "--pitr-interval", "0.1", "--ttl-interval", "0.2")
    yield process.client()
    process.stop()


@dataclass(frozen=True)
class Gap:
    """A quiet time between two steps: restores to any time in [first_ms, last_ms] + 0.5 ms give ``table``."""

    step: str
    first_ms: int
    last_ms: int
    table: Content


class Workload:
    def __init__(self, ddb: Any, table: str, rng: random.Random) -> None:
        self.ddb, self.table, self.rng = ddb, table, rng
        self.expiring = 0

    def _item(self, key: str) -> dict[str, Any]:
        item: dict[str, Any] = {"pk": {"S": key}, "v": {"N": str(self.rng.randint(-50, 50))}}
        if self.rng.random() < 0.5:
            item["s"] = {"S": self.rng.choice(["a", "bb", "ccc", "\u00e9"])}
        if self.rng.random() < 0.2:
            item["l"] = {"L": [{"N": "1"}, {"S": "x"}]}
        return item

    def _key(self) -> dict[str, Any]:
        return {"pk": {"S": self.rng.choice(KEYS)}}

    def put(self) -> None:
        self.ddb.put_item(TableName=self.table, Item=self._item(self.rng.choice(KEYS)))

    def update_set(self) -> None:
        self.ddb.update_item(TableName=self.table, Key=self._key(), UpdateExpression="SET s = :s, w = :w",
                             ExpressionAttributeValues={":s": {"S": str(self.rng.random())},
                                                        ":w": {"BOOL": True}})

    def update_add(self) -> None:
        self.ddb.update_item(TableName=self.table, Key=self._key(), UpdateExpression="ADD n :n, tags :t",
                             ExpressionAttributeValues={":n": {"N": str(self.rng.randint(1, 9))},
                                                        ":t": {"SS": [self.rng.choice("xyz")]}})

    def update_remove(self) -> None:
        self.ddb.update_item(TableName=self.table, Key=self._key(), UpdateExpression="REMOVE s, n")

    def delete(self) -> None:
        self.ddb.delete_item(TableName=self.table, Key=self._key())

    def transact(self) -> None:
        keys = self.rng.sample(KEYS, self.rng.randint(1, 4))
        actions: list[dict[str, Any]] = []
        for key in keys:
            kind = self.rng.choice(["Put", "Update", "Delete"])
            if kind == "Put":
                actions.append({"Put": {"TableName": self.table, "Item": self._item(key)}})
            elif kind == "Update":
                actions.append({"Update": {"TableName": self.table, "Key": {"pk": {"S": key}},
                                           "UpdateExpression": "ADD n :one",
                                           "ExpressionAttributeValues": {":one": {"N": "1"}}}})
            else:
                actions.append({"Delete": {"TableName": self.table, "Key": {"pk": {"S": key}}}})
        self.ddb.transact_write_items(TransactItems=actions)

    def cancelled_transaction(self) -> None:
        """A transaction whose condition fails: none of its writes happen."""
        key, other = self.rng.sample(KEYS, 2)
        with pytest.raises(ClientError) as raised:
            self.ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": self._item(key)}},
                {"ConditionCheck": {"TableName": self.table, "Key": {"pk": {"S": other}},
                                    "ConditionExpression": "attribute_exists(never)"}},
            ])
        assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"

    def batch(self) -> None:
        requests = []
        for key in self.rng.sample(KEYS, self.rng.randint(1, 6)):
            if self.rng.random() < 0.6:
                requests.append({"PutRequest": {"Item": self._item(key)}})
            else:
                requests.append({"DeleteRequest": {"Key": {"pk": {"S": key}}}})
        self.ddb.batch_write_item(RequestItems={self.table: requests})

    def expire(self) -> None:
        """An item whose TTL has passed (new, or an existing one given one): wait for TTL to delete it."""
        past = {"N": str(int(time.time()) - self.rng.randint(1, 10_000))}
        existing = [key for (key,) in content(self.ddb, self.table)]
        if existing and self.rng.random() < 0.5:
            key = self.rng.choice(existing)
            self.ddb.update_item(TableName=self.table, Key={"pk": {"S": key}},
                                 UpdateExpression="SET exp = :e", ExpressionAttributeValues={":e": past})
        else:
            self.expiring += 1
            key = f"ttl{self.expiring}"
            self.ddb.put_item(TableName=self.table, Item={"pk": {"S": key}, "exp": past})
        eventually(lambda: (key,) not in content(self.ddb, self.table), f"TTL never deleted {key}")

    def steps(self) -> dict[str, tuple[float, Callable[[], None]]]:
        return {
            "put": (5, self.put), "set": (3, self.update_set), "add": (3, self.update_add),
            "remove": (1, self.update_remove), "delete": (3, self.delete), "transact": (2, self.transact),
            "cancelled": (1, self.cancelled_transaction), "batch": (2, self.batch),
            "expire": (0.6, self.expire),
        }


def _run(ddb: Any, table: str, seed: str) -> list[Gap]:
    rng = random.Random(seed)
    workload = Workload(ddb, table, rng)
    steps = workload.steps()
    names = list(steps)
    weights = [steps[name][0] for name in names]
    plan = ["expire", *rng.choices(names, weights, k=STEPS - 1)]  # TTL at least once
    rng.shuffle(plan)
    gaps: list[Gap] = []
    done, step, table_now = time.time(), "enable", content(ddb, table)
    for name in [*plan, "end"]:
        time.sleep(GAP)
        started = time.time()
        gaps.append(Gap(step, math.ceil(done * 1000), math.floor(started * 1000) - 1, table_now))
        if name == "end":
            break
        steps[name][1]()
        done = time.time()
        step, table_now = name, content(ddb, table)
    return gaps


def _restore(ddb: Any, table: str, when_ms: int) -> str:
    target = unique_name("prop")
    ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                       RestoreDateTime=(when_ms + 0.5) / 1000)
    return target


def test_a_restore_to_any_time_between_steps_is_the_table_scanned_then(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    ddb.update_time_to_live(TableName=table,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    enable(ddb, table)
    seed = SEED
    gaps = _run(ddb, table, seed)
    assert len({len(gap.table) for gap in gaps}) > 2, f"seed {seed}: the workload hardly changed the table"
    rng = random.Random(seed + "-times")
    chosen = [gaps[0], gaps[-1], *rng.sample(gaps[1:-1], RESTORES - 2)]
    wait_latest_after(ddb, table, (gaps[-1].last_ms + 1) / 1000)
    started = []
    for gap in chosen:  # all restores run at once
        assert gap.first_ms <= gap.last_ms, f"seed {seed}: no quiet millisecond after {gap.step}"
        when_ms = rng.randint(gap.first_ms, gap.last_ms)
        started.append((gap, when_ms, _restore(ddb, table, when_ms)))
    for gap, when_ms, target in started:
        assert wait_restored(ddb, target) is not None, f"seed {seed}: restore to {when_ms} failed"
        assert content(ddb, target) == gap.table, f"seed {seed}: restore to {when_ms}, after {gap.step}"
        ddb.delete_table(TableName=target)
