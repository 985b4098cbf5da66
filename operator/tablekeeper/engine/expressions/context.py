"""Per-request placeholders: ExpressionAttributeNames and ExpressionAttributeValues.

One context serves every expression of a request, because DynamoDB's
"unused" check spans them all: a name used only in the ProjectionExpression
is used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from tablekeeper.engine.errors import SerializationException, ValidationException
from tablekeeper.engine.values import MISSING, Value, _Missing, decode_value

_NAME_KEY: Final = re.compile(r"#[0-9A-Za-z_]+")
_VALUE_KEY: Final = re.compile(r":[0-9A-Za-z_]+")


def _check_names(names: Mapping[str, str] | None) -> None:
    if names is None:
        return
    if not names:
        raise ValidationException("ExpressionAttributeNames must not be empty")
    for key, name in names.items():
        if not isinstance(name, str):  # a map of strings on the wire: anything else is malformed
            raise SerializationException("Unexpected value type in payload")
        if not _NAME_KEY.fullmatch(key):
            raise ValidationException(
                f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"'
            )
        if not name:
            raise ValidationException(
                f"ExpressionAttributeNames contains invalid value: Empty attribute name for key {key}"
            )


def _check_value_keys(values: Mapping[str, Any] | None) -> None:
    if values is None:
        return
    if not values:
        raise ValidationException("ExpressionAttributeValues must not be empty")
    for key in values:
        if not _VALUE_KEY.fullmatch(key):
            raise ValidationException(
                f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"'
            )


def decode_attribute_values(wire: Mapping[str, Any] | None) -> dict[str, Value] | None:
    """Decode wire ExpressionAttributeValues, wording errors as DynamoDB does.

    "ExpressionAttributeValues contains invalid value: <reason> for key :v".
    Key syntax is checked first, as DynamoDB does.
    """
    if wire is None:
        return None
    _check_value_keys(wire)
    decoded: dict[str, Value] = {}
    for key, member in wire.items():
        try:
            decoded[key] = decode_value(member)
        except ValidationException as error:
            raise ValidationException(
                f"ExpressionAttributeValues contains invalid value: {error.message} for key {key}"
            ) from None
    return decoded


class ExpressionContext:
    """Per-request: ExpressionAttributeNames (dict[str, str] | None) and decoded
    ExpressionAttributeValues (dict[str, Value] | None); tracks which
    placeholders were used."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, Value] | None) -> None:
        _check_names(names)
        _check_value_keys(values)
        self._names: dict[str, str] = dict(names or {})
        self._values: dict[str, Value] = dict(values or {})
        self._used_names: set[str] = set()
        self._used_values: set[str] = set()

    @classmethod
    def from_wire(
        cls, names: dict[str, str] | None, values: Mapping[str, Any] | None
    ) -> ExpressionContext:
        """Build from the request's wire members, checking in DynamoDB's order:
        names (empty, key syntax), then values (empty, key syntax, each value)."""
        _check_names(names)
        return cls(names, decode_attribute_values(values))

    def name(self, placeholder: str) -> str | None:
        """The attribute name behind ``#x``, or None when it is not defined."""
        resolved = self._names.get(placeholder)
        if resolved is not None:
            self._used_names.add(placeholder)
        return resolved

    def value(self, placeholder: str) -> Value | _Missing:
        """The value behind ``:x``, or MISSING when it is not defined."""
        if placeholder not in self._values:
            return MISSING
        self._used_values.add(placeholder)
        return self._values[placeholder]

    def mark(self) -> tuple[frozenset[str], frozenset[str]]:
        """Remember what is used, so a parser that backtracks can forget."""
        return frozenset(self._used_names), frozenset(self._used_values)

    def reset(self, mark: tuple[frozenset[str], frozenset[str]]) -> None:
        self._used_names = set(mark[0])
        self._used_values = set(mark[1])

    def check_unused(self) -> None:
        """Raise DynamoDB's error for placeholders no expression used (names first)."""
        unused_names = [key for key in self._names if key not in self._used_names]
        if unused_names:
            raise ValidationException(
                "Value provided in ExpressionAttributeNames unused in expressions: "
                f"keys: {{{', '.join(unused_names)}}}"
            )
        unused_values = [key for key in self._values if key not in self._used_values]
        if unused_values:
            raise ValidationException(
                "Value provided in ExpressionAttributeValues unused in expressions: "
                f"keys: {{{', '.join(unused_values)}}}"
            )
