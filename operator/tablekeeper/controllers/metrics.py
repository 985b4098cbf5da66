"""The operator's Prometheus metrics: a few counters and gauges on ``/metrics``, in the text format.

Written out by hand (no prometheus-client dependency) because there are
only a handful and they are updated from kopf's handler threads; a lock
keeps the counts whole.  Served by aiohttp, which kopf already brings.

* ``tablekeeper_reconciles_total{kind, outcome}``: reconcile passes and how
  they ended (Active, Updating, EngineStarting, ChangeRefused, ...);
* ``tablekeeper_objects{kind, phase}``: objects per phase, as last seen;
* ``tablekeeper_operator_restores_total{source, result}``: Restores finished (Completed or
  Failed) by source type (Backup, VaultBackup, PointInTime);
* ``tablekeeper_operator_restore_duration_seconds{source}``: how long completed Restores took,
  from the restore call to the restored Table being Ready (a histogram).  The engines serve
  ``tablekeeper_restore_*``: the load alone, as each engine sees it; the names stay apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Final

from aiohttp import web

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
# Restores take seconds (a small table) to hours (a large one).
RESTORE_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reconciles: Counter[tuple[str, str]] = Counter()
        self._phases: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, ns/name) -> (kind, phase)
        self._restores: Counter[tuple[str, str]] = Counter()  # (source, result)
        self._restore_seconds: dict[str, _Histogram] = {}  # by source

    def reconciled(self, kind: str, key: str, outcome: str, phase: str | None) -> None:
        with self._lock:
            self._reconciles[(kind, outcome)] += 1
            if phase is not None:
                self._phases[(kind, key)] = (kind, phase)

    def forget(self, kind: str, key: str) -> None:
        with self._lock:
            self._phases.pop((kind, key), None)

    def restore_finished(self, source: str, result: str, seconds: float | None) -> None:
        """A restore ended (``result`` Completed or Failed); ``seconds`` it took, when it completed."""
        with self._lock:
            self._restores[(source, result)] += 1
            if seconds is not None:
                self._restore_seconds.setdefault(source, _Histogram(RESTORE_BUCKETS)).observe(seconds)

    def render(self) -> str:
        with self._lock:
            reconciles = sorted(self._reconciles.items())
            phases = sorted(Counter(self._phases.values()).items())
            restores = sorted(self._restores.items())
            durations = [h.lines("tablekeeper_operator_restore_duration_seconds", f'source="{source}"')
                         for source, h in sorted(self._restore_seconds.items())]  # fmt: skip
        lines = [
            "# HELP tablekeeper_reconciles_total Reconcile passes by kind and outcome.",
            "# TYPE tablekeeper_reconciles_total counter",
            *(f'tablekeeper_reconciles_total{{kind="{k}",outcome="{o}"}} {n}' for (k, o), n in reconciles),
            "# HELP tablekeeper_objects Objects by kind and phase, as last reconciled.",
            "# TYPE tablekeeper_objects gauge",
            *(f'tablekeeper_objects{{kind="{k}",phase="{p}"}} {n}' for (k, p), n in phases),
            "# HELP tablekeeper_operator_restores_total Restores finished, by source type and result.",
            "# TYPE tablekeeper_operator_restores_total counter",
            *(f'tablekeeper_operator_restores_total{{source="{s}",result="{r}"}} {n}'
              for (s, r), n in restores),
            "# HELP tablekeeper_operator_restore_duration_seconds Completed Restores' duration, by source.",
            "# TYPE tablekeeper_operator_restore_duration_seconds histogram",
            *(line for series in durations for line in series),
        ]
        return "\n".join(lines) + "\n"


class _Histogram:
    """One histogram series: cumulative counts per upper bound, the sum and the count."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts = buckets, [0] * len(buckets)
        self.sum, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        self.counts = [n + (value <= bound) for n, bound in zip(self.counts, self.buckets, strict=True)]
        self.sum, self.count = self.sum + value, self.count + 1

    def lines(self, name: str, labels: str) -> list[str]:
        """The series in the text format: buckets, +Inf, sum and count."""
        pairs = zip(self.buckets, self.counts, strict=True)
        lines = [f'{name}_bucket{{{labels},le="{bound:g}"}} {n}' for bound, n in pairs]
        lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum{{{labels}}} {self.sum:g}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


async def serve(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """Start serving ``/metrics``; the caller cleans the returned runner up."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
