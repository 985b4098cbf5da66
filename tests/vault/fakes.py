"""MemoryStore: an in-memory ObjectStore (a fake, named as one) for the backup tests.

It keeps the store contract of ``tablekeeper.vault.store`` -- atomic puts,
``if_absent``, sorted listing by prefix, missing deletes are fine -- and adds
what tests need: a clock for modification times, counters of bytes and
objects written, and ways to damage objects.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tablekeeper.vault.errors import ObjectExists, ObjectNotFound, StoreFull
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.store import ObjectInfo, ObjectStore, check_key


@dataclass
class _Object:
    data: bytes
    modified: float


@dataclass
class MemoryStore:
    """A fake ObjectStore in a dict; ``now`` gives modification times (default: a fixed clock)."""

    url: str = "memory://test"
    now: Callable[[], float] = field(default=lambda: 1_700_000_000.0)
    fail_puts_after: int | None = None  # raise StoreFull once this many puts have succeeded
    objects: dict[str, _Object] = field(default_factory=dict)
    bytes_written: int = 0
    puts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        check_key(key, "put", f"{self.url}/")
        with self._lock:
            if self.fail_puts_after is not None and self.puts >= self.fail_puts_after:
                raise StoreFull(f"put {self.url}/{key}: disk full (fake)")
            if if_absent and key in self.objects:
                raise ObjectExists(f"put {self.url}/{key}: already exists")
            self.objects[key] = _Object(bytes(data), self.now())
            self.bytes_written += len(data)
            self.puts += 1

    def get(self, key: str) -> bytes:
        with self._lock:
            found = self.objects.get(key)
        if found is None:
            raise ObjectNotFound(f"get {self.url}/{key}: no such object")
        return found.data

    def head(self, key: str) -> ObjectInfo | None:
        with self._lock:
            found = self.objects.get(key)
        return None if found is None else ObjectInfo(key, len(found.data), found.modified)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            listed = sorted((k, len(o.data), o.modified) for k, o in self.objects.items()
                            if k.startswith(prefix))
        return iter([ObjectInfo(k, size, modified) for k, size, modified in listed])

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    # -- for tests ---------------------------------------------------------

    def keys(self, prefix: str = "") -> builtins.list[str]:
        return [info.key for info in self.list(prefix)]

    def replace(self, key: str, data: bytes) -> None:
        """Overwrite an object's bytes behind the vault's back (keeps its mtime)."""
        with self._lock:
            self.objects[key].data = data


# -- test data and stores ------------------------------------------------------


class Clock:
    """A settable clock for MemoryStore modification times and writer deadlines."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, clock: Clock | None = None
) -> ObjectStore:
    """A fresh store of one backend: "memory" (this fake), "folder" (tmp_path) or "s3" (moto)."""
    if kind == "memory":
        return MemoryStore(now=clock or Clock())
    if kind == "folder":
        return FolderStore(tmp_path / "vault")
    moto = request.getfixturevalue("moto_s3")
    store: ObjectStore = moto.store()
    return store


def definition_json(name: str = "orders", table_id: str = "0f0e0d0c-0000-4000-8000-000000000001") -> str:
    """A real TableDefinition's JSON (hash and range key, one GSI), as the engine would give it."""
    from tablekeeper.engine.keys import KeyAttribute, KeySchema
    from tablekeeper.engine.tables import IndexDefinition, Projection, TableDefinition

    table = TableDefinition(
        name=name,
        table_id=table_id,
        key_schema=KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "N")),
        attribute_definitions=(("gk", "S"), ("pk", "S"), ("sk", "N")),
        created=1_690_000_000.5,
        indexes=(
            IndexDefinition("by-gk", KeySchema(KeyAttribute("gk", "S"), None), Projection(), local=False),
        ),
        tags=(("team", "storage"),),
    )
    return table.to_json()


def item_bytes(i: int, version: int = 0, size: int = 200) -> bytes:
    """A stored item (wire JSON, as engine.dump_item makes) of about ``size`` bytes."""
    import hashlib

    import orjson

    filler = hashlib.sha256(b"%d/%d" % (i, version)).hexdigest()
    body = (filler * (size // 64 + 1))[: max(0, size - 90)]
    wire = {"pk": {"S": f"user#{i:09d}"}, "sk": {"N": str(version)}, "gk": {"S": f"g{i % 97}"},
            "data": {"S": body}}
    return memoryview(orjson.dumps(wire)).tobytes()  # orjson's own bytes keep a 4 KB buffer


def item_key(i: int) -> bytes:
    """A stored key: 4 hash-prefix bytes then the key, as engine.keys makes, ascending in ``i``."""
    return b"%08x" % (i * 2654435761 % (1 << 32)) + b"\x03user#%09d\x00\x01" % i


def make_items(count: int, version: int = 0, size: int = 200) -> list[tuple[bytes, bytes]]:
    """``count`` items sorted by stored key, as a snapshot's range scan yields them."""
    return sorted((item_key(i), item_bytes(i, version, size)) for i in range(count))
