"""``tablekeeper backup list|describe|verify|delete|gc``: a vault's catalog from a terminal or a script.

Everything here works with nothing but the vault's URL and key file: no
engine, no cluster.  ``--output json`` prints one JSON document on stdout
for scripts; the default is text for people.  Long work (verify) draws a
progress bar on stderr when stderr is a terminal.  Exit codes: 0 done,
1 ``verify`` found problems, 2 the command failed (the message on stderr
reads "verify backup ID: cause").

Wire it into the ``tablekeeper`` parser with ``add_backup_commands(sub)``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from tablekeeper.engine.tables import RestoreSummary, TableDefinition
from tablekeeper.vault.catalog import BackupSummary, Progress, Vault
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.format import BackupManifest
from tablekeeper.vault.snapshot import VaultSpec

KEY_FILE_ENV = "TABLEKEEPER_VAULT_KEY_FILE"


def add_backup_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``backup`` and its subcommands to the ``tablekeeper`` subparsers."""
    backup = sub.add_parser("backup", help="list, inspect, verify and delete backups in a vault")
    commands = backup.add_subparsers(dest="backup_command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="list the backups in a vault, oldest first")
    _vault_options(p)
    p.add_argument("--data", metavar="DIR", default=None,
                   help="also list the backups an engine on this data directory is writing or failed "
                   "to write (they are not in the vault)")
    p.set_defaults(func=_run(_list))

    p = commands.add_parser("describe", help="show one backup: table, definition, counts, sizes")
    _vault_options(p)
    p.add_argument("backup_id", metavar="BACKUP_ID")
    p.set_defaults(func=_run(_describe))

    p = commands.add_parser("verify", help="read and check every object a backup needs; exit 1 on problems")
    _vault_options(p)
    p.add_argument("backup_id", metavar="BACKUP_ID")
    p.set_defaults(func=_run(_verify))

    p = commands.add_parser("delete", help="delete a backup (its data goes at the next gc after the grace)")
    _vault_options(p)
    p.add_argument("backup_id", metavar="BACKUP_ID")
    p.set_defaults(func=_run(_delete))

    p = commands.add_parser("gc", help="remove data no backup needs (older than the grace period)")
    _vault_options(p)
    p.add_argument("--grace", type=_hours, default=None, metavar="HOURS",
                   help="keep unreferenced data younger than this (default 24; never less than the "
                   "grace the vault's backup writers use)")
    p.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    p.set_defaults(func=_run(_gc))


def _vault_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vault", required=True, metavar="URL",
                   help="the vault: file:///absolute/path or s3://bucket/prefix")
    p.add_argument("--vault-key-file", metavar="FILE", default=os.environ.get(KEY_FILE_ENV),
                   help=f"the vault key file (default ${KEY_FILE_ENV})")
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: AWS_ENDPOINT_URL_S3 / "
                   "AWS_ENDPOINT_URL, else AWS)")
    p.add_argument("--region", default=None, help="S3 region (default: AWS_REGION / AWS_DEFAULT_REGION)")
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text}") from None
    if not 0 < hours < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 hours: {text}")
    return hours * 3600


def open_vault(args: argparse.Namespace) -> Vault:
    from tablekeeper.vault.crypto import VaultKey
    from tablekeeper.vault.store import open_store

    if not args.vault_key_file:
        raise VaultError(f"open vault {args.vault}: no key: give --vault-key-file or set ${KEY_FILE_ENV}")
    key = VaultKey.load(args.vault_key_file)
    store = open_store(args.vault, endpoint_url=args.endpoint_url, region=args.region)
    return Vault(store, key)


Command = Callable[[argparse.Namespace, Vault, TextIO], int]


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args, open_vault(args), sys.stdout)
        except VaultError as error:
            print(f"tablekeeper backup {args.backup_command}: {error}", file=sys.stderr)
            return 2

    return run


# -- commands ------------------------------------------------------------


