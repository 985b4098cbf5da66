"""How the operator finds a Table's engine: the ``EndpointResolver`` seam.

In a cluster the engine is its client Service,
``http://<table>-engine.<namespace>.svc:8000`` (``ServiceEndpoints``).

Where the operator runs outside the cluster network (a laptop with a
port-forward, or the tests, which start engine processes on loopback in place
of the StatefulSet's pod), ``TABLEKEEPER_ENGINE_ENDPOINTS`` holds a JSON
object mapping ``"<namespace>/<table>"`` to an endpoint URL, e.g.
``{"shop/orders": "http://127.0.0.1:18000"}``; a Table not named there falls
back to its Service (``MappedEndpoints``).  ``<table>`` is the Table's
metadata.name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from tablekeeper.controllers.builders import ENGINE_PORT, service_endpoint

ENDPOINTS_ENV: Final = "TABLEKEEPER_ENGINE_ENDPOINTS"


class EndpointResolver(Protocol):
    def __call__(self, namespace: str, table: str) -> str:
        """The base URL of the engine serving Table ``namespace/table``."""
        ...


@dataclass(frozen=True)
class ServiceEndpoints:
    """The engine's client Service, by cluster DNS."""

    port: int = ENGINE_PORT

    def __call__(self, namespace: str, table: str) -> str:
        return service_endpoint(namespace, table, self.port)


@dataclass(frozen=True)
class MappedEndpoints:
    """Given endpoints for some Tables (``"namespace/table"`` keys), the fallback for the rest."""

    endpoints: Mapping[str, str]
    fallback: EndpointResolver = field(default_factory=ServiceEndpoints)

    def __call__(self, namespace: str, table: str) -> str:
        found = self.endpoints.get(f"{namespace}/{table}")
        return found.rstrip("/") if found else self.fallback(namespace, table)


def resolver_from_environment(environ: Mapping[str, str], port: int = ENGINE_PORT) -> EndpointResolver:
    """The resolver ``environ`` asks for: mapped when TABLEKEEPER_ENGINE_ENDPOINTS is set, else Services.

    Raises ValueError naming the variable when its value is not a JSON object of strings.
    """
    services = ServiceEndpoints(port)
    text = environ.get(ENDPOINTS_ENV, "").strip()
    if not text:
        return services
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"read {ENDPOINTS_ENV}: not JSON: {error}") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "/" in k for k, v in mapping.items()
    ):
        raise ValueError(f'read {ENDPOINTS_ENV}: want {{"namespace/table": "http://host:port", ...}}')
    return MappedEndpoints(mapping, services)
