#!/usr/bin/env python3
"""How incremental backups are: bytes written by the next backup after 1% of the items change.

    hack/bench_incremental.py [--items 1000000] [--item-bytes 200] [--change 0.01] [--dir D] [--json]

The issue's target: after 1% of a 1M-item table's ~200-byte items change,
the next backup writes under 10% of the first one's bytes.  This script takes
a full backup of ``--items`` synthetic items (hack/bench_vault.py's), then,
each against that first backup, backups after

  update    ``--change`` of the items, chosen at random, get a new version
  insert    ``--change`` as many new items, at random places in the key order
  delete    ``--change`` of the items, chosen at random, are gone

and reports each one's written bytes (packs, index and map) as a share of
the first backup's.  Everything runs on a FolderStore in /tmp (removed at
the end unless ``--dir`` is given).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vault import make_item, make_items, write_backup
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.folder import FolderStore


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--item-bytes", type=int, default=200)
    parser.add_argument("--change", type=float, default=0.01, help="share of items changed (default 0.01)")
    parser.add_argument("--dir", help="where the FolderStore goes (default: a new folder in /tmp, removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = random.Random(42)
    base = make_items(args.items, args.item_bytes)
    changed = max(1, int(args.items * args.change))
    picks = sorted(rng.sample(range(args.items), changed))

    updated = list(base)
    for position in picks:
        key, _ = updated[position]
        _, item = make_item(position, 1, args.item_bytes, rng)
        updated[position] = (key, item)
    inserted = sorted(base + [make_item(args.items + n, 0, args.item_bytes, rng) for n in range(changed)])
    dropped = set(picks)
    deleted = [pair for position, pair in enumerate(base) if position not in dropped]

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tk-bench-incr-", dir="/tmp"))
    results: dict[str, dict[str, float]] = {}
    try:
        vault = Vault(FolderStore(folder / "vault"), VaultKey.generate())
        now = time.time()
        first = write_backup(vault, base, now)
        results["first"] = {"written_bytes": first.written_bytes, "ratio": 1.0, "chunks": first.chunk_count,
                            "new_chunks": first.new_chunk_count, "map_bytes": first.map_size}
        for offset, (name, items) in enumerate((("update", updated), ("insert", inserted),
                                                 ("delete", deleted)), start=1):
            manifest = write_backup(vault, items, now + offset)
            results[name] = {"written_bytes": manifest.written_bytes,
                             "ratio": round(manifest.written_bytes / first.written_bytes, 4),
                             "chunks": manifest.chunk_count, "new_chunks": manifest.new_chunk_count,
                             "map_bytes": manifest.map_size}
            vault.delete_backup(manifest.backup_id)  # the next scenario compares against the first alone
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

    if args.json:
        print(json.dumps({"items": args.items, "change": args.change, **results}, indent=2))
        return 0
    print(f"{args.items:,} items of ~{args.item_bytes} bytes; {changed:,} ({args.change:.1%}) changed")
    print("| backup | written | share of the first | new chunks / chunks | of which its map |")
    print("|---|---:|---:|---:|---:|")
    for name, row in results.items():
        print(f"| {name} | {row['written_bytes'] / 1e6:.2f} MB | {row['ratio']:.2%} | "
              f"{row['new_chunks']:,.0f} / {row['chunks']:,.0f} | {row['map_bytes'] / 1e3:.1f} kB |")
    return 0 if results["update"]["ratio"] < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
