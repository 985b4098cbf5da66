#!/usr/bin/env python3
"""What point-in-time recovery costs and how far it trails: PutItem ops/s with PITR off and on
(wrk), and the lag of LatestRestorableDateTime behind the newest write under a steady load.

    hack/bench_pitr.py [--duration 10] [--rounds 3] [--connections 16] [--threads 2]
                       [--item-bytes 200] [--rate 1000] [--lag-seconds 30]

It starts its own engine (``tablekeeper engine --auth none``, the default folder vault,
fsync-durable writes) on a fresh data directory.

* **cost**: two tables (``pk`` S, ``sk`` S, on demand), one with PITR on; wrk PutItem
  (hack/wrk/put.lua, fresh keys) on each in turn, ``--rounds`` times, alternating; the
  report gives the medians and the engine's CPU per 1000 puts.
* **lag**: a writer in a separate process puts ``--rate`` items/s (fresh keys, 2 processes x 8
  threads, raw keep-alive HTTP) into the PITR table for ``--lag-seconds``; meanwhile this process
  reads DescribeContinuousBackups every 100 ms. The lag of a sample is the time of the
  newest acknowledged write (the writer's clock, the same host) minus
  LatestRestorableDateTime; the report gives its median, p99 and maximum.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchlib import Sample, add_wrk_arguments, client, cost_table, own_engine, require_wrk, rotated, wrk_put  # noqa: E402

PUT_SCRIPT = HERE / "wrk" / "put.lua"
SETUPS = ("PITR off", "PITR on")


def create_tables(endpoint: str) -> dict[str, str]:
    ddb = client(endpoint)
    tables = {}
    for setup in SETUPS:
        name = "bench-" + setup.lower().replace(" ", "-")
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
        )
        tables[setup] = name
    ddb.update_continuous_backups(TableName=tables["PITR on"],
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return tables


WRITER_PROCESSES = 2
WRITER_THREADS = 8  # per process


def _writer(endpoint: str, table: str, rate: float, seconds: float, process: int,
            newest: Any, stop: Any) -> None:
    """Put ``rate / WRITER_PROCESSES`` items/s for ``seconds`` over raw keep-alive HTTP (boto3 in
    one process tops out near 500 puts/s); ``newest`` gets the time of the newest acknowledged put."""
    per_thread = rate / WRITER_PROCESSES / WRITER_THREADS
    deadline = time.time() + seconds
    address = urlsplit(endpoint)
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem"}

    def run(thread: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        sent = 0
        started = time.time()
        while time.time() < deadline and not stop.is_set():
            body = json.dumps({"TableName": table, "Item": {
                "pk": {"S": f"lag-{process}-{thread}-{sent}"}, "sk": {"S": "x"}, "data": {"S": "y" * 150}}})
            connection.request("POST", "/", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise SystemExit(f"bench_pitr: PutItem answered {response.status}: {answer[:200]!r}")
            sent += 1
            acked = time.time()
            with newest.get_lock():
                newest.value = max(newest.value, acked)
            pause = started + sent / per_thread - time.time()
            if pause > 0:
                time.sleep(pause)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def measure_lag(endpoint: str, table: str, rate: float, seconds: float) -> tuple[list[float], float]:
    """Lag samples (seconds) and the achieved write rate."""
    newest = multiprocessing.Value("d", 0.0)
    stop = multiprocessing.Event()
    ddb = client(endpoint)
    before = ddb.describe_table(TableName=table)["Table"]["ItemCount"]
    writers = [multiprocessing.Process(target=_writer, args=(endpoint, table, rate, seconds, n, newest, stop))
               for n in range(WRITER_PROCESSES)]
    for writer in writers:
        writer.start()
    time.sleep(2)  # let the writer reach its pace
    lags = []
    started = time.time()
    while any(w.is_alive() for w in writers) and time.time() - started < seconds - 3:
        pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"]
        latest = pitr.get("LatestRestorableDateTime")
        if latest is not None and newest.value:
            lags.append(max(0.0, newest.value - latest.timestamp()))
        time.sleep(0.1)
    for writer in writers:
        writer.join()
    written = ddb.describe_table(TableName=table)["Table"]["ItemCount"] - before
    return lags, written / seconds


def report(samples: dict[str, list[Sample]], lags: list[float], rate: float, args: argparse.Namespace) -> str:
    lines = cost_table(samples, SETUPS, args).split("\n")
    ordered = sorted(lags)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    lines += [
        "",
        f"LatestRestorableDateTime lag behind the newest write at {rate:.0f} writes/s achieved "
        f"(asked {args.rate:.0f}/s, {args.lag_seconds:.0f} s, {len(lags)} samples):",
        "",
        "| median s | p99 s | max s |",
        "|---:|---:|---:|",
        f"| {statistics.median(lags):.2f} | {p99:.2f} | {max(lags):.2f} |" if lags else "| - | - | - |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_wrk_arguments(parser)
    parser.add_argument("--rate", type=float, default=1000.0, help="writes/s of the lag phase")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    require_wrk("bench_pitr")
    with own_engine("bench-pitr") as (endpoint, pid):
        tables = create_tables(endpoint)
        samples: dict[str, list[Sample]] = {setup: [] for setup in SETUPS}
        for round_number in range(1, args.rounds + 1):
            for setup in rotated(SETUPS, round_number):
                script_args = [tables[setup], "0", str(args.item_bytes)]
                sample = wrk_put("bench_pitr", endpoint, PUT_SCRIPT, script_args, args, pid)
                samples[setup].append(sample)
                print(f"round {round_number} {setup}: {sample.ops_per_s:.0f} ops/s, "
                      f"p99 {sample.p99_ms:.2f} ms", file=sys.stderr)
        lags, achieved = measure_lag(endpoint, tables["PITR on"], args.rate, args.lag_seconds)
    print(report(samples, lags, achieved, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
