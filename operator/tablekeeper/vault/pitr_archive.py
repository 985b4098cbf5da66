"""Reading a PITR archive from a vault: tables, settings, bases, segments, restore plans, items.

Used by the engine's archiver and restores (``vault.pitr``) and by
``tablekeeper pitr`` with no engine running.  Every call here reads the
vault (blocking): call it from a worker thread in an event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import load_item
from tablekeeper.vault import format as fmt
from tablekeeper.vault import pitr_format as pf
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.format import BackupDamaged, BackupManifest, BackupNotFound
from tablekeeper.vault.pitr_plan import Base, RestorePlan, plan_restore


@dataclass(frozen=True)
class ArchivedTable:
    """One table's archive as a listing shows it."""

    settings: pf.Settings | None  # the newest; None if none could be read
    bases: tuple[Base, ...]
    segments: tuple[pf.SegmentRef, ...]

    @property
    def latest_ms(self) -> int | None:
        """The newest time the archive itself proves (the engine may know a later one)."""
        times = [base.taken_ms for base in self.bases] + [segment.last_ms for segment in self.segments]
        if self.settings is not None and self.settings.deleted_ms is not None:
            times.append(self.settings.deleted_ms)
        return max(times) if times else None


class PitrArchive:
    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._manifests: dict[str, BackupManifest] = {}

    def table_ids(self) -> list[str]:
        ids = {info.key[len(pf.PITR):].split("/", 1)[0] for info in self.vault.store.list(pf.PITR)}
        for manifest in self._base_manifests():
            ids.add(manifest.annotations.get(pf.BASE_TABLE_ANNOTATION, ""))
        return sorted(table_id for table_id in ids if table_id)

    def settings(self, table_id: str) -> pf.Settings | None:
        names = sorted(info.key for info in self.vault.store.list(pf.settings_prefix(table_id)))
        if not names:
            return None
        body = self.vault.get_object(names[-1], kind=pf.KIND_SETTINGS, backup_id="", context=None)
        return pf.Settings.from_body(body, names[-1])

    def _base_manifests(self) -> Iterator[BackupManifest]:
        # Manifests never change once written: list the names, read only the ones not seen yet.
        # Without this every archiver pass read every manifest in the vault (slow on S3).
        names = [info.key[len(fmt.MANIFESTS):] for info in self.vault.store.list(fmt.MANIFESTS)]
        for gone in self._manifests.keys() - set(names):
            self._manifests.pop(gone, None)
        for backup_id in names:
            if not fmt.BACKUP_ID.match(backup_id):
                continue
            manifest = self._manifests.get(backup_id)
            if manifest is None:
                try:
                    manifest = self.vault.load_manifest(backup_id, "list")
                except (BackupNotFound, BackupDamaged):
                    continue
                self._manifests[backup_id] = manifest
            if manifest.backup_type == pf.BASE_TYPE:
                yield manifest

    def bases(self, table_id: str) -> list[tuple[Base, BackupManifest]]:
        return [
            (Base(manifest.backup_id, manifest.sequence, int(manifest.created * 1000)), manifest)
            for manifest in self._base_manifests()
            if manifest.annotations.get(pf.BASE_TABLE_ANNOTATION) == table_id
        ]

    def segments(self, table_id: str) -> list[pf.SegmentRef]:
        listed = self.vault.store.list(pf.segments_prefix(table_id))
        refs = (pf.SegmentRef.parse(table_id, info.key) for info in listed)
        return sorted(ref for ref in refs if ref is not None)

    def describe(self, table_id: str) -> ArchivedTable:
        return ArchivedTable(
            self.settings(table_id),
            tuple(base for base, _ in self.bases(table_id)),
            tuple(self.segments(table_id)),
        )

    def plan(self, table_id: str, target_ms: int, what: str) -> tuple[RestorePlan, BackupManifest]:
        """The restore plan to ``target_ms`` and its base's manifest; ``VaultError`` on a gap."""
        bases = self.bases(table_id)
        plan = plan_restore([base for base, _ in bases], self.segments(table_id), target_ms, what)
        manifest = next(m for base, m in bases if base == plan.base)
        return plan, manifest

    def items(self, table: TableDefinition, plan: RestorePlan) -> Iterator[tuple[bytes, bytes]]:
        """The base's items with the log up to the target laid over them."""
        changes = self.replay(table, plan)
        for key, item in self.vault.read_items(plan.base.backup_id):
            if key in changes:
                changed = changes.pop(key)
                if changed is not None:
                    yield key, changed
            else:
                yield key, item
        for key, item in changes.items():
            if item is not None:
                yield key, item

    def replay(self, table: TableDefinition, plan: RestorePlan) -> dict[bytes, bytes | None]:
        """Each key the log changed after the base and up to the target: its final item (None: gone)."""
        changes: dict[bytes, bytes | None] = {}
        schema = table.key_schema
        for ref in plan.segments:
            body = self.vault.get_object(ref.name, kind=pf.KIND_SEGMENT, backup_id="", context=None)
            owner = ref.name[len(pf.PITR):].split("/", 1)[0]
            for record in pf.decode_segment(body, ref, owner):
                if record.sequence <= plan.base.sequence:
                    continue
                if record.timestamp_ms > plan.target_ms:
                    return changes
                changes[schema.encode(load_item(orjson.loads(record.keys)))] = record.new
        return changes

