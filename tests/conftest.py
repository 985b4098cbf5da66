"""Shared fixtures: real engine processes on loopback, boto3 clients.

An engine is a separate ``tablekeeper engine`` process (``--port 0``; the
port is read from its first output line), so tests exercise exactly what a
user runs.  One engine per test module keeps the suite fast; tests isolate
themselves by creating their own uniquely named tables.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from hypothesis import settings

# An engine starts in about a second; an engine that fails to start exits, which ends the wait at
# once. This bounds only a start that hangs: one took over 15 s in a clean-clone CI run (the vault
# key's warning printed, nothing after it) while a third process kept both cores busy.
ENGINE_START_TIMEOUT = 60.0

# No per-example deadline: speed is measured by the benchmarks, and an example that talks to an
# engine while the other pytest worker keeps the second core busy may take a second.
settings.register_profile("tablekeeper", deadline=None)
settings.load_profile("tablekeeper")


@dataclass
class EngineProcess:
    process: subprocess.Popen[str]
    endpoint: str
    data_dir: Path
    args: list[str]
    # The engine's last lines of output (its log), for the message of a test that fails.
    recent: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))

    def client(self, service: str = "dynamodb", **kwargs: object):  # type: ignore[no-untyped-def]
        return make_client(self.endpoint, service, **kwargs)

    def kill(self) -> None:
        """kill -9: no chance to flush or clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def make_client(endpoint: str, service: str = "dynamodb", **kwargs: object):  # type: ignore[no-untyped-def]
    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDTEST",
        "aws_secret_access_key": "secret",
        "config": Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60),
    }
    options.update(kwargs)
    return boto3.client(service, **options)


def start_engine(
    data_dir: Path, *extra: str, port: int = 0, env: dict[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> EngineProcess:
    """Start an engine on ``data_dir``; ``preexec`` runs in the child before the engine (e.g. to set
    a signal's disposition, which the exec keeps)."""
    args = [sys.executable, "-m", "tablekeeper", "engine", "--data", str(data_dir),
            "--port", str(port), *extra]
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, preexec_fn=preexec)
    assert process.stdout is not None
    lines = []
    import selectors
    import time

    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on " in line:
            endpoint = line.split("listening on ", 1)[1].split()[0]
            engine = EngineProcess(process, endpoint, data_dir, args)
            engine.recent.extend(lines)
            _drain_in_background(process, engine.recent)
            return engine
    process.kill()
    raise RuntimeError("engine did not start:\n" + "".join(lines))


def _drain_in_background(process: subprocess.Popen[str], recent: collections.deque[str]) -> None:
    """Keep reading the engine's output so a full pipe never blocks it; keep its last lines."""
    import threading

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            recent.append(line)
            if os.environ.get("TK_ENGINE_LOG"):
                sys.stderr.write("[engine] " + line)

    threading.Thread(target=drain, daemon=True).start()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """One engine process for the whole test module."""
    process = start_engine(tmp_path_factory.mktemp("engine"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def ddb(engine: EngineProcess):  # type: ignore[no-untyped-def]
    return engine.client()


@pytest.fixture(scope="module")
def raw(engine: EngineProcess):  # type: ignore[no-untyped-def]
    """A client that sends whatever it is given (no botocore parameter validation, no retries)."""
    return engine.client(config=Config(parameter_validation=False, retries={"max_attempts": 0}))


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def table_name() -> str:
    return unique_name()


def create_table(ddb, name: str, hash_key: str = "pk", hash_type: str = "S",  # type: ignore[no-untyped-def]
                 range_key: str | None = None, range_type: str = "S", **extra: object) -> str:
    """Create an on-demand table with the given key and return its name."""
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attrs = [{"AttributeName": hash_key, "AttributeType": hash_type}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attrs.append({"AttributeName": range_key, "AttributeType": range_type})
    ddb.create_table(TableName=name, KeySchema=schema, AttributeDefinitions=attrs,
                     BillingMode="PAY_PER_REQUEST", **extra)
    return name
