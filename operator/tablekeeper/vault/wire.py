"""Wire pieces the vault's DynamoDB operations share: timestamps, restore overrides, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import InternalServerError, SerializationException
from tablekeeper.engine.operations.base import WireResult
from tablekeeper.engine.operations.index_specs import parse_index_specs
from tablekeeper.engine.operations.tables import parse_sse, parse_throughput
from tablekeeper.engine.shapes import Members
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.restore import Overrides


def parse_time(m: Members, name: str) -> float | None:
    value = m.body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SerializationException(f"Unexpected value type for member '{name}': expected Timestamp")
    return float(value)


def parse_overrides(m: Members) -> Overrides:
    """The overrides RestoreTableFromBackup and RestoreTableToPointInTime share."""
    billing = m.string("BillingModeOverride", enum=("PROVISIONED", "PAY_PER_REQUEST"))
    global_indexes = parse_index_specs(m, "GlobalSecondaryIndexOverride")
    local_indexes = parse_index_specs(m, "LocalSecondaryIndexOverride")
    throughput_wire = m.mapping("ProvisionedThroughputOverride")
    throughput = parse_throughput(m, "ProvisionedThroughputOverride", throughput_wire)
    sse_wire = m.mapping("SSESpecificationOverride")
    m.mapping("OnDemandThroughputOverride")  # accepted; on-demand limits are not enforced
    sse = None if sse_wire is None else parse_sse(sse_wire)
    return Overrides(billing, global_indexes, local_indexes, throughput, sse)


Execute = Callable[[Engine, Any], Awaitable[WireResult]]


def vault_errors(execute: Execute) -> Execute:
    """A vault that cannot be read (unreachable, wrong key, damaged) is the service's failure:
    InternalServerError, with the vault's own "verb object: cause" rather than a generic text."""

    async def guarded(engine: Engine, request: Any) -> WireResult:
        try:
            return await execute(engine, request)
        except VaultError as error:
            raise InternalServerError(str(error)) from error

    return guarded
