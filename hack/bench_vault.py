#!/usr/bin/env python3
"""Backup and restore throughput of the vault code alone: BackupWriter and read_items on a FolderStore.

    hack/bench_vault.py [--items 1000000] [--item-bytes 200] [--dir /tmp/...] [--json]

Makes ``--items`` synthetic stored items of about ``--item-bytes`` bytes
(wire JSON as the engine stores it, keys encoded as the engine encodes them:
``pk`` S, ``sk`` N, a status, an amount, a timestamp and a random note),
then, on a fresh FolderStore in ``--dir`` (default: a new folder in /tmp,
removed at the end):

  backup      a first, full BackupWriter pass: items/s and MB/s of items in
  again       an identical second backup: every chunk is found in the vault
  read        read_items of the first backup, every item: items/s and MB/s
  verify      vault.verify of the first backup

No engine is involved: this is the ceiling the engine's CreateBackup and
restore can reach (the issue's goal for restore: 50,000 items/s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.format import BackupManifest, new_backup_id

SCHEMA = KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "N"))
STATUSES = ("PENDING", "PAID", "SHIPPED", "DELIVERED", "RETURNED")


def definition_json() -> str:
    return TableDefinition(
        name="bench", table_id="00000000-0000-4000-8000-00000000bench"[:36], key_schema=SCHEMA,
        attribute_definitions=(("pk", "S"), ("sk", "N")), created=time.time(),
    ).to_json()


def make_item(i: int, version: int, item_bytes: int, rng: random.Random) -> tuple[bytes, bytes]:
    """One stored (key, item) pair of about ``item_bytes`` bytes; ``version`` changes the item only."""
    pk = f"customer#{i // 4:08d}"
    sk = Decimal(1_700_000_000 + (i % 4) * 86_400)
    key = SCHEMA.encode({"pk": pk, "sk": sk})
    wire = {
        "pk": {"S": pk},
        "sk": {"N": str(sk)},
        "status": {"S": STATUSES[(i + version) % len(STATUSES)]},
        "amount": {"N": f"{rng.randrange(1, 100_000) / 100:.2f}"},
        "updated": {"N": str(1_700_000_000 + version * 3600 + i % 3600)},
        "note": {"S": ""},
    }
    fixed = len(orjson.dumps(wire))
    room = max(0, item_bytes - fixed)
    wire["note"]["S"] = rng.randbytes(room // 2 + 1).hex()[:room]
    # orjson's bytes keep a 4 KB buffer: copy them to their size, or 1M items take 4 GB.
    return key, memoryview(orjson.dumps(wire)).tobytes()


def make_items(count: int, item_bytes: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    return sorted(make_item(i, 0, item_bytes, rng) for i in range(count))


def write_backup(vault: Vault, items: list[tuple[bytes, bytes]], at: float) -> BackupManifest:
    with BackupWriter(vault, new_backup_id(at), definition_json(), 1, at) as writer:
        add = writer.add
        for key, item in items:
            add(key, item)
        return writer.finish()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--dir", help="where the FolderStore goes (default: a new folder in /tmp, removed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    items, made = timed(lambda: make_items(args.items, args.item_bytes))
    raw = sum(len(k) + len(v) for k, v in items)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tk-bench-vault-", dir="/tmp"))
    try:
        vault = Vault(FolderStore(folder / "vault"), VaultKey.generate())
        first, backup_s = timed(lambda: write_backup(vault, items, time.time()))
        second, again_s = timed(lambda: write_backup(vault, items, time.time() + 1))
        count, read_s = timed(lambda: sum(1 for _ in vault.read_items(first.backup_id)))
        report, verify_s = timed(lambda: vault.verify(first.backup_id))
        assert count == args.items and report.ok, report.problems
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

    mb = raw / 1e6
    results = {
        "items": args.items,
        "item_and_key_bytes": raw,
        "avg_item_bytes": round(raw / args.items, 1),
        "stored_bytes": first.written_bytes,
        "packs": len(first.packs),
        "chunks": first.chunk_count,
        "backup": {"seconds": round(backup_s, 2), "items_per_s": round(args.items / backup_s),
                   "mb_per_s": round(mb / backup_s, 1)},
        "again": {"seconds": round(again_s, 2), "items_per_s": round(args.items / again_s),
                  "mb_per_s": round(mb / again_s, 1), "written_bytes": second.written_bytes},
        "read": {"seconds": round(read_s, 2), "items_per_s": round(args.items / read_s),
                 "mb_per_s": round(mb / read_s, 1)},
        "verify": {"seconds": round(verify_s, 2), "mb_per_s": round(mb / verify_s, 1)},
        "made_items_s": round(made, 1),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.items:,} items, {raw / args.items:.0f} bytes each with key ({mb:.0f} MB); stored "
          f"{first.written_bytes / 1e6:.1f} MB in {len(first.packs)} packs, {first.chunk_count:,} chunks")
    print("| pass | seconds | items/s | MB/s |")
    print("|---|---:|---:|---:|")
    for name in ("backup", "again", "read", "verify"):
        row = results[name]
        items_s = f"{row['items_per_s']:,}" if "items_per_s" in row else ""
        print(f"| {name} | {row['seconds']} | {items_s} | {row['mb_per_s']} |")
    print(f"(the identical second backup wrote {second.written_bytes:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
