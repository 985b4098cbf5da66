"""The dashboard charts metrics that exist, and no metric name means two things.

The operator and every engine are scraped as separate targets; a name both
emitted (with different labels and meanings) would be summed together by any
panel that does not filter by job, so the names are kept apart.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, generate_latest

from tablekeeper.controllers.metrics import Metrics
from tablekeeper.engine.metrics import RequestMetrics
from tablekeeper.vault.metrics import VaultMetrics
from tests.chart.support import dashboard, render

SAMPLE = re.compile(r"^(tablekeeper_[a-z_]+?)(?:\{| )", re.MULTILINE)


def sample_names(text: str) -> set[str]:
    return set(SAMPLE.findall(text))


def engine_names() -> set[str]:
    """What an engine with a vault serves on /metrics once it has done one of everything."""
    requests, vault = RequestMetrics(), VaultMetrics(lags=lambda: {"orders": 0.5})
    requests.observe("PutItem", 0.002, "ok")
    vault.backup("USER", 1.5, 1024, ok=True)
    vault.restore("backup", 2.0, ok=True)
    registry = CollectorRegistry()
    registry.register(requests)
    registry.register(vault)
    return sample_names(generate_latest(registry).decode())


def operator_names() -> set[str]:
    """What the operator serves on /metrics once it has reconciled and finished a restore."""
    metrics = Metrics()
    metrics.reconciled("Table", "shop/orders", "Active", "Active")
    metrics.restore_finished("Backup", "Completed", 3.0)
    return sample_names(metrics.render())


def dashboard_names() -> set[str]:
    board = dashboard(render("all-on"))
    expressions = " ".join(t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"])
    return set(re.findall(r"tablekeeper_[a-z_]+", expressions))


def families(names: set[str]) -> set[str]:
    """Sample names without the histogram suffixes: the names a family is known by."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_every_metric_on_the_dashboard_is_served_by_the_operator_or_an_engine() -> None:
    served = engine_names() | operator_names()
    assert dashboard_names() - served == set()


def test_the_operator_and_the_engines_never_serve_the_same_metric_name() -> None:
    assert families(engine_names()) & families(operator_names()) == set()


def test_every_served_metric_is_on_the_dashboard() -> None:
    charted = families(dashboard_names())
    assert families(engine_names() | operator_names()) - charted == set()
