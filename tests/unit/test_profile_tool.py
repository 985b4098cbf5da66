"""hack/profile_requests.py, the in-process profiling harness, still gets every answer it asks for.

It drives the real HTTP protocol class over fake transports, so a change in what the
protocol asks of its transport can silently strand its answers (it hung after the
response flush began asking ``is_closing()``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "hack" / "profile_requests.py"


@pytest.mark.parametrize("op", ["put", "put-gsi", "put-gsi-keys", "get"])
def test_the_profiling_harness_answers_every_request(op: str) -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL), "--op", op, "--requests", "60", "--connections", "4"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"{op}: " in done.stdout and "us CPU/request" in done.stdout, done.stdout


def test_the_index_read_benchmark_reads_full_pages_of_every_projection() -> None:
    tool = TOOL.with_name("bench_index_reads.py")
    done = subprocess.run(
        [sys.executable, str(tool), "--items", "40", "--page", "10", "--queries", "3", "--repeats", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for projection in ("ALL", "KEYS_ONLY", "INCLUDE"):
        assert f"{projection}: " in done.stdout and "per Query of 10 items" in done.stdout, done.stdout
