"""The checkpoint's flush: durable as one fdatasync, written back to the disk in bounded steps."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

import pytest

from tablekeeper.engine.storage import writeback


def recorded_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    real = writeback.write_back

    def recording(fd: int, offset: int, length: int) -> None:
        seen.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(writeback, "write_back", recording)
    return seen


def recorded_syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors fdatasync is called on from now (each still synced)."""
    synced: list[int] = []
    real = getattr(os, "fdatasync", os.fsync)

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync, raising=False)  # macOS has none
    return synced


def covered(walk: list[tuple[int, int]]) -> int:
    """Bytes from 0 covered by the steps without a gap."""
    end = 0
    for offset, length in walk:
        assert offset == end
        end += length
    return end


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_a_small_file_is_written_back_in_256_kb_steps_then_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(os.urandom(1_000_000))
    walk = recorded_steps(monkeypatch)
    synced = recorded_syncs(monkeypatch)
    writeback.flush(path)
    assert [length for _, length in walk] == [256 * 1024] * 4
    assert covered(walk) >= 1_000_000
    assert len(synced) == 1  # the sync that makes it durable still happens, after the steps


def test_a_large_file_takes_at_most_max_steps_and_still_covers_every_byte() -> None:
    for size in (0, 1, 256 * 1024, 256 * 1024 + 1, 300 * 2**20, 10 * 2**30 + 7):
        walk = writeback.steps(size)
        assert len(walk) <= writeback.MAX_STEPS
        assert walk.step >= writeback.STEP
        assert len(walk) * walk.step >= size
        assert len(walk) == 0 or walk[-1] < size


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_a_failing_write_back_raises_with_the_systems_reason(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"x" * 4096)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="sync_file_range: Invalid argument"):
            writeback.write_back(fd, -1, 4096)  # a negative offset is refused
    finally:
        os.close(fd)


def test_without_sync_file_range_the_flush_is_one_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"x" * 1_000_000)
    monkeypatch.setattr(writeback, "_sync_file_range", None)
    walk = recorded_steps(monkeypatch)
    synced = recorded_syncs(monkeypatch)
    writeback.flush(path)
    assert walk == []
    assert len(synced) == 1
    assert path.read_bytes() == b"x" * 1_000_000


class Refusing:
    """A sync_file_range that fails with one errno, counting its calls."""

    def __init__(self, code: int) -> None:
        self.code, self.calls = code, 0

    def __call__(self, fd: int, offset: int, length: int, flags: int) -> int:
        self.calls += 1
        ctypes.set_errno(self.code)
        return -1


def test_where_a_sandbox_refuses_the_call_the_flush_is_one_sync_from_then_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"x" * 1_000_000)
    refused = Refusing(errno.ENOSYS)
    monkeypatch.setattr(writeback, "_sync_file_range", refused)
    writeback.flush(path)
    writeback.flush(path)
    assert refused.calls == 1
    assert "sync_file_range refused" in caplog.text and "in one step" in caplog.text


def test_a_write_back_that_fails_for_another_reason_fails_the_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"x" * 1_000_000)
    monkeypatch.setattr(writeback, "_sync_file_range", Refusing(errno.EIO))
    with pytest.raises(OSError, match="sync_file_range: Input/output error"):
        writeback.flush(path)


def test_a_missing_file_is_an_error_for_the_checkpoint_to_report(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        writeback.flush(tmp_path / "gone.db")