def _list(args: argparse.Namespace, vault: Vault, out: TextIO) -> int:
    backups = vault.list_backups()
    if args.data:
        backups = sorted([*backups, *_pending(args.data)], key=lambda b: (b.created, b.backup_id))
    if args.output == "json":
        _json(out, {"Vault": vault.url, "Backups": [b.to_json() for b in backups]})
        return 0
    rows: list[tuple[str, ...]] = [
        ("BACKUP ID", "CREATED (UTC)", "TABLE", "NAME", "TYPE", "ITEMS", "SIZE", "STORED", "STATUS")
    ]
    for b in backups:
        rows.append((b.backup_id, _when(b.created), b.table_name, b.name, b.backup_type, f"{b.item_count:,}",
                     _size(b.item_bytes), _size(b.stored_bytes), b.status))
    _table(out, rows)
    for b in backups:
        if b.problem:
            print(f"{b.backup_id}: {b.problem}", file=out)
    if not backups:
        print(f"no backups in {vault.url}", file=out)
    return 0


def _pending(data_dir: str) -> list[BackupSummary]:
    from pathlib import Path

    from tablekeeper.engine.storage.base import StorageError
    from tablekeeper.engine.tables import TableDefinition
    from tablekeeper.vault.records import read_pending

    try:
        records = read_pending(Path(data_dir))
    except StorageError as error:
        raise VaultError(str(error)) from error
    summaries = []
    for record in records:
        table = TableDefinition.from_json(record.definition)
        summaries.append(BackupSummary(
            record.backup_id, record.status, record.created, name=record.name,
            backup_type=record.backup_type, table_name=table.name, table_arn=table.arn,
            table_id=table.table_id, sequence=record.sequence, item_count=record.item_count,
            problem=record.reason or None,
        ))
    return summaries


def describe_json(manifest: BackupManifest) -> dict[str, Any]:
    """A backup as ``describe --output json`` shows it."""
    return {
        "BackupId": manifest.backup_id,
        "BackupArn": manifest.backup_arn,
        "BackupName": manifest.name,
        "BackupType": manifest.backup_type,
        "Status": "AVAILABLE",
        "Created": manifest.created,
        "CreatedUtc": _when(manifest.created),
        "TableName": manifest.table_name,
        "TableArn": manifest.table_arn,
        "TableId": manifest.table_id,
        "Sequence": manifest.sequence,
        "ItemCount": manifest.item_count,
        "ItemBytes": manifest.item_bytes,
        "KeyBytes": manifest.key_bytes,
        "ChunkCount": manifest.chunk_count,
        "NewChunkCount": manifest.new_chunk_count,
        "PackCount": len(manifest.packs),
        "StoredBytes": manifest.stored_bytes,
        "WrittenBytes": manifest.written_bytes,
        "Annotations": dict(manifest.annotations),
        "TableDefinition": json.loads(manifest.definition),
    }


def _describe(args: argparse.Namespace, vault: Vault, out: TextIO) -> int:
    manifest = vault.describe(args.backup_id)
    described = describe_json(manifest)
    if args.output == "json":
        _json(out, described)
        return 0
    definition = described.pop("TableDefinition")
    for name, value in described.items():
        if name in ("ItemBytes", "KeyBytes", "StoredBytes", "WrittenBytes"):
            value = f"{_size(value)} ({value:,} bytes)"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        print(f"{name + ':':<16} {value}", file=out)
    keys = " ".join(f"{name} ({kind})" for name, kind in definition.get("key_schema", []))
    print(f"{'KeySchema:':<16} {keys}", file=out)
    for index in definition.get("indexes", []):
        kind = "LSI" if index.get("local") else "GSI"
        index_keys = " ".join(f"{name} ({k})" for name, k in index.get("key_schema", []))
        print(f"{kind + ':':<16} {index.get('name')}: {index_keys}", file=out)
    return 0


