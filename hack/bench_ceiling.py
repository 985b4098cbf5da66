#!/usr/bin/env python3
"""The most PutItem a machine gives tablekeeper at N connections, with one engine process or several.

    hack/bench_ceiling.py [--rounds 3] [--duration 8] [--connections 16] [--engines 1,2]
                          [--peer dynalite|none] [--item-bytes 200]
                          [--engine-options "--durability process-crash"]

Each round measures, one after another (alternating, so that the machine's drifting mood
favours none):

  the peer        (default dynalite, from hack/peers.sh) with ``wrk -t2 -cN``
  k engine(s)     for each k of ``--engines``: k fresh engines (``tablekeeper engine --auth
                  none`` and ``--engine-options``), each with a table preloaded by
                  hack/wrk/prepare.py, and k wrk processes at once that share the N
                  connections (``-t1`` each; ``-t2`` when k is 1); ops/s are summed

k independent engines are the upper bound of any design that spreads one engine's work over
k processes: they share nothing, so they pay for no coordination between processes at all.
If k of them cannot reach a throughput, no k-process engine can. The report prints medians,
the ratio to the peer of the same round (median of the rounds' ratios), the worst p99 of the
k wrk processes, and how busy the machine's CPUs were (/proc/stat).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "wrk"))
import prepare  # noqa: E402  (hack/wrk/prepare.py)

from benchlib import own_engine, require_wrk, run_wrk  # noqa: E402

TABLE = "tkceiling"
ITEMS = 10_000
WARMUP_S = 3


@dataclass(frozen=True)
class Result:
    ops_per_s: float
    p99_ms: float  # the worst of the wrk processes'
    busy: float  # share of all CPUs busy during the run


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far."""
    user, nice, system, idle, iowait, irq, softirq, *_ = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    )
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait


def wrk(endpoint: str, threads: int, connections: int, duration: int, item_bytes: int) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s",
               "--latency", "-s", str(HERE / "wrk" / "put.lua"), endpoint, "--", TABLE, str(ITEMS),
               str(item_bytes)]
    result = run_wrk(command)
    if result["errors"] or result["non2xx"]:
        raise SystemExit(f"bench_ceiling: {endpoint}: {result['errors']} errors, "
                         f"{result['non2xx']} non-2xx answers")
    return result


def together(endpoints: list[str], args: argparse.Namespace, duration: int) -> Result:
    """wrk against every endpoint at once, the connections shared out."""
    k, connections = len(endpoints), args.connections
    shares = [connections // k + (i < connections % k) for i in range(k)]
    threads = 2 if k == 1 else 1
    before = cpu_times()
    with ThreadPoolExecutor(max_workers=k) as pool:
        results = list(pool.map(lambda job: wrk(job[0], threads, job[1], duration, args.item_bytes),
                                zip(endpoints, shares, strict=True)))
    after = cpu_times()
    busy = (after[0] - before[0]) / max(1, after[1] - before[1])
    return Result(sum(r["ops_per_s"] for r in results), max(r["p99_ms"] for r in results), busy)


def prepared(endpoint: str, item_bytes: int) -> str:
    code = prepare.main(["--endpoint", endpoint, "--items", str(ITEMS), "--table", TABLE,
                         "--item-bytes", str(item_bytes)])
    if code:
        raise SystemExit(f"bench_ceiling: preparing {endpoint} failed")
    return endpoint


@contextlib.contextmanager
def engines(k: int, item_bytes: int, options: list[str]) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        endpoints = [stack.enter_context(own_engine(f"ceiling{i}", options))[0] for i in range(k)]
        yield [prepared(endpoint, item_bytes) for endpoint in endpoints]


@contextlib.contextmanager
def peer(name: str, item_bytes: int) -> Iterator[list[str]]:
    """A fresh peer from hack/peers.sh (its data wiped by the start), stopped afterwards."""
    peers = str(HERE / "peers.sh")
    subprocess.run([peers, "start", name], check=True, capture_output=True)
    try:
        url = subprocess.run([peers, "url", name], check=True, capture_output=True, text=True).stdout
        yield [prepared(url.strip(), item_bytes)]
    finally:
        subprocess.run([peers, "stop", name], check=False, capture_output=True)


def measure(setup: contextlib.AbstractContextManager[list[str]], args: argparse.Namespace) -> Result:
    with setup as endpoints:
        together(endpoints, args, WARMUP_S)  # unmeasured: caches, JIT, the WAL
        return together(endpoints, args, args.duration)


def report(samples: dict[str, list[Result]], peer_name: str | None, args: argparse.Namespace) -> str:
    lines = [
        f"PutItem, {args.item_bytes}-byte items, {args.connections} connections in all, "
        f"{args.duration} s x {args.rounds} rounds (medians)",
        "",
        "| setup | PutItem ops/s | worst p99 ms | CPUs busy | against the peer |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, results in samples.items():
        ratio = ""
        if peer_name is not None and name != peer_name:
            pairs = zip(results, samples[peer_name], strict=True)
            ratio = f"{statistics.median(mine.ops_per_s / theirs.ops_per_s for mine, theirs in pairs):.2f}x"
        lines.append(
            f"| {name} | {statistics.median(r.ops_per_s for r in results):.0f} "
            f"| {statistics.median(r.p99_ms for r in results):.1f} "
            f"| {statistics.median(r.busy for r in results) * 100:.0f} % | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--engines", default="1,2", help="engine process counts, comma-separated")
    parser.add_argument("--peer", default="dynalite", help="a hack/peers.sh peer, or none")
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--engine-options", default="",
                        help='more options for every engine, e.g. "--durability process-crash"')
    args = parser.parse_args(argv)
    require_wrk("bench_ceiling")
    counts = [int(k) for k in args.engines.split(",")]
    peer_name = None if args.peer == "none" else args.peer
    samples: dict[str, list[Result]] = {}
    for round_ in range(1, args.rounds + 1):
        setups: list[tuple[str, contextlib.AbstractContextManager[list[str]]]] = []
        if peer_name is not None:
            setups.append((peer_name, peer(peer_name, args.item_bytes)))
        options = args.engine_options.split()
        setups += [(f"tablekeeper, {k} engine{'s' if k > 1 else ''}", engines(k, args.item_bytes, options))
                   for k in counts]
        for name, setup in setups:
            result = measure(setup, args)
            samples.setdefault(name, []).append(result)
            print(f"round {round_} {name}: {result.ops_per_s:.0f} ops/s, p99 {result.p99_ms:.1f} ms, "
                  f"CPUs {result.busy * 100:.0f} % busy", file=sys.stderr, flush=True)
    print(report(samples, peer_name, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
