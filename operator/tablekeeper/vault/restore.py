"""Restoring a backup into a new table: the plan (pure) and the run.

What a restored table carries over follows DynamoDB: the key schema,
attribute definitions, local and global secondary indexes, billing mode and
provisioned throughput, encryption settings and table class come from the
backup, each index and setting replaceable by the request's overrides.  Not
carried over, to be set again on the new table: the stream, TTL, tags,
point-in-time recovery and deletion protection.

:func:`plan_target` builds the new table's definition from the backup's
(time and ids are arguments); :func:`run_restore` fills it from the vault
through the engine (``tablekeeper.engine.loading``) and removes it if
anything fails, so a half-restored table never becomes ACTIVE.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.index_builds import prune_attribute_definitions
from tablekeeper.engine.loading import abandon_restore, finish_restore, load_items
from tablekeeper.engine.operations.index_specs import IndexSpec, build_create_indexes
from tablekeeper.engine.tables import TableDefinition, Throughput
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.format import BackupManifest

log = logging.getLogger(__name__)

_INVALID = "One or more parameter values were invalid: "


class Stopped(Exception):
    """A restore gave up because the engine is stopping."""


@dataclass(frozen=True)
class Overrides:
    """What RestoreTableFromBackup / RestoreTableToPointInTime may change (None: keep the backup's)."""

    billing_mode: str | None = None
    global_indexes: tuple[IndexSpec, ...] | None = None
    local_indexes: tuple[IndexSpec, ...] | None = None
    throughput: Throughput | None = None
    sse: tuple[tuple[str, Any], ...] | None = None


def plan_target(
    source: TableDefinition,
    target_name: str,
    overrides: Overrides,
    *,
    now: float,
    region: str,
    account: str,
    table_id: str | None = None,
) -> TableDefinition:
    """The new table's definition: the source's, renamed, overridden, without what is not carried."""
    billing = overrides.billing_mode or source.billing_mode
    throughput = overrides.throughput or source.throughput
    if billing == "PAY_PER_REQUEST":
        if overrides.throughput is not None:
            raise ValidationException(
                _INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified "
                "when BillingMode is PAY_PER_REQUEST"
            )
        throughput = Throughput()
    elif throughput.read == 0 or throughput.write == 0:
        raise ValidationException(
            _INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
            "BillingMode is PROVISIONED"
        )
    else:
        throughput = Throughput(throughput.read, throughput.write)
    indexes = _indexes(source, overrides, billing)
    planned = replace(
        source,
        name=target_name,
        table_id=table_id or uuid.uuid4().hex,
        created=now,
        region=region,
        account=account,
        billing_mode=billing,
        throughput=throughput,
        billing_mode_changed=now if billing == "PAY_PER_REQUEST" else None,
        status="ACTIVE",
        indexes=indexes,
        stream=None,
        past_streams=(),
        sse=source.sse if overrides.sse is None else overrides.sse,
        deletion_protection=False,
        tags=(),
        ttl_attribute=None,
        ttl_enabled=False,
        ttl_status="DISABLED",
        ttl_changed=None,
        restore=None,
    )
    return replace(planned, attribute_definitions=prune_attribute_definitions(planned))


def _indexes(source: TableDefinition, overrides: Overrides, billing: str) -> tuple:  # type: ignore[type-arg]
    """The backup's indexes (as they are now: ACTIVE), with overridden kinds replaced whole."""
    on_demand = billing == "PAY_PER_REQUEST"  # an on-demand table's global indexes have no throughput
    kept = [
        replace(index, status="ACTIVE", backfilling=False,
                throughput=Throughput() if on_demand and not index.local else index.throughput)
        for index in source.indexes
        if index.status != "DELETING"
        and not (index.local and overrides.local_indexes is not None)
        and not (not index.local and overrides.global_indexes is not None)
    ]
    local = overrides.local_indexes or None  # an empty override restores without any
    global_ = overrides.global_indexes or None
    if local is None and global_ is None:
        return tuple(kept)
    used = set(source.key_schema.names)
    for spec in (*(local or ()), *(global_ or ())):
        used.update(spec.key_names)
    definitions = {name: kind for name, kind in source.attribute_definitions if name in used}
    built = build_create_indexes(source.key_schema, definitions, local, global_, billing)
    names = {index.name for index in built}
    clash = [index.name for index in kept if index.name in names]
    if clash:
        raise ValidationException(_INVALID + f"Duplicate index name: {clash[0]}")
    return (*[i for i in kept if i.local], *[i for i in built if i.local],
            *[i for i in kept if not i.local], *[i for i in built if not i.local])


async def run_restore(
    engine: Engine,
    table: TableDefinition,
    items: Callable[[], Iterator[tuple[bytes, bytes]]],
    what: str,
    *,
    expected_items: int | None = None,
    progress: Callable[[int], None] | None = None,
    stopping: threading.Event | None = None,
) -> TableDefinition:
    """Fill ``table`` (registered by ``loading.begin_restore``) with ``items()``; then ACTIVE.

    ``items`` is called on the loading thread, never the event loop's, so it
    may read a vault.  On any failure the table is removed and the error
    re-raised: a backup's objects are verified as they are read (and the
    item stream's digest at its end), so damage fails here, before ACTIVE.
    When ``stopping`` is set (the engine is shutting down) the load gives up
    and the table stays CREATING, to be restored again at the next start.
    """

    def checked() -> Iterator[tuple[bytes, bytes]]:
        for count, pair in enumerate(items()):
            if stopping is not None and count % 1024 == 0 and stopping.is_set():
                raise Stopped(f"{what}: the engine is stopping")
            yield pair

    try:
        stats = await load_items(engine, table, checked(), progress)
        if expected_items is not None and stats.item_count != expected_items:
            raise VaultError(f"{what}: read {stats.item_count} items, expected {expected_items}")
    except (asyncio.CancelledError, Stopped):
        raise  # shutdown: the table stays CREATING and the restore starts again at the next start
    except Exception as error:
        log.error("%s failed, removing table %s: %s", what, table.name, error)
        await abandon_restore(engine, table)
        raise
    done = finish_restore(engine, table)
    log.info("%s: table %s ACTIVE with %d items", what, table.name, stats.item_count)
    return done


def backup_items(vault: Vault, manifest: BackupManifest) -> Callable[[], Iterator[tuple[bytes, bytes]]]:
    """A backup's items, for ``run_restore``."""
    return lambda: vault.read_items(manifest.backup_id)
