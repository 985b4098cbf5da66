"""Making a file durable a step at a time, so that other files' syncs need not wait.

A background checkpoint copies a few thousand pages into a table's database
file.  One ``fdatasync`` hands all of them to the disk at once, and every
commit's sync of the WAL made meanwhile waits behind them: 25-35 ms on this
project's test machine, which was PutItem's p99.  Written back in steps of
256 KB, each waited for, a commit's sync waits behind one step at most.  The
final ``fdatasync`` then has little left to write, and it is still what makes
the file durable: ``sync_file_range`` flushes neither the disk's cache nor the
file's metadata.

``sync_file_range`` is Linux's; elsewhere, and where a sandbox refuses it
(seccomp, gVisor), ``flush`` is one plain sync.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

STEP = 256 * 1024
# A walk over a clean range still costs a few µs a step: past 256 MB, steps grow
# so that one flush makes at most this many.
MAX_STEPS = 1024

# <linux/fs.h>: wait for writeback already under way, start it, wait for it to finish.
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4
# What a kernel or sandbox without the call answers: the plain sync then does it all.
_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM})

log = logging.getLogger(__name__)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError, TypeError):  # not Linux (Windows has no CDLL(None))
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_sync_file_range = _load_sync_file_range()


def steps(size: int) -> range:
    """Where the steps of writing back a file of ``size`` bytes start (each is ``.step`` long)."""
    return range(0, size, max(STEP, -(-size // MAX_STEPS)))


def write_back(fd: int, offset: int, length: int) -> None:
    """Write the file's dirty pages in [offset, offset + length) to the disk and wait for them."""
    if _sync_file_range is None:
        return
    if _sync_file_range(fd, offset, length, _WAIT_BEFORE | _WRITE | _WAIT_AFTER) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"sync_file_range: {os.strerror(code)}")


def flush(path: Path) -> None:
    """Make a file's data durable (fdatasync), writing its dirty pages back a step at a time first."""
    global _sync_file_range
    fd = os.open(path, os.O_RDONLY)
    try:
        if _sync_file_range is not None:
            walk = steps(os.fstat(fd).st_size)
            try:
                for offset in walk:
                    write_back(fd, offset, walk.step)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                log.warning("sync_file_range refused (%s): checkpoints sync in one step", exc)
                _sync_file_range = None
        if hasattr(os, "fdatasync"):  # macOS has none
            os.fdatasync(fd)
        else:
            os.fsync(fd)
    finally:
        os.close(fd)
