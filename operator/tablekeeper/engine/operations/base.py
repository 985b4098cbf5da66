"""What an operation is: parse a wire body into a typed request, execute it.

Each operations module exposes ``OPERATIONS``: DynamoDB operation name ->
:class:`Operation`.  ``parse`` checks the whole request shape (raising
ValidationException / SerializationException with DynamoDB's wording) and
returns a frozen request dataclass; ``execute`` runs it against the engine and
returns a result whose ``to_wire()`` is the response body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tablekeeper.engine.engine import Engine


class Result(Protocol):
    def to_wire(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WireResult:
    """A result that is already wire-shaped (simple operations)."""

    body: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return self.body


@dataclass(frozen=True)
class Operation:
    name: str
    parse: Callable[[dict[str, Any]], Any]
    execute: Callable[[Engine, Any], Awaitable[Result]]
