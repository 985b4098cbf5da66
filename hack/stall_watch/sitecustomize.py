"""Report where an engine's event loop stood still: put this folder on PYTHONPATH.

    TK_STALL_LOG=1 PYTHONPATH=hack/stall_watch tablekeeper engine --data DIR --auth none

A thread samples the main thread (the event loop's) every millisecond. When the loop stays in one
Python frame for more than TK_STALL_MS (default 30) milliseconds, it writes that frame's stack and
every other thread's top frames to stderr once, so a stall can be tied to what the committer and
the checkpointer were doing at the time. A loop idle in epoll shows as the ``run_until_complete``
frame: it was waiting (for a commit, say), not busy.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback


def _watch(threshold: float) -> None:
    main = threading.main_thread().ident
    last, since, reported = None, time.perf_counter(), False
    while True:
        time.sleep(0.001)
        frames = sys._current_frames()
        frame = frames.get(main) if main is not None else None
        if frame is None:
            continue
        key = (id(frame), frame.f_lineno, frame.f_code)
        now = time.perf_counter()
        if key != last:
            last, since, reported = key, now, False
        elif not reported and now - since > threshold:
            reported = True
            lines = [f"STALL over {threshold * 1e3:.0f} ms at {time.time():.3f}, the loop's thread:\n"]
            lines += traceback.format_stack(frame)[-4:]
            for ident, other in frames.items():
                if ident not in (main, threading.get_ident()):
                    top = " | ".join(line.strip() for line in traceback.format_stack(other)[-2:])
                    lines.append(f"  thread {ident}: {top}\n")
            sys.stderr.write("".join(lines))


if os.environ.get("TK_STALL_LOG"):
    _threshold = float(os.environ.get("TK_STALL_MS", "30")) / 1e3
    threading.Thread(target=_watch, args=(_threshold,), daemon=True).start()
