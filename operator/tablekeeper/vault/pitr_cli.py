"""``tablekeeper pitr describe|restore``: point-in-time recovery from a vault, with no engine running.

``describe`` lists the tables whose change log is archived in a vault, with
their window; ``restore`` writes a table as of a time into a data directory
no engine is using (start an engine on it afterwards).  Without an engine,
the latest restorable time is the newest the archive itself proves (its
newest record, base or deletion); a running engine may know a later one.
Exit codes: 0 done, 2 the command failed ("verb object: cause" on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.cli import _json, _table, _vault_options, _when, open_vault, restore_offline
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.pitr_archive import ArchivedTable, PitrArchive
from tablekeeper.vault.pitr_plan import earliest_restorable


def add_pitr_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pitr = sub.add_parser("pitr", help="point-in-time recovery from a vault, with no engine running")
    commands = pitr.add_subparsers(dest="pitr_command", required=True, metavar="COMMAND")

    p = commands.add_parser("describe", help="the tables archived in a vault and their restorable window")
    _vault_options(p)
    p.set_defaults(func=_run(_describe))

    p = commands.add_parser("restore", help="restore a table as of a time into a data directory")
    _vault_options(p)
    p.add_argument("--source", required=True, metavar="TABLE",
                   help="the archived table: its name, ARN or table id (see `pitr describe`)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--time", metavar="WHEN", help="ISO 8601 time (UTC if no zone) or epoch seconds")
    when.add_argument("--latest", action="store_true", help="the latest time the archive proves")
    p.add_argument("--data", required=True, metavar="DIR", help="the engine data directory to restore into")
    p.add_argument("--table", required=True, metavar="NAME", help="the new table's name")
    p.set_defaults(func=_run(_restore))


def _run(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args, open_vault(args)))
        except VaultError as error:
            print(f"tablekeeper pitr {args.pitr_command}: {error}", file=sys.stderr)
            return 2

    return run


def _window(table: ArchivedTable, now_ms: int) -> tuple[int | None, int | None]:
    latest = table.latest_ms
    if table.settings is None or latest is None:
        return None, latest
    earliest = earliest_restorable(table.settings.window_start_ms, table.settings.period_days, now_ms)
    return min(earliest, latest), latest


def _summary(table_id: str, table: ArchivedTable, now_ms: int) -> dict[str, Any]:
    settings = table.settings
    earliest, latest = _window(table, now_ms)
    return {
        "TableId": table_id,
        "TableName": settings.table_name if settings else None,
        "TableArn": settings.table_arn if settings else None,
        "RecoveryPeriodInDays": settings.period_days if settings else None,
        "Deleted": None if settings is None or settings.deleted_ms is None else settings.deleted_ms / 1000,
        "EarliestRestorableDateTime": None if earliest is None else earliest / 1000,
        "LatestRestorableDateTime": None if latest is None else latest / 1000,
        "Bases": len(table.bases),
        "Segments": len(table.segments),
    }


def _describe(args: argparse.Namespace, vault: Vault) -> int:
    archive = PitrArchive(vault)
    now_ms = int(time.time() * 1000)
    tables = [_summary(table_id, archive.describe(table_id), now_ms) for table_id in archive.table_ids()]
    if args.output == "json":
        _json(sys.stdout, {"Vault": vault.url, "Tables": tables})
        return 0
    rows: list[tuple[str, ...]] = [("TABLE ID", "TABLE", "EARLIEST (UTC)", "LATEST (UTC)", "DELETED", "BASES",
                                    "SEGMENTS")]
    for t in tables:
        rows.append((t["TableId"], t["TableName"] or "?", _maybe_when(t["EarliestRestorableDateTime"]),
                     _maybe_when(t["LatestRestorableDateTime"]), _maybe_when(t["Deleted"]),
                     str(t["Bases"]), str(t["Segments"])))
    _table(sys.stdout, rows)
    if not tables:
        print(f"no point-in-time archives in {vault.url}")
    return 0


def _maybe_when(epoch: float | None) -> str:
    return "-" if epoch is None else _when(epoch)


def parse_when(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time (UTC unless it says otherwise) or of epoch seconds."""
    try:
        return int(float(text) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise VaultError(f"read time {text!r}: not ISO 8601 or epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _find(archive: PitrArchive, source: str) -> tuple[str, ArchivedTable]:
    matches = []
    for table_id in archive.table_ids():
        table = archive.describe(table_id)
        names = {table_id}
        if table.settings is not None:
            names |= {table.settings.table_name, table.settings.table_arn}
        if source in names:
            matches.append((table_id, table))
    if not matches:
        raise VaultError(f"restore {source}: no archived table by that name, ARN or id")
    if len(matches) > 1:
        ids = ", ".join(table_id for table_id, _ in matches)
        raise VaultError(f"restore {source}: several archived tables match ({ids}): give the table id")
    return matches[0]


def _restore(args: argparse.Namespace, vault: Vault) -> int:
    archive = PitrArchive(vault)
    table_id, table = _find(archive, args.source)
    earliest, latest = _window(table, int(time.time() * 1000))
    if latest is None or earliest is None:
        raise VaultError(f"restore {args.source}: the archive has no restorable time")
    target_ms = latest if args.latest else parse_when(args.time)
    if not earliest <= target_ms <= latest:
        raise VaultError(f"restore {args.source}: {target_ms / 1000} is outside the restorable window "
                         f"{_when(earliest / 1000)} to {_when(latest / 1000)} (UTC)")
    result = asyncio.run(_load(args, archive, table_id, target_ms))
    if args.output == "json":
        _json(sys.stdout, result)
    else:
        print(f"restored {args.source} as of {_when(target_ms / 1000)} UTC into table {result['TableName']} "
              f"({result['ItemCount']:,} items) in {args.data}")
    return 0


async def _load(
    args: argparse.Namespace, archive: PitrArchive, table_id: str, target_ms: int
) -> dict[str, Any]:
    from tablekeeper.engine.tables import RestoreSummary, TableDefinition

    what = f"restore {args.source} to {target_ms / 1000}"
    plan, manifest = archive.plan(table_id, target_ms, what)
    source = TableDefinition.from_json(manifest.definition)
    summary = RestoreSummary(target_ms / 1000, True, source_table_arn=source.arn)
    return await restore_offline(args.data, source, args.table, summary,
                                 lambda table: lambda: archive.items(table, plan), what)
