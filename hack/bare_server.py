#!/usr/bin/env python3
"""A bare uvloop + httptools server answering every POST with ``{}``: the floor under the engine.

    hack/bare_server.py PORT [--burn N]

For comparing the engine's latency with what one Python event loop on the same machine
gives at all: point wrk's scripts (``hack/wrk/put.lua``) at it. ``--burn N`` spends a
loop of N additions of Python per request before answering (4,000 keeps one core busy for
about 200 µs here, what a PutItem costs the engine's loop). Listens on 127.0.0.1 only;
Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import httptools
import uvloop

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}"


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


class Bare(asyncio.Protocol):
    def __init__(self, work: int) -> None:
        self._work = work
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:
        burn(self._work)
        if self._transport is not None:
            self._transport.write(ANSWER)


async def serve(port: int, work: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Bare(work), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--burn", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.port, args.burn))


if __name__ == "__main__":
    main()
