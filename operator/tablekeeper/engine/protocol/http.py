"""A small HTTP/1.1 server on a bare asyncio protocol and httptools.

DynamoDB's protocol needs little of HTTP: POST / with a JSON body, keep-alive,
and pipelining in order.  A general framework costs most of the request
budget here, so this module does only that (see docs/benchmarks.md for the
numbers that decided it).  It knows nothing of DynamoDB: each request is
handed to an ``Application`` and its response written back in order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httptools

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024 + 64 * 1024  # DynamoDB's 16 MB request limit, plus framing
_MAX_QUEUED = 32  # pipelined requests buffered per connection before reading pauses

_CLOSE = "Connection: close\r\n"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    peer: str = ""


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/x-amz-json-1.0"


Application = Callable[[Request], Awaitable[Response]]


class _Flusher:
    """Writes the responses finished in one loop iteration together, after it.

    A batch of writes commits at once and its responses are finished one
    after another; written as each is finished, every write wakes the client
    again (on a virtual machine the wake-up is most of a send's cost).
    Written back to back, one wake-up serves most of them.
    """

    def __init__(self) -> None:
        self._dirty: list[_Connection] = []

    def add(self, connection: _Connection) -> None:
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self.flush)
        self._dirty.append(connection)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for connection in dirty:  # one connection's failure must not strand the others' answers
            try:
                connection.flush()
            except Exception:
                log.exception("writing a response failed")


class _Connection(asyncio.Protocol):
    def __init__(
        self, app: Application, connections: set[_Connection], flusher: _Flusher
    ) -> None:
        self._app = app
        self._connections = connections
        self._flusher = flusher
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: collections.deque[Request | Response] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self._closing = False
        self._peer = ""
        self._too_large = False
        self._rejected = False
        self.busy = False

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None
        self._out.clear()
        self._closing = True

    def data_received(self, data: bytes) -> None:
        if self._rejected or self._transport is None:
            return  # after a protocol error the rest of the stream is noise
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b"upgrade not supported")
        except httptools.HttpParserError:
            # httptools wraps exceptions raised by callbacks, so the size check
            # leaves a flag rather than relying on its exception type.
            if self._too_large:
                self._reject(413, b'{"__type":"com.amazon.coral.service#RequestEntityTooLarge",'
                                  b'"message":"Request payload size exceeds the limit"}')
            else:
                self._reject(400, b"malformed HTTP request")

    # --- httptools callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        # Repeated headers are joined as HTTP allows; SigV4 canonicalizes them so.
        self._headers[key] = f"{self._headers[key]},{text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length", "0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            self._too_large = True
            raise _TooLarge()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            self._too_large = True
            raise _TooLarge()
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._url == b"/":  # what every DynamoDB request asks for
            path, query = "/", ""
        else:
            url = httptools.parse_url(self._url)
            path = (url.path or b"/").decode("latin-1")
            query = (url.query or b"").decode("latin-1")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(
            self._parser.get_method().decode("ascii", "replace"), path, query, self._headers,
            body, self._peer,
        )
        if not self._parser.should_keep_alive():
            self._closing = True
        self._enqueue(request)

    # --- request processing -------------------------------------------------------

    def _enqueue(self, item: Request | Response) -> None:
        self._queue.append(item)
        if len(self._queue) >= _MAX_QUEUED and self._transport is not None and not self._paused:
            self._transport.pause_reading()
            self._paused = True
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._queue and self._transport is not None:
            item = self._queue.popleft()
            if isinstance(item, Response):
                self._write(item)
                self._close()
                return
            self.busy = True
            try:
                response = await self._app(item)
            except Exception:  # the application maps its own errors; this is a bug
                log.exception("unhandled error serving %s %s", item.method, item.path)
                response = Response(500, b'{"__type":"com.amazonaws.dynamodb.v20120810#'
                                         b'InternalServerError","message":"Internal server error"}')
            finally:
                self.busy = False
            self._write(response)
            if self._paused and len(self._queue) < _MAX_QUEUED // 2 and self._transport:
                self._transport.resume_reading()
                self._paused = False
        if self._closing and not self._queue:
            self._close()

    def _write(self, response: Response) -> None:
        if self._transport is None:
            return
        extra = "".join([f"{name}: {value}\r\n" for name, value in response.headers])
        head = (
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}\r\n"
            f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
            f"{extra}{_CLOSE if self._closing else ''}\r\n"
        ).encode("latin-1")
        if not self._out:
            self._flusher.add(self)
        self._out.append(head + response.body)

    def flush(self) -> None:
        """Hand the finished responses to the transport (``_Flusher``)."""
        out, self._out = self._out, []
        if not out or self._transport is None or self._transport.is_closing():
            return
        try:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        except RuntimeError:  # the client went: uvloop refuses the write before connection_lost comes
            self._close()

    def _reject(self, status: int, body: bytes) -> None:
        self._rejected = True
        self._closing = True
        self._enqueue(Response(status, body, content_type="application/x-amz-json-1.0"))

    def _close(self) -> None:
        if self._transport is not None:
            self.flush()  # the transport sends what it was given before it closes
            self._transport.close()
            self._transport = None

    def close_when_idle(self) -> None:
        self._closing = True
        if not self.busy and not self._queue:
            self._close()


class _TooLarge(Exception):
    pass


class HttpServer:
    """Serves an Application on host:port until ``close()``."""

    def __init__(self, app: Application) -> None:
        self._app = app
        self._connections: set[_Connection] = set()
        self._flusher = _Flusher()
        self._server: asyncio.base_events.Server | None = None

    def connection(self) -> asyncio.Protocol:
        """The protocol of one new connection (hack/profile_requests.py drives it without a socket)."""
        return _Connection(self._app, self._connections, self._flusher)

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.connection, host, port, reuse_address=True, backlog=1024
        )
        sockets = self._server.sockets
        return sockets[0].getsockname()[1] if sockets else port

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace`` s), close."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close_when_idle()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(c.busy for c in self._connections) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self._connections):
            connection._close()
        if self._server is not None:
            await self._server.wait_closed()
