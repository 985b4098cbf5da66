#!/usr/bin/env python3
"""The engine's per-request CPU in one process, without sockets: for profiling the Python path.

    hack/profile_requests.py [--op put|put-gsi|put-gsi-keys|get] [--requests 20000] [--connections 16]
                             [--durability process-crash] [--profile out.prof]

Builds an engine on a temporary directory, serves it with the real HTTP protocol class
(``engine.protocol.http``) over fake transports, and keeps ``--connections`` requests in
flight (each connection sends its next request when its answer is written), as wrk does.
Prints the process CPU time per request (this thread and the storage threads), and with
``--profile`` writes a cProfile of the run (``python -m pstats out.prof``). No kernel
networking is involved, so the figure is the engine's own Python and SQLite work:
compare it before and after a change to the request path.

Every put writes the same item ``{pk, sk, gk, data}``; ``put-gsi`` and ``put-gsi-keys``
add one global index on ``gk`` (projecting ALL, KEYS_ONLY), so that the difference to
``put`` is what the index costs, not a larger item.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.protocol.dispatch import DynamoDBApplication
from tablekeeper.engine.protocol.http import HttpServer
from tablekeeper.engine.storage.sqlite import Durability

TABLE = "tkprof"
FILLER = "x" * 150
GET_ITEMS = 2000  # preloaded for get


def table_request(op: str) -> dict[str, Any]:
    definitions = [{"AttributeName": "pk", "AttributeType": "S"},
                   {"AttributeName": "sk", "AttributeType": "S"}]
    request: dict[str, Any] = {
        "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": definitions,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
    }
    if op.startswith("put-gsi"):
        definitions.append({"AttributeName": "gk", "AttributeType": "S"})
        request["GlobalSecondaryIndexes"] = [{
            "IndexName": "byGk", "KeySchema": [{"AttributeName": "gk", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY" if op == "put-gsi-keys" else "ALL"},
        }]
    return request


def http_request(target: str, body: dict[str, Any]) -> bytes:
    payload = orjson.dumps(body)
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"X-Amz-Target: DynamoDB_20120810.{target}\r\nX-Amz-Date: 20260101T000000Z\r\n"
        "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
        + "0" * 64 + f"\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def item_request(op: str, n: int) -> bytes:
    if op == "get":
        key = {"pk": {"S": f"pk{n % GET_ITEMS:08d}"}, "sk": {"S": "sk0000"}}
        return http_request("GetItem", {"TableName": TABLE, "Key": key})
    item = {"pk": {"S": f"pk{n:08d}"}, "sk": {"S": "sk0000"},
            "gk": {"S": f"g{(n * 7919) % 10000:04d}"}, "data": {"S": FILLER}}
    return http_request("PutItem", {"TableName": TABLE, "Item": item})


class FakeTransport:
    """Enough of asyncio.Transport for http._Connection; answers trigger the next request."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def write(self, data: bytes) -> None:
        if not data.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"profile_requests: error answer: {data[:300]!r}")
        asyncio.get_running_loop().call_soon(self._client.answered)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


class Client:
    def __init__(self, bench: Bench, protocol: asyncio.Protocol) -> None:
        self._bench = bench
        self._protocol = protocol
        protocol.connection_made(FakeTransport(self))  # type: ignore[arg-type]

    def send(self) -> None:
        request = self._bench.next_request()
        if request is not None:
            self._protocol.data_received(request)

    def answered(self) -> None:
        self._bench.done += 1
        self.send()


class Bench:
    def __init__(self, requests: list[bytes]) -> None:
        self._requests = requests
        self._next = 0
        self.done = 0
        self.finished = asyncio.get_running_loop().create_future()

    def next_request(self) -> bytes | None:
        if self._next == len(self._requests):
            if self.done == len(self._requests) and not self.finished.done():
                self.finished.set_result(None)
            return None
        self._next += 1
        return self._requests[self._next - 1]


async def run(args: argparse.Namespace, data: Path) -> None:
    engine = Engine(EngineConfig(data, durability=Durability(args.durability)))
    app = DynamoDBApplication(engine)
    server = HttpServer(app)
    factory = server.connection
    setup = Bench([http_request("CreateTable", table_request(args.op))])
    Client(setup, factory()).send()
    await setup.finished
    if args.op == "get":
        preload = Bench([item_request("put", n) for n in range(GET_ITEMS)])
        for _ in range(args.connections):
            Client(preload, factory()).send()
        await preload.finished
    bench = Bench([item_request(args.op, n) for n in range(args.requests)])
    profiler = cProfile.Profile() if args.profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    for _ in range(args.connections):
        Client(bench, factory()).send()
    await bench.finished
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    print(f"{args.op}: {cpu / args.requests * 1e6:.1f} us CPU/request, "
          f"{args.requests / wall:.0f} requests/s in one process")
    engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--op", choices=("put", "put-gsi", "put-gsi-keys", "get"), default="put")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--durability", choices=("power-loss", "process-crash"),
                        default="process-crash")
    parser.add_argument("--profile", help="write a cProfile of the measured run here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tk-profile-") as data:
        uvloop.run(run(args, Path(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
