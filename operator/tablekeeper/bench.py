"""`tablekeeper bench`: load-test any DynamoDB-compatible endpoint.

The client is lean on purpose, so that it measures the server and not itself:
raw HTTP/1.1 over keep-alive connections (asyncio, uvloop where installed,
httptools' C parser), hand-built DynamoDB JSON 1.0 bodies and a cached SigV4
signer (a real signature with fake credentials, ~5 us a request). The
connections are shared out over several processes, whose latency histograms
are merged at the end.

One run:

1. create a table of its own (``pk`` S hash key, ``sk`` S range key,
   PAY_PER_REQUEST) and wait until it is ACTIVE;
2. preload ``--preload`` items for ``get``/``query`` (BatchWriteItem);
3. per op, run the connections for a warm-up and then ``--duration`` seconds,
   recording the latency of every successful request;
4. print ops/s, p50/p99/max latency and the error count per op;
5. delete the table, also when something failed.

Key layout (shared with ``hack/wrk/*.lua``): preloaded item ``i`` has
``pk = "pk%08d" % (i // 10)`` and ``sk = "sk%04d" % (i % 10)``, so a Query of
one partition returns up to ten items. Writes go to fresh partitions, one per
request.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.pool import Pool
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

OPS = ("put", "get", "query", "mix")
ITEMS_PER_PARTITION = 10
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
ACCESS_KEY = "AKIDTKBENCH"  # DynamoDB Local accepts only letters and digits here
SECRET_KEY = "tkbench-secret"
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_EMPTY_QUERY = re.compile(rb'"Count"\s*:\s*0\b')


class BenchError(Exception):
    """A run cannot go on: the endpoint refused a control-plane call or is unreachable."""


# --------------------------------------------------------------------------- histogram


_SUB_BITS = 7
_SUB = 1 << _SUB_BITS  # 128 sub-buckets per power of two: < 0.8 % relative error


def bucket_of(value_us: int) -> int:
    """Index of the log-linear bucket that holds `value_us` (exact below 256 us)."""
    if value_us < 2 * _SUB:
        return max(value_us, 0)
    shift = value_us.bit_length() - (_SUB_BITS + 1)
    return 2 * _SUB + (shift - 1) * _SUB + ((value_us >> shift) - _SUB)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest value (us) that fall into bucket `index`."""
    if index < 2 * _SUB:
        return index, index
    shift = (index - 2 * _SUB) // _SUB + 1
    low = ((index - 2 * _SUB) % _SUB + _SUB) << shift
    return low, low + (1 << shift) - 1


