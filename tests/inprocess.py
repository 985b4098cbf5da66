"""Driving an in-process Engine from synchronous tests: run a scenario, call an operation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.operations import OPERATIONS


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())  # type: ignore[arg-type]


async def call(engine: Engine, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """An operation as the server would run it; the answer as a client would read its JSON."""
    op = OPERATIONS[operation]
    result = await op.execute(engine, op.parse(body))
    return orjson.loads(orjson.dumps(result.to_wire()))  # type: ignore[no-any-return]
