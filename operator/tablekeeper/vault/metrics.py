"""Prometheus metrics of an engine's backups, restores and point-in-time recovery.

* ``tablekeeper_backups_total{type, result}`` and
  ``tablekeeper_backup_duration_seconds{type}`` (USER backups and PITR bases),
  ``tablekeeper_backup_bytes_total{type}`` (bytes written to the vault);
* ``tablekeeper_restores_total{source, result}`` and
  ``tablekeeper_restore_duration_seconds{source}`` (``backup`` or ``pitr``);
* ``tablekeeper_pitr_lag_seconds{table}``: how far each PITR table's archive
  trails now (what DescribeContinuousBackups' LatestRestorableDateTime shows).

Served on the engine's ``/metrics`` through the extension's collectors.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS: Final = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class _Histograms:
    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}  # label -> [count per bucket..., +Inf, sum]

    def observe(self, label: str, seconds: float) -> None:
        histogram = self.values.setdefault(label, [0.0] * (len(BUCKETS) + 2))
        histogram[bisect.bisect_left(BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def family(self, name: str, help_text: str, label: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, help_text, labels=[label])
        for value, histogram in sorted(self.values.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), histogram[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric([value], buckets, histogram[-1])
        return family


class VaultMetrics(Collector):
    """Counts kept by the backup and PITR services; ``lags`` gives PITR lag per table when scraped."""

    def __init__(self, lags: Callable[[], dict[str, float]] | None = None) -> None:
        self._lock = threading.Lock()
        self._backups: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._backup_bytes: defaultdict[str, int] = defaultdict(int)
        self._backup_seconds = _Histograms()
        self._restores: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._restore_seconds = _Histograms()
        self.lags = lags

    def backup(self, backup_type: str, seconds: float, written: int, ok: bool) -> None:
        with self._lock:
            self._backups[(backup_type, "ok" if ok else "failed")] += 1
            if ok:
                self._backup_seconds.observe(backup_type, seconds)
                self._backup_bytes[backup_type] += written

    def restore(self, source: str, seconds: float, ok: bool) -> None:
        with self._lock:
            self._restores[(source, "ok" if ok else "failed")] += 1
            if ok:
                self._restore_seconds.observe(source, seconds)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            backups = CounterMetricFamily("tablekeeper_backups", "Backups written, by type and result",
                                          labels=["type", "result"])
            for (kind, result), count in sorted(self._backups.items()):
                backups.add_metric([kind, result], count)
            written = CounterMetricFamily("tablekeeper_backup_bytes", "Bytes backups wrote to the vault",
                                          labels=["type"])
            for kind, count in sorted(self._backup_bytes.items()):
                written.add_metric([kind], count)
            restores = CounterMetricFamily("tablekeeper_restores", "Restores, by source and result",
                                           labels=["source", "result"])
            for (source, result), count in sorted(self._restores.items()):
                restores.add_metric([source, result], count)
            families: list[Metric] = [
                backups, written, restores,
                self._backup_seconds.family("tablekeeper_backup_duration_seconds",
                                            "Time from CreateBackup to AVAILABLE", "type"),
                self._restore_seconds.family("tablekeeper_restore_duration_seconds",
                                             "Time from the restore call to an ACTIVE table", "source"),
            ]
        yield from families
        lag = GaugeMetricFamily("tablekeeper_pitr_lag_seconds",
                                "How far each PITR table's archive trails now", labels=["table"])
        for table, seconds in sorted((self.lags() if self.lags else {}).items()):
            lag.add_metric([table], seconds)
        yield lag
