"""Every DynamoDB operation the engine serves, by wire name."""

from __future__ import annotations

from collections.abc import Mapping

from tablekeeper.engine.operations import tables
from tablekeeper.engine.operations.base import Operation

OPERATIONS: Mapping[str, Operation] = {
    **tables.OPERATIONS,
}

# DynamoDB Streams (DynamoDBStreams_20120810.*), served on the same port.
STREAMS_OPERATIONS: Mapping[str, Operation] = {}
