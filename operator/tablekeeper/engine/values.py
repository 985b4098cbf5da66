"""DynamoDB attribute values: wire decoding and encoding, numbers, sizes.

Inside the engine an attribute value is a plain Python value whose DynamoDB
type is implied by its Python type:

    S -> str          N -> Decimal        B -> bytes       BOOL -> bool
    NULL -> None      M -> dict[str, V]   L -> list[V]
    SS / NS / BS -> frozenset of str / Decimal / bytes (never empty)

Natives keep the hot path cheap (no wrapper objects per attribute).  Python's
own ``==`` mixes types (``True == Decimal(1)``), so equality and ordering of
attribute values must go through :func:`values_equal` and :func:`compare`,
never ``==`` on values of unknown type.  ``MISSING`` stands for an attribute
that does not exist, which is distinct from NULL.
"""

from __future__ import annotations

import base64
import binascii
import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from tablekeeper.engine.errors import SerializationException as SerializationError
from tablekeeper.engine.errors import ValidationException

Value = str | Decimal | bytes | bool | None | dict | list | frozenset
Item = dict[str, Value]


class _Missing:
    """The absence of an attribute (distinct from NULL)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

MAX_NUMBER_DIGITS: Final = 38
MAX_NESTING_DEPTH: Final = 32
MAX_ITEM_SIZE: Final = 400 * 1024

# Exact arithmetic: enough precision that a sum of two 38-digit numbers across
# the whole exponent range is exact, so overflow is detected rather than
# silently rounded away.
NUMBER_CONTEXT: Final = decimal.Context(
    prec=300, Emax=999999, Emin=-999999, traps=[decimal.InvalidOperation]
)

SCALAR_TYPES: Final = frozenset({"S", "N", "B"})
ALL_TYPES: Final = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")

_INVALID_PARAMS: Final = "One or more parameter values were invalid: "


def type_of(value: Value) -> str:
    """The DynamoDB type name of an engine value."""
    if isinstance(value, str):
        return "S"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, Decimal):
        return "N"
    if isinstance(value, bytes):
        return "B"
    if value is None:
        return "NULL"
    if isinstance(value, dict):
        return "M"
    if isinstance(value, list):
        return "L"
    if isinstance(value, frozenset):
        sample = next(iter(value))
        if isinstance(sample, str):
            return "SS"
        if isinstance(sample, Decimal):
            return "NS"
        return "BS"
    raise TypeError(f"not an attribute value: {value!r}")


# --- numbers ---------------------------------------------------------------


def parse_number(text: Any) -> Decimal:
    """Parse a wire number, enforcing DynamoDB's precision and range."""
    if not isinstance(text, str) or not text:
        raise ValidationException("The parameter cannot be converted to a numeric value")
    stripped = text.strip()
    try:
        number = Decimal(stripped)
    except decimal.InvalidOperation:
        raise ValidationException(
            f"The parameter cannot be converted to a numeric value: {text}"
        ) from None
    if not number.is_finite() or stripped != text or "_" in text:
        raise ValidationException(f"The parameter cannot be converted to a numeric value: {text}")
    return check_number(number)


def check_number(number: Decimal) -> Decimal:
    """Normalize a number and check it fits DynamoDB's range and precision."""
    if not number:
        return Decimal(0)
    normalized = number.normalize(NUMBER_CONTEXT)
    adjusted = normalized.adjusted()
    if adjusted > 125:
        raise ValidationException(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        )
    if adjusted < -130:
        raise ValidationException(
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        )
    if len(normalized.as_tuple().digits) > MAX_NUMBER_DIGITS:
        raise ValidationException("Attempting to store more than 38 significant digits in a Number")
    return normalized


def format_number(number: Decimal) -> str:
    """DynamoDB's canonical text for a number: plain notation, no trailing zeros."""
    if not number:
        return "0"
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def number_size(number: Decimal) -> int:
    """Stored size of a number as DynamoDB accounts it (bytes).

    Numbers are stored as base-100 digits: one byte per two significant
    digits, one more when the digits do not start on an even decimal
    position, one for the exponent and one more for a negative sign.
    """
    if not number:
        return 1
    count = len(number.as_tuple().digits)
    size = 1 + (count + 1) // 2
    if count % 2 == 0 and number.adjusted() % 2 == 0:
        size += 1
    if number.is_signed():
        size += 1
    return size


