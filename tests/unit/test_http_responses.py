"""How the HTTP layer hands finished responses to its connections' transports."""

from __future__ import annotations

import asyncio
from typing import Any

from tablekeeper.engine.protocol.http import HttpServer, Request, Response


class RecordingTransport:
    def __init__(self, gone: bool = False) -> None:
        self.writes: list[bytes] = []
        self.closed_after: int | None = None
        self.gone = gone  # the client closed: uvloop refuses writes until connection_lost comes

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def write(self, data: bytes) -> None:
        assert self.closed_after is None, "written after close"
        if self.gone:
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed_after is not None

    def close(self) -> None:
        self.closed_after = len(self.writes)

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


def _post(body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), extra, body))


async def _echo(request: Request) -> Response:
    return Response(200, request.body)


async def _serve(server: HttpServer, *streams: bytes, gone: int | None = None) -> list[RecordingTransport]:
    transports = []
    for number, stream in enumerate(streams):
        transport = RecordingTransport(gone=number == gone)
        protocol = server.connection()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(stream)
        transports.append(transport)
    for _ in range(10):  # a few loop iterations: the handlers, then the flush
        await asyncio.sleep(0)
    return transports


def test_responses_finished_together_reach_each_connection_in_one_write() -> None:
    async def scenario() -> list[RecordingTransport]:
        server = HttpServer(_echo)
        return await _serve(server, _post(b"a1") + _post(b"a2"), _post(b"b1"))

    first, second = asyncio.run(scenario())
    assert len(first.writes) == 1 and len(second.writes) == 1
    answers = first.writes[0].split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert [answer.rsplit(b"\r\n\r\n", 1)[1] for answer in answers] == [b"a1", b"a2"]
    assert second.writes[0].endswith(b"\r\n\r\nb1")


def test_the_last_response_is_written_before_the_connection_closes() -> None:
    async def scenario() -> list[RecordingTransport]:
        server = HttpServer(_echo)
        return await _serve(server, _post(b"bye", close=True), b"GARBAGE / NOTHTTP\r\n\r\n")

    closing, malformed = asyncio.run(scenario())
    assert closing.closed_after == 1 and closing.writes[0].endswith(b"\r\n\r\nbye")
    assert b"Connection: close" in closing.writes[0]
    assert malformed.closed_after == 1 and malformed.writes[0].startswith(b"HTTP/1.1 400")


def test_a_client_gone_before_its_answer_does_not_hold_up_the_other_answers() -> None:
    async def scenario() -> list[RecordingTransport]:
        server = HttpServer(_echo)
        return await _serve(server, _post(b"lost"), _post(b"b1"), gone=0)

    gone, other = asyncio.run(scenario())
    assert gone.writes == [] and gone.closed_after == 0
    assert len(other.writes) == 1 and other.writes[0].endswith(b"\r\n\r\nb1")
