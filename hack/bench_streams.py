#!/usr/bin/env python3
"""What a stream costs a write: PutItem ops/s with and without a stream, measured with wrk.

    hack/bench_streams.py [--endpoint http://127.0.0.1:8000] [--duration 10] [--rounds 3]
                          [--connections 16] [--threads 2] [--item-bytes 200]

Without ``--endpoint`` it starts its own engine (``tablekeeper engine --auth none``) on
a fresh temporary data directory and stops it at the end. Setups, each a table of its own
with tablekeeper.bench's key layout (``pk`` S, ``sk`` S):

  no stream        the baseline
  stream           StreamViewType NEW_AND_OLD_IMAGES, nobody reading it
  stream + reader  the same while one consumer tails the shard with GetRecords

The setups run one after another, ``--rounds`` times (alternating, so that a machine
whose load drifts does not favour one), with ``hack/wrk/put.lua``; the report gives the
median PutItem ops/s and p99 of each and the cost against the baseline. The reader also
checks that it saw every write it could.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchlib import Sample, add_wrk_arguments, client, cost_table, own_engine, require_wrk, rotated, wrk_put  # noqa: E402

PUT_SCRIPT = HERE / "wrk" / "put.lua"
SETUPS = ("no stream", "stream", "stream + reader")


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {s: [] for s in SETUPS})
    records_read: int = 0


def create_tables(endpoint: str) -> dict[str, str]:
    """One table per setup; returns setup -> table name."""
    ddb = client(endpoint)
    suffix = os.urandom(3).hex()
    tables = {}
    for setup in SETUPS:
        name = f"tkbench-{setup.replace(' + ', '-').replace(' ', '-')}-{suffix}"
        extra: dict[str, Any] = {}
        if setup != "no stream":
            extra["StreamSpecification"] = {"StreamEnabled": True,
                                            "StreamViewType": "NEW_AND_OLD_IMAGES"}
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            **extra,
        )
        tables[setup] = name
    return tables


class Reader(threading.Thread):
    """Tails a stream's shard until stopped, as a consumer like Lambda does: it polls every
    ``interval`` seconds and reads pages back to back until one comes back empty.

    Raw HTTP and orjson, counting records without parsing them, so that the reader's own
    CPU (it shares the machine) stays small next to the engine's.
    """

    def __init__(self, endpoint: str, table: str, interval: float) -> None:
        super().__init__(daemon=True)
        arn = client(endpoint).describe_table(TableName=table)["Table"]["LatestStreamArn"]
        streams = client(endpoint, "dynamodbstreams")
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        self.position = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")["ShardIterator"]
        url = urlsplit(endpoint)
        self.connection = http.client.HTTPConnection(url.hostname, url.port)
        self.interval = interval
        self.stop = threading.Event()
        self.records = 0

    def page(self) -> int:
        body = orjson.dumps({"ShardIterator": self.position, "Limit": 1000})
        self.connection.request("POST", "/", body, {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords",
        })
        answer = orjson.loads(self.connection.getresponse().read())
        self.position = answer["NextShardIterator"]
        self.records += len(answer["Records"])
        return len(answer["Records"])

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            while self.page():
                pass

    def drain(self) -> int:
        """Stop, then read what is left; returns how many records were read in all."""
        self.stop.set()
        self.join()
        while self.page():
            pass
        return self.records


def measure(endpoint: str, args: argparse.Namespace, pid: int | None = None) -> Results:
    tables = create_tables(endpoint)
    results = Results()
    for round_number in range(1, args.rounds + 1):
        for setup in rotated(SETUPS, round_number):
            reader = Reader(endpoint, tables[setup], args.poll) if setup == "stream + reader" else None
            if reader is not None:
                reader.start()
            script_args = [tables[setup], "0", str(args.item_bytes)]
            sample = wrk_put("bench_streams", endpoint, PUT_SCRIPT, script_args, args, pid)
            if reader is not None:
                read = reader.drain()
                results.records_read += read
                expected = round(sample.ops_per_s * args.duration)
                print(f"  reader saw {read} records (wrk reported ~{expected} puts)", file=sys.stderr)
            results.samples[setup].append(sample)
            print(f"round {round_number} {setup}: {sample.ops_per_s:.0f} ops/s, "
                  f"p99 {sample.p99_ms:.2f} ms", file=sys.stderr)
    return results


def report(results: Results, args: argparse.Namespace) -> str:
    return cost_table(results.samples, SETUPS, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_wrk_arguments(parser)
    parser.add_argument("--poll", type=float, default=0.25,
                        help="the reader's poll interval in seconds (Lambda polls 4 times a second)")
    args = parser.parse_args(argv)
    require_wrk("bench_streams")
    if args.endpoint:
        results = measure(args.endpoint, args)
    else:
        with own_engine("bench-streams") as (endpoint, pid):
            results = measure(endpoint, args, pid)
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