# --- decoding (wire JSON -> engine values) ----------------------------------


def decode_binary(data: Any) -> bytes:
    if not isinstance(data, str):
        raise SerializationError("Unexpected value type in payload")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SerializationError(
            "Base64 encoded length is expected a multiple of 4 bytes but found: "
            f"{len(data)}"
            if len(data) % 4
            else "Invalid base64: " + repr(data)
        ) from None


def decode_value(wire: Any, depth: int = 1) -> Value:
    """Decode one wire AttributeValue ({"S": "x"}) into an engine value."""
    if not isinstance(wire, dict):
        raise SerializationError("Unexpected value type in payload")
    if len(wire) != 1:
        if not wire:
            raise ValidationException(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
            )
        known = [name for name in wire if name in ALL_TYPES]
        if len(known) > 1:
            raise ValidationException(
                "Supplied AttributeValue has more than one datatypes set, "
                "must contain exactly one of the supported datatypes"
            )
        if not known:
            raise ValidationException(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
            )
        # Unknown members beside one known type: DynamoDB ignores unknown members.
        tag = known[0]
        data = wire[tag]
    else:
        ((tag, data),) = wire.items()
    if data is None:
        raise ValidationException(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    if tag == "S":
        if not isinstance(data, str):
            raise SerializationError("Unexpected value type in payload")
        return data
    if tag == "N":
        if not isinstance(data, str):
            raise SerializationError("Unexpected value type in payload")
        return parse_number(data)
    if tag == "B":
        return decode_binary(data)
    if tag == "BOOL":
        if not isinstance(data, bool):
            raise SerializationError("Unexpected value type in payload")
        return data
    if tag == "NULL":
        if data is not True:
            if not isinstance(data, bool):
                raise SerializationError("Unexpected value type in payload")
            raise ValidationException(
                _INVALID_PARAMS + "Null attribute value types must have the value of true"
            )
        return None
    if tag == "M":
        if not isinstance(data, dict):
            raise SerializationError("Unexpected value type in payload")
        _check_depth(depth, bool(data))
        return {name: decode_value(member, depth + 1) for name, member in data.items()}
    if tag == "L":
        if not isinstance(data, list):
            raise SerializationError("Unexpected value type in payload")
        _check_depth(depth, bool(data))
        return [decode_value(member, depth + 1) for member in data]
    if tag in ("SS", "NS", "BS"):
        return _decode_set(tag, data)
    raise ValidationException(
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )


def _check_depth(depth: int, has_members: bool) -> None:
    # An empty document at the deepest level is fine; members below it are not.
    if has_members and depth >= MAX_NESTING_DEPTH:
        raise ValidationException("Nesting Levels have exceeded supported limits")


def _decode_set(tag: str, data: Any) -> frozenset:
    if not isinstance(data, list):
        raise SerializationError("Unexpected value type in payload")
    if not data:
        message = {
            "SS": "An string set  may not be empty",
            "NS": "An number set  may not be empty",
            "BS": "Binary sets should not be empty",
        }[tag]
        raise ValidationException(_INVALID_PARAMS + message)
    members: list[Any]
    if tag == "SS":
        if not all(isinstance(member, str) for member in data):
            raise SerializationError("Unexpected value type in payload")
        members = data
        result = frozenset(members)
        if len(result) != len(members):
            raise ValidationException(
                _INVALID_PARAMS + f"Input collection [{', '.join(members)}] contains duplicates."
            )
        return result
    if tag == "NS":
        numbers = [parse_number(member) for member in data]
        result = frozenset(numbers)
        if len(result) != len(numbers):
            raise ValidationException("Input collection contains duplicates")
        return result
    binaries = [decode_binary(member) for member in data]
    result = frozenset(binaries)
    if len(result) != len(binaries):
        raise ValidationException(
            _INVALID_PARAMS
            + f"Input collection [{', '.join(data)}]of type BS contains duplicates."
        )
    return result


def decode_item(wire: Any) -> Item:
    """Decode a wire attribute map (an Item, Key, or ExpressionAttributeValues)."""
    if not isinstance(wire, dict):
        raise SerializationError("Unexpected value type in payload")
    return {name: decode_value(member) for name, member in wire.items()}


# --- encoding (engine values -> wire JSON) ----------------------------------


def encode_value(value: Value) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, Decimal):
        return {"N": format_number(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    if value is None:
        return {"NULL": True}
    if isinstance(value, dict):
        return {"M": {name: encode_value(member) for name, member in value.items()}}
    if isinstance(value, list):
        return {"L": [encode_value(member) for member in value]}
    if isinstance(value, frozenset):
        kind = type_of(value)
        if kind == "SS":
            return {"SS": sorted(value)}
        if kind == "NS":
            return {"NS": [format_number(n) for n in sorted(value)]}
        return {"BS": [base64.b64encode(b).decode("ascii") for b in sorted(value)]}
    raise TypeError(f"not an attribute value: {value!r}")


def encode_item(item: Mapping[str, Value]) -> dict[str, Any]:
    return {name: encode_value(value) for name, value in item.items()}


# --- equality and ordering ----------------------------------------------------


def values_equal(left: Value | _Missing, right: Value | _Missing) -> bool:
    """DynamoDB equality: same type and same value, deeply."""
    if left is MISSING or right is MISSING:
        return left is right
    left_type = type_of(left)  # type: ignore[arg-type]
    if left_type != type_of(right):  # type: ignore[arg-type]
        return False
    if left_type == "M":
        assert isinstance(left, dict) and isinstance(right, dict)
        return left.keys() == right.keys() and all(
            values_equal(member, right[name]) for name, member in left.items()
        )
    if left_type == "L":
        assert isinstance(left, list) and isinstance(right, list)
        return len(left) == len(right) and all(
            values_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return left == right


def items_equal(left: Mapping[str, Value], right: Mapping[str, Value]) -> bool:
    """Two items (or attribute maps) hold the same attributes with equal values."""
    return left.keys() == right.keys() and all(
        values_equal(value, right[name]) for name, value in left.items()
    )


def compare(left: Value, right: Value) -> int:
    """Order two scalars of the same type (S, N or B) as DynamoDB does.

    Strings compare by their UTF-8 bytes, binaries as unsigned bytes, numbers
    numerically.  Callers check that both are the same scalar type.
    """
    if isinstance(left, str):
        assert isinstance(right, str)
        a: Any = left.encode("utf-8")
        b: Any = right.encode("utf-8")
    else:
        a, b = left, right
    return (a > b) - (a < b)


# --- sizes ------------------------------------------------------------------


def text_size(text: str) -> int:
    """A string's length in UTF-8 bytes (an ASCII string's length, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def value_size(value: Value) -> int:
    """Size of one attribute value in bytes, as DynamoDB accounts it."""
    if isinstance(value, str):
        return text_size(value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, Decimal):
        return number_size(value)
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(text_size(name) + 1 + value_size(member) for name, member in value.items())
    if isinstance(value, list):
        return 3 + sum(1 + value_size(member) for member in value)
    if isinstance(value, frozenset):
        return sum(value_size(member) for member in value)
    raise TypeError(f"not an attribute value: {value!r}")


def item_size(item: Mapping[str, Value]) -> int:
    """Size of an item: attribute names plus values (DynamoDB's item size)."""
    # A loop that sizes strings first: every write measures its item, and most values are strings.
    size = 0
    for name, value in item.items():
        size += text_size(name) + (text_size(value) if type(value) is str else value_size(value))
    return size


# --- stored form ----------------------------------------------------------------


def _load_trusted(wire: dict[str, Any]) -> Value:
    ((tag, data),) = wire.items()
    if tag == "S":
        return data
    if tag == "N":
        # Normalized, as decode_value leaves them, so keys and sizes agree.
        return Decimal(data).normalize(NUMBER_CONTEXT)
    if tag == "B":
        return base64.b64decode(data)
    if tag == "BOOL":
        return data
    if tag == "NULL":
        return None
    if tag == "M":
        return {name: _load_trusted(member) for name, member in data.items()}
    if tag == "L":
        return [_load_trusted(member) for member in data]
    if tag == "SS":
        return frozenset(data)
    if tag == "NS":
        return frozenset(Decimal(n).normalize(NUMBER_CONTEXT) for n in data)
    return frozenset(base64.b64decode(b) for b in data)


def load_item(wire: dict[str, Any]) -> Item:
    """Decode an item the engine itself stored (already validated and normalized)."""
    return {name: _load_trusted(member) for name, member in wire.items()}