def _verify(args: argparse.Namespace, vault: Vault, out: TextIO) -> int:
    with ProgressBar(f"verify {args.backup_id}") as bar:
        report = vault.verify(args.backup_id, bar.update)
    if args.output == "json":
        _json(out, report.to_json())
    else:
        state = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"backup {report.backup_id}: {state}: {report.objects_checked} objects, "
              f"{_size(report.bytes_read)} read, {report.item_count:,} items "
              f"in {report.chunk_count:,} chunks", file=out)
        for problem in report.problems:
            print(f"  {problem.object_key}: {problem.message}", file=out)
    return 0 if report.ok else 1


def _delete(args: argparse.Namespace, vault: Vault, out: TextIO) -> int:
    vault.delete_backup(args.backup_id)
    if args.output == "json":
        _json(out, {"BackupId": args.backup_id, "Status": "DELETED"})
    else:
        print(f"deleted backup {args.backup_id}; its data goes at the first gc after "
              f"{vault.grace / 3600:g} hours", file=out)
    return 0


def _gc(args: argparse.Namespace, vault: Vault, out: TextIO) -> int:
    from tablekeeper.vault.gc import collect_garbage

    report = collect_garbage(vault, time.time(), args.grace, dry_run=args.dry_run)
    plan = report.plan
    if args.output == "json":
        _json(out, {"DryRun": report.dry_run, "Refused": plan.refused, "Delete": list(plan.delete),
                    "ExpiredTombstones": list(plan.expired_tombstones), "BytesFreed": plan.bytes_freed,
                    "KeptReferenced": plan.kept_referenced, "KeptYoung": plan.kept_young,
                    "Deleted": report.deleted, "Failed": [list(f) for f in report.failed]})
    elif plan.refused:
        print(f"gc refused: {plan.refused}", file=out)
    else:
        verb = "would delete" if report.dry_run else "deleted"
        count = len(plan.delete) if report.dry_run else report.deleted
        print(f"{verb} {count} objects ({_size(plan.bytes_freed)}); kept {plan.kept_referenced} in use "
              f"and {plan.kept_young} younger than the grace", file=out)
        for key, error in report.failed:
            print(f"  could not delete {key}: {error}", file=out)
    return 2 if plan.refused or report.failed else 0


# -- output --------------------------------------------------------------


def _json(out: TextIO, value: Any) -> None:
    json.dump(value, out, indent=2, sort_keys=False)
    out.write("\n")


def _table(out: TextIO, rows: list[tuple[str, ...]]) -> None:
    if len(rows) == 1:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip(), file=out)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal, at most 10 times a second."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.drawn = 0.0

    def update(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < 0.1 and progress.done != progress.total):
            return
        self.drawn = now
        rate = progress.done / max(now - self.started, 1e-6)
        amount = _size(progress.done) if progress.unit == "bytes" else f"{progress.done:,} {progress.unit}"
        speed = f"{_size(rate)}/s" if progress.unit == "bytes" else f"{rate:,.0f}/s"
        if progress.total:
            filled = int(self.WIDTH * min(progress.done / progress.total, 1.0))
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"{self.label} [{bar}] {100 * progress.done / progress.total:5.1f}% {amount} {speed}"
        else:
            line = f"{self.label} {amount} {speed}"
        self.stream.write("\r" + line[:200] + "\x1b[K")
        self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


# -- the engine's vault and `tablekeeper restore` --------------------------------------


DEFAULT_VAULT = "vault"  # DATA/vault: the embedded default's folder vault
DEFAULT_KEY_FILE = "vault.key"  # DATA/vault.key: its key, beside the vault, never inside it


