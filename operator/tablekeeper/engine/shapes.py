"""Request shape checks with DynamoDB's wording.

DynamoDB checks a request's members against its API model before anything
else and reports every violated constraint at once::

    2 validation errors detected: Value null at 'tableName' failed to satisfy
    constraint: Member must not be null; Value '0' at 'limit' failed to
    satisfy constraint: Member must have value greater than or equal to 1

A member of the wrong JSON type is a SerializationException instead.  Each
operation's ``parse`` reads its body through a :class:`Members` and calls
``done()``; nothing below the parse sees an unchecked member.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tablekeeper.engine.errors import SerializationException, ValidationException

TABLE_NAME_PATTERN = "[a-zA-Z0-9_.-]+"
_TABLE_NAME_RE = re.compile(r"[a-zA-Z0-9_.-]+")


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    return f"'{value}'"


def _table_name_faults(value: str) -> list[str]:
    """The constraints a table name (or ARN) breaks, in DynamoDB's order."""
    if value.startswith("arn:"):
        return ["Member must have length less than or equal to 1024"] if len(value) > 1024 else []
    faults = []
    if len(value) < 3:
        faults.append("Member must have length greater than or equal to 3")
    if len(value) > 255:
        faults.append("Member must have length less than or equal to 255")
    if not _TABLE_NAME_RE.fullmatch(value):
        faults.append(f"Member must satisfy regular expression pattern: {TABLE_NAME_PATTERN}")
    return faults


def plain_request(body: dict[str, Any], member: str) -> tuple[str, dict[str, Any]] | None:
    """(table name, the map ``member``) when a body holds exactly those two, well-formed.

    Most item requests have this shape.  For it, the member checks of an
    operation's full parse find nothing to report, so the operation may skip
    them; any other body (None here) takes the full parse and its errors.
    """
    if len(body) != 2:
        return None
    name = body.get("TableName")
    value = body.get(member)
    if type(value) is not dict or type(name) is not str or _table_name_faults(name):
        return None
    return name, value


class Members:
    """Typed, constraint-checked access to the members of a request body."""

    def __init__(self, body: Any, path: str = "") -> None:
        if not isinstance(body, dict):
            raise SerializationException("Start of structure or map found where not expected")
        self.body = body
        self._path = path
        self.errors: list[str] = []

    def _where(self, name: str) -> str:
        return f"{self._path}{_lower_first(name)}"

    def fail(self, name: str, value: Any, constraint: str) -> None:
        self.errors.append(
            f"Value {_shown(value)} at '{self._where(name)}' failed to satisfy constraint: "
            f"{constraint}"
        )

    def _get(self, name: str, kinds: tuple[type, ...], kind_name: str, required: bool) -> Any:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(name, None, "Member must not be null")
            return None
        if not isinstance(value, kinds) or (kinds == (int,) and isinstance(value, bool)):
            raise SerializationException(
                f"Unexpected value type for member '{name}': expected {kind_name}"
            )
        return value

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        min_len: int | None = None,
        max_len: int | None = None,
        pattern: str | None = None,
        enum: Iterable[str] | None = None,
    ) -> str | None:
        value = self._get(name, (str,), "String", required)
        if value is None:
            return None
        if min_len is not None and len(value) < min_len:
            self.fail(name, value, f"Member must have length greater than or equal to {min_len}")
        if max_len is not None and len(value) > max_len:
            self.fail(name, value, f"Member must have length less than or equal to {max_len}")
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(name, value, f"Member must satisfy regular expression pattern: {pattern}")
        if enum is not None:
            options = list(enum)
            if value not in options:
                self.fail(name, value, f"Member must satisfy enum value set: [{', '.join(options)}]")
        return value

    def table_name(self, name: str = "TableName", *, required: bool = True) -> str | None:
        """A table name (or ARN) member: 3 to 255 of [a-zA-Z0-9_.-], or an ARN up to 1024."""
        value = self._get(name, (str,), "String", required)
        if value is None:
            return None
        for constraint in _table_name_faults(value):
            self.fail(name, value, constraint)
        return value

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._get(name, (int,), "Integer", required)
        if value is None:
            return None
        if minimum is not None and value < minimum:
            self.fail(name, value, f"Member must have value greater than or equal to {minimum}")
        if maximum is not None and value > maximum:
            self.fail(name, value, f"Member must have value less than or equal to {maximum}")
        return value

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        return self._get(name, (bool,), "Boolean", required)

    def mapping(
        self, name: str, *, required: bool = False, min_len: int | None = None,
        max_len: int | None = None,
    ) -> dict[str, Any] | None:
        value = self._get(name, (dict,), "Map", required)
        if value is None:
            return None
        self._check_size(name, value, min_len, max_len)
        return value

    def array(
        self, name: str, *, required: bool = False, min_len: int | None = None,
        max_len: int | None = None,
    ) -> list[Any] | None:
        value = self._get(name, (list,), "List", required)
        if value is None:
            return None
        self._check_size(name, value, min_len, max_len)
        return value

    def _check_size(self, name: str, value: Any, min_len: int | None, max_len: int | None) -> None:
        if min_len is not None and len(value) < min_len:
            self.fail(name, value, f"Member must have length greater than or equal to {min_len}")
        if max_len is not None and len(value) > max_len:
            self.fail(name, value, f"Member must have length less than or equal to {max_len}")

    def nested(self, name: str, value: Any, index: int | None = None) -> Members:
        """Members of a nested structure, reporting errors with its path."""
        where = self._where(name) + (f".{index + 1}.member" if index is not None else "")
        child = Members(value, where + ".")
        child.errors = self.errors  # one shared list: all errors are reported together
        return child

    def done(self) -> None:
        if self.errors:
            count = len(self.errors)
            noun = "error" if count == 1 else "errors"
            raise ValidationException(
                f"{count} validation {noun} detected: " + "; ".join(self.errors)
            )
