"""The ``tablekeeper`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the operator is imported only when it runs: the engine starts in well under a second
    from tablekeeper.controllers.operator import OperatorConfig


def _engine_command(args: argparse.Namespace) -> int:
    from tablekeeper.engine.server import ServerOptions, run
    from tablekeeper.engine.storage.sqlite import Durability
    from tablekeeper.vault.api import backup_extension
    from tablekeeper.vault.cli import engine_vault
    from tablekeeper.vault.errors import VaultError

    try:
        spec = engine_vault(args.data, args.vault, args.vault_key_file,
                            endpoint_url=args.vault_endpoint_url, region=args.vault_region)
        vault = spec.open()
    except VaultError as error:
        print(f"tablekeeper engine: {error}", file=sys.stderr)
        return 2
    options = ServerOptions(
        data_dir=Path(args.data),
        host=args.host,
        port=args.port,
        auth=args.auth,
        credentials_file=Path(args.credentials) if args.credentials else None,
        region=args.region,
        durability=Durability(args.durability),
        ttl_interval=args.ttl_interval,
        extensions=(backup_extension(vault, args.pitr_interval, spec),),
    )
    return run(options)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text}")
    return value


def _add_engine(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("engine", help="run the DynamoDB-compatible engine")
    p.add_argument("--data", default="./data", help="data directory (default ./data)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--auth", choices=("sigv4", "none"), default=None,
                   help="request authentication (default: none on loopback, sigv4 otherwise)")
    p.add_argument("--credentials", help="SigV4 credentials file (ACCESS_KEY_ID:SECRET lines); "
                   "default DATA/credentials, generated on first start")
    p.add_argument("--region", default="us-east-1", help="region named in ARNs (default us-east-1)")
    p.add_argument("--durability", choices=("power-loss", "process-crash"), default="power-loss",
                   help="power-loss (default): every acknowledged write is fsynced; "
                   "process-crash: faster, survives a killed process but not a power cut")
    p.add_argument("--ttl-interval", type=_positive_seconds, default=30.0, metavar="SECONDS",
                   help="how often expired items (TTL) are swept, in seconds; fractions allowed "
                   "(default 30, so items go within a minute of expiry)")
    p.add_argument("--vault", metavar="URL", default=None,
                   help="where backups go: file:///absolute/path or s3://bucket/prefix "
                   "(default: the folder DATA/vault)")
    p.add_argument("--vault-key-file", metavar="FILE", default=os.environ.get("TABLEKEEPER_VAULT_KEY_FILE"),
                   help="the vault key file (default $TABLEKEEPER_VAULT_KEY_FILE; with the default "
                   "vault, DATA/vault.key, generated on first start)")
    p.add_argument("--vault-endpoint-url", default=None,
                   help="S3 endpoint of an s3:// vault (default: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)")
    p.add_argument("--vault-region", default=None,
                   help="S3 region of an s3:// vault (default: AWS_REGION / AWS_DEFAULT_REGION)")
    p.add_argument("--pitr-interval", type=_positive_seconds, default=1.0, metavar="SECONDS",
                   help="how often the change log of PITR-enabled tables is shipped to the vault "
                   "(default 1)")
    p.set_defaults(func=_engine_command)


def _add_bench(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    try:
        from tablekeeper import bench
    except ImportError:
        return
    p = sub.add_parser("bench", help="benchmark any DynamoDB-compatible endpoint")
    bench.add_arguments(p)
    p.set_defaults(func=lambda args: bench.run(args))


def _add_backup(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from tablekeeper.vault.cli import add_backup_commands, add_restore_command
    from tablekeeper.vault.pitr_cli import add_pitr_commands

    add_backup_commands(sub)
    add_restore_command(sub)
    add_pitr_commands(sub)


def _operator_command(args: argparse.Namespace) -> int:
    from tablekeeper.controllers.operator import run

    return run(operator_config(args))


def operator_config(args: argparse.Namespace) -> OperatorConfig:
    """The operator's settings from ``tablekeeper operator``'s arguments."""
    from tablekeeper.controllers.builders import DEFAULT_ENGINE_IMAGE, EngineSettings
    from tablekeeper.controllers.operator import OperatorConfig

    return OperatorConfig(
        namespaces=tuple(args.namespace or ()),
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        engine=EngineSettings(image=args.engine_image or DEFAULT_ENGINE_IMAGE),
        status_interval=args.status_interval,
        retry_delay=args.retry_delay,
        vault_interval=args.vault_interval,
        peering=args.peering,
    )


def _add_operator(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # Nothing of the operator is imported here: every command builds this parser, and the
    # engine must start in well under a second.
    p = sub.add_parser("operator", help="run the Kubernetes operator (kopf)",
                       description="Run the operator: Tables become engines. It finds an engine at "
                       "http://<table>-engine.<namespace>.svc:8000, or where $TABLEKEEPER_ENGINE_ENDPOINTS "
                       '(JSON, {"namespace/table": "http://host:port"}) says.')
    p.add_argument("--namespace", action="append", metavar="NS",
                   help="watch this namespace (repeatable; globs allowed; default: all namespaces)")
    p.add_argument("--liveness-port", type=int, default=8080,
                   help="port of the liveness endpoint http://0.0.0.0:PORT/healthz (default 8080)")
    p.add_argument("--metrics-port", type=int, default=9090,
                   help="port of the Prometheus endpoint /metrics (default 9090; 0 turns it off)")
    p.add_argument("--engine-image", default=os.environ.get("TABLEKEEPER_ENGINE_IMAGE"),
                   help="the engine's container image (default $TABLEKEEPER_ENGINE_IMAGE, else the "
                   "image of this release)")
    p.add_argument("--status-interval", type=_positive_seconds, default=30.0, metavar="SECONDS",
                   help="how often each Table's status is refreshed from its engine (default 30)")
    p.add_argument("--retry-delay", type=_positive_seconds, default=10.0, metavar="SECONDS",
                   help="how long to wait before trying an engine that did not answer again (default 10)")
    p.add_argument("--vault-interval", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="how often each BackupVault's store is probed again (default: ten status intervals)")
    p.add_argument("--peering", default=None, metavar="NAME",
                   help="kopf peering object to coordinate replicas with (default: standalone)")
    p.set_defaults(func=_operator_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tablekeeper", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_engine(sub)
    _add_backup(sub)
    _add_bench(sub)
    _add_operator(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