def engine_vault(
    data_dir: str | os.PathLike[str],
    url: str | None,
    key_file: str | None,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> VaultSpec:
    """The vault an engine backs up into: ``url``, or the embedded default.

    With no URL the vault is the folder ``DATA/vault``, and its key, unless a
    key file is given, ``DATA/vault.key``, generated (mode 0600) on first use:
    the log says where and asks to keep a copy elsewhere.
    """
    import logging

    from tablekeeper.vault.crypto import VaultKey

    data = os.path.abspath(data_dir)
    if url is None:
        url = "file://" + os.path.join(data, DEFAULT_VAULT)
        if key_file is None:
            key_file = os.path.join(data, DEFAULT_KEY_FILE)
            if not os.path.exists(key_file):
                os.makedirs(data, mode=0o700, exist_ok=True)
                generated = VaultKey.generate()
                generated.save(key_file)
                logging.getLogger("tablekeeper.engine").warning(
                    "generated the vault key %s (key id %s): without it no backup can be read; "
                    "keep a copy somewhere other than this machine", key_file, generated.key_id,
                )
    if key_file is None:
        raise VaultError(f"open vault {url}: no key: give --vault-key-file or set ${KEY_FILE_ENV}")
    return VaultSpec(url, os.path.abspath(key_file), endpoint_url, region)


def add_restore_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("restore", help="restore a backup from a vault into a table of a data directory "
                       "(with no engine running on it)")
    _vault_options(p)
    p.add_argument("--backup", required=True, metavar="BACKUP_ID", help="the backup to restore")
    p.add_argument("--data", required=True, metavar="DIR", help="the engine's data directory")
    p.add_argument("--table", required=True, metavar="NAME", help="the new table's name")
    p.set_defaults(func=_restore_command)


def _restore_command(args: argparse.Namespace) -> int:
    import asyncio

    try:
        vault = open_vault(args)
        result = asyncio.run(_restore(args, vault))
    except VaultError as error:
        print(f"tablekeeper restore: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the engine's own errors: a taken name, a locked directory
        print(f"tablekeeper restore: restore backup {args.backup}: {error}", file=sys.stderr)
        return 2
    if args.output == "json":
        _json(sys.stdout, result)
    else:
        print(f"restored backup {args.backup} into table {result['TableName']} "
              f"({result['ItemCount']:,} items) in {args.data}")
    return 0


async def _restore(args: argparse.Namespace, vault: Vault) -> dict[str, Any]:
    from tablekeeper.engine.tables import RestoreSummary, TableDefinition
    from tablekeeper.vault.restore import backup_items

    manifest = vault.load_manifest(args.backup, "restore")
    source = TableDefinition.from_json(manifest.definition)
    summary = RestoreSummary(time.time(), True, source_backup_arn=manifest.backup_arn,
                             source_table_arn=source.arn)
    return await restore_offline(args.data, source, args.table, summary,
                                 lambda table: backup_items(vault, manifest),
                                 f"restore backup {manifest.backup_id}", manifest.item_count)


async def restore_offline(
    data_dir: str,
    source: TableDefinition,
    target_name: str,
    summary: RestoreSummary,
    items: Callable[[TableDefinition], Callable[[], Iterator[tuple[bytes, bytes]]]],
    what: str,
    expected_items: int | None = None,
) -> dict[str, Any]:
    """Restore into a data directory no engine is using: the new table, filled, then described.

    ``items(table)`` gives the item source for the planned table (a backup's, or a PITR
    replay).  Every failure is a ``VaultError`` reading "``what``: cause".
    """
    from pathlib import Path

    from tablekeeper.engine.engine import Engine, EngineConfig
    from tablekeeper.engine.errors import DynamoDBError
    from tablekeeper.engine.loading import TableExists, begin_restore
    from tablekeeper.engine.operations.tables import describe
    from tablekeeper.engine.storage.base import StorageError
    from tablekeeper.vault.restore import Overrides, plan_target, run_restore

    try:
        engine = Engine(EngineConfig(Path(data_dir)))
    except StorageError as error:
        raise VaultError(f"{what}: {error}") from None
    try:
        try:
            target = plan_target(source, target_name, Overrides(), now=time.time(),
                                 region=engine.config.region, account=engine.config.account)
            table = begin_restore(engine, target, summary)
        except TableExists:
            raise VaultError(f"{what}: table {target_name} already exists") from None
        except DynamoDBError as error:
            raise VaultError(f"{what}: {error}") from None
        with ProgressBar(what) as bar:
            def progress(done: int) -> None:
                bar.update(Progress(done, None, "rows"))

            done = await run_restore(engine, table, items(table), what, expected_items=expected_items,
                                     progress=progress)
        return describe(engine, done)
    finally:
        engine.close()
