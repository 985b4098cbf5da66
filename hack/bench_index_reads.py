#!/usr/bin/env python3
"""What a Query through a global secondary index costs the engine, per projection, in one process.

    hack/bench_index_reads.py [--items 2000] [--page 100] [--queries 200] [--repeats 7]

Builds an engine on a temporary directory and, for each projection (ALL,
KEYS_ONLY, INCLUDE), a table of ``--items`` items of about 200 bytes with one
GSI whose partitions hold ``--page`` items each; then runs ``--queries`` Queries
of one index partition (a full page of ``--page`` items, serialized as the
server would) ``--repeats`` times and prints the least CPU time per Query.  No
sockets: the figure is the engine's own read path (operations, storage,
serialization), for comparing two versions of it on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.operations import OPERATIONS

PROJECTIONS = ("ALL", "KEYS_ONLY", "INCLUDE")


async def call(engine: Engine, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    op = OPERATIONS[operation]
    result: dict[str, Any] = (await op.execute(engine, op.parse(body))).to_wire()
    return result


async def measure(args: argparse.Namespace, data: Path) -> None:
    engine = Engine(EngineConfig(data))
    try:
        partitions = max(1, args.items // args.page)
        for projection in PROJECTIONS:
            name = f"reads-{projection.lower()}"
            shape: dict[str, Any] = {"ProjectionType": projection}
            if projection == "INCLUDE":
                shape["NonKeyAttributes"] = ["n"]
            await call(engine, "CreateTable", {
                "TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "g", "AttributeType": "S"}],
                "GlobalSecondaryIndexes": [{"IndexName": "byG", "Projection": shape,
                                            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
            })
            for i in range(args.items):
                await call(engine, "PutItem", {"TableName": name, "Item": {
                    "pk": {"S": f"k{i:08d}"}, "g": {"S": f"g{i % partitions}"}, "n": {"N": str(i)},
                    "data": {"S": "x" * 150}}})
            query = {"TableName": name, "IndexName": "byG", "KeyConditionExpression": "g = :g",
                     "ExpressionAttributeValues": {":g": {"S": "g1"}}}
            count = (await call(engine, "Query", query))["Count"]
            best = float("inf")
            for _ in range(args.repeats):
                started = time.process_time()
                for _ in range(args.queries):
                    orjson.dumps(await call(engine, "Query", query))
                best = min(best, (time.process_time() - started) / args.queries)
            print(f"{projection}: {best * 1e6:.0f} us CPU per Query of {count} items "
                  f"({best * 1e6 / count:.1f} us per item)")
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tk-index-reads-") as data:
        asyncio.run(measure(args, Path(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