@dataclass
class LatencyHistogram:
    """Latencies in microseconds, in log-linear buckets; mergeable across processes."""

    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0
    sum_us: int = 0
    max_us: int = 0

    def record(self, value_us: int) -> None:
        index = bucket_of(value_us)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.sum_us += value_us
        if value_us > self.max_us:
            self.max_us = value_us

    def merge(self, other: LatencyHistogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.total += other.total
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def percentile(self, pct: float) -> int:
        """The value (us) at or below which `pct` percent of the recordings lie; 0 if none."""
        if self.total == 0:
            return 0
        rank = max(1, math.ceil(self.total * pct / 100.0))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bucket_bounds(index)
                return min((low + high) // 2, self.max_us)
        return self.max_us

    def mean_us(self) -> float:
        return self.sum_us / self.total if self.total else 0.0


# --------------------------------------------------------------------------- endpoint, signing


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    host_header: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def parse_endpoint(url: str) -> Endpoint:
    """Split ``http(s)://host[:port][/]`` into what a connection and a signature need."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"parse endpoint {url!r}: want http://HOST[:PORT] or https://...")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"parse endpoint {url!r}: a path or query is not supported")
    default_port = 80 if parts.scheme == "http" else 443
    port = parts.port or default_port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    return Endpoint(parts.scheme, host, port, host_header)


class SigV4Signer:
    """AWS Signature Version 4 for DynamoDB JSON requests (POST /), as botocore signs them.

    The signing key is derived once a day and the timestamp once a second, so a
    signature costs two SHA-256 and one HMAC.
    """

    SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target"

    def __init__(
        self,
        host_header: str,
        region: str,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host_header
        self._region = region
        self._access_key = access_key
        self._secret = secret_key
        self._clock = clock
        self._second = -1
        self._amz_date = ""
        self._datestamp = ""
        self._scope = ""
        self._key = b""

    def _refresh(self) -> None:
        second = int(self._clock())
        if second == self._second:
            return
        self._second = second
        self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        datestamp = self._amz_date[:8]
        if datestamp != self._datestamp:
            self._datestamp = datestamp
            self._scope = f"{datestamp}/{self._region}/dynamodb/aws4_request"
            key = ("AWS4" + self._secret).encode()
            for part in (datestamp, self._region, "dynamodb", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key = key

    def sign(self, target: str, body: bytes) -> tuple[str, str]:
        """Return ``(x_amz_date, authorization)`` for a POST / with this target and body."""
        self._refresh()
        canonical = (
            f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{self._host}\n"
            f"x-amz-date:{self._amz_date}\nx-amz-target:{target}\n\n"
            f"{self.SIGNED_HEADERS}\n{hashlib.sha256(body).hexdigest()}"
        )
        to_sign = (
            f"AWS4-HMAC-SHA256\n{self._amz_date}\n{self._scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{self._scope}, "
            f"SignedHeaders={self.SIGNED_HEADERS}, Signature={signature}"
        )
        return self._amz_date, authorization


def encode_request(endpoint: Endpoint, signer: SigV4Signer, operation: str, body: bytes) -> bytes:
    """One complete HTTP/1.1 request for a DynamoDB operation such as ``PutItem``."""
    target = TARGET_PREFIX + operation
    amz_date, authorization = signer.sign(target, body)
    head = (
        f"POST / HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nX-Amz-Target: {target}\r\n"
        f"X-Amz-Date: {amz_date}\r\nAuthorization: {authorization}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --------------------------------------------------------------------------- workload


def preload_key(index: int) -> tuple[str, str]:
    """(pk, sk) of preloaded item `index`."""
    return f"pk{index // ITEMS_PER_PARTITION:08d}", f"sk{index % ITEMS_PER_PARTITION:04d}"


def filler_length(item_bytes: int, pk: str, sk: str) -> int:
    """Length of the ``data`` string that makes an item about `item_bytes` in DynamoDB's sizing."""
    return max(1, item_bytes - len("pk") - len(pk) - len("sk") - len(sk) - len("data"))


def item_json(pk: str, sk: str, filler: str) -> str:
    return f'{{"pk":{{"S":"{pk}"}},"sk":{{"S":"{sk}"}},"data":{{"S":"{filler}"}}}}'


def put_item_body(table: str, pk: str, sk: str, filler: str) -> bytes:
    return f'{{"TableName":"{table}","Item":{item_json(pk, sk, filler)}}}'.encode()


def get_item_body(table: str, pk: str, sk: str) -> bytes:
    return f'{{"TableName":"{table}","Key":{{"pk":{{"S":"{pk}"}},"sk":{{"S":"{sk}"}}}}}}'.encode()


def query_body(table: str, pk: str) -> bytes:
    return (
        f'{{"TableName":"{table}","KeyConditionExpression":"pk = :p",'
        f'"ExpressionAttributeValues":{{":p":{{"S":"{pk}"}}}}}}'
    ).encode()


@dataclass(frozen=True)
class Workload:
    """What one op sends: a pure function of (connection, counter, random draw)."""

    op: str
    table: str
    item_bytes: int
    preloaded: int
    prefix: str  # distinct per process and run, so that written keys never repeat

    def next_request(self, rng: random.Random, conn: int, counter: int) -> tuple[str, bytes]:
        """The (operation, body) of the next request on connection `conn`."""
        op = self.op
        if op == "mix":
            op = "put" if rng.random() < 0.5 else "get"
        if op == "put":
            pk = f"{self.prefix}-{conn}-{counter}"
            filler = "x" * filler_length(self.item_bytes, pk, "sk0000")
            return "PutItem", put_item_body(self.table, pk, "sk0000", filler)
        if op == "get":
            pk, sk = preload_key(rng.randrange(self.preloaded))
            return "GetItem", get_item_body(self.table, pk, sk)
        partitions = max(1, math.ceil(self.preloaded / ITEMS_PER_PARTITION))
        pk, _ = preload_key(rng.randrange(partitions) * ITEMS_PER_PARTITION)
        return "Query", query_body(self.table, pk)


def is_miss(operation: str, body: bytes) -> bool:
    """True when a read found nothing: the preload did not land where it should have."""
    if operation == "GetItem":
        return b'"Item"' not in body
    if operation == "Query":
        return _EMPTY_QUERY.search(body) is not None
    return False


def error_message(body: bytes) -> str:
    """The ``message`` (or ``Message``) of a DynamoDB error body, cut to 200 characters."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    if not isinstance(decoded, dict):
        return ""
    return str(decoded.get("message") or decoded.get("Message") or "")[:200]


def error_type(body: bytes) -> str:
    """The short ``__type`` of a DynamoDB error body (after ``#``), or a placeholder."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return "unparseable error body"
    kind = str(decoded.get("__type", "no __type")) if isinstance(decoded, dict) else "?"
    return kind.rsplit("#", 1)[-1]


# --------------------------------------------------------------------------- HTTP connection


class _Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body = bytearray()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"parse response: {exc}"))

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        body = bytes(self._body)
        self._body.clear()
        if not self._parser.should_keep_alive():
            self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection lost: {exc or 'closed by server'}"))

    def _fail(self, exc: Exception) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    async def exchange(self, request: bytes, timeout: float) -> tuple[int, bytes]:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, self._fail, TimeoutError("no response in time"))
        self._transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


