#!/usr/bin/env python3
"""Engine CPU time per request: PutItem (no index, one GSI) and GetItem, measured with wrk.

    hack/bench_cpu.py [--duration 5] [--rounds 3] [--connections 16] [--threads 2]
                      [--item-bytes 200] [--setups put,put-gsi-keys,put-gsi-all,get]
                      [--durability power-loss]

Starts its own engine (``tablekeeper engine --auth none``) on a fresh temporary data
directory and reads its CPU time (user + system, all threads) before and after each wrk
run. CPU per request is what a change to the request path moves, and unlike ops/s it
barely depends on what else runs on the machine, so it is the figure to compare code
changes by on a shared machine. Setups: PutItem of fresh keys into a table without an
index and into tables with one GSI (``hack/bench_gsi.py``'s tables and script), and
GetItem of preloaded keys (``hack/wrk/get.lua`` after ``hack/wrk/prepare.py``). They run
alternately, ``--rounds`` times; the report gives the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_gsi import PUT_LUA, create_tables  # noqa: E402
from benchlib import Sample, add_wrk_arguments, own_engine, require_wrk, wrk_put  # noqa: E402

SETUPS = ("put", "put-gsi-keys", "put-gsi-all", "get")
GSI_TABLES = {"put": "no index", "put-gsi-keys": "GSI KEYS_ONLY", "put-gsi-all": "GSI ALL"}
GET_TABLE = "tkcpu-get"
GET_ITEMS = 10_000


def prepare_get(endpoint: str, item_bytes: int) -> None:
    subprocess.run(
        [sys.executable, str(HERE / "wrk" / "prepare.py"), "--endpoint", endpoint,
         "--items", str(GET_ITEMS), "--table", GET_TABLE, "--item-bytes", str(item_bytes)],
        check=True,
    )


def measure(endpoint: str, pid: int, args: argparse.Namespace) -> dict[str, list[Sample]]:
    tables = create_tables(endpoint)
    if "get" in args.setups:
        prepare_get(endpoint, args.item_bytes)
    samples: dict[str, list[Sample]] = {setup: [] for setup in args.setups}
    with tempfile.TemporaryDirectory(prefix="tk-bench-cpu-") as scratch:
        put_script = Path(scratch) / "put.lua"
        put_script.write_text(PUT_LUA)
        for round_number in range(1, args.rounds + 1):
            for setup in args.setups:
                if setup == "get":
                    script = HERE / "wrk" / "get.lua"
                    script_args = [GET_TABLE, str(GET_ITEMS), str(args.item_bytes)]
                else:
                    script = put_script
                    script_args = [tables[GSI_TABLES[setup]], str(args.item_bytes)]
                sample = wrk_put("bench_cpu", endpoint, script, script_args, args, pid)
                samples[setup].append(sample)
                print(f"round {round_number} {setup}: {sample.ops_per_s:.0f} ops/s, "
                      f"p99 {sample.p99_ms:.2f} ms, "
                      f"{sample.cpu_ms_per_1k or 0:.0f} us CPU/request", file=sys.stderr)
    return samples


def report(samples: dict[str, list[Sample]]) -> str:
    lines = ["| setup | engine CPU us / request | ops/s | p99 ms |", "|---|--:|--:|--:|"]
    for setup, runs in samples.items():
        cpu = statistics.median(s.cpu_ms_per_1k or 0.0 for s in runs)
        ops = statistics.median(s.ops_per_s for s in runs)
        p99 = statistics.median(s.p99_ms for s in runs)
        lines.append(f"| {setup} | {cpu:.0f} | {ops:.0f} | {p99:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add_wrk_arguments(parser)
    parser.add_argument("--setups", default=",".join(SETUPS),
                        type=lambda text: tuple(text.split(",")))
    parser.add_argument("--durability", default="power-loss",
                        choices=("power-loss", "process-crash"))
    parser.set_defaults(duration=5)
    args = parser.parse_args(argv)
    unknown = set(args.setups) - set(SETUPS)
    if unknown or args.endpoint:
        parser.error(f"unknown setups {sorted(unknown)}" if unknown else
                     "--endpoint: this script measures an engine of its own")
    require_wrk("bench_cpu")
    with own_engine("bench-cpu", ["--durability", args.durability]) as (endpoint, pid):
        samples = measure(endpoint, pid, args)
    print(report(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
