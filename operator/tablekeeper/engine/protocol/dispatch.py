"""DynamoDB's JSON 1.0 protocol: a thin codec between HTTP and the operations.

Dispatch on ``X-Amz-Target``, decode the JSON body, let the operation parse
and execute it, encode the result; map every exception to DynamoDB's error
shape.  Nothing here knows what an operation does.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import zlib
from collections.abc import Callable, Mapping

import orjson

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    DynamoDBError,
    InternalServerError,
    ResourceNotFoundException,
    SerializationException,
    UnknownOperationException,
)
from tablekeeper.engine.operations import OPERATIONS, STREAMS_OPERATIONS
from tablekeeper.engine.operations.base import Operation
from tablekeeper.engine.protocol.http import Request, Response
from tablekeeper.engine.storage.base import StorageError, TableMissing

log = logging.getLogger(__name__)

DYNAMODB = "DynamoDB_20120810"
STREAMS = "DynamoDBStreams_20120810"

# X-Amz-Target prefix -> operation name -> operation: what the engine serves on its own.
ENGINE_OPERATIONS: Mapping[str, Mapping[str, Operation]] = {
    DYNAMODB: OPERATIONS,
    STREAMS: STREAMS_OPERATIONS,
}


_ID_PREFIX = os.urandom(16).hex().upper()
_ids = itertools.count(1)


def _request_id() -> str:
    # 52 characters like DynamoDB's.  A random per-process prefix and a counter:
    # os.urandom per request costs ~100 us on some VMs.
    return f"{_ID_PREFIX}{next(_ids):020X}"


def with_operations(
    base: Mapping[str, Mapping[str, Operation]], prefix: str, added: Mapping[str, Operation]
) -> dict[str, Mapping[str, Operation]]:
    """``base`` with ``added`` served under ``prefix``; a name served twice is a bug."""
    served = dict(base.get(prefix, {}))
    clash = sorted(served.keys() & added.keys())
    if clash:
        raise ValueError(f"operations served twice under {prefix}: {', '.join(clash)}")
    served.update(added)
    return {**base, prefix: served}


class DynamoDBApplication:
    """The engine's HTTP application.

    ``operations`` (target prefix -> name -> operation) is what it serves:
    by default the engine's own; the layers above add theirs (backups, PITR)
    with :func:`with_operations`.
    """

    def __init__(
        self,
        engine: Engine,
        authenticate: Callable[[Request], object] | None = None,
        observe: Callable[[str, float, str], None] | None = None,
        operations: Mapping[str, Mapping[str, Operation]] = ENGINE_OPERATIONS,
        metrics: Callable[[], Response] | None = None,
    ) -> None:
        self._engine = engine
        self._operations = operations
        self._authenticate = authenticate  # raises a DynamoDBError to refuse
        self._observe = observe  # (operation, seconds, outcome) for metrics
        self._metrics = metrics  # answers GET /metrics

    async def __call__(self, request: Request) -> Response:
        if request.method == "GET":
            if request.path == "/metrics" and self._metrics is not None:
                return self._metrics()
            return self._health(request)
        started = time.perf_counter() if self._observe is not None else 0.0
        name = "unknown"
        try:
            operation = self._operation(request.headers.get("x-amz-target", ""))
            name = operation.name
            if self._authenticate is not None:
                self._authenticate(request)
            try:
                body = orjson.loads(request.body) if request.body else None
            except orjson.JSONDecodeError:
                raise SerializationException() from None
            if not isinstance(body, dict):
                raise SerializationException()
            try:
                typed = operation.parse(body)
            except (AttributeError, TypeError, KeyError) as exc:
                # A member of the wrong JSON type deep inside the request that a
                # parser did not check for: still the client's error, never a 500.
                log.debug("%s: malformed member: %r", name, exc)
                raise SerializationException("Unexpected value type in payload") from None
            result = await operation.execute(self._engine, typed)
            payload = orjson.dumps(result.to_wire())
            status = 200
            outcome = "ok"
        except DynamoDBError as error:
            status, payload, outcome = error.status, orjson.dumps(error.body()), error.code
        except TableMissing:  # the table was deleted while the request was in flight
            error = ResourceNotFoundException()
            status, payload, outcome = error.status, orjson.dumps(error.body()), error.code
        except StorageError as exc:
            log.error("%s failed in storage: %s", name, exc)
            error = InternalServerError()
            status, payload, outcome = error.status, orjson.dumps(error.body()), error.code
        except Exception:
            log.exception("%s failed", name)
            error = InternalServerError()
            status, payload, outcome = error.status, orjson.dumps(error.body()), error.code
        if self._observe is not None:
            self._observe(name, time.perf_counter() - started, outcome)
        return Response(
            status,
            payload,
            headers=[
                ("x-amzn-RequestId", _request_id()),
                ("x-amz-crc32", str(zlib.crc32(payload))),
            ],
        )

    def _operation(self, target: str) -> Operation:
        prefix, _, name = target.partition(".")
        operations = self._operations.get(prefix)
        operation = operations.get(name) if operations is not None else None
        if operation is None:
            raise UnknownOperationException()
        return operation

    def _health(self, request: Request) -> Response:
        # DynamoDB answers a GET with a plain health line; probes use it too.
        return Response(
            200, f"healthy: dynamodb.{self._engine.config.region}.amazonaws.com ".encode(),
            content_type="text/plain",
        )
