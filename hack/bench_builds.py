#!/usr/bin/env python3
"""PutItem against several builds or settings of the engine, alternated, a fresh engine per run.

    hack/bench_builds.py [--rounds 3] [--duration 20] LABEL=OPERATOR_DIR[,VAR=VALUE...] ...

    hack/bench_builds.py main=operator before=/tmp/wt-before/operator \
        'every300=/tmp/wt-knobs/operator,TK_EVERY=300'

Each setup is an engine package (the ``operator`` folder of a checkout or worktree, put first
on PYTHONPATH) and, optionally, environment variables for it: a worktree may read a knob from
the environment for the length of an experiment. Each round runs every setup once, in rotated
order (``benchlib.rotated``), each on a fresh engine (``--auth none``) and data directory:
``hack/wrk/prepare.py`` preloads 10,000 items, a 3 s wrk warm-up follows, then the measured
``wrk -t2 -c16 -s hack/wrk/put.lua`` run. The report gives each run's ops/s and p99, the
engine's CPU per 1000 puts and the size of its WAL and database files at the end of the run,
then each setup's medians. Machines drift within minutes; only setups alternated in one
sitting compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import add_wrk_arguments, own_engine, require_wrk, rotated, wrk_put

HACK = Path(__file__).resolve().parent
TABLE = "tkbuilds"


@dataclass(frozen=True)
class Setup:
    label: str
    package: Path
    env: dict[str, str]


def parse_setup(text: str) -> Setup:
    label, sep, rest = text.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"expected LABEL=OPERATOR_DIR[,VAR=VALUE...], not {text!r}")
    package, *assignments = rest.split(",")
    env = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"expected VAR=VALUE, not {assignment!r} in {text!r}")
        env[name] = value
    if not (Path(package) / "tablekeeper").is_dir():
        raise argparse.ArgumentTypeError(f"{package}: no tablekeeper package there")
    return Setup(label, Path(package).resolve(), env)


def environment(setup: Setup) -> dict[str, str]:
    """Ours, with the setup's package first on PYTHONPATH and its variables set."""
    path = os.pathsep.join(filter(None, [str(setup.package), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, **setup.env}


def file_sizes(data: Path) -> tuple[float, float]:
    """MB in the tables' WAL files and in their database files."""
    tables = data / "tables"
    wal = sum(path.stat().st_size for path in tables.glob("*.db-wal"))
    db = sum(path.stat().st_size for path in tables.glob("*.db"))
    return wal / 1e6, db / 1e6


@dataclass
class Run:
    ops_per_s: float
    p99_ms: float
    cpu_ms_per_1k: float
    wal_mb: float
    db_mb: float


def one_run(setup: Setup, args: argparse.Namespace) -> Run:
    data = Path(tempfile.mkdtemp(prefix=f"tk-builds-{setup.label}-"))
    try:
        with own_engine(f"builds-{setup.label}", env=environment(setup), data=data) as (endpoint, pid):
            subprocess.run([sys.executable, str(HACK / "wrk" / "prepare.py"), "--endpoint", endpoint,
                            "--items", "10000", "--table", TABLE], check=True,
                           stdout=subprocess.DEVNULL)
            script = HACK / "wrk" / "put.lua"
            script_args = [TABLE, "10000", str(args.item_bytes)]
            warm = argparse.Namespace(**{**vars(args), "duration": 3, "settle": 0})
            wrk_put(setup.label, endpoint, script, script_args, warm, pid)
            sample = wrk_put(setup.label, endpoint, script, script_args, args, pid)
            wal, db = file_sizes(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return Run(sample.ops_per_s, sample.p99_ms, sample.cpu_ms_per_1k or 0.0, wal, db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_wrk_arguments(parser)
    parser.set_defaults(duration=20)
    parser.add_argument("setups", nargs="+", type=parse_setup)
    args = parser.parse_args(argv)
    if args.endpoint:
        parser.error("--endpoint: every run starts its own engine")
    require_wrk("bench_builds")
    labels = [setup.label for setup in args.setups]
    if len(set(labels)) != len(labels):
        parser.error("setup labels must differ")
    by_label = {setup.label: setup for setup in args.setups}
    runs: dict[str, list[Run]] = {label: [] for label in labels}
    for number in range(1, args.rounds + 1):
        for label in rotated(labels, number):
            run = one_run(by_label[label], args)
            runs[label].append(run)
            print(f"round {number} {label}: {run.ops_per_s:.0f} ops/s, p99 {run.p99_ms:.1f} ms, "
                  f"{run.cpu_ms_per_1k:.0f} ms CPU / 1000 puts, WAL {run.wal_mb:.1f} MB, "
                  f"database {run.db_mb:.1f} MB", flush=True)
    print(f"\nPutItem, wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
          f"{args.rounds} rounds (medians)\n")
    print("| setup | PutItem ops/s | p99 ms | engine CPU ms / 1000 puts | WAL MB | database MB |")
    print("|---|--:|--:|--:|--:|--:|")
    for label in labels:
        mine = runs[label]
        print(f"| {label} | {statistics.median(r.ops_per_s for r in mine):,.0f} "
              f"| {statistics.median(r.p99_ms for r in mine):.1f} "
              f"| {statistics.median(r.cpu_ms_per_1k for r in mine):.0f} "
              f"| {statistics.median(r.wal_mb for r in mine):.1f} "
              f"| {statistics.median(r.db_mb for r in mine):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
