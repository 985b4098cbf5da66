"""Every DynamoDB operation the engine serves, by wire name."""

from __future__ import annotations

from collections.abc import Mapping

from tablekeeper.engine.operations import (
    batch,
    items,
    query,
    streams,
    table_admin,
    tables,
    tags,
    transactions,
    ttl,
)
from tablekeeper.engine.operations.base import Operation

OPERATIONS: Mapping[str, Operation] = {
    **tables.OPERATIONS,
    **items.OPERATIONS,
    **table_admin.OPERATIONS,
    **tags.OPERATIONS,
    **batch.OPERATIONS,
    **transactions.OPERATIONS,
    **query.OPERATIONS,
    **ttl.OPERATIONS,
}

# DynamoDB Streams (DynamoDBStreams_20120810.*), served on the same port.
STREAMS_OPERATIONS: Mapping[str, Operation] = {**streams.OPERATIONS}
