"""Pieces shared by the hack/bench_*.py scripts: a client, an engine of their own, CPU time."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config


def client(endpoint: str, service: str = "dynamodb") -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="bench", config=Config(retries={"max_attempts": 3}),
    )


def cpu_times(pid: int | None, *, main_thread: bool = False) -> tuple[float, float]:
    """User and system CPU time of a process and all its threads, in seconds (Linux /proc);
    with ``main_thread``, of its main thread alone (the engine's event loop)."""
    if pid is None:
        return 0.0, 0.0
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process and all its threads (Linux /proc)."""
    return sum(cpu_times(pid))


@contextmanager
def own_engine(name: str, options: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
               data: Path | None = None) -> Iterator[tuple[str, int]]:
    """A fresh engine (--auth none, more ``options``) on a free port; yields its endpoint and pid.

    ``env``: the engine's environment (default: ours). ``data``: its data directory, left in place
    for the caller to read and remove (default: a temporary one, removed at the end).
    """
    owned = data is None
    data = Path(tempfile.mkdtemp(prefix=f"tk-{name}-")) if data is None else data
    command = [sys.executable, "-m", "tablekeeper", "engine", "--data", str(data), "--port", "0",
               "--auth", "none", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=None if env is None else dict(env))
    try:
        output = process.stdout
        assert output is not None
        seen = ""
        match = None
        while match is None:  # warnings may come first (a generated vault key, ...)
            line = output.readline()
            if not line:
                raise SystemExit(f"{name}: engine did not start: {seen}")
            seen += line
            match = re.search(r"listening on (\S+)", line)
        threading.Thread(target=output.read, daemon=True).start()  # keep the pipe drained
        yield match.group(1), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        if owned:
            shutil.rmtree(data, ignore_errors=True)


@dataclass
class Sample:
    ops_per_s: float
    p99_ms: float
    cpu_ms_per_1k: float | None  # the engine's CPU time per 1000 puts (own engine only)
    # The part of it spent in the kernel (system time): syscalls, block I/O, loopback TCP.
    system_ms_per_1k: float | None = None
    # The part of it on the event loop's thread (requests, and the SQL of writes); the rest is
    # the storage threads' (commits, checkpoints).
    loop_ms_per_1k: float | None = None


def add_wrk_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every wrk-driven script shares."""
    parser.add_argument("--endpoint", help="an engine to use (default: start one)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds of quiet before each run, so that one setup's background "
                             "work (WAL checkpoints) is not counted against the next")


def rotated(setups: Sequence[str], round_number: int) -> list[str]:
    """The setups in the order round ``round_number`` (from 1) runs them: each round starts one
    further along, so that over the rounds every setup runs right after each other one."""
    start = (round_number - 1) % len(setups)
    return [*setups[start:], *setups[:start]]


def require_wrk(name: str) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit(f"{name}: wrk is not installed (apt-get install -y wrk)")


def run_wrk(command: Sequence[str]) -> dict[str, Any]:
    """Run wrk with one of our scripts; the "TKWRK {json}" line its done() prints."""
    output = subprocess.run(list(command), capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("TKWRK "))
    return json.loads(line[len("TKWRK "):])  # type: ignore[no-any-return]


def wrk_put(name: str, endpoint: str, script: Path, script_args: list[str],
            args: argparse.Namespace, pid: int | None) -> Sample:
    """One wrk run of a PutItem script; reads the scripts' "TKWRK {json}" line."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--latency", "-s", str(script), endpoint, "--", *script_args]
    time.sleep(args.settle)
    before, loop_before = cpu_times(pid), cpu_times(pid, main_thread=True)
    result = run_wrk(command)
    after, loop_after = cpu_times(pid), cpu_times(pid, main_thread=True)
    user, system = after[0] - before[0], after[1] - before[1]
    loop = sum(loop_after) - sum(loop_before)
    if result["errors"]:
        print(f"{name}: {result['errors']} errors on {script_args[0]}", file=sys.stderr)
    requests = result["requests"]
    if pid is None or not requests:
        return Sample(result["ops_per_s"], result["p99_ms"], None)
    per_1k = 1000 * 1000 / requests
    return Sample(result["ops_per_s"], result["p99_ms"], (user + system) * per_1k, system * per_1k,
                  loop * per_1k)


def cost_table(samples: dict[str, list[Sample]], setups: Sequence[str], args: argparse.Namespace) -> str:
    """The medians of each setup's PutItem samples and its throughput cost against the first setup.

    The cost is the median of the per-round costs: the setups alternate within a round, so a
    round's pair shares the machine's mood and the table's size, which whole-run medians do not.
    Rounds run the setups in rotated order (``rotated``): run in one fixed order, the setup
    after the baseline paid for the baseline's background work (one GSI measured +91 µs of
    engine CPU per put in second place and +38 µs in third, in runs minutes apart)."""
    base = samples[setups[0]]
    lines = [
        f"PutItem, {args.item_bytes}-byte items, wrk -t{args.threads} -c{args.connections}, "
        f"{args.duration} s x {args.rounds} rounds (medians; the cost: median of the rounds' pairs)",
        "",
        "| setup | PutItem ops/s | p99 ms | throughput cost | engine CPU ms / 1000 puts | of it, kernel "
        "| of it, event loop |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for setup in setups:
        ops = statistics.median(s.ops_per_s for s in samples[setup])
        p99 = statistics.median(s.p99_ms for s in samples[setup])
        paired = [1 - mine.ops_per_s / theirs.ops_per_s
                  for mine, theirs in zip(samples[setup], base, strict=True)]
        cost = "" if setup == setups[0] else f"{statistics.median(paired) * 100:+.1f}%"
        cpu = _median_text([s.cpu_ms_per_1k for s in samples[setup]])
        system = _median_text([s.system_ms_per_1k for s in samples[setup]])
        loop = _median_text([s.loop_ms_per_1k for s in samples[setup]])
        lines.append(f"| {setup} | {ops:.0f} | {p99:.2f} | {cost} | {cpu} | {system} | {loop} |")
    return "\n".join(lines)


def _median_text(values: Sequence[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.median(known):.0f}" if known else "n/a"
