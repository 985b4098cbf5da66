"""Pieces shared by the hack/bench_*.py scripts: a client, an engine of their own, CPU time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config


def client(endpoint: str, service: str = "dynamodb") -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="bench", config=Config(retries={"max_attempts": 3}),
    )


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process and all its threads (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def own_engine(name: str) -> Iterator[tuple[str, int]]:
    """A fresh engine (--auth none) on a free port; yields its endpoint and process id."""
    data = Path(tempfile.mkdtemp(prefix=f"tk-{name}-"))
    command = [sys.executable, "-m", "tablekeeper", "engine", "--data", str(data), "--port", "0",
               "--auth", "none"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = process.stdout
        assert output is not None
        line = output.readline()
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            raise SystemExit(f"{name}: engine did not start: {line}{output.read()}")
        threading.Thread(target=output.read, daemon=True).start()  # keep the pipe drained
        yield match.group(1), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
