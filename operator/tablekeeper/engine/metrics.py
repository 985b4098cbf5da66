"""The engine's Prometheus metrics, served on ``GET /metrics`` of the engine's own port.

* ``tablekeeper_engine_requests_total{operation, outcome}``: requests and how
  they ended (``ok`` or the error code);
* ``tablekeeper_engine_request_duration_seconds{operation}``: a histogram of
  their latency.

Counting happens on every request, so it is plain dict arithmetic (well under
a microsecond); prometheus-client only formats the counts when scraped, through
a collector.  The layers above add their own collectors through their
extension (``Extension.collectors``: backups, restores, PITR lag).  Like the
health line, the endpoint needs no signature: it shows counts, never data.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tablekeeper.engine.protocol.http import Response

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

class RequestMetrics(Collector):
    """Request counts and latency histograms by operation; ``observe`` is DynamoDBApplication's hook."""

    def __init__(self) -> None:
        self._counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        # operation -> [count per bucket (the last is +Inf)..., sum of seconds]
        self._histograms: dict[str, list[float]] = {}

    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        self._counts[(operation, outcome)] += 1
        histogram = self._histograms.get(operation)
        if histogram is None:
            histogram = self._histograms[operation] = [0.0] * (len(BUCKETS) + 2)
        histogram[bisect.bisect_left(BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("tablekeeper_engine_requests", "Requests served, by operation and "
                                       "outcome (ok, or the error code)", labels=["operation", "outcome"])
        for (operation, outcome), count in sorted(self._counts.items()):
            requests.add_metric([operation, outcome], count)
        yield requests
        latency = HistogramMetricFamily("tablekeeper_engine_request_duration_seconds",
                                        "Request latency in the engine, by operation", labels=["operation"])
        for operation, histogram in sorted(self._histograms.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), histogram[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([operation], buckets, histogram[-1])
        yield latency


def metrics_response(registry: CollectorRegistry) -> Callable[[], Response]:
    """What answers ``GET /metrics`` (DynamoDBApplication's ``metrics``): the registry, as text."""

    def respond() -> Response:
        return Response(200, generate_latest(registry), content_type=CONTENT_TYPE)

    return respond
