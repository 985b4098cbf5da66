"""The seam through which the layers above add to a running engine.

The engine knows nothing of vaults or replication (the import layers forbid
it).  A layer above hands ``serve`` extension factories: each gets the
engine once it is open and returns the operations it serves and the
background work it runs.  Composition happens at the top (``tablekeeper.cli``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client.registry import Collector

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.operations.base import Operation


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Extension:
    """Operations served beside the engine's own (``DynamoDB_20120810.*``), background tasks
    started with the server and cancelled at shutdown, what to close after them, and metrics."""

    name: str
    operations: Mapping[str, Operation] = field(default_factory=dict)
    tasks: tuple[Callable[[], Awaitable[None]], ...] = ()
    close: Callable[[], None] = _nothing
    collectors: tuple[Collector, ...] = ()  # Prometheus collectors for the engine's /metrics


ExtensionFactory = Callable[[Engine], Extension]
