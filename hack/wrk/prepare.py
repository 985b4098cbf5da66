#!/usr/bin/env python3
"""Create and preload the table the wrk scripts use, or delete it.

    hack/wrk/prepare.py --endpoint http://127.0.0.1:8000 --items 10000 [--table tkbench]
    hack/wrk/prepare.py --endpoint http://127.0.0.1:8000 --delete

The table and its key layout are tablekeeper.bench's: an existing table of the
same name is reused, and the preload rewrites the same items.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tablekeeper import bench
except ImportError:  # not installed: use the checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "operator"))
    from tablekeeper import bench


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--table", default="tkbench")
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--delete", action="store_true", help="delete the table instead")
    return parser


async def prepare(args: argparse.Namespace, endpoint: bench.Endpoint) -> None:
    client = bench.HttpClient(endpoint, args.region)
    try:
        if args.delete:
            await bench.delete_table(client, args.table)
            return
        await bench.create_table(client, args.table, reuse=True)
        await bench.wait_active(client, args.table)
    finally:
        client.close()
    await bench.preload(endpoint, args.region, args.table, args.items, args.item_bytes,
                        args.connections)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        endpoint = bench.parse_endpoint(args.endpoint)
        with bench.event_loop_runner() as runner:
            runner.run(prepare(args, endpoint))
    except (bench.BenchError, OSError, ValueError) as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
