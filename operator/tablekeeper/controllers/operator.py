"""The operator's runtime: kopf's settings, the handlers registered, and ``run``.

``tablekeeper operator`` calls ``run(config)``: a fresh kopf registry with
the controllers' handlers (Table, BackupVault, Backup, PitrConfig, BackupPlan,
Restore), kopf's settings for tablekeeper, the liveness endpoint
(``http://0.0.0.0:<port>/healthz``) and ``/metrics``.
Peering is standalone by default: run one replica (or let Kubernetes'
Deployment strategy keep it one); ``--peering NAME`` turns kopf's peering on
where its CRDs are installed.

kopf keeps its bookkeeping (handler progress, the last handled spec) in
annotations under ``tablekeeper.io``, not in ``status``: the CRDs' status
schemas are structural, so the API server would prune anything else there.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import kopf

from tablekeeper.controllers import backups, pitr, plans, restores, tables, vaults
from tablekeeper.controllers import metrics as metrics_module
from tablekeeper.controllers.builders import EngineSettings
from tablekeeper.controllers.endpoints import EndpointResolver, resolver_from_environment
from tablekeeper.controllers.kube import Kube
from tablekeeper.resources.common import GROUP

FINALIZER: Final = f"{GROUP}/finalizer"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    liveness_port: int = 8080
    metrics_port: int = 9090  # 0: no metrics endpoint
    engine: EngineSettings = field(default_factory=EngineSettings)
    resolver: EndpointResolver | None = None  # None: from the environment (endpoints.py)
    status_interval: float = 30.0
    retry_delay: float = 10.0
    peering: str | None = None  # None: standalone
    vault_interval: float | None = None  # how often vaults are probed; None: ten status intervals

    @property
    def vault_check_interval(self) -> float:
        return self.vault_interval if self.vault_interval is not None else 10 * self.status_interval

    def table_settings(self, environ: Mapping[str, str]) -> tables.TableSettings:
        resolver = self.resolver or resolver_from_environment(environ, self.engine.port)
        return tables.TableSettings(
            engine=self.engine, resolver=resolver, retry_delay=self.retry_delay,
            poll_delay=min(2.0, self.retry_delay), status_interval=self.status_interval,
        )  # fmt: skip


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # kopf's own per-handler events ("Handler ... succeeded") are noise next to the condition
    # transitions the controllers post; its warnings and errors still go out.
    settings.posting.level = logging.WARNING
    return settings


def build_registry(
    config: OperatorConfig, kube_factory: Callable[[], Kube], environ: Mapping[str, str]
) -> tuple[kopf.OperatorRegistry, metrics_module.Metrics]:
    """A registry with every controller's handlers, the login, and the metrics server's start and stop."""
    registry = kopf.OperatorRegistry()
    metrics = metrics_module.Metrics()
    kopf.on.login(registry=registry)(kopf.login_via_client)
    table_settings = config.table_settings(environ)
    tables.register(registry, tables.TableController(table_settings, kube_factory, metrics))
    vault_controller = vaults.VaultController(
        kube_factory, interval=config.vault_check_interval, retry_delay=config.retry_delay, metrics=metrics
    )
    vaults.register(registry, vault_controller)
    backups.register(registry, backups.BackupController(table_settings, kube_factory, metrics))
    pitr.register(registry, pitr.PitrController(table_settings, kube_factory, metrics))
    plans.register(registry, plans.PlanController(plans.PlanSettings(), kube_factory, metrics))
    restores.register(registry, restores.RestoreController(table_settings, kube_factory, metrics))

    if config.metrics_port:
        runners: list[Any] = []

        @kopf.on.startup(registry=registry)
        async def start_metrics(**_: Any) -> None:
            runners.append(await metrics_module.serve(metrics, "0.0.0.0", config.metrics_port))

        @kopf.on.cleanup(registry=registry)
        async def stop_metrics(**_: Any) -> None:
            for runner in runners:
                await runner.cleanup()

    return registry, metrics


def run(config: OperatorConfig, environ: Mapping[str, str] | None = None) -> int:
    """Run the operator until it is stopped (SIGINT/SIGTERM); the exit code."""
    environ = os.environ if environ is None else environ
    try:
        registry, _ = build_registry(config, Kube.from_environment, environ)
    except ValueError as error:  # e.g. a malformed TABLEKEEPER_ENGINE_ENDPOINTS
        logger.error("tablekeeper operator: %s", error)
        return 2
    namespaces: Sequence[str] = config.namespaces
    asyncio.run(
        kopf.operator(
            registry=registry,
            settings=operator_settings(),
            standalone=config.peering is None,
            peering_name=config.peering,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://0.0.0.0:{config.liveness_port}/healthz",
        )
    )
    return 0
