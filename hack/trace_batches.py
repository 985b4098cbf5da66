#!/usr/bin/env python3
"""Where a PutItem's time goes inside the engine: the group commit's cycle, traced under wrk.

    hack/trace_batches.py [--duration 6] [--connections 16] [--threads 2] [--setup "no index"]
                          [--item-bytes 200] [-- ENGINE OPTIONS, e.g. --durability process-crash]

Runs an engine (``--auth none``, a fresh temporary data directory) in a child process
whose storage and HTTP layer are wrapped with timers, drives it with wrk's PutItem of
fresh keys (``hack/bench_gsi.py``'s tables and script; 2 s of warm-up, then ``--duration``),
then prints wrk's line and, over both runs:

  batch sizes      writes per group commit
  exec             the loop executing one batch's write functions
  to committer     from the batch's hand-off to its COMMIT starting on the committer thread
  commit           the COMMIT (WAL writes and, at power-loss durability, the fsync)
  back             from the COMMIT's end to the loop resolving the batch
  cycle            from one batch's execution to the next one's
  in engine        a request from its last byte parsed to its answer handed to the socket
  loop lag         how late a 1 ms timer on the loop fires

The wrappers cost a few microseconds per request, so read throughput from
``hack/bench_cpu.py``; this is for the shape of the cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def serve(out: Path, engine_argv: list[str]) -> int:
    """The engine, wrapped; writes what it saw to ``out`` when stopped."""
    from tablekeeper.cli import main
    from tablekeeper.engine.protocol import http
    from tablekeeper.engine.storage import sqlite

    seen: dict[str, list[Any]] = {"pump": [], "commit": [], "done": [], "lag": [], "latency": []}
    clock = time.perf_counter
    pump, committed, commit = sqlite.SqliteStorage._pump, sqlite.SqliteStorage._committed, \
        sqlite.SqliteStorage._commit
    finished, flush = http._Connection.on_message_complete, http._Connection.flush

    def watch_lag() -> None:
        loop = asyncio.get_running_loop()
        due = clock() + 0.001

        def tick() -> None:
            nonlocal due
            now = clock()
            seen["lag"].append(now - due)
            due = now + 0.001
            loop.call_later(0.001, tick)

        loop.call_later(0.001, tick)

    def traced_pump(self: Any, loop: Any) -> None:
        if not seen["pump"] and not seen["lag"]:
            watch_lag()
        size, start = len(self._queue), clock()
        pump(self, loop)
        if size:
            seen["pump"].append((start, clock(), size))

    def traced_commit(self: Any, *args: Any) -> Any:
        start = clock()
        try:
            return commit(self, *args)
        finally:
            seen["commit"].append((start, clock()))

    def traced_committed(self: Any, *args: Any) -> None:
        seen["done"].append(clock())
        committed(self, *args)

    def traced_finished(self: Any) -> None:
        self.__dict__.setdefault("_traced", []).append(clock())
        finished(self)

    def traced_flush(self: Any) -> None:
        answers = len(self._out)
        flush(self)
        now, started = clock(), self.__dict__.get("_traced", [])
        for _ in range(min(answers, len(started))):
            seen["latency"].append(now - started.pop(0))

    sqlite.SqliteStorage._pump = traced_pump  # type: ignore[method-assign]
    sqlite.SqliteStorage._commit = traced_commit  # type: ignore[method-assign]
    sqlite.SqliteStorage._committed = traced_committed  # type: ignore[method-assign]
    http._Connection.on_message_complete = traced_finished  # type: ignore[method-assign]
    http._Connection.flush = traced_flush  # type: ignore[method-assign]
    # _Connection has no __slots__, so the per-connection start times can live on it.
    try:
        return main(["engine", *engine_argv])
    finally:
        out.write_bytes(pickle.dumps(seen))


def _after(times: list[float], since: float) -> float | None:
    i = bisect.bisect_left(times, since)
    return times[i] if i < len(times) else None


def report(seen: dict[str, list[Any]]) -> str:
    def ms(values: list[float]) -> str:
        if not values:
            return "-"
        ordered = sorted(values)
        at = lambda q: ordered[int(q * (len(ordered) - 1))] * 1000  # noqa: E731
        return f"p50 {at(0.5):.2f}  p90 {at(0.9):.2f}  p99 {at(0.99):.2f}  max {ordered[-1] * 1000:.1f} ms"

    pumps, commits, done = seen["pump"], seen["commit"], seen["done"]
    commit_starts = [start for start, _ in commits]
    sizes = sorted(size for *_, size in pumps)
    handoff = [s - end for _, end, _ in pumps if (s := _after(commit_starts, end)) is not None]
    back = [d - end for _, end in commits if (d := _after(done, end)) is not None]
    starts = [start for start, *_ in pumps]
    lines = [
        f"batch sizes   {len(sizes)} batches; p10 {sizes[len(sizes) // 10]}  p50 {sizes[len(sizes) // 2]}"
        f"  p90 {sizes[len(sizes) * 9 // 10]}  max {sizes[-1]}" if sizes else "batch sizes   -",
        f"exec          {ms([end - start for start, end, _ in pumps])}",
        f"to committer  {ms(handoff)}",
        f"commit        {ms([end - start for start, end in commits])}",
        f"back          {ms(back)}",
        f"cycle         {ms([b - a for a, b in itertools.pairwise(starts)])}",
        f"in engine     {ms(seen['latency'])}",
        f"loop lag      {ms(seen['lag'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve(Path(argv[1]), argv[2:])
    engine_argv: list[str] = []
    if "--" in argv:
        engine_argv = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--setup", default="no index", choices=["no index", "GSI KEYS_ONLY", "GSI ALL"])
    args = parser.parse_args(argv)

    from bench_gsi import PUT_LUA, create_tables
    from benchlib import require_wrk

    require_wrk("trace_batches")
    with tempfile.TemporaryDirectory(prefix="tk-trace-") as scratch:
        out, script = Path(scratch) / "seen.pickle", Path(scratch) / "put.lua"
        script.write_text(PUT_LUA)
        command = [sys.executable, __file__, "--serve", str(out), "--data", str(Path(scratch) / "data"),
                   "--port", "0", "--auth", "none", *engine_argv]
        engine = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert engine.stdout is not None
            endpoint = ""
            while not endpoint:
                line = engine.stdout.readline()
                if not line:
                    raise SystemExit("trace_batches: the engine did not start")
                if "listening on " in line:
                    endpoint = line.split("listening on ", 1)[1].split()[0]
            table = create_tables(endpoint)[args.setup]
            wrk = ["wrk", f"-t{args.threads}", f"-c{args.connections}", "-s", str(script), endpoint,
                   "--", table, str(args.item_bytes)]
            subprocess.run([*wrk[:3], "-d2s", *wrk[3:]], capture_output=True, check=True)  # warm-up
            result = subprocess.run([*wrk[:3], f"-d{args.duration}s", "--latency", *wrk[3:]],
                                    capture_output=True, text=True, check=True).stdout
        finally:
            engine.send_signal(signal.SIGINT)
            engine.wait(timeout=30)
        print(next((line for line in result.splitlines() if line.startswith("TKWRK")), result))
        print(report(pickle.loads(out.read_bytes())))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
