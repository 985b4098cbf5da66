#!/usr/bin/env python3
"""Backups through the engine's API (issue 4): CreateBackup latency, backup and restore throughput,
and what a running backup does to the p99 of writes.

    hack/bench_backup_api.py [--sizes 10000 100000 1000000] [--item-bytes 200] [--backups 5]
                             [--write-rate 500] [--writer-threads 8] [--seconds 20]
                             [--load-size N] [--fill-procs 4] [--keep DIR]
                             [--engine-arg=--durability=process-crash ...]

Starts a real engine (``python -m tablekeeper engine --data DIR --port 0 --auth none``)
with its default folder vault, DIR/vault, and talks to it over the wire only (boto3).
Per size it fills a table ``bench-<size>`` of items of about ``--item-bytes`` bytes
(BatchWriteItem from ``--fill-procs`` processes; with ``--keep`` a table already
holding that many items is reused), then:

  CreateBackup   ``--backups`` calls, each waited on until AVAILABLE: the median and
                 max call latency; the first backup's time until AVAILABLE gives the
                 backup throughput (items/s, and MB/s of DescribeTable's TableSizeBytes);
                 the later ones reuse its chunks (the vault is incremental)
  restore        RestoreTableFromBackup of the first backup until ACTIVE: items/s

Then the write load: a separate process (its own GIL) does PutItem at ``--write-rate``
per second from ``--writer-threads`` threads on keep-alive connections, overwriting
random items of the ``--load-size`` table (default: the largest) with fresh content;
``--seconds`` of it without a backup, then during one backup of that table.
Latency is reported per request (send to answer) and from its scheduled send time
(which also counts the wait of requests queued behind a slow one).

Before each part the vault folder is emptied (the engine restarted on a fresh one),
so that every first backup is a full one.  The data directory is a temporary one,
removed at the end, unless ``--keep DIR`` names one to fill once and reuse.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import client

POLL = 0.01  # seconds between DescribeBackup / DescribeTable polls
WARMUP = 2.0  # seconds of writes before the baseline window opens
DRAIN = 1.5  # seconds the writes go on after the backup, for those scheduled within it
FILL_SLICE = 5000  # items per task of the fill pool
# The write load speaks the wire itself (boto3 would cost it ~1 ms of CPU a request): a SigV4-shaped
# Authorization header with an unverified signature, which ``--auth none`` accepts.
PUT_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.PutItem",
    "X-Amz-Date": "20250101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20250101/us-east-1/dynamodb/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
}


# --- the engine ----------------------------------------------------------------------------------


@contextmanager
def engine(data: Path, extra: list[str]) -> Iterator[str]:
    """An engine on ``data`` with a fresh default vault (DATA/vault); yields its endpoint."""
    shutil.rmtree(data / "vault", ignore_errors=True)
    (data / "vault.key").unlink(missing_ok=True)
    command = [sys.executable, "-m", "tablekeeper", "engine", "--data", str(data), "--port", "0",
               "--auth", "none", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            match = re.search(r"listening on (http://\S+)", line)
            if match is not None:
                break
        else:
            raise SystemExit(f"the engine did not start:\n{''.join(seen)}")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- items and filling ---------------------------------------------------------------------------


def make_item(i: int, item_bytes: int, rng: random.Random) -> dict[str, Any]:
    """Item ``i``: ``pk`` S, ``n`` N and a random ``payload``, ~``item_bytes`` in DynamoDB's measure."""
    pk = f"item-{i:09d}"
    room = max(1, item_bytes - len("pk") - len(pk) - len("n") - 6 - len("payload"))
    return {"pk": {"S": pk}, "n": {"N": str(i)},
            "payload": {"S": rng.randbytes(room // 2 + 1).hex()[:room]}}


_fill_client: Any = None


def _fill_init(endpoint: str) -> None:
    global _fill_client
    _fill_client = client(endpoint)


def _fill_slice(task: tuple[str, int, int, int]) -> int:
    table, start, stop, item_bytes = task
    rng = random.Random(start)
    for low in range(start, stop, 25):
        requests = [{"PutRequest": {"Item": make_item(i, item_bytes, rng)}}
                    for i in range(low, min(low + 25, stop))]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = _fill_client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return stop - start


def ensure_table(ddb: Any, endpoint: str, table: str, count: int, args: argparse.Namespace) -> float | None:
    """The table filled with ``count`` items; the fill's seconds, None when it was reused."""
    try:
        if ddb.describe_table(TableName=table)["Table"]["ItemCount"] == count:
            return None
        ddb.delete_table(TableName=table)
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    tasks = [(table, low, min(low + FILL_SLICE, count), args.item_bytes)
             for low in range(0, count, FILL_SLICE)]
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(args.fill_procs, _fill_init, (endpoint,)) as pool:
        loaded = sum(pool.imap_unordered(_fill_slice, tasks))
    assert loaded == count
    return time.perf_counter() - started


# --- backups and restores ------------------------------------------------------------------------


def wait_backup(ddb: Any, arn: str) -> float:
    """perf_counter() once the backup is AVAILABLE."""
    while True:
        status = ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"]
        if status == "AVAILABLE":
            return time.perf_counter()
        if status != "CREATING":
            raise SystemExit(f"backup {arn} is {status}")
        time.sleep(POLL)


def wait_active(ddb: Any, table: str) -> tuple[float, dict[str, Any]]:
    while True:
        described = ddb.describe_table(TableName=table)["Table"]
        if described["TableStatus"] == "ACTIVE":
            return time.perf_counter(), described
        time.sleep(POLL)


@dataclass
class SizeRow:
    items: int
    table_bytes: int
    fill_s: float | None
    create_ms: list[float]
    backup_s: list[float]  # call to AVAILABLE, the first one full
    restore_s: float


def measure_size(ddb: Any, table: str, count: int, fill_s: float | None, backups: int) -> SizeRow:
    table_bytes = ddb.describe_table(TableName=table)["Table"]["TableSizeBytes"]
    create_ms, backup_s, arns = [], [], []
    for n in range(backups):
        started = time.perf_counter()
        arn = ddb.create_backup(TableName=table, BackupName=f"bench-{n}")["BackupDetails"]["BackupArn"]
        create_ms.append((time.perf_counter() - started) * 1000)
        backup_s.append(wait_backup(ddb, arn) - started)
        arns.append(arn)
    target = f"{table}-restored"
    started = time.perf_counter()
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arns[0])
    done, described = wait_active(ddb, target)
    if described["ItemCount"] != count:
        raise SystemExit(f"restore of {table}: {described['ItemCount']} items, not {count}")
    ddb.delete_table(TableName=target)
    for arn in arns:
        ddb.delete_backup(BackupArn=arn)
    return SizeRow(count, table_bytes, fill_s, create_ms, backup_s, done - started)


# --- the write load ------------------------------------------------------------------------------


Sample = tuple[float, float, float]  # (scheduled send, latency from send, latency from schedule)


def writer(endpoint: str, table: str, count: int, rate: float, threads: int, item_bytes: int,
           ready: Event, stop: Event, out: Connection) -> None:
    """PutItem at ``rate``/s in all from ``threads`` threads (open loop); sends back the samples."""
    period = threads / rate
    start = time.monotonic() + 0.5
    samples: list[list[Sample]] = [[] for _ in range(threads)]
    errors: list[int] = [0] * threads

    def run(n: int) -> None:
        rng, url = random.Random(n), urllib.parse.urlsplit(endpoint)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        scheduled = start + n * period / threads
        while not stop.is_set():
            body = json.dumps({"TableName": table, "Item": make_item(rng.randrange(count), item_bytes, rng)})
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            try:
                connection.request("POST", "/", body, PUT_HEADERS)
                answer = connection.getresponse()
                answer.read()
                errors[n] += answer.status != 200
            except OSError:  # counted, not fatal: the report shows them
                errors[n] += 1
                connection.close()
            answered = time.monotonic()
            samples[n].append((scheduled, answered - sent, answered - scheduled))
            scheduled += period

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    ready.set()
    for worker in workers:
        worker.join()
    out.send(([s for per_thread in samples for s in per_thread], sum(errors)))


@dataclass
class LoadResult:
    baseline: list[Sample]
    during: list[Sample]
    baseline_s: float
    backup_s: float
    errors: int


def measure_load(endpoint: str, table: str, count: int, args: argparse.Namespace) -> LoadResult:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=writer, args=(endpoint, table, count, args.write_rate,
                                               args.writer_threads, args.item_bytes, ready, stop, send))
    process.start()
    ready.wait()
    opened = time.monotonic() + 0.5 + WARMUP
    time.sleep(max(0.0, opened + args.seconds - time.monotonic()))
    ddb = client(endpoint)
    began, started = time.monotonic(), time.perf_counter()
    arn = ddb.create_backup(TableName=table, BackupName="under-load")["BackupDetails"]["BackupArn"]
    backup_s = wait_backup(ddb, arn) - started
    ended = time.monotonic()
    time.sleep(DRAIN)  # the writes scheduled before the end are made (and measured)
    stop.set()
    samples, errors = receive.recv()
    process.join()
    ddb.delete_backup(BackupArn=arn)
    return LoadResult([s for s in samples if opened <= s[0] < began],
                      [s for s in samples if began <= s[0] <= ended], began - opened, backup_s, errors)


# --- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(rows: list[SizeRow], load: LoadResult, load_size: int, args: argparse.Namespace) -> None:
    print(f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, items of ~{args.item_bytes} bytes, "
          f"engine options: {' '.join(args.engine_arg) or '(defaults)'}\n")
    print("| items | table MB | fill s | CreateBackup median ms | max ms | full backup s "
          "| backup items/s | backup MB/s | incremental backup s | restore s | restore items/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        full, later = row.backup_s[0], row.backup_s[1:]
        fill = "reused" if row.fill_s is None else f"{row.fill_s:.1f}"
        print(f"| {row.items:,} | {row.table_bytes / 1e6:.1f} | {fill} "
              f"| {statistics.median(row.create_ms):.1f} | {max(row.create_ms):.1f} | {full:.2f} "
              f"| {row.items / full:,.0f} | {row.table_bytes / 1e6 / full:.1f} "
              f"| {statistics.median(later) if later else float('nan'):.2f} | {row.restore_s:.2f} "
              f"| {row.items / row.restore_s:,.0f} |")
    print(f"\nPutItem at {args.write_rate:g}/s from {args.writer_threads} threads (a process of its own) "
          f"on the {load_size:,}-item table; {load.errors} errors\n")
    print("| phase | window s | writes | p50 ms | p99 ms | max ms | p99 from schedule ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, samples, window in (("no backup", load.baseline, load.baseline_s),
                                  ("during a backup", load.during, load.backup_s)):
        sent = [s[1] for s in samples]
        print(f"| {name} | {window:.1f} | {len(samples):,} | {ms(percentile(sent, 0.5))} "
              f"| {ms(percentile(sent, 0.99))} | {ms(max(sent, default=float('nan')))} "
              f"| {ms(percentile([s[2] for s in samples], 0.99))} |")
    lag = percentile([s[2] - s[1] for s in load.baseline], 0.99)
    if lag > 0.010:
        print(f"\nWARNING: the writer fell behind its schedule (p99 {ms(lag)} ms): add --writer-threads")
    ratio = percentile([s[1] for s in load.during], 0.99) / percentile([s[1] for s in load.baseline], 0.99)
    print(f"\np99 during a backup / without: {ratio:.2f}x (goal: at most 1.5x)")
    print(f"\ncommand: {shlex.join([sys.argv[0], *sys.argv[1:]])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--backups", type=int, default=5, help="CreateBackup calls per size")
    parser.add_argument("--write-rate", type=float, default=500.0, help="PutItem/s of the write load")
    parser.add_argument("--writer-threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="the write load's baseline window")
    parser.add_argument("--load-size", type=int, help="the table the write load uses (default: largest)")
    parser.add_argument("--fill-procs", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="data directory to use and keep (tables are reused)")
    parser.add_argument("--engine-arg", action="append", default=[],
                        help="pass to the engine, e.g. --engine-arg=--durability=process-crash")
    args = parser.parse_args()
    load_size = args.load_size or max(args.sizes)
    data = args.keep or Path(tempfile.mkdtemp(prefix="tk-bench-backup-"))
    try:
        rows = []
        with engine(data, args.engine_arg) as endpoint:
            ddb = client(endpoint)
            for size in sorted({*args.sizes, load_size}):
                fill_s = ensure_table(ddb, endpoint, f"bench-{size}", size, args)
                print(f"bench-{size}: " + ("reused" if fill_s is None else
                      f"filled in {fill_s:.1f} s ({size / fill_s:,.0f} items/s)"), flush=True)
                if size in args.sizes:
                    rows.append(measure_size(ddb, f"bench-{size}", size, fill_s, args.backups))
        with engine(data, args.engine_arg) as endpoint:  # a fresh vault: the backup is a full one
            load = measure_load(endpoint, f"bench-{load_size}", load_size, args)
        report(rows, load, load_size, args)
    finally:
        if args.keep is None:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
