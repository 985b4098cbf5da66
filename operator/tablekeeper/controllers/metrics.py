"""The operator's Prometheus metrics: a few counters and gauges on ``/metrics``, in the text format.

Written out by hand (no prometheus-client dependency) because there are
only a handful and they are updated from kopf's handler threads; a lock
keeps the counts whole.  Served by aiohttp, which kopf already brings.

* ``tablekeeper_reconciles_total{kind, outcome}``: reconcile passes and how
  they ended (Active, Updating, EngineStarting, ChangeRefused, ...);
* ``tablekeeper_objects{kind, phase}``: objects per phase, as last seen.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Final

from aiohttp import web

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reconciles: Counter[tuple[str, str]] = Counter()
        self._phases: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, ns/name) -> (kind, phase)

    def reconciled(self, kind: str, key: str, outcome: str, phase: str | None) -> None:
        with self._lock:
            self._reconciles[(kind, outcome)] += 1
            if phase is not None:
                self._phases[(kind, key)] = (kind, phase)

    def forget(self, kind: str, key: str) -> None:
        with self._lock:
            self._phases.pop((kind, key), None)

    def render(self) -> str:
        with self._lock:
            reconciles = sorted(self._reconciles.items())
            phases = sorted(Counter(self._phases.values()).items())
        lines = [
            "# HELP tablekeeper_reconciles_total Reconcile passes by kind and outcome.",
            "# TYPE tablekeeper_reconciles_total counter",
            *(f'tablekeeper_reconciles_total{{kind="{k}",outcome="{o}"}} {n}' for (k, o), n in reconciles),
            "# HELP tablekeeper_objects Objects by kind and phase, as last reconciled.",
            "# TYPE tablekeeper_objects gauge",
            *(f'tablekeeper_objects{{kind="{k}",phase="{p}"}} {n}' for (k, p), n in phases),
        ]
        return "\n".join(lines) + "\n"


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
