"""hack/stall_watch/summarize.py tells the storage threads apart in a stall_watch log."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parents[2] / "hack" / "stall_watch" / "summarize.py"

LOOP = '''STALL over 12 ms at 1.0, the loop's thread:
  File "/x/asyncio/runners.py", line 118, in run
    return self._loop.run_until_complete(task)
'''
COMMIT = '''  thread 1: File "/x/sqlite.py", line 773, in <lambda>
    lambda: self._commit(batch, redo), | File "/x/sqlite.py", line 897, in _commit
    tf.writer.execute("COMMIT")
'''
FINISHING = '''  thread 1: File "/x/sqlite.py", line 773, in <lambda>
    lambda: self._commit(batch, redo), | File "/x/sqlite.py", line 904, in _commit
    tf.writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
'''
STEP = '''  thread 2: File "/x/writeback.py", line 65, in flush
    write_back(fd, offset, walk.step) | File "/x/writeback.py", line 53, in write_back
    if _sync_file_range(fd, offset, length, flags) != 0:
'''
COPY = '''  thread 2: File "/x/sqlite.py", line 180, in _checkpoint_in_passes
    _, _, total = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
'''
WAITING = '''  thread 2: File "/x/threading.py", line 982, in run
    self._target(*self._args, **self._kwargs) | File "/x/thread.py", line 81, in _worker
    work_item = work_queue.get(block=True)
'''


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stall_summary", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stalls_are_counted_by_what_the_committer_and_the_checkpointer_were_doing() -> None:
    log = LOOP + COMMIT + STEP + LOOP + COMMIT + STEP + LOOP + FINISHING + WAITING + LOOP + COMMIT + COPY
    counts = load().summarize(log + "tablekeeper engine stopped\n")
    assert counts == {
        ("idle", "COMMIT", "write-back step"): 2,
        ("idle", "finishing pass", "idle"): 1,
        ("idle", "COMMIT", "copy pass"): 1,
    }