class HttpClient:
    """Sends DynamoDB requests over one keep-alive connection, reconnecting when it drops."""

    def __init__(self, endpoint: Endpoint, region: str, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.signer = SigV4Signer(endpoint.host_header, region)
        self._timeout = timeout
        self._conn: _Protocol | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.endpoint.scheme == "https" else None
        _, protocol = await loop.create_connection(
            _Protocol, self.endpoint.host, self.endpoint.port, ssl=context
        )
        return protocol

    async def send(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """Send one request; return (HTTP status, body). Raises OSError/TimeoutError."""
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        request = encode_request(self.endpoint, self.signer, operation, body)
        try:
            return await self._conn.exchange(request, self._timeout)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A control-plane call: JSON in, JSON out; a DynamoDB error raises `DynamoDBCallError`."""
        status, body = await self.send(operation, json.dumps(payload).encode())
        if status != 200:
            raise DynamoDBCallError(operation, status, body)
        decoded = json.loads(body) if body else {}
        return decoded if isinstance(decoded, dict) else {}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class DynamoDBCallError(BenchError):
    def __init__(self, operation: str, status: int, body: bytes) -> None:
        self.operation = operation
        self.status = status
        self.type = error_type(body)
        message = error_message(body)
        super().__init__(f"{operation}: HTTP {status} {self.type}" + (f": {message}" if message else ""))


def event_loop_runner() -> asyncio.Runner:
    """An asyncio runner on uvloop where it is installed (it is a dependency on Linux)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


# --------------------------------------------------------------------------- control plane


async def create_table(client: HttpClient, table: str, reuse: bool = False) -> None:
    """Create the bench table; an existing one is an error unless `reuse`."""
    try:
        await client.call(
            "CreateTable",
            {
                "TableName": table,
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
            },
        )
    except DynamoDBCallError as exc:
        if exc.type != "ResourceInUseException":
            raise BenchError(f"create table {table}: {exc}") from exc
        if not reuse:
            message = f"create table {table}: it already exists; pick another --table"
            raise BenchError(message) from exc


async def wait_active(client: HttpClient, table: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        described = await client.call("DescribeTable", {"TableName": table})
        if described.get("Table", {}).get("TableStatus") == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise BenchError(f"wait for table {table}: not ACTIVE after {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def delete_table(client: HttpClient, table: str, timeout: float = 30.0) -> None:
    """Delete the table and wait until it is gone; a missing table is fine."""
    deadline = time.monotonic() + timeout
    try:
        await client.call("DeleteTable", {"TableName": table})
        while time.monotonic() < deadline:
            await client.call("DescribeTable", {"TableName": table})
            await asyncio.sleep(0.1)
    except DynamoDBCallError as exc:
        if exc.type != "ResourceNotFoundException":
            raise BenchError(f"delete table {table}: {exc}") from exc


def preload_items(indexes: Iterable[int], item_bytes: int) -> list[dict[str, Any]]:
    items = []
    for index in indexes:
        pk, sk = preload_key(index)
        items.append(json.loads(item_json(pk, sk, "x" * filler_length(item_bytes, pk, sk))))
    return items


async def _write_batch(client: HttpClient, table: str, items: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items]}
    for attempt in range(50):
        answer = await client.call("BatchWriteItem", {"RequestItems": pending})
        pending = answer.get("UnprocessedItems") or {}
        if not pending:
            return
        await asyncio.sleep(min(0.01 * 2**attempt, 1.0))
    raise BenchError(f"preload {table}: items stayed unprocessed after 50 tries")


async def _write_batches(client: HttpClient, table: str, batches: list[list[int]],
                         item_bytes: int) -> None:
    """Write batches until none is left; PutItem one by one where BatchWriteItem is unknown."""
    batch_write = True
    while batches:
        items = preload_items(batches.pop(), item_bytes)
        if batch_write:
            try:
                await _write_batch(client, table, items)
                continue
            except DynamoDBCallError as exc:
                if exc.type != "UnknownOperationException":
                    raise
                batch_write = False
        for item in items:
            await client.call("PutItem", {"TableName": table, "Item": item})


async def preload(endpoint: Endpoint, region: str, table: str, items: int, item_bytes: int,
                  connections: int) -> None:
    """Write items 0..items-1 of the key layout with BatchWriteItem over `connections`."""
    indexes = list(range(items))
    batches = [indexes[start:start + 25] for start in range(0, items, 25)]
    clients = [HttpClient(endpoint, region) for _ in range(max(1, connections))]
    try:
        await asyncio.gather(*(_write_batches(c, table, batches, item_bytes) for c in clients))
    except DynamoDBCallError as exc:
        raise BenchError(f"preload {table}: {exc}") from exc
    finally:
        for client in clients:
            client.close()


# --------------------------------------------------------------------------- load workers


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one load process needs; picklable."""

    endpoint: Endpoint
    region: str
    workload: Workload
    connections: int
    start_at: float  # wall clock (time.time) when every process begins, warm-up included
    warmup: float
    duration: float
    seed: int


@dataclass
class WorkerResult:
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: int = 0
    misses: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    cpu_pct: float = 0.0  # this process's CPU time over its wall time, in percent


async def _drive(spec: WorkerSpec, conn: int, measure_from: float, until: float,
                 result: WorkerResult) -> float:
    """Send requests back to back on one connection; return when the last one completed."""
    client = HttpClient(spec.endpoint, spec.region)
    rng = random.Random(spec.seed * 1_000_003 + conn)
    clock = time.perf_counter
    counter = 0
    last = clock()
    try:
        while (started := clock()) < until:
            operation, body = spec.workload.next_request(rng, conn, counter)
            counter += 1
            try:
                status, answer = await client.send(operation, body)
            except (OSError, TimeoutError) as exc:
                last = clock()
                if started >= measure_from:
                    result.errors += 1
                    result.error_types[type(exc).__name__] += 1
                await asyncio.sleep(0.01)  # do not spin against a server that is down
                continue
            last = clock()
            if started < measure_from:
                continue
            if status != 200:
                result.errors += 1
                result.error_types[error_type(answer)] += 1
                continue
            result.histogram.record(int((last - started) * 1_000_000))
            if is_miss(operation, answer):
                result.misses += 1
    finally:
        client.close()
    return last


async def _run_connections(spec: WorkerSpec) -> WorkerResult:
    await asyncio.sleep(max(0.0, spec.start_at - time.time()))
    result = WorkerResult()
    begin = time.perf_counter()
    measure_from = begin + spec.warmup
    until = measure_from + spec.duration
    cpu_before = time.process_time()
    lasts = await asyncio.gather(
        *(_drive(spec, conn, measure_from, until, result) for conn in range(spec.connections))
    )
    finished = max(lasts, default=until)
    result.cpu_pct = 100.0 * (time.process_time() - cpu_before) / max(finished - begin, 1e-9)
    result.elapsed = max(finished - measure_from, 1e-9)
    return result


def run_worker(spec: WorkerSpec) -> WorkerResult:
    """Entry point of one load process."""
    with event_loop_runner() as runner:
        return runner.run(_run_connections(spec))


def _warm(_: int) -> int:
    return os.getpid()


# --------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class OpReport:
    op: str
    requests: int
    ops_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    misses: int
    error_types: dict[str, int]
    client_cpu_pct: float  # busiest load process: near 100 means the client was the limit


def split_connections(connections: int, processes: int) -> list[int]:
    """Share `connections` out over at most `processes` processes, none left empty."""
    processes = max(1, min(processes, connections))
    base, extra = divmod(connections, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


def aggregate(op: str, results: Sequence[WorkerResult]) -> OpReport:
    """Merge the histograms and counters of all processes of one op."""
    histogram = LatencyHistogram()
    errors: Counter[str] = Counter()
    for result in results:
        histogram.merge(result.histogram)
        errors.update(result.error_types)
    elapsed = max((r.elapsed for r in results), default=0.0)
    cpu_pct = max((r.cpu_pct for r in results), default=0.0)
    return OpReport(
        op=op,
        requests=histogram.total,
        ops_per_s=histogram.total / elapsed if elapsed > 0 else 0.0,
        p50_ms=histogram.percentile(50) / 1000,
        p90_ms=histogram.percentile(90) / 1000,
        p99_ms=histogram.percentile(99) / 1000,
        max_ms=histogram.max_us / 1000,
        mean_ms=histogram.mean_us() / 1000,
        errors=sum(r.errors for r in results),
        misses=sum(r.misses for r in results),
        error_types=dict(errors.most_common()),
        client_cpu_pct=min(cpu_pct, 100.0),
    )


# --------------------------------------------------------------------------- orchestration


@dataclass(frozen=True)
class BenchConfig:
    endpoint: Endpoint
    connections: int
    duration: float
    warmup: float
    ops: tuple[str, ...]
    item_bytes: int
    table: str
    region: str
    preload: int
    processes: int
    output: str
    keep_table: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchConfig:
        return cls(
            endpoint=parse_endpoint(args.endpoint),
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
            ops=tuple(args.ops),
            item_bytes=args.item_bytes,
            table=args.table or f"tkbench-{secrets.token_hex(4)}",
            region=args.region,
            preload=args.preload,
            processes=args.processes or default_processes(),
            output=args.output,
            keep_table=args.keep_table,
        )

    def needs_preload(self) -> bool:
        return any(op in ("get", "query", "mix") for op in self.ops)


def default_processes() -> int:
    """Half the cores (at least one): the server under test usually shares the machine."""
    return max(1, (os.cpu_count() or 2) // 2)


def _say(config: BenchConfig, message: str) -> None:
    if config.output == "text":
        print(message, file=sys.stderr, flush=True)


async def _create(config: BenchConfig) -> None:
    client = HttpClient(config.endpoint, config.region)
    try:
        await create_table(client, config.table)
    finally:
        client.close()


async def _fill(config: BenchConfig) -> None:
    client = HttpClient(config.endpoint, config.region)
    try:
        await wait_active(client, config.table)
    finally:
        client.close()
    if config.needs_preload():
        await preload(config.endpoint, config.region, config.table, config.preload,
                      config.item_bytes, config.connections)


async def _teardown(config: BenchConfig) -> None:
    client = HttpClient(config.endpoint, config.region)
    try:
        await delete_table(client, config.table)
    finally:
        client.close()


def run_op(pool: Pool, config: BenchConfig, op: str, run_id: str) -> OpReport:
    """Run one op on every process of `pool` at once and merge what they measured."""
    shares = split_connections(config.connections, config.processes)
    start_at = time.time() + 0.3
    specs = [
        WorkerSpec(
            endpoint=config.endpoint,
            region=config.region,
            workload=Workload(op, config.table, config.item_bytes, max(1, config.preload),
                              prefix=f"w{run_id}{op[0]}{index}"),
            connections=share,
            start_at=start_at,
            warmup=config.warmup,
            duration=config.duration,
            seed=hash((run_id, op, index)) & 0xFFFFFFFF,
        )
        for index, share in enumerate(shares)
    ]
    return aggregate(op, pool.map(run_worker, specs, chunksize=1))


def run_ops(config: BenchConfig) -> list[OpReport]:
    run_id = secrets.token_hex(3)
    processes = len(split_connections(config.connections, config.processes))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_warm, range(processes), chunksize=1)  # every process up before the clock starts
        reports = []
        for op in config.ops:
            _say(config, f"bench: {op} for {config.warmup:g}+{config.duration:g} s ...")
            reports.append(run_op(pool, config, op, run_id))
    return reports


def run_bench(config: BenchConfig) -> list[OpReport]:
    """Create the table, run every op, delete the table: also when an op fails, never when
    the table was there before."""
    with event_loop_runner() as runner:
        _say(config, f"bench: creating table {config.table} at {config.endpoint.url}")
        try:
            runner.run(_create(config))
        except OSError as exc:
            raise BenchError(f"bench {config.endpoint.url}: {exc}") from exc
        try:
            runner.run(_fill(config))
            return run_ops(config)
        except OSError as exc:
            raise BenchError(f"bench {config.endpoint.url}: {exc}") from exc
        finally:
            if not config.keep_table:
                _say(config, f"bench: deleting table {config.table}")
                try:
                    runner.run(_teardown(config))
                except (BenchError, OSError) as exc:
                    print(f"bench: warning: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- output


def format_text(config: BenchConfig, reports: Iterable[OpReport]) -> str:
    shares = split_connections(config.connections, config.processes)
    lines = [
        f"endpoint {config.endpoint.url}: {config.connections} connections over "
        f"{len(shares)} processes, {config.duration:g} s per op (after {config.warmup:g} s "
        f"warm-up), {config.item_bytes}-byte items, {config.preload} preloaded",
        f"{'op':<6} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'errors':>7} {'client cpu':>10}",
    ]
    notes = []
    for r in reports:
        lines.append(
            f"{r.op:<6} {r.ops_per_s:>10,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.max_ms:>8.1f} {r.errors:>7} {r.client_cpu_pct:>9.0f}%"
        )
        if r.error_types:
            notes.append(f"{r.op}: errors {r.error_types}")
        if r.misses:
            notes.append(f"{r.op}: {r.misses} reads found nothing (preload missing?)")
    return "\n".join(lines + notes)


def format_json(config: BenchConfig, reports: Iterable[OpReport]) -> str:
    document = {
        "endpoint": config.endpoint.url,
        "connections": config.connections,
        "processes": len(split_connections(config.connections, config.processes)),
        "duration_s": config.duration,
        "warmup_s": config.warmup,
        "item_bytes": config.item_bytes,
        "preload": config.preload,
        "client": "tablekeeper bench (raw HTTP/1.1, asyncio)",
        "results": [asdict(r) for r in reports],
    }
    return json.dumps(document, indent=2)


# --------------------------------------------------------------------------- CLI


def parse_ops(text: str) -> tuple[str, ...]:
    """``"put,get"`` -> ``("put", "get")``; unknown or empty names are an argument error."""
    ops = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [op for op in ops if op not in OPS]
    if not ops or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown op(s) {', '.join(unknown) or '(none)'}; choose from {','.join(OPS)}"
        )
    return ops


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _table_name(text: str) -> str:
    if not _TABLE_NAME.match(text):
        raise argparse.ArgumentTypeError(f"not a DynamoDB table name: {text!r}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tablekeeper bench``."""
    parser.add_argument("--endpoint", required=True, help="http://HOST:PORT of the server")
    parser.add_argument("--connections", type=_positive_int, default=16,
                        help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--duration", type=_positive_float, default=10.0,
                        help="measured seconds per op (default 10)")
    parser.add_argument("--warmup", type=_non_negative_float, default=1.0,
                        help="unmeasured seconds before each op (default 1)")
    parser.add_argument("--ops", type=parse_ops, default=OPS,
                        help="comma-separated ops among put,get,query,mix (default all)")
    parser.add_argument("--item-bytes", type=_positive_int, default=200,
                        help="approximate item size in DynamoDB's accounting (default 200)")
    parser.add_argument("--table", type=_table_name, default=None,
                        help="table to create and delete (default tkbench-<random>)")
    parser.add_argument("--region", default="us-east-1", help="signing region (default us-east-1)")
    parser.add_argument("--preload", type=_positive_int, default=10_000,
                        help="items written before get/query/mix (default 10000)")
    parser.add_argument("--processes", type=_positive_int, default=None,
                        help="load processes sharing the connections (default half the cores)")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.add_argument("--keep-table", action="store_true",
                        help="do not delete the table at the end")


def run(args: argparse.Namespace) -> int:
    """Run ``tablekeeper bench`` from parsed arguments; 0 on success, 1 when it could not run."""
    try:
        config = BenchConfig.from_args(args)
    except ValueError as exc:
        print(f"tablekeeper bench: error: {exc}", file=sys.stderr)
        return 2
    try:
        reports = run_bench(config)
    except BenchError as exc:
        print(f"tablekeeper bench: error: {exc}", file=sys.stderr)
        return 1
    print(format_json(config, reports) if config.output == "json" else format_text(config, reports))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tablekeeper bench",
        description="Load-test a DynamoDB-compatible endpoint: PutItem, GetItem, Query, mix.",
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    # Re-import under the package name so that spawned workers unpickle the same classes.
    from tablekeeper.bench import main as _main

    sys.exit(_main())
