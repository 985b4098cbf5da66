"""Run the engine: storage, the DynamoDB application, the HTTP server, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from tablekeeper.engine.engine import Engine, EngineConfig
from tablekeeper.engine.extensions import Extension, ExtensionFactory
from tablekeeper.engine.index_builds import run_index_work
from tablekeeper.engine.maintenance import run_maintenance
from tablekeeper.engine.metrics import RequestMetrics, metrics_response
from tablekeeper.engine.protocol.dispatch import (
    DYNAMODB,
    ENGINE_OPERATIONS,
    DynamoDBApplication,
    with_operations,
)
from tablekeeper.engine.protocol.http import HttpServer, Request
from tablekeeper.engine.storage.base import StorageError
from tablekeeper.engine.storage.sqlite import Durability
from tablekeeper.engine.ttl_worker import DEFAULT_TTL_INTERVAL, run_ttl

log = logging.getLogger("tablekeeper.engine")


@dataclass(frozen=True)
class ServerOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    auth: str | None = None  # "sigv4" | "none"; None = sigv4 unless host is loopback
    credentials_file: Path | None = None
    region: str = "us-east-1"
    durability: Durability = Durability.POWER_LOSS
    ttl_interval: float = DEFAULT_TTL_INTERVAL  # seconds between sweeps of expired items
    # what the layers above add (backups, PITR): see tablekeeper.engine.extensions
    extensions: tuple[ExtensionFactory, ...] = field(default=())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def effective_auth(options: ServerOptions) -> str:
    if options.auth is not None:
        return options.auth
    return "none" if is_loopback(options.host) else "sigv4"


def _authenticator(options: ServerOptions):  # type: ignore[no-untyped-def]
    from tablekeeper.engine.protocol import sigv4

    path = options.credentials_file
    if path is None:
        path = options.data_dir / "credentials"
        if not path.exists():
            generated = sigv4.generate_credentials()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(f"{generated.access_key_id}:{generated.secret_access_key}\n")
            log.warning("generated SigV4 credentials in %s (access key %s)", path,
                        generated.access_key_id)
    store = sigv4.CredentialStore.load(path)

    def authenticate(request: Request) -> object:
        return sigv4.verify(
            request.method, request.path, request.query, request.headers, request.body,
            store, datetime.now(UTC),
        )

    return authenticate, path


async def serve(options: ServerOptions, stop: asyncio.Event) -> None:
    started = time.perf_counter()
    try:
        engine = Engine(EngineConfig(options.data_dir, region=options.region,
                                     durability=options.durability))
    except StorageError as exc:
        raise SystemExit(f"tablekeeper engine: {exc}") from None
    auth = effective_auth(options)
    authenticate = None
    where = ""
    if auth == "sigv4":
        authenticate, credentials_path = _authenticator(options)
        where = f" credentials={credentials_path}"
    extensions: list[Extension] = []
    operations = ENGINE_OPERATIONS
    try:
        for factory in options.extensions:
            extension = factory(engine)
            extensions.append(extension)
            operations = with_operations(operations, DYNAMODB, extension.operations)
    except BaseException as exc:
        _close(extensions, engine)
        if isinstance(exc, StorageError):  # its state database is unusable: one line says which
            raise SystemExit(f"tablekeeper engine: {exc}") from None
        raise
    metrics = RequestMetrics()
    registry = CollectorRegistry()
    for collector in (metrics, *(c for extension in extensions for c in extension.collectors)):
        registry.register(collector)
    app = DynamoDBApplication(engine, authenticate=authenticate, operations=operations,
                              observe=metrics.observe, metrics=metrics_response(registry))
    server = HttpServer(app)
    try:
        port = await server.start(options.host, options.port)
    except OSError as exc:
        _close(extensions, engine)
        raise SystemExit(f"tablekeeper engine: listen on {options.host}:{options.port}: {exc}") from exc
    print(
        f"tablekeeper engine listening on http://{options.host}:{port} "
        f"(data={options.data_dir} auth={auth}{where} durability={options.durability.value}, "
        f"started in {time.perf_counter() - started:.2f}s)",
        flush=True,
    )
    upkeep = asyncio.get_running_loop().create_task(run_maintenance(engine))
    expiry = asyncio.get_running_loop().create_task(run_ttl(engine, options.ttl_interval))
    index_work = asyncio.get_running_loop().create_task(run_index_work(engine))
    tasks = [upkeep, expiry, index_work]
    for extension in extensions:
        tasks.extend(asyncio.get_running_loop().create_task(task()) for task in extension.tasks)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.close()
        _close(extensions, engine)
        print("tablekeeper engine stopped", flush=True)


def _close(extensions: list[Extension], engine: Engine) -> None:
    for extension in reversed(extensions):
        try:
            extension.close()
        except Exception:
            log.exception("closing %s failed", extension.name)
    engine.close()


def run(options: ServerOptions) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        uvloop = None  # type: ignore[assignment]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await serve(options, stop)

    # Short GIL switch interval: the committer thread and the loop share the
    # interpreter, and the default 5 ms would show up in p99 latency.
    sys.setswitchinterval(0.0005)
    # Requests allocate many short-lived objects and form few cycles: collect
    # the young generation less often, and keep what startup built out of the
    # collector's way (full collections showed up as latency spikes).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    if uvloop is not None:
        uvloop.run(main())
    else:
        asyncio.run(main())
    return 0
