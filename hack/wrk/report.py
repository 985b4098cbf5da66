#!/usr/bin/env python3
"""Render the results of hack/bench-all.sh as Markdown tables, one per load generator.

    hack/wrk/report.py RESULTS_DIR TARGET...

RESULTS_DIR holds, per target: ``TARGET.bench.json`` (``tablekeeper bench
--output json``), ``TARGET.wrk.OP.txt`` (wrk's output with the ``TKWRK`` line
printed by dynamodb.lua's done()), ``TARGET.skipped`` (why it did not run) or
``TARGET.TOOL.failed`` (why that tool has no result).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OPS = (("put", "PutItem"), ("get", "GetItem"), ("query", "Query"), ("mix", "50/50 mix"))
LABELS = {
    "tablekeeper": "tablekeeper",
    "dynalite": "dynalite (LevelDB on disk, no fsync)",
    "ddblocal": "DynamoDB Local (SQLite on disk)",
    "ddblocal-mem": "DynamoDB Local (-inMemory)",
    "moto": "moto server (in memory)",
}

Row = dict[str, dict[str, Any]]


def read_bench(path: Path) -> Row:
    document = json.loads(path.read_text())
    return {result["op"]: result for result in document["results"]}


def read_wrk(directory: Path, target: str) -> Row:
    row: Row = {}
    for op, _ in OPS:
        path = directory / f"{target}.wrk.{op}.txt"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.startswith("TKWRK "):
                row[op] = json.loads(line[len("TKWRK "):])
    return row


def failure(directory: Path, target: str, tool: str) -> str:
    """Why a tool has no result for a target: the last line of its ``.failed`` file."""
    path = directory / f"{target}.{tool}.failed"
    lines = path.read_text().strip().splitlines() if path.exists() else []
    return f"failed: {lines[-1]}" if lines else "no result"


def cells(result: dict[str, Any] | None) -> list[str]:
    if result is None:
        return ["-", "-"]
    return [f"{result['ops_per_s']:,.0f}", f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}"]


def table(title: str, rows: list[tuple[str, Row | str]]) -> str:
    header = ["server"]
    for _, name in OPS:
        header += [f"{name} ops/s", "p50 / p99 ms"]
    header.append("errors")
    lines = [f"#### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "--:" for i in range(len(header))) + "|"]
    for target, row in rows:
        label = LABELS.get(target, target)
        if isinstance(row, str):
            lines.append(f"| {label} | " + " | ".join([f"({row})"] + [""] * (len(header) - 2)) + " |")
            continue
        values = [label]
        for op, _ in OPS:
            values += cells(row.get(op))
        values.append(str(sum(int(r.get("errors", 0)) for r in row.values())))
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def collect(directory: Path, targets: list[str]) -> tuple[list[tuple[str, Row | str]], ...]:
    python_rows: list[tuple[str, Row | str]] = []
    wrk_rows: list[tuple[str, Row | str]] = []
    for target in targets:
        skipped = directory / f"{target}.skipped"
        if skipped.exists():
            reason = skipped.read_text().strip() or "skipped"
            python_rows.append((target, reason))
            wrk_rows.append((target, reason))
            continue
        bench = directory / f"{target}.bench.json"
        python_rows.append(
            (target, read_bench(bench) if bench.exists() else failure(directory, target, "bench"))
        )
        wrk_rows.append((target, read_wrk(directory, target) or failure(directory, target, "wrk")))
    return python_rows, wrk_rows


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory, targets = Path(argv[0]), argv[1:]
    python_rows, wrk_rows = collect(directory, targets)
    print(table("Python client (`tablekeeper bench`)", python_rows))
    print()
    print(table("wrk", wrk_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
