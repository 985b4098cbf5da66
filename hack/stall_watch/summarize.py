#!/usr/bin/env python3
"""Count the stalls a stall_watch log reports by what the loop, committer and checkpointer were doing.

    TK_STALL_LOG=1 TK_STALL_MS=12 PYTHONPATH=hack/stall_watch tablekeeper engine ... 2> stalls.log
    hack/stall_watch/summarize.py stalls.log

Each report names the loop's frame and every other thread's top two frames (``sitecustomize``).
The storage threads are told apart by what they run: the committer's thread runs
``_Committer._run`` (``COMMIT``, the finishing checkpoint pass, or handing an outcome back), the
checkpointer's runs the background checkpoint (a WAL copy pass, a write-back step, the final
``fdatasync``) or waits for work in its executor.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path


def loop_state(block: str) -> str:
    frames = block.split("  thread ", 1)[0]
    return "idle" if frames.rstrip().endswith("run_until_complete(task)") else "busy"


def committer_state(threads: list[str]) -> str:
    for thread in threads:
        if 'execute("COMMIT")' in thread:
            return "COMMIT"
        if 'writer.execute("PRAGMA wal_checkpoint' in thread:
            return "finishing pass"
        if "self._jobs.get()" in thread:
            return "idle"
        if "_commit" in thread or "_Committer" in thread or "in _run" in thread:
            return "after a commit"
    return "unseen"


def checkpointer_state(threads: list[str]) -> str:
    for thread in threads:
        if "write_back" in thread:
            return "write-back step"
        if "fdatasync" in thread:
            return "fdatasync"
        if 'execute("PRAGMA wal_checkpoint(PASSIVE)")' in thread and "writer" not in thread:
            return "copy pass"
        if "work_queue.get" in thread:
            return "idle"
    return "unseen"


def summarize(text: str) -> collections.Counter[tuple[str, str, str]]:
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for block in re.split(r"STALL over ", text)[1:]:
        block = block.split("tablekeeper engine stopped", 1)[0]
        threads = ["thread " + part for part in block.split("  thread ")[1:]]
        counts[(loop_state(block), committer_state(threads), checkpointer_state(threads))] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("log", type=Path)
    args = parser.parse_args(argv)
    counts = summarize(args.log.read_bytes().decode("utf-8", "replace"))
    print(f"{sum(counts.values())} stalls\n")
    print("| stalls | loop | committer | checkpointer |")
    print("|--:|---|---|---|")
    for (loop, committer, checkpointer), count in counts.most_common():
        print(f"| {count} | {loop} | {committer} | {checkpointer} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
