"""hack/benchlib.py's cost table: medians, the paired cost, and the engine's CPU with its kernel
and event loop parts."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

HACK = Path(__file__).resolve().parents[2] / "hack"


def load_benchlib() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchlib", HACK / "benchlib.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchlib"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


benchlib = load_benchlib()
ARGS = argparse.Namespace(item_bytes=200, threads=2, connections=16, duration=8, rounds=2)


def test_the_table_gives_medians_the_paired_cost_and_the_kernels_and_loops_parts_of_the_cpu() -> None:
    sample = benchlib.Sample
    samples = {
        "no index": [sample(2000.0, 10.0, 300.0, 100.0, 200.0), sample(2400.0, 12.0, 320.0, 110.0, 220.0)],
        "GSI ALL": [sample(1600.0, 14.0, 380.0, 130.0, 260.0), sample(2160.0, 16.0, 400.0, 150.0, 280.0)],
    }
    rows = benchlib.cost_table(samples, ["no index", "GSI ALL"], ARGS).splitlines()
    assert rows[2].endswith("| engine CPU ms / 1000 puts | of it, kernel | of it, event loop |")
    assert rows[4] == "| no index | 2200 | 11.00 |  | 310 | 105 | 210 |"
    assert rows[5] == "| GSI ALL | 1880 | 15.00 | +15.0% | 390 | 140 | 270 |"  # costs 20 % and 10 %


def test_without_an_engine_of_its_own_the_cpu_is_not_known() -> None:
    samples = {"no index": [benchlib.Sample(2000.0, 10.0, None)]}
    rows = benchlib.cost_table(samples, ["no index"], ARGS).splitlines()
    assert rows[4] == "| no index | 2000 | 10.00 |  | n/a | n/a | n/a |"


def test_cpu_times_are_this_processs_user_and_system_seconds() -> None:
    user, system = benchlib.cpu_times(os.getpid())
    times = os.times()
    assert 0 < user <= times.user + 0.05
    assert 0 <= system <= times.system + 0.05
    assert benchlib.cpu_seconds(None) == 0.0


def test_the_main_threads_cpu_times_leave_out_what_other_threads_spent() -> None:
    def spin() -> None:  # about 0.3 s of CPU on a thread of its own
        started = time.thread_time()
        while time.thread_time() - started < 0.3:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    loop_user, loop_system = benchlib.cpu_times(os.getpid(), main_thread=True)
    user, system = benchlib.cpu_times(os.getpid())
    assert loop_user > 0
    assert loop_user + loop_system + 0.2 <= user + system
